/* SemVer 2.0.0 parsing and precedence: the specification's examples and the
 * OpenShift versions clusters send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "semver.h"

static struct semver parse_ok(const char *s)
{
	struct semver v;
	if (!semver_parse(s, strlen(s), &v))
		fail_msg("\"%s\" should parse", s);
	return v;
}

static int cmp(const char *a, const char *b)
{
	struct semver va = parse_ok(a), vb = parse_ok(b);
	return semver_cmp(&va, &vb);
}

/* Lists of versions, valid and not: data, alike in shape. */
static void test_valid(void **state)
{
	(void)state;
	static const char *const ok[] = {
	    "0.0.4",
	    "1.2.3",
	    "10.20.30",
	    "1.1.2-prerelease+meta",
	    "1.1.2+meta",
	    "1.1.2+meta-valid",
	    "1.0.0-alpha",
	    "1.0.0-beta",
	    "1.0.0-alpha.beta",
	    "1.0.0-alpha.beta.1",
	    "1.0.0-alpha.1",
	    "1.0.0-alpha0.valid",
	    "1.0.0-alpha.0valid",
	    "1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay",
	    "1.0.0-rc.1+build.1",
	    "2.0.0-rc.1+build.123",
	    "1.2.3-beta",
	    "10.2.3-DEV-SNAPSHOT",
	    "1.2.3-SNAPSHOT-123",
	    "2.0.0+build.1848",
	    "2.0.1-alpha.1227",
	    "1.0.0-alpha+beta",
	    "1.2.3----RC-SNAPSHOT.12.9.1--.12+788",
	    "1.2.3----R-S.12.9.1--.12+meta",
	    "1.2.3----RC-SNAPSHOT.12.9.1--.12",
	    "1.0.0+0.build.1-rc.10000aaa-kk-0.1",
	    "18446744073709551615.0.0",
	    "1.0.0-0A.is.legal",
	    "4.17.6-0.ci-2024-08-19-220527",
	    "4.17.0-0",
	    "4.18.0-ec.2",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		parse_ok(ok[i]);
}

static void test_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "1",
	    "1.2",
	    "1.2.3-0123",
	    "1.2.3-0123.0123",
	    "1.1.2+.123",
	    "+invalid",
	    "-invalid",
	    "-invalid+invalid",
	    "-invalid.01",
	    "alpha",
	    "alpha.beta",
	    "alpha.beta.1",
	    "alpha.1",
	    "alpha+beta",
	    "alpha_beta",
	    "alpha.",
	    "alpha..",
	    "beta",
	    "1.0.0-alpha_beta",
	    "-alpha.",
	    "1.0.0-alpha..",
	    "1.0.0-alpha..1",
	    "1.0.0-alpha...1",
	    "1.0.0-alpha....1",
	    "1.0.0-alpha.....1",
	    "1.0.0-alpha......1",
	    "1.0.0-alpha.......1",
	    "01.1.1",
	    "1.01.1",
	    "1.1.01",
	    "1.2.3.DEV",
	    "1.2-SNAPSHOT",
	    "1.2.31.2.3----RC-SNAPSHOT.12.09.1--..12+788",
	    "1.2-RC-SNAPSHOT",
	    "-1.0.3-gamma+b7718",
	    "+justmeta",
	    "9.8.7+meta+meta",
	    "9.8.7-whatever+meta+meta",
	    "18446744073709551616.0.0",
	    "v4.17.0",
	    "4.17.0-",
	    "4.17.0+",
	    "4.17.0 ",
	    " 4.17.0",
	    "",
	    "4.17.0-a b",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct semver v;
		if (semver_parse(bad[i], strlen(bad[i]), &v))
			fail_msg("\"%s\" should not parse", bad[i]);
	}
}

static void test_embedded_nul_is_invalid(void **state)
{
	(void)state;
	struct semver v;
	assert_false(semver_parse("4.17.0\0x", 8, &v));
	assert_true(semver_parse("4.17.0\0x", 6, &v));
}

/* SemVer 11: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-alpha.beta < 1.0.0-beta <
 * 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0 */
static void test_spec_precedence(void **state)
{
	(void)state;
	static const char *const order[] = {
	    "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
	    "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
	    "1.0.0-rc.1",  "1.0.0",         "2.0.0",
	    "2.1.0",       "2.1.1",
	};
	size_t n = sizeof(order) / sizeof(order[0]);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(cmp(order[i], order[i]), 0);
		for (size_t j = i + 1; j < n; j++) {
			if (cmp(order[i], order[j]) >= 0)
				fail_msg("%s should be < %s", order[i], order[j]);
			if (cmp(order[j], order[i]) <= 0)
				fail_msg("%s should be > %s", order[j], order[i]);
		}
	}
}

static void test_build_metadata_ignored(void **state)
{
	(void)state;
	assert_int_equal(cmp("1.0.0+a", "1.0.0+b"), 0);
	assert_int_equal(cmp("4.17.0-rc.1+x", "4.17.0-rc.1"), 0);
}

static void test_openshift_versions(void **state)
{
	(void)state;
	assert_true(cmp("4.17.6-0.ci-2024-08-19-220527", "4.17.6") < 0);
	assert_true(cmp("4.17.6-0.ci-2024-08-19-220527", "4.17.5") > 0);
	/* 4.17.0-0 is below every other 4.17.0 pre-release */
	static const char *const pre[] = {"4.17.0-0.nightly-2024-06-01-000000",
	                                  "4.17.0-1",
	                                  "4.17.0-ec.0",
	                                  "4.17.0-rc.0",
	                                  "4.17.0-0.0",
	                                  "4.17.0-00a"};
	for (size_t i = 0; i < sizeof(pre) / sizeof(pre[0]); i++)
		if (cmp("4.17.0-0", pre[i]) >= 0)
			fail_msg("4.17.0-0 should be < %s", pre[i]);
	assert_true(cmp("4.16.99", "4.17.0-0") < 0);
	assert_true(cmp("4.17.0-rc.1", "4.17.0") < 0);
	/* numeric identifiers compare numerically, not as text */
	assert_true(cmp("4.17.0-rc.2", "4.17.0-rc.10") < 0);
	assert_true(cmp("4.9.0", "4.10.0") < 0);
	assert_true(cmp("18446744073709551615.0.0", "18446744073709551614.9.9") > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_embedded_nul_is_invalid),
	    cmocka_unit_test(test_spec_precedence),
	    cmocka_unit_test(test_build_metadata_ignored),
	    cmocka_unit_test(test_openshift_versions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
