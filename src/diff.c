#include "diff.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "conditions.h"
#include "jsontext.h"
#include "semver.h"

/* The comparison works on the bodies as served (cond_set's rendered bytes,
 * parsed back), not on the files: a key the clients never see cannot show
 * up as a difference, and "the same bytes" means exactly that. The result is
 * first built as one JSON document (the --format json output); text and
 * Markdown are two renderings of that same document. */

/* A command-line tool: running out of memory ends it with trouble (2)
 * rather than printing a partial comparison. */
static void *need(void *p)
{
	if (!p) {
		fputs("gcs: out of memory\n", stderr);
		exit(2);
	}
	return p;
}

static void set(json_t *obj, const char *key, json_t *value)
{
	if (json_object_set_new(obj, key, need(value)) < 0)
		need(NULL);
}

static void add(json_t *array, json_t *value)
{
	if (json_array_append_new(array, need(value)) < 0)
		need(NULL);
}

/* A borrowed value, NULL written as JSON null. */
static json_t *ref(const json_t *v)
{
	return v ? json_incref((json_t *)v) : json_null();
}

static char *compact(const json_t *v)
{
	return need(json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS));
}

/* The Go-encoded bytes of v: what clients receive, so equal text means the
 * same rule or request. */
static char *go_text(const json_t *v)
{
	struct buf b = {0};
	if (v)
		jsontext_encode(&b, v);
	else
		buf_puts(&b, "null");
	return need(buf_take(&b));
}

static void put_json(struct buf *b, const json_t *v)
{
	char *s = compact(v);
	buf_puts(b, s);
	free(s);
}

/* --- comparing --- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Elements of a not equal to any element of b. */
static json_t *missing_from(const json_t *a, const json_t *b)
{
	json_t *out = need(json_array());
	size_t i, j;
	json_t *x, *y;
	json_array_foreach(a, i, x)
	{
		bool found = false;
		json_array_foreach(b, j, y) found = found || json_equal(x, y);
		if (!found)
			add(out, ref(x));
	}
	return out;
}

/* One entry per key whose value differs between objects a and b (either
 * may be NULL), in key order, named by name_key: {"function": ..., "change":
 * "added" | "removed" | "changed", "old", "new"}. Two arrays also get the
 * elements "added" and "removed"; two objects, when nested_key is given, the
 * same comparison one level down under nested_key (a gathering function's
 * parameters). */
static json_t *diff_fields(const json_t *a, const json_t *b, const char *name_key,
                           const char *nested_key)
{
	size_t n = json_object_size(a) + json_object_size(b), k = 0;
	const char **keys = need(calloc(n ? n : 1, sizeof(*keys)));
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)a, key, v) keys[k++] = key;
	json_object_foreach((json_t *)b, key, v) keys[k++] = key;
	qsort(keys, k, sizeof(*keys), cmp_str);

	json_t *out = need(json_array());
	for (size_t i = 0; i < k; i++) {
		if (i && strcmp(keys[i], keys[i - 1]) == 0)
			continue;
		const json_t *x = json_object_get(a, keys[i]), *y = json_object_get(b, keys[i]);
		if (x && y && json_equal(x, y))
			continue;
		json_t *e = need(json_object());
		set(e, name_key, json_string(keys[i]));
		set(e, "change", json_string(!x ? "added" : !y ? "removed" : "changed"));
		if (x)
			set(e, "old", ref(x));
		if (y)
			set(e, "new", ref(y));
		if (json_is_array(x) && json_is_array(y)) {
			set(e, "added", missing_from(y, x));
			set(e, "removed", missing_from(x, y));
		}
		if (nested_key && json_is_object(x) && json_is_object(y))
			set(e, nested_key, diff_fields(x, y, "parameter", NULL));
		add(out, e);
	}
	free(keys);
	return out;
}

/* What identifies an item of a list (a rule by its conditions, a container
 * log request by namespace and pod name regex), how a person reads it, and
 * what changed inside two items with the same identity. */
