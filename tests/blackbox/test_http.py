"""The HTTP contract of build/gcs, checked over real HTTP on 127.0.0.1.

Expected bodies are computed here from the conditions files (fixtures.go_*),
independently of the server's renderer."""
import gzip
import re
import signal
import socket
import threading
import time
import uuid

import pytest

import fixtures as F
import metrics as M
from conftest import GcsServer, base_env
from trees import Tree

JSON = "application/json"
UA = "insights-operator/4.17.0-abc cluster/9abc1e7a-d834-4c6d-99b1-826399958d1c"


def start(env):
    env.setdefault("GCS_THREADS", "4")
    return GcsServer(env)


@pytest.fixture(scope="module")
def srv120():
    with start(base_env(STABLE_VERSION="1.2.0")) as srv:
        yield srv


@pytest.fixture(scope="module")
def srv113():
    with start(base_env(STABLE_VERSION="1.1.3")) as srv:
        yield srv


# A tree of our own: pre-releases in the mapping, paths in subdirectories, a
# path named twice, and distinct content (and version field) in every file.
FIXTURE_VERSION = "3.0.0"
FIXTURE_MAPPING = [
    ["4.10.0", "first.json"],
    ["4.12.0-rc.2", "pre/release/candidate.json"],
    ["4.12.0", "first.json"],
    ["4.13.0-0", "nightly/nightly.json"],
    ["4.13.0", "stable-4.13.json"],
    ["4.14.0-ec.1", "sub/dir/ec.json"],
]
FIXTURE_CASES = [
    ("4.9.9", None),
    ("4.10.0-rc.1", None),
    ("4.10.0", "first.json"),
    ("4.11.7", "first.json"),
    ("4.12.0-rc.1", "first.json"),
    ("4.12.0-beta.9", "first.json"),
    ("4.12.0-rc.2", "pre/release/candidate.json"),
    ("4.12.0-rc.2.1", "pre/release/candidate.json"),
    ("4.12.0-rc.10", "pre/release/candidate.json"),
    ("4.12.0-rc.2%2Bbuild.7", "pre/release/candidate.json"),
    ("4.12.0", "first.json"),
    ("4.12.9", "first.json"),
    ("4.13.0-0", "nightly/nightly.json"),
    ("4.13.0-0.nightly-2024-08-19-220527", "nightly/nightly.json"),
    ("4.13.0", "stable-4.13.json"),
    ("4.14.0-ec.0", "stable-4.13.json"),
    ("4.14.0-ec.1", "sub/dir/ec.json"),
    ("4.14.0", "sub/dir/ec.json"),
    ("9.0.0", "sub/dir/ec.json"),
]


@pytest.fixture(scope="module")
def fixture_tree(tmp_path_factory):
    tree = Tree(tmp_path_factory.mktemp("conditions"))
    return tree, tree.write(FIXTURE_VERSION, mapping=FIXTURE_MAPPING, v1_version="3.0.0-rules-json")


@pytest.fixture(scope="module")
def fixture_srv(fixture_tree):
    tree, _ = fixture_tree
    with start(tree.env(FIXTURE_VERSION)) as srv:
        yield srv


# A tree whose content exercises the encoding: HTML-escaped characters,
# unknown keys (dropped), previous false (omitted), unsorted nested keys,
# empty conditions (omitted), non-ASCII and escapes.
ESCAPE_VERSION = "3.1.0"
ODD = "a<b>&c \u2028 \u2029 \u00e9\u4e2d \\d+ \"q\"\t/"


def escape_tree_docs():
    rule_odd = {
        "gathering_functions": {
            "containers_logs": {"tail_lines": 5, "container": "c-1", "previous": True,
                                "alert_name": "Odd_Alert"},
            "api_request_counts_of_resource_from_alert": {"alert_name": "Odd_Alert"},
        },
        "conditions": [
            {"type": "cluster_version_matches",
             "cluster_version_matches": {"version": ">=4.16.0 <4.18.0 & " + ODD}},
            {"alert": {"name": "Odd_Alert"}, "type": "alert_is_firing"},
        ],
        "unknown_extra": {"dropped": True},
    }
    rule_empty = {"conditions": [], "gathering_functions": {"pod_definition": {"alert_name": "X"}}}
    v1 = {"rules": [rule_odd, rule_empty], "version": ESCAPE_VERSION + "-<v1>&"}
    v2 = {
        "container_logs": [
            {"messages": [ODD, "plain"], "previous": False, "pod_name_regex": "pod<1>&.*",
             "namespace": "openshift-odd", "unknown_log_key": [1, 2]},
            {"pod_name_regex": ".*", "namespace": "kube-system", "messages": [],
             "previous": True},
        ],
        "conditional_gathering_rules": [rule_odd, rule_empty],
        "version": ESCAPE_VERSION + "-<v2>&",
    }
    return v1, v2


