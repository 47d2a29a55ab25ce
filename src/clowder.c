#include "clowder.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "file.h"
#include "jsonschema.h"
#include "jsontext.h"

/* Clowder's schema of the file, exactly as Clowder publishes it (see
 * tests/data/clowder/README.md for the commit it came from). */
__asm__(".section .rodata\n"
        ".global gcs_clowder_schema\n"
        "gcs_clowder_schema:\n"
        ".incbin \"src/clowder.schema.json\"\n"
        "gcs_clowder_schema_end:\n"
        ".balign 8\n"
        ".global gcs_clowder_schema_len\n"
        "gcs_clowder_schema_len:\n"
        ".quad gcs_clowder_schema_end - gcs_clowder_schema\n"
        ".previous\n");
extern const char gcs_clowder_schema[];
extern const uint64_t gcs_clowder_schema_len;

#define MAX_FILE_BYTES (1024 * 1024)
#define SCHEMA_ID      "https://cloud.redhat.com/schemas/clowder-appconfig"

/* Clowder's schema is draft-07; the validator speaks 2020-12. The keywords
 * it uses mean the same in both but for three spellings: "definitions" is
 * "$defs" (and so are the $refs into it), "$schema" names the draft, and
 * the draft-04 "id" members it still carries are no keyword of draft-07
 * either, so they are dropped. Any other keyword goes through as it is, and
 * the validator refuses one it does not know: a new Clowder schema cannot
 * be half understood. */
static json_t *from_draft7(const json_t *schema);

static json_t *schema_map(const json_t *map)
{
	json_t *out = json_object();
	const char *name;
	json_t *sub;
	json_object_foreach((json_t *)map, name, sub)
	{
		if (json_object_set_new(out, name, from_draft7(sub)) < 0)
			break;
	}
	return out;
}

static json_t *from_draft7(const json_t *schema)
{
	if (!json_is_object(schema))
		return json_deep_copy(schema);
	json_t *out = json_object();
	const char *kw;
	json_t *v;
	json_object_foreach((json_t *)schema, kw, v)
	{
		const char *ref = json_string_value(v);
		if (strcmp(kw, "id") == 0)
			continue;
		if (strcmp(kw, "$schema") == 0)
			json_object_set_new(
			    out, kw, json_string("https://json-schema.org/draft/2020-12/schema"));
		else if (strcmp(kw, "definitions") == 0)
			json_object_set_new(out, "$defs", schema_map(v));
		else if (strcmp(kw, "properties") == 0 || strcmp(kw, "patternProperties") == 0)
			json_object_set_new(out, kw, schema_map(v));
		else if (strcmp(kw, "items") == 0)
			json_object_set_new(out, kw, from_draft7(v));
		else if (strcmp(kw, "$ref") == 0 && ref && strncmp(ref, "#/definitions/", 14) == 0)
			json_object_set_new(out, kw, json_sprintf("#/$defs/%s", ref + 14));
		else
			json_object_set(out, kw, v);
	}
	return out;
}

struct problems {
	char first[512];
	int count;
};

static void note_problem(void *ud, const char *pointer, const char *message)
{
	struct problems *p = ud;
	if (p->count++ == 0)
		snprintf(p->first, sizeof(p->first), "%s%s%s", pointer && *pointer ? pointer : "",
		         pointer && *pointer ? ": " : "", message);
}

/* Validates doc against Clowder's schema; 0, or -1 with the first problem
 * in err. */
static int check_schema(const char *path, const json_t *doc, char *err, size_t errlen)
{
	char jerr[256];
	struct problems p = {.count = 0};
	json_t *draft7 =
	    jsontext_parse(gcs_clowder_schema, (size_t)gcs_clowder_schema_len, jerr, sizeof(jerr));
	json_t *schema = draft7 ? from_draft7(draft7) : NULL;
	json_decref(draft7);
	struct js_registry *reg = js_registry_new();
	int rc = -1;
	if (!schema || !reg) {
		snprintf(err, errlen, "%s: cannot load Clowder's schema", path);
	} else if (js_registry_add(reg, schema, "clowder.schema.json", note_problem, &p) > 0) {
		/* only a build with a broken embedded schema gets here */
		snprintf(err, errlen, "clowder.schema.json: %s", p.first);
	} else if (js_validate(reg, SCHEMA_ID, doc, note_problem, &p) > 0) {
		if (p.count > 1)
			snprintf(err, errlen, "%s: %s (and %d more problem%s)", path, p.first,
			         p.count - 1, p.count == 2 ? "" : "s");
		else
			snprintf(err, errlen, "%s: %s", path, p.first);
	} else {
		rc = 0;
	}
	js_registry_free(reg);
	json_decref(schema);
	return rc;
}

