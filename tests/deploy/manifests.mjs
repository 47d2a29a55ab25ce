// Reads deploy/ the way a cluster's tooling would (kustomize for the base,
// `oc process` for the Template) and validates each object against the
// Kubernetes API schemas.
//
// Two libraries, because neither does both halves: kubernetes-models checks
// types, required fields, enums and formats (quantities, int-or-string) with
// the API's OpenAPI schemas but lets unknown fields through;
// @kubernetes/client-node lists every field of every API type, which catches
// the misspelt or misplaced field the API server rejects under strict field
// validation (kubectl's default).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

// Dependencies live in a cache outside the source tree (see
// tests/blackbox/test_deploy.py), so they are loaded from there by path.
export async function loadDeps(cacheDir) {
	const require = createRequire(path.join(cacheDir, "package.json"));
	const YAML = require("yaml");
	const serializer = path.join(cacheDir, "node_modules", "@kubernetes", "client-node", "dist",
		"gen", "models", "ObjectSerializer.js");
	const apiTypes = await import(pathToFileURL(serializer).href);
	return { YAML, require, apiTypes };
}

export function parseYamlDocuments(YAML, text, where) {
	const docs = YAML.parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
	const out = [];
	for (const doc of docs) {
		if (doc.errors.length > 0)
			throw new Error(`${where}: ${doc.errors.map((e) => e.message).join("; ")}`);
		const value = doc.toJS();
		if (value !== null && value !== undefined)
			out.push(value);
	}
	return out;
}

function readYamlFile(YAML, file) {
	return parseYamlDocuments(YAML, fs.readFileSync(file, "utf8"), path.relative(ROOT, file));
}

// The part of kustomize the base uses. Any other field is an error rather
// than silently ignored, so the base cannot outgrow this renderer unnoticed.
const KUSTOMIZATION_FIELDS = new Set(["apiVersion", "kind", "resources", "configMapGenerator"]);
const GENERATOR_FIELDS = new Set(["name", "files", "options"]);
const GENERATOR_OPTIONS = new Set(["disableNameSuffixHash", "labels"]);

export function renderKustomization(YAML, dir) {
	const [k] = readYamlFile(YAML, path.join(dir, "kustomization.yaml"));
	for (const field of Object.keys(k))
		if (!KUSTOMIZATION_FIELDS.has(field))
			throw new Error(`${dir}/kustomization.yaml: field ${field} is not supported by this renderer`);
	const objects = [];
	for (const res of k.resources ?? [])
		objects.push(...readYamlFile(YAML, path.join(dir, res)));
	for (const gen of k.configMapGenerator ?? []) {
		for (const field of Object.keys(gen))
			if (!GENERATOR_FIELDS.has(field))
				throw new Error(`configMapGenerator ${gen.name}: field ${field} is not supported`);
		for (const opt of Object.keys(gen.options ?? {}))
			if (!GENERATOR_OPTIONS.has(opt))
				throw new Error(`configMapGenerator ${gen.name}: option ${opt} is not supported`);
		if (gen.options?.disableNameSuffixHash !== true)
			throw new Error(`configMapGenerator ${gen.name}: a name hash suffix is not supported`);
		const data = {};
		for (const entry of gen.files ?? []) {
			const [key, file] = entry.includes("=") ? entry.split("=", 2) : [path.basename(entry), entry];
			const resolved = path.resolve(dir, file);
			if (!resolved.startsWith(path.resolve(dir) + path.sep))
				throw new Error(`configMapGenerator ${gen.name}: ${file} is outside ${dir}; kustomize refuses it`);
			data[key] = fs.readFileSync(resolved, "utf8");
		}
		const metadata = { name: gen.name };
		if (gen.options?.labels)
			metadata.labels = gen.options.labels;
		objects.push({ apiVersion: "v1", kind: "ConfigMap", metadata, data });
	}
	return objects;
}

// `oc process`: ${NAME} is replaced inside strings, a whole "${{NAME}}"
// becomes the value parsed as YAML (how numbers get into replicas). A
// reference to an undeclared parameter is an error here, not text sent on.
export function processTemplate(YAML, template, values) {
	const errors = [];
	const params = new Map();
	for (const p of template.parameters ?? []) {
		if (params.has(p.name))
			errors.push(`parameter ${p.name} is declared twice`);
		let v = Object.hasOwn(values, p.name) ? values[p.name] : p.value;
		if (v === undefined) {
			if (p.required)
				errors.push(`parameter ${p.name} is required and has no value`);
			v = "";
		}
		params.set(p.name, String(v));
	}
	for (const name of Object.keys(values))
		if (!params.has(name))
			errors.push(`value given for undeclared parameter ${name}`);
	const used = new Set();
	const lookup = (name) => {
		used.add(name);
		if (!params.has(name)) {
			errors.push(`\${${name}} is not a declared parameter`);
			return "";
		}
		return params.get(name);
	};
	const subst = (node) => {
		if (typeof node === "string") {
			const whole = /^\$\{\{([A-Za-z0-9_]+)\}\}$/.exec(node);
			if (whole)
				return YAML.parse(lookup(whole[1]));
			return node.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_, name) => lookup(name));
		}
		if (Array.isArray(node))
			return node.map(subst);
		if (node && typeof node === "object")
			return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, subst(v)]));
		return node;
	};
	const objects = subst(template.objects ?? []);
	for (const name of params.keys())
		if (!used.has(name))
			errors.push(`parameter ${name} is declared but never used`);
	return { objects, errors };
}

