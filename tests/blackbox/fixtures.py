"""The exact bytes gcs must serve for a conditions tree (trees.py builds
them), and HTTP helpers.

The expected bodies are what the service in the field sent: it decoded the
files into Go structs (unknown keys dropped) and re-encoded them with Go's
encoding/json. go_v1_body and go_v2_body reproduce that encoding
independently of the C renderer.
"""
import http.client
import json
import os
import socket
import time

from conftest import RULES

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