/* A port member (the schema has made it an integer, when present). */
static int port_of(const char *path, const json_t *obj, const char *key, const char *pointer,
                   unsigned *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);
	if (!v)
		return 0;
	json_int_t n = json_integer_value(v);
	if (n < 1 || n > 65535) {
		snprintf(err, errlen, "%s: %s: %lld is not a port (1 to 65535)", path, pointer,
		         (long long)n);
		return -1;
	}
	*out = (unsigned)n;
	return 0;
}

/* Copies a string member; -1 with err when it does not fit or holds a byte
 * it may not (bad lists the forbidden ones). */
static int text_of(const char *path, const json_t *obj, const char *key, const char *pointer,
                   char *out, size_t size, const char *bad, char *err, size_t errlen)
{
	const char *s = json_string_value(json_object_get(obj, key));
	if (!s)
		return 0;
	size_t n = json_string_length(json_object_get(obj, key));
	if (n == 0 || n >= size || strlen(s) != n || s[strcspn(s, bad)]) {
		snprintf(err, errlen, "%s: %s: %s", path, pointer,
		         n == 0 ? "must not be empty"
		         : n >= size
		             ? "too long"
		             : "holds a control character, a space or a byte not allowed there");
		return -1;
	}
	memcpy(out, s, n + 1);
	return 0;
}

#define CONTROL                                                                                    \
	"\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16" \
	"\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f"

static int read_feature_flags(const char *path, const json_t *ff, struct clowder *c, char *err,
                              size_t errlen)
{
	char host[256] = "";
	unsigned port = 0;
	if (text_of(path, ff, "hostname", "/featureFlags/hostname", host, sizeof(host),
	            CONTROL " /?#@[]", err, errlen) < 0 ||
	    port_of(path, ff, "port", "/featureFlags/port", &port, err, errlen) < 0 ||
	    text_of(path, ff, "clientAccessToken", "/featureFlags/clientAccessToken",
	            c->unleash_token, sizeof(c->unleash_token), CONTROL, err, errlen) < 0)
		return -1;
	c->feature_flags = true;
	c->has_token = c->unleash_token[0] != '\0';
	const char *scheme = json_string_value(json_object_get(ff, "scheme"));
	/* an IPv6 address is written in brackets in a URL */
	const char *open = strchr(host, ':') ? "[" : "", *close = *open ? "]" : "";
	snprintf(c->unleash_url, sizeof(c->unleash_url), "%s://%s%s%s:%u/api", scheme, open, host,
	         close, port);
	return 0;
}

static int read_fields(const char *path, const json_t *doc, struct clowder *c, char *err,
                       size_t errlen)
{
	const json_t *logging = json_object_get(doc, "logging");
	const json_t *ff = json_object_get(doc, "featureFlags");
	if (port_of(path, doc, "webPort", "/webPort", &c->public_port, err, errlen) < 0 ||
	    port_of(path, doc, "publicPort", "/publicPort", &c->public_port, err, errlen) < 0 ||
	    port_of(path, doc, "metricsPort", "/metricsPort", &c->metrics_port, err, errlen) < 0 ||
	    text_of(path, doc, "metricsPath", "/metricsPath", c->metrics_path,
	            sizeof(c->metrics_path), CONTROL " ?#", err, errlen) < 0)
		return -1;
	if (c->metrics_path[0] != '/') {
		snprintf(err, errlen, "%s: /metricsPath: \"%s\" does not start with /", path,
		         c->metrics_path);
		return -1;
	}
	if (c->public_port && c->public_port == c->metrics_port) {
		snprintf(
		    err, errlen,
		    "%s: /metricsPort: %u is also the public port: metrics must have a port of "
		    "their own",
		    path, c->metrics_port);
		return -1;
	}
	/* for the log line that says where logs go; never refused */
	const char *type = json_string_value(json_object_get(logging, "type"));
	snprintf(c->logging_type, sizeof(c->logging_type), "%s", type ? type : "");
	c->cloudwatch = json_object_get(logging, "cloudwatch") != NULL;
	return ff ? read_feature_flags(path, ff, c, err, errlen) : 0;
}

int clowder_read(const char *path, struct clowder *out, char *err, size_t errlen)
{
	char jerr[256];
	size_t len = 0;
	memset(out, 0, sizeof(*out));
	char *text, why[128];
	enum file_result r = file_read(path, MAX_FILE_BYTES, &text, &len, NULL, why, sizeof(why));
	if (r != FILE_READ) {
		snprintf(err, errlen, "%s: cannot read: %s", path,
		         r == FILE_ABSENT ? strerror(ENOENT) : why);
		return -1;
	}
	json_t *doc = jsontext_parse(text, len, jerr, sizeof(jerr));
	free(text);
	int rc = -1;
	if (!doc)
		snprintf(err, errlen, "%s: invalid JSON: %s", path, jerr);
	else if (check_schema(path, doc, err, errlen) == 0)
		rc = read_fields(path, doc, out, err, errlen);
	json_decref(doc);
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}
