"""End to end: gcs as an Unleash SDK.

Most tests follow a real Unleash server (tests/support/unleash.sh), each with
its own toggle on one shared server; decisions are compared, ID by ID, with
the official Node SDK (unleash-client) evaluating the same answer offline.
What a real server cannot be made to do (answer 401 or 503 on demand, show
the headers it received) is tested against the small fault server of
tests/support/unleash_fault_server.py. The last test stops Unleash to check
the outage behaviour, so it stays last in this file.
"""
import http.client
import json
import os
import re
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ROOT, base_env, cluster_ids, run_gcs, unleash_env, wait_until
import metrics as M
from unleash_fault_server import FaultServer
import node_sdk

HARNESS = os.path.join(ROOT, "tests", "support", "unleash.sh")
STABLE, CANARY = "1.1.3", "1.2.0"
REFRESH = 1
V1 = "/api/gathering/gathering_rules"


def gcs_env(state, toggle, **extra):
    return unleash_env(state, toggle, GCS_UNLEASH_REFRESH=REFRESH, CANARY_VERSION=CANARY,
                       STABLE_VERSION=STABLE, **extra)


class Channels:
    """Asks a gcs server for many clusters at once over keep-alive connections."""

    def __init__(self, srv, workers=16):
        self.srv = srv
        self.workers = workers
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = self.local.conn = http.client.HTTPConnection(self.srv.host, self.srv.port,
                                                             timeout=10)
        return c

    def one(self, cluster_id):
        ua = f"insights-operator/4.17.0-abc cluster/{cluster_id}"
        for attempt in range(2):
            c = self._conn()
            try:
                c.request("GET", V1, headers={"User-Agent": ua})
                resp = c.getresponse()
                body = resp.read()
                break
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                if attempt:
                    raise
        assert resp.status == 200, (cluster_id, resp.status, body[:200])
        channel = resp.getheader("X-Gcs-Channel")
        version = json.loads(body)["version"]
        # The header and the body must tell the same story.
        assert (channel, version) in (("stable", STABLE), ("canary", CANARY)), (channel, version)
        return channel

    def many(self, ids):
        with ThreadPoolExecutor(self.workers) as pool:
            return dict(zip(ids, pool.map(self.one, ids)))


def node_decisions(toggle, ids, context=None):
    """The official Node SDK's isEnabled for each user ID."""
    return node_decisions_answer({"features": [toggle]}, toggle["name"], ids, context)


def node_decisions_answer(answer, name, ids, context=None):
    """The Node SDK's isEnabled of toggle name in a whole client API answer
    (its parents and segments included) for each user ID."""
    return dict(zip(ids, node_sdk.decisions(answer["features"], name, ids, context,
                                            answer.get("segments") or [])))


def lua_decisions(toggle, ids, context=None):
    """gcs's unleash.is_enabled for each user ID, run by lua5.4 with the
    server's own C evaluation (build/lua/unleash.so, the same file as
    build/lua/gcs.so) preparing the toggle as the server does."""
    program = """
        package.cpath = arg[1] .. "/build/lua/?.so;" .. package.cpath
        local cjson = require "cjson"
        local unleash = require "unleash"
        local req = cjson.decode(io.read("a"))
        local toggle = unleash.prepare(req.toggle)
        local out = {}
        for i, id in ipairs(req.userIds) do
          local ctx = {}
          for k, v in pairs(req.context) do ctx[k] = v end
          ctx.userId = id
          out[i] = unleash.is_enabled(toggle, ctx)
        end
        io.write(cjson.encode(out))
    """
    req = {"toggle": toggle, "context": context or {}, "userIds": list(ids)}
    out = subprocess.run(["lua5.4", "-e", program, "-", ROOT], input=json.dumps(req),
                         capture_output=True, text=True, check=True, timeout=120)
    return dict(zip(ids, json.loads(out.stdout)))


def share(decisions):
    return 100.0 * sum(1 for c in decisions.values() if c == "canary") / len(decisions)


def routing_script_with(tmp_path, force_canary=(), force_stable=()):
    """A copy of scripts/routing.lua with cluster IDs added to its lists
    (require "unleash" is built into gcs)."""
    with open(os.path.join(ROOT, "scripts", "routing.lua")) as f:
        text = f.read()
    for table, ids in (("force_canary", force_canary), ("force_stable", force_stable)):
        head = f"local {table} = {{\n"
        assert head in text, f"scripts/routing.lua has no '{head.strip()}' list"
        lines = "".join(f'  ["{i}"] = true,\n' for i in ids)
        text = text.replace(head, head + lines, 1)
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "routing.lua").write_text(text)
    return str(folder / "routing.lua")


# --- against the fault server ----------------------------------------------

FAST = 0.1  # the shortest GCS_UNLEASH_REFRESH gcs accepts


