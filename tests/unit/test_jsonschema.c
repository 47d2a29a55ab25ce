/* Tests of the JSON Schema validator: each keyword and its message, the real
 * conditions against the contract schemas, known-bad conditions, and the
 * official JSON-Schema-Test-Suite (one test per suite file). */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsonschema.h"

#define MAX_LINES 64

/* Every problem reported, as "pointer: message". */
struct problems {
	char line[MAX_LINES][1024];
	int n;
};

static void collect(void *ud, const char *pointer, const char *message)
{
	struct problems *p = ud;
	assert_null(strchr(message, '\n'));
	if (p->n < MAX_LINES)
		snprintf(p->line[p->n], sizeof(p->line[0]), "%s: %s", pointer, message);
	p->n++;
}

static const char *root_dir(void)
{
	const char *root = getenv("GCS_ROOT");
	return root && root[0] ? root : ".";
}

static json_t *load_json(const char *relative)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root_dir(), relative);
	json_error_t err;
	/* The suite has strings with U+0000 in them. */
	json_t *j = json_load_file(path, JSON_ALLOW_NUL, &err);
	if (!j)
		fail_msg("%s:%d: %s", path, err.line, err.text);
	return j;
}

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
	if (!j)
		fail_msg("bad test JSON %s: %s", text, err.text);
	return j;
}

static void expect_lines(const struct problems *got, int count, const char *const *expected)
{
	int want = 0;
	while (expected[want])
		want++;
	bool same = got->n == want;
	for (int i = 0; same && i < want; i++)
		same = strcmp(got->line[i], expected[i]) == 0;
	for (int i = 0; !same && i < got->n && i < MAX_LINES; i++)
		print_message("# got: %s\n", got->line[i]);
	assert_int_equal(count, got->n);
	assert_int_equal(got->n, want);
	for (int i = 0; i < want; i++)
		assert_string_equal(got->line[i], expected[i]);
}

/* Validates instance against schema (both JSON text) and checks the exact
 * problems, in order; expected ends with NULL. */
static void expect(const char *schema_text, const char *instance_text, const char *const *expected)
{
	json_t *schema = parse(schema_text);
	json_t *instance = parse(instance_text);
	struct js_registry *reg = js_registry_new();
	assert_non_null(reg);
	struct problems got = {0};
	int n = js_validate_with(reg, schema, instance, collect, &got);
	expect_lines(&got, n, expected);
	js_registry_free(reg);
	json_decref(schema);
	json_decref(instance);
}

/* Adding schema_text must fail with exactly these problems. */
static void expect_refused(const char *schema_text, const char *const *expected)
{
	json_t *schema = parse(schema_text);
	struct js_registry *reg = js_registry_new();
	struct problems got = {0};
	int n = js_registry_add(reg, schema, "test.json", collect, &got);
	expect_lines(&got, n, expected);
	js_registry_free(reg);
	json_decref(schema);
}

#define NONE ((const char *const[]){NULL})

/* ---- keywords ---- */

static void test_type(void **state)
{
	(void)state;
	const char *s =
	    "{\"properties\": {\"i\": {\"type\": \"integer\"}, \"n\": {\"type\": \"number\"},"
	    "\"m\": {\"type\": [\"string\", \"integer\", \"null\"]},"
	    "\"o\": {\"type\": \"object\"}, \"b\": {\"type\": \"boolean\"}}}";
	expect(s, "{\"i\": 1, \"n\": 1.5, \"m\": null, \"o\": {}, \"b\": false}", NONE);
	expect(s, "{\"i\": 1.0, \"n\": 2, \"m\": 7.0}", NONE);
	expect(s, "{\"i\": \"1\", \"n\": \"x\", \"m\": true, \"o\": [], \"b\": 0}",
	       (const char *const[]){
	           "/i: expected integer, got string", "/n: expected number, got string",
	           "/m: expected null, string or integer, got boolean",
	           "/o: expected object, got array", "/b: expected boolean, got integer", NULL});
	expect(s, "{\"i\": 1.5}", (const char *const[]){"/i: expected integer, got number", NULL});
}

static void test_numbers(void **state)
{
	(void)state;
	const char *s = "{\"properties\": {\"t\": {\"minimum\": 1, \"maximum\": 4096},"
	                "\"r\": {\"minimum\": 1.5, \"exclusiveMaximum\": 2.5},"
	                "\"e\": {\"exclusiveMinimum\": 0},"
	                "\"big\": {\"maximum\": 9007199254740992.0}}}";
	expect(s, "{\"t\": 4096, \"r\": 1.5, \"e\": 0.001, \"big\": 9007199254740992}", NONE);
	expect(s, "{\"t\": 5000, \"r\": 1, \"e\": 0}",
	       (const char *const[]){"/t: 5000 is greater than the maximum 4096",
	                             "/r: 1 is less than the minimum 1.5",
	                             "/e: 0 is not greater than the exclusive minimum 0", NULL});
	expect(s, "{\"t\": 0.5, \"r\": 2.5}",
	       (const char *const[]){"/t: 0.5 is less than the minimum 1",
	                             "/r: 2.5 is not less than the exclusive maximum 2.5", NULL});
	/* 2^53 + 1 is not a double: comparing through double would say equal. */
	expect(s, "{\"big\": 9007199254740993}",
	       (const char *const[]){
	           "/big: 9007199254740993 is greater than the maximum 9007199254740992", NULL});
	expect(s, "{\"t\": 4096.0, \"e\": \"not a number\"}", NONE);
}