// Objects of custom resources, by API group: the npm package whose models
// carry the CRD's own OpenAPI schema.
const CRD_MODELS = {
	"monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};
// Custom resources no npm package models: their spec is checked strictly
// against the CRD itself, in Python (tests/blackbox/test_deploy.py, with
// Clowder's CRD vendored in tests/data/clowder); here only the envelope.
const CRD_CHECKED_IN_PYTHON = new Set(["cloud.redhat.com"]);

function crdPackage(obj) {
	return CRD_MODELS[obj.apiVersion.split("/")[0]];
}

// apiVersion "apps/v1" -> kubernetes-models/apps/v1; "v1" (core) -> kubernetes-models/v1;
// a custom resource -> its package's group/version/Kind.
function modelClass(require, obj) {
	const crd = crdPackage(obj);
	const mod = require(crd ? `${crd}/${obj.apiVersion}/${obj.kind}` : `kubernetes-models/${obj.apiVersion}`);
	const cls = mod[obj.kind];
	if (typeof cls !== "function")
		throw new Error(`no model for ${obj.apiVersion} ${obj.kind}`);
	return cls;
}

// Client type names: V1Deployment, V2HorizontalPodAutoscaler, ...
function apiTypeName(obj) {
	const version = obj.apiVersion.split("/").pop();
	return version.charAt(0).toUpperCase() + version.slice(1) + obj.kind;
}

function unknownFields(apiTypes, value, type, where, out) {
	if (value === null || value === undefined)
		return;
	const array = /^Array<(.+)>$/.exec(type);
	if (array) {
		if (Array.isArray(value))
			value.forEach((v, i) => unknownFields(apiTypes, v, array[1], `${where}/${i}`, out));
		return;
	}
	const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
	if (map) {
		for (const [k, v] of Object.entries(value))
			unknownFields(apiTypes, v, map[1], `${where}/${k}`, out);
		return;
	}
	const cls = apiTypes[type];
	if (typeof cls?.getAttributeTypeMap !== "function" || typeof value !== "object")
		return; // a scalar, IntOrString, Quantity or free-form field: the schema check covers it
	const fields = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
	for (const [k, v] of Object.entries(value)) {
		if (!fields.has(k))
			out.push(`${where}: unknown field "${k}" in ${type}`);
		else
			unknownFields(apiTypes, v, fields.get(k), `${where}/${k}`, out);
	}
}

// Every reason the API server would refuse obj, as "path: why" lines.
export function validateObject(deps, obj) {
	const errors = [];
	if (!obj || typeof obj.apiVersion !== "string" || typeof obj.kind !== "string")
		return ["not a Kubernetes object (apiVersion and kind must be strings)"];
	if (typeof obj.metadata?.name !== "string" || obj.metadata.name === "")
		errors.push("metadata.name is missing");
	if (CRD_CHECKED_IN_PYTHON.has(obj.apiVersion.split("/")[0])) {
		for (const k of Object.keys(obj))
			if (!["apiVersion", "kind", "metadata", "spec"].includes(k))
				errors.push(`: unknown field "${k}" in ${obj.kind}`);
		unknownFields(deps.apiTypes, obj.metadata, "V1ObjectMeta", "/metadata", errors);
		return errors;
	}
	try {
		new (modelClass(deps.require, obj))(obj).validate();
	} catch (e) {
		errors.push(e.message);
	}
	if (crdPackage(obj)) {
		// The CRD models check types, required fields and patterns but not
		// unknown fields: check the envelope and metadata here. Inside spec,
		// a PrometheusRule's groups and rules are parsed strictly by promtool
		// (tests/blackbox/test_monitoring.py).
		for (const k of Object.keys(obj))
			if (!["apiVersion", "kind", "metadata", "spec"].includes(k))
				errors.push(`: unknown field "${k}" in ${obj.kind}`);
		unknownFields(deps.apiTypes, obj.metadata, "V1ObjectMeta", "/metadata", errors);
		return errors;
	}
	const type = apiTypeName(obj);
	if (typeof deps.apiTypes[type]?.getAttributeTypeMap !== "function")
		errors.push(`no API type ${type} for the field check`);
	else
		unknownFields(deps.apiTypes, obj, type, "", errors);
	return errors;
}

export function objectName(obj) {
	return `${obj?.kind}/${obj?.metadata?.name}`;
}