def rollout_feature(name, percent, constraints=()):
    """A toggle as the client API serves it: one flexibleRollout strategy."""
    return {"name": name, "enabled": True, "strategies": [{
        "name": "flexibleRollout", "constraints": list(constraints),
        "parameters": {"rollout": str(percent), "stickiness": "default", "groupId": name}}]}


def regex_on_user(pattern, inverted=False):
    return {"contextName": "userId", "operator": "REGEX", "value": pattern, "values": [],
            "inverted": inverted, "caseInsensitive": False}


def fault_env(fault, toggle, **extra):
    return base_env(GCS_UNLEASH_URL=fault.url, GCS_UNLEASH_TOKEN="test-token",
                    GCS_UNLEASH_REFRESH=FAST, GCS_UNLEASH_TOGGLE=toggle,
                    CANARY_VERSION=CANARY, STABLE_VERSION=STABLE, **extra)


def write_answer(path, answer):
    with open(path, "w") as f:
        json.dump(answer, f)
    return str(path)


def gcs_log(srv, msg=None, wait=0.0):
    return [r for r in srv.logs(wait) if msg is None or msg in r.get("msg", "")]


def check_gaps(polls, skips):
    """Poll i+1 came at least refresh * (1 + skips[i]) after poll i (a timer
    never fires early), and not much later (a loaded machine adds some)."""
    for i, skipped in enumerate(skips):
        gap = polls[i + 1].time - polls[i].time
        want = FAST * (1 + skipped)
        assert want - 0.03 <= gap <= want + 0.6, \
            f"poll {i + 1} came {gap:.2f} s after poll {i}, expected {want:.2f} s ({skipped} skipped)"


def backoff_from(srv, fault, status, n, timeout=10):
    """From the first poll answered `status`: gcs_unleash_backoff_intervals
    read after it and after each of the n - 1 polls that follow (between a
    poll's answer and the next poll, at least 0.2 s later here), and those
    polls with the one before."""
    deadline = time.monotonic() + timeout
    while True:
        at = [k for k, r in enumerate(fault.polls()) if r.status == status]
        if at:
            break
        assert time.monotonic() < deadline, f"no poll answered {status}"
        time.sleep(0.02)
    seen = []
    for j in range(n):
        fault.wait_polls(at[0] + j + 1, timeout)
        time.sleep(0.04)
        seen.append(M.read(srv, "gcs_unleash_backoff_intervals"))
    return seen, fault.polls()[at[0] - 1:at[0] + n]


@pytest.mark.parametrize("status", [401, 403, 404])
def test_backoff_skips_ten_intervals_on_a_refusal(server_factory, status):
    """As the Go SDK: 401, 403 and 404 skip ten intervals at once, with an
    error naming the status; then each success removes one."""
    with FaultServer({"features": [rollout_feature("t", 100)]}) as fault:
        srv = server_factory(fault_env(fault, "t"))
        fault.wait_polls(2, 5)
        fault.answer(status)
        seen, polls = backoff_from(srv, fault, status, 4)
    assert seen == [10.0, 9.0, 8.0, 7.0], seen
    check_gaps(polls, [0, 10, 9, 8])
    errors = [r for r in gcs_log(srv) if r.get("status") == str(status)]
    assert len(errors) == 1 and errors[0]["level"] == "error", errors
    assert f"HTTP {status}" in errors[0]["error"]
    assert errors[0]["skipped_intervals"] == "10"
    # The state from before the refusal kept serving.
    assert Channels(srv).one(cluster_ids(1, "refusal")[0]) == "canary"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_backoff_adds_one_interval_per_failure(server_factory, status):
    """429 and 5xx: one more skipped interval per consecutive failure; each
    success removes one."""
    with FaultServer({"features": [rollout_feature("t", 100)]}) as fault:
        srv = server_factory(fault_env(fault, "t"))
        fault.wait_polls(2, 5)
        fault.answer(status, status, status)
        seen, polls = backoff_from(srv, fault, status, 6)
    assert seen == [1.0, 2.0, 3.0, 2.0, 1.0, 0.0], seen
    check_gaps(polls, [0, 1, 2, 3, 2, 1])
    warned = gcs_log(srv, "Unleash poll failed")
    assert warned and f"HTTP {status}" in warned[0]["error"], warned
    assert M.read(srv, "gcs_unleash_fetch_total", result="error") == 3.0
    assert Channels(srv).one(cluster_ids(1, "failures")[0]) == "canary"


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SDK_HEADERS = ("unleash-client-spec", "unleash-appname", "unleash-instanceid",
               "unleash-connection-id", "unleash-interval", "unleash-sdk", "user-agent",
               "authorization")


