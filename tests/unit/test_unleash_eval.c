/* Unit tests for unleash_eval: the vendored Unleash client specification
 * (tests/data/unleash-client-specification), every isEnabled and getVariant
 * test of every file a server-side SDK must pass, run on states prepared by
 * unleash_features_parse as the server prepares them, with the spec's contexts read
 * as JSON; then what the specification does not cover (applicationHostname,
 * context values that are not strings). Not run: the delta API (19, 20),
 * which is about fetching the state, not evaluating it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unleash_features.h"
#include "unleash_eval.h"

#define SPEC_DIR "tests/data/unleash-client-specification/"

/* ---- a JSON object as the Unleash context ---- */

struct json_context {
	const struct unleash_features *f; /* whose numbering of fields each read must match */
	json_t *ctx;
	char texts[16][64]; /* numbers and booleans as text, rotating */
	unsigned next;
};

static const char *text_of(struct json_context *c, json_t *v, size_t *len)
{
	char *buf = c->texts[c->next++ % 16];
	if (!v || json_is_null(v))
		return NULL;
	if (json_is_string(v)) {
		*len = json_string_length(v);
		return json_string_value(v);
	}
	if (json_is_integer(v))
		snprintf(buf, 64, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, 64, "%.17g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, 64, "%s", json_is_true(v) ? "true" : "false");
	else
		snprintf(buf, 64, "[object]");
	*len = strlen(buf);
	return buf;
}

/* Every read names a field by the number the features gave its name: a
 * reader that goes by numbers (unleash_lua) reads the field named. */
static void check_number(const struct json_context *c, unsigned id, const char *name)
{
	assert_true(id < c->f->nfields);
	assert_string_equal(c->f->fields[id], name);
}

static const char *json_field(void *arg, unsigned id, const char *name, size_t *len)
{
	struct json_context *c = arg;
	check_number(c, id, name);
	json_t *v = json_object_get(c->ctx, name);
	if (!v)
		v = json_object_get(json_object_get(c->ctx, "properties"), name);
	return text_of(c, v, len);
}

static const char *json_top(void *arg, unsigned id, const char *name)
{
	struct json_context *c = arg;
	check_number(c, id, name);
	const char *v = json_string_value(json_object_get(c->ctx, name));
	return v && *v ? v : NULL;
}

static bool json_now(void *arg, double *now)
{
	struct json_context *c = arg;
	json_t *v = json_object_get(c->ctx, "currentTime");
	if (!v || json_is_null(v)) {
		*now = (double)time(NULL);
		return true;
	}
	return json_is_string(v) && jsvalue_date(json_string_value(v), now);
}

static struct unleash_context context_of(struct json_context *c, const struct unleash_features *f,
                                         json_t *ctx)
{
	c->f = f;
	c->ctx = ctx;
	c->next = 0;
	return (struct unleash_context){
	    .field = json_field, .top = json_top, .now = json_now, .arg = c};
}

/* ---- the specification ---- */

static int enabled_total, variant_total, files_run;

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The expected payload value as the evaluation keeps it: text. */
static const char *payload_text(json_t *value, char *buf, size_t cap)
{
	if (json_is_string(value))
		return json_string_value(value);
	char *dumped = json_dumps(value, JSON_ENCODE_ANY);
	snprintf(buf, cap, "%s", dumped ? dumped : "");
	free(dumped);
	return buf;
}

static int run_variant_test(const struct unleash_features *f, json_t *test, const char *file)
{
	struct json_context jc;
	struct unleash_context ctx = context_of(&jc, f, json_object_get(test, "context"));
	const struct unleash_feature *t =
	    unleash_features_find(f, json_string_value(json_object_get(test, "toggleName")));
	struct unleash_result v = {.name = "disabled"};
	if (t)
		unleash_eval_variant(t, &ctx, &v);
	json_t *want = json_object_get(test, "expectedResult");
	json_t *payload = json_object_get(want, "payload");
	char buf[256];
	bool ok =
	    same_str(v.name, json_string_value(json_object_get(want, "name"))) &&
	    v.enabled == json_is_true(json_object_get(want, "enabled")) &&
	    v.feature_enabled == json_is_true(json_object_get(want, "feature_enabled")) &&
	    same_str(v.payload_type, json_string_value(json_object_get(payload, "type"))) &&
	    (!payload || same_str(v.payload_value, payload_text(json_object_get(payload, "value"),
	                                                        buf, sizeof(buf))));
	if (!ok)
		print_error("%s: variant test \"%s\": got %s\n", file,
		            json_string_value(json_object_get(test, "description")), v.name);
	return ok ? 0 : 1;
}

static int run_enabled_test(const struct unleash_features *f, json_t *test, const char *file)
{
	struct json_context jc;
	struct unleash_context ctx = context_of(&jc, f, json_object_get(test, "context"));
	const struct unleash_feature *t =
	    unleash_features_find(f, json_string_value(json_object_get(test, "toggleName")));
	bool got = t && unleash_eval_enabled(t, &ctx);
	bool want = json_is_true(json_object_get(test, "expectedResult"));
	if (got != want)
		print_error("%s: \"%s\": got %d\n", file,
		            json_string_value(json_object_get(test, "description")), got);
	return got == want ? 0 : 1;
}

static void run_spec_file(const char *file)
{
	char path[512], err[512];
	snprintf(path, sizeof(path), SPEC_DIR "%s", file);
	json_error_t jerr;
	json_t *spec = json_load_file(path, 0, &jerr);
	if (!spec)
		fail_msg("%s: %s", path, jerr.text);
	char *state = json_dumps(json_object_get(spec, "state"), JSON_COMPACT);
	assert_non_null(state);
	struct unleash_features *f =
	    unleash_features_parse(state, strlen(state), NULL, err, sizeof(err));
	if (!f)
		fail_msg("%s: %s", file, err);
	int failures = 0;
	size_t i;
	json_t *test;
	json_array_foreach(json_object_get(spec, "tests"), i, test)
	{
		failures += run_enabled_test(f, test, file);
		enabled_total++;
	}
	json_array_foreach(json_object_get(spec, "variantTests"), i, test)
	{
		failures += run_variant_test(f, test, file);
		variant_total++;
	}
	files_run++;
	unleash_features_unref(f);
	free(state);
	json_decref(spec);
	assert_int_equal(failures, 0);
}

static void test_specification(void **state)
{
	(void)state;
	json_error_t jerr;
	json_t *index = json_load_file(SPEC_DIR "index.json", 0, &jerr);
	if (!index)
		fail_msg("index.json: %s", jerr.text);
	size_t i;
	json_t *name;
	json_array_foreach(index, i, name)
	{
		const char *file = json_string_value(name);
		if (strncmp(file, "19-", 3) == 0 || strncmp(file, "20-", 3) == 0)
			continue;
		run_spec_file(file);
	}
	json_decref(index);
	print_message("Unleash client specification: %d isEnabled and %d getVariant tests from "
	              "%d files\n",
	              enabled_total, variant_total, files_run);
	assert_int_equal(files_run, 20);
	assert_int_equal(enabled_total, 223);
	assert_int_equal(variant_total, 52);
}

/* ---- beyond the specification ---- */

static struct unleash_features *parse(const char *answer)
{
	char err[512];
	struct unleash_features *f =
	    unleash_features_parse(answer, strlen(answer), NULL, err, sizeof(err));
	if (!f)
		fail_msg("%s", err);
	return f;
}

static bool enabled(const struct unleash_features *f, const char *name, const char *ctx_json)
{
	json_error_t jerr;
	json_t *ctx = json_loads(ctx_json, 0, &jerr);
	assert_non_null(ctx);
	struct json_context jc;
	struct unleash_context c = context_of(&jc, f, ctx);
	bool on = unleash_eval_enabled(unleash_features_find(f, name), &c);
	json_decref(ctx);
	return on;
}

/* As the Node SDK: the HOSTNAME variable, else the system's name, compared
 * case-insensitively with each of hostNames. */
static void test_application_hostname(void **state)
{
	(void)state;
	setenv("HOSTNAME", "Gcs-Pod-7", 1);
	struct unleash_features *f = parse(
	    "{\"features\":["
	    "{\"name\":\"on\",\"enabled\":true,\"strategies\":[{\"name\":\"applicationHostname\","
	    "\"parameters\":{\"hostNames\":\"other, GCS-pod-7 ,more\"}}]},"
	    "{\"name\":\"off\",\"enabled\":true,\"strategies\":[{\"name\":\"applicationHostname\","
	    "\"parameters\":{\"hostNames\":\"gcs-pod-8,gcs-pod\"}}]},"
	    "{\"name\":\"none\",\"enabled\":true,\"strategies\":[{\"name\":\"applicationHostname\","
	    "\"parameters\":{}}]},"
	    "{\"name\":\"spaced\",\"enabled\":true,\"strategies\":[{\"name\":"
	    "\"applicationHostname\","
	    "\"parameters\":{\"hostNames\":\" gcs-pod-7\"}}]}]}");
	assert_string_equal(unleash_eval_hostname(), "gcs-pod-7");
	assert_true(enabled(f, "on", "{}"));
	assert_false(enabled(f, "off", "{}"));
	assert_false(enabled(f, "none", "{}"));
	/* the Node SDK splits on commas and trims only next to them */
	assert_false(enabled(f, "spaced", "{}"));
	unleash_features_unref(f);
}

/* (Each test builds features and asks them: alike in shape to
 * test_unleash_features.c's, one case each.) */
/* A field is read at the top level, then in properties; a null is absent. */
static void test_context_fields(void **state)
{
	(void)state;
	struct unleash_features *f =
	    parse("{\"features\":[{\"name\":\"t\",\"enabled\":true,\"strategies\":[{\"name\":"
	          "\"default\",\"constraints\":[{\"contextName\":\"n\",\"operator\":\"NUM_GTE\","
	          "\"value\":\"5\"},{\"contextName\":\"k\",\"operator\":\"NOT_IN\",\"values\":["
	          "\"x\"]}]}]}]}");
	assert_true(enabled(f, "t", "{\"n\": 5}"));
	assert_true(enabled(f, "t", "{\"properties\": {\"n\": \"6\"}}"));
	assert_false(enabled(f, "t", "{\"n\": 4, \"properties\": {\"n\": \"6\"}}"));
	assert_false(enabled(f, "t", "{\"n\": null, \"properties\": {\"n\": \"6\"}}"));
	assert_false(enabled(f, "t", "{\"n\": 5, \"k\": \"x\"}"));
	assert_false(enabled(f, "t", "{}"));
	unleash_features_unref(f);
}

/* cmocka's list of this suite's tests: every suite's main has this shape */
int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_specification),
	    cmocka_unit_test(test_application_hostname),
	    cmocka_unit_test(test_context_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
