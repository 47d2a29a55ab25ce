#!/usr/bin/env python3
"""A real HTTP/1.1 download server for conditions trees, with injectable faults.

It serves the files under a root directory on 127.0.0.1 and can be told, per
path prefix, to misbehave the way real download servers and proxies do, so the
tests see how build/gcs reacts to each failure over a real socket.

Fault kinds (each fires `times` times, then the path is served normally;
times None = always):
  status    answer with `status` (404, 429, 503, ...), optional Retry-After
  slow      sleep `seconds` before answering (normally, afterwards)
  drop      accept the request, then reset the connection (RST), no answer
  close     accept the request, then close the connection cleanly, no answer
  truncate  announce the full Content-Length, send half of the body, close
  redirect  answer `status` (302) with Location: `location`
  huge      answer 200 with `size` bytes of spaces, with a Content-Length or,
            when `chunked`, chunked transfer encoding

Every request (except control ones) is logged: method, path, fault applied,
status sent. Tests read the log to count tries.

Control, besides the Python API:
  GET    /_control/log     the request log as JSON
  POST   /_control/faults  add one fault, body {"prefix": ..., "kind": ..., ...}
  DELETE /_control/faults  remove every fault
  --faults FILE            a JSON list of such objects, re-read when it changes

As a module:
    with DownloadServer(root) as srv:
        srv.add_fault("/1.2.0/v1/", "status", status=503, times=2)
        ... srv.url ... srv.count("/1.2.0/v1/rules.json") ...
As a program:
    python3 download_server.py --root DIR --port 0   # prints the port, serves until SIGTERM
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ("status", "slow", "drop", "close", "truncate", "redirect", "huge")
CONTROL = "/_control/"


class Fault:
    def __init__(self, prefix, kind, status=None, times=None, seconds=0.0, location="",
                 size=0, chunked=False, retry_after=None):
        if kind not in KINDS:
            raise ValueError("unknown fault kind %r (one of %s)" % (kind, ", ".join(KINDS)))
        if not prefix.startswith("/"):
            raise ValueError("fault prefix must start with /: %r" % prefix)
        self.prefix = prefix
        self.kind = kind
        self.status = status if status is not None else (302 if kind == "redirect" else 503)
        self.times = times
        self.seconds = float(seconds)
        self.location = location
        self.size = int(size)
        self.chunked = bool(chunked)
        self.retry_after = retry_after
        self.hits = 0

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        return cls(d.pop("prefix"), d.pop("kind"), **d)

    def take(self):
        """True when the fault applies to this request (and counts it)."""
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


class _State:
    def __init__(self, root, faults_file=None):
        self.root = os.path.realpath(root)
        self.lock = threading.Lock()
        self.faults = []
        self.log = []
        self.stopping = threading.Event()
        self.faults_file = faults_file
        self.faults_file_sig = None
        self.file_faults = []

    def _reload_file(self):
        if not self.faults_file:
            return
        try:
            st = os.stat(self.faults_file)
            sig = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            sig = None
        if sig == self.faults_file_sig:
            return
        self.faults_file_sig = sig
        faults = []
        if sig is not None:
            with open(self.faults_file) as f:
                faults = [Fault.from_dict(d) for d in json.load(f)]
        self.file_faults = faults

    def pick(self, path):
        """The fault for path (longest matching prefix that still fires), or None."""
        with self.lock:
            self._reload_file()
            matching = [f for f in self.faults + self.file_faults if path.startswith(f.prefix)]
            matching.sort(key=lambda f: len(f.prefix), reverse=True)
            for f in matching:
                if f.take():
                    return f
        return None

    def record(self, method, path, fault, status):
        with self.lock:
            self.log.append({"method": method, "path": path, "fault": fault, "status": status,
                             "time": time.time()})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "download-server/1"

    def log_message(self, fmt, *args):  # the request log replaces stderr noise
        pass

    @property
    def state(self):
        return self.server.state

    def _path(self):
        return urllib.parse.urlsplit(self.path).path

    def do_GET(self):
        self._serve(body=True)

    def do_HEAD(self):
        self._serve(body=False)

    def do_POST(self):
        if self._path() == CONTROL + "faults":
            length = int(self.headers.get("Content-Length") or 0)
            try:
                fault = Fault.from_dict(json.loads(self.rfile.read(length)))
            except (ValueError, KeyError, TypeError) as e:
                return self._send_simple(400, json.dumps({"error": str(e)}).encode())
            with self.state.lock:
                self.state.faults.append(fault)
            return self._send_simple(204, b"")
        self._send_simple(405, b"")

    def do_DELETE(self):
        if self._path() == CONTROL + "faults":
            with self.state.lock:
                self.state.faults.clear()
            return self._send_simple(204, b"")
        self._send_simple(405, b"")

    def _send_simple(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _file(self, path):
        """Bytes of the file the URL path names under root, or None."""
        rel = urllib.parse.unquote(path).lstrip("/")
        full = os.path.realpath(os.path.join(self.state.root, rel))
        if full != self.state.root and not full.startswith(self.state.root + os.sep):
            return None
        if not os.path.isfile(full):
            return None
        with open(full, "rb") as f:
            return f.read()

    def _serve(self, body):
        path = self._path()
        if path == CONTROL + "log":
            with self.state.lock:
                data = json.dumps(self.state.log).encode()
            return self._send_simple(200, data)

        fault = self.state.pick(path)
        kind = fault.kind if fault else None
        try:
            if kind == "slow":
                self.state.record(self.command, path, kind, None)
                if self.state.stopping.wait(fault.seconds):
                    return
                fault = kind = None
                return self._serve_file(path, body, record=False)
            if kind in ("drop", "close"):
                self.state.record(self.command, path, kind, None)
                self.close_connection = True
                if kind == "drop":
                    # linger 0: close() sends RST, as a crashed peer or a proxy would
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                return
            if kind == "status":
                self.state.record(self.command, path, kind, fault.status)
                headers = [("Retry-After", str(fault.retry_after))] if fault.retry_after is not None else []
                return self._send_simple(fault.status,
                                         json.dumps({"error": "injected %d" % fault.status}).encode(),
                                         headers)
            if kind == "redirect":
                self.state.record(self.command, path, kind, fault.status)
                return self._send_simple(fault.status, b"", [("Location", fault.location)])
            if kind == "huge":
                self.state.record(self.command, path, kind, 200)
                return self._send_huge(fault, body)
            if kind == "truncate":
                data = self._file(path)
                if data is None:
                    self.state.record(self.command, path, None, 404)
                    return self._send_simple(404, b'{"error":"not found"}')
                self.state.record(self.command, path, kind, 200)
                self.close_connection = True
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                if body:
                    self.wfile.write(data[: len(data) // 2])
                return
            return self._serve_file(path, body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _serve_file(self, path, body, record=True):
        data = self._file(path)
        status = 200 if data is not None else 404
        if record:
            self.state.record(self.command, path, None, status)
        if data is None:
            return self._send_simple(404, b'{"error":"not found"}')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _send_huge(self, fault, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if fault.chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(fault.size))
        self.end_headers()
        if not body:
            return
        block = b" " * 65536
        left = fault.size
        while left > 0 and not self.state.stopping.is_set():
            piece = block[: min(left, len(block))]
            if fault.chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                self.wfile.write(piece)
            left -= len(piece)
        if fault.chunked:
            self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class DownloadServer:
    """The server on 127.0.0.1 in a background thread. start()/stop() or `with`."""

    def __init__(self, root, port=0, faults_file=None):
        self.state = _State(root, faults_file)
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.state = self.state
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.state.stopping.set()  # wakes sleeping "slow" handlers
        if self.thread:
            self.httpd.shutdown()
            self.thread.join(5)
        self.httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def add_fault(self, prefix, kind, **params):
        fault = Fault(prefix, kind, **params)
        with self.state.lock:
            self.state.faults.append(fault)
        return fault

    def clear_faults(self):
        with self.state.lock:
            self.state.faults.clear()

    def requests(self):
        """A copy of the request log, oldest first."""
        with self.state.lock:
            return [dict(r) for r in self.state.log]

    def count(self, path=None, prefix=None):
        """Requests whose path equals path, or starts with prefix (both None: all)."""
        n = 0
        for r in self.requests():
            if path is not None and r["path"] != path:
                continue
            if prefix is not None and not r["path"].startswith(prefix):
                continue
            n += 1
        return n

    def clear_log(self):
        with self.state.lock:
            self.state.log.clear()


def main(argv=None):
    p = argparse.ArgumentParser(description="Serve a directory on 127.0.0.1 with injectable faults.")
    p.add_argument("--root", required=True, help="directory to serve")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (printed)")
    p.add_argument("--faults", help="JSON list of faults, re-read when the file changes")
    p.add_argument("--fault", action="append", default=[], metavar="JSON",
                   help='one fault, e.g. \'{"prefix": "/1.2.0/", "kind": "status", "status": 503, "times": 2}\'')
    args = p.parse_args(argv)
    if not os.path.isdir(args.root):
        p.error("--root %s is not a directory" % args.root)
    srv = DownloadServer(args.root, args.port, args.faults)
    try:
        for text in args.fault:
            d = json.loads(text)
            srv.add_fault(d.pop("prefix"), d.pop("kind"), **d)
    except (ValueError, KeyError, TypeError) as e:
        p.error("--fault: %s" % e)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    srv.start()
    print(srv.port, flush=True)
    done.wait()
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
