"""build/gcs --check downloading over HTTP from a real server on 127.0.0.1
that misbehaves on purpose (tests/support/download_server.py).

Transient failures (reset, timeout, 5xx, 429) are retried up to
GCS_FETCH_TRIES; permanent ones (404, 403, bad redirect, too large, invalid
content) fail at the first try. The server's request log counts the tries.
"""
import os
import socket

import pytest

from trees import (assert_accepted, assert_problem, assert_refused, copy_tree, describe,
                   plain_lines, rule_index, stderr_lines)
from download_server import DownloadServer

V1 = "v1/rules.json"
MAPPING = "v2/cluster_version_mapping.json"
CHANNEL = {"1.1.3": "stable", "1.2.0": "canary"}
V2D_120 = "v2/remote_configurations/config_default.json"
V2V_120 = "v2/remote_configurations/config_validation.json"


@pytest.fixture
def served(tmp_path):
    tree = copy_tree(tmp_path / "root")
    srv = DownloadServer(tree.root).start()
    yield tree, srv
    srv.stop()


def check(served, stable="1.1.3", canary="1.2.0", **env):
    tree, srv = served
    env.setdefault("GCS_CONDITIONS_URL", srv.url + "/{version}")
    return tree.check(stable=stable, canary=canary, **env)


def name_once(tree):
    """Rewrites the 1.2.0 mapping so config_validation.json is named by one
    entry only: a count of requests for it is then a count of tries."""
    tree.set_mapping("1.2.0", [["4.0.0", "remote_configurations/config_default.json"],
                               ["4.17.0-0", "remote_configurations/config_validation.json"],
                               ["4.17.0", "remote_configurations/config_default.json"]])


def tree_paths(tree, version):
    return ["/%s/%s" % (version, rel) for rel in [V1, MAPPING] + tree.mapped_files(version)]


# --- the good path -----------------------------------------------------------

def test_valid_tree_over_http_accepted(served):
    tree, srv = served
    res = check(served)
    assert_accepted(res)
    for v in ("1.1.3", "1.2.0"):
        assert [line for line in res.stdout.splitlines() if v in line], describe(res)
        for path in tree_paths(tree, v):
            assert srv.count(path) >= 1, "%s never requested: %s" % (path, srv.requests())
            assert all(r["status"] == 200 for r in srv.requests() if r["path"] == path)


def test_equal_versions_fetched_once(served):
    tree, srv = served
    assert_accepted(check(served, stable="1.1.3", canary="none"))
    alone = {p: srv.count(p) for p in tree_paths(tree, "1.1.3")}
    srv.clear_log()
    assert_accepted(check(served, stable="1.1.3", canary="1.1.3"))
    assert srv.count("/1.1.3/" + V1) == 1, srv.requests()
    assert {p: srv.count(p) for p in tree_paths(tree, "1.1.3")} == alone, srv.requests()
    assert srv.count() == sum(alone.values()), srv.requests()


def test_each_mapped_file_fetched_once(served):
    """The real mappings name each file two or three times: one download each."""
    tree, srv = served
    assert_accepted(check(served))
    for v in ("1.1.3", "1.2.0"):
        for path in tree_paths(tree, v):
            assert srv.count(path) == 1, "%s requested %d times" % (path, srv.count(path))


def test_schema_problem_over_http_names_the_file(served):
    tree, _ = served
    doc = tree.load("1.2.0", V2D_120)
    i = rule_index(doc["conditional_gathering_rules"], "logs_of_namespace")
    doc["conditional_gathering_rules"][i]["gathering_functions"]["logs_of_namespace"]["tail_lines"] = 5000
    tree.dump("1.2.0", V2D_120, doc)
    res = check(served)
    want = ("canary 1.2.0: %s: /conditional_gathering_rules/%d/gathering_functions/logs_of_namespace/"
            "tail_lines: 5000 is greater than the maximum 4096" % (V2D_120, i))
    assert_refused(res)
    assert want in stderr_lines(res), describe(res)


def test_invalid_content_not_retried(served):
    """An HTML error page served with 200 is invalid content: permanent."""
    tree, srv = served
    tree.write_text("1.2.0", V1, "<html><body>Service Unavailable</body></html>")
    res = check(served)
    assert_problem(res, "canary", "1.2.0", V1)
    assert srv.count("/1.2.0/" + V1) == 1, srv.requests()