@pytest.fixture(scope="module")
def escape_tree(tmp_path_factory):
    tree = Tree(tmp_path_factory.mktemp("escapes"))
    v1, v2 = escape_tree_docs()
    return tree, tree.write(ESCAPE_VERSION, v1=v1, mapping=[["4.0.0", "odd/config.json"]],
                            files={"odd/config.json": v2})


@pytest.fixture(scope="module")
def escape_srv(escape_tree):
    tree, _ = escape_tree
    with start(tree.env(ESCAPE_VERSION)) as srv:
        yield srv


def assert_json_error(resp, code):
    assert resp.status == code, resp.body
    assert resp.header("Content-Type") == JSON
    assert resp.body.endswith(b"}\n") and resp.body.count(b"\n") == 1, resp.body
    doc = resp.json()
    assert list(doc) == ["status"] and isinstance(doc["status"], str) and doc["status"]
    return doc["status"]


def assert_served(resp, expected, channel="stable"):
    assert resp.status == 200, resp.body
    assert resp.body == expected
    assert resp.header("Content-Type") == JSON
    assert re.fullmatch(r'"[^"\s]+"', resp.header("ETag") or ""), resp.header("ETag")
    assert resp.header("Vary") == "Accept-Encoding, User-Agent"
    assert resp.header("X-Gcs-Channel") == channel
    assert resp.header("Content-Encoding") is None
    assert int(resp.header("Content-Length")) == len(expected)


# --- v1 ---------------------------------------------------------------------

@pytest.mark.parametrize("path", F.V1_PATHS)
@pytest.mark.parametrize("version", ["1.1.3", "1.2.0"])
def test_v1_serves_the_real_rules_byte_exact(srv113, srv120, version, path):
    srv = srv113 if version == "1.1.3" else srv120
    expected = F.expected_v1(F.real_tree(version))
    assert expected.startswith(b'{"version":"%s","rules":[' % version.encode())
    assert_served(F.request(srv, "GET", path, {"User-Agent": UA}), expected)


@pytest.mark.parametrize("path", F.V1_PATHS)
def test_v1_version_is_the_one_inside_rules_json(fixture_srv, fixture_tree, path):
    _, tree = fixture_tree
    resp = F.request(fixture_srv, "GET", path)
    assert_served(resp, F.expected_v1(tree))
    assert resp.json()["version"] == "3.0.0-rules-json"


# --- v2 mapping -------------------------------------------------------------

REAL_CASES = [
    ("3.9.9", None),
    ("4.0.0-rc.1", None),
    ("4.0.0", "default"),
    ("4.16.99", "default"),
    ("4.16.99%2Bbuild.1", "default"),
    ("4.17.0-0", "validation"),
    ("4.17.0-rc.1", "validation"),
    ("4.17.0-0.ci-2024-08-19-220527", "validation"),
    ("4.17.0", "default"),
    ("4.17.0%2Bbuild", "default"),
    ("4.17.0%2bbuild", "default"),
    ("4.17.0+build.2", "default"),
    ("4.17.6-0.ci-2024-08-19-220527", "default"),
    ("4.17.6", "default"),
    ("4.18.0-0", "validation"),
    ("4.18.0-ec.2", "validation"),
    ("4.18.0", "default"),
    ("4.18.1", "default"),
    ("5.0.0", "default"),
    ("%34.17.0-rc.1", "validation"),
]


@pytest.mark.parametrize("ocp,kind", REAL_CASES)
@pytest.mark.parametrize("version", ["1.1.3", "1.2.0"])
def test_v2_real_mapping(srv113, srv120, version, ocp, kind):
    srv = srv113 if version == "1.1.3" else srv120
    resp = F.request(srv, "GET", F.v2_path(ocp), {"User-Agent": UA})
    if kind is None:
        text = assert_json_error(resp, 404)
        assert "4.0.0" in text  # names where the mapping starts
        return
    prefix = "remote_configurations/" if version == "1.2.0" else ""
    rel = "%sconfig_%s.json" % (prefix, kind)
    assert [e for e in F.mapping_of(F.real_tree(version)) if e[1] == rel]
    assert_served(resp, F.expected_v2(F.real_tree(version), rel))


def test_v2_default_and_validation_differ(srv120):
    a = F.request(srv120, "GET", F.v2_path("4.17.0"))
    b = F.request(srv120, "GET", F.v2_path("4.17.0-rc.1"))
    c = F.request(srv120, "GET", F.V1_PATHS[0])
    assert a.body != b.body
    assert len({a.header("ETag"), b.header("ETag"), c.header("ETag")}) == 3


