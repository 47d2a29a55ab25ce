/* A parsed document validated against each contract schema (rules/schemas),
 * then the mapping's checks. Properties: validation is deterministic, every
 * problem names a JSON pointer that resolves into the document and a rule;
 * a path the rule accepts stays inside v2/ once resolved; a document the
 * mapping schema accepts passes cond_check_mapping exactly when its versions
 * are strictly increasing, the first is not above COND_FIRST_ENTRY_MAX and
 * its paths pass the rule (judged here apart), and each problem points at
 * an entry of the document. */
#include <dirent.h>

#include "conditions.h"
#include "fuzz.h"
#include "jsontext.h"
#include "jsonschema.h"

static struct js_registry *schemas;
static char *ids[32];
static size_t nids;

static void load_failed(void *ud, const char *pointer, const char *message)
{
	fprintf(stderr, "%s: %s: %s\n", (const char *)ud, pointer, message);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	const char *dir = getenv("GCS_SCHEMA_DIR") ? getenv("GCS_SCHEMA_DIR") : "rules/schemas";
	schemas = js_registry_new();
	if (js_registry_load_dir(schemas, dir, load_failed, (void *)dir) != 0)
		abort();
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)) && nids < 32) {
		size_t n = strlen(e->d_name);
		if (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0)
			ids[nids++] = strdup(e->d_name); /* each schema's $id is its file name */
	}
	if (d)
		closedir(d);
	if (nids == 0) {
		fprintf(stderr, "%s: no schemas (run from the repository root)\n", dir);
		abort();
	}
	return 0;
}

/* RFC 6901 resolution, written apart from the validator's own pointers. */
static const json_t *resolve(const json_t *doc, const char *ptr)
{
	if (!*ptr)
		return doc;
	if (*ptr != '/')
		return NULL;
	char token[1024];
	while (*ptr == '/' && doc) {
		ptr++;
		size_t n = 0;
		while (*ptr && *ptr != '/' && n < sizeof(token) - 1) {
			if (ptr[0] == '~' && (ptr[1] == '0' || ptr[1] == '1')) {
				token[n++] = ptr[1] == '0' ? '~' : '/';
				ptr += 2;
			} else {
				token[n++] = *ptr++;
			}
		}
		token[n] = '\0';
		if (json_is_object(doc)) {
			doc = json_object_get(doc, token);
		} else if (json_is_array(doc)) {
			char *end;
			unsigned long i = strtoul(token, &end, 10);
			doc = (*token && !*end) ? json_array_get(doc, i) : NULL;
		} else {
			doc = NULL;
		}
	}
	return *ptr ? NULL : doc;
}

struct seen {
	const json_t *doc;
	const char *schema;
};

static void problem(void *ud, const char *pointer, const char *message)
{
	struct seen *s = ud;
	FUZZ_CHECK(pointer && resolve(s->doc, pointer), "%s: pointer \"%s\" is not in the document",
	           s->schema, pointer ? pointer : "(null)");
	FUZZ_CHECK(message && *message, "%s: %s: a problem without a rule", s->schema, pointer);
}

static void count_only(void *ud, const char *pointer, const char *message)
{
	(void)ud, (void)pointer, (void)message;
}

/* A path accepted by the rule, resolved lexically under v2/, must neither
 * leave v2/ nor change: no "..", ".", empty or absolute segment survives. */
static void check_path(const char *path)
{
	if (cond_path_problem(path))
		return;
	FUZZ_CHECK(path[0] != '/', "absolute path accepted: %s", path);
	const char *seg = path;
	for (;;) {
		size_t n = strcspn(seg, "/");
		FUZZ_CHECK(n > 0, "empty segment accepted: %s", path);
		FUZZ_CHECK(!(n == 2 && seg[0] == '.' && seg[1] == '.'), "'..' accepted: %s", path);
		FUZZ_CHECK(!(n == 1 && seg[0] == '.'), "'.' accepted: %s", path);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK(seg[i] > ' ' && seg[i] < 0x7f && seg[i] != '\\' && seg[i] != '%',
			           "byte 0x%02x accepted in %s", (unsigned char)seg[i], path);
		if (!seg[n])
			break;
		seg += n + 1;
	}
}

