#include "conditions.h"

#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "jsontext.h"
#include "regex.h"

#define MAPPING_FILE "v2/cluster_version_mapping.json"
#define RULES_FILE   "v1/rules.json"

static const char *const v1_keys[] = {"rules", "version", NULL};
static const char *const v2_keys[] = {"conditional_gathering_rules", "container_logs", "version",
                                      NULL};

struct loader {
	const struct gcs_config *cfg;
	const struct js_registry *schemas;
	struct diag *problems;
	const char *version;
	const char *label; /* "<channel> <version>" for summary lines */
};

struct report_ctx {
	struct loader *L;
	const char *file;
};

static void report(void *ud, const char *pointer, const char *message)
{
	struct report_ctx *r = ud;
	if (pointer && *pointer)
		diag_add(r->L->problems, "%s: %s: %s", r->file, pointer, message);
	else
		diag_add(r->L->problems, "%s: %s", r->file, message);
}

/* Downloads file (relative to the version root) and parses it strictly. */
static json_t *load_json(struct loader *L, const char *file)
{
	char err[1024];
	char *url = fetch_url_for(L->cfg->conditions_url, L->version, file);
	if (!url) {
		diag_add(L->problems, "%s: out of memory", file);
		return NULL;
	}
	struct fetch_buf buf = {0};
	enum fetch_result res = fetch_get(url, &L->cfg->fetch, &buf, err, sizeof(err));
	free(url);
	if (res != FETCH_OK) {
		diag_add(L->problems, "%s: %s", file, err);
		return NULL;
	}
	json_t *v = jsontext_parse(buf.data, buf.len, err, sizeof(err));
	fetch_buf_free(&buf);
	if (!v)
		diag_add(L->problems, "%s: invalid JSON: %s", file, err);
	return v;
}

/* Schema validation plus the top-level key rule: the Insights Operator
 * decodes with DisallowUnknownFields, so an extra key breaks every cluster. */
static bool validate(struct loader *L, const char *file, const char *schema_id, const json_t *v,
                     const char *const *allowed_keys)
{
	struct report_ctx r = {L, file};
	size_t before = L->problems->count;
	js_validate(L->schemas, schema_id, v, report, &r);
	if (allowed_keys && json_is_object(v)) {
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)v, key, val)
		{
			bool known = false;
			for (const char *const *k = allowed_keys; *k; k++)
				known = known || strcmp(key, *k) == 0;
			if (!known) {
				struct buf q = {0};
				jsontext_string(&q, key, strlen(key));
				diag_add(L->problems,
				         "%s: top-level key %s is not allowed (clients reject "
				         "unknown fields)",
				         file, q.data ? q.data : "?");
				buf_free(&q);
			}
		}
	}
	return L->problems->count == before;
}

/* Container-log regexes run in the Insights Operator's Go regexp: each one,
 * and the messages of one request joined with '|', must be RE2 syntax. */
static void check_regexes(struct loader *L, const char *file, const json_t *conf)
{
	char err[512], ptr[128];
	const json_t *logs = json_object_get(conf, "container_logs");
	size_t i, j;
	json_t *log, *msg;
	json_array_foreach(logs, i, log)
	{
		const char *pod = json_string_value(json_object_get(log, "pod_name_regex"));
		if (pod && !regex_check_re2(pod, err, sizeof(err)))
			diag_add(L->problems, "%s: /container_logs/%zu/pod_name_regex: %s", file, i,
			         err);
		const json_t *msgs = json_object_get(log, "messages");
		struct buf joined = {0};
		bool all_ok = true;
		json_array_foreach(msgs, j, msg)
		{
			const char *m = json_string_value(msg);
			if (!m)
				continue;
			if (!regex_check_re2(m, err, sizeof(err))) {
				all_ok = false;
				diag_add(L->problems, "%s: /container_logs/%zu/messages/%zu: %s",
				         file, i, j, err);
			}
			if (j)
				buf_put(&joined, "|", 1);
			buf_puts(&joined, m);
		}
		if (all_ok && joined.data && !regex_check_re2(joined.data, err, sizeof(err))) {
			snprintf(ptr, sizeof(ptr), "/container_logs/%zu/messages", i);
			diag_add(L->problems, "%s: %s: joined with '|': %s", file, ptr, err);
		}
		buf_free(&joined);
	}
}