@pytest.mark.parametrize("ocp,rel", FIXTURE_CASES)
def test_v2_fixture_mapping(fixture_srv, fixture_tree, ocp, rel):
    _, tree = fixture_tree
    resp = F.request(fixture_srv, "GET", F.v2_path(ocp))
    if rel is None:
        assert_json_error(resp, 404)
        return
    expected = F.expected_v2(tree, rel)
    # every mapped file is distinct, so the body tells which one was chosen
    others = {p for _, p in FIXTURE_MAPPING if p != rel}
    assert all(F.expected_v2(tree, p) != expected for p in others)
    assert_served(resp, expected)


def test_v2_query_string_is_ignored(srv120):
    resp = F.request(srv120, "GET", F.v2_path("4.17.0") + "?cluster=x&b=1")
    assert_served(resp, F.expected_v2(F.real_tree("1.2.0"),
                                      "remote_configurations/config_default.json"))


# --- byte-exact encoding ----------------------------------------------------

def test_encoding_matches_go(escape_srv, escape_tree):
    _, tree = escape_tree
    v1, v2 = escape_tree_docs()
    want_v1 = F.go_v1_body(v1)
    want_v2 = F.go_v2_body(v2)
    # the expectation itself encodes what Go does
    for want in (want_v1, want_v2):
        assert b"<" not in want and b">" not in want and b"&" not in want
        assert b"\\u003c" in want and b"\\u003e" in want and b"\\u0026" in want
        assert b"\\u2028" in want and b"\\u2029" in want
        assert "\u00e9\u4e2d".encode() in want
        assert b"unknown_extra" not in want
        assert b'{"gathering_functions":{"pod_definition"' in want
        assert b'"api_request_counts_of_resource_from_alert":{"alert_name":"Odd_Alert"},' \
               b'"containers_logs":{"alert_name":"Odd_Alert","container":"c-1",' \
               b'"previous":true,"tail_lines":5}' in want
    assert b'{"namespace":"openshift-odd","pod_name_regex":"pod\\u003c1\\u003e\\u0026.*",' \
           b'"messages":[' in want_v2
    assert b'{"namespace":"kube-system","pod_name_regex":".*","previous":true,"messages":[]}' \
        in want_v2
    assert b"unknown_log_key" not in want_v2
    assert want_v2.startswith(b'{"conditional_gathering_rules":[')
    assert want_v2.endswith(b'"version":"3.1.0-\\u003cv2\\u003e\\u0026"}')
    assert want_v1.startswith(b'{"version":"3.1.0-\\u003cv1\\u003e\\u0026","rules":[')

    assert_served(F.request(escape_srv, "GET", F.V1_PATHS[1]), want_v1)
    assert_served(F.request(escape_srv, "GET", F.v2_path("4.17.0")), want_v2)
    assert F.expected_v2(tree, "odd/config.json") == want_v2


def test_real_bodies_are_compact_without_trailing_newline(srv120):
    for path in (F.V1_PATHS[0], F.v2_path("4.17.0"), F.v2_path("4.18.0-rc.0")):
        body = F.request(srv120, "GET", path).body
        assert body.startswith(b"{") and body.endswith(b"}") and b"\n" not in body


# --- conditional requests ---------------------------------------------------

@pytest.mark.parametrize("path", [F.V1_PATHS[0], F.v2_path("4.17.0"), F.v2_path("4.18.0-ec.2")])
def test_if_none_match(srv120, path):
    first = F.request(srv120, "GET", path)
    etag = first.header("ETag")
    assert first.status == 200 and etag

    def inm(value, extra=None):
        headers = {"If-None-Match": value}
        headers.update(extra or {})
        return F.request(srv120, "GET", path, headers)

    for value in (etag, '"nope", %s, "other"' % etag, "*", "W/" + etag):
        resp = inm(value)
        assert resp.status == 304, value
        assert resp.header("ETag") == etag
        assert resp.body == b""
    for value in ('"nope"', "W/\"nope\"", etag[:-2] + '"', '"%s-x"' % etag.strip('"')):
        resp = inm(value)
        assert resp.status == 200, value
        assert resp.body == first.body

    gz = F.request(srv120, "GET", path, {"Accept-Encoding": "gzip"})
    gz_etag = gz.header("ETag")
    assert gz_etag and gz_etag != etag
    resp = inm(gz_etag, {"Accept-Encoding": "gzip"})
    assert resp.status == 304 and resp.header("ETag") == gz_etag and resp.body == b""