static void test_strings(void **state)
{
	(void)state;
	const char *s = "{\"properties\": {\"l\": {\"minLength\": 2, \"maxLength\": 5},"
	                "\"p\": {\"pattern\": \"^[a-z]+$\"}, \"u\": {\"pattern\": \"b\"}}}";
	/* "héllo" is 5 code points in 6 bytes; 4 emoji are 4 code points. */
	expect(s, "{\"l\": \"h\\u00e9llo\", \"p\": \"abc\", \"u\": \"abc\"}", NONE);
	expect(s, "{\"l\": \"\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\\ud83d\\ude00\"}", NONE);
	expect(s, "{\"l\": \"abcdef\", \"p\": \"Foo\", \"u\": \"xyz\"}",
	       (const char *const[]){"/l: string has 6 characters, more than the maximum 5",
	                             "/p: \"Foo\" does not match ^[a-z]+$",
	                             "/u: \"xyz\" does not match b", NULL});
	expect(s, "{\"l\": \"\\u00e9\"}",
	       (const char *const[]){"/l: string has 1 character, fewer than the minimum 2", NULL});
	/* ECMA-262: "$" does not match before a final newline. */
	expect(s, "{\"p\": \"abc\\n\"}",
	       (const char *const[]){"/p: \"abc\\n\" does not match ^[a-z]+$", NULL});
	/* ECMA-262 escapes and Unicode property names. */
	expect("{\"pattern\": \"^\\\\u0041\\\\p{Letter}\\\\P{Number}$\"}", "\"A\u00e9x\"", NONE);
	expect("{\"pattern\": \"^\\\\u0041\\\\p{Letter}\\\\P{Number}$\"}", "\"Ax1\"",
	       (const char *const[]){": \"Ax1\" does not match ^\\u0041\\p{Letter}\\P{Number}$",
	                             NULL});
	/* Long values are cut in the message. */
	expect(s, "{\"p\": \"0123456789012345678901234567890123456789XYZ\"}",
	       (const char *const[]){"/p: \"0123456789012345678901234567890123456789\"... does "
	                             "not match ^[a-z]+$",
	                             NULL});
}

static void test_arrays(void **state)
{
	(void)state;
	const char *s = "{\"maxItems\": 8, \"minItems\": 1, \"uniqueItems\": true}";
	expect(s, "[1, 2, 3, [1], {\"a\": 1}, {\"a\": 2}, \"1\", true]", NONE);
	expect(s, "[1, 2, 3, 4, 5, 6, 7, 8, 9]",
	       (const char *const[]){": array has 9 items, more than the maximum 8", NULL});
	expect(s, "[]",
	       (const char *const[]){": array has 0 items, fewer than the minimum 1", NULL});
	/* JSON equality: 1 == 1.0, objects regardless of key order. */
	expect(s, "[1, {\"a\": 1, \"b\": [2]}, 1.0, {\"b\": [2.0], \"a\": 1}]",
	       (const char *const[]){": items 0 and 2 are equal (uniqueItems)",
	                             ": items 1 and 3 are equal (uniqueItems)", NULL});

	const char *tuple = "{\"prefixItems\": [{\"type\": \"string\"}, {\"type\": \"boolean\"}],"
	                    "\"items\": {\"type\": \"integer\"}}";
	expect(tuple, "[\"a\", true, 1, 2]", NONE);
	expect(tuple, "[\"a\"]", NONE);
	expect(tuple, "[1, true, 2, \"x\"]",
	       (const char *const[]){"/0: expected string, got integer",
	                             "/3: expected integer, got string", NULL});
	expect("{\"prefixItems\": [{}], \"items\": false}", "[1, 2]",
	       (const char *const[]){": item 1 is not allowed (at most 1 item)", NULL});
}

static void test_objects(void **state)
{
	(void)state;
	const char *s = "{\"required\": [\"version\", \"rules\"], \"maxProperties\": 3,"
	                "\"minProperties\": 1,"
	                "\"properties\": {\"version\": {\"type\": \"string\"}, \"rules\": {}},"
	                "\"patternProperties\": {\"^x-\": {\"type\": \"integer\"}},"
	                "\"additionalProperties\": false}";
	expect(s, "{\"version\": \"1\", \"rules\": [], \"x-a\": 1}", NONE);
	expect(s, "{\"rules\": [], \"extra\": 1, \"x-b\": \"s\"}",
	       (const char *const[]){": missing required property \"version\"",
	                             ": property \"extra\" is not allowed",
	                             "/x-b: expected integer, got string", NULL});
	expect(s, "{\"version\": \"1\", \"rules\": [], \"x-a\": 1, \"x-b\": 2}",
	       (const char *const[]){": object has 4 properties, more than the maximum 3", NULL});
	expect(s, "{}",
	       (const char *const[]){": object has 0 properties, fewer than the minimum 1",
	                             ": missing required property \"version\"",
	                             ": missing required property \"rules\"", NULL});
	/* additionalProperties as a schema applies only to the unmatched ones. */
	expect("{\"properties\": {\"a\": {}}, \"patternProperties\": {\"^b\": {}},"
	       "\"additionalProperties\": {\"type\": \"boolean\"}}",
	       "{\"a\": 1, \"bc\": 2, \"c\": true, \"d\": 3}",
	       (const char *const[]){"/d: expected boolean, got integer", NULL});
	/* RFC 6901 escaping of the instance pointer. */
	expect("{\"additionalProperties\": {\"type\": \"string\"}}", "{\"a/b~c\": 1}",
	       (const char *const[]){"/a~1b~0c: expected string, got integer", NULL});
}

static void test_const_enum(void **state)
{
	(void)state;
	expect("{\"const\": 1}", "1.0", NONE);
	expect("{\"const\": {\"a\": [1]}}", "{\"a\": [1.0]}", NONE);
	expect("{\"const\": \"alert_is_firing\"}", "\"x\"",
	       (const char *const[]){": \"x\" is not the constant \"alert_is_firing\"", NULL});
	expect("{\"enum\": [\"a\", 2, null]}", "2.0", NONE);
	expect("{\"enum\": [\"a\", 2, null]}", "false",
	       (const char *const[]){": false is not one of [\"a\",2,null]", NULL});
}

