/* Unit tests for jsvalue: texts read as the JavaScript SDKs read them. The
 * dates and CIDR ranges are also covered where unleash_features prepares
 * them (test_unleash_features). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "jsvalue.h"

/* JavaScript's Number(text), which the Node SDK applies to NUM_* values. */
/* Tables of texts and what they read as: alike in shape to
 * test_unleash_features.c's, as data tables are. */
static void test_js_number(void **state)
{
	(void)state;
	struct {
		const char *text;
		bool ok;
		double value;
	} cases[] = {
	    {"42", true, 42},
	    {" 12 ", true, 12},
	    {"", true, 0},
	    {" \t", true, 0},
	    {"-1.5", true, -1.5},
	    {"+7", true, 7},
	    {".5", true, 0.5},
	    {"5.", true, 5},
	    {"1e3", true, 1000},
	    {"1E-2", true, 0.01},
	    {"0x1F", true, 31},
	    {"0o17", true, 15},
	    {"0b101", true, 5},
	    {"Infinity", true, INFINITY},
	    {"-Infinity", true, -INFINITY},
	    {"abc", false, 0},
	    {".", false, 0},
	    {"1e", false, 0},
	    {"0x", false, 0},
	    {"-0x10", false, 0},
	    {"0x1G", false, 0},
	    {"1_000", false, 0},
	    {"infinity", false, 0},
	    {"1 2", false, 0},
	    {"--1", false, 0},
	    {"NaN", false, 0},
	    {"0b2", false, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double v = -12345;
		bool ok = jsvalue_number(cases[i].text, &v);
		if (ok != cases[i].ok)
			fail_msg("Number(\"%s\"): %s expected", cases[i].text,
			         cases[i].ok ? "a number" : "NaN");
		if (ok && v != cases[i].value)
			fail_msg("Number(\"%s\") = %g, expected %g", cases[i].text, v,
			         cases[i].value);
	}
}

/* A single address is a full-length range; v4_only refuses IPv6. */
static void test_cidr_parse(void **state)
{
	(void)state;
	struct jsvalue_cidr c;
	assert_true(jsvalue_cidr_parse("10.1.2.3", false, &c));
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 32);
	assert_true(jsvalue_cidr_parse("2001:db8::/32", false, &c));
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefix, 32);
	assert_false(jsvalue_cidr_parse("2001:db8::/32", true, &c));
	assert_false(jsvalue_cidr_parse("10.0.0.0/33", false, &c));
	assert_false(jsvalue_cidr_parse("10.0.0.0/", false, &c));
	assert_false(jsvalue_cidr_parse("not an address", false, &c));
	assert_true(jsvalue_cidr_parse("10.0.0.0/8", false, &c));
	assert_true(jsvalue_cidr_match(&c, 1, "10.255.0.1"));
	assert_false(jsvalue_cidr_match(&c, 1, "11.0.0.1"));
	assert_false(jsvalue_cidr_match(&c, 1, "::ffff:10.0.0.1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_js_number),
	    cmocka_unit_test(test_cidr_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