def test_304_has_no_body_on_the_wire(srv120):
    ka = F.KeepAlive(srv120)
    try:
        first = ka.get(F.v2_path("4.17.0"))
        resp = ka.get(F.v2_path("4.17.0"), {"If-None-Match": first.header("ETag")})
        assert resp.status == 304
        # had the 304 carried body bytes, this response would not parse
        again = ka.get(F.v2_path("4.17.0"))
        assert again.status == 200 and again.body == first.body
        assert ka.same_socket()
    finally:
        ka.close()


# --- gzip -------------------------------------------------------------------

@pytest.mark.parametrize("path", [F.V1_PATHS[1], F.v2_path("4.17.0"), F.v2_path("4.17.0-rc.1")])
def test_gzip(srv120, path):
    plain = F.request(srv120, "GET", path)
    assert plain.status == 200 and plain.header("Content-Encoding") is None
    for ae in ("gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.5", "GZIP"):
        resp = F.request(srv120, "GET", path, {"Accept-Encoding": ae})
        assert resp.status == 200, ae
        assert resp.header("Content-Encoding") == "gzip", ae
        assert resp.body[:2] == b"\x1f\x8b"
        assert gzip.decompress(resp.body) == plain.body
        assert int(resp.header("Content-Length")) == len(resp.body)
        assert resp.header("Vary") == "Accept-Encoding, User-Agent"
        assert resp.header("ETag") != plain.header("ETag")
    for ae in ("gzip;q=0", "gzip;q=0.0, deflate", "deflate", "identity", "br"):
        resp = F.request(srv120, "GET", path, {"Accept-Encoding": ae})
        assert resp.status == 200
        assert resp.header("Content-Encoding") is None, ae
        assert resp.body == plain.body


# --- HEAD -------------------------------------------------------------------

@pytest.mark.parametrize("path", [F.V1_PATHS[0], F.v2_path("4.17.0"), "/healthz",
                                  F.OPENAPI_PATHS[0]])
@pytest.mark.parametrize("ae", [None, "gzip"])
def test_head(srv120, path, ae):
    headers = {"Accept-Encoding": ae} if ae else {}
    ka = F.KeepAlive(srv120)
    try:
        get = ka.get(path, headers)
        head = ka.request("HEAD", path, headers)
        assert head.status == 200 == get.status
        assert head.body == b""
        assert int(head.header("Content-Length")) == len(get.body) > 0
        for name in ("Content-Type", "ETag", "Vary", "X-Gcs-Channel", "Content-Encoding"):
            assert head.header(name) == get.header(name), name
        # no body bytes followed the HEAD response: the next one parses
        after = ka.get(path, headers)
        assert after.status == 200 and after.body == get.body
        assert ka.same_socket()
    finally:
        ka.close()


# --- errors -----------------------------------------------------------------

KNOWN_PATHS = list(F.V1_PATHS) + [F.v2_path("4.17.0"), "/metrics", "/healthz", "/readyz"] + \
    list(F.OPENAPI_PATHS)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", KNOWN_PATHS)
def test_other_methods_405(srv120, path, method):
    body = b'{"x": 1}' if method in ("POST", "PUT", "PATCH") else None
    resp = F.request(srv120, method, path, {"Content-Type": JSON} if body else None, body)
    assert_json_error(resp, 405)
    assert resp.header("Allow") == "GET, HEAD"


def test_405_keeps_the_connection_usable(srv120):
    ka = F.KeepAlive(srv120)
    try:
        resp = ka.request("POST", F.V1_PATHS[0], {"Content-Type": JSON}, b"x" * 5000)
        assert resp.status == 405
        ok = ka.get(F.V1_PATHS[0])
        assert ok.status == 200 and ok.body == F.expected_v1(F.real_tree("1.2.0"))
    finally:
        ka.close()


@pytest.mark.parametrize("path", [
    "/", "/api", "/api/gathering", "/api/gathering/", "/api/gathering/gathering_rules/",
    "/api/gathering/v3/gathering_rules", "/api/gathering/v2/4.17.0",
    "/api/gathering/v2/4.17.0/gathering_rules/x", "/api/gathering/v2/gathering_rules",
    "/api/gathering/v2/4.17.0/rules", "/API/gathering/gathering_rules", "/metrics/x",
    "/healthz/", "/openapi.json", "/api/gathering/v3/openapi.json", "/%00", "/x%zz",
])
def test_unknown_path_404(srv120, path):
    text = assert_json_error(F.request(srv120, "GET", path), 404)
    assert "not found" in text


def test_empty_version_segment_is_refused(srv120):
    resp = F.request(srv120, "GET", "/api/gathering/v2//gathering_rules")
    assert resp.status in (400, 404)
    assert_json_error(resp, resp.status)


