/* A parsed document validated against each contract schema (rules/schemas),
 * then the mapping's path rule. Properties: validation is deterministic,
 * every problem names a JSON pointer that resolves into the document and a
 * rule; a path the rule accepts stays inside v2/ once resolved. The
 * mapping's other checks (order, first entry) are static in conditions.c and
 * only reachable through cond_load, which downloads: not fuzzed here. */
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
