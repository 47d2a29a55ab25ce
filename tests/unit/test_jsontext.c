/* Strict JSON decoding and Go-compatible encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsontext.h"

static void expect_refused(const char *text, size_t len, const char *why)
{
	char err[256] = "";
	json_t *v = jsontext_parse(text, len, err, sizeof(err));
	if (v) {
		json_decref(v);
		fail_msg("accepted: %.60s", text);
	}
	if (!strstr(err, why))
		fail_msg("error \"%s\" does not say \"%s\"", err, why);
}

static void test_strict_refusals(void **state)
{
	(void)state;
	expect_refused("{\"a\":1,\"a\":2}", 13, "duplicate object key");
	expect_refused("{\"a\":1} x", 9, "end of file expected");
	expect_refused("{\"a\":1}{}", 9, "end of file expected");
	expect_refused("{\"a\":\"x\0y\"}", 11, "NUL byte at offset 7");
	expect_refused("{\"a\":\"\\u0000\"}", 14, "\\u0000 is not allowed");
	expect_refused("{\"a\":1,}", 8, "line 1");
	expect_refused("[1,2", 4, "line 1");
	expect_refused("{'a':1}", 7, "line 1");
	expect_refused("\xEF\xBB\xBF{}", 5, "byte order mark");
	expect_refused("{\"a\":\"\xC3\x28\"}", 10, "line 1");
	expect_refused("[NaN]", 5, "line 1");
	expect_refused("", 0, "line");
	expect_refused("{\"a\":01}", 8, "line 1");
	/* Go would read it as a float64 and lose digits; refusing is safer */
	expect_refused("[123456789012345678901234]", 26, "too big integer");
}

static void test_deep_nesting_refused(void **state)
{
	(void)state;
	size_t depth = 100000;
	char *text = malloc(2 * depth);
	assert_non_null(text);
	memset(text, '[', depth);
	memset(text + depth, ']', depth);
	expect_refused(text, 2 * depth, "depth");
	free(text);
}

static void test_error_names_line_and_column(void **state)
{
	(void)state;
	char err[256];
	const char *text = "{\n  \"a\": 1,\n  \"a\": 2\n}";
	assert_null(jsontext_parse(text, strlen(text), err, sizeof(err)));
	assert_non_null(strstr(err, "line 3"));
}

static char *encode(const char *text)
{
	char err[256];
	json_t *v = jsontext_parse(text, strlen(text), err, sizeof(err));
	if (!v)
		fail_msg("parse %s: %s", text, err);
	struct buf b = {0};
	jsontext_encode(&b, v);
	json_decref(v);
	assert_false(b.oom);
	return b.data;
}

static void expect_encoding(const char *in, const char *out)
{
	char *got = encode(in);
	if (strcmp(got, out) != 0)
		fail_msg("encode %s: got %s, want %s", in, got, out);
	free(got);
}

/* Expected values are what Go's json.Marshal gives for the value decoded
 * into an interface{}. */
static void test_go_encoding(void **state)
{
	(void)state;
	expect_encoding("{\"b\": 1, \"a\": [true, false, null]}",
	                "{\"a\":[true,false,null],\"b\":1}");
	expect_encoding("{\"B\":1,\"a\":2,\"_\":3,\"\xC3\xA9\":4}",
	                "{\"B\":1,\"_\":3,\"a\":2,\"\xC3\xA9\":4}");
	expect_encoding("\"<a href='x'>&</a>\"",
	                "\"\\u003ca href='x'\\u003e\\u0026\\u003c/a\\u003e\"");
	expect_encoding("\"\\u2028\\u2029\"", "\"\\u2028\\u2029\"");
	expect_encoding("\"\\b\\f\\n\\r\\t\\u0001\\u001f\\\"\\\\/\"",
	                "\"\\b\\f\\n\\r\\t\\u0001\\u001f\\\"\\\\/\"");
	expect_encoding("\"\xE2\x82\xAC \\u00e9\"", "\"\xE2\x82\xAC \xC3\xA9\"");
	expect_encoding("\"\x7f\"", "\"\x7f\"");
	expect_encoding("[1.0, 1.5, -0.25, 100, 1e2, 1E+2]", "[1,1.5,-0.25,100,100,100]");
	expect_encoding("[1e21, 1e20, 1.2345678901234568e23]",
	                "[1e+21,100000000000000000000,1.2345678901234569e+23]");
	expect_encoding("[0.000001, 0.0000001, 1.5e-7, 1e-100]", "[0.000001,1e-7,1.5e-7,1e-100]");
	expect_encoding("[0.1, 0.2, 0.30000000000000004, 3.14159]",
	                "[0.1,0.2,0.30000000000000004,3.14159]");
	expect_encoding("[9007199254740993, -9007199254740993, 9007199254740992]",
	                "[9007199254740992,-9007199254740992,9007199254740992]");
	expect_encoding("[-0.0, 0]", "[-0,0]");
	expect_encoding("{}", "{}");
	expect_encoding("[]", "[]");
}

static void test_pointer(void **state)
{
	(void)state;
	struct buf p = {0};
	buf_pointer_token(&p, "a/b");
	buf_pointer_token(&p, "m~n");
	buf_pointer_token(&p, "3");
	assert_string_equal(buf_str(&p), "/a~1b/m~0n/3");
	buf_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_strict_refusals),
	    cmocka_unit_test(test_deep_nesting_refused),
	    cmocka_unit_test(test_error_names_line_and_column),
	    cmocka_unit_test(test_go_encoding),
	    cmocka_unit_test(test_pointer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