/* --- rendering: the bytes Go's encoding/json produced from the field
 * service's structs (see jsontext.h); struct fields in declaration order. --- */

static void render_rule(struct buf *b, const json_t *rule)
{
	const json_t *conds = json_object_get(rule, "conditions");
	const json_t *funcs = json_object_get(rule, "gathering_functions");
	bool first = true;
	buf_put(b, "{", 1);
	if (json_is_array(conds) && json_array_size(conds) > 0) { /* omitempty */
		buf_puts(b, "\"conditions\":");
		jsontext_encode(b, conds);
		first = false;
	}
	if (funcs && !json_is_null(funcs)) { /* omitempty on an interface{} */
		if (!first)
			buf_put(b, ",", 1);
		buf_puts(b, "\"gathering_functions\":");
		jsontext_encode(b, funcs);
	}
	buf_put(b, "}", 1);
}

/* A list as Go encodes a slice: null when absent, else each element as
 * render_item writes it. */
static void render_list(struct buf *b, const json_t *list,
                        void (*render_item)(struct buf *, const json_t *))
{
	size_t i;
	json_t *item;
	if (!json_is_array(list)) {
		buf_puts(b, "null");
		return;
	}
	buf_put(b, "[", 1);
	json_array_foreach(list, i, item)
	{
		if (i)
			buf_put(b, ",", 1);
		render_item(b, item);
	}
	buf_put(b, "]", 1);
}

static void render_string_field(struct buf *b, const json_t *obj, const char *key)
{
	const json_t *s = json_object_get(obj, key);
	if (json_is_string(s))
		jsontext_string(b, json_string_value(s), json_string_length(s));
	else
		buf_puts(b, "\"\"");
}

static void render_container_log(struct buf *b, const json_t *log)
{
	buf_puts(b, "{\"namespace\":");
	render_string_field(b, log, "namespace");
	buf_puts(b, ",\"pod_name_regex\":");
	render_string_field(b, log, "pod_name_regex");
	if (json_is_true(json_object_get(log, "previous")))
		buf_puts(b, ",\"previous\":true");
	buf_puts(b, ",\"messages\":");
	const json_t *msgs = json_object_get(log, "messages");
	if (json_is_array(msgs))
		jsontext_encode(b, msgs);
	else
		buf_puts(b, "null");
	buf_put(b, "}", 1);
}

static void render_v1(struct buf *b, const json_t *doc)
{
	buf_puts(b, "{\"version\":");
	render_string_field(b, doc, "version");
	buf_puts(b, ",\"rules\":");
	render_list(b, json_object_get(doc, "rules"), render_rule);
	buf_put(b, "}", 1);
}

static void render_v2(struct buf *b, const json_t *doc)
{
	buf_puts(b, "{\"conditional_gathering_rules\":");
	render_list(b, json_object_get(doc, "conditional_gathering_rules"), render_rule);
	buf_puts(b, ",\"container_logs\":");
	render_list(b, json_object_get(doc, "container_logs"), render_container_log);
	buf_puts(b, ",\"version\":");
	render_string_field(b, doc, "version");
	buf_put(b, "}", 1);
}

/* Takes the rendered bytes into body. */
static bool make_body(struct loader *L, const char *file, struct buf *b, struct body *body)
{
	if (b->oom || !b->data || body_init(body, b->data, b->len) < 0) {
		diag_add(L->problems, "%s: out of memory rendering the body", file);
		if (b->oom)
			buf_free(b);
		*b = (struct buf){0};
		return false;
	}
	*b = (struct buf){0};
	return true;
}