struct kind {
	char *(*key)(const json_t *item);
	char *(*name)(const json_t *item);
	json_t *(*details)(const json_t *old, const json_t *new);
};

struct counts {
	size_t added, removed, changed, unchanged;
};

static json_t *counts_json(const struct counts *c)
{
	return json_pack("{sIsIsIsI}", "added", (json_int_t)c->added, "removed",
	                 (json_int_t)c->removed, "changed", (json_int_t)c->changed, "unchanged",
	                 (json_int_t)c->unchanged);
}

static json_t *change(const char *what, char *name, const json_t *old, const json_t *new)
{
	json_t *e = need(json_object());
	set(e, "change", json_string(what));
	set(e, "name", json_string(name));
	free(name);
	if (old)
		set(e, "old", ref(old));
	if (new)
		set(e, "new", ref(new));
	return e;
}

/* Items of two lists matched by identity; the k-th of several items with
 * the same identity is matched with the k-th in the other list. Changes
 * come as added, removed, changed, each in list order. */
static json_t *diff_list(const struct kind *kind, const json_t *old, const json_t *new,
                         struct counts *c)
{
	size_t no = json_array_size(old), nn = json_array_size(new);
	char **ko = need(calloc(no ? no : 1, sizeof(*ko)));
	char **kn = need(calloc(nn ? nn : 1, sizeof(*kn)));
	size_t *pair = need(calloc(nn ? nn : 1, sizeof(*pair))); /* old index + 1, 0: none */
	bool *taken = need(calloc(no ? no : 1, sizeof(*taken)));
	for (size_t j = 0; j < no; j++)
		ko[j] = kind->key(json_array_get(old, j));
	for (size_t i = 0; i < nn; i++) {
		kn[i] = kind->key(json_array_get(new, i));
		for (size_t j = 0; j < no && !pair[i]; j++)
			if (!taken[j] && strcmp(kn[i], ko[j]) == 0) {
				taken[j] = true;
				pair[i] = j + 1;
			}
	}

	json_t *added = need(json_array()), *removed = need(json_array());
	json_t *changed = need(json_array());
	*c = (struct counts){0};
	for (size_t i = 0; i < nn; i++) {
		const json_t *y = json_array_get(new, i);
		if (!pair[i]) {
			add(added, change("added", kind->name(y), NULL, y));
			c->added++;
			continue;
		}
		const json_t *x = json_array_get(old, pair[i] - 1);
		json_t *details = json_equal(x, y) ? NULL : need(kind->details(x, y));
		if (!json_array_size(details)) {
			/* equal, or only the order inside the identity moved (the
			 * conditions of a rule): order_changed says so */
			json_decref(details);
			c->unchanged++;
			continue;
		}
		json_t *e = change("changed", kind->name(y), x, y);
		set(e, "details", details);
		add(changed, e);
		c->changed++;
	}
	for (size_t j = 0; j < no; j++)
		if (!taken[j]) {
			add(removed, change("removed", kind->name(json_array_get(old, j)),
			                    json_array_get(old, j), NULL));
			c->removed++;
		}
	json_array_extend(added, removed);
	json_array_extend(added, changed);
	json_decref(removed);
	json_decref(changed);
	for (size_t j = 0; j < no; j++)
		free(ko[j]);
	for (size_t i = 0; i < nn; i++)
		free(kn[i]);
	free(ko);
	free(kn);
	free(pair);
	free(taken);
	return added;
}

/* A rule fires when all its conditions hold: their order is no part of
 * its identity. */
static char *rule_key(const json_t *rule)
{
	const json_t *conds = json_object_get(rule, "conditions");
	size_t n = json_array_size(conds);
	char **texts = need(calloc(n ? n : 1, sizeof(*texts)));
	for (size_t i = 0; i < n; i++)
		texts[i] = go_text(json_array_get(conds, i));
	qsort(texts, n, sizeof(*texts), cmp_str);
	struct buf b = {0};
	for (size_t i = 0; i < n; i++) {
		buf_puts(&b, texts[i]);
		buf_put(&b, "\n", 1); /* cannot occur in compact JSON */
		free(texts[i]);
	}
	free(texts);
	return need(buf_take(&b));
}

