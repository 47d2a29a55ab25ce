/* jsonschema_registry: the registry of compiled schema documents. It adds them
 * (compiled by jsonschema_compile.c), links every $ref to its target across
 * documents, refuses cycles, and hands an instance to jsonschema_validate.c
 * with the schema it names. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema_tree.h"

static struct js_node *find_resource(const struct js_doc *d, const char *uri)
{
	for (size_t i = 0; i < d->n_resources; i++)
		if (d->resources[i].uri[0] && strcmp(d->resources[i].uri, uri) == 0)
			return d->resources[i].root;
	return NULL;
}

enum resolve_result { RESOLVED, NO_RESOURCE, BAD_POINTER };

static enum resolve_result resolve_ref(const struct js_registry *reg, const struct js_doc *doc,
                                       const struct js_node *n, struct js_node **target)
{
	struct js_node *root = NULL;
	if (strcmp(n->ref_uri, n->base) == 0)
		root = n->resource;
	if (!root)
		root = find_resource(doc, n->ref_uri);
	for (size_t i = 0; !root && reg && i < reg->n_docs; i++)
		root = find_resource(reg->docs[i], n->ref_uri);
	if (!root)
		return NO_RESOURCE;
	*target = js_node_at(root, n->ref_pointer);
	return *target ? RESOLVED : BAD_POINTER;
}

/* Reports a problem of n's $ref, which may belong to another document. */
static void ref_error(struct js_cctx *c, const struct js_node *n, const char *why)
{
	struct buf saved = c->where;
	struct js_doc *saved_doc = c->doc;
	struct buf at = {0};
	buf_put(&at, n->where, strlen(n->where));
	buf_pointer_token(&at, "$ref");
	c->where = at;
	c->doc = n->doc;
	js_schema_error(c, "$ref \"%s\" %s", n->ref, why);
	c->where = saved;
	c->doc = saved_doc;
	buf_free(&at);
}

/* Links the $refs of doc. A reference to a resource not (yet) known is
 * an error only when `final`; a bad pointer into a known one always is. */
static void link_doc(struct js_cctx *c, const struct js_registry *reg, struct js_doc *doc,
                     bool final, bool report)
{
	for (size_t i = 0; i < doc->n_nodes; i++) {
		struct js_node *n = doc->nodes[i];
		if (!n->ref_uri || !n->ref_pointer || n->ref_target)
			continue;
		enum resolve_result r = resolve_ref(reg, doc, n, &n->ref_target);
		if (!report)
			continue;
		if (r == BAD_POINTER)
			ref_error(c, n, "points to no schema in its resource");
		else if (r == NO_RESOURCE && final)
			ref_error(c, n, "does not resolve to a known schema");
	}
}

/* Edges that apply another schema to the same instance. A cycle of them
 * would never end, whatever the instance. */
static bool cycle_from(struct js_node *n, const struct js_doc *only, struct js_node **culprit)
{
	if (!n || (only && n->doc != only) || n->mark == 2)
		return false;
	if (n->mark == 1) {
		*culprit = n;
		return true;
	}
	n->mark = 1;
	const struct js_list *lists[] = {&n->all_of, &n->any_of, &n->one_of};
	if (cycle_from(n->ref_target, only, culprit) || cycle_from(n->not_schema, only, culprit))
		return true;
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < lists[k]->n; i++)
			if (cycle_from(lists[k]->v[i], only, culprit))
				return true;
	n->mark = 2;
	return false;
}

static void check_cycles(struct js_cctx *c, struct js_doc **docs, size_t n_docs,
                         const struct js_doc *only)
{
	for (size_t d = 0; d < n_docs; d++)
		for (size_t i = 0; i < docs[d]->n_nodes; i++)
			docs[d]->nodes[i]->mark = 0;
	for (size_t d = 0; d < n_docs; d++) {
		for (size_t i = 0; i < docs[d]->n_nodes; i++) {
			struct js_node *culprit = NULL;
			if (!cycle_from(docs[d]->nodes[i], only, &culprit))
				continue;
			ref_error(c, culprit,
			          "leads back to this schema without descending into "
			          "the value (endless cycle)");
			return;
		}
	}
}

/* ---- the registry ---- */

struct js_registry *js_registry_new(void)
{
	return calloc(1, sizeof(struct js_registry));
}

/* Frees its documents as js_doc_free frees its nodes: two owners, two loops. */
void js_registry_free(struct js_registry *reg)
{
	if (!reg)
		return;
	for (size_t i = 0; i < reg->n_docs; i++)
		js_doc_free(reg->docs[i]);
	free(reg->docs);
	free(reg);
}

static bool doc_resources_clash(struct js_cctx *c, const struct js_registry *reg,
                                const struct js_doc *d)
{
	for (size_t i = 0; i < d->n_resources; i++) {
		const char *uri = d->resources[i].uri;
		for (size_t k = 0; uri[0] && k < reg->n_docs; k++) {
			if (find_resource(reg->docs[k], uri)) {
				js_schema_error(c, "$id \"%s\" is already registered", uri);
				return true;
			}
		}
	}
	return false;
}

