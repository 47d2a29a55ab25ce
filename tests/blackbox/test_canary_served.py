"""The server's "canary served" log line: once per cluster the first time it is
answered with the canary (200 or 304, v1 or v2), never for stable, never for
a request the canary did not answer (404), and exactly once when many
requests for a new cluster arrive at the same time."""
from concurrent.futures import ThreadPoolExecutor

from conftest import base_env
from fixtures import request

STABLE, CANARY = "1.1.3", "1.2.0"
# canary for IDs starting with "c", stable for the others
SCRIPT = """
return { route = function(request)
  local id = request.cluster_id
  if id and id:sub(1, 1) == "c" then return "canary", "test: c prefix" end
  return "stable", "test: other"
end }
"""
V1 = "/api/gathering/gathering_rules"


def v2(ocp):
    return "/api/gathering/v2/%s/gathering_rules" % ocp


def ua(cluster):
    return {"User-Agent": "insights-operator/4.17.0 cluster/%s" % cluster}


def served_lines(srv):
    return [r for r in srv.logs(wait=0.3) if r.get("msg") == "canary served"]


def start(server_factory, tmp_path, canary=CANARY):
    script = tmp_path / "routing.lua"
    script.write_text(SCRIPT)
    return server_factory(base_env(STABLE_VERSION=STABLE, CANARY_VERSION=canary,
                                   GCS_ROUTING_SCRIPT=str(script), GCS_THREADS=4))


def test_once_per_cluster_never_for_stable(server_factory, tmp_path):
    srv = start(server_factory, tmp_path)
    for _ in range(3):
        for cluster in ("c-first", "c-second", "s-stable"):
            r = request(srv, "GET", V1, ua(cluster))
            assert r.status == 200
            r = request(srv, "GET", v2("4.17.3"), ua(cluster))
            assert r.status == 200
            assert r.header("X-Gcs-Channel") == ("canary" if cluster[0] == "c" else "stable")
    lines = served_lines(srv)
    assert sorted(r["cluster_id"] for r in lines) == ["c-first", "c-second"], lines
    first = [r for r in lines if r["cluster_id"] == "c-first"][0]
    # the first request answered with the canary names the API it came by
    assert first == {**first, "level": "info", "version": CANARY, "api": "v1",
                     "ocp_version": None, "reason": "test: c prefix"}


def test_v2_first_and_304_count_and_404_does_not(server_factory, tmp_path):
    srv = start(server_factory, tmp_path)
    # below the mapping's first entry: 404, the cluster was not served
    assert request(srv, "GET", v2("3.0.0"), ua("c-not-served")).status == 404
    r = request(srv, "GET", v2("4.16.2"), ua("c-by-v2"))
    assert r.status == 200
    etag = r.header("ETag")
    r = request(srv, "GET", v2("4.16.2"), {**ua("c-by-304"), "If-None-Match": etag})
    assert r.status == 304
    lines = served_lines(srv)
    assert [(r["cluster_id"], r["api"], r["ocp_version"]) for r in lines] == [
        ("c-by-v2", "v2", "4.16.2"), ("c-by-304", "v2", "4.16.2")], lines
    assert request(srv, "GET", V1, ua("c-not-served")).status == 200
    assert [r["cluster_id"] for r in served_lines(srv)][-1] == "c-not-served"


def test_exactly_once_under_concurrent_requests(server_factory, tmp_path):
    srv = start(server_factory, tmp_path)
    clusters = ["c-burst-%d" % i for i in range(20)]
    work = [c for c in clusters for _ in range(10)]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda c: request(srv, "GET", V1, ua(c)).status, work))
    assert set(statuses) == {200}
    got = sorted(r["cluster_id"] for r in served_lines(srv))
    assert got == sorted(clusters)


def test_nothing_logged_without_a_canary(server_factory, tmp_path):
    srv = start(server_factory, tmp_path, canary=None)
    assert request(srv, "GET", V1, ua("c-no-canary")).status == 200
    assert served_lines(srv) == []