const char *cond_path_problem(const char *path)
{
	if (!*path)
		return "path is empty";
	if (path[0] == '/')
		return "absolute path; must be relative to v2/";
	if (strchr(path, '\\'))
		return "backslash in path";
	if (strchr(path, '%'))
		return "percent-escape in path";
	for (const char *p = path; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '/'))
			return "character outside [A-Za-z0-9._/-] in path";
	}
	const char *seg = path;
	for (;;) {
		const char *end = strchr(seg, '/');
		size_t n = end ? (size_t)(end - seg) : strlen(seg);
		if (n == 0)
			return "empty path segment";
		if (n == 2 && seg[0] == '.' && seg[1] == '.')
			return "'..' segment leaves v2/";
		if (n == 1 && seg[0] == '.')
			return "'.' segment in path";
		if (!end)
			break;
		seg = end + 1;
	}
	return NULL;
}

static const struct cond_file *find_file(const struct cond_set *set, const char *path)
{
	for (size_t i = 0; i < set->nfiles; i++)
		if (strcmp(set->files[i].path, path) == 0)
			return &set->files[i];
	return NULL;
}

/* Loads one v2 remote configuration into set->files. */
static bool load_v2_file(struct loader *L, struct cond_set *set, const char *path, FILE *summary)
{
	char file[1024];
	snprintf(file, sizeof(file), "v2/%s", path);
	json_t *doc = load_json(L, file);
	if (!doc)
		return false;
	size_t before = L->problems->count;
	validate(L, file, "remote_configuration_v2.schema.json", doc, v2_keys);
	check_regexes(L, file, doc);
	bool ok = L->problems->count == before;
	struct cond_file *f = &set->files[set->nfiles];
	if (ok) {
		struct buf b = {0};
		render_v2(&b, doc);
		f->path = strdup(path);
		f->version = strdup(json_string_value(json_object_get(doc, "version")));
		ok = f->path && f->version && make_body(L, file, &b, &f->body);
		if (ok) {
			set->nfiles++;
			if (summary)
				fprintf(summary,
				        "%s: %s: ok: %zu rules, %zu container logs, %zu bytes "
				        "(gzip %zu)\n",
				        L->label, file,
				        json_array_size(
				            json_object_get(doc, "conditional_gathering_rules")),
				        json_array_size(json_object_get(doc, "container_logs")),
				        f->body.len, f->body.gz_len);
		} else {
			free(f->path);
			free(f->version);
			body_free(&f->body);
			*f = (struct cond_file){0};
		}
	}
	json_decref(doc);
	return ok;
}

bool cond_check_mapping(struct cond_set *set, const json_t *mapping, struct diag *problems)
{
	size_t before = problems->count;
	struct semver first_max;
	semver_parse(COND_FIRST_ENTRY_MAX, strlen(COND_FIRST_ENTRY_MAX), &first_max);
	size_t n = json_array_size(mapping);
	if (n == 0) {
		diag_add(problems, "%s: the mapping has no entries", MAPPING_FILE);
		return false;
	}
	set->map = calloc(n, sizeof(*set->map));
	if (!set->map) {
		diag_add(problems, "%s: out of memory", MAPPING_FILE);
		return false;
	}
	const struct cond_entry *prev = NULL;
	for (size_t i = 0; i < n; i++) {
		const json_t *pair = json_array_get(mapping, i);
		const char *ver = json_string_value(json_array_get(pair, 0));
		const char *path = json_string_value(json_array_get(pair, 1));
		if (!json_is_array(pair) || json_array_size(pair) != 2 || !ver || !path)
			continue; /* the schema already said what is wrong */
		struct cond_entry *e = &set->map[set->nmap];
		e->text = strdup(ver);
		if (!e->text) {
			diag_add(problems, "%s: out of memory", MAPPING_FILE);
			return false;
		}
		set->nmap++;
		if (!semver_parse(e->text, strlen(e->text), &e->ver)) {
			diag_add(problems, "%s: /%zu/0: \"%s\" is not a SemVer 2.0.0 version",
			         MAPPING_FILE, i, ver);
			e->text[0] = '\0';
			continue;
		}
		if (i == 0 && semver_cmp(&e->ver, &first_max) > 0)
			diag_add(problems,
			         "%s: /0/0: the first entry %s is above %s (older clusters would "
			         "get no configuration)",
			         MAPPING_FILE, ver, COND_FIRST_ENTRY_MAX);
		if (prev && prev->text[0] && semver_cmp(&e->ver, &prev->ver) <= 0)
			diag_add(
			    problems,
			    "%s: /%zu/0: %s is not greater than the previous entry %s (versions "
			    "must be strictly increasing)",
			    MAPPING_FILE, i, ver, prev->text);
		const char *why = cond_path_problem(path);
		if (why)
			diag_add(problems, "%s: /%zu/1: \"%s\": %s", MAPPING_FILE, i, path, why);
		prev = e;
	}
	return problems->count == before;
}