BAD_VERSIONS = ["4.17", "v4.17.0", "4.17.01", "4.17.0-", "4.17.0+", "04.17.0", "4.17.0-01",
                "4.17.0-rc..1", "4.17.0-rc.1+", "4.17.0+a..b", "4", "4.17.0.1", "latest",
                "4.17.0-r%C3%A9", "4.17.0%20", "%20", "4.17.0%", "4.17.0%zz", "%00",
                "4.17.0%00", "4.17.0%2F1", "-4.17.0", "4.17.0_1", "1" * 3000]


@pytest.mark.parametrize("ocp", BAD_VERSIONS, ids=lambda v: v[:20])
def test_bad_version_400(srv120, ocp):
    text = assert_json_error(F.request(srv120, "GET", F.v2_path(ocp)), 400)
    if len(ocp) < 40 and "%" not in ocp:
        assert ocp in text  # names the value


def test_bad_version_does_not_break_the_connection(srv120):
    ka = F.KeepAlive(srv120)
    try:
        for ocp in ("4.17", "%00", "3.9.9", "4.17.0"):
            resp = ka.get(F.v2_path(ocp))
            assert resp.status == {"4.17": 400, "%00": 400, "3.9.9": 404}.get(ocp, 200)
            assert not resp.will_close
        assert ka.same_socket()
    finally:
        ka.close()


ODD_HEADERS = [
    {"Accept-Encoding": "gzip;q="}, {"Accept-Encoding": "gzip;q=abc"}, {"Accept-Encoding": ";;,,"},
    {"Accept-Encoding": "q=1"}, {"Accept-Encoding": "gzip;q=-1"}, {"Accept-Encoding": "*"},
    {"If-None-Match": ""}, {"If-None-Match": "W/"}, {"If-None-Match": '"'},
    {"If-None-Match": ", , ,"}, {"If-None-Match": '"a",' * 500},
    {"User-Agent": "cluster/" + "x" * 5000}, {"User-Agent": "cluster/,"},
    {"User-Agent": "cluster/ cluster/abc"}, {"User-Agent": "\u00e9 cluster/\u00e9".encode().decode("latin-1")},
]


@pytest.mark.parametrize("headers", ODD_HEADERS, ids=lambda h: repr(h)[:30])
@pytest.mark.parametrize("path", [F.V1_PATHS[0], F.v2_path("4.17.0"), F.v2_path("4.17")])
def test_odd_headers_never_500(srv120, path, headers):
    resp = F.request(srv120, "GET", path, headers)
    assert resp.status in (200, 304, 400), resp.body
    if resp.status == 200 and resp.header("Content-Encoding") == "gzip":
        gzip.decompress(resp.body)


# --- health -----------------------------------------------------------------

def test_healthz_and_readyz(srv120):
    resp = F.request(srv120, "GET", "/healthz")
    assert resp.status == 200 and resp.json() == {"status": "ok"}
    assert resp.header("Content-Type") == JSON
    resp = F.request(srv120, "GET", "/readyz")
    assert resp.status == 200 and resp.header("Content-Type") == JSON
    assert isinstance(resp.json()["status"], str)


# --- keep-alive and concurrency ---------------------------------------------

def test_keep_alive_reuses_the_connection(srv120):
    ka = F.KeepAlive(srv120)
    try:
        paths = [F.V1_PATHS[0], F.v2_path("4.17.0"), F.V1_PATHS[1], "/healthz", "/metrics",
                 F.OPENAPI_PATHS[1], F.v2_path("4.18.0-rc.1")]
        for path in paths:
            resp = ka.get(path, {"User-Agent": UA})
            assert resp.status == 200, path
            assert (resp.header("Connection") or "").lower() != "close", path
            assert not resp.will_close, path
        assert ka.same_socket()
    finally:
        ka.close()


def test_pipelined_requests_on_one_socket(srv120):
    one = b"GET /api/gathering/v2/4.17.0/gathering_rules HTTP/1.1\r\nHost: t\r\n\r\n"
    last = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    data, closed = F.raw_exchange(srv120, one * 3 + last)
    assert closed
    assert data.count(b"HTTP/1.1 200 ") == 4
    body = F.expected_v2(F.real_tree("1.2.0"), "remote_configurations/config_default.json")
    assert data.count(body) == 3
    assert data.endswith(b'{"status":"ok"}\n')


