"""gcs and its peers behind real network faults.

gcs runs in a network namespace of its own (C); its peers are reached through
a second one (S), joined to C by a veth pair. In S, a small relay listens on
the veth address and forwards each connection to the real peer on 127.0.0.1
of the test's own namespace: the download server (tests/support) and the
real Unleash server (tests/support/unleash.sh), so every byte between gcs and
a peer crosses the veth, where the faults are made:

  loss        nftables in S drops a random share of the packets, both ways
  black hole  nftables in S drops everything: no answer, no reset
  slow link   tc tbf limits what S sends to C
  link down   the veth is set down in the middle of a transfer
  latency     the relay delays every chunk (tc netem is not in this kernel)

The test talks to gcs on 127.0.0.1 inside C, from a thread that joined C.
Everything is made and removed by the test; no traffic leaves this machine.
Where the machine does not allow a fault, the test is skipped and says why.
"""
import ctypes
import os
import re
import shutil
import socket
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import conftest
import metrics as M
from conftest import RULES, base_env, unleash_env
from download_server import DownloadServer

C_ADDR, S_ADDR = "10.231.0.1", "10.231.0.2"
CLONE_NEWNET = 0x40000000
GCS_BIN = conftest.GCS
STABLE, CANARY = "1.1.3", "1.2.0"
V1 = "/api/gathering/gathering_rules"
# What gcs is given for downloads, so the retry budget is short enough to test:
# per try 1 s to connect and 3 s in all, 3 tries, backoff 0.5 s then 1 s.
FETCH = {"GCS_FETCH_CONNECT_TIMEOUT_MS": 1000, "GCS_FETCH_TIMEOUT_MS": 3000, "GCS_FETCH_TRIES": 3}
TRY_BUDGET_S = 3 * 3 + 0.5 + 1.0
# When nothing answers, each try ends at the connect timeout.
CONNECT_BUDGET_S = 3 * 1 + 0.5 + 1.0
# gcs reports every problem: with no network it tries v1/rules.json and the
# mapping of both versions (the mapping names the other files) before exiting.
FIRST_FILES = 4
FILES_PER_VERSION = 5  # v1/rules.json, the mapping and its remote configurations: an upper bound


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def setns(name):
    """Moves the calling thread into network namespace name."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
    finally:
        os.close(fd)


def in_namespace(name, fn):
    """fn() run on a fresh thread inside namespace name; its result."""
    out = {}

    def run():
        try:
            setns(name)
            out["value"] = fn()
        except BaseException as e:  # handed to the caller
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


class Net:
    """Namespaces C (gcs) and S (the relays), a veth pair, an nftables table."""

    def __init__(self):
        tag = "%d" % os.getpid()
        self.c, self.s = "gcsnf%sc" % tag, "gcsnf%ss" % tag
        self.vc, self.vs = "gnf%sc" % tag, "gnf%ss" % tag
        sh("ip", "netns", "add", self.c)
        sh("ip", "netns", "add", self.s)
        sh("ip", "link", "add", self.vc, "netns", self.c, "type", "veth", "peer", "name", self.vs,
           "netns", self.s)
        for ns, dev, addr in ((self.c, self.vc, C_ADDR), (self.s, self.vs, S_ADDR)):
            self.ns(ns, "ip", "addr", "add", addr + "/30", "dev", dev)
            self.ns(ns, "ip", "link", "set", dev, "up")
            self.ns(ns, "ip", "link", "set", "lo", "up")
        self.ns(self.s, "nft", "add table inet gcsnf; "
                "add chain inet gcsnf in { type filter hook input priority 0; }; "
                "add chain inet gcsnf out { type filter hook output priority 0; }")

    def ns(self, name, *args):
        return sh("ip", "netns", "exec", name, *args)

    def loss(self, percent):
        """Drops percent% of S's packets on the veth, each way."""
        self.clear()
        for chain, where in (("in", "iifname"), ("out", "oifname")):
            self.ns(self.s, "nft", "add", "rule", "inet", "gcsnf", chain, where, self.vs,
                    "numgen", "random", "mod", "100", "<", str(percent), "drop")

    def black_hole(self):
        self.clear()
        for chain, where in (("in", "iifname"), ("out", "oifname")):
            self.ns(self.s, "nft", "add", "rule", "inet", "gcsnf", chain, where, self.vs, "drop")

    def slow(self, rate):
        self.ns(self.s, "tc", "qdisc", "replace", "dev", self.vs, "root", "tbf", "rate", rate,
                "burst", "4kb", "latency", "10s")

    def link(self, up):
        self.ns(self.s, "ip", "link", "set", self.vs, "up" if up else "down")

    def clear(self):
        self.ns(self.s, "nft", "flush", "chain", "inet", "gcsnf", "in")
        self.ns(self.s, "nft", "flush", "chain", "inet", "gcsnf", "out")
        sh("ip", "netns", "exec", self.s, "tc", "qdisc", "del", "dev", self.vs, "root", check=False)
        self.link(True)

    def remove(self):
        sh("ip", "netns", "del", self.c, check=False)  # takes the veth pair with it
        sh("ip", "netns", "del", self.s, check=False)