def test_sdk_headers_on_every_call(server_factory):
    """Every poll, the registration and every metrics post carry the headers
    the official SDKs send; the connection ID is one UUID per process."""
    version = run_gcs(["--version"], base_env()).stdout.split()[-1]
    processes = []
    with FaultServer({"features": [rollout_feature("t", 100)]}) as fault:
        for run in range(2):
            before = len(fault.requests())
            srv = server_factory(fault_env(fault, "t", GCS_UNLEASH_APP_NAME="gcs-headers",
                                           GCS_UNLEASH_METRICS_INTERVAL=0.3))
            Channels(srv).many(cluster_ids(20, f"headers-{run}"))
            deadline = time.time() + 10
            while not fault.requests("/api/client/metrics")[run:]:
                assert time.time() < deadline, "no metrics posted"
                time.sleep(0.05)
            pid = srv.proc.pid
            srv.stop()
            processes.append((pid, fault.requests()[before:]))
    connection_ids = []
    for pid, calls in processes:
        kinds = {r.path.split("?")[0] for r in calls}
        assert kinds == {"/api/client/features", "/api/client/register",
                         "/api/client/metrics"}, kinds
        for r in calls:
            missing = [h for h in SDK_HEADERS if not r.headers.get(h)]
            assert not missing, f"{r}: no {missing}"
            h = r.headers
            assert h["unleash-client-spec"] == "5.2.0"
            assert h["unleash-appname"] == h["user-agent"] == "gcs-headers"
            assert h["authorization"] == "test-token"
            assert h["unleash-sdk"] == f"gcs:{version}"
            assert h["unleash-instanceid"].endswith(f"-{pid}"), h["unleash-instanceid"]
            assert UUID_RE.match(h["unleash-connection-id"]), h["unleash-connection-id"]
            # The interval of what is called: polls every refresh, metrics every interval.
            want = "100" if r.method == "GET" else "300"
            assert h["unleash-interval"] == want, (r, h["unleash-interval"])
        ids = {r.headers["unleash-connection-id"] for r in calls}
        assert len(ids) == 1, f"one process sent several connection IDs: {ids}"
        connection_ids.append(ids.pop())
        assert len({r.headers["unleash-instanceid"] for r in calls}) == 1
        # The bodies name the same connection as the headers.
        for r in calls:
            if r.method == "POST":
                assert r.json()["connectionId"] == connection_ids[-1]
        register = [r for r in calls if r.path == "/api/client/register"][0].json()
        assert register["sdkVersion"] == f"gcs:{version}"
        assert register["appName"] == "gcs-headers"
        assert "flexibleRollout" in register["strategies"]
        assert "applicationHostname" in register["strategies"]
    assert connection_ids[0] != connection_ids[1], "two processes shared a connection ID"


def test_route_registers_nothing_and_sends_no_metrics(tmp_path):
    """gcs --route polls the state once and evaluates it, as the server
    would, but is no application instance: no registration, no metrics."""
    with FaultServer({"features": [rollout_feature("t", 100)]}) as fault:
        env = fault_env(fault, "t", GCS_UNLEASH_METRICS_INTERVAL=0.1)
        out = run_gcs(["--route", cluster_ids(1, "route")[0]], env)
        time.sleep(0.5)
        calls = fault.requests()
    assert out.returncode == 0, out.stderr
    assert "channel:  canary" in out.stdout and "unleash rollout" in out.stdout, out.stdout
    assert [r.method for r in calls] and all(r.method == "GET" for r in calls), calls
    assert not [r for r in calls if r.path.startswith(("/api/client/register",
                                                       "/api/client/metrics"))]


def test_bootstrap_until_the_first_poll_and_the_backup_wins(server_factory, tmp_path):
    """GCS_UNLEASH_BOOTSTRAP (the client API format) is the state until a
    poll succeeds; a backup from an earlier run wins over it at start."""
    ids = cluster_ids(200, "bootstrap")
    boot = write_answer(tmp_path / "bootstrap.json", {"features": [rollout_feature("t", 100)]})
    with FaultServer({"features": [rollout_feature("t", 0)]}, default=503) as fault:
        srv = server_factory(fault_env(fault, "t", GCS_UNLEASH_BOOTSTRAP=boot))
        fault.wait_polls(1, 5)
        assert set(Channels(srv).many(ids).values()) == {"canary"}, "bootstrap not used"
        fault.default = 200
        deadline = time.time() + 10
        while set(Channels(srv).many(ids).values()) != {"stable"}:
            assert time.time() < deadline, "the first successful poll did not replace the bootstrap"
            time.sleep(0.1)
        srv.stop()

        # A backup (written by an earlier run) and the bootstrap: the backup,
        # the last state Unleash gave, wins while Unleash is down.
        backup = write_answer(tmp_path / "backup.json", {"features": [rollout_feature("t", 0)]})
        fault.default = 503
        srv = server_factory(fault_env(fault, "t", GCS_UNLEASH_BOOTSTRAP=boot,
                                       GCS_UNLEASH_BACKUP=backup))
        assert set(Channels(srv).many(ids).values()) == {"stable"}
    # Without a URL the bootstrap file is the whole state.
    env = base_env(GCS_UNLEASH_BOOTSTRAP=boot, GCS_UNLEASH_TOGGLE="t", CANARY_VERSION=CANARY)
    srv = server_factory(env)
    assert set(Channels(srv).many(ids).values()) == {"canary"}
    assert M.read(srv, "gcs_unleash_rollout_percent") == 100.0