# --- permanent HTTP failures -------------------------------------------------

def test_missing_version_404_one_try(served):
    _, srv = served
    res = check(served, canary="9.9.9")
    assert_refused(res)
    lines = [line for line in stderr_lines(res) if "canary 9.9.9" in line]
    assert lines and any("404" in line for line in lines), describe(res)
    # it may go on to the version's other files to report them too, but
    # never asks twice for one that answered 404
    asked = [r["path"] for r in srv.requests() if r["path"].startswith("/9.9.9/")]
    assert asked, srv.requests()
    for path in set(asked):
        assert asked.count(path) == 1, "%s asked %d times" % (path, asked.count(path))


@pytest.mark.parametrize("status", [404, 403, 410])
def test_permanent_status_on_mapped_file_one_try(served, status):
    tree, srv = served
    name_once(tree)
    path = "/1.2.0/" + V2V_120
    srv.add_fault(path, "status", status=status)
    res = check(served)
    assert_problem(res, "canary", "1.2.0", V2V_120, pattern=str(status))
    assert srv.count(path) == 1, srv.requests()


def test_failing_file_named_twice_fetched_once(served):
    """The real 1.2.0 mapping names config_validation.json twice: a 404 on
    it is one request and one problem line, not one per entry."""
    tree, srv = served
    path = "/1.2.0/" + V2V_120
    assert sum(1 for _, p in tree.mapping("1.2.0") if "v2/" + p == V2V_120) == 2
    srv.add_fault(path, "status", status=404)
    res = check(served)
    assert_problem(res, "canary", "1.2.0", V2V_120, pattern="404")
    assert srv.count(path) == 1, srv.requests()
    assert len([line for line in plain_lines(res) if line.startswith("canary 1.2.0: " + V2V_120)]) == 1, \
        describe(res)


# --- transient HTTP failures -------------------------------------------------

# (test id, version, file, fault and its options, gcs's environment, the
# problem's pattern or None when the tree is accepted, requests for the file)
FAULTS = [
    ("503-twice-then-200-accepted-after-3-tries", "1.2.0", V1, "status", {"status": 503, "times": 2},
     {}, None, 3),
    ("503-always-refused-after-1-try", "1.1.3", MAPPING, "status", {"status": 503},
     {"GCS_FETCH_TRIES": 1}, "503", 1),
    ("503-always-refused-after-3-tries", "1.1.3", MAPPING, "status", {"status": 503},
     {"GCS_FETCH_TRIES": 3}, "503", 3),
    ("500-once-retried", "1.1.3", V1, "status", {"status": 500, "times": 1}, {}, None, 2),
    ("502-once-retried", "1.1.3", V1, "status", {"status": 502, "times": 1}, {}, None, 2),
    ("504-once-retried", "1.1.3", V1, "status", {"status": 504, "times": 1}, {}, None, 2),
    ("429-then-200-retried", "1.2.0", V2V_120, "status", {"status": 429, "times": 1}, {}, None, 2),
    ("429-always-refused", "1.2.0", V2V_120, "status", {"status": 429}, {"GCS_FETCH_TRIES": 2},
     "429", 2),
    ("slow-beyond-timeout-refused", "1.1.3", V1, "slow", {"seconds": 30},
     {"GCS_FETCH_TIMEOUT_MS": 500, "GCS_FETCH_TRIES": 2}, r"time(d)?[ -]?out", 2),
    ("slow-once-then-fast-accepted", "1.2.0", V1, "slow", {"seconds": 30, "times": 1},
     {"GCS_FETCH_TIMEOUT_MS": 500}, None, 2),
    ("drop-once-retried", "1.2.0", V2V_120, "drop", {"times": 1}, {}, None, 2),
    ("close-once-retried", "1.2.0", V2V_120, "close", {"times": 1}, {}, None, 2),
    ("truncate-once-retried", "1.2.0", V2V_120, "truncate", {"times": 1}, {}, None, 2),
    ("drop-always-refused", "1.2.0", V2V_120, "drop", {}, {"GCS_FETCH_TRIES": 2}, "", 2),
]


@pytest.mark.parametrize("version,rel,fault,options,env,problem,requests",
                         [case[1:] for case in FAULTS], ids=[case[0] for case in FAULTS])