/* The mapping's rules, judged apart from cond_check_mapping. */
static bool mapping_acceptable(const json_t *doc)
{
	struct semver first_max, prev, v;
	semver_parse(COND_FIRST_ENTRY_MAX, strlen(COND_FIRST_ENTRY_MAX), &first_max);
	size_t n = json_array_size(doc);
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *ver = json_string_value(json_array_get(json_array_get(doc, i), 0));
		const char *path = json_string_value(json_array_get(json_array_get(doc, i), 1));
		if (!ver || !path || !semver_parse(ver, strlen(ver), &v) || cond_path_problem(path))
			return false;
		if (i == 0 ? semver_cmp(&v, &first_max) > 0 : semver_cmp(&v, &prev) <= 0)
			return false;
		prev = v;
	}
	return true;
}

/* A document the mapping schema accepts, through cond_check_mapping. */
static void check_mapping(const json_t *doc)
{
	if (js_validate(schemas, "cluster_version_mapping.schema.json", doc, count_only, NULL) != 0)
		return;
	struct cond_set set = {0};
	struct diag problems = {0};
	bool ok = cond_check_mapping(&set, doc, &problems);
	FUZZ_CHECK(ok == (problems.count == 0), "mapping: accepted with %zu problems",
	           problems.count);
	FUZZ_CHECK(ok == mapping_acceptable(doc), "mapping: cond_check_mapping %s what the rules %s",
	           ok ? "accepts" : "refuses", ok ? "refuse" : "accept");
	static const char prefix[] = "v2/cluster_version_mapping.json: ";
	for (size_t i = 0; i < problems.n; i++) {
		const char *line = problems.lines[i];
		FUZZ_CHECK(strncmp(line, prefix, strlen(prefix)) == 0, "mapping: \"%s\" names no file",
		           line);
		const char *at = line + strlen(prefix);
		if (*at == '/') {
			char *end;
			unsigned long entry = strtoul(at + 1, &end, 10);
			FUZZ_CHECK(entry < json_array_size(doc) &&
			               (strncmp(end, "/0:", 3) == 0 || strncmp(end, "/1:", 3) == 0),
			           "mapping: \"%s\" points at no entry", line);
		}
	}
	FUZZ_CHECK(!ok || set.nmap == json_array_size(doc), "mapping: %zu of %zu entries kept",
	           set.nmap, json_array_size(doc));
	for (size_t i = 0; i < set.nmap; i++)
		free(set.map[i].text);
	free(set.map);
	diag_free(&problems);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *doc = jsontext_parse((const char *)data, size, err, sizeof(err));
	if (!doc)
		return 0;
	for (size_t i = 0; i < nids; i++) {
		struct seen s = {doc, ids[i]};
		int n = js_validate(schemas, ids[i], doc, problem, &s);
		FUZZ_CHECK(n >= 0, "%s: negative problem count", ids[i]);
		FUZZ_CHECK(js_validate(schemas, ids[i], doc, count_only, NULL) == n,
		           "%s: two validations of one document disagree", ids[i]);
	}
	/* The mapping: [[version, path], ...]; any string pair is a candidate. */
	if (json_is_array(doc)) {
		check_mapping(doc);
		size_t i;
		json_t *entry;
		json_array_foreach(doc, i, entry)
		{
			json_t *path = json_array_get(entry, 1);
			if (json_is_string(path) &&
			    strlen(json_string_value(path)) == json_string_length(path))
				check_path(json_string_value(path));
		}
	} else if (json_is_string(doc)) {
		check_path(json_string_value(doc));
	}
	json_decref(doc);
	return 0;
}