def test_concurrent_clients(srv120):
    tree = F.real_tree("1.2.0")
    want = {
        F.V1_PATHS[0]: F.expected_v1(tree),
        F.v2_path("4.17.0"): F.expected_v2(tree, "remote_configurations/config_default.json"),
        F.v2_path("4.17.0-rc.1"): F.expected_v2(tree,
                                                "remote_configurations/config_validation.json"),
    }
    paths = list(want)
    errors, counts = [], []

    def client(n):
        ka = F.KeepAlive(srv120)
        done = 0
        try:
            for i in range(200):
                path = paths[(n + i) % len(paths)]
                resp = ka.get(path, {"User-Agent": "io cluster/%s" % uuid.uuid4()})
                if resp.status != 200 or resp.body != want[path]:
                    errors.append((path, resp.status, resp.body[:100]))
                done += 1
            if not ka.same_socket():
                errors.append("connection %d was not kept alive" % n)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            errors.append(repr(e))
        finally:
            ka.close()
            counts.append(done)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    assert sum(counts) == 32 * 200


# --- limits -----------------------------------------------------------------

def assert_still_serving(srv):
    resp = F.request(srv, "GET", F.v2_path("4.17.0"))
    assert resp.status == 200


def test_oversized_url(srv120):
    path = F.v2_path("4.17.0-" + "a" * 20000)
    data, closed = F.raw_exchange(srv120, b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
    status = F.status_of(data)
    assert status in (414, None), data[:200]
    if status is None:
        assert data == b"" and closed
    assert_still_serving(srv120)


@pytest.mark.parametrize("shape", ["many", "one"])
def test_oversized_headers(srv120, shape):
    if shape == "many":
        headers = b"".join(b"X-Pad-%d: %s\r\n" % (i, b"v" * 100) for i in range(200))
    else:
        headers = b"X-Big: " + b"v" * 20000 + b"\r\n"
    data, closed = F.raw_exchange(
        srv120, b"GET /api/gathering/gathering_rules HTTP/1.1\r\nHost: t\r\n" + headers + b"\r\n")
    status = F.status_of(data)
    assert status in (431, None), data[:200]
    if status is None:
        assert data == b"" and closed
    assert_still_serving(srv120)


def test_garbage_request_line(srv120):
    for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n"):
        data, _ = F.raw_exchange(srv120, junk, timeout=5)
        status = F.status_of(data)
        assert status is None or 400 <= status < 500 or status == 505, (junk, data[:100])
    assert_still_serving(srv120)


@pytest.fixture(scope="module")
def short_timeout_srv():
    with start(base_env(STABLE_VERSION="1.2.0", GCS_CONNECTION_TIMEOUT="2")) as srv:
        yield srv


def test_idle_connection_is_dropped(short_timeout_srv):
    srv = short_timeout_srv
    sock = F.connect_raw(srv)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")  # never finished
        data, closed = F.read_until_closed(sock, 20)
        assert closed, "an idle half-sent request was kept open"
        assert F.status_of(data) in (None, 408)
    finally:
        sock.close()
    assert_still_serving(srv)


def test_idle_keep_alive_is_dropped(short_timeout_srv):
    ka = F.KeepAlive(short_timeout_srv)
    try:
        assert ka.get("/healthz").status == 200
        data, closed = F.read_until_closed(ka.sock, 20)
        assert closed and data == b""
    finally:
        ka.close()


def test_slowloris_is_dropped_while_others_are_served(short_timeout_srv):
    srv = short_timeout_srv
    sock = F.connect_raw(srv)
    served = 0
    dropped = False
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        for _ in range(30):  # 15 times the timeout
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
            sock.settimeout(1.0)
            try:
                chunk = sock.recv(4096)
                if chunk == b"" or F.status_of(chunk) in (408, 400, 431):
                    dropped = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                dropped = True
                break
            assert F.request(srv, "GET", "/healthz", timeout=5).status == 200
            served += 1
    finally:
        sock.close()
    assert dropped, "a client sending one header byte per second was never dropped"
    assert_still_serving(srv)


def test_connection_limit_refuses_at_once_and_recovers():
    # Beyond the limit a connection is closed at once, so that its client
    # fails fast instead of waiting in the backlog; the connections holding
    # the table miss their request deadline and the server serves again.
    with start(base_env(STABLE_VERSION="1.2.0", GCS_CONNECTION_LIMIT="4",
                        GCS_REQUEST_TIMEOUT="2", GCS_THREADS="1")) as srv:
        held = [F.connect_raw(srv) for _ in range(3)]
        try:
            M.wait_for(srv, "gcs_http_connections", 3 + 1, 10)  # the scrape is one
            held.append(F.connect_raw(srv))  # accepted first: one worker, in order
            for _ in range(3):
                data, closed = F.read_until_closed(F.connect_raw(srv), 5)
                assert closed and data == b"", "a connection beyond the limit was kept"
            for s in held:
                assert F.read_until_closed(s, 10)[1], "an idle connection was kept"
        finally:
            for s in held:
                s.close()
        assert_still_serving(srv)
        m = M.scrape(srv)
        assert M.value(m, "gcs_http_connections_refused_total") >= 3
        assert M.value(m, "gcs_http_connections_cut_total", reason="request_timeout") == 4


# --- metrics ----------------------------------------------------------------

def test_metrics_after_known_traffic():
    with start(base_env(STABLE_VERSION="1.2.0")) as srv:
        default_etag = None
        plan = [("4.17.0", 200)] * 3 + [("4.17.0-rc.1", 200)] * 2 + [("5.0.0", 200)] + \
            [("3.9.9", 404)] * 2 + [("4.17", 400)]
        for ocp, code in plan:
            resp = F.request(srv, "GET", F.v2_path(ocp))
            assert resp.status == code
            if ocp == "4.17.0":
                default_etag = resp.header("ETag")
        assert F.request(srv, "GET", F.v2_path("4.17.0"),
                         {"If-None-Match": default_etag}).status == 304
        assert F.request(srv, "GET", F.V1_PATHS[0]).status == 200
        assert F.request(srv, "GET", F.V1_PATHS[1], {"User-Agent": UA}).status == 200
        assert F.request(srv, "POST", F.V1_PATHS[0]).status == 405
        assert F.request(srv, "GET", "/nope").status == 404
        assert F.request(srv, "GET", "/healthz").status == 200

        resp = F.request(srv, "GET", "/metrics")
        assert resp.status == 200
        ctype = resp.header("Content-Type")
        assert ctype.startswith("text/plain") and "version=0.0.4" in ctype
        text = resp.body.decode("utf-8")
        m = M.parse(text)

        io = "io_gathering_remote_configuration"
        assert M.value(m, io, file="remote_configurations/config_default.json",
                        version="1.2.0") == 4
        assert M.value(m, io, file="remote_configurations/config_validation.json",
                        version="1.2.0") == 2

        req = "gcs_http_requests_total"
        assert M.value(m, req, endpoint="v2", code="200") == 6
        assert M.value(m, req, endpoint="v2", code="304") == 1
        assert M.value(m, req, endpoint="v2", code="404") == 2
        assert M.value(m, req, endpoint="v2", code="400") == 1
        assert M.value(m, req, endpoint="v1", code="200") == 2
        assert M.value(m, req, endpoint="v1", code="405") == 1
        assert M.value(m, req, endpoint="other", code="404") == 1
        assert M.value(m, req, endpoint="healthz", code="200") == 1

        hist = "gcs_http_request_duration_seconds"
        assert M.value(m, hist + "_count", endpoint="v2") == 10
        assert M.value(m, hist + "_sum", endpoint="v2") >= 0
        buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in m.items()
                         if name == hist + "_bucket" and dict(labels)["endpoint"] == "v2")
        assert len(buckets) >= 2 and buckets[-1] == (float("inf"), 10)
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))

        served = "gcs_served_total"
        assert M.value(m, served, api="v2", channel="stable", version="1.2.0") == 6
        assert M.value(m, served, api="v1", channel="stable", version="1.2.0") == 2
        assert M.value(m, "gcs_conditions_info", channel="stable", version="1.2.0") == 1
        assert not [k for k in m if k[0] == "gcs_conditions_info" and
                    ("channel", "canary") in k[1]]
        build = [v for (name, _), v in m.items() if name == "gcs_build_info"]
        assert build == [1]
        for family in ("gcs_routing_errors_total", "gcs_routing_reloads_total",
                       "gcs_unleash_fetch_total", "gcs_unleash_last_success_timestamp_seconds",
                       "gcs_http_request_duration_seconds",
                       "io_gathering_remote_configuration"):
            assert re.search(r"^# TYPE %s " % family, text, re.M), family

        again = M.parse(F.request(srv, "GET", "/metrics").body.decode())
        assert M.value(again, req, endpoint="metrics", code="200") >= 1
        assert M.value(again, io, file="remote_configurations/config_default.json",
                        version="1.2.0") == 4


