"""Shared fixtures for the black-box tests: they run build/gcs as a user would.

GcsServer starts the binary on an ephemeral port (GCS_LISTEN=127.0.0.1:0) and
reads the bound address from its log line {"msg": "listening", "address": ...}.
"""
import json
import os
import select
import signal
import subprocess
import threading
import time
import urllib.request

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# GCS_BIN selects another build of the same sources (the sanitizer build).
GCS = os.environ.get("GCS_BIN") or os.path.join(ROOT, "build", "gcs")
RULES = os.path.join(ROOT, "rules")


def base_env(**overrides):
    """Environment for gcs: the repository's rules and schemas, no Unleash."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GCS_") and k not in ("STABLE_VERSION", "CANARY_VERSION")}
    env.update({
        "GCS_CONDITIONS_URL": os.path.join(RULES, "{version}"),
        "GCS_SCHEMA_DIR": os.path.join(RULES, "schemas"),
        "GCS_ROUTING_SCRIPT": os.path.join(ROOT, "scripts", "routing.lua"),
        "GCS_LOG_LEVEL": "info",
        "STABLE_VERSION": "1.1.3",
    })
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def run_gcs(args, env, timeout=60):
    """Runs build/gcs to completion; returns CompletedProcess with text output."""
    return subprocess.run([GCS] + list(args), env=env, capture_output=True, text=True, timeout=timeout)


class GcsServer:
    """A running build/gcs. Use as a context manager or call stop()."""

    def __init__(self, env, args=(), ready_timeout=30):
        self.env = dict(env)
        self.env.setdefault("GCS_LISTEN", "127.0.0.1:0")
        self.proc = subprocess.Popen([GCS] + list(args), env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.log_lines = []
        self._partial = b""
        self._lock = threading.Lock()
        self._reader = None
        self.address = None
        deadline = time.time() + ready_timeout
        while self.address is None:
            if time.time() > deadline:
                self.stop()
                raise RuntimeError("gcs did not start listening:\n" + "\n".join(self.log_lines))
            if self.proc.poll() is not None:
                self._drain()
                raise RuntimeError("gcs exited %s before listening:\n%s" % (self.proc.returncode, "\n".join(self.log_lines)))
            for line in self._read_lines(0.1):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("msg") == "listening":
                    self.address = rec["address"]
        # From now on a thread empties the pipe as the server writes: a
        # server whose stderr pipe is full blocks in write(2), mid-request.
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self.host, port = self.address.rsplit(":", 1)
        self.port = int(port)
        self.url = "http://%s:%d" % (self.host, self.port)

    def _read_lines(self, timeout):
        """Complete lines that arrive within timeout. Reads the pipe unbuffered:
        a buffered readline() could hold a second line that select() no longer
        reports."""
        out = []
        fd = self.proc.stderr.fileno()
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            chunk = os.read(fd, 65536)
            if chunk:
                self._partial += chunk
                *lines, self._partial = self._partial.split(b"\n")
                for line in lines:
                    text = line.decode("utf-8", "replace")
                    self.log_lines.append(text)
                    out.append(text)
        return out

    def _pump(self):
        fd = self.proc.stderr.fileno()
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            with self._lock:
                self._partial += chunk
                *lines, self._partial = self._partial.split(b"\n")
                self.log_lines.extend(line.decode("utf-8", "replace") for line in lines)

    def _drain(self):
        if self._reader:
            self._reader.join(10)
        rest = self._partial + (self.proc.stderr.read() if self.proc.stderr and not self._reader else b"")
        self._partial = b""
        self.log_lines.extend(rest.decode("utf-8", "replace").splitlines())

    def logs(self, wait=0.0):
        """All log records (parsed) seen so far, after wait seconds (at least
        a moment, for lines already on their way)."""
        time.sleep(max(wait, 0.05))
        recs = []
        with self._lock:
            lines = list(self.log_lines)
        for line in lines:
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
        return recs

    def get(self, path, headers=None, method="GET"):
        """(status, headers, body bytes) of one request on a new connection."""
        req = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=None, timeout=15):
        if sig is None:
            sig = signal.SIGTERM
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._drain()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture
def gcs_env():
    return base_env()


@pytest.fixture
def server_factory():
    """Starts servers and stops every one of them at the end of the test."""
    started = []

    def start(env=None, args=()):
        srv = GcsServer(env if env is not None else base_env(), args)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
