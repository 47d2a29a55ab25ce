"""Clients that abuse the connection table, and the good client beside them.

Each attack shape of the README's "Connections under abuse" runs against a
gcs with a small connection limit and short deadlines. The tests assert
behaviour, not timing: the good client is answered, the attackers are cut
and counted, no socket of gcs is left in CLOSE-WAIT and its descriptors
return to their baseline. make bench-abuse measures the same shapes at scale.
"""
import http.client
import os
import signal
import socket
import time

import fixtures as F
import metrics as M
from conftest import GcsServer, base_env, wait_until

PARTIAL = b"GET /api/gathering/v2/4.17.0/gathering_rules HTTP/1.1\r\nHost: t\r\nX-Slow: "
TCP_CLOSE_WAIT = "08"


def start(**overrides):
    env = {"STABLE_VERSION": "1.2.0", "GCS_THREADS": "2", "GCS_CONNECTION_LIMIT": "32"}
    env.update(overrides)
    return GcsServer(base_env(**env))


def sockets_in_state(port, state):
    """How many TCP sockets on 127.0.0.1 with local port `port` are in
    `state` (the kernel's hex code in /proc/net/tcp)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
                n += 1
    return n


def open_fds(srv):
    return len(os.listdir("/proc/%d/fd" % srv.proc.pid))


def abort(srv):
    """A partial request and the FIN in one segment, nothing kept open."""
    sock = F.connect_raw(srv)
    sock.send(PARTIAL, socket.MSG_MORE)
    sock.close()


def status_or_none(srv, path):
    """The status of GET path, or None when the connection was refused."""
    try:
        return F.request(srv, "GET", path, timeout=5).status
    except (OSError, http.client.HTTPException):
        return None


def assert_good_client_answered(srv):
    resp = F.request(srv, "GET", F.v2_path("4.17.0"), timeout=5)
    assert resp.status == 200


def test_aborted_requests_are_let_go_at_once():
    # Far more aborted requests than the limit, and a connection timeout
    # far beyond the test: only acting on the peer's close frees the slots.
    with start(GCS_CONNECTION_TIMEOUT="600", GCS_REQUEST_TIMEOUT="600") as srv:
        baseline = open_fds(srv)
        for i in range(200):  # 100 a second, beside the good client
            abort(srv)
            time.sleep(0.01)
            if i % 20 == 0:
                assert_good_client_answered(srv)
        wait_until("no gcs socket in CLOSE-WAIT",
                   lambda: sockets_in_state(srv.port, TCP_CLOSE_WAIT) == 0, 5)
        assert_good_client_answered(srv)
        wait_until("descriptors back to %d" % baseline, lambda: open_fds(srv) <= baseline, 5)


def test_complete_request_and_fin_in_one_segment_is_answered():
    # Letting go of a closed peer must not lose a request it completed
    # before closing its side (HTTP/1.0 clients that half-close).
    with start() as srv:
        for version in (b"1.0", b"1.1"):
            sock = F.connect_raw(srv)
            sock.send(b"GET /healthz HTTP/%s\r\nHost: t\r\n\r\n" % version, socket.MSG_MORE)
            sock.shutdown(socket.SHUT_WR)
            data, closed = F.read_until_closed(sock, 10)
            sock.close()
            assert F.status_of(data) == 200 and data.endswith(b'{"status":"ok"}\n'), data
            assert closed


def trickle(socks, byte=b"a"):
    """One byte on each socket still open; returns those the server closed."""
    gone = []
    for s in socks:
        try:
            s.send(byte)
            s.settimeout(0)
            if s.recv(4096) == b"":
                gone.append(s)
        except (BlockingIOError, socket.timeout):
            pass
        except OSError:
            gone.append(s)
    return gone


def attack(srv, opening, count, rounds, probe):
    """count connections send opening then one byte each per round (0.2 s);
    probe() runs each round. Returns how many the server closed."""
    socks = []
    for _ in range(count):
        s = F.connect_raw(srv)
        s.sendall(opening)
        socks.append(s)
    closed = 0
    try:
        for _ in range(rounds):
            gone = trickle(socks)
            closed += len(gone)
            for s in gone:
                socks.remove(s)
                s.close()
            probe()
            time.sleep(0.2)
    finally:
        for s in socks:
            s.close()
    return closed


def assert_probes_answered(srv):
    assert_good_client_answered(srv)
    for path in ("/healthz", "/readyz"):
        assert F.request(srv, "GET", path, timeout=5).status == 200


def test_slow_headers_are_cut_at_the_request_deadline():
    with start(GCS_REQUEST_TIMEOUT="1", GCS_CONNECTION_TIMEOUT="600") as srv:
        baseline = open_fds(srv)
        closed = attack(srv, PARTIAL, 16, 20, lambda: assert_probes_answered(srv))
        assert closed == 16, "slow headers outlived the request deadline"
        cut = M.read(srv, "gcs_http_connections_cut_total", reason="request_timeout")
        assert cut == 16
        wait_until("descriptors back to %d" % baseline, lambda: open_fds(srv) <= baseline, 5)
        assert sockets_in_state(srv.port, TCP_CLOSE_WAIT) == 0


def test_slow_bodies_are_cut_at_the_request_deadline():
    # Complete headers, then a body of a byte a round: each byte restarts
    # the idle timeout, not the request deadline.
    head = (b"GET /api/gathering/v2/4.17.0/gathering_rules HTTP/1.1\r\nHost: t\r\n"
            b"Content-Length: 1000000\r\n\r\n")
    with start(GCS_REQUEST_TIMEOUT="1", GCS_CONNECTION_TIMEOUT="600") as srv:
        baseline = open_fds(srv)
        closed = attack(srv, head, 16, 20, lambda: assert_probes_answered(srv))
        assert closed == 16, "slow bodies outlived the request deadline"
        assert M.read(srv, "gcs_http_connections_cut_total", reason="request_timeout") == 16
        wait_until("descriptors back to %d" % baseline, lambda: open_fds(srv) <= baseline, 5)


def test_keep_alive_idle_and_a_slow_second_request():
    with start(GCS_REQUEST_TIMEOUT="1.5", GCS_KEEPALIVE_TIMEOUT="1",
               GCS_CONNECTION_TIMEOUT="600") as srv:
        # Requests closer together than the idle timeout keep the connection.
        ka = F.KeepAlive(srv)
        for _ in range(4):
            assert ka.get("/healthz").status == 200
            time.sleep(0.5)
        assert ka.same_socket()
        # Idle longer than it: closed, with nothing sent.
        data, closed = F.read_until_closed(ka.sock, 10)
        assert closed and data == b""
        ka.close()
        # A second request begun in time but trickled: the request deadline.
        ka = F.KeepAlive(srv)
        assert ka.get("/healthz").status == 200
        ka.sock.sendall(PARTIAL)
        gone = []
        for _ in range(40):
            gone = trickle([ka.sock])
            if gone:
                break
            time.sleep(0.2)
        assert gone, "a trickled second request outlived the request deadline"
        ka.close()
        m = M.scrape(srv)
        assert M.value(m, "gcs_http_connections_cut_total", reason="keepalive_timeout") == 1
        assert M.value(m, "gcs_http_connections_cut_total", reason="request_timeout") == 1


def test_full_table_refuses_at_once_and_probes_answer_after():
    # One worker accepts in order: the held connections are the first 8.
    with start(GCS_CONNECTION_LIMIT="8", GCS_REQUEST_TIMEOUT="2", GCS_THREADS="1",
               GCS_CONNECTION_TIMEOUT="600") as srv:
        held = [F.connect_raw(srv) for _ in range(8)]
        try:
            for _ in range(5):
                data, closed = F.read_until_closed(F.connect_raw(srv), 5)
                assert closed and data == b""
        finally:
            for s in held:
                s.close()
        wait_until("slots freed", lambda: status_or_none(srv, "/readyz") == 200, 5)
        assert_probes_answered(srv)
        assert M.read(srv, "gcs_http_connections_refused_total") >= 5


def test_http_1_1_without_host_is_400_as_go_answers():
    with start() as srv:
        data, closed = F.raw_exchange(srv, b"GET /healthz HTTP/1.1\r\n\r\n")
        assert F.status_of(data) == 400 and closed
        head, _, body = data.partition(b"\r\n\r\n")
        assert body == b"400 Bad Request: missing required Host header"
        assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in head + b"\r\n"
        assert b"\r\nConnection: close\r\n" in head + b"\r\n"
        # HTTP/1.0 needs no Host; an empty one is a Host.
        for req in (b"GET /healthz HTTP/1.0\r\n\r\n", b"GET /healthz HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n"):
            data, _ = F.raw_exchange(srv, req)
            assert F.status_of(data) == 200, (req, data)


def test_a_slow_body_holds_sigterm_only_until_its_deadline():
    # Draining waits for requests in flight, but one that trickles its body
    # is cut at its deadline, not held for the whole grace period.
    srv = start(GCS_REQUEST_TIMEOUT="1", GCS_SHUTDOWN_GRACE="60", GCS_CONNECTION_TIMEOUT="600")
    try:
        slow = F.connect_raw(srv)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        srv.signal(signal.SIGTERM)
        cut = False
        for _ in range(50):  # 10 s, a sixth of the grace
            if trickle([slow]):
                cut = True
                break
            time.sleep(0.2)
        assert cut, "the slow body held SIGTERM past its deadline"
        assert srv.proc.wait(10) == 0
        slow.close()
    finally:
        srv.stop()