class Relay:
    """Listens on S's veth address and forwards to 127.0.0.1:port here,
    optionally delaying every chunk by delay seconds."""

    def __init__(self, net, port, delay=0.0):
        self.port, self.delay = port, delay
        self.lsock = in_namespace(net.s, lambda: socket.create_server((S_ADDR, 0)))
        self.addr = "%s:%d" % (S_ADDR, self.lsock.getsockname()[1])
        self.socks = []
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                a, _ = self.lsock.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.port))
            except OSError:
                a.close()
                continue
            self.socks += [a, b]
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()
            threading.Thread(target=self._pump, args=(b, a), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self):
        self.stopping = True
        self.lsock.close()
        for s in self.socks:
            s.close()


@pytest.fixture(scope="module")
def net():
    if os.geteuid() != 0:
        pytest.skip("network faults need root (namespaces, nftables, tc)")
    for tool in ("ip", "nft", "tc"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed: no network faults on this machine" % tool)
    try:
        n = Net()
    except subprocess.CalledProcessError as e:
        sh("ip", "netns", "del", "gcsnf%dc" % os.getpid(), check=False)
        sh("ip", "netns", "del", "gcsnf%ds" % os.getpid(), check=False)
        pytest.skip("this machine does not allow the faults: %s: %s" % (" ".join(e.cmd), e.stderr.strip()))
    try:
        yield n
    finally:
        n.remove()


@pytest.fixture
def faults(net):
    net.clear()
    yield net
    net.clear()


@pytest.fixture(scope="module")
def downloads():
    with DownloadServer(RULES) as srv:
        yield srv


class Gcs(conftest.GcsServer):
    """build/gcs inside namespace C; requests are made from inside C too."""

    def __init__(self, net, env, ready_timeout):
        self.client = ThreadPoolExecutor(max_workers=1, initializer=setns, initargs=(net.c,))
        saved = conftest.GCS
        conftest.GCS = "ip"
        try:
            super().__init__(env, ("netns", "exec", net.c, GCS_BIN), ready_timeout)
        except BaseException:
            self.client.shutdown()
            raise
        finally:
            conftest.GCS = saved

    def get(self, path, headers=None, method="GET"):
        return self.client.submit(conftest.GcsServer.get, self, path, headers, method).result()

    def stop(self, sig=None, timeout=15):
        rc = super().stop(sig, timeout)
        self.client.shutdown()
        return rc


def start(net, env, timeout=60):
    """(Gcs or None, seconds taken, exit status or None, log lines)."""
    t0 = time.time()
    try:
        srv = Gcs(net, env, timeout)
        return srv, time.time() - t0, None, srv.log_lines
    except RuntimeError as e:
        m = re.search(r"exited (-?\d+)", str(e))
        return None, time.time() - t0, int(m.group(1)) if m else None, str(e).splitlines()


def env_via(relay_addr, **extra):
    return base_env(**dict(FETCH, STABLE_VERSION=STABLE, CANARY_VERSION=CANARY,
                           GCS_CONDITIONS_URL="http://%s/{version}" % relay_addr, **extra))


# Startup downloads 2 versions; each file may use the whole retry budget.
STARTUP_BOUND_S = 2 * FILES_PER_VERSION * TRY_BUDGET_S


def test_startup_through_packet_loss_ends_within_the_retry_budget(faults, downloads):
    """10% of the packets lost each way, the default connect timeout (2 s,
    which outlasts one lost SYN: TCP resends it after 1 s). gcs starts, or
    exits naming the file and the cause; either way within the budget."""
    relay = Relay(faults, downloads.port)
    try:
        faults.loss(10)
        env = env_via(relay.addr, GCS_FETCH_CONNECT_TIMEOUT_MS=2000)
        srv, took, status, lines = start(faults, env, timeout=STARTUP_BOUND_S + 5)
        assert took <= STARTUP_BOUND_S, (took, lines)
        if srv is None:
            assert status == 1, lines
            assert re.search(r"problem.*%s/.*(timed out|reset|refused)" % re.escape(relay.addr),
                             "\n".join(lines)), lines
            return
        try:
            assert srv.get(V1)[0] == 200
        finally:
            srv.stop()
    finally:
        relay.stop()


def test_startup_into_a_black_hole_exits_naming_the_cause_within_the_budget(faults, downloads):
    relay = Relay(faults, downloads.port)
    try:
        faults.black_hole()
        srv, took, status, lines = start(faults, env_via(relay.addr), timeout=STARTUP_BOUND_S + 10)
        if srv is not None:
            srv.stop()
        assert srv is None, "gcs started with its download server in a black hole"
        assert status == 1, lines
        bound = FIRST_FILES * CONNECT_BUDGET_S + 2
        assert took <= bound, "took %.1f s, bound %.1f s:\n%s" % (took, bound, "\n".join(lines))
        text = "\n".join(lines)
        assert "timed out" in text and relay.addr in text, text
    finally:
        relay.stop()


def start_over_slow_link(faults, downloads, relay, timeout):
    """Starts gcs in a thread over a 16 kbit/s link to the download server
    and returns (thread, result) once a transfer is under way, or after 10 s.
    result gets srv, took, status and lines when start() returns."""
    faults.slow("16kbit")
    result = {}
    t = threading.Thread(target=lambda: result.update(
        zip(("srv", "took", "status", "lines"),
            start(faults, env_via(relay.addr), timeout=timeout))))
    t.start()
    deadline = time.time() + 10
    while not downloads.count() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    return t, result


def test_link_down_in_the_middle_of_a_slow_transfer(faults, downloads):
    """The link goes down while a file crawls over a slow link and comes
    back 2 s later: a retry gets the file and gcs starts, within the budget."""
    relay = Relay(faults, downloads.port)
    try:
        t, result = start_over_slow_link(faults, downloads, relay, STARTUP_BOUND_S + 5)
        assert downloads.count(), "gcs never reached the download server"
        faults.link(False)
        time.sleep(2)
        faults.link(True)
        t.join()
        srv = result["srv"]
        assert srv is not None, "gcs did not recover from a link down (status %s):\n%s" % (
            result["status"], "\n".join(result["lines"]))
        try:
            assert result["took"] <= STARTUP_BOUND_S
            assert srv.get(V1)[0] == 200
        finally:
            srv.stop()
    finally:
        relay.stop()
        downloads.clear_log()


def test_link_down_for_good_exits_naming_the_cause(faults, downloads):
    relay = Relay(faults, downloads.port)
    try:
        t, result = start_over_slow_link(faults, downloads, relay, STARTUP_BOUND_S + 10)
        faults.link(False)
        t.join()
        if result["srv"] is not None:
            result["srv"].stop()
        assert result["srv"] is None, "gcs started with no link to its download server"
        assert result["status"] == 1
        bound = FIRST_FILES * TRY_BUDGET_S + 2
        assert result["took"] <= bound, (result["took"], bound, result["lines"])
        text = "\n".join(result["lines"])
        assert relay.addr in text and re.search(r"timed out|refused|unreachable|reset|route|connect", text), text
    finally:
        relay.stop()
        downloads.clear_log()


def decisions(srv, ids):
    """{cluster id: channel} and the latency of each request, in seconds."""
    out, took = {}, []
    for cid in ids:
        t0 = time.perf_counter()
        status, headers, _ = srv.get(V1, {"User-Agent": "insights-operator/4.17.0 cluster/" + cid})
        took.append(time.perf_counter() - t0)
        assert status == 200, (cid, status)
        out[cid] = headers["X-Gcs-Channel"]
    return out, took


PARTITION_S = 14


def test_unleash_partition_while_serving(faults, downloads, unleash):
    """Unleash and the download server in a black hole for 14 s:
    no decision changes, no request fails or slows down, and polling comes
    back within two intervals of the backoff the metrics show."""
    admin, state, _ = unleash
    toggle = "gcs-netfault-partition"
    admin.set_rollout(toggle, 50)
    port = int(re.search(r":(\d+)/", state["UNLEASH_URL"]).group(1))
    unleash_relay, download_relay = Relay(faults, port), Relay(faults, downloads.port)
    refresh = 1.0
    env = env_via(download_relay.addr,
                  GCS_UNLEASH_URL="http://%s/api" % unleash_relay.addr,
                  GCS_UNLEASH_TOKEN=state["UNLEASH_BACKEND_TOKEN"],
                  GCS_UNLEASH_ENVIRONMENT="development", GCS_UNLEASH_REFRESH=refresh,
                  GCS_UNLEASH_TOGGLE=toggle, GCS_UNLEASH_METRICS_INTERVAL=0)
    srv, _, status, lines = start(faults, env)
    assert srv is not None, "\n".join(lines)
    try:
        M.wait_for(srv, "gcs_unleash_rollout_percent", 50, timeout=20)
        ids = ["%08x-0000-4000-8000-%012x" % (i, i * 7919) for i in range(200)]
        before, base = decisions(srv, ids)
        assert set(before.values()) == {"stable", "canary"}, "a 50% rollout gave one channel only"

        faults.black_hole()
        errors = M.read(srv, "gcs_unleash_fetch_total", result="error") or 0
        # A poll on a kept-alive connection waits for its transfer timeout
        # (10 s) before it counts as failed: partition for longer than that.
        t_end = time.time() + PARTITION_S
        during_all = []
        while time.time() < t_end:
            during, took = decisions(srv, ids)
            assert during == before, "a decision changed during the partition"
            during_all += took
        backoff = M.read(srv, "gcs_unleash_backoff_intervals")
        assert (M.read(srv, "gcs_unleash_fetch_total", result="error") or 0) > errors, \
            "no poll failed in %d s of partition" % PARTITION_S
        assert backoff and backoff >= 1, "the backoff does not show the failures: %s" % backoff
        # nothing on the request path waits for the network
        assert statistics.median(during_all) <= statistics.median(base) * 3 + 0.005, \
            (statistics.median(base), statistics.median(during_all))
        assert max(during_all) < 0.5, max(during_all)

        ok_before = sum(M.read(srv, "gcs_unleash_fetch_total", result=r) or 0
                        for r in ("ok", "not_modified"))
        faults.clear()
        backoff = M.read(srv, "gcs_unleash_backoff_intervals")
        healed = time.time()
        # The next poll comes at most (1 + backoff) intervals after the last
        # failure, and one interval of slack; a poll already in flight ends
        # at its connect timeout (3 s) or finishes on TCP's next retransmission.
        bound = refresh * (backoff + 2) + 3
        while sum(M.read(srv, "gcs_unleash_fetch_total", result=r) or 0
                  for r in ("ok", "not_modified")) <= ok_before:
            assert time.time() - healed < bound, "no successful poll %.1f s after the network came back " \
                "(backoff %s intervals)" % (bound, backoff)
            time.sleep(0.1)
        print("recovered %.2f s after the network came back, backoff %s, bound %.1f s"
              % (time.time() - healed, backoff, bound))
        after, _ = decisions(srv, ids)
        assert after == before
        # each success removes one skipped interval
        deadline = time.time() + refresh * (backoff + 2) * (backoff + 1) + 5
        while M.read(srv, "gcs_unleash_backoff_intervals") > 0:
            assert time.time() < deadline, "the backoff never came back to 0"
            time.sleep(0.2)
    finally:
        srv.stop()
        unleash_relay.stop()
        download_relay.stop()


def test_requests_keep_their_latency_behind_a_slow_unleash(faults, downloads, unleash):
    """Unleash 1.5 s away (the relay delays every chunk) and a poll every
    0.5 s: a poll is always in flight, and requests do not notice."""
    admin, state, _ = unleash
    toggle = "gcs-netfault-latency"
    admin.set_rollout(toggle, 50)
    port = int(re.search(r":(\d+)/", state["UNLEASH_URL"]).group(1))
    unleash_relay = Relay(faults, port, delay=1.5)
    env = unleash_env(state, toggle, STABLE_VERSION=STABLE, CANARY_VERSION=CANARY,
                      GCS_UNLEASH_URL="http://%s/api" % unleash_relay.addr,
                      GCS_UNLEASH_REFRESH=0.5, GCS_UNLEASH_METRICS_INTERVAL=0)
    srv, _, status, lines = start(faults, env)
    assert srv is not None, "\n".join(lines)
    try:
        M.wait_for(srv, "gcs_unleash_rollout_percent", 50, timeout=30)
        ids = ["%08x-1111-4000-8000-%012x" % (i, i) for i in range(100)]
        first, took = decisions(srv, ids)
        t_end = time.time() + 4
        while time.time() < t_end:
            again, more = decisions(srv, ids)
            assert again == first
            took += more
        assert statistics.median(took) < 0.02, statistics.median(took)
        assert max(took) < 0.5, max(took)
    finally:
        srv.stop()
        unleash_relay.stop()