/* "alert KubePodNotReady and cluster version \">=4.17\"" */
static char *rule_name(const json_t *rule)
{
	const json_t *conds = json_object_get(rule, "conditions");
	struct buf b = {0};
	size_t i;
	json_t *cond;
	if (!json_array_size(conds))
		buf_puts(&b, "without conditions (always gathered)");
	json_array_foreach(conds, i, cond)
	{
		const char *type = json_string_value(json_object_get(cond, "type"));
		const json_t *alert = json_object_get(json_object_get(cond, "alert"), "name");
		const json_t *version =
		    json_object_get(json_object_get(cond, "cluster_version_matches"), "version");
		if (i)
			buf_puts(&b, " and ");
		if (type && strcmp(type, "alert_is_firing") == 0 && json_is_string(alert)) {
			buf_puts(&b, "alert ");
			buf_puts(&b, json_string_value(alert));
		} else if (type && strcmp(type, "cluster_version_matches") == 0 &&
		           json_is_string(version)) {
			buf_puts(&b, "cluster version ");
			put_json(&b, version);
		} else {
			put_json(&b, cond);
		}
	}
	return need(buf_take(&b));
}

static json_t *rule_details(const json_t *old, const json_t *new)
{
	return diff_fields(json_object_get(old, "gathering_functions"),
	                   json_object_get(new, "gathering_functions"), "function", "parameters");
}

static char *log_key(const json_t *log)
{
	json_t *id = need(json_pack("[OO]", json_object_get(log, "namespace"),
	                            json_object_get(log, "pod_name_regex")));
	char *key = go_text(id);
	json_decref(id);
	return key;
}

/* "namespace openshift-etcd, pods \"etcd-.*\"" */
static char *log_name(const json_t *log)
{
	struct buf b = {0};
	buf_puts(&b, "namespace ");
	buf_puts(&b, json_string_value(json_object_get(log, "namespace")));
	buf_puts(&b, ", pods ");
	put_json(&b, json_object_get(log, "pod_name_regex"));
	return need(buf_take(&b));
}

static json_t *log_details(const json_t *old, const json_t *new)
{
	return diff_fields(old, new, "field", NULL);
}

static const struct kind rules_kind = {rule_key, rule_name, rule_details};
static const struct kind logs_kind = {log_key, log_name, log_details};

/* Fills sec with the differences between two served documents (either may
 * be NULL: nothing served). */
static void diff_document(json_t *sec, const json_t *a, const json_t *b, const char *rules_key,
                          bool with_logs, bool same_bytes)
{
	struct counts rc, lc = {0};
	const json_t *va = json_object_get(a, "version"), *vb = json_object_get(b, "version");
	bool version_changed = a && b && !json_equal(va, vb);
	if (version_changed)
		set(sec, "version", json_pack("{sOsO}", "old", va, "new", vb));
	json_t *rules = diff_list(&rules_kind, json_object_get(a, rules_key),
	                          json_object_get(b, rules_key), &rc);
	bool listed = json_array_size(rules) > 0;
	set(sec, "rules", rules);
	set(sec, "rule_counts", counts_json(&rc));
	if (with_logs) {
		json_t *logs = diff_list(&logs_kind, json_object_get(a, "container_logs"),
		                         json_object_get(b, "container_logs"), &lc);
		listed = listed || json_array_size(logs) > 0;
		set(sec, "container_logs", logs);
		set(sec, "container_log_counts", counts_json(&lc));
	}
	/* Bytes differ with nothing else to show: only the order of rules or
	 * requests moved, which a reviewer should still be told. */
	set(sec, "order_changed", json_boolean(!same_bytes && !version_changed && !listed));
}

