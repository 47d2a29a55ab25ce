"""A rolling update of build/gcs processes, as a Kubernetes Deployment with
maxUnavailable: 0 performs it, and a client that keeps calling the service
the whole time.

    Process    one build/gcs, its log collected by a thread (so a long run
               never fills the pipe), started on 127.0.0.1:0
    Service    which ready process receives traffic; a request picks its
               target here, as kube-proxy would after endpoint updates
    Deployment roll(env): start a new process; if it exits before listening
               (CrashLoopBackOff) the old one keeps serving; if it becomes
               ready, traffic switches to it and only then is the old one sent
               SIGTERM (it must drain and exit 0); stop() ends the rest the
               same way. A sanitizer report in any process's output fails.
    Client     a thread requesting continuously through the Service, recording
               every failure and every answer that contradicts the answering
               process's configuration
"""
import http.client
import json
import signal
import subprocess
import threading
import time

from conftest import GCS, assert_no_sanitizer_report, assert_stopped


def user_agent(cluster_id):
    return "insights-operator/4.17.0 cluster/%s" % cluster_id


def versions_of(env):
    """(stable, canary) a process started with env serves; canary None when off."""
    canary = env.get("CANARY_VERSION") or None
    if canary == "none":
        canary = None
    return env["STABLE_VERSION"], canary


