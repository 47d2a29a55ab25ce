"""gcs --route -: cluster IDs on standard input, one tab-separated answer per
ID (cluster ID, channel, version, file, reason).

Checked against one `gcs --route ID [--ocp-version V]` per ID (allowlists,
denylist and an Unleash state from a bootstrap file, no server), against the
official Node SDK for 10,000 IDs on toggles served by a real Unleash server,
and on input it must refuse line by line."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import GCS, ROOT, base_env, cluster_ids, route_fields, unleash_env
import node_sdk

STABLE, CANARY = "1.1.3", "1.2.0"
TOGGLE = "insights-operator-gathering-conditions-service"


def rollout(name, percent, constraints=()):
    """A toggle as the Unleash client API serves it."""
    return {"name": name, "enabled": True, "type": "release", "project": "default",
            "stale": False, "impressionData": False, "variants": [],
            "strategies": [{"name": "flexibleRollout", "constraints": list(constraints),
                            "parameters": {"rollout": str(percent), "stickiness": "default",
                                           "groupId": name}, "variants": []}]}


def script_with(tmp_path, force_canary=(), force_stable=()):
    """scripts/routing.lua with IDs added to its lists, next to the other scripts."""
    with open(os.path.join(ROOT, "scripts", "routing.lua")) as f:
        text = f.read()
    for table, listed in (("force_canary", force_canary), ("force_stable", force_stable)):
        head = "local %s = {\n" % table
        assert head in text
        text = text.replace(head, head + "".join('  ["%s"] = true,\n' % i for i in listed), 1)
    folder = tmp_path / "scripts"
    folder.mkdir()
    (folder / "routing.lua").write_text(text)
    # the modules it requires resolve in its own folder
    for name in os.listdir(os.path.join(ROOT, "scripts")):
        if name.endswith(".lua") and name != "routing.lua":
            shutil.copy(os.path.join(ROOT, "scripts", name), folder / name)
    return str(folder / "routing.lua")


def batch(env, lines, timeout=120):
    return subprocess.run([GCS, "--route", "-"], env=env, input="".join(lines),
                          capture_output=True, text=True, timeout=timeout)


def parse(stdout):
    rows = [line.split("\t") for line in stdout.splitlines()]
    assert all(len(r) == 5 for r in rows), stdout[:500]
    return rows


def one(env, cluster, ocp=None):
    """(cluster, channel, version, file, reason) from gcs --route ID."""
    args = [GCS, "--route", cluster] + (["--ocp-version", ocp] if ocp else [])
    res = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    f = route_fields(res.stdout)
    file = f["file"].split(" ", 1)[0]
    return [f["cluster"], f["channel"], f["version"], "none" if file == "none:" else file,
            f["reason"]]


@pytest.fixture
def backup_env(tmp_path):
    """The Unleash state from a bootstrap file, no server."""
    allowed, denied = cluster_ids(2, "lists")
    bootstrap = tmp_path / "unleash-bootstrap.json"
    bootstrap.write_text(json.dumps({"version": 2, "features": [rollout(TOGGLE, 50)]}))
    env = base_env(STABLE_VERSION=STABLE, CANARY_VERSION=CANARY,
                   GCS_UNLEASH_BOOTSTRAP=str(bootstrap),
                   GCS_ROUTING_SCRIPT=script_with(tmp_path, [allowed], [denied]))
    return env, allowed, denied


def test_each_line_as_route_answers_it(backup_env):
    env, allowed, denied = backup_env
    clusters = [allowed, denied] + cluster_ids(14, "one-by-one")
    ocps = [None, "4.17.3", "4.0.0", "3.9.0", "4.18.0-rc.1", None, "4.16.2"]
    cases = [(c, ocps[i % len(ocps)]) for i, c in enumerate(clusters)]
    res = batch(env, ["%s\n" % c if not o else "%s %s\n" % (c, o) for c, o in cases])
    assert res.returncode == 0, res.stderr
    rows = parse(res.stdout)
    assert rows == [one(env, c, o) for c, o in cases]
    by_id = {r[0]: r for r in rows}
    assert by_id[allowed][1:3] == ["canary", CANARY] and by_id[allowed][4] == "force_canary list"
    assert by_id[denied][1:3] == ["stable", STABLE] and by_id[denied][4] == "force_stable list"
    assert {r[1] for r in rows[2:]} == {"stable", "canary"}  # the 50% rollout decides the rest
    below = [r for (c, o), r in zip(cases, rows) if o == "3.9.0"]
    assert below and all(r[3] == "none" for r in below)
    assert all(r[3] == "v1/rules.json" for (c, o), r in zip(cases, rows) if o is None)


def test_without_a_canary_everyone_is_stable(tmp_path):
    env = base_env(STABLE_VERSION=STABLE, CANARY_VERSION="none")
    res = batch(env, ["a\n", "b\t4.17.0\n"])
    assert res.returncode == 0, res.stderr
    assert parse(res.stdout) == [
        ["a", "stable", STABLE, "v1/rules.json", "no canary version loaded"],
        ["b", "stable", STABLE, "v2/config_default.json", "no canary version loaded"]]


def test_bad_lines_are_named_and_skipped(backup_env):
    env, allowed, _ = backup_env
    lines = ["%s\n" % allowed,
             "\n",                                  # blank: skipped silently
             "  %s \t 4.17.0 \r\n" % allowed,       # spaces, tabs, CRLF are fine
             "cluster-x 4.17\n",                    # not SemVer
             "cluster-y 4.17.0 extra\n",            # a third field
             "a,b\n",                               # the server cuts IDs at a comma
             "x" * 256 + "\n",                      # longer than the server keeps
             "cluster-z"]                           # no final newline: still a line
    res = batch(env, lines)
    assert res.returncode == 2, res.stderr
    rows = parse(res.stdout)
    assert [r[0] for r in rows] == [allowed, allowed, "cluster-z"]
    assert rows[1][3].startswith("v2/") and rows[2][3] == "v1/rules.json"
    err = [line for line in res.stderr.splitlines() if not line.startswith("{")]  # not log records
    assert err == [
        "gcs: standard input, line 4: the OCP version is not a SemVer 2.0.0 version; skipped",
        "gcs: standard input, line 5: more than a cluster ID and an OCP version; skipped",
        "gcs: standard input, line 6: comma in the cluster ID (the server cuts the ID there); skipped",
        "gcs: standard input, line 7: longer than 255 bytes, which the server cuts; skipped",
    ], res.stderr


def test_route_dash_with_ocp_version_is_a_usage_error():
    res = subprocess.run([GCS, "--route", "-", "--ocp-version", "4.17.0"], env=base_env(),
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "each line of standard input carries its OCP version" in res.stderr


# --- against the official Node SDK, with a real Unleash server ---------------

def node_says(toggle, clusters, properties):
    decisions = node_sdk.decisions([toggle], toggle["name"], clusters,
                                   {"properties": properties} if properties else None)
    return ["canary" if d else "stable" for d in decisions]


@pytest.mark.parametrize("name,percent,constraints", [
    ("e2e-batch-35", 35, []),
    ("e2e-batch-ocp", 60, [{"contextName": "ocpVersion", "operator": "SEMVER_GT",
                            "value": "4.16.0", "values": [], "inverted": False,
                            "caseInsensitive": False}]),
])
def test_matches_the_node_sdk_for_10000_ids(unleash, name, percent, constraints):
    admin, state, _ = unleash
    admin.set_rollout(name, percent, constraints)
    toggle = admin.wait_served(name, True, percent, constraints)

    clusters = cluster_ids(10000, name)
    ocps = [None, "4.17.3", "4.14.0"]
    lines = [(c, ocps[i % 3]) for i, c in enumerate(clusters)]
    env = unleash_env(state, name, STABLE_VERSION=STABLE, CANARY_VERSION=CANARY)
    res = batch(env, ["%s\t%s\n" % (c, o) if o else c + "\n" for c, o in lines])
    assert res.returncode == 0, res.stderr
    rows = parse(res.stdout)
    assert [r[0] for r in rows] == clusters
    assert all(r[4] == "unleash rollout" for r in rows), {r[4] for r in rows}

    compared = 0
    for ocp in ocps:
        subset = [i for i, (_, o) in enumerate(lines) if o == ocp]
        want = node_says(toggle, [clusters[i] for i in subset],
                         {"ocpVersion": ocp} if ocp else None)
        got = [rows[i][1] for i in subset]
        assert got == want, "%s, ocpVersion %s: %d of %d differ" % (
            name, ocp, sum(a != b for a, b in zip(got, want)), len(subset))
        compared += len(subset)
        share = 100.0 * got.count("canary") / len(got)
        if constraints and ocp != "4.17.3":
            assert share == 0  # no ocpVersion, or 4.14: the constraint fails
        else:
            assert abs(share - percent) < 3, share
    assert compared == 10000
    for row in rows:
        assert row[2] == (CANARY if row[1] == "canary" else STABLE)