static bool same_body(const struct body *a, const struct body *b)
{
	return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static json_t *parse_body(const struct body *body)
{
	json_error_t e;
	/* bodies are rendered by conditions.c from validated documents */
	return need(json_loadb(body->data, body->len, 0, &e));
}

static json_t *mapping_json(const struct cond_set *set)
{
	json_t *out = need(json_array());
	for (size_t i = 0; i < set->nmap; i++)
		add(out, json_pack("[ss]", set->map[i].text, set->map[i].file->path));
	return out;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct cond_entry *x = *(const struct cond_entry *const *)a;
	const struct cond_entry *y = *(const struct cond_entry *const *)b;
	return semver_cmp(&x->ver, &y->ver);
}

/* The v2 comparison by OCP version range: the mappings' boundaries taken
 * together cut the versions into ranges in which each side serves one file;
 * neighbouring ranges with the same pair of files are one range. */
static json_t *diff_v2(const struct cond_set *old, const struct cond_set *new, bool *identical)
{
	json_t *docs[2] = {need(json_array()), need(json_array())};
	const struct cond_set *sets[2] = {old, new};
	for (int s = 0; s < 2; s++)
		for (size_t i = 0; i < sets[s]->nfiles; i++)
			add(docs[s], parse_body(&sets[s]->files[i].body));

	size_t n = old->nmap + new->nmap, nb = 0;
	const struct cond_entry **bounds = need(calloc(n, sizeof(*bounds)));
	for (size_t i = 0; i < old->nmap; i++)
		bounds[nb++] = &old->map[i];
	for (size_t i = 0; i < new->nmap; i++)
		bounds[nb++] = &new->map[i];
	qsort(bounds, nb, sizeof(*bounds), cmp_entry);

	json_t *sec = need(json_object());
	json_t *mo = mapping_json(old), *mn = mapping_json(new);
	set(sec, "file", json_string("v2/cluster_version_mapping.json"));
	set(sec, "mapping_changed", json_boolean(!json_equal(mo, mn)));
	set(sec, "mapping", json_pack("{soso}", "old", mo, "new", mn));
	json_t *ranges = need(json_array());
	struct {
		const struct cond_file *old, *new;
	} *pairs = need(calloc(nb, sizeof(*pairs)));
	size_t npairs = 0, same = 0, changed = 0, added = 0, removed = 0;
	for (size_t i = 0; i < nb;) {
		const struct cond_file *fo = cond_lookup(old, &bounds[i]->ver);
		const struct cond_file *fn = cond_lookup(new, &bounds[i]->ver);
		size_t end = i + 1;
		while (end < nb && (semver_cmp(&bounds[end]->ver, &bounds[i]->ver) == 0 ||
		                    (cond_lookup(old, &bounds[end]->ver) == fo &&
		                     cond_lookup(new, &bounds[end]->ver) == fn)))
			end++;
		json_t *r = need(json_object());
		set(r, "from", json_string(bounds[i]->text));
		set(r, "to", end < nb ? json_string(bounds[end]->text) : json_null());
		set(r, "old_file", fo ? json_string(fo->path) : json_null());
		set(r, "new_file", fn ? json_string(fn->path) : json_null());
		bool same_bytes = fo && fn && same_body(&fo->body, &fn->body);
		const char *status = same_bytes ? "same"
		                     : !fo      ? "added"
		                     : !fn      ? "removed"
		                                : "changed";
		set(r, "status", json_string(status));
		same += same_bytes;
		added += !fo;
		removed += !fn;
		changed += fo && fn && !same_bytes;
		if (!same_bytes) {
			for (size_t p = 0; p < npairs; p++)
				if (pairs[p].old == fo && pairs[p].new == fn) {
					set(r, "same_changes_as", json_integer((json_int_t)p));
					break;
				}
			const json_t *a =
			    fo ? json_array_get(docs[0], (size_t)(fo - old->files)) : NULL;
			const json_t *b =
			    fn ? json_array_get(docs[1], (size_t)(fn - new->files)) : NULL;
			diff_document(r, a, b, "conditional_gathering_rules", true, false);
		}
		/* indexes into ranges, so same_changes_as names a range */
		pairs[npairs].old = same_bytes ? NULL : fo;
		pairs[npairs].new = same_bytes ? NULL : fn;
		npairs++;
		add(ranges, r);
		i = end;
	}
	set(sec, "ranges", ranges);
	set(sec, "range_counts",
	    json_pack("{sIsIsIsI}", "same", (json_int_t)same, "changed", (json_int_t)changed,
	              "added", (json_int_t)added, "removed", (json_int_t)removed));
	*identical = same == npairs;
	set(sec, "identical", json_boolean(*identical));
	free(pairs);
	free(bounds);
	json_decref(docs[0]);
	json_decref(docs[1]);
	return sec;
}

static json_t *diff_v1(const struct cond_set *old, const struct cond_set *new, bool *identical)
{
	json_t *sec = need(json_object());
	json_t *a = parse_body(&old->v1), *b = parse_body(&new->v1);
	*identical = same_body(&old->v1, &new->v1);
	set(sec, "file", json_string("v1/rules.json"));
	set(sec, "identical", json_boolean(*identical));
	diff_document(sec, a, b, "rules", false, *identical);
	json_decref(a);
	json_decref(b);
	return sec;
}

static size_t count(const json_t *counts, const char *key)
{
	return (size_t)json_integer_value(json_object_get(counts, key));
}

static const char *plural(size_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* One line per API, kept in the JSON too so CI can quote it. */
static char *summary_v1(const json_t *v1)
{
	char line[512];
	const json_t *c = json_object_get(v1, "rule_counts");
	size_t total = count(c, "unchanged") + count(c, "changed") + count(c, "added");
	if (json_is_true(json_object_get(v1, "identical"))) {
		snprintf(line, sizeof(line), "v1: identical (%zu %s)", total,
		         plural(total, "rule", "rules"));
		return need(strdup(line));
	}
	int n = snprintf(line, sizeof(line),
	                 "v1: %zu %s added, %zu removed, %zu changed, %zu unchanged",
	                 count(c, "added"), plural(count(c, "added"), "rule", "rules"),
	                 count(c, "removed"), count(c, "changed"), count(c, "unchanged"));
	const json_t *v = json_object_get(v1, "version");
	if (v && n > 0 && (size_t)n < sizeof(line)) {
		char *o = compact(json_object_get(v, "old")),
		     *w = compact(json_object_get(v, "new"));
		n += snprintf(line + n, sizeof(line) - (size_t)n, "; version %s -> %s", o, w);
		free(o);
		free(w);
	}
	if (json_is_true(json_object_get(v1, "order_changed")) && n > 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - (size_t)n, "; rules reordered");
	return need(strdup(line));
}

static char *summary_v2(const json_t *v2)
{
	char line[512];
	const json_t *c = json_object_get(v2, "range_counts");
	size_t n = json_array_size(json_object_get(v2, "ranges"));
	if (json_is_true(json_object_get(v2, "identical")))
		snprintf(line, sizeof(line), "v2: identical (%zu OCP version %s)%s", n,
		         plural(n, "range", "ranges"),
		         json_is_true(json_object_get(v2, "mapping_changed"))
		             ? "; the mapping names other files with the same bytes"
		             : "");
	else
		snprintf(line, sizeof(line),
		         "v2: %zu OCP version %s: %zu changed, %zu the same, %zu newly served, %zu "
		         "no longer served",
		         n, plural(n, "range", "ranges"), count(c, "changed"), count(c, "same"),
		         count(c, "added"), count(c, "removed"));
	return need(strdup(line));
}

static json_t *build_report(const char *const labels[2], const struct cond_set *old,
                            const struct cond_set *new, bool *identical)
{
	bool same_v1, same_v2;
	json_t *report = need(json_object());
	set(report, "old", json_pack("{ssss}", "label", labels[0], "version", old->version));
	set(report, "new", json_pack("{ssss}", "label", labels[1], "version", new->version));
	json_t *v1 = diff_v1(old, new, &same_v1), *v2 = diff_v2(old, new, &same_v2);
	*identical = same_v1 && same_v2;
	set(report, "identical", json_boolean(*identical));
	set(report, "v1", v1);
	set(report, "v2", v2);
	char *s1 = summary_v1(v1), *s2 = summary_v2(v2);
	set(report, "summary", json_pack("{ssss}", "v1", s1, "v2", s2));
	free(s1);
	free(s2);
	return report;
}

/* --- text and Markdown: the same lines, dressed differently --- */

struct style {
	bool md;
	FILE *out;
};

/* Markdown code span; a value holding a backtick gets a double fence. */
static void code(const struct style *st, const char *s)
{
	if (!st->md) {
		fputs(s, st->out);
		return;
	}
	const char *fence = strchr(s, '`') ? "`` " : "`";
	const char *close = strchr(s, '`') ? " ``" : "`";
	fprintf(st->out, "%s%s%s", fence, s, close);
}

static void code_json(const struct style *st, const json_t *v)
{
	char *s = compact(v);
	code(st, s);
	free(s);
}

/* Text indents by two spaces a level; Markdown nests list items, its
 * first level at the margin. */
static void item(const struct style *st, int depth)
{
	for (int i = st->md; i < depth; i++)
		fputs("  ", st->out);
	if (st->md)
		fputs("- ", st->out);
}

static const char *arrow(const struct style *st)
{
	return st->md ? " → " : " -> ";
}

static void sign(const struct style *st, const char *change)
{
	if (st->md)
		fprintf(st->out, "**%s** ", change);
	else
		fputs(strcmp(change, "added") == 0     ? "+ "
		      : strcmp(change, "removed") == 0 ? "- "
		                                       : "~ ",
		      st->out);
}

/* Elements added to or removed from a list, one "+ path: value" line each. */
static void print_elements(const struct style *st, int depth, const char *path, const char *change,
                           const json_t *list)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
	{
		item(st, depth);
		sign(st, change);
		code(st, path);
		fputs(": ", st->out);
		code_json(st, v);
		fputc('\n', st->out);
	}
}

/* One entry of diff_fields, as "~ path: old -> new" lines. */
static void print_field(const struct style *st, int depth, const json_t *e, const char *name_key,
                        const char *parent)
{
	char path[512];
	const char *name = json_string_value(json_object_get(e, name_key));
	const char *what = json_string_value(json_object_get(e, "change"));
	snprintf(path, sizeof(path), "%s%s%s", parent ? parent : "", parent ? "." : "", name);
	const json_t *params = json_object_get(e, "parameters");
	const json_t *added = json_object_get(e, "added"), *removed = json_object_get(e, "removed");
	size_t i;
	json_t *v;
	if (params) {
		json_array_foreach(params, i, v) print_field(st, depth, v, "parameter", path);
		return;
	}
	if (added || removed) {
		print_elements(st, depth, path, "added", added);
		print_elements(st, depth, path, "removed", removed);
		if (json_array_size(added) + json_array_size(removed) > 0)
			return;
		/* same elements, another order or count: fall through to old -> new */
	}
	item(st, depth);
	sign(st, what);
	code(st, path);
	fputs(": ", st->out);
	if (strcmp(what, "changed") == 0) {
		code_json(st, json_object_get(e, "old"));
		fputs(arrow(st), st->out);
		code_json(st, json_object_get(e, "new"));
	} else {
		code_json(st, json_object_get(e, strcmp(what, "added") == 0 ? "new" : "old"));
	}
	fputc('\n', st->out);
}

/* The content of an added or removed item, one line per function or field;
 * a container log request's identity is already in its name. */
static void print_content(const struct style *st, int depth, const json_t *obj, bool rule)
{
	const json_t *fields = rule ? json_object_get(obj, "gathering_functions") : obj;
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)fields, key, v)
	{
		if (!rule && (strcmp(key, "namespace") == 0 || strcmp(key, "pod_name_regex") == 0))
			continue;
		item(st, depth);
		code(st, key);
		fputs(": ", st->out);
		code_json(st, v);
		fputc('\n', st->out);
	}
}