class Process:
    """One build/gcs started with env (GCS_LISTEN defaults to 127.0.0.1:0)."""

    def __init__(self, env, name, args=()):
        self.env = dict(env)
        self.env.setdefault("GCS_LISTEN", "127.0.0.1:0")
        self.name = name
        self.stable, self.canary = versions_of(self.env)
        self.lines = []
        self.address = None
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self.proc = subprocess.Popen([GCS] + list(args), env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self._readers = [threading.Thread(target=self._read, args=(f,), daemon=True)
                         for f in (self.proc.stdout, self.proc.stderr)]
        for t in self._readers:
            t.start()

    def _read(self, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("msg") == "listening" and self.address is None:
                self.address = rec.get("address")
                self._listening.set()

    def log(self):
        with self._lock:
            return list(self.lines)

    def describe(self):
        return "%s (stable %s, canary %s), exit %s, log:\n  %s" % (
            self.name, self.stable, self.canary, self.proc.poll(), "\n  ".join(self.log()))

    def wait_listening(self, timeout=30):
        """True once listening; False when the process exited before that."""
        deadline = time.monotonic() + timeout
        while not self._listening.wait(0.02):
            if self.proc.poll() is not None:
                self._join_readers()
                return self._listening.is_set()
            if time.monotonic() > deadline:
                raise AssertionError("neither listening nor exited after %ss: %s" % (timeout, self.describe()))
        host, port = self.address.rsplit(":", 1)
        self.host, self.port = host, int(port)
        return True

    def _join_readers(self):
        for t in self._readers:
            t.join(5)

    def get(self, path, headers=None, timeout=10):
        """(status, headers, body) of one request on a new connection."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()

    def wait_ready(self, timeout=30):
        """/readyz answers 200, as a readiness probe waits for."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                last = self.get("/readyz", timeout=2)[0]
                if last == 200:
                    return
            except OSError as e:
                last = e
            time.sleep(0.02)
        raise AssertionError("not ready (last /readyz: %s): %s" % (last, self.describe()))

    def wait_exit(self, timeout=30):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("did not exit within %ss: %s" % (timeout, self.describe()))
        self._join_readers()
        assert_no_sanitizer_report(self.name, self.log())
        return self.proc.returncode

    def terminate(self, timeout=30):
        """SIGTERM, as the kubelet sends; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._join_readers()


class Service:
    """The one ready process traffic goes to.

    A request picks its target with pick() and reports with sent() once its
    bytes are written. switch() waits until every request that picked the old
    target has been sent, so when the old process gets SIGTERM afterwards no
    request is still on its way to a closed listener: what remains in flight
    there is the old process's to finish while it drains. This is the
    guarantee a readiness-gated endpoint removal gives in a cluster."""

    def __init__(self):
        self._cond = threading.Condition()
        self._target = None
        self._unsent = {}

    @property
    def target(self):
        with self._cond:
            return self._target

    def pick(self):
        with self._cond:
            p = self._target
            self._unsent[p] = self._unsent.get(p, 0) + 1
            return p

    def sent(self, p):
        with self._cond:
            self._unsent[p] -= 1
            self._cond.notify_all()

    def switch(self, new, timeout=10):
        with self._cond:
            old = self._target
            self._target = new
            if not self._cond.wait_for(lambda: self._unsent.get(old, 0) == 0, timeout):
                raise AssertionError("requests to %s not sent within %ss" % (old.name, timeout))
            return old


class RollResult:
    def __init__(self, process, ready, exit_code=None, old_exit=None, old=None, in_flight=None):
        self.process = process
        self.ready = ready
        self.exit_code = exit_code  # the new process's, when it never became ready
        self.old_exit = old_exit    # the replaced process's, after SIGTERM
        self.old = old
        self.in_flight = in_flight  # (status, body) of the request sent as SIGTERM went out


class Deployment:
    """One replica at a time, maxUnavailable: 0."""

    def __init__(self, service):
        self.service = service
        self.history = []
        self._count = 0

    @property
    def current(self):
        return self.service.target

    def _start(self, env):
        self._count += 1
        p = Process(env, "gcs#%d" % self._count)
        self.history.append(p)
        return p

    def first(self, env):
        p = self._start(env)
        if not p.wait_listening():
            raise AssertionError("the first process did not start: " + p.describe())
        p.wait_ready()
        self.service.switch(p)
        return p

    def roll(self, env):
        """Replaces the current process by one running env, if that one comes up."""
        new = self._start(env)
        if not new.wait_listening():
            # CrashLoopBackOff: the old pod was never touched.
            return RollResult(new, False, exit_code=new.wait_exit())
        new.wait_ready()
        # One request of our own is on the wire to the old process when it
        # gets SIGTERM: draining must still answer it. Its connection is one
        # the old process has already served on, as a client's keep-alive
        # connection is; one still in the kernel's accept queue when the
        # listener closes is another matter (the old process never saw it).
        old = self.current
        conn = http.client.HTTPConnection(old.host, old.port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            self.service.switch(new)
            conn.request("GET", "/api/gathering/gathering_rules")
            old.proc.send_signal(signal.SIGTERM)
            resp = conn.getresponse()
            in_flight = (resp.status, resp.read())
        except (OSError, http.client.HTTPException) as e:
            in_flight = ("%s: %s" % (type(e).__name__, e), b"")
        finally:
            conn.close()
            if self.current is old:  # the warm-up request failed
                self.service.switch(new)
        return RollResult(new, True, old_exit=old.terminate(), old=old, in_flight=in_flight)

    def stop(self):
        """Ends every process still running as the kubelet would (SIGTERM),
        then fails on the first that did not exit 0 or left a sanitizer
        report. Those that exited earlier were checked by their roll."""
        problems = []
        for p in self.history:
            if p.proc.poll() is not None:
                continue
            try:
                assert_stopped(p.name, p.terminate(), p.log(), 0)
            except AssertionError as e:
                problems.append(str(e))
                p.kill()
        assert not problems, "\n\n".join(problems)


class Client(threading.Thread):
    """Requests continuously through the Service until stop().

    requests: (label, cluster_id, path) tuples, sent in turn over one
    keep-alive connection per target process. A failure is any exception,
    any status but 200, a missing X-Gcs-Channel, a body whose "version" is
    not the version the answering process serves on that channel, or, from a
    process with a canary loaded, a channel the test does not expect for that
    cluster at that step (expect()). Without a canary every answer must be
    stable."""

    def __init__(self, service, requests, pause=0.004):
        super().__init__(daemon=True)
        self.service = service
        self.requests = list(requests)
        self.pause = pause
        self._channels = {}  # cluster -> channels allowed while a canary is loaded
        self.total = 0
        self.failures = []
        self.served = {}  # process name -> answers received from it
        self.seen = set()  # (label, channel, version)
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()
        self.join(30)

    def expect(self, cluster, *channels):
        """From now on, a process with a canary loaded must answer cluster on
        one of channels. Both while a change propagates, one once it has: a
        request is judged by what was expected when it was sent."""
        with self._lock:
            self._channels[cluster] = frozenset(channels)

    def served_by(self, p):
        with self._lock:
            return self.served.get(p.name, 0)

    def wait_served(self, p, n, timeout=30):
        """Waits until n answers came from p, so every process that was ever
        current demonstrably carried traffic."""
        deadline = time.monotonic() + timeout
        while self.served_by(p) < n:
            if time.monotonic() > deadline or not self.is_alive():
                raise AssertionError("client got %d answers from %s, wanted %d"
                                     % (self.served_by(p), p.name, n))
            time.sleep(0.01)

    def _fail(self, p, label, what):
        with self._lock:
            self.failures.append("%.3f %s -> %s: %s" % (time.monotonic(), label,
                                                         p.name if p else None, what))

    def run(self):
        conns = {}
        i = 0
        while not self._halt.is_set():
            label, cluster, path = self.requests[i % len(self.requests)]
            i += 1
            with self._lock:
                allowed = self._channels.get(cluster)
            p = self.service.pick()
            for other in [q for q in conns if q is not p]:
                conns.pop(other).close()
            try:
                conn = conns.get(p)
                if conn is None:
                    conn = conns[p] = http.client.HTTPConnection(p.host, p.port, timeout=10)
                try:
                    conn.request("GET", path, headers={"User-Agent": user_agent(cluster)})
                finally:
                    self.service.sent(p)
                resp = conn.getresponse()
                body = resp.read()
                self._check(p, label, cluster, allowed, resp, body)
            except (OSError, http.client.HTTPException) as e:
                conns.pop(p, None)
                conn.close()
                self._fail(p, label, "%s: %s" % (type(e).__name__, e))
            with self._lock:
                self.total += 1
            self._halt.wait(self.pause)
        for conn in conns.values():
            conn.close()

    def _check(self, p, label, cluster, allowed, resp, body):
        with self._lock:
            self.served[p.name] = self.served.get(p.name, 0) + 1
        if resp.status != 200:
            return self._fail(p, label, "HTTP %d %r" % (resp.status, body[:200]))
        channel = resp.headers.get("X-Gcs-Channel")
        try:
            version = json.loads(body)["version"]
        except (ValueError, KeyError, TypeError) as e:
            return self._fail(p, label, "body without version (%s): %r" % (e, body[:200]))
        expected = {"stable": p.stable, "canary": p.canary}.get(channel)
        if expected is None:
            return self._fail(p, label, "X-Gcs-Channel %r from a process with canary %s"
                              % (channel, p.canary))
        if version != expected:
            return self._fail(p, label, "%s answer has version %s, the process serves %s"
                              % (channel, version, expected))
        if p.canary is not None and (allowed is None or channel not in allowed):
            return self._fail(p, label, "got %s, this step expects %s" % (
                channel, " or ".join(sorted(allowed)) if allowed else "nothing (expect() not called)"))
        with self._lock:
            self.seen.add((label, channel, version))