static void test_combinators(void **state)
{
	(void)state;
	const char *any = "{\"anyOf\": [{\"type\": \"string\"}, {\"required\": [\"a\", \"b\"]}]}";
	expect(any, "\"s\"", NONE);
	expect(any, "{\"a\": 1, \"b\": 2}", NONE);
	expect(
	    any, "{\"a\": 1}",
	    (const char *const[]){": does not match any of the 2 schemas in anyOf (closest is #0: "
	                          "(root): expected string, got object)",
	                          NULL});
	expect(
	    any, "{}",
	    (const char *const[]){": does not match any of the 2 schemas in anyOf (closest is #0: "
	                          "(root): expected string, got object)",
	                          NULL});
	expect(
	    "{\"anyOf\": [{\"minimum\": 5, \"maximum\": 0}, {\"const\": 3}]}", "2",
	    (const char *const[]){": does not match any of the 2 schemas in anyOf (closest is #1: "
	                          "(root): 2 is not the constant 3)",
	                          NULL});
	expect("{\"allOf\": [{\"minimum\": 5}, {\"maximum\": 0}]}", "2",
	       (const char *const[]){": 2 is less than the minimum 5",
	                             ": 2 is greater than the maximum 0", NULL});
	const char *one = "{\"oneOf\": [{\"type\": \"integer\"}, {\"minimum\": 2}]}";
	expect(one, "1", NONE);
	expect(one, "2.5", NONE);
	expect(
	    one, "3",
	    (const char *const[]){
	        ": matches 2 of the 2 schemas in oneOf (#0 and #1), expected exactly one", NULL});
	expect(one, "1.5",
	       (const char *const[]){": does not match any of the 2 schemas in oneOf", NULL});
	expect("{\"not\": {\"type\": \"string\"}}", "1", NONE);
	expect("{\"not\": {\"type\": \"string\"}}", "\"s\"",
	       (const char *const[]){": must not match the schema in \"not\"", NULL});
	expect("false", "1",
	       (const char *const[]){": no value is allowed here (false schema)", NULL});
	expect("true", "1", NONE);
}

static void test_ref(void **state)
{
	(void)state;
	const char *s =
	    "{\"$defs\": {\"small\": {\"type\": \"array\"}, \"a/b\": {\"type\": \"integer\"}},"
	    "\"properties\": {\"x\": {\"$ref\": \"#/$defs/small\", \"maxItems\": 1},"
	    "\"y\": {\"$ref\": \"#/$defs/a~1b\"}, \"self\": {\"$ref\": \"#\"}}}";
	expect(s, "{\"x\": [1], \"y\": 2, \"self\": {\"self\": {\"x\": []}}}", NONE);
	/* $ref applies alongside its sibling keywords. */
	expect(s, "{\"x\": [1, 2], \"y\": \"s\", \"self\": {\"x\": 1}}",
	       (const char *const[]){"/x: array has 2 items, more than the maximum 1",
	                             "/y: expected integer, got string",
	                             "/self/x: expected array, got integer", NULL});
}

/* A $ref may point into every keyword that holds schemas, and lands on the
 * very schema its pointer names; a pointer into any other value is refused.
 * Each target is a distinct constant, so a message says which was reached. */
static void test_ref_into_keywords(void **state)
{
	(void)state;
	const char *s =
	    "{\"$defs\": {\"h\": {"
	    "\"$defs\": {\"d\": {\"const\": \"$defs\"}},"
	    "\"properties\": {\"a/b\": {\"const\": \"properties\"}},"
	    "\"patternProperties\": {\"^q\": {\"const\": \"patternProperties\"}},"
	    "\"additionalProperties\": {\"const\": \"additionalProperties\"},"
	    "\"items\": {\"const\": \"items\"}, \"not\": {\"const\": \"not\"},"
	    "\"prefixItems\": [{\"const\": \"prefixItems0\"}, {\"const\": \"prefixItems1\"}],"
	    "\"allOf\": [{\"const\": \"allOf0\"}, {\"const\": \"allOf1\"}],"
	    "\"anyOf\": [{\"const\": \"anyOf0\"}, {\"const\": \"anyOf1\"}],"
	    "\"oneOf\": [{\"const\": \"oneOf0\"}, {\"const\": \"oneOf1\"}]}},"
	    "\"prefixItems\": ["
	    "{\"$ref\": \"#/$defs/h/$defs/d\"}, {\"$ref\": \"#/$defs/h/properties/a~1b\"},"
	    "{\"$ref\": \"#/$defs/h/patternProperties/%5Eq\"},"
	    "{\"$ref\": \"#/$defs/h/additionalProperties\"}, {\"$ref\": \"#/$defs/h/items\"},"
	    "{\"$ref\": \"#/$defs/h/not\"}, {\"$ref\": \"#/$defs/h/prefixItems/1\"},"
	    "{\"$ref\": \"#/$defs/h/allOf/1\"}, {\"$ref\": \"#/$defs/h/anyOf/0\"},"
	    "{\"$ref\": \"#/$defs/h/oneOf/1\"}]}";
	expect(s,
	       "[\"$defs\", \"properties\", \"patternProperties\", \"additionalProperties\","
	       "\"items\", \"not\", \"prefixItems1\", \"allOf1\", \"anyOf0\", \"oneOf1\"]",
	       NONE);
	expect(s, "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]",
	       (const char *const[]){
	           "/0: 0 is not the constant \"$defs\"",
	           "/1: 0 is not the constant \"properties\"",
	           "/2: 0 is not the constant \"patternProperties\"",
	           "/3: 0 is not the constant \"additionalProperties\"",
	           "/4: 0 is not the constant \"items\"", "/5: 0 is not the constant \"not\"",
	           "/6: 0 is not the constant \"prefixItems1\"",
	           "/7: 0 is not the constant \"allOf1\"", "/8: 0 is not the constant \"anyOf0\"",
	           "/9: 0 is not the constant \"oneOf1\"", NULL});
	static const char *const bad[] = {
	    "#/$defs/h/minimum",
	    "#/$defs/h/properties",
	    "#/$defs/h/items/0",
	    "#/$defs/h/allOf/01",
	    "#/$defs/h/allOf/2",
	    "#/$defs/h/properties/a",
	    "#/$defs/h/patternProperties/q",
	    "#/$defs/h/nope/0",
	    "#/$defs/h/a~2b",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char schema[1024], line[1024];
		snprintf(schema, sizeof(schema),
		         "{\"$defs\": {\"h\": {\"minimum\": 1, \"items\": {}, "
		         "\"allOf\": [{}, {}], \"properties\": {\"a/b\": {}}, "
		         "\"patternProperties\": {\"^q\": {}}}}, \"$ref\": \"%s\"}",
		         bad[i]);
		snprintf(line, sizeof(line),
		         "/$ref: $ref \"%s\" points to no schema in its resource in test.json",
		         bad[i]);
		expect_refused(schema, (const char *const[]){line, NULL});
	}
}