def test_metrics_label_is_the_mapping_path_and_body_version(fixture_tree):
    built, tree = fixture_tree
    with start(built.env(FIXTURE_VERSION)) as srv:
        for ocp in ("4.12.0-rc.2", "4.12.0-rc.3", "4.14.0"):
            assert F.request(srv, "GET", F.v2_path(ocp)).status == 200
        m = M.parse(F.request(srv, "GET", "/metrics").body.decode())
        io = "io_gathering_remote_configuration"
        cand = F.load_json(tree + "/v2/pre/release/candidate.json")["version"]
        ec = F.load_json(tree + "/v2/sub/dir/ec.json")["version"]
        assert cand != ec and cand != FIXTURE_VERSION
        assert M.value(m, io, file="pre/release/candidate.json", version=cand) == 2
        assert M.value(m, io, file="sub/dir/ec.json", version=ec) == 1
        assert not [k for k in m if k[0] == io and "/v2/" in dict(k[1])["file"]]


# --- channels ---------------------------------------------------------------

def test_canary_loaded_without_unleash_serves_stable():
    env = base_env(STABLE_VERSION="1.1.3", CANARY_VERSION="1.2.0")
    stable = F.real_tree("1.1.3")
    with start(env) as srv:
        want_v1 = F.expected_v1(stable)
        want_v2 = F.expected_v2(stable, "config_validation.json")
        agents = [None, "", "insights-operator/4.17.0", "cluster/", UA] + \
            ["insights-operator/4.17.0-x cluster/%s" % uuid.uuid4() for _ in range(100)] + \
            ["io cluster/%s,extra" % uuid.uuid4() for _ in range(20)]
        ka = F.KeepAlive(srv)
        try:
            for ua in agents:
                headers = {"User-Agent": ua} if ua is not None else {}
                assert_served(ka.get(F.V1_PATHS[0], headers), want_v1, "stable")
                assert_served(ka.get(F.v2_path("4.17.0-rc.3"), headers), want_v2, "stable")
        finally:
            ka.close()
        m = M.parse(F.request(srv, "GET", "/metrics").body.decode())
        assert M.value(m, "gcs_conditions_info", channel="stable", version="1.1.3") == 1
        assert M.value(m, "gcs_conditions_info", channel="canary", version="1.2.0") == 1
        assert M.value(m, "gcs_served_total", api="v2", channel="stable",
                        version="1.1.3") == len(agents)
        assert not M.value(m, "gcs_served_total", api="v2", channel="canary", version="1.2.0")


