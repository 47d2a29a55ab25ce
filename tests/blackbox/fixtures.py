"""Helpers to build conditions trees in temporary directories and to compute
the exact bytes gcs must serve for them.

A conditions tree has the layout of the download server:

    <root>/<version>/v1/rules.json
    <root>/<version>/v2/cluster_version_mapping.json
    <root>/<version>/v2/<path named by the mapping>

gcs is pointed at it with GCS_CONDITIONS_URL=<root>/{version} (see tree_env).

The expected bodies are what the service in the field sent: it decoded the
files into Go structs (unknown keys dropped) and re-encoded them with Go's
encoding/json. go_v1_body and go_v2_body reproduce that encoding
independently of the C renderer.
"""
import http.client
import json
import os
import re
import shutil
import socket
import time

from conftest import RULES, base_env

MAPPING = "cluster_version_mapping.json"


# --- Go's encoding/json, as the field service applied it -------------------

def go_json(value):
    """Compact JSON with Go's HTML-safe escaping; dict order as given."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    # These characters only ever occur inside strings, so replacing them in
    # the whole text escapes exactly what Go escapes.
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _sorted_deep(value):
    """A generic value (Go interface{}): maps are encoded with sorted keys."""
    if isinstance(value, dict):
        return {k: _sorted_deep(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_deep(v) for v in value]
    return value


def _go_rule(rule):
    out = {}
    if rule.get("conditions"):
        out["conditions"] = _sorted_deep(rule["conditions"])
    if rule.get("gathering_functions") is not None:
        out["gathering_functions"] = _sorted_deep(rule["gathering_functions"])
    return out


def _go_container_log(log):
    out = {"namespace": log.get("namespace", ""), "pod_name_regex": log.get("pod_name_regex", "")}
    if log.get("previous") is True:
        out["previous"] = True
    out["messages"] = log.get("messages")
    return out


def go_v1_body(doc):
    """Bytes of the v1 API for a decoded v1/rules.json."""
    return go_json({"version": doc["version"],
                    "rules": [_go_rule(r) for r in doc["rules"]]}).encode("utf-8")


def go_v2_body(doc):
    """Bytes of the v2 API for one decoded v2 remote configuration."""
    return go_json({
        "conditional_gathering_rules": [_go_rule(r) for r in doc["conditional_gathering_rules"]],
        "container_logs": [_go_container_log(c) for c in doc["container_logs"]],
        "version": doc["version"],
    }).encode("utf-8")


# --- reading trees ----------------------------------------------------------

def load_json(path):
    with open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def expected_v1(tree_dir):
    """Expected v1 body of the version directory tree_dir."""
    return go_v1_body(load_json(os.path.join(tree_dir, "v1", "rules.json")))


def expected_v2(tree_dir, rel_path):
    """Expected v2 body of the file rel_path (as the mapping names it)."""
    return go_v2_body(load_json(os.path.join(tree_dir, "v2", rel_path)))


def mapping_of(tree_dir):
    return load_json(os.path.join(tree_dir, "v2", MAPPING))


def real_tree(version):
    """The directory of one of the repository's real versions in rules/."""
    return os.path.join(RULES, version)


# --- building trees ---------------------------------------------------------

def alert_rule(alert, **functions):
    """A valid gathering rule firing on alert; functions default to a pod definition."""
    if not functions:
        functions = {"pod_definition": {"alert_name": alert}}
    return {"conditions": [{"type": "alert_is_firing", "alert": {"name": alert}}],
            "gathering_functions": functions}


def container_log(namespace, pod_name_regex, messages, previous=None, **extra):
    log = {"namespace": namespace, "pod_name_regex": pod_name_regex, "messages": list(messages)}
    if previous is not None:
        log["previous"] = previous
    log.update(extra)
    return log


def remote_config(version, rules, logs=()):
    return {"conditional_gathering_rules": list(rules), "container_logs": list(logs),
            "version": version}


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_tree(root, version, v1=None, mapping=None, files=None, v1_version=None):
    """Writes one version tree under root and returns its directory.

    v1: the rules.json document (default: two rules, version v1_version or
    version). mapping: [[ocp version, path], ...] (default: one entry at
    4.0.0). files: {path: remote configuration} (default: one distinct
    configuration per mapped path)."""
    tree = os.path.join(root, version)
    if v1 is None:
        v1 = {"version": v1_version or version,
              "rules": [alert_rule("FixtureAlertOne"), alert_rule("FixtureAlertTwo")]}
    if mapping is None:
        mapping = [["4.0.0", "config.json"]]
    if files is None:
        files = {}
        for i, path in enumerate(dict.fromkeys(p for _, p in mapping)):
            files[path] = distinct_config(version, i)
    write_json(os.path.join(tree, "v1", "rules.json"), v1)
    write_json(os.path.join(tree, "v2", MAPPING), mapping)
    for path, doc in files.items():
        write_json(os.path.join(tree, "v2", path), doc)
    return tree