@pytest.mark.parametrize("where", ["missing directory", "read-only directory"])
def test_a_backup_that_cannot_be_written_is_counted_retried_and_never_stops_serving(
        server_factory, tmp_path, where):
    """GCS_UNLEASH_BACKUP in a directory gcs cannot write: one warning, the
    answers follow Unleash as ever, the failed writes are counted and
    gcs_unleash_backup_behind is 1; once the directory is usable the next
    poll writes the backup, and the gauge goes back to 0."""
    ids = cluster_ids(100, "backup")
    state_dir = tmp_path / "state"
    if where == "read-only directory":
        # root writes anywhere on a plain directory; a read-only bind of it
        # is what a full or read-only volume looks like to gcs
        state_dir.mkdir()
        subprocess.run(["mount", "--bind", str(state_dir), str(state_dir)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(state_dir)], check=True)
    backup = state_dir / "backup.json"
    try:
        with FaultServer({"features": [rollout_feature("t", 100)]}) as fault:
            srv = server_factory(fault_env(fault, "t", GCS_UNLEASH_BACKUP=str(backup)))
            M.wait_for(srv, "gcs_unleash_backup_behind", 1, timeout=10)
            assert set(Channels(srv).many(ids).values()) == {"canary"}
            fault.wait_polls(len(fault.polls()) + 3, 10)
            failed = M.read(srv, "gcs_unleash_backup_writes_total", result="error")
            assert failed >= 2, "not retried after the polls: %s" % failed
            assert M.read(srv, "gcs_unleash_backup_writes_total", result="ok") == 0
            assert len(gcs_log(srv, "Unleash backup not written")) == 1, "warned once"
            assert not backup.exists()

            if where == "read-only directory":
                subprocess.run(["umount", str(state_dir)], check=True)
            else:
                state_dir.mkdir()
            M.wait_for(srv, "gcs_unleash_backup_behind", 0, timeout=10)
            assert M.read(srv, "gcs_unleash_backup_writes_total", result="ok") == 1
            assert json.loads(backup.read_text())["features"][0]["name"] == "t"
            assert gcs_log(srv, "Unleash backup written again")
            assert set(Channels(srv).many(ids).values()) == {"canary"}
    finally:
        if where == "read-only directory":
            subprocess.run(["umount", str(state_dir)], check=False, capture_output=True)


