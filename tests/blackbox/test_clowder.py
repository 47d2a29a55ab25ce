"""gcs under Clowder: the file ACG_CONFIG names, and the metrics listener.

A server started with nothing but ACG_CONFIG (and the conditions' location)
takes its API port, its metrics port and path and its Unleash connection
from the file: the test writes the file as Clowder would (checked first
against Clowder's schema by an independent validator), points its
featureFlags at the suite's real Unleash server, and watches gcs register
there with the file's token and follow a rollout. Every broken file exits 2
before listening, with one line naming the file, the pointer and the rule.
The precedence of GCS_* variables over the file, row by row, is in
tests/unit/test_config.c.
"""
import json
import os
import socket
import urllib.parse
import uuid

import pytest

from conftest import ROOT, base_env, cluster_ids, run_gcs, wait_until
import metrics as M
from test_unleash import Channels

SCHEMA = os.path.join(ROOT, "src", "clowder.schema.json")
V1 = "/api/gathering/gathering_rules"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_clowder(path, doc, check=True):
    if check:
        import jsonschema
        with open(SCHEMA, encoding="utf-8") as f:
            jsonschema.Draft7Validator(json.load(f)).validate(doc)
    with open(path, "w", encoding="utf-8") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def clowder_doc(public_port, metrics_port, metrics_path="/metrics", feature_flags=None):
    doc = {"publicPort": public_port, "webPort": public_port, "privatePort": 10000,
           "metricsPort": metrics_port, "metricsPath": metrics_path,
           "logging": {"type": "null"},
           "metadata": {"name": "gcs", "envName": "env-e2e",
                        "deployments": [{"name": "service", "image": "gcs:e2e"}]}}
    if feature_flags:
        doc["featureFlags"] = feature_flags
    return doc


def clowder_env(acg_config, **overrides):
    """base_env with ACG_CONFIG and no GCS_LISTEN: the file gives the ports."""
    return base_env(ACG_CONFIG=acg_config, GCS_LISTEN=None, **overrides)


# --- broken files: exit 2 before listening, one line each ---------------------

VALID = clowder_doc(8000, 9000)

