#!/usr/bin/env python3
"""A small stand-in for the Unleash client API that answers as it is told.

The real Unleash server (tests/support/unleash.sh) cannot be made to answer
401, 429 or 503 on demand; this server can, on 127.0.0.1, so the tests see how
build/gcs backs off over a real socket. It records every request it receives
(time, method, path, headers, body), so the tests also read the headers an
SDK must send on every call.

    with FaultServer(features={"features": [...]}) as srv:
        srv.answer(503, 503, 200)   # the next polls get these, then `default`
        srv.default = 200           # what polls get when nothing is queued
        ... GCS_UNLEASH_URL=srv.url ...
        srv.requests("/api/client/features")   # what gcs sent, in order

GET  /api/client/features   the queued status, else `default`; 200 answers
                            carry `features` as the body with an ETag (304
                            when If-None-Match names it)
POST /api/client/register   202
POST /api/client/metrics    202
"""
import json
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FEATURES = "/api/client/features"


class Request:
    def __init__(self, method, path, headers, body):
        self.time = time.monotonic()
        self.method = method
        self.path = path
        self.headers = headers  # {lower-case name: value}
        self.body = body
        self.status = None  # what it was answered

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%s %s at %.3f>" % (self.method, self.path, self.time)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # the request log replaces stderr noise
        pass

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = Request(self.command, self.path, headers, body)
        self.server.owner._record(req)
        return req

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        req = self._record()
        if self.path.split("?", 1)[0] != FEATURES:
            req.status = 404
            self._send(404, b'{"error":"not found"}')
            return
        status, body = self.server.owner._next_answer()
        etag = '"%08x"' % zlib.crc32(body)
        if status == 200 and self.headers.get("If-None-Match") == etag:
            status = 304
            self._send(304, headers=[("ETag", etag)])
        elif status == 200:
            self._send(200, body, [("Content-Type", "application/json"), ("ETag", etag)])
        else:
            self._send(status, json.dumps({"error": "told to answer %d" % status}).encode())
        req.status = status

    def do_POST(self):
        req = self._record()
        known = self.path in ("/api/client/register", "/api/client/metrics")
        req.status = 202 if known else 404
        self._send(req.status)


class FaultServer:
    def __init__(self, features=None, default=200):
        self.features = features if features is not None else {"version": 2, "features": []}
        self.default = default
        self._queue = []
        self._log = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/api" % self.port
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def answer(self, *statuses):
        """The statuses of the next polls, in order; then `default` again."""
        with self._lock:
            self._queue.extend(statuses)

    def _next_answer(self):
        with self._lock:
            status = self._queue.pop(0) if self._queue else self.default
            body = json.dumps(self.features).encode()
        return status, body

    def _record(self, req):
        with self._lock:
            self._log.append(req)

    def requests(self, path=None, method=None):
        """What was received, in order; path compares without the query."""
        with self._lock:
            log = list(self._log)
        return [r for r in log if (path is None or r.path.split("?", 1)[0] == path)
                and (method is None or r.method == method)]

    def polls(self):
        return self.requests(FEATURES, "GET")

    def wait_polls(self, n, timeout):
        """The polls once there are at least n; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        while len(self.polls()) < n:
            if time.monotonic() > deadline:
                raise AssertionError("only %d of %d polls within %.1f s" %
                                     (len(self.polls()), n, timeout))
            time.sleep(0.02)
        return self.polls()