def test_unusable_pattern_logged_once_per_state_counted_and_never_holds(server_factory):
    """A REGEX outside RE2's syntax (a lookahead; Go's SDK cannot compile it)
    never holds, inverted or not; it is logged once per new state, not per
    poll, and gcs_unleash_unusable_constraints counts it."""
    ids = cluster_ids(300, "unusable")
    nines = [i for i in ids if i.startswith("9")] or ["9" + ids[0][1:]]
    usable = {"features": [rollout_feature("t", 100, [regex_on_user("^9")])]}
    with FaultServer(usable) as fault:
        srv = server_factory(fault_env(fault, "t"))
        got = Channels(srv).many(ids + nines)
        assert all(got[i] == ("canary" if i.startswith("9") else "stable") for i in got)
        assert M.read(srv, "gcs_unleash_unusable_constraints") == 0.0

        fault.features = {"features": [rollout_feature("t", 100, [regex_on_user("^(?=9)")])]}
        M.wait_for(srv, "gcs_unleash_unusable_constraints", 1.0, timeout=5)
        assert set(Channels(srv).many(ids + nines).values()) == {"stable"}
        polls = len(fault.polls())
        fault.wait_polls(polls + 10, 5)  # the same state, polled again and again
        warned = gcs_log(srv, "cannot be used", wait=0.2)
        assert len(warned) == 1, warned
        assert warned[0]["problem"].startswith(
            "/features/0/strategies/0/constraints/0/value: lookahead"), warned[0]
        assert warned[0]["toggle"] == "t"

        # A new state: two such constraints, one inverted; logged again, once each.
        fault.features = {"features": [rollout_feature("t", 100, [
            regex_on_user("^(?=9)", inverted=True), regex_on_user("(a)\\1", inverted=True)])]}
        M.wait_for(srv, "gcs_unleash_unusable_constraints", 2.0, timeout=5)
        assert set(Channels(srv).many(ids + nines).values()) == {"stable"}
        fault.wait_polls(len(fault.polls()) + 10, 5)
        warned = gcs_log(srv, "cannot be used", wait=0.2)
        assert len(warned) == 3, warned
        assert "backreference" in warned[2]["problem"]

        fault.features = usable
        M.wait_for(srv, "gcs_unleash_unusable_constraints", 0.0, timeout=5)
        assert Channels(srv).many(ids + nines) == got


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_backtracking_regex_costs_like_a_benign_one(server_factory, tmp_path):
    """One REGEX constraint on userId designed to backtrack on a cluster ID
    (nested quantifiers over its alphabet, then a class it lacks) costs gcs
    no more CPU per request than a benign pattern, within a factor of 2.
    Both never match a UUID, so both answer stable: only the matching
    differs. The two servers are measured in turn, A B B A, each over
    12,000 requests: about 25 clock ticks (10 ms) for the benign one, so the
    tick and the scheduler's noise are far from moving a factor of 2."""
    patterns = {"benign": "^[g-z]", "backtracking": "([0-9a-f-]+)+[g-z]"}
    servers = {}
    for kind, pattern in patterns.items():
        boot = write_answer(tmp_path / f"{kind}.json",
                            {"features": [rollout_feature("t", 100, [regex_on_user(pattern)])]})
        servers[kind] = server_factory(base_env(GCS_UNLEASH_BOOTSTRAP=boot, GCS_UNLEASH_TOGGLE="t",
                                                CANARY_VERSION=CANARY, GCS_THREADS=1))
    ids = cluster_ids(6000, "regex-cost")
    ticks = {kind: 0 for kind in servers}
    for kind in ("benign", "backtracking", "backtracking", "benign"):
        srv = servers[kind]
        before = cpu_ticks(srv.proc.pid)
        got = Channels(srv, workers=4).many(ids)
        ticks[kind] += cpu_ticks(srv.proc.pid) - before
        assert set(got.values()) == {"stable"}, kind
    print(f"\nCPU ticks over {2 * len(ids)} requests each: {ticks}")
    assert ticks["benign"] >= 12, f"too few ticks to compare: {ticks}"
    assert ticks["backtracking"] <= 2 * ticks["benign"], \
        f"the backtracking pattern cost {ticks['backtracking'] / ticks['benign']:.1f}x the benign one"


def test_lua_evaluation_matches_the_node_sdk(unleash):
    """gcs's evaluation against the official SDK for 10,000 IDs on toggles
    as the server serves them, including OCP-version constraints."""
    admin, _, _ = unleash
    ids = cluster_ids(10000, "lua-vs-node")
    ocp_rule = [{"contextName": "ocpVersion", "operator": "SEMVER_GT", "value": "4.16.0",
                 "values": [], "inverted": False, "caseInsensitive": False}]
    cases = [
        ("e2e-lua-30", 30, []),
        ("e2e-lua-70", 70, []),
        ("e2e-lua-ocp", 50, ocp_rule),
    ]
    compared = 0
    for name, pct, constraints in cases:
        admin.set_rollout(name, pct, constraints)
        toggle = admin.wait_served(name, True, pct, constraints)
        for ctx in ({}, {"properties": {"ocpVersion": "4.17.3"}},
                    {"properties": {"ocpVersion": "4.14.0"}}):
            lua = lua_decisions(toggle, ids, ctx)
            node = node_decisions(toggle, ids, ctx)
            mismatches = [i for i in ids if lua[i] != node[i]]
            assert not mismatches, f"{name} {ctx}: {len(mismatches)} differ, e.g. {mismatches[:3]}"
            compared += len(ids)
            if constraints and ctx.get("properties", {}).get("ocpVersion") == "4.14.0":
                assert not any(lua.values())  # the constraint excludes 4.14
            elif constraints and not ctx:
                assert not any(lua.values())  # no ocpVersion: the constraint fails
            else:
                assert abs(100.0 * sum(lua.values()) / len(ids) - pct) < 1.5
    print(f"\nLua and Node SDK agree on {compared} decisions")


def test_toggle_off_or_zero_percent_is_all_stable(unleash, server_factory):
    admin, state, _ = unleash
    name = "e2e-off"
    admin.set_rollout(name, 100)
    admin.disable(name)
    admin.wait_served(name, False, 100)
    srv = server_factory(gcs_env(state, name))
    ids = cluster_ids(1000, "off")
    M.wait_for(srv, "gcs_unleash_rollout_percent", 0.0, timeout=10)
    got = Channels(srv).many(ids)
    assert set(got.values()) == {"stable"}, "a disabled toggle (even at 100%) routes no canary"

    admin.set_rollout(name, 0)
    admin.wait_served(name, True, 0)
    time.sleep(REFRESH + 1)
    got = Channels(srv).many(ids)
    assert set(got.values()) == {"stable"}
    ok = M.read(srv, "gcs_unleash_fetch_total", result="ok")
    assert ok is not None and ok >= 1