BROKEN = {
    "missing": (None, "cannot read: No such file or directory"),
    "a directory": ("DIR", "cannot read: is a directory"),
    # opened without blocking: a FIFO with no writer must not hold startup
    "a FIFO": ("FIFO", "cannot read: not a regular file"),
    "not JSON": ('{"publicPort": 8000,', "invalid JSON: line 1, column 20: string or '}' expected "
                                        "near end of file"),
    "duplicate key": ('{"metricsPort": 9000, "metricsPort": 9001}',
                      "invalid JSON: line 1, column 35: duplicate object key near '\"metricsPort\"'"),
    "schema: required property": (dict(VALID, metricsPath=None),
                                  'missing required property "metricsPath"'),
    "schema: type": (dict(VALID, metricsPort="9000"), "/metricsPort: expected integer, got string"),
    "schema: enum": (dict(VALID, featureFlags={"hostname": "u", "port": 1, "scheme": "gopher",
                                               "clientAccessToken": "t"}),
                     '/featureFlags/scheme: "gopher" is not one of ["http","https"]'),
    "public port out of range": (dict(VALID, publicPort=65536),
                                 "/publicPort: 65536 is not a port (1 to 65535)"),
    "metrics port out of range": (dict(VALID, metricsPort=0),
                                  "/metricsPort: 0 is not a port (1 to 65535)"),
    "Unleash port out of range": (dict(VALID, featureFlags={"hostname": "u", "port": 70000,
                                                            "scheme": "http",
                                                            "clientAccessToken": "t"}),
                                  "/featureFlags/port: 70000 is not a port (1 to 65535)"),
    "featureFlags without a token": (dict(VALID, featureFlags={"hostname": "u", "port": 4242,
                                                               "scheme": "http"}),
                                     "/featureFlags/clientAccessToken: missing, and "
                                     "GCS_UNLEASH_TOKEN is not set: Unleash refuses a client "
                                     "without a token"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
@pytest.mark.parametrize("mode", ["serve", "--check-config"])
def test_a_broken_clowder_file_exits_2_naming_file_pointer_and_rule(tmp_path, case, mode):
    content, says = BROKEN[case]
    path = str(tmp_path / "cdappconfig.json")
    if content == "DIR":
        path = str(tmp_path)
    elif content == "FIFO":
        os.mkfifo(path)
    elif isinstance(content, dict):
        write_clowder(path, {k: v for k, v in content.items() if v is not None}, check=False)
    elif content is not None:
        write_clowder(path, content, check=False)
    res = run_gcs([] if mode == "serve" else [mode], clowder_env(path), timeout=30)
    assert res.returncode == 2, res.stderr
    assert res.stdout == ""
    assert res.stderr == "gcs: ACG_CONFIG %s: %s (see gcs --help)\n" % (path, says)


# --- the metrics listener -------------------------------------------------------

def test_metrics_on_their_own_port_only(server_factory):
    srv = server_factory(base_env(GCS_METRICS_LISTEN="127.0.0.1:0"))
    assert srv.metrics_port != srv.port
    assert srv.get("/metrics")[0] == 404, "clusters must not see the metrics"
    status, headers, body = srv.get_metrics()
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert M.parse(body.decode())
    # The metrics listener answers nothing else.
    for path in (V1, "/healthz", "/readyz", "/api/gathering/openapi.json", "/metrics/x"):
        assert srv.get(path, base=srv.metrics_url)[0] == 404, path
    assert srv.get("/metrics", base=srv.metrics_url, method="HEAD")[0] == 200
    assert srv.get("/metrics", base=srv.metrics_url, method="POST")[0] == 405
    # The API is unchanged.
    assert srv.get(V1)[0] == 200 and srv.get("/healthz")[0] == 200
    # Requests to the metrics are counted as before (the GET and the HEAD;
    # this one is counted once answered).
    samples = M.scrape(srv)
    assert M.total(samples, "gcs_http_requests_total", endpoint="metrics", code="200") == 2


def test_metrics_path_moves_on_either_listener(server_factory):
    own = server_factory(base_env(GCS_METRICS_LISTEN="127.0.0.1:0", GCS_METRICS_PATH="/q/m"))
    assert own.get_metrics("/q/m")[0] == 200
    assert own.get_metrics("/metrics")[0] == 404
    shared = server_factory(base_env(GCS_METRICS_PATH="/internal/metrics"))
    assert shared.get("/internal/metrics")[0] == 200
    assert shared.get("/metrics")[0] == 404


@pytest.mark.parametrize("path", ["/healthz", "/api/gathering/v2/4.17.0/gathering_rules"])
def test_a_metrics_path_that_hides_an_api_path_is_refused(path):
    res = run_gcs(["--check-config"], base_env(GCS_METRICS_PATH=path))
    assert res.returncode == 2
    assert res.stderr == ('gcs: GCS_METRICS_PATH="%s": is a path of the API; choose another, or '
                          'serve the metrics on a port of their own (GCS_METRICS_LISTEN) (see gcs '
                          '--help)\n' % path)
    # On a port of their own, any path will do.
    assert run_gcs(["--check-config"], base_env(GCS_METRICS_PATH=path,
                                                GCS_METRICS_LISTEN="127.0.0.1:0")).returncode == 0


def test_metrics_listener_address_taken_fails_before_serving():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        taken = "127.0.0.1:%d" % s.getsockname()[1]
        res = run_gcs([], base_env(GCS_METRICS_LISTEN=taken, GCS_LISTEN="127.0.0.1:0"), timeout=60)
    assert res.returncode == 1
    assert "gcs: cannot listen on %s for metrics" % taken in res.stderr


# --- a whole Clowder deployment against the real Unleash ------------------------

def test_only_acg_config_ports_metrics_and_unleash(unleash, server_factory, tmp_path):
    admin, state, _ = unleash
    toggle = "e2e-clowder"
    app = "gcs-clowder-" + uuid.uuid4().hex[:8]
    admin.set_rollout(toggle, 0)
    admin.wait_served(toggle, True, 0)
    url = urllib.parse.urlsplit(state["UNLEASH_URL"])
    assert url.path.rstrip("/") == "/api", url
    public, metrics = free_port(), free_port()
    path = write_clowder(tmp_path / "cdappconfig.json", clowder_doc(
        public, metrics, "/clowder/metrics",
        {"hostname": url.hostname, "port": url.port, "scheme": url.scheme,
         "clientAccessToken": state["UNLEASH_BACKEND_TOKEN"]}))
    env = clowder_env(path, CANARY_VERSION="1.2.0", GCS_UNLEASH_TOGGLE=toggle,
                      GCS_UNLEASH_ENVIRONMENT="development", GCS_UNLEASH_REFRESH="1",
                      GCS_UNLEASH_METRICS_INTERVAL="1", GCS_UNLEASH_APP_NAME=app)
    assert not any(k in env for k in ("GCS_LISTEN", "GCS_METRICS_LISTEN", "GCS_METRICS_PATH",
                                      "GCS_UNLEASH_URL", "GCS_UNLEASH_TOKEN"))
    srv = server_factory(env)

    # The ports and the path are the file's.
    assert srv.address == "0.0.0.0:%d" % public
    assert srv.metrics_address == "0.0.0.0:%d" % metrics
    assert srv.get(V1)[0] == 200
    assert srv.get("/metrics")[0] == 404 and srv.get("/clowder/metrics")[0] == 404
    assert srv.get_metrics("/clowder/metrics")[0] == 200
    said = [r for r in srv.logs() if r.get("msg") == "clowder configuration"]
    assert said and said[0]["unleash"] == "%s://%s:%d/api" % (url.scheme, url.hostname, url.port)
    assert state["UNLEASH_BACKEND_TOKEN"] not in "\n".join(srv.log_lines), "a token is logged"

    # The Unleash connection is the file's: polls succeed with its token,
    # and a rollout change in Unleash changes which channel clusters get.
    def scraped(name, **labels):
        _, _, body = srv.get_metrics("/clowder/metrics")
        return M.total(M.parse(body.decode()), name, **labels)

    wait_until("a successful poll", lambda: (scraped("gcs_unleash_fetch_total", result="ok") or 0) > 0,
               30)
    ids = cluster_ids(200, "clowder")
    ch = Channels(srv)
    assert set(ch.many(ids).values()) == {"stable"}
    admin.set_rollout(toggle, 100)
    admin.wait_served(toggle, True, 100)
    wait_until("rollout 100 seen", lambda: scraped("gcs_unleash_rollout_percent") == 100.0, 30)
    assert set(ch.many(ids).values()) == {"canary"}
    # It registered under the file's token, as the application it says.
    wait_until("Unleash lists the instance",
               lambda: (admin.application(app) or {}).get("instances"), timeout=60)