struct cond_set *cond_load(const char *channel, const char *version, const struct gcs_config *cfg,
                           const struct js_registry *schemas, struct diag *problems, FILE *summary)
{
	char prefix[256];
	snprintf(prefix, sizeof(prefix), "%s %s: ", channel, version);
	const char *saved_prefix = problems->prefix;
	problems->prefix = prefix;
	size_t before = problems->count;

	char label[256];
	snprintf(label, sizeof(label), "%s %s", channel, version);
	struct loader L = {cfg, schemas, problems, version, label};
	struct cond_set *set = calloc(1, sizeof(*set));
	json_t *rules = NULL, *mapping = NULL;
	if (!set || !(set->version = strdup(version))) {
		diag_add(problems, "out of memory");
		goto out;
	}

	/* v1 */
	rules = load_json(&L, RULES_FILE);
	if (rules &&
	    validate(&L, RULES_FILE, "remote_configuration_v1.schema.json", rules, v1_keys)) {
		struct buf b = {0};
		render_v1(&b, rules);
		set->v1_version = strdup(json_string_value(json_object_get(rules, "version")));
		if (set->v1_version && make_body(&L, RULES_FILE, &b, &set->v1) && summary)
			fprintf(summary, "%s: %s: ok: %zu rules, %zu bytes (gzip %zu)\n", L.label,
			        RULES_FILE, json_array_size(json_object_get(rules, "rules")),
			        set->v1.len, set->v1.gz_len);
	}

	/* v2: the mapping, then every file it names, each fetched once */
	mapping = load_json(&L, MAPPING_FILE);
	if (mapping &&
	    validate(&L, MAPPING_FILE, "cluster_version_mapping.schema.json", mapping, NULL) &&
	    cond_check_mapping(set, mapping, L.problems)) {
		set->files = calloc(set->nmap, sizeof(*set->files));
		if (!set->files) {
			diag_add(problems, "out of memory");
			goto out;
		}
		if (summary)
			fprintf(summary, "%s: %s: ok: %zu entries\n", L.label, MAPPING_FILE,
			        set->nmap);
		/* a path named by several entries is fetched, and reported, once */
		for (size_t i = 0; i < set->nmap; i++) {
			const char *path =
			    json_string_value(json_array_get(json_array_get(mapping, i), 1));
			bool seen = false;
			for (size_t j = 0; j < i && !seen; j++)
				seen = strcmp(path, json_string_value(json_array_get(
				                        json_array_get(mapping, j), 1))) == 0;
			if (!seen)
				load_v2_file(&L, set, path, summary);
			set->map[i].file = find_file(set, path);
		}
	}

out:
	json_decref(rules);
	json_decref(mapping);
	problems->prefix = saved_prefix;
	if (problems->count != before) {
		cond_free(set);
		return NULL;
	}
	if (summary)
		fprintf(summary, "%s: valid: v1 and %zu v2 files\n", L.label, set->nfiles);
	return set;
}

void cond_free(struct cond_set *set)
{
	if (!set)
		return;
	for (size_t i = 0; i < set->nfiles; i++) {
		free(set->files[i].path);
		free(set->files[i].version);
		body_free(&set->files[i].body);
	}
	for (size_t i = 0; i < set->nmap; i++)
		free(set->map[i].text);
	free(set->files);
	free(set->map);
	body_free(&set->v1);
	free(set->v1_version);
	free(set->version);
	free(set);
}

const struct cond_file *cond_lookup(const struct cond_set *set, const struct semver *v)
{
	/* binary search for the last entry <= v; the mapping is strictly
	 * increasing (checked at load) */
	size_t lo = 0, hi = set->nmap;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (semver_cmp(&set->map[mid].ver, v) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 ? NULL : set->map[lo - 1].file;
}