static void report_nothing(void *ud, const char *pointer, const char *message)
{
	(void)ud;
	(void)pointer;
	(void)message;
}

static void test_ref_between_schemas(void **state)
{
	(void)state;
	struct js_registry *reg = js_registry_new();
	json_t *outer =
	    parse("{\"$id\": \"outer.json\", \"properties\": {\"in\": "
	          "{\"$ref\": \"inner.json#/$defs/n\"}, \"all\": {\"$ref\": \"inner.json\"}}}");
	json_t *inner =
	    parse("{\"$id\": \"inner.json\", \"$defs\": {\"n\": {\"type\": \"number\"}},"
	          "\"type\": \"object\"}");
	struct problems got = {0};
	/* The outer one may come first: references are linked when possible. */
	assert_int_equal(js_registry_add(reg, outer, "outer.json", collect, &got), 0);
	json_t *good = parse("{\"in\": 1, \"all\": {}}");
	json_t *bad = parse("{\"in\": \"1\", \"all\": []}");
	assert_int_equal(js_validate(reg, "outer.json", good, collect, &got), 2);
	assert_string_equal(got.line[0], "/in: $ref \"inner.json#/$defs/n\" does not resolve to a "
	                                 "known schema");
	assert_string_equal(got.line[1], "/all: $ref \"inner.json\" does not resolve to a known "
	                                 "schema");
	got.n = 0;
	assert_int_equal(js_registry_add(reg, inner, "inner.json", collect, &got), 0);
	assert_int_equal(js_validate(reg, "outer.json", good, collect, &got), 0);
	assert_int_equal(js_validate(reg, "outer.json", bad, collect, &got), 2);
	assert_string_equal(got.line[0], "/in: expected number, got string");
	assert_string_equal(got.line[1], "/all: expected object, got array");
	got.n = 0;
	/* An unregistered schema may use registered ones. */
	json_t *adhoc = parse("{\"items\": {\"$ref\": \"outer.json\"}}");
	json_t *list = parse("[{\"in\": 1}, {\"in\": true}]");
	assert_int_equal(js_validate_with(reg, adhoc, list, collect, &got), 1);
	assert_string_equal(got.line[0], "/1/in: expected number, got boolean");
	got.n = 0;
	/* The same $id twice is refused. */
	assert_int_equal(js_registry_add(reg, inner, "again.json", collect, &got), 1);
	assert_string_equal(got.line[0],
	                    ": $id \"inner.json\" is already registered in again.json");
	got.n = 0;
	assert_int_equal(js_validate(reg, "nope.json", good, collect, &got), 1);
	assert_string_equal(got.line[0], ": no schema with $id \"nope.json\" is registered");
	assert_int_equal(js_validate(reg, "inner.json", good, report_nothing, NULL), 0);
	json_decref(adhoc);
	json_decref(list);
	json_decref(good);
	json_decref(bad);
	json_decref(outer);
	json_decref(inner);
	js_registry_free(reg);
}

/* The pointer of a very deep value would not fit a line of struct problems. */
struct last_message {
	char message[256];
	size_t pointer_length;
};

static void keep_last_message(void *ud, const char *pointer, const char *message)
{
	struct last_message *last = ud;
	snprintf(last->message, sizeof(last->message), "%s", message);
	last->pointer_length = strlen(pointer);
}

static void test_ref_relative_uris(void **state)
{
	(void)state;
	struct js_registry *reg = js_registry_new();
	json_t *a = parse("{\"$id\": \"http://example.com/a/b/c.json\", \"properties\": {"
	                  "\"up\": {\"$ref\": \"../d.json\"}, \"abs\": {\"$ref\": \"/e.json\"},"
	                  "\"inner\": {\"$ref\": \"sub/f.json#/$defs/s\"}},"
	                  "\"$defs\": {\"f\": {\"$id\": \"sub/f.json\", \"$defs\": {\"s\": "
	                  "{\"type\": \"string\"}}}}}");
	json_t *d = parse("{\"$id\": \"http://example.com/a/d.json\", \"type\": \"integer\"}");
	json_t *e = parse("{\"$id\": \"http://example.com/e.json\", \"type\": \"boolean\"}");
	struct problems got = {0};
	assert_int_equal(js_registry_add(reg, a, "a", collect, &got), 0);
	assert_int_equal(js_registry_add(reg, d, "d", collect, &got), 0);
	assert_int_equal(js_registry_add(reg, e, "e", collect, &got), 0);
	json_t *bad = parse("{\"up\": \"x\", \"abs\": 1, \"inner\": 2}");
	int n = js_validate(reg, "http://example.com/a/b/c.json", bad, collect, &got);
	expect_lines(&got, n,
	             (const char *const[]){"/up: expected integer, got string",
	                                   "/abs: expected boolean, got integer",
	                                   "/inner: expected string, got integer", NULL});
	/* The embedded resource is addressable on its own. */
	got.n = 0;
	assert_int_equal(js_validate(reg, "http://example.com/a/b/sub/f.json", bad, collect, &got),
	                 0);
	json_decref(bad);
	json_decref(a);
	json_decref(d);
	json_decref(e);
	js_registry_free(reg);
}

