"""Clients that abuse the connection table, and the good client beside them.

Each attack shape of the README's "Connections under abuse" runs against a
gcs with a small connection limit and short deadlines. The tests assert
behaviour, not timing: the good client is answered, the attackers are cut
and counted, no socket of gcs is left in CLOSE-WAIT and its descriptors
return to their baseline. make bench-abuse measures the same shapes at scale.
"""
import os
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