static void print_changes(const struct style *st, int depth, const json_t *changes, bool rule)
{
	size_t i;
	json_t *c;
	json_array_foreach(changes, i, c)
	{
		const char *what = json_string_value(json_object_get(c, "change"));
		item(st, depth);
		sign(st, what);
		fputs(rule ? "rule " : "container log ", st->out);
		code(st, json_string_value(json_object_get(c, "name")));
		fputc('\n', st->out);
		if (strcmp(what, "changed") == 0) {
			size_t j;
			json_t *d;
			json_array_foreach(json_object_get(c, "details"), j, d)
			    print_field(st, depth + 1, d, rule ? "function" : "field", NULL);
		} else {
			print_content(
			    st, depth + 1,
			    json_object_get(c, strcmp(what, "added") == 0 ? "new" : "old"), rule);
		}
	}
}

/* The body of one changed document: version, rules, container logs. */
static void print_document(const struct style *st, int depth, const json_t *sec)
{
	const json_t *v = json_object_get(sec, "version");
	if (v) {
		item(st, depth);
		fputs("version: ", st->out);
		code_json(st, json_object_get(v, "old"));
		fputs(arrow(st), st->out);
		code_json(st, json_object_get(v, "new"));
		fputc('\n', st->out);
	}
	if (json_is_true(json_object_get(sec, "order_changed"))) {
		item(st, depth);
		fputs("the same rules and requests in another order\n", st->out);
	}
	print_changes(st, depth, json_object_get(sec, "rules"), true);
	print_changes(st, depth, json_object_get(sec, "container_logs"), false);
}