static void test_ref_cycles(void **state)
{
	(void)state;
	/* A cycle that never descends into the value is refused when added. */
	expect_refused(
	    "{\"$defs\": {\"a\": {\"$ref\": \"#/$defs/b\"}, \"b\": {\"anyOf\": [{\"$ref\": "
	    "\"#/$defs/a\"}]}}, \"$ref\": \"#/$defs/a\"}",
	    (const char *const[]){"/$defs/a/$ref: $ref \"#/$defs/b\" leads back to this "
	                          "schema without descending into the value (endless "
	                          "cycle) in test.json",
	                          NULL});
	expect_refused(
	    "{\"$ref\": \"#/$defs/none\"}",
	    (const char *const[]){"/$ref: $ref \"#/$defs/none\" points to no schema in its "
	                          "resource in test.json",
	                          NULL});

	/* One that does descend is fine, and bounded on deep values. */
	json_t *schema = parse("{\"items\": {\"$ref\": \"#\"}}");
	json_t *deep = json_array();
	json_t *inner = deep;
	for (int i = 0; i < 6000; i++) {
		json_t *next = json_array();
		json_array_append_new(inner, next);
		inner = next;
	}
	struct js_registry *reg = js_registry_new();
	struct last_message last = {0};
	assert_int_equal(js_validate_with(reg, schema, deep, keep_last_message, &last), 1);
	assert_string_equal(last.message, "schemas nest deeper than 5000 levels here");
	assert_int_equal(last.pointer_length, 2 * 2500);
	struct problems got = {0};
	js_registry_free(reg);
	json_decref(schema);
	json_decref(deep);

	/* A cycle across two documents is refused, and the registry keeps
	 * working with the first. */
	reg = js_registry_new();
	json_t *a = parse("{\"$id\": \"a.json\", \"$ref\": \"b.json\"}");
	json_t *b = parse("{\"$id\": \"b.json\", \"allOf\": [{\"$ref\": \"a.json\"}]}");
	got.n = 0;
	assert_int_equal(js_registry_add(reg, a, "a.json", collect, &got), 0);
	assert_int_equal(js_registry_add(reg, b, "b.json", collect, &got), 1);
	assert_non_null(strstr(got.line[0], "endless cycle"));
	got.n = 0;
	assert_int_equal(js_validate(reg, "a.json", a, collect, &got), 1);
	assert_string_equal(got.line[0], ": $ref \"b.json\" does not resolve to a known schema");
	js_registry_free(reg);
	json_decref(a);
	json_decref(b);
}

static void test_schema_errors(void **state)
{
	(void)state;
	expect_refused(
	    "{\"type\": \"object\", \"descriptions\": \"typo\"}",
	    (const char *const[]){"/descriptions: unsupported keyword \"descriptions\" in "
	                          "test.json",
	                          NULL});
	expect_refused(
	    "{\"$schema\": \"http://json-schema.org/draft-07/schema#\","
	    "\"properties\": {\"a\": {\"pattern\": \"(\", \"maxLength\": -1, \"type\": \"int\"},"
	    "\"b\": {\"items\": [{}], \"if\": {}}}, \"required\": [\"a\", \"a\"]}",
	    (const char *const[]){
	        "/$schema: $schema \"http://json-schema.org/draft-07/schema#\" is not supported, "
	        "only https://json-schema.org/draft/2020-12/schema in test.json",
	        "/properties/a/pattern: pattern ( does not compile: missing closing "
	        "parenthesis at offset 1 in test.json",
	        "/properties/a/maxLength: maxLength must be a non-negative integer in test.json",
	        "/properties/a/type: type \"int\" is not a JSON type in test.json",
	        "/properties/b/items: items must be a schema; since 2020-12 an array of "
	        "schemas is prefixItems in test.json",
	        "/properties/b/if: unsupported keyword \"if\" in test.json",
	        "/required: required must be an array of distinct strings in test.json", NULL});
	expect_refused(
	    "{\"patternProperties\": {\"[\": {\"$id\": \"x#frag\"}}, \"anyOf\": []}",
	    (const char *const[]){"/patternProperties/[: pattern [ does not compile: "
	                          "missing terminating ] for character class at offset 1 "
	                          "in test.json",
	                          "/patternProperties/[/$id: $id \"x#frag\" must not have a "
	                          "fragment in test.json",
	                          "/anyOf: anyOf must be a non-empty array of schemas in "
	                          "test.json",
	                          NULL});
	expect_refused("{\"$ref\": \"#foo\", \"items\": 3}",
	               (const char *const[]){"/$ref: $ref \"#foo\": plain-name fragments ($anchor) "
	                                     "are not supported in test.json",
	                                     "/items: a schema must be an object or a boolean in "
	                                     "test.json",
	                                     NULL});
	assert_true(js_keyword_supported("prefixItems"));
	assert_true(js_keyword_supported("$ref"));
	assert_false(js_keyword_supported("descriptions"));
	assert_false(js_keyword_supported("unevaluatedProperties"));
}

/* ---- the contract schemas and the real conditions ---- */

