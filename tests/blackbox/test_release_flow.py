"""The canary release of the operations flow, played end to end.

Real peers on 127.0.0.1: a download server holding conditions versions 1.0.1
to 1.0.4 (copies of rules/1.2.0 whose "version" fields name the copy; 1.0.4 is
the newer tag that replaces the 1.0.3 canary),
a real Unleash 7 on PostgreSQL holding the toggle, and build/gcs processes
replacing one another as a rolling update with maxUnavailable: 0 does
(tests/blackbox/rolling.py). A client thread calls the service for a canary
cluster and a normal cluster, v1 and v2, during the whole run; not one of
its requests may fail.

The two clusters are chosen by the Unleash SDKs' own arithmetic, computed
here independently of gcs: a flexibleRollout of X% with stickiness default
holds a cluster when murmur3("<groupId>:<cluster id>") % 100 + 1 <= X. The
canary cluster sits exactly on the boundary (X), the normal one just past it
(X + 1), so an off-by-one in gcs's evaluation shows.
"""
import json
import os
import random
import re
import shutil
import tempfile
import time
import uuid

import pytest

from conftest import base_env, route_fields, run_gcs
import metrics as M
from rolling import Client, Deployment, Service, user_agent
from trees import Tree
from download_server import DownloadServer

TOGGLE = "insights-operator-gathering-conditions-service"
ROLLOUT = 50
REFRESH = 1
VERSIONS = ("1.0.1", "1.0.2", "1.0.3", "1.0.4")
OCP = "4.17.0"
V1 = "/api/gathering/gathering_rules"
V2 = "/api/gathering/v2/%s/gathering_rules" % OCP


# --- Unleash's stickiness, computed without gcs -------------------------------

def murmur3_32(data, seed=0):
    """MurmurHash3 x86 32-bit, the hash every Unleash SDK normalises with."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF

    def scramble(k):
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        return (k * c2) & mask

    h = seed & mask
    body = len(data) - len(data) % 4
    for i in range(0, body, 4):
        h ^= scramble(int.from_bytes(data[i:i + 4], "little"))
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    if body < len(data):
        h ^= scramble(int.from_bytes(data[body:], "little"))
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    return h ^ (h >> 16)


def normalized(cluster_id, group_id=TOGGLE):
    return murmur3_32(("%s:%s" % (group_id, cluster_id)).encode()) % 100 + 1


def cluster_with(value, rng):
    """A cluster ID (UUID v4) whose normalized value for the toggle is value."""
    while True:
        cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if normalized(cid) == value:
            return cid


def test_murmur3_matches_unleash_reference_values():
    # Published values: MurmurHash3's reference implementation, and the
    # client specification's normalizedValue("123", "gr1") == 73.
    assert murmur3_32(b"") == 0
    assert murmur3_32(b"hello") == 0x248BFA47
    assert murmur3_32(b"The quick brown fox jumps over the lazy dog") == 0x2E4FF723
    assert normalized("123", "gr1") == 73


# --- peers ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def unleash(unleash):
    """The shared real Unleash, with the toggle at 0% in environment development."""
    admin = unleash[0]
    admin.set_rollout(TOGGLE, 0)
    return admin


@pytest.fixture(scope="module")
def downloads():
    """The download server holding every version the flow uses."""
    root = tempfile.mkdtemp(prefix="gcs-release-conditions.")
    try:
        tree = Tree(root)
        for version in VERSIONS:
            build_tree(tree, version)
        srv = DownloadServer(root).start()
        yield srv
        srv.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def build_tree(tree, version):
    """rules/1.2.0 copied as version with every file's "version" set to
    version, so that each version's bodies differ and name it."""
    target = tree.copy("1.2.0", as_version=version)
    for d, _, files in os.walk(target):
        for name in files:
            rel = os.path.relpath(os.path.join(d, name), target)
            doc = tree.load(version, rel)
            if isinstance(doc, dict) and "version" in doc:
                doc["version"] = version
                tree.dump(version, rel, doc)


# --- what a cluster receives ---------------------------------------------------

def receives(service, cluster):
    """{"v1": (version, channel), "v2": (...)} from the process serving now."""
    got = {}
    for api, path in (("v1", V1), ("v2", V2)):
        p = service.target
        status, headers, body = p.get(path, {"User-Agent": user_agent(cluster)})
        assert status == 200, "%s %s: HTTP %d %r" % (p.name, path, status, body[:200])
        got[api] = (json.loads(body)["version"], headers.get("X-Gcs-Channel"))
    return got


def both(version, channel):
    return {"v1": (version, channel), "v2": (version, channel)}