def distinct_config(version, index):
    """A valid remote configuration whose content differs for every index."""
    alert = "FixtureAlert%d" % index
    return remote_config(
        "%s-file%d" % (version, index),
        [alert_rule(alert, containers_logs={"alert_name": alert, "tail_lines": 10 + index})],
        [container_log("openshift-fixture-%d" % index, "pod-%d-.*" % index,
                       ["message %d" % index])])


def copy_real(root, version, as_version=None):
    """Copies rules/<version> to root/<as_version or version>; returns it."""
    dest = os.path.join(root, as_version or version)
    shutil.copytree(real_tree(version), dest)
    for dirpath, dirnames, filenames in os.walk(dest):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    return dest


def tree_env(root, stable, canary=None, **overrides):
    """base_env serving the trees under root."""
    overrides.setdefault("GCS_CONDITIONS_URL", os.path.join(root, "{version}"))
    overrides["STABLE_VERSION"] = stable
    overrides["CANARY_VERSION"] = canary
    return base_env(**overrides)




# --- HTTP helpers -----------------------------------------------------------

V1_PATHS = ("/api/gathering/gathering_rules", "/api/gathering/v1/gathering_rules")
OPENAPI_PATHS = ("/api/gathering/openapi.json", "/api/gathering/v1/openapi.json",
                 "/api/gathering/v2/openapi.json")


def v2_path(ocp_version):
    return "/api/gathering/v2/%s/gathering_rules" % ocp_version


class Response:
    """A complete response: status, headers (case-insensitive), body bytes."""

    def __init__(self, resp, body):
        self.status = resp.status
        self.headers = resp.headers
        self.body = body
        self.will_close = resp.will_close

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def request(srv, method, path, headers=None, body=None, timeout=10):
    """One request on a new connection."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp, resp.read())
    finally:
        conn.close()


class KeepAlive:
    """One persistent HTTP/1.1 connection; fails loudly instead of reconnecting."""

    def __init__(self, srv, timeout=10):
        self.conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
        self.conn.auto_open = 0
        self.conn.connect()
        self.sock = self.conn.sock

    def request(self, method, path, headers=None, body=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        resp = self.conn.getresponse()
        return Response(resp, resp.read())

    def get(self, path, headers=None):
        return self.request("GET", path, headers)

    def same_socket(self):
        return self.conn.sock is not None and self.conn.sock is self.sock

    def close(self):
        self.conn.close()


def connect_raw(srv, timeout=10):
    return socket.create_connection((srv.host, srv.port), timeout=timeout)


def read_until_closed(sock, timeout):
    """Everything the peer sends until it closes or resets the connection, or
    timeout seconds pass. Returns (data, closed)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return data, False
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not chunk:
            return data, True
        data += chunk


def raw_exchange(srv, payload, timeout=10):
    """Sends raw bytes on a new connection; returns what came back before the
    server closed (or timeout). A reset while sending counts as closed."""
    sock = connect_raw(srv, timeout)
    try:
        try:
            sock.sendall(payload)
        except (ConnectionResetError, BrokenPipeError):
            pass
        return read_until_closed(sock, timeout)
    finally:
        sock.close()


def status_of(raw):
    """The status code of the first response in raw bytes, or None."""
    if not raw.startswith(b"HTTP/1."):
        return None
    return int(raw.split(b" ", 2)[1])


_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def metric_samples(text):
    """{(name, frozenset(labels.items())): value} from a Prometheus text page,
    series names exactly as written. Fails on a line that is not a sample."""
    # the client library's parser checks the format as a whole (it renames
    # counter samples, so the values are read below)
    from prometheus_client.parser import text_string_to_metric_families
    list(text_string_to_metric_families(text))
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.fullmatch(line)
        assert m, "not a Prometheus sample line: %r" % line
        name, body, value = m.groups()
        labels = {}
        pos = 0
        while body and pos < len(body):
            lm = _LABEL.match(body, pos)
            assert lm, "bad labels in %r" % line
            labels[lm.group(1)] = re.sub(r"\\(.)", lambda e: "\n" if e.group(1) == "n" else e.group(1),
                                         lm.group(2))
            pos = lm.end()
        key = (name, frozenset(labels.items()))
        assert key not in out, "duplicate series %r" % line
        out[key] = float(value)
    return out


def metric(samples, name, **labels):
    """The value of one series, or None when absent."""
    return samples.get((name, frozenset(labels.items())))