static struct js_registry *load_contract(void)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/rules/schemas", root_dir());
	struct js_registry *reg = js_registry_new();
	struct problems got = {0};
	int n = js_registry_load_dir(reg, dir, collect, &got);
	expect_lines(&got, n, NONE);
	return reg;
}

static void expect_valid(const struct js_registry *reg, const char *id, const char *file)
{
	json_t *instance = load_json(file);
	struct problems got = {0};
	int n = js_validate(reg, id, instance, collect, &got);
	expect_lines(&got, n, NONE);
	json_decref(instance);
}

static void test_real_conditions(void **state)
{
	(void)state;
	struct js_registry *reg = load_contract();
	static const char *const versions[] = {"1.1.3", "1.2.0"};
	static const char *const v2[][2] = {
	    {"1.1.3", "v2/config_default.json"},
	    {"1.1.3", "v2/config_validation.json"},
	    {"1.2.0", "v2/remote_configurations/config_default.json"},
	    {"1.2.0", "v2/remote_configurations/config_validation.json"},
	};
	char path[512];
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "rules/%s/v1/rules.json", versions[i]);
		expect_valid(reg, "remote_configuration_v1.schema.json", path);
		snprintf(path, sizeof(path), "rules/%s/v2/cluster_version_mapping.json",
		         versions[i]);
		expect_valid(reg, "cluster_version_mapping.schema.json", path);
	}
	for (size_t i = 0; i < sizeof(v2) / sizeof(v2[0]); i++) {
		snprintf(path, sizeof(path), "rules/%s/%s", v2[i][0], v2[i][1]);
		expect_valid(reg, "remote_configuration_v2.schema.json", path);
	}
	js_registry_free(reg);
}

static void expect_invalid(const struct js_registry *reg, const char *id, json_t *instance,
                           const char *const *expected)
{
	struct problems got = {0};
	int n = js_validate(reg, id, instance, collect, &got);
	expect_lines(&got, n, expected);
}

static void test_known_bad_conditions(void **state)
{
	(void)state;
	struct js_registry *reg = load_contract();
	const char *v2 = "remote_configuration_v2.schema.json";
	json_t *conf = load_json("rules/1.2.0/v2/remote_configurations/config_default.json");
	json_t *rules = json_object_get(conf, "conditional_gathering_rules");
	json_t *functions = json_object_get(json_array_get(rules, 3), "gathering_functions");
	assert_non_null(functions);

	json_object_clear(functions);
	json_object_set_new(functions, "logs_of_namespace",
	                    parse("{\"namespace\": \"openshift-etcd\", \"tail_lines\": 5000}"));
	expect_invalid(
	    reg, v2, conf,
	    (const char *const[]){"/conditional_gathering_rules/3/gathering_functions/"
	                          "logs_of_namespace/tail_lines: 5000 is greater than the "
	                          "maximum 4096",
	                          NULL});

	json_object_set_new(functions, "logs_of_namespace",
	                    parse("{\"namespace\": \"default\", \"tail_lines\": 10}"));
	json_object_set_new(functions, "gather_everything", json_object());
	expect_invalid(
	    reg, v2, conf,
	    (const char *const[]){"/conditional_gathering_rules/3/gathering_functions/"
	                          "logs_of_namespace/namespace: \"default\" does not match "
	                          "^openshift-[a-zA-Z0-9_.-]{1,128}$",
	                          "/conditional_gathering_rules/3/gathering_functions: "
	                          "property \"gather_everything\" is not allowed",
	                          NULL});

	/* A condition that fits neither kind; a rule without functions. */
	json_object_clear(functions);
	json_t *conditions = json_object_get(json_array_get(rules, 3), "conditions");
	json_array_set_new(conditions, 0, parse("{\"type\": \"alert_is_firing\", \"alert\": {}}"));
	expect_invalid(reg, v2, conf,
	               (const char *const[]){
	                   "/conditional_gathering_rules/3/conditions/0: does not match any of "
	                   "the 2 schemas in anyOf (closest is #0: /conditional_gathering_rules/3/"
	                   "conditions/0/alert: missing required property \"name\")",
	                   "/conditional_gathering_rules/3/gathering_functions: object has 0 "
	                   "properties, fewer than the minimum 1",
	                   NULL});
	json_decref(conf);

	/* v1: missing version, a container log request in the wrong namespace
	 * (v2), the mapping with a bad version and a triple. */
	conf = load_json("rules/1.2.0/v1/rules.json");
	json_object_del(conf, "version");
	expect_invalid(reg, "remote_configuration_v1.schema.json", conf,
	               (const char *const[]){": missing required property \"version\"", NULL});
	json_decref(conf);

	conf = load_json("rules/1.2.0/v2/remote_configurations/config_validation.json");
	json_object_set_new(json_array_get(json_object_get(conf, "container_logs"), 0), "namespace",
	                    json_string("default"));
	expect_invalid(
	    reg, v2, conf,
	    (const char *const[]){"/container_logs/0/namespace: \"default\" does not "
	                          "match ^openshift-[a-zA-Z0-9_.-]{1,128}$|^kube-[a-zA-Z0-9_.-]"
	                          "{1,128}$",
	                          NULL});
	json_decref(conf);

	conf = load_json("rules/1.2.0/v2/cluster_version_mapping.json");
	json_array_set_new(json_array_get(conf, 1), 0, json_string("4.17"));
	json_array_append_new(json_array_get(conf, 2), json_string("extra"));
	json_array_append(conf, json_array_get(conf, 0));
	expect_invalid(
	    reg, "cluster_version_mapping.schema.json", conf,
	    (const char *const[]){
	        ": items 0 and 5 are equal (uniqueItems)",
	        "/1/0: \"4.17\" does not match ^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]"
	        "\\d*)(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\.(?:0|[1-9]\\d*"
	        "|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+"
	        ")*))?$",
	        "/2: array has 3 items, more than the maximum 2", NULL});
	json_decref(conf);
	js_registry_free(reg);
}