static void heading(const struct style *st, const char *api, const char *file)
{
	if (st->md) {
		fprintf(st->out, "\n### %s ", api);
		code(st, file);
		fputs("\n\n", st->out);
	} else {
		fprintf(st->out, "\n%s (%s)\n", api, file);
	}
}

static void range_label(const struct style *st, const json_t *r)
{
	const json_t *to = json_object_get(r, "to");
	fputs("OCP ", st->out);
	fputs(st->md ? "≥ " : ">= ", st->out);
	code(st, json_string_value(json_object_get(r, "from")));
	if (json_is_string(to)) {
		fputs(st->md ? ", < " : ", < ", st->out);
		code(st, json_string_value(to));
	}
}

static void print_file(const struct style *st, const json_t *path)
{
	if (json_is_string(path))
		code(st, json_string_value(path));
	else
		fputs("nothing (HTTP 404)", st->out);
}

static void print_mapping(const struct style *st, const char *label, const json_t *m)
{
	size_t i;
	json_t *e;
	item(st, 1);
	fprintf(st->out, "%s mapping:", label);
	json_array_foreach(m, i, e)
	{
		fputs(i ? ", " : " ", st->out);
		code(st, json_string_value(json_array_get(e, 0)));
		fputc(' ', st->out);
		code(st, json_string_value(json_array_get(e, 1)));
	}
	fputc('\n', st->out);
}

