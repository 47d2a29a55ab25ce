/* uri: percent-decoding, with malformed escapes and a bounded output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "uri.h"

static void test_decodes(void **state)
{
	(void)state;
	char out[32];
	size_t len;
	assert_true(uri_decode("a%2Fb%2fc%41", 12, out, sizeof(out), &len));
	assert_string_equal(out, "a/b/cA");
	assert_int_equal(len, 6);
	assert_true(uri_decode("", 0, out, sizeof(out), &len));
	assert_int_equal(len, 0);
	assert_string_equal(out, "");
	/* %00 decodes to a NUL byte; refusing it is the caller's choice */
	assert_true(uri_decode("a%00b", 5, out, sizeof(out), &len));
	assert_int_equal(len, 3);
	assert_memory_equal(out, "a\0b", 4);
	/* only the first n bytes are read */
	assert_true(uri_decode("%41%zz", 3, out, sizeof(out), &len));
	assert_string_equal(out, "A");
}

static void test_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {"%", "%4", "a%", "%zz", "%4g", "%g4", "%%41", "% 41"};
	char out[32];
	size_t len;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (uri_decode(bad[i], strlen(bad[i]), out, sizeof(out), &len))
			fail_msg("\"%s\" is malformed", bad[i]);
	/* an escape cut by n */
	assert_false(uri_decode("%41", 2, out, sizeof(out), &len));
}

static void test_bounded(void **state)
{
	(void)state;
	char out[4];
	size_t len;
	assert_true(uri_decode("abc", 3, out, sizeof(out), &len));
	assert_false(uri_decode("abcd", 4, out, sizeof(out), &len));
	assert_true(uri_decode("%41%42%43", 9, out, sizeof(out), &len));
	assert_string_equal(out, "ABC");
	assert_false(uri_decode("", 0, out, 0, &len));
}

/* cmocka's list of this suite's tests: every suite's main has this shape */
int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_decodes),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