static void test_upstream_typo_refused(void **state)
{
	(void)state;
	json_t *schema = load_json("rules/schemas/cluster_version_mapping.schema.json");
	json_t *items = json_object_get(schema, "items");
	json_object_set(items, "descriptions", json_object_get(items, "description"));
	json_object_del(items, "description");
	struct js_registry *reg = js_registry_new();
	struct problems got = {0};
	int n = js_registry_add(reg, schema, "cluster_version_mapping.schema.json", collect, &got);
	expect_lines(
	    &got, n,
	    (const char *const[]){"/items/descriptions: unsupported keyword \"descriptions\" "
	                          "in cluster_version_mapping.schema.json",
	                          NULL});
	/* Refused means not registered. */
	got.n = 0;
	assert_int_equal(
	    js_validate(reg, "cluster_version_mapping.schema.json", items, collect, &got), 1);
	js_registry_free(reg);
	json_decref(schema);
}

static void test_load_dir_problems(void **state)
{
	(void)state;
	struct js_registry *reg = js_registry_new();
	struct problems got = {0};
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/tests/data/jsonschema/dangling", root_dir());
	int n = js_registry_load_dir(reg, dir, collect, &got);
	char expected[3][1024];
	snprintf(expected[0], sizeof(expected[0]),
	         ": %s/broken.json:2:1: end of file expected near '}'", dir);
	snprintf(expected[1], sizeof(expected[1]),
	         "/properties/a/$ref: $ref \"missing.json\" does not resolve to a known schema in "
	         "%s/dangling.json",
	         dir);
	expected[2][0] = '\0';
	expect_lines(&got, n, (const char *const[]){expected[0], expected[1], NULL});
	js_registry_free(reg);
}

/* Concurrent validations share the registry and must agree. */
struct worker {
	const struct js_registry *reg;
	json_t *instance;
	int bad_results;
};

static void *validate_many(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 200; i++)
		if (js_validate(w->reg, "remote_configuration_v2.schema.json", w->instance,
		                report_nothing, NULL) != 2)
			w->bad_results++;
	return NULL;
}

static void test_concurrent_validation(void **state)
{
	(void)state;
	struct js_registry *reg = load_contract();
	json_t *conf = load_json("rules/1.2.0/v2/remote_configurations/config_validation.json");
	json_t *rule = json_array_get(json_object_get(conf, "conditional_gathering_rules"), 0);
	json_object_set_new(json_object_get(rule, "gathering_functions"), "bogus", json_object());
	json_object_set_new(conf, "version", json_integer(2));
	struct worker w[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.reg = reg, .instance = conf};
		assert_int_equal(pthread_create(&t[i], NULL, validate_many, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].bad_results, 0);
	}
	json_decref(conf);
	js_registry_free(reg);
}

/* ---- the official JSON-Schema-Test-Suite ---- */

#define SUITE_DIR            "tests/data/json-schema-test-suite/draft2020-12"
#define MAX_SKIPPED_KEYWORDS 64

static struct {
	int cases_run, cases_passed, cases_skipped, groups_skipped_remote;
	char *skipped_keywords[MAX_SKIPPED_KEYWORDS];
	int n_skipped_keywords;
} suite;

static void note_skipped_keyword(const char *keyword)
{
	for (int i = 0; i < suite.n_skipped_keywords; i++)
		if (strcmp(suite.skipped_keywords[i], keyword) == 0)
			return;
	if (suite.n_skipped_keywords < MAX_SKIPPED_KEYWORDS)
		suite.skipped_keywords[suite.n_skipped_keywords++] = strdup(keyword);
}

static bool in_list(const char *word, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(word, *list) == 0)
			return true;
	return false;
}

/* Walks a schema the way the specification defines subschemas (independently
 * of the validator), noting keywords it does not implement and references
 * to schemas only a network could provide. */
static void scan_schema(const json_t *schema, bool *unsupported, bool *remote)
{
	static const char *const object_of_schemas[] = {"properties",  "patternProperties", "$defs",
	                                                "definitions", "dependentSchemas",  NULL};
	static const char *const one_schema[] = {"items",
	                                         "additionalProperties",
	                                         "not",
	                                         "contains",
	                                         "propertyNames",
	                                         "if",
	                                         "then",
	                                         "else",
	                                         "unevaluatedItems",
	                                         "unevaluatedProperties",
	                                         "contentSchema",
	                                         NULL};
	static const char *const array_of_schemas[] = {"prefixItems", "allOf", "anyOf", "oneOf",
	                                               NULL};
	if (!json_is_object(schema))
		return;
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)schema, key, value)
	{
		if (!js_keyword_supported(key)) {
			*unsupported = true;
			note_skipped_keyword(key);
		}
		if (strcmp(key, "$ref") == 0 && json_is_string(value)) {
			const char *ref = json_string_value(value);
			if (strncmp(ref, "http://localhost:1234", 21) == 0 ||
			    strncmp(ref, "https://json-schema.org/", 24) == 0)
				*remote = true;
		}
		if (in_list(key, object_of_schemas) && json_is_object(value)) {
			const char *k;
			json_t *sub;
			json_object_foreach(value, k, sub)
			{
				scan_schema(sub, unsupported, remote);
			}
		} else if (in_list(key, one_schema)) {
			scan_schema(value, unsupported, remote);
		} else if (in_list(key, array_of_schemas) && json_is_array(value)) {
			for (size_t i = 0; i < json_array_size(value); i++)
				scan_schema(json_array_get(value, i), unsupported, remote);
		}
	}
}