def test_allowlist_and_denylist_beat_the_rollout(unleash, server_factory, tmp_path):
    admin, state, _ = unleash
    name = "e2e-lists"
    allowed, denied = cluster_ids(2, "lists")
    script = routing_script_with(tmp_path, force_canary=[allowed], force_stable=[denied])
    others = cluster_ids(300, "lists-others")

    admin.set_rollout(name, 0)
    admin.wait_served(name, True, 0)
    srv = server_factory(gcs_env(state, name, GCS_ROUTING_SCRIPT=script))
    M.wait_for(srv, "gcs_unleash_rollout_percent", 0.0, timeout=10)
    ch = Channels(srv)
    assert ch.one(allowed) == "canary"
    assert set(ch.many(others).values()) == {"stable"}

    admin.set_rollout(name, 100)
    admin.wait_served(name, True, 100)
    M.wait_for(srv, "gcs_unleash_rollout_percent", 100.0, timeout=REFRESH + 10)
    assert ch.one(denied) == "stable"
    assert ch.one(allowed) == "canary"
    assert set(ch.many(others).values()) == {"canary"}


def test_registered_and_yes_no_counts_equal_the_decisions(unleash, server_factory):
    """The real Unleash lists gcs as an application instance (sdkVersion
    gcs:<version>), and the toggle's yes/no counts it shows are the decisions
    gcs made: one per request that evaluated the toggle, none for requests
    that never reached it, none from gcs --route."""
    admin, state, _ = unleash
    name = "e2e-metrics"
    app = "gcs-e2e-" + uuid.uuid4().hex[:8]
    version = run_gcs(["--version"], base_env()).stdout.split()[-1]
    admin.set_rollout(name, 40)
    created = time.time()
    admin.wait_served(name, True, 40)
    env = gcs_env(state, name, GCS_UNLEASH_APP_NAME=app, GCS_UNLEASH_METRICS_INTERVAL=1)
    srv = server_factory(env)
    M.wait_for(srv, "gcs_unleash_rollout_percent", 40.0, timeout=10)
    # Unleash drops metrics of toggles it does not know, by a list of names
    # it caches for 10 s: the toggle must be older than that.
    time.sleep(max(0.0, created + 11 - time.time()))

    ids = cluster_ids(800, "metrics")
    answers = list(Channels(srv).many(ids).values())
    answers += list(Channels(srv).many(ids[:300]).values())  # asked again: decided again
    for _ in range(25):  # no cluster ID: the script answers before the toggle
        status, headers, _ = srv.get(V1)
        assert status == 200 and headers["X-Gcs-Channel"] == "stable"
    out = run_gcs(["--route", ids[0]], env)
    assert out.returncode == 0, out.stderr
    yes = answers.count("canary")
    no = answers.count("stable")
    assert yes and no
    pid = srv.proc.pid
    srv.stop()  # sends what is left as one last bucket

    # Unleash writes received metrics every 5 s and instances every 20 s.
    deadline = time.time() + 60
    while sum(admin.toggle_usage(name, app)) < yes + no and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(6)  # and nothing more arrives
    got = admin.toggle_usage(name, app)
    assert got == (yes, no), f"Unleash counted (yes, no) = {got}, gcs decided ({yes}, {no})"
    application = wait_until("Unleash lists the instance",
                             lambda: (admin.application(app) or {}).get("instances"), timeout=60)
    # One instance: the server. gcs --route did not register.
    assert len(application) == 1, application
    instance = application[0]
    assert instance["instanceId"].endswith(f"-{pid}"), instance
    assert instance["sdkVersion"] == f"gcs:{version}", instance


