// Copies scripts/*.lua into the places a cluster reads them from:
// deploy/base/routing/ (kustomize only reads files below its own directory)
// and the gcs-routing ConfigMap embedded in deploy/openshift-template.yaml
// and deploy/clowdapp.yaml; and deploy/base/prometheusrule.yaml (and, into
// the ClowdApp's Template, the dashboard) into the Templates.
//
//   make deploy-sync    (or: node tests/deploy/sync-scripts.mjs CACHE)
import fs from "node:fs";
import path from "node:path";
import { ROOT, loadDeps } from "./manifests.mjs";

const cache = path.resolve(process.argv[2] ?? path.join(ROOT, "tests", ".cache", "deploy-npm"));
const { YAML } = await loadDeps(cache);

const scriptsDir = path.join(ROOT, "scripts");
const scripts = fs.readdirSync(scriptsDir).filter((f) => f.endsWith(".lua")).sort();
const contents = Object.fromEntries(scripts.map((f) => [f, fs.readFileSync(path.join(scriptsDir, f), "utf8")]));

const routingDir = path.join(ROOT, "deploy", "base", "routing");
for (const f of fs.readdirSync(routingDir))
	if (f.endsWith(".lua") && !Object.hasOwn(contents, f))
		fs.rmSync(path.join(routingDir, f));
for (const [f, text] of Object.entries(contents))
	fs.writeFileSync(path.join(routingDir, f), text);

const kustomization = path.join(ROOT, "deploy", "base", "kustomization.yaml");
const kdoc = YAML.parseDocument(fs.readFileSync(kustomization, "utf8"));
const generator = kdoc.get("configMapGenerator").items.find((g) => g.get("name") === "gcs-routing");
generator.set("files", kdoc.createNode(scripts.map((f) => `routing/${f}`)));
fs.writeFileSync(kustomization, kdoc.toString({ lineWidth: 0 }));

// The Templates embed the same scripts, and the alerts (and, in the
// ClowdApp's, the dashboard) of deploy/base as they are.
function replaceObject(tdoc, kind, name, file, comment) {
	const obj = tdoc.createNode(YAML.parse(fs.readFileSync(file, "utf8")));
	const objects = tdoc.get("objects");
	const at = objects.items.findIndex(
		(o) => o.get("kind") === kind && (name === undefined || o.getIn(["metadata", "name"]) === name));
	if (at < 0) {
		obj.commentBefore = comment;
		objects.items.push(obj);
	} else {
		obj.commentBefore = objects.items[at].commentBefore;
		objects.items[at] = obj;
	}
}

function syncTemplate(name, { dashboard }) {
	const templateFile = path.join(ROOT, "deploy", name);
	const tdoc = YAML.parseDocument(fs.readFileSync(templateFile, "utf8"));
	const configMap = tdoc.get("objects").items.find(
		(o) => o.get("kind") === "ConfigMap" && o.getIn(["metadata", "name"]) === "gcs-routing");
	const data = new YAML.YAMLMap();
	for (const [f, text] of Object.entries(contents)) {
		const value = new YAML.Scalar(text);
		value.type = YAML.Scalar.BLOCK_LITERAL;
		data.set(f, value);
	}
	configMap.set("data", data);
	replaceObject(tdoc, "PrometheusRule", undefined, path.join(ROOT, "deploy", "base", "prometheusrule.yaml"),
		" The alerts of deploy/base/prometheusrule.yaml, copied by make deploy-sync.");
	if (dashboard)
		replaceObject(tdoc, "ConfigMap", "grafana-dashboard-gcs",
			path.join(ROOT, "deploy", "base", "grafana-dashboard-gcs.configmap.yaml"),
			" The dashboard of deploy/base, copied by make deploy-sync.");
	fs.writeFileSync(templateFile, tdoc.toString({ lineWidth: 0 }));
}

syncTemplate("openshift-template.yaml", { dashboard: false });
syncTemplate("clowdapp.yaml", { dashboard: true });

console.log(`synced ${scripts.join(", ")}, prometheusrule.yaml and the dashboard`);