static void run_suite_file(void **state)
{
	const char *file = *state;
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", SUITE_DIR, file);
	json_t *groups = load_json(path);
	assert_true(json_is_array(groups));
	int failures = 0, run = 0;
	size_t g;
	json_t *group;
	int skipped = 0;
	json_array_foreach(groups, g, group)
	{
		const char *description = json_string_value(json_object_get(group, "description"));
		json_t *schema = json_object_get(group, "schema");
		json_t *tests = json_object_get(group, "tests");
		bool unsupported = false, remote = false;
		scan_schema(schema, &unsupported, &remote);
		if (unsupported || remote) {
			suite.cases_skipped += (int)json_array_size(tests);
			skipped += (int)json_array_size(tests);
			suite.groups_skipped_remote += remote && !unsupported;
			continue;
		}
		struct js_registry *reg = js_registry_new();
		struct problems got = {0};
		if (js_registry_add(reg, schema, file, collect, &got) != 0) {
			print_error("%s: \"%s\": schema refused: %s\n", file, description,
			            got.line[0]);
			failures++;
			js_registry_free(reg);
			continue;
		}
		size_t t;
		json_t *test;
		json_array_foreach(tests, t, test)
		{
			bool valid = json_is_true(json_object_get(test, "valid"));
			got.n = 0;
			int n = js_validate_with(reg, schema, json_object_get(test, "data"),
			                         collect, &got);
			run++;
			suite.cases_run++;
			if ((n == 0) == valid) {
				suite.cases_passed++;
				continue;
			}
			failures++;
			print_error(
			    "%s: \"%s\" / \"%s\": expected %s, got %d problems%s%s\n", file,
			    description, json_string_value(json_object_get(test, "description")),
			    valid ? "valid" : "invalid", n, n ? ": " : "", n ? got.line[0] : "");
		}
		js_registry_free(reg);
	}
	json_decref(groups);
	print_message("# %s: %d cases run, %d failed\n", file, run, failures);
	/* A vendored file is there to be run: one whose every case is skipped
	 * claims coverage the validator does not have. */
	if (run == 0)
		print_error("%s: all %d cases skipped (unimplemented keywords or remote refs)\n",
		            file, skipped);
	assert_int_equal(failures, 0);
	assert_int_not_equal(run, 0);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int print_suite_summary(void **state)
{
	(void)state;
	char keywords[1024] = "";
	qsort(suite.skipped_keywords, (size_t)suite.n_skipped_keywords, sizeof(char *),
	      compare_strings);
	for (int i = 0; i < suite.n_skipped_keywords; i++) {
		size_t used = strlen(keywords);
		snprintf(keywords + used, sizeof(keywords) - used, "%s%s", i ? ", " : "",
		         suite.skipped_keywords[i]);
		free(suite.skipped_keywords[i]);
	}
	printf("# json-schema-test-suite: %d cases run, %d passed, %d skipped (unimplemented "
	       "keywords: %s; groups with remote refs: %d)\n",
	       suite.cases_run, suite.cases_passed, suite.cases_skipped, keywords,
	       suite.groups_skipped_remote);
	return 0;
}

int main(void)
{
	static const struct CMUnitTest unit[] = {
	    cmocka_unit_test(test_type),
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_arrays),
	    cmocka_unit_test(test_objects),
	    cmocka_unit_test(test_const_enum),
	    cmocka_unit_test(test_combinators),
	    cmocka_unit_test(test_ref),
	    cmocka_unit_test(test_ref_into_keywords),
	    cmocka_unit_test(test_ref_between_schemas),
	    cmocka_unit_test(test_ref_relative_uris),
	    cmocka_unit_test(test_ref_cycles),
	    cmocka_unit_test(test_schema_errors),
	    cmocka_unit_test(test_real_conditions),
	    cmocka_unit_test(test_known_bad_conditions),
	    cmocka_unit_test(test_upstream_typo_refused),
	    cmocka_unit_test(test_load_dir_problems),
	    cmocka_unit_test(test_concurrent_validation),
	};
	size_t n_unit = sizeof(unit) / sizeof(unit[0]);

	/* One test per suite file, so that a failure names the file. */
	char dir[512];
	snprintf(dir, sizeof(dir), "%s/%s", root_dir(), SUITE_DIR);
	char **files = NULL;
	size_t n_files = 0;
	DIR *dh = opendir(dir);
	struct dirent *e;
	while (dh && (e = readdir(dh))) {
		size_t len = strlen(e->d_name);
		if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
			char **grown = realloc(files, (n_files + 1) * sizeof(*files));
			if (!grown)
				return 1;
			files = grown;
			files[n_files++] = strdup(e->d_name);
		}
	}
	if (dh)
		closedir(dh);
	if (n_files > 0)
		qsort(files, n_files, sizeof(*files), compare_strings);

	/* Without the suite the run must fail, not pass quietly. */
	size_t n_tests = n_unit + (n_files ? n_files : 1);
	struct CMUnitTest *tests = calloc(n_tests, sizeof(*tests));
	char(*names)[600] = calloc(n_files + 1, sizeof(*names));
	if (!tests || !names)
		return 1;
	memcpy(tests, unit, sizeof(unit));
	for (size_t i = 0; i < n_files; i++) {
		snprintf(names[i], sizeof(names[i]), "suite %s", files[i]);
		tests[n_unit + i] = (struct CMUnitTest){
		    .name = names[i], .test_func = run_suite_file, .initial_state = files[i]};
	}
	if (n_files == 0) {
		snprintf(names[0], sizeof(names[0]), "suite missing: %s", dir);
		tests[n_unit] = (struct CMUnitTest){
		    .name = names[0], .test_func = run_suite_file, .initial_state = "(no file)"};
	}
	int failed =
	    _cmocka_run_group_tests("jsonschema", tests, n_tests, NULL, print_suite_summary);
	for (size_t i = 0; i < n_files; i++)
		free(files[i]);
	free(files);
	free(names);
	free(tests);
	return failed;
}
