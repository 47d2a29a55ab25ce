"""The OpenAPI document (src/openapi.json): valid for a real OpenAPI
validator, served as is, and true: every operation it names answers with the
status codes, headers, content types and bodies it describes."""
import gzip
import json
import os
import signal
import subprocess
import time

import jsonschema
import pytest

import fixtures as F
from conftest import ROOT, GcsServer, base_env, npm_installed

DOC_PATH = os.path.join(ROOT, "src", "openapi.json")
# @apidevtools/swagger-parser, pinned by tests/support/openapi/package-lock.json
VALIDATOR_PACKAGE = os.path.join(ROOT, "tests", "support", "openapi")
CACHE = os.path.join(ROOT, "tests", ".cache", "openapi-validator")

with open(DOC_PATH, "rb") as _f:
    DOC_BYTES = _f.read()
DOC = json.loads(DOC_BYTES)

CONTRACT_PATHS = {
    "/api/gathering/gathering_rules", "/api/gathering/v1/gathering_rules",
    "/api/gathering/v2/{ocpVersion}/gathering_rules", "/api/gathering/openapi.json",
    "/api/gathering/v1/openapi.json", "/api/gathering/v2/openapi.json", "/metrics", "/healthz",
    "/readyz",
}
METHODS = ("get", "head", "post", "put", "delete", "patch", "options", "trace")


def operations():
    for path, item in DOC["paths"].items():
        for method in METHODS:
            if method in item:
                for status in item[method]["responses"]:
                    yield path, method, status


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        assert node["$ref"].startswith("#/")
        target = DOC
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def validate(instance, schema):
    resolver = jsonschema.RefResolver("", DOC)
    jsonschema.Draft4Validator(schema, resolver=resolver).validate(instance)


# --- the document itself ----------------------------------------------------

def swagger_parser(doc_file):
    """Runs the npm validator on doc_file; returns (exit code, output)."""
    module = os.path.join(npm_installed(VALIDATOR_PACKAGE, CACHE), "node_modules", "@apidevtools",
                          "swagger-parser")
    script = ("const P = require(process.argv[1]);"
              "P.validate(process.argv[2]).then(a => console.log('valid', a.openapi))"
              ".catch(e => { console.error(e.message); process.exit(1); });")
    p = subprocess.run(["node", "-e", script, module, doc_file], capture_output=True, text=True,
                       timeout=120)
    return p.returncode, p.stdout + p.stderr


def test_document_is_valid_openapi_3():
    assert DOC["openapi"] == "3.0.3"
    code, out = swagger_parser(DOC_PATH)
    assert code == 0, out
    assert "valid 3.0.3" in out


def test_validator_refuses_a_broken_document(tmp_path):
    broken = json.loads(DOC_BYTES)
    del broken["paths"]["/healthz"]["get"]["responses"]
    broken["paths"]["/metrics"]["get"]["responses"]["200"]["content"]["text/plain"]["schema"] = \
        {"$ref": "#/components/schemas/Missing"}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    code, out = swagger_parser(str(path))
    assert code == 1, out
    assert 'Token "Missing" does not exist' in out, out


def test_document_names_every_path_of_the_contract():
    assert set(DOC["paths"]) == CONTRACT_PATHS


def test_examples_match_their_schemas():
    checked = 0
    for path, method, status in operations():
        response = resolve(DOC["paths"][path][method]["responses"][status])
        for media in response.get("content", {}).values():
            schema = media["schema"]
            examples = [e["value"] for e in media.get("examples", {}).values()]
            if "example" in media:
                examples.append(media["example"])
            for example in examples:
                validate(example, schema)
                checked += 1
    for param in DOC["components"]["parameters"].values():
        for example in param.get("examples", {}).values():
            validate(example["value"], param["schema"])
            checked += 1
    assert checked >= 8


def test_schemas_reject_what_clients_reject():
    v2 = resolve({"$ref": "#/components/schemas/RemoteConfigurationV2"})
    good = {"conditional_gathering_rules": [], "container_logs": [], "version": "1"}
    validate(good, v2)
    for bad in (dict(good, extra=1), {"container_logs": [], "version": "1"},
                dict(good, container_logs=[{"namespace": "n", "pod_name_regex": "p",
                                            "messages": [], "previous": False}]),
                dict(good, conditional_gathering_rules=[{"conditions": [],
                                                         "gathering_functions": {"f": {}}}])):
        with pytest.raises(jsonschema.ValidationError):
            validate(bad, v2)


# --- served as is -----------------------------------------------------------

@pytest.fixture(scope="module")
def srv():
    with GcsServer(base_env(STABLE_VERSION="1.2.0", GCS_THREADS="2")) as s:
        yield s


@pytest.mark.parametrize("path", F.OPENAPI_PATHS)
def test_served_as_is(srv, path):
    resp = F.request(srv, "GET", path)
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/json"
    assert resp.body == DOC_BYTES