static void print_v2(const struct style *st, const json_t *v2, const json_t *report)
{
	heading(st, "v2", json_string_value(json_object_get(v2, "file")));
	const json_t *mapping = json_object_get(v2, "mapping");
	const json_t *ranges = json_object_get(v2, "ranges");
	if (json_is_true(json_object_get(v2, "mapping_changed"))) {
		print_mapping(
		    st,
		    json_string_value(json_object_get(json_object_get(report, "old"), "version")),
		    json_object_get(mapping, "old"));
		print_mapping(
		    st,
		    json_string_value(json_object_get(json_object_get(report, "new"), "version")),
		    json_object_get(mapping, "new"));
	} else {
		item(st, 1);
		fprintf(st->out, "mapping: unchanged, %zu entries\n",
		        json_array_size(json_object_get(mapping, "old")));
	}
	static const struct {
		const char *status, *text;
	} words[] = {
	    {"same", "the same bytes"},
	    {"changed", "changed"},
	    {"added", "newly served (was HTTP 404)"},
	    {"removed", "no longer served (now HTTP 404)"},
	};
	size_t i;
	json_t *r;
	json_array_foreach(ranges, i, r)
	{
		const char *status = json_string_value(json_object_get(r, "status"));
		const json_t *fo = json_object_get(r, "old_file"),
		             *fn = json_object_get(r, "new_file");
		item(st, 1);
		range_label(st, r);
		fputs(": ", st->out);
		print_file(st, fo);
		if (!json_equal(fo, fn)) {
			fputs(arrow(st), st->out);
			print_file(st, fn);
		}
		for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++)
			if (strcmp(status, words[w].status) == 0)
				fprintf(st->out, ": %s", words[w].text);
		const json_t *as = json_object_get(r, "same_changes_as");
		if (as) {
			fputs(", as ", st->out);
			range_label(st, json_array_get(ranges, (size_t)json_integer_value(as)));
			fputs(" above\n", st->out);
			continue;
		}
		fputc('\n', st->out);
		if (strcmp(status, "same") != 0)
			print_document(st, 2, r);
	}
}

