// Validates deploy/ against the Kubernetes API schemas.
//
//   node validate.mjs CACHE                 base and Template: one TAP line per object
//   node validate.mjs CACHE --render        the objects as JSON, for the contract checks
//   node validate.mjs CACHE --check FILE..  objects of arbitrary YAML files (TAP)
//   node validate.mjs CACHE --json FILE     the documents of a YAML file as JSON
//
// CACHE is the directory where package.json's dependencies were installed.
import fs from "node:fs";
import path from "node:path";
import {
	ROOT, loadDeps, parseYamlDocuments, renderKustomization, processTemplate, validateObject,
	objectName,
} from "./manifests.mjs";

// What a saas file would set for the parameters that have no default.
export const SAMPLE_PARAMETERS = {
	IMAGE: "quay.io/example/gcs",
	IMAGE_TAG: "0123abc",
	STABLE_VERSION: "1.1.3",
	CONDITIONS_URL: "https://conditions.example.com/gathering-conditions/{version}",
};
// The ClowdApp's Template needs the ClowdEnvironment too.
export const CLOWDAPP_SAMPLE_PARAMETERS = { ...SAMPLE_PARAMETERS, ENV_NAME: "env-gcs" };

// The Templates under deploy/, with the values a saas file would set.
const TEMPLATES = {
	"openshift-template.yaml": SAMPLE_PARAMETERS,
	"clowdapp.yaml": CLOWDAPP_SAMPLE_PARAMETERS,
};

const TEMPLATE_FIELDS = new Set(["apiVersion", "kind", "metadata", "parameters", "objects", "labels", "message"]);
const PARAMETER_FIELDS = new Set(["name", "displayName", "description", "value", "generate", "from", "required"]);

function templateErrors(t) {
	const errors = [];
	if (t.apiVersion !== "template.openshift.io/v1" || t.kind !== "Template")
		errors.push(`not a template.openshift.io/v1 Template: ${t.apiVersion} ${t.kind}`);
	if (typeof t.metadata?.name !== "string")
		errors.push("metadata.name is missing");
	for (const k of Object.keys(t))
		if (!TEMPLATE_FIELDS.has(k))
			errors.push(`unknown Template field "${k}"`);
	if (!Array.isArray(t.parameters) || !Array.isArray(t.objects))
		errors.push("parameters and objects must be lists");
	for (const p of t.parameters ?? []) {
		if (typeof p.name !== "string" || !/^[A-Za-z0-9_]+$/.test(p.name))
			errors.push(`parameter name ${JSON.stringify(p.name)} is not [A-Za-z0-9_]+`);
		for (const k of Object.keys(p))
			if (!PARAMETER_FIELDS.has(k))
				errors.push(`parameter ${p.name}: unknown field "${k}"`);
		if (p.value !== undefined && typeof p.value !== "string")
			errors.push(`parameter ${p.name}: value must be a string`);
	}
	return errors;
}

function renderTemplate(deps, name) {
	const file = path.join(ROOT, "deploy", name);
	const [template] = parseYamlDocuments(deps.YAML, fs.readFileSync(file, "utf8"), `deploy/${name}`);
	return { template, sample: TEMPLATES[name], processed: processTemplate(deps.YAML, template, TEMPLATES[name]) };
}

// The base, the Template (its fields at the top, as before) and the
// ClowdApp's Template.
export function render(deps) {
	const base = renderKustomization(deps.YAML, path.join(ROOT, "deploy", "base"));
	return { base, ...renderTemplate(deps, "openshift-template.yaml"), clowdapp: renderTemplate(deps, "clowdapp.yaml") };
}

class Tap {
	constructor() {
		this.n = 0;
		this.failed = 0;
	}

	check(name, errors) {
		this.n++;
		if (errors.length === 0) {
			console.log(`ok ${this.n} ${name}`);
			return;
		}
		this.failed++;
		console.log(`not ok ${this.n} ${name}`);
		for (const e of errors)
			console.log(`# ${e}`);
	}

	end() {
		console.log(`1..${this.n}`);
		process.exitCode = this.failed === 0 && this.n > 0 ? 0 : 1;
	}
}

async function main(argv) {
	const [cache, mode, ...files] = argv;
	if (!cache)
		throw new Error("usage: validate.mjs CACHE [--render | --check FILE...]");
	const deps = await loadDeps(path.resolve(cache));
	if (mode === "--render") {
		process.stdout.write(JSON.stringify(render(deps), null, 1) + "\n");
		return;
	}
	if (mode === "--json") {
		const text = fs.readFileSync(files[0], "utf8");
		process.stdout.write(JSON.stringify(parseYamlDocuments(deps.YAML, text, files[0])) + "\n");
		return;
	}
	const tap = new Tap();
	if (mode === "--check") {
		for (const file of files) {
			let objects;
			try {
				objects = parseYamlDocuments(deps.YAML, fs.readFileSync(file, "utf8"), file);
			} catch (e) {
				tap.check(file, [e.message]);
				continue;
			}
			for (const obj of objects)
				tap.check(`${file} ${objectName(obj)}`, validateObject(deps, obj));
		}
		tap.end();
		return;
	}
	if (mode !== undefined)
		throw new Error(`unknown mode ${mode}`);
	for (const obj of renderKustomization(deps.YAML, path.join(ROOT, "deploy", "base")))
		tap.check(`deploy/base ${objectName(obj)}`, validateObject(deps, obj));
	for (const name of Object.keys(TEMPLATES)) {
		const { template, processed } = renderTemplate(deps, name);
		tap.check(`deploy/${name} Template`, templateErrors(template));
		tap.check(`deploy/${name} parameters`, processed.errors);
		for (const obj of processed.objects)
			tap.check(`deploy/${name} ${objectName(obj)}`, validateObject(deps, obj));
	}
	tap.end();
}

main(process.argv.slice(2)).catch((e) => {
	console.error(`validate.mjs: ${e.message}`);
	process.exitCode = 2;
});
