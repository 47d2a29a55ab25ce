"""The monitoring of the canary: deploy/'s PrometheusRule and Grafana dashboard.

- promtool (Debian's prometheus package) checks the rules, runs their unit
  tests (tests/monitoring/rules.test.yaml) and parses every dashboard
  expression once Grafana's variables are substituted.
- End to end: a real Prometheus on 127.0.0.1 scrapes two gcs processes that
  follow a real Unleash server, with the project's rules loaded, under
  traffic. Every dashboard expression on gcs's own metrics returns data, no
  alert is active on the healthy pair, GcsUnleashStale goes pending while the
  Unleash server is stopped and clears once it is back, and faults made for
  real bring the other alerts to pending: a rejected routing script, a pod
  without the canary joining, a script failing for one cluster, every pod
  stopped. GcsHttpErrors has no fault to provoke (gcs answers 5xx on these
  paths only on an internal failure): its unit tests cover it.

The dashboard's expressions are read out of the dashboard file, so a panel
added later is checked with no change here. A missing promtool or prometheus
fails these tests: it is a dependency of make test (DEPS_TEST).
"""
import copy
import json
import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import pytest
import yaml

import metrics as M
from conftest import ROOT, GcsServer, base_env, unleash_env, wait_until

RULES = os.path.join(ROOT, "deploy", "base", "prometheusrule.yaml")
DASHBOARD = os.path.join(ROOT, "deploy", "base", "grafana-dashboard-gcs.configmap.yaml")
RULE_TESTS = os.path.join(ROOT, "tests", "monitoring", "rules.test.yaml")
README = os.path.join(ROOT, "README.md")
HARNESS = os.path.join(ROOT, "tests", "support", "unleash.sh")

# Metrics the dashboard reads that other services export: those panels are
# parsed here but cannot return data without those services.
FOREIGN_METRICS = {
    "container_cpu_usage_seconds_total": "cAdvisor, in every Kubernetes cluster",
    "container_memory_working_set_bytes": "cAdvisor, in every Kubernetes cluster",
    "gathering_conditions_remote_configuration_version_total":
        "the processing pipeline, per archive received",
}

NAMESPACE = "gcs-e2e"
# Grafana's variables as a dashboard would expand them; $__rate_interval is
# at least four scrape intervals, and the test's scrapes are a second apart.
GRAFANA_VARIABLES = {"namespace": NAMESPACE, "__rate_interval": "30s", "__interval": "5s",
                     "__range": "1h"}


def tool(name):
    path = shutil.which(name)
    assert path, "%s is missing: install Debian's prometheus package (make deps)" % name
    return path


def prometheus_rules():
    with open(RULES, encoding="utf-8") as f:
        rule = yaml.safe_load(f)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    return rule["spec"]


def alerts(spec=None):
    spec = spec or prometheus_rules()
    return [r for g in spec["groups"] for r in g["rules"] if "alert" in r]


def dashboard():
    with open(DASHBOARD, encoding="utf-8") as f:
        cm = yaml.safe_load(f)
    (key,) = cm["data"]
    return json.loads(cm["data"][key])


def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def dashboard_targets():
    """(panel title, expression as written) of every query in the dashboard."""
    out = []
    for p in all_panels(dashboard()["panels"]):
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    return out