def test_parent_toggle_switches_decisions_as_the_node_sdk(unleash, server_factory):
    """A child toggle depending on a parent (Unleash's dependent features):
    the parent off turns the child off, on turns it back, ID by ID as the
    Node SDK decides on the same answer. The parent is outside the child's
    namePrefix, so gcs must ask for the parents itself."""
    admin, state, _ = unleash
    parent, child = "e2e-kill-switch", "e2e-dependent"
    admin.set_rollout(parent, 100)
    admin.set_rollout(child, 50)
    admin.add_dependency(child, parent)
    wait_until("the dependency served",
               lambda: (admin.served(child) or {}).get("dependencies"), timeout=30)
    srv = server_factory(gcs_env(state, child))
    ids = cluster_ids(2000, "parent")
    ch = Channels(srv)

    def follows_node(parent_on):
        admin.wait_served(parent, parent_on)
        node = node_decisions_answer(admin.client_features(), child, ids)
        want = {i: "canary" if node[i] else "stable" for i in ids}
        wait_until(f"gcs decides as the Node SDK with the parent {'on' if parent_on else 'off'}",
                   lambda: ch.many(ids) == want, timeout=REFRESH + 10, every=0.3)
        return want

    on = follows_node(True)
    assert 45 <= share(on) <= 55, share(on)
    admin.disable(parent)
    assert set(follows_node(False).values()) == {"stable"}
    admin.enable(parent)
    assert follows_node(True) == on, "the same clusters are back in the canary"


def test_application_hostname_decides_as_the_node_sdk(unleash, server_factory):
    """applicationHostname on the real Unleash: gcs, run with HOSTNAME set
    as Kubernetes sets it to the pod name, decides as the Node SDK run with
    the same HOSTNAME, for host lists that name it in another case, that
    do not name it, and that name it with the white space only the ends of
    the list keep."""
    admin, state, _ = unleash
    name = "e2e-hostname"
    pod = "gcs-e2e-pod-" + uuid.uuid4().hex[:6]
    if admin.feature(name) is None:
        admin.create_feature(name)
    srv = server_factory(gcs_env(state, name, HOSTNAME=pod))
    ids = cluster_ids(200, "hostname")
    ch = Channels(srv)
    cases = [
        (f"other-pod, {pod.upper()} ,more", True),
        ("other-pod,gcs-e2e-pod", False),
        (f" {pod}", False),
    ]
    for host_names, expected in cases:
        for old in admin.strategies(name):
            admin.delete_strategy(name, old["id"])
        admin.add_strategy(name, {"name": "applicationHostname", "constraints": [],
                                  "parameters": {"hostNames": host_names}})
        admin.enable(name)  # removing its last strategy may have turned it off
        wait_until(f"Unleash serves hostNames {host_names!r}",
                   lambda: (admin.served(name) or {}).get("enabled") and
                   [s["parameters"].get("hostNames") for s in admin.served(name)["strategies"]]
                   == [host_names], timeout=30)
        node = node_sdk.decisions(admin.client_features()["features"], name, ids,
                                  hostname=pod)
        assert set(node) == {expected}, f"the Node SDK on {host_names!r}: {set(node)}"
        want = {i: "canary" if on else "stable" for i, on in zip(ids, node)}
        wait_until(f"gcs decides as the Node SDK on {host_names!r}",
                   lambda: ch.many(ids) == want, timeout=REFRESH + 10, every=0.3)


def test_segments_apart_and_inlined_decide_alike(unleash, server_factory, tmp_path):
    """Unleash serves segments apart when the SDK sends Unleash-Client-Spec
    and inlines them otherwise. Both forms, fetched from the real server and
    given to gcs as GCS_UNLEASH_BOOTSTRAP (no URL), decide alike, and as the
    Node SDK does."""
    admin, _, _ = unleash
    name = "e2e-segments"
    tail = admin.create_segment("e2e-tail", [{
        "contextName": "userId", "operator": "STR_ENDS_WITH", "inverted": False,
        "caseInsensitive": True, "values": ["0", "1", "2", "3", "4", "5", "6", "7", "A", "B"]}])
    ids = cluster_ids(2000, "segments")
    excluded = ids[:40]
    deny = admin.create_segment("e2e-deny", [{
        "contextName": "userId", "operator": "NOT_IN", "inverted": False,
        "caseInsensitive": False, "values": excluded}])
    sid = admin.set_rollout(name, 70)
    strategy = admin.flexible_rollout(name, 70)
    strategy["segments"] = [tail, deny]
    admin.update_strategy(name, sid, strategy)
    wait_until("the segments served", lambda: len(
        (admin.served(name) or {"strategies": [{}]})["strategies"][0].get(
            "constraints", [])) == 2, timeout=30)

    # Each form of the answer is cached apart and may lag the other.
    def served_text(spec=None):
        text = admin.client_features_text(spec)
        return text if any(t["name"] == name for t in json.loads(text)["features"]) else None

    apart_text = wait_until("the toggle served with segments apart", lambda: served_text("5.2.0"),
                            timeout=30)
    inline_text = wait_until("the toggle served inlined", served_text, timeout=30)
    apart, inline = json.loads(apart_text), json.loads(inline_text)
    served_apart = [t for t in apart["features"] if t["name"] == name][0]["strategies"][0]
    served_inline = [t for t in inline["features"] if t["name"] == name][0]["strategies"][0]
    assert sorted(served_apart["segments"]) == sorted([tail, deny]), served_apart
    assert served_apart["constraints"] == [] and {s["id"] for s in apart["segments"]} >= {tail, deny}
    assert len(served_inline["constraints"]) == 2 and not inline.get("segments"), served_inline

    decisions = {}
    for form, text in (("apart", apart_text), ("inline", inline_text)):
        boot = tmp_path / f"{form}.json"
        boot.write_text(text)
        env = base_env(GCS_UNLEASH_BOOTSTRAP=str(boot), GCS_UNLEASH_TOGGLE=name,
                       CANARY_VERSION=CANARY)
        decisions[form] = Channels(server_factory(env)).many(ids)
        for i in ids[:3] + ids[100:103]:
            out = run_gcs(["--route", i], env)
            assert f"channel:  {decisions[form][i]}" in out.stdout, (form, i, out.stdout)
    assert decisions["apart"] == decisions["inline"]
    node = node_decisions_answer(apart, name, ids)
    assert decisions["apart"] == {i: "canary" if node[i] else "stable" for i in ids}
    assert all(decisions["apart"][i] == "stable" for i in excluded)
    # About 70% of the 10 of 16 final hex digits the tail segment lets in.
    assert 38 <= share(decisions["apart"]) <= 50, share(decisions["apart"])