static void print_report(const struct style *st, const json_t *report)
{
	const json_t *old = json_object_get(report, "old"), *new = json_object_get(report, "new");
	const json_t *v1 = json_object_get(report, "v1");
	bool identical = json_is_true(json_object_get(report, "identical"));
	fputs(st->md ? "## Gathering conditions " : "gcs --diff ", st->out);
	fprintf(st->out, "%s ", json_string_value(json_object_get(old, "label")));
	code(st, json_string_value(json_object_get(old, "version")));
	fprintf(st->out, "%s%s ", arrow(st), json_string_value(json_object_get(new, "label")));
	code(st, json_string_value(json_object_get(new, "version")));
	fprintf(st->out, ": %s\n", identical ? "identical" : "differences");

	heading(st, "v1", json_string_value(json_object_get(v1, "file")));
	if (json_is_true(json_object_get(v1, "identical"))) {
		item(st, 1);
		fputs("the same bytes\n", st->out);
	} else {
		print_document(st, 1, v1);
	}
	print_v2(st, json_object_get(report, "v2"), report);

	const json_t *summary = json_object_get(report, "summary");
	if (st->md)
		fputs("\n### Summary\n\n", st->out);
	else
		fputs("\nsummary\n", st->out);
	const char *apis[] = {"v1", "v2"};
	for (size_t i = 0; i < 2; i++) {
		item(st, 1);
		fprintf(st->out, "%s\n", json_string_value(json_object_get(summary, apis[i])));
	}
}

/* --- the command --- */

bool diff_parse_format(const char *text, enum diff_format *out)
{
	static const struct {
		const char *name;
		enum diff_format format;
	} names[] = {{"text", DIFF_TEXT}, {"markdown", DIFF_MARKDOWN}, {"json", DIFF_JSON}};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(text, names[i].name) == 0) {
			*out = names[i].format;
			return true;
		}
	return false;
}

int diff_print(const struct cond_set *old, const struct cond_set *new, const char *const labels[2],
               enum diff_format format, FILE *out)
{
	bool identical;
	json_t *report = build_report(labels, old, new, &identical);
	if (format == DIFF_JSON) {
		char *text = need(json_dumps(report, JSON_INDENT(2)));
		fprintf(out, "%s\n", text);
		free(text);
	} else {
		struct style st = {format == DIFF_MARKDOWN, out};
		print_report(&st, report);
	}
	json_decref(report);
	int rc = fflush(out) == 0 && !ferror(out) ? (identical ? 0 : 1) : 2;
	if (rc == 2)
		fputs("gcs: cannot write the comparison\n", stderr);
	return rc;
}