def test_transient_fault(served, version, rel, fault, options, env, problem, requests):
    """A fault on one file: retried, then accepted or refused with a problem
    line matching problem ("" any), after as many requests."""
    tree, srv = served
    if rel == V2V_120:
        name_once(tree)
    path = "/%s/%s" % (version, rel)
    srv.add_fault(path, fault, **options)
    res = check(served, **env)
    if problem is None:
        assert_accepted(res)
    else:
        assert_problem(res, CHANNEL[version], version, rel, pattern=problem or None)
    assert srv.count(path) == requests, srv.requests()


def test_connection_refused(served):
    """Nothing listens on the port: a transient failure, refused after the tries."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    res = check(served, GCS_CONDITIONS_URL="http://127.0.0.1:%d/{version}" % port, GCS_FETCH_TRIES=2)
    assert_refused(res)
    assert [line for line in stderr_lines(res) if "stable 1.1.3" in line or "canary 1.2.0" in line], describe(res)


# --- redirects ---------------------------------------------------------------

@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1:1/rules.json",
                                      "gopher://127.0.0.1:1/x", "dict://127.0.0.1:1/x"])
def test_redirect_to_other_scheme_refused(served, location):
    _, srv = served
    path = "/1.2.0/" + V1
    srv.add_fault(path, "redirect", location=location)
    res = check(served)
    assert_problem(res, "canary", "1.2.0", V1, pattern=r"redirect|refus|scheme|protocol|not allowed")
    assert "root:" not in res.stdout + res.stderr, describe(res)
    assert srv.count(path) == 1, srv.requests()


def test_redirect_to_file_url_of_a_valid_file_refused(served):
    """Refused for its scheme, not because the content happened to be bad."""
    tree, srv = served
    path = "/1.2.0/" + V1
    srv.add_fault(path, "redirect", location="file://" + tree.path("1.2.0", V1))
    res = check(served)
    assert_problem(res, "canary", "1.2.0", V1, pattern=r"redirect|refus|scheme|protocol|not allowed")


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_http_to_http_followed(served, code):
    tree, srv = served
    moved = copy_tree(os.path.join(tree.root, "moved"), versions=("1.2.0",))
    assert moved.load("1.2.0", V1)
    path = "/1.2.0/" + V1
    srv.add_fault(path, "redirect", status=code, location="/moved/1.2.0/" + V1)
    res = check(served)
    assert_accepted(res)
    assert srv.count(path) == 1, srv.requests()
    assert srv.count("/moved/1.2.0/" + V1) == 1, srv.requests()


def test_redirect_absolute_http_url_followed(served):
    tree, srv = served
    copy_tree(os.path.join(tree.root, "moved"), versions=("1.1.3",))
    path = "/1.1.3/" + MAPPING
    srv.add_fault(path, "redirect", location=srv.url + "/moved" + path)
    res = check(served)
    assert_accepted(res)
    assert srv.count("/moved" + path) == 1, srv.requests()


def test_redirect_loop_refused(served):
    _, srv = served
    path = "/1.2.0/" + V1
    srv.add_fault(path, "redirect", location=path)
    res = check(served, GCS_FETCH_TRIES=1, GCS_FETCH_TIMEOUT_MS=5000)
    assert_problem(res, "canary", "1.2.0", V1)
    assert srv.count(path) <= 100, "%d requests in a redirect loop" % srv.count(path)


# --- size --------------------------------------------------------------------

@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_huge_body_refused_with_the_size(served, chunked):
    tree, srv = served
    name_once(tree)
    path = "/1.2.0/" + V2V_120
    srv.add_fault(path, "huge", size=20 * 1024 * 1024, chunked=chunked)
    res = check(served, GCS_MAX_FILE_BYTES=65536)
    assert_problem(res, "canary", "1.2.0", V2V_120, pattern="65536")
    assert srv.count(path) == 1, srv.requests()


def test_huge_body_over_default_cap_refused(served):
    _, srv = served
    path = "/1.1.3/" + V1
    srv.add_fault(path, "huge", size=9 * 1024 * 1024, chunked=True)
    res = check(served)
    assert_problem(res, "stable", "1.1.3", V1, pattern=r"8388608|8 ?MiB")
    assert srv.count(path) == 1, srv.requests()