int js_registry_add(struct js_registry *reg, json_t *schema, const char *origin,
                    js_report_fn report, void *ud)
{
	struct js_cctx c = {.report = report, .ud = ud};
	struct js_doc *d = js_doc_compile(&c, schema, origin, true);
	if (d && c.problems == 0 && !doc_resources_clash(&c, reg, d))
		link_doc(&c, reg, d, false, true);
	if (c.problems == 0 &&
	    !js_grow((void **)&reg->docs, &reg->cap_docs, reg->n_docs + 1, sizeof(*reg->docs))) {
		js_schema_error(&c, "out of memory");
	}
	if (c.problems > 0) {
		js_doc_free(d);
		buf_free(&c.where);
		return c.problems;
	}
	reg->docs[reg->n_docs++] = d;
	/* Earlier documents may have been waiting for this one. */
	for (size_t i = 0; i + 1 < reg->n_docs; i++)
		link_doc(&c, reg, reg->docs[i], false, false);
	check_cycles(&c, reg->docs, reg->n_docs, NULL);
	if (c.problems > 0) {
		/* Refuse the document that closed the cycle and forget every link
		 * into it, so the registry stays as it was. */
		for (size_t i = 0; i < reg->n_docs; i++)
			for (size_t k = 0; k < reg->docs[i]->n_nodes; k++) {
				struct js_node *n = reg->docs[i]->nodes[k];
				if (n->ref_target && n->ref_target->doc == d)
					n->ref_target = NULL;
			}
		reg->n_docs--;
		js_doc_free(d);
	}
	buf_free(&c.where);
	return c.problems;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int js_registry_load_dir(struct js_registry *reg, const char *dir, js_report_fn report, void *ud)
{
	int problems = 0;
	char msg[4400];
	DIR *dh = opendir(dir);
	if (!dh) {
		snprintf(msg, sizeof(msg), "cannot open schema directory %s: %s", dir,
		         strerror(errno));
		if (report)
			report(ud, "", msg);
		return 1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(dh))) {
		size_t len = strlen(e->d_name);
		if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0 || e->d_name[0] == '.')
			continue;
		char *copy = strdup(e->d_name);
		if (!copy || !js_grow((void **)&names, &cap, n + 1, sizeof(*names))) {
			free(copy);
			problems++;
			if (report)
				report(ud, "", "out of memory");
			break;
		}
		names[n++] = copy;
	}
	closedir(dh);
	/* Sorted, so that messages come in the same order on every host. */
	if (n > 0)
		qsort(names, n, sizeof(*names), compare_names);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		json_error_t err;
		json_t *schema = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
		if (!schema) {
			snprintf(msg, sizeof(msg), "%s:%d:%d: %s", path, err.line, err.column,
			         err.text);
			if (report)
				report(ud, "", msg);
			problems++;
		} else {
			problems += js_registry_add(reg, schema, path, report, ud);
			json_decref(schema);
		}
		free(names[i]);
	}
	free(names);
	if (n == 0 && problems == 0) {
		snprintf(msg, sizeof(msg), "no *.json schema in %s", dir);
		if (report)
			report(ud, "", msg);
		problems++;
	}
	for (size_t i = 0; i < reg->n_docs; i++) {
		struct js_cctx c = {.report = report, .ud = ud, .doc = reg->docs[i]};
		link_doc(&c, reg, reg->docs[i], true, true);
		problems += c.problems;
		buf_free(&c.where);
	}
	return problems;
}

int js_validate(const struct js_registry *reg, const char *id, const json_t *instance,
                js_report_fn report, void *ud)
{
	const struct js_node *root = NULL;
	for (size_t i = 0; reg && id && !root && id[0] && i < reg->n_docs; i++)
		root = find_resource(reg->docs[i], id);
	if (!root) {
		char msg[512];
		snprintf(msg, sizeof(msg), "no schema with $id \"%s\" is registered", id ? id : "");
		if (report)
			report(ud, "", msg);
		return 1;
	}
	return js_run(root, instance, report, ud);
}

int js_validate_with(const struct js_registry *reg, const json_t *schema, const json_t *instance,
                     js_report_fn report, void *ud)
{
	struct js_cctx c = {.report = report, .ud = ud};
	struct js_doc *d = js_doc_compile(&c, schema, NULL, false);
	if (d && c.problems == 0)
		link_doc(&c, reg, d, true, true);
	if (d && c.problems == 0)
		check_cycles(&c, &d, 1, d);
	int problems = c.problems;
	if (problems == 0)
		problems = js_run(d->resources[0].root, instance, report, ud);
	js_doc_free(d);
	buf_free(&c.where);
	return problems;
}