def test_rollout_follows_unleash_and_survives_its_outage(unleash, server_factory, tmp_path):
    """30%, then 70%, then Unleash stopped, then gcs restarted from its backup.
    Stops the shared Unleash server: keep this test last."""
    admin, state, harness_env = unleash
    name = "e2e-rollout"
    ids = cluster_ids(10000, "rollout")
    backup = str(tmp_path / "unleash-backup.json")

    admin.set_rollout(name, 30)
    toggle30 = admin.wait_served(name, True, 30)
    a = server_factory(gcs_env(state, name, GCS_UNLEASH_BACKUP=backup))
    b = server_factory(gcs_env(state, name))
    for srv in (a, b):
        M.wait_for(srv, "gcs_unleash_rollout_percent", 30.0, timeout=10)

    at30 = Channels(a).many(ids)
    assert 28.5 <= share(at30) <= 31.5, share(at30)
    assert Channels(a).many(ids) == at30, "a cluster's answer changed between requests"
    assert Channels(b).many(ids) == at30, "two gcs processes disagree"
    node30 = node_decisions(toggle30, ids)
    assert {i: ("canary" if node30[i] else "stable") for i in ids} == at30, \
        "gcs disagrees with the Node SDK at 30%"
    canary30 = {i for i, c in at30.items() if c == "canary"}

    admin.set_rollout(name, 70)
    toggle70 = admin.wait_served(name, True, 70)
    node70 = node_decisions(toggle70, ids)
    newly = [i for i in ids if node70[i] and i not in canary30][:200]
    assert newly
    # The Unleash client API serves 70% now; gcs must follow within refresh + 2 s.
    deadline = time.time() + REFRESH + 2
    ch = Channels(a)
    while set(ch.many(newly).values()) != {"canary"}:
        assert time.time() < deadline, "gcs did not follow the rollout to 70% in refresh + 2 s"
        time.sleep(0.1)
    at70 = Channels(a).many(ids)
    assert 68.5 <= share(at70) <= 71.5, share(at70)
    assert all(at70[i] == "canary" for i in canary30), "a 30% canary cluster lost the canary"
    assert {i: ("canary" if node70[i] else "stable") for i in ids} == at70, \
        "gcs disagrees with the Node SDK at 70%"
    # The backup is the client API answer itself, as the SDKs keep it.
    with open(backup) as f:
        kept = json.load(f)
    assert [t["strategies"][0]["parameters"]["rollout"] for t in kept["features"]
            if t["name"] == name] == ["70"], kept

    subprocess.run([HARNESS, "stop"], env=harness_env, check=True, timeout=120)
    # Polls back off exponentially once they fail (the harness's stop may
    # already have caused failures), so wait for the next one rather than a
    # fixed time.
    errors_before = M.read(a, "gcs_unleash_fetch_total", result="error") or 0
    deadline = time.time() + 40
    while (M.read(a, "gcs_unleash_fetch_total", result="error") or 0) <= errors_before:
        assert time.time() < deadline, "no failed Unleash poll counted after the outage"
        time.sleep(0.2)
    assert Channels(a).many(ids) == at70, "answers changed when Unleash went away"

    a.stop()
    a2 = server_factory(gcs_env(state, name, GCS_UNLEASH_BACKUP=backup))
    assert Channels(a2).many(ids) == at70, "restart from the backup changed answers"
    # Without the backup, the same outage leaves the toggle unknown: all stable.
    c = server_factory(gcs_env(state, name))
    assert set(Channels(c).many(ids[:500]).values()) == {"stable"}