@pytest.mark.parametrize("path", F.OPENAPI_PATHS)
def test_served_to_gzip_clients(srv, path):
    resp = F.request(srv, "GET", path, {"Accept-Encoding": "gzip"})
    assert resp.status == 200
    body = resp.body
    if resp.header("Content-Encoding") == "gzip":
        body = gzip.decompress(resp.body)
    else:
        assert resp.header("Content-Encoding") is None
    assert body == DOC_BYTES


# --- every operation answers as described -----------------------------------

V2_TEMPLATE = "/api/gathering/v2/{ocpVersion}/gathering_rules"


def concrete(path, ocp="4.17.0"):
    return path.replace("{ocpVersion}", ocp)


def draining_response(path):
    """A response from a server that got SIGTERM while a request is in flight."""
    srv = GcsServer(base_env(STABLE_VERSION="1.2.0", GCS_SHUTDOWN_GRACE="10", GCS_THREADS="2"))
    try:
        slow = F.connect_raw(srv)
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n")
        ka = F.KeepAlive(srv)
        assert ka.get(path).status == 200
        srv.signal(signal.SIGTERM)
        for _ in range(200):
            resp = ka.get(path)
            if resp.status != 200:
                break
            time.sleep(0.05)
        slow.sendall(b"x")
        F.read_until_closed(slow, 10)
        slow.close()
        assert srv.proc.wait(30) == 0
        return resp
    finally:
        srv.stop()


def trigger(srv, path, method, status):
    """Sends the request that the contract says yields status; returns it."""
    m = method.upper()
    if status == "200":
        return F.request(srv, m, concrete(path))
    if status == "304":
        etag = F.request(srv, "GET", concrete(path)).header("ETag")
        return F.request(srv, m, concrete(path), {"If-None-Match": etag})
    if status == "400" and path == V2_TEMPLATE:
        return F.request(srv, m, concrete(path, "4.17"))
    if status == "404" and path == V2_TEMPLATE:
        return F.request(srv, m, concrete(path, "3.9.9"))
    if status == "503" and path == "/readyz":
        return draining_response(path)
    raise AssertionError("the document names %s %s %s, which this test cannot produce: "
                         "teach trigger() how, or fix the document" % (method, path, status))


def check_response(resp, method, status, described):
    assert resp.status == int(status)
    for name, header in described.get("headers", {}).items():
        header = resolve(header)
        value = resp.header(name)
        if name == "Content-Encoding":
            assert value is None  # the request did not accept gzip
            continue
        assert value is not None, "documented header %s missing" % name
        if "enum" in header["schema"]:
            assert value in header["schema"]["enum"], (name, value)
    content = described.get("content", {})
    if method == "head" or not content:
        assert resp.body == b""
        return
    ctype = resp.header("Content-Type") or ""
    essence = ctype.split(";")[0].strip()
    media = {k.split(";")[0].strip(): v for k, v in content.items()}
    assert essence in media, (ctype, list(content))
    schema = media[essence]["schema"]
    if essence == "application/json":
        validate(json.loads(resp.body), schema)
    else:
        validate(resp.body.decode("utf-8"), schema)


@pytest.mark.parametrize("path,method,status", list(operations()))
def test_operation_answers_as_described(srv, path, method, status):
    described = resolve(DOC["paths"][path][method]["responses"][status])
    resp = trigger(srv, path, method, status)
    check_response(resp, method, status, described)


@pytest.mark.parametrize("name", sorted(
    DOC["components"]["parameters"]["OcpVersion"].get("examples", {})))
def test_ocp_version_examples_are_served(srv, name):
    example = DOC["components"]["parameters"]["OcpVersion"]["examples"][name]["value"]
    described = resolve(DOC["paths"][V2_TEMPLATE]["get"]["responses"]["200"])
    resp = F.request(srv, "GET", concrete(V2_TEMPLATE, example))
    check_response(resp, "get", "200", described)


@pytest.mark.parametrize("path", sorted(p for p in DOC["paths"] if "gathering_rules" in p))
def test_gzip_bodies_match_the_schema(srv, path):
    described = resolve(DOC["paths"][path]["get"]["responses"]["200"])
    resp = F.request(srv, "GET", concrete(path), {"Accept-Encoding": "gzip"})
    assert resp.status == 200
    enum = resolve(described["headers"]["Content-Encoding"])["schema"]["enum"]
    assert resp.header("Content-Encoding") in enum
    validate(json.loads(gzip.decompress(resp.body)),
             described["content"]["application/json"]["schema"])


def test_undocumented_methods_get_405_as_the_description_says(srv):
    assert "405" in DOC["info"]["description"] and "GET, HEAD" in DOC["info"]["description"]
    for path in DOC["paths"]:
        resp = F.request(srv, "DELETE", concrete(path))
        assert resp.status == 405 and resp.header("Allow") == "GET, HEAD"
        validate(resp.json(), {"$ref": "#/components/schemas/Status"})
