"""Shared fixtures for the black-box tests: they run build/gcs as a user would.

GcsServer starts the binary on an ephemeral port (GCS_LISTEN=127.0.0.1:0) and
reads the bound address from its log line {"msg": "listening", "address": ...}.
"""
import filecmp
import json
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# GCS_BIN selects another build of the same sources (the sanitizer build).
GCS = os.environ.get("GCS_BIN") or os.path.join(ROOT, "build", "gcs")
RULES = os.path.join(ROOT, "rules")
# tests/support's helpers (the download server, the Unleash tooling) import
# by name in every suite that imports this module.
SUPPORT = os.path.join(ROOT, "tests", "support")
sys.path[:0] = [SUPPORT, os.path.join(SUPPORT, "unleash")]


def npm_installed(package_dir, cache):
    """The npm packages of package_dir (package.json and package-lock.json)
    installed with `npm ci` into cache, once per lockfile; returns cache.
    Peer dependencies are left out: the kubectl package's are the whole AWS
    CDK, which only deploying its Lambda layer needs."""
    lock = os.path.join(package_dir, "package-lock.json")
    installed = os.path.join(cache, "node_modules", ".installed-package-lock.json")
    if not (os.path.exists(installed) and filecmp.cmp(lock, installed, shallow=False)):
        assert shutil.which("npm"), "npm is needed to install %s (make deps installs it)" % package_dir
        os.makedirs(cache, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(os.path.join(package_dir, name), os.path.join(cache, name))
        res = subprocess.run(["npm", "ci", "--omit=peer", "--ignore-scripts", "--no-audit", "--no-fund",
                              "--loglevel=error", "--prefix", cache],
                             capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, "npm ci for %s failed:\n%s" % (package_dir, res.stdout + res.stderr)
        shutil.copyfile(lock, installed)
    return cache


def cluster_ids(n, seed):
    """n cluster IDs (UUID v4), the same for the same seed."""
    rnd = random.Random(seed)
    return [str(uuid.UUID(int=rnd.getrandbits(128), version=4)) for _ in range(n)]


def wait_until(what, check, timeout, every=0.2):
    """check()'s first truthy value within timeout seconds; fails naming what."""
    deadline = time.time() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.time() < deadline, "timed out waiting for %s (%s s)" % (what, timeout)
        time.sleep(every)


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


def unleash_env(state, toggle, **overrides):
    """base_env for a gcs following toggle on the test Unleash server that
    state (unleash.sh's state file, read) describes, environment development."""
    env = {"GCS_UNLEASH_URL": state["UNLEASH_URL"], "GCS_UNLEASH_TOKEN": state["UNLEASH_BACKEND_TOKEN"],
           "GCS_UNLEASH_ENVIRONMENT": "development", "GCS_UNLEASH_TOGGLE": toggle}
    env.update(overrides)
    return base_env(**env)


def route_fields(stdout):
    """{field: value} of the answer of gcs --route ID, a "field: value" a line."""
    fields = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition(":")
        assert sep, "not a field of gcs --route: %r" % line
        fields[key.strip()] = value.strip()
    return fields


# What AddressSanitizer, LeakSanitizer and UBSan print when they find
# something. The sanitizer build exits 1 on a leak, which a test expecting
# exit 1 for invalid input would take for the answer it wanted: the report
# itself is what must fail the test.
SANITIZER_REPORT = re.compile(r"==\d+==ERROR: (AddressSanitizer|LeakSanitizer)|:\d+:\d+: runtime error: |"
                              r"SUMMARY: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)")


def sanitizer_report(lines, context=25):
    """The first lines of a sanitizer report in lines (strings), or None."""
    lines = list(lines)
    for i, line in enumerate(lines):
        if SANITIZER_REPORT.search(line):
            return "\n".join(lines[i:i + context])
    return None


def assert_no_sanitizer_report(what, text):
    report = sanitizer_report(text.splitlines() if isinstance(text, str) else text)
    assert report is None, "%s: sanitizer report:\n%s" % (what, report)


def assert_stopped(what, status, lines, expect=0):
    """A stopped process exited with status expect and reported nothing.
    The report comes first: it explains an unexpected status."""
    assert_no_sanitizer_report(what, lines)
    if expect is not None:
        assert status == expect, "%s exited %s, expected %s; its last output:\n%s" % (
            what, status, expect, "\n".join(list(lines)[-20:]))


def run_gcs(args, env, timeout=60, **kwargs):
    """Runs build/gcs to completion; returns CompletedProcess with text output.
    A sanitizer report in its output, or death by a signal, fails the caller."""
    res = subprocess.run([GCS] + list(args), env=env, capture_output=True, text=True,
                         timeout=timeout, **kwargs)
    what = " ".join(["gcs"] + list(args))
    assert_no_sanitizer_report(what, res.stdout + res.stderr)
    # No test runs gcs to completion expecting it to crash.
    assert res.returncode >= 0, "%s was killed by %s; its last output:\n%s" % (
        what, signal.Signals(-res.returncode).name, "\n".join(res.stderr.splitlines()[-20:]))
    return res


class GcsServer:
    """A running build/gcs. Use as a context manager or call stop()."""

    def __init__(self, env, args=(), ready_timeout=30):
        self.env = dict(env)
        # Under Clowder the file gives the ports (on all addresses).
        if "ACG_CONFIG" not in self.env:
            self.env.setdefault("GCS_LISTEN", "127.0.0.1:0")
        self.proc = subprocess.Popen([GCS] + list(args), env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.log_lines = []
        self._partial = b""
        self._lock = threading.Lock()
        self._reader = None
        self.address = None
        self.metrics_address = None
        deadline = time.time() + ready_timeout
        while self.address is None:
            if time.time() > deadline:
                self.stop(expect=None)
                raise RuntimeError("gcs did not start listening:\n" + "\n".join(self.log_lines))
            if self.proc.poll() is not None:
                self._drain()
                assert_no_sanitizer_report("gcs", self.log_lines)
                raise RuntimeError("gcs exited %s before listening:\n%s" % (self.proc.returncode, "\n".join(self.log_lines)))
            for line in self._read_lines(0.1):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("msg") == "listening":
                    self.address = rec["address"]
                    self.metrics_address = rec.get("metrics")
        # From now on a thread empties the pipe as the server writes: a
        # server whose stderr pipe is full blocks in write(2), mid-request.
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self.host, port = self.address.rsplit(":", 1)
        self.port = int(port)
        # A server on all addresses is reached on the loopback one.
        if self.host == "0.0.0.0":
            self.host = "127.0.0.1"
        self.url = "http://%s:%d" % (self.host, self.port)
        # GCS_METRICS_LISTEN: the metrics have a listener of their own.
        self.metrics_port = int(self.metrics_address.rsplit(":", 1)[1]) if self.metrics_address \
            else self.port
        self.metrics_url = "http://%s:%d" % (self.host, self.metrics_port)

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

    def get(self, path, headers=None, method="GET", base=None):
        """(status, headers, body bytes) of one request on a new connection,
        to the API's listener or to base."""
        req = urllib.request.Request((base or self.url) + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def get_metrics(self, path="/metrics"):
        """get(path) on the listener that serves the metrics (a subclass
        with a get() of its own serves them on the API's)."""
        if self.metrics_url == self.url:
            return self.get(path)
        return self.get(path, base=self.metrics_url)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=None, timeout=15, expect=0):
        """Stops the server (sig, SIGTERM by default, unless it already
        exited) and checks how it ended: exit status expect (None: any), no
        sanitizer report in its log. Returns the exit status."""
        if sig is None:
            sig = signal.SIGTERM
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                killed = True
        self._drain()
        if self.proc.stdout and not self.proc.stdout.closed:
            out = self.proc.stdout.read()
            self.log_lines.extend(out.decode("utf-8", "replace").splitlines())
            self.proc.stdout.close()
        assert not killed, "gcs did not stop within %ss of signal %d; killed" % (timeout, sig)
        assert_stopped("gcs (%s)" % (self.address or "not listening"), self.proc.returncode,
                       self.log_lines, expect)
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
    # Stop them all, then fail on the first that ended badly.
    problems = []
    for srv in started:
        try:
            srv.stop()
        except AssertionError as e:
            problems.append(str(e))
    assert not problems, "\n\n".join(problems)


# --- a real Unleash server, shared by the suites that need one ----------------

@pytest.fixture(scope="module")
def unleash():
    """A real Unleash 7.5.1 on PostgreSQL (tests/support/unleash.sh), on
    127.0.0.1, for one test module: (admin client, state, harness env)."""
    import admin as unleash_admin
    harness = os.path.join(ROOT, "tests", "support", "unleash.sh")
    # Not under pytest's basetemp: a concurrent pytest session may prune it,
    # and without its state file the harness could not stop the server.
    state_dir = tempfile.mkdtemp(prefix="gcs-unleash-state.")
    state_file = os.path.join(state_dir, "state.env")
    env = dict(os.environ, UNLEASH_STATE=state_file)
    try:
        res = subprocess.run([harness, "start"], env=env, capture_output=True, text=True,
                             timeout=600)
        assert res.returncode == 0, "unleash.sh start failed:\n%s\n%s" % (res.stdout, res.stderr)
        state = unleash_admin.read_state(state_file)
        yield unleash_admin.Admin(state), state, env
    finally:
        subprocess.run([harness, "stop"], env=env, capture_output=True, timeout=120, check=True)
        shutil.rmtree(state_dir, ignore_errors=True)