def substitute(expr, variables=GRAFANA_VARIABLES):
    def one(m):
        name = m.group(1) or m.group(2)
        assert name in variables, "unknown Grafana variable $%s in %s" % (name, expr)
        return variables[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", one, expr)


def metric_names(expr):
    """Identifiers used as metric names: the word before a selector's { or a
    range's [, outside the selector's own labels."""
    bare = re.sub(r'\{[^}]*\}', "{}", expr)
    words = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[\{\[]", bare))
    return {w for w in words if w not in ("by", "without", "on", "ignoring")}


def write_rules(path, spec):
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(spec, f, sort_keys=False)


def promtool(*args, cwd=None):
    return subprocess.run([tool("promtool")] + list(args), capture_output=True, text=True,
                          timeout=120, cwd=cwd)


# --- the rules ----------------------------------------------------------------

def test_rules_pass_promtool_check(tmp_path):
    write_rules(tmp_path / "gcs.rules.yaml", prometheus_rules())
    out = promtool("check", "rules", str(tmp_path / "gcs.rules.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: %d rules found" % len(alerts()) in out.stdout


def test_promtool_check_refuses_a_misspelt_rule_field(tmp_path):
    """What the CRD schema lets through inside spec, promtool refuses."""
    spec = copy.deepcopy(prometheus_rules())
    spec["groups"][0]["rules"][0]["annotation"] = spec["groups"][0]["rules"][0].pop("annotations")
    write_rules(tmp_path / "gcs.rules.yaml", spec)
    out = promtool("check", "rules", str(tmp_path / "gcs.rules.yaml"))
    assert out.returncode != 0
    assert "annotation" in out.stdout + out.stderr


def run_rule_tests(tmp_path, spec):
    write_rules(tmp_path / "gcs.rules.yaml", spec)
    shutil.copyfile(RULE_TESTS, tmp_path / "rules.test.yaml")
    return promtool("test", "rules", "rules.test.yaml", cwd=tmp_path)


def test_rule_unit_tests_pass(tmp_path):
    out = run_rule_tests(tmp_path, prometheus_rules())
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def rule_tests_of(alert):
    with open(RULE_TESTS, encoding="utf-8") as f:
        tests = yaml.safe_load(f)["tests"]
    return [c for t in tests for c in t.get("alert_rule_test", []) if c["alertname"] == alert]


def duration(text):
    units = {"s": 1, "m": 60, "h": 3600}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smh])", text))


@pytest.mark.parametrize("alert", [a["alert"] for a in alerts()])
def test_every_alert_has_a_firing_and_a_quiet_case(tmp_path, alert):
    rule = next(a for a in alerts() if a["alert"] == alert)
    cases = rule_tests_of(alert)
    assert any(c.get("exp_alerts") for c in cases), "%s: no unit test fires it" % alert
    # A quiet case only says something once the alert could have fired: an
    # alert firing there would fail it.
    hold = duration(rule.get("for", "0s"))
    assert any(not c.get("exp_alerts") and duration(c["eval_time"]) > hold for c in cases), \
        "%s: no unit test where it must stay quiet after its for: %s" % (alert, rule.get("for"))
    # The firing cases are real: with the alert never firing, the tests fail.
    spec = copy.deepcopy(prometheus_rules())
    for r in alerts(spec):
        if r["alert"] == alert:
            r["expr"] = 'vector(1) == 2'
    out = run_rule_tests(tmp_path, spec)
    assert out.returncode != 0, "%s: its unit tests pass with an alert that never fires" % alert


def test_alerts_carry_summary_description_and_a_runbook_section():
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", readme, re.M)}
    for a in alerts():
        ann = a["annotations"]
        assert ann.get("summary") and ann.get("description"), a["alert"]
        assert a["labels"]["severity"] in ("critical", "warning"), a["alert"]
        url, _, anchor = ann["runbook_url"].partition("#")
        assert url.endswith("/README.md"), ann["runbook_url"]
        assert anchor == a["alert"].lower(), ann["runbook_url"]
        assert anchor in anchors, "README has no section %s for %s" % (anchor, a["alert"])


def test_runbook_names_only_panels_the_dashboard_has():
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("### Monitoring: what to look at", 1)[1].split("\n### ", 1)[0]
    named = {" ".join(b.split()) for b in re.findall(r"\*\*(.+?)\*\*", section, re.S)}
    titles = {p["title"] for p in all_panels(dashboard()["panels"])}
    assert len(named) >= 10
    assert named <= titles, "README names panels the dashboard lacks: %s" % sorted(named - titles)


def github_anchor(heading):
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


# --- the dashboard ------------------------------------------------------------

def test_dashboard_follows_the_grafana_conventions():
    with open(DASHBOARD, encoding="utf-8") as f:
        cm = yaml.safe_load(f)
    assert cm["kind"] == "ConfigMap"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "true"
    assert cm["metadata"]["annotations"]["grafana-folder"].startswith("/grafana-dashboard-definitions/")
    d = dashboard()
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "namespace" in variables
    assert d["uid"] and d["title"]
    ids = [p["id"] for p in all_panels(d["panels"])]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    # $datasource, not ${datasource}: Grafana reads both, and an OpenShift
    # Template (deploy/clowdapp.yaml carries the dashboard) would take the
    # braced form for one of its parameters.
    for p in all_panels(d["panels"]):
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "$datasource", p["title"]
        assert p.get("targets"), "%s has no query" % p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "$datasource", p["title"]
            assert 'namespace="$namespace"' in t["expr"], \
                "%s: every query is limited to the chosen namespace" % p["title"]


def parse_check(tmp_path, exprs):
    spec = {"groups": [{"name": "dashboard", "rules": [
        {"record": "dashboard:expr_%d" % i, "expr": e} for i, e in enumerate(exprs)]}]}
    write_rules(tmp_path / "dashboard.rules.yaml", spec)
    return promtool("check", "rules", str(tmp_path / "dashboard.rules.yaml"))


def test_every_dashboard_expression_parses(tmp_path):
    targets = dashboard_targets()
    assert len(targets) >= 15
    exprs = [substitute(e) for _, e in targets]
    assert not [e for e in exprs if "$" in e]
    out = parse_check(tmp_path, exprs)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: %d rules found" % len(exprs) in out.stdout
    # The check is real: one broken expression among them fails it.
    out = parse_check(tmp_path, exprs + ["sum by (pod (up)"])
    assert out.returncode != 0


def test_dashboard_answers_the_runbook_questions():
    """The metrics each question needs appear in some panel."""
    used = set()
    for _, e in dashboard_targets():
        used |= metric_names(e)
    for needed in ("gcs_conditions_info", "gcs_http_requests_total",
                   "gcs_http_request_duration_seconds_bucket", "gcs_served_total",
                   "gcs_unleash_rollout_percent", "io_gathering_remote_configuration",
                   "gcs_routing_errors_total", "gcs_routing_reloads_total",
                   "gcs_routing_last_reload_failed", "gcs_unleash_fetch_total",
                   "gcs_unleash_last_success_timestamp_seconds",
                   "gcs_unleash_poll_interval_seconds", *FOREIGN_METRICS):
        assert needed in used, "no panel reads " + needed


# --- the gauges the alerts need, on the binary ---------------------------------

def test_poll_interval_gauge_is_the_configured_refresh(server_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens there once closed
    srv = server_factory(base_env(CANARY_VERSION="1.2.0", GCS_UNLEASH_REFRESH="7.5",
                                  GCS_UNLEASH_URL="http://127.0.0.1:%d/api" % closed))
    assert M.read(srv, "gcs_unleash_poll_interval_seconds") == 7.5
    # Without Unleash: no interval (absent, or 0), which GcsUnleashStale ignores.
    plain = server_factory(base_env(CANARY_VERSION="1.2.0"))
    assert M.read(plain, "gcs_unleash_poll_interval_seconds") in (None, 0)


def test_rejected_reload_gauge_follows_the_last_reload(server_factory, tmp_path):
    # routing.lua and whatever it requires beside it
    for name in os.listdir(os.path.join(ROOT, "scripts")):
        if name.endswith(".lua"):
            shutil.copyfile(os.path.join(ROOT, "scripts", name), tmp_path / name)
    script = tmp_path / "routing.lua"
    good = script.read_text()
    srv = server_factory(base_env(CANARY_VERSION="1.2.0", GCS_ROUTING_SCRIPT=str(script),
                                  GCS_RELOAD_INTERVAL="0.1"))
    assert M.read(srv, "gcs_routing_last_reload_failed") == 0

    script.write_text("this is not lua (\n")
    M.wait_for(srv, "gcs_routing_last_reload_failed", 1, timeout=10)
    script.write_text(good + "\n-- fixed\n")
    M.wait_for(srv, "gcs_routing_last_reload_failed", 0, timeout=10)


# --- end to end: a real Prometheus scraping gcs -----------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    """Debian's prometheus on 127.0.0.1 with a temporary data directory."""

    def __init__(self, targets, rules_spec, workdir):
        self.dir = workdir
        write_rules(os.path.join(workdir, "gcs.rules.yaml"), rules_spec)
        self.set_targets(targets)
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": ["gcs.rules.yaml"],
            "scrape_configs": [{
                "job_name": "gcs",
                # pods come and go as in a cluster: the test rewrites the file
                "file_sd_configs": [{"files": ["targets.json"], "refresh_interval": "1s"}],
            }],
        }
        with open(os.path.join(workdir, "prometheus.yml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(workdir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [tool("prometheus"), "--config.file=" + os.path.join(workdir, "prometheus.yml"),
             "--storage.tsdb.path=" + os.path.join(workdir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port, "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=workdir)
        deadline = time.time() + 60
        while True:
            assert self.proc.poll() is None, "prometheus exited:\n" + self.logs()
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "prometheus never became ready:\n" + self.logs()
            time.sleep(0.2)

    def set_targets(self, targets):
        """targets: {pod name: gcs server}, with the labels a Kubernetes scrape
        of the pods would add."""
        groups = [{"targets": ["%s:%d" % (srv.host, srv.metrics_port)],
                   "labels": {"namespace": NAMESPACE, "pod": pod}}
                  for pod, srv in sorted(targets.items())]
        path = os.path.join(self.dir, "targets.json")
        with open(path + ".part", "w", encoding="utf-8") as f:
            json.dump(groups, f)
        os.replace(path + ".part", path)

    def logs(self):
        self.log.flush()
        with open(os.path.join(self.dir, "prometheus.log"), encoding="utf-8", errors="replace") as f:
            return f.read()[-4000:]

    def api(self, path, **params):
        url = self.url + "/api/v1/" + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr):
        return self.api("query", query=expr)["result"]

    def active_alerts(self):
        return [(a["labels"]["alertname"], a["labels"].get("pod"), a["state"])
                for a in self.api("alerts")["alerts"]]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Traffic(threading.Thread):
    """Clusters asking both gcs processes, about 20 requests a second, until stopped."""

    PATHS = ["/api/gathering/gathering_rules", "/api/gathering/v2/4.17.0/gathering_rules",
             "/api/gathering/v2/4.16.3/gathering_rules", "/api/gathering/openapi.json",
             "/api/gathering/nowhere"]

    def __init__(self, servers):
        super().__init__(daemon=True)
        self.servers = servers
        self.done = threading.Event()
        self.sent = 0

    def run(self):
        i = 0
        while not self.done.is_set() and self.sent < 100000:
            srv = self.servers[i % len(self.servers)]
            path = self.PATHS[i % len(self.PATHS)]
            ua = "insights-operator/4.17.0 cluster/%08x-0000-4000-8000-%012x" % (i, i)
            try:
                srv.get(path, headers={"User-Agent": ua})
            except OSError:
                pass
            self.sent += 1
            i += 1
            self.done.wait(0.05)

    def stop(self):
        self.done.set()
        self.join(10)


@pytest.fixture(scope="module")
def stack(unleash):
    """Unleash (conftest's), two gcs processes following it, Prometheus
    scraping them with the project's rules, and traffic. Torn down in
    reverse, before Unleash."""
    tool("prometheus")
    admin, state, harness_env = unleash
    state_dir = tempfile.mkdtemp(prefix="gcs-monitoring.")
    started = []
    try:
        toggle = "e2e-monitoring"
        admin.set_rollout(toggle, 40)
        env = unleash_env(state, toggle, CANARY_VERSION="1.2.0", GCS_UNLEASH_REFRESH="1")
        # The routing scripts as a pod mounts them, so that a test can edit them.
        scripts = os.path.join(state_dir, "routing")
        shutil.copytree(os.path.join(ROOT, "scripts"), scripts,
                        ignore=shutil.ignore_patterns("*.md"))
        env.update(GCS_ROUTING_SCRIPT=os.path.join(scripts, "routing.lua"),
                   GCS_RELOAD_INTERVAL="0.2")
        # The pods as deployed: gcs-a under Clowder (ports, metrics and
        # Unleash from ACG_CONFIG), gcs-b with the base's variables; both
        # with the metrics on a port of their own, which Prometheus scrapes.
        url = urllib.parse.urlsplit(state["UNLEASH_URL"])
        acg_config = os.path.join(state_dir, "cdappconfig.json")
        with open(acg_config, "w", encoding="utf-8") as f:
            json.dump({"publicPort": free_port(), "metricsPort": free_port(),
                       "metricsPath": "/metrics", "logging": {"type": "null"},
                       "featureFlags": {"hostname": url.hostname, "port": url.port,
                                        "scheme": url.scheme,
                                        "clientAccessToken": env["GCS_UNLEASH_TOKEN"]}}, f)
        clowder = {k: v for k, v in env.items()
                   if k not in ("GCS_UNLEASH_URL", "GCS_UNLEASH_TOKEN", "GCS_LISTEN")}
        servers = []
        for pod_env in (dict(clowder, ACG_CONFIG=acg_config),
                        dict(env, GCS_METRICS_LISTEN="127.0.0.1:0")):
            srv = GcsServer(pod_env)
            started.append(srv)
            servers.append(srv)
        assert all(srv.metrics_port != srv.port for srv in servers)
        pods = {"gcs-a": servers[0], "gcs-b": servers[1]}
        prom_dir = os.path.join(state_dir, "prometheus")
        os.mkdir(prom_dir)
        prom = Prometheus(pods, prometheus_rules(), prom_dir)
        started.append(prom)
        traffic = Traffic(servers)
        traffic.start()
        started.append(traffic)
        yield {"prometheus": prom, "servers": servers, "pods": pods, "harness_env": harness_env,
               "script": env["GCS_ROUTING_SCRIPT"], "started": started}
    finally:
        for thing in reversed(started):
            thing.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def alerts_named(prom, name):
    return sorted(a for a in prom.active_alerts() if a[0] == name)


def wait_alerts(prom, name, expected, timeout):
    """Waits until the active alerts called name are exactly expected,
    [(name, pod, state)]."""
    deadline = time.time() + timeout
    while True:
        got = alerts_named(prom, name)
        if got == expected:
            return
        assert time.time() < deadline, "%s: expected %s, still %s" % (name, expected, got)
        time.sleep(0.5)


def has_numbers(result):
    return any(not math.isnan(float(r["value"][1])) for r in result)


def test_every_dashboard_expression_on_gcs_metrics_returns_data(stack):
    prom = stack["prometheus"]
    wait_until("both gcs targets up", lambda: len(
        [r for r in prom.query('up{job="gcs"} == 1')]) == 2, 30)
    own, foreign = [], []
    for title, expr in dashboard_targets():
        names = metric_names(expr)
        assert names, "%s: no metric in %s" % (title, expr)
        (foreign if names & set(FOREIGN_METRICS) else own).append((title, substitute(expr)))
    assert foreign, "the foreign-metric list matches no panel: keep it in step with the dashboard"
    assert len(own) >= 15
    for title, expr in own:
        # Rates need two samples within the window, and traffic keeps flowing.
        wait_until("data for %r: %s" % (title, expr), lambda: has_numbers(prom.query(expr)), 60)
    # The dashboard's own variable queries offer the namespace gcs runs in.
    for v in dashboard()["templating"]["list"]:
        if v["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((\w+), *(\w+)\)", v["query"]["query"])
        assert m, v["query"]
        values = prom.api("label/%s/values" % m.group(2), **{"match[]": m.group(1)})
        assert NAMESPACE in values, (v["name"], values)
    # What the runbook reads off the dashboard, checked against what gcs did.
    versions = prom.query('count by (channel, version) (gcs_conditions_info{namespace="%s"})'
                          % NAMESPACE)
    assert sorted((r["metric"]["channel"], r["metric"]["version"], r["value"][1])
                  for r in versions) == [("canary", "1.2.0", "2"), ("stable", "1.1.3", "2")]
    rollout = prom.query('max by (pod) (gcs_unleash_rollout_percent{namespace="%s"})' % NAMESPACE)
    assert sorted(float(r["value"][1]) for r in rollout) == [40.0, 40.0]


def test_rules_are_quiet_on_a_healthy_deployment(stack):
    prom = stack["prometheus"]
    wait_until("both gcs targets up", lambda: len(prom.query('up{job="gcs"} == 1')) == 2, 30)
    # A few evaluations after both scrapes succeeded.
    time.sleep(3)
    groups = prom.api("rules")["groups"]
    assert sorted(r["name"] for g in groups for r in g["rules"]) == \
        sorted(a["alert"] for a in alerts())
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), groups
    assert prom.active_alerts() == []


def test_unleash_stale_goes_pending_when_unleash_stops_and_clears_when_back(stack):
    prom, env = stack["prometheus"], stack["harness_env"]
    wait_until("fresh Unleash polls", lambda: prom.active_alerts() == [] and
               len(prom.query('gcs_unleash_poll_interval_seconds{job="gcs"}')) == 2, 30)
    subprocess.run([HARNESS, "server-stop"], env=env, check=True, timeout=60)
    try:
        wait_alerts(prom, "GcsUnleashStale", [("GcsUnleashStale", "gcs-a", "pending"),
                                              ("GcsUnleashStale", "gcs-b", "pending")], 60)
        # Nothing else: gcs keeps serving from the last state it saw.
        assert {a[0] for a in prom.active_alerts()} == {"GcsUnleashStale"}
    finally:
        subprocess.run([HARNESS, "server-start"], env=env, check=True, timeout=600,
                       stdout=subprocess.PIPE)
    # Polls back off to at most a minute while Unleash is away.
    wait_alerts(prom, "GcsUnleashStale", [], 120)
    assert prom.active_alerts() == []
    ok = prom.query('sum(increase(gcs_unleash_fetch_total{job="gcs",result=~"ok|not_modified"}[30s]))')
    assert ok and float(ok[0]["value"][1]) > 0




def test_a_rejected_routing_script_goes_pending_and_clears_once_fixed(stack):
    prom, script = stack["prometheus"], stack["script"]
    with open(script, encoding="utf-8") as f:
        good = f.read()
    with open(script, "w", encoding="utf-8") as f:
        f.write(good.replace("function M.route(", "function M.route(("))
    try:
        wait_alerts(prom, "GcsRoutingReloadFailed", [("GcsRoutingReloadFailed", "gcs-a", "pending"),
                                                     ("GcsRoutingReloadFailed", "gcs-b", "pending")], 30)
    finally:
        with open(script, "w", encoding="utf-8") as f:
            f.write(good + "\n-- reloaded\n")
    wait_alerts(prom, "GcsRoutingReloadFailed", [], 30)


def test_a_pod_without_the_canary_goes_pending_until_it_leaves(stack):
    prom, pods = stack["prometheus"], dict(stack["pods"])
    odd = GcsServer(base_env(CANARY_VERSION="none"))
    stack["started"].append(odd)
    prom.set_targets(dict(pods, **{"gcs-c": odd}))
    wait_alerts(prom, "GcsVersionsDiffer", [("GcsVersionsDiffer", None, "pending")], 30)
    prom.set_targets(pods)
    odd.stop()
    wait_alerts(prom, "GcsVersionsDiffer", [], 30)


def test_a_routing_error_goes_pending(stack):
    """A script that fails for one cluster: that cluster gets stable and the
    alert goes pending. It clears ten minutes after the last error, longer
    than this test waits; rules.test.yaml checks the clearing."""
    prom, script, srv = stack["prometheus"], stack["script"], stack["servers"][0]
    bad = "0badc0de-0000-4000-8000-000000000000"
    with open(script, encoding="utf-8") as f:
        good = f.read()
    faulty = good.replace("  local cluster_id = request.cluster_id\n",
                          "  local cluster_id = request.cluster_id\n"
                          "  if cluster_id == \"%s\" then error(\"injected fault\") end\n" % bad, 1)
    assert faulty != good
    reloads = 'sum(gcs_routing_reloads_total{job="gcs",result="ok"})'
    before = float(prom.query(reloads)[0]["value"][1])
    with open(script, "w", encoding="utf-8") as f:
        f.write(faulty)
    wait_until("the faulty script loaded on both pods",
               lambda: float(prom.query(reloads)[0]["value"][1]) >= before + 2, 30)
    status, headers, _ = srv.get("/api/gathering/gathering_rules",
                                 headers={"User-Agent": "insights-operator/4.17.0 cluster/" + bad})
    assert status == 200 and headers["X-Gcs-Channel"] == "stable"
    wait_alerts(prom, "GcsRoutingErrors", [("GcsRoutingErrors", None, "pending")], 30)
    (alert,) = [a for a in prom.api("alerts")["alerts"] if a["labels"]["alertname"] == "GcsRoutingErrors"]
    assert alert["labels"]["kind"] == "error"


def test_no_pod_up_goes_pending(stack):
    """Last: it stops the gcs processes."""
    prom = stack["prometheus"]
    assert alerts_named(prom, "GcsDown") == []
    for srv in stack["servers"]:
        srv.stop()
    wait_alerts(prom, "GcsDown", [("GcsDown", None, "pending")], 30)