@pytest.mark.parametrize("canary", ["", "none"])
def test_no_canary_is_stable(canary):
    with start(base_env(STABLE_VERSION="1.2.0", CANARY_VERSION=canary)) as srv:
        resp = F.request(srv, "GET", F.V1_PATHS[0], {"User-Agent": UA})
        assert_served(resp, F.expected_v1(F.real_tree("1.2.0")), "stable")


# --- shutdown ---------------------------------------------------------------

def test_sigterm_with_requests_in_flight():
    srv = start(base_env(STABLE_VERSION="1.2.0", GCS_SHUTDOWN_GRACE="10", GCS_THREADS="2"))
    want = F.expected_v1(F.real_tree("1.2.0"))
    try:
        # A request whose body is still coming: in flight for as long as we like.
        slow = F.connect_raw(srv)
        slow.sendall(b"GET /api/gathering/gathering_rules HTTP/1.1\r\nHost: t\r\n"
                     b"Content-Length: 5\r\n\r\n")
        ready = F.KeepAlive(srv)
        assert ready.get("/readyz").status == 200

        stop = threading.Event()
        failures, done = [], []

        def client(n):
            ka = F.KeepAlive(srv)
            count = 0
            try:
                while True:
                    resp = ka.get(F.V1_PATHS[n % 2], {"User-Agent": UA})
                    if resp.status != 200 or resp.body != want:
                        failures.append((n, resp.status, resp.body[:80]))
                    count += 1
                    if resp.will_close or (stop.is_set() and count > 3):
                        break
                    if count > 50000:
                        failures.append((n, "never told to close"))
                        break
            except Exception as e:  # noqa: BLE001 - an in-flight request failed
                failures.append((n, repr(e)))
            finally:
                done.append(count)
                ka.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        srv.signal(signal.SIGTERM)

        # /readyz turns 503 during the grace period, on a connection open before
        statuses = []
        for _ in range(100):
            resp = ready.get("/readyz")
            statuses.append(resp.status)
            if resp.status == 503:
                assert resp.json()["status"]
                break
            time.sleep(0.05)
        assert statuses[-1] == 503, statuses
        stop.set()
        for t in threads:
            t.join(30)
        assert not failures, failures[:5]
        assert len(done) == 16 and min(done) >= 1

        # the in-flight request completes
        slow.sendall(b"hello")
        data, _ = F.read_until_closed(slow, 10)
        assert F.status_of(data) == 200, data[:200]
        assert data.endswith(want)
        slow.close()
        assert srv.proc.wait(30) == 0
    finally:
        srv.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero(sig):
    srv = start(base_env(STABLE_VERSION="1.2.0"))
    try:
        assert F.request(srv, "GET", "/healthz").status == 200
        srv.signal(sig)
        assert srv.proc.wait(30) == 0
    finally:
        srv.stop()