def wait_receives(service, cluster, want, timeout):
    """Waits for an eventual change (Unleash polling); returns seconds taken."""
    start = time.monotonic()
    while True:
        got = receives(service, cluster)
        if got == want:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            assert got == want, "still %s after %ss" % (got, timeout)
        time.sleep(0.05)


def wait_unleash_serves(admin, percent, timeout=20):
    """Unleash itself answers SDKs with the new rollout (its own cache lags)."""
    deadline = time.monotonic() + timeout
    while True:
        for f in admin.client_features()["features"]:
            rollouts = [s["parameters"].get("rollout") for s in f["strategies"]]
            if f["name"] == TOGGLE and f["enabled"] and rollouts == [str(percent)]:
                return
        assert time.monotonic() < deadline, "Unleash does not serve %d%%" % percent
        time.sleep(0.05)


def route(env, cluster):
    """gcs --route, as the runbook checks one cluster: {field: value}."""
    res = run_gcs(["--route", cluster, "--ocp-version", OCP], env)
    assert res.returncode == 0, "gcs --route: exit %d\n%s\n%s" % (res.returncode, res.stdout, res.stderr)
    return route_fields(res.stdout)


# --- the flow -------------------------------------------------------------------

def test_canary_release_flow(unleash, downloads):
    rng = random.Random(20240819)
    canary_cluster = cluster_with(ROLLOUT, rng)
    normal_cluster = cluster_with(ROLLOUT + 1, rng)

    def env(stable, canary="none"):
        return base_env(
            STABLE_VERSION=stable, CANARY_VERSION=canary,
            GCS_CONDITIONS_URL=downloads.url + "/{version}",
            GCS_UNLEASH_URL=unleash.url, GCS_UNLEASH_TOKEN=unleash.backend_token,
            GCS_UNLEASH_ENVIRONMENT="development", GCS_UNLEASH_TOGGLE=TOGGLE,
            GCS_UNLEASH_REFRESH=REFRESH, GCS_SHUTDOWN_GRACE=1, GCS_THREADS=2)

    service = Service()
    deployment = Deployment(service)
    client = Client(service, [("canary v1", canary_cluster, V1), ("canary v2", canary_cluster, V2),
                              ("normal v1", normal_cluster, V1), ("normal v2", normal_cluster, V2)])
    # What each cluster must get, continuously, from a process with a canary
    # loaded: the normal cluster never leaves stable; the canary cluster is
    # stable at 0% and canary at X%, either only while a change propagates.
    client.expect(normal_cluster, "stable")
    client.expect(canary_cluster, "stable")
    propagation = []
    started = time.monotonic()

    def expect(canary, normal):
        assert receives(service, canary_cluster) == canary, "canary cluster"
        assert receives(service, normal_cluster) == normal, "normal cluster"

    def roll(stable, canary="none"):
        res = deployment.roll(env(stable, canary))
        assert res.ready, "%s/%s did not come up: %s" % (stable, canary, res.process.describe())
        assert res.old_exit == 0, "the replaced process after SIGTERM: " + res.old.describe()
        status, body = res.in_flight
        assert status == 200 and json.loads(body)["version"] == res.old.stable, \
            "request in flight at SIGTERM: %s %r" % (status, body[:200])
        client.wait_served(res.process, 8)
        return res.process

    def crash_loop(stable, canary, missing):
        before = service.target
        res = deployment.roll(env(stable, canary))
        assert not res.ready, "%s/%s came up with a version that does not exist" % (stable, canary)
        assert res.exit_code == 1, res.process.describe()
        lines = [line for line in res.process.log() if missing in line]
        assert lines, "no line names %s: %s" % (missing, res.process.describe())
        assert any(re.search(r"\b404\b", line) for line in lines), res.process.describe()
        assert service.target is before and before.proc.poll() is None, \
            "the old process must keep serving"
        client.wait_served(before, client.served_by(before) + 8)

    def raise_rollout(percent, canary_gets):
        client.expect(canary_cluster, "stable", "canary")
        unleash.set_rollout(TOGGLE, percent)
        wait_unleash_serves(unleash, percent)
        propagation.append(wait_receives(service, canary_cluster, canary_gets, REFRESH + 10))
        client.expect(canary_cluster, "canary")

    try:
        # 1. Steady state: STABLE 1.0.1, no canary, population 0%.
        deployment.first(env("1.0.1"))
        client.start()
        client.wait_served(service.target, 8)
        expect(both("1.0.1", "stable"), both("1.0.1", "stable"))

        # 2. The Rules Team's pull request: CANARY 1.0.2, population still 0%.
        p = roll("1.0.1", "1.0.2")
        assert M.total(M.scrape(p), "gcs_conditions_info", channel="canary", version="1.0.2") == 1
        assert M.total(M.scrape(p), "gcs_conditions_info", channel="stable", version="1.0.1") == 1
        expect(both("1.0.1", "stable"), both("1.0.1", "stable"))

        # 3. A version that is not on the download server: CrashLoopBackOff,
        # the old process keeps serving, the pull request is reverted.
        crash_loop("1.0.1", "1.0.9", "canary 1.0.9")
        crash_loop("1.0.8", "1.0.2", "stable 1.0.8")
        expect(both("1.0.1", "stable"), both("1.0.1", "stable"))

        # 4. The Rules Team raises the population to X%.
        raise_rollout(ROLLOUT, both("1.0.2", "canary"))
        expect(both("1.0.2", "canary"), both("1.0.1", "stable"))
        assert M.total(M.scrape(service.target), "gcs_unleash_rollout_percent") == ROLLOUT
        # The runbook's check of one cluster, against the same Unleash state.
        got = route(env("1.0.1", "1.0.2"), canary_cluster)
        assert (got["channel"], got["version"]) == ("canary", "1.0.2"), got
        assert "unleash" in got["reason"], got
        assert got["file"].startswith("v2/remote_configurations/config_default.json"), got
        got = route(env("1.0.1", "1.0.2"), normal_cluster)
        assert (got["channel"], got["version"]) == ("stable", "1.0.1"), got

        # 5. The canary archives are wrong: revert. Unleash still says X%,
        # which does not matter without a canary.
        roll("1.0.1")
        expect(both("1.0.1", "stable"), both("1.0.1", "stable"))
        # Fixed, the canary goes out again to the same population. A new
        # process asks Unleash before it listens, so it routes the population
        # from its first request.
        roll("1.0.1", "1.0.2")
        expect(both("1.0.2", "canary"), both("1.0.1", "stable"))

        # 6. The archives look fine: promote, then the population back to 0%.
        p = roll("1.0.2")
        expect(both("1.0.2", "stable"), both("1.0.2", "stable"))
        assert M.total(M.scrape(p), "gcs_conditions_info", channel="canary") is None
        client.expect(canary_cluster, "stable")  # for the next canary, at 0%
        polls = M.total(M.scrape(p), "gcs_unleash_fetch_total") or 0
        unleash.set_rollout(TOGGLE, 0)
        wait_unleash_serves(unleash, 0)
        # Let two polls pass after the change if the poller runs without a
        # canary; the answer must not depend on it either way.
        deadline = time.monotonic() + REFRESH * 3 + 2
        while ((M.total(M.scrape(p), "gcs_unleash_fetch_total") or 0) < polls + 2
               and time.monotonic() < deadline):
            time.sleep(0.1)
        expect(both("1.0.2", "stable"), both("1.0.2", "stable"))

        # 7. The next canary, 1.0.3, from the beginning: deployed at 0%...
        roll("1.0.2", "1.0.3")
        expect(both("1.0.2", "stable"), both("1.0.2", "stable"))
        # ... then raised.
        raise_rollout(ROLLOUT, both("1.0.3", "canary"))
        expect(both("1.0.3", "canary"), both("1.0.2", "stable"))
        # New conditions during the canary: 1.0.4 is tagged. The sequence
        # starts over: validate it as the pods will, then update
        # CANARY_VERSION. The population stays at X% and moves at once.
        check = run_gcs(["--check"], env("1.0.2", "1.0.4"))
        assert check.returncode == 0, check.stdout + check.stderr
        assert "1.0.4" in check.stdout, check.stdout
        roll("1.0.2", "1.0.4")
        expect(both("1.0.4", "canary"), both("1.0.2", "stable"))

        # 8. Emergency release: STABLE 1.0.3, no canary, Unleash (still X%) ignored.
        roll("1.0.3")
        expect(both("1.0.3", "stable"), both("1.0.3", "stable"))

        client.stop()
        deployment.stop()
        assert client.failures == [], "%d of %d requests failed:\n%s" % (
            len(client.failures), client.total, "\n".join(client.failures[:50]))
        # The client saw every stage from the canary cluster; the normal
        # cluster never left stable.
        for label in ("canary v1", "canary v2"):
            for seen in (("stable", "1.0.1"), ("canary", "1.0.2"), ("stable", "1.0.2"),
                         ("canary", "1.0.3"), ("canary", "1.0.4"), ("stable", "1.0.3")):
                assert (label,) + seen in client.seen, (label, seen, sorted(client.seen))
        assert not [s for s in client.seen if s[0].startswith("normal") and s[1] == "canary"]
        print("release flow: %d requests, 0 failed, %d processes, Unleash propagation %s s, %.1f s"
              % (client.total, len(deployment.history),
                 ", ".join("%.2f" % t for t in propagation), time.monotonic() - started))
    finally:
        if client.is_alive():
            client.stop()
        deployment.stop()  # a no-op after the one above; checks what a failure left
