/* request: path patterns, the ocpVersion segment, the User-Agent's cluster
 * ID, Accept-Encoding and If-None-Match, as clusters send them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "request.h"

#define V2 "/api/gathering/v2/*/gathering_rules"

static void test_match_literal(void **state)
{
	(void)state;
	const char *seg = "x";
	size_t len = 9;
	assert_true(request_match("/metrics", "/metrics", &seg, &len));
	assert_null(seg);
	assert_int_equal(len, 0);
	assert_false(request_match("/metrics", "/metrics/x", &seg, &len));
	assert_false(request_match("/metrics", "/metric", &seg, &len));
	assert_false(request_match("/healthz", "/healthz/", &seg, &len));
	assert_false(request_match("/api/gathering/gathering_rules",
	                           "/API/gathering/gathering_rules", &seg, &len));
}

static void test_match_segment(void **state)
{
	(void)state;
	const char *path = "/api/gathering/v2/4.17.0/gathering_rules", *seg;
	size_t len;
	assert_true(request_match(V2, path, &seg, &len));
	assert_ptr_equal(seg, path + strlen("/api/gathering/v2/"));
	assert_int_equal(len, strlen("4.17.0"));
	assert_true(request_match(V2, "/api/gathering/v2/%34.17.0/gathering_rules", &seg, &len));
	assert_int_equal(len, strlen("%34.17.0"));
	static const char *const no[] = {
	    "/api/gathering/v2//gathering_rules",
	    "/api/gathering/v2/4.17.0",
	    "/api/gathering/v2/4.17.0/gathering_rules/x",
	    "/api/gathering/v2/gathering_rules",
	    "/api/gathering/v2/4.17.0/rules",
	    "/api/gathering/v2/a/b/gathering_rules",
	    "/api/gathering/v3/4.17.0/gathering_rules",
	    "/api/gathering/v2/4.17.0/gathering_rule",
	};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		if (request_match(V2, no[i], &seg, &len))
			fail_msg("\"%s\" should not match", no[i]);
		assert_null(seg);
	}
}

static void ocp_ok(const char *seg, const char *text)
{
	char out[256];
	struct semver v;
	if (!request_ocp_version(seg, strlen(seg), out, sizeof(out), &v))
		fail_msg("\"%s\" should decode", seg);
	assert_string_equal(out, text);
}

static void test_ocp_version(void **state)
{
	(void)state;
	ocp_ok("4.17.0", "4.17.0");
	ocp_ok("4.17.0-rc.1", "4.17.0-rc.1");
	ocp_ok("%34.17.0-rc.1", "4.17.0-rc.1");
	ocp_ok("4.12.0-rc.2%2Bbuild.7", "4.12.0-rc.2+build.7");
	ocp_ok("4.17.0%2bbuild", "4.17.0+build");
	char out[256];
	struct semver v;
	assert_true(request_ocp_version("4.17.0-rc.1", 11, out, sizeof(out), &v));
	assert_int_equal(v.major, 4);
	assert_int_equal(v.minor, 17);
	assert_int_equal(v.patch, 0);
	assert_ptr_equal(v.pre, out + 7);
	assert_int_equal(v.pre_len, 4);
	static const char *const bad[] = {
	    "4.17",      "v4.17.0",   "4.17.01",        "4.17.0-",    "04.17.0",  "latest",
	    "4.17.0%20", "%20",       "4.17.0%",        "4.17.0%2",   "%zz",      "4.17.0%zz",
	    "%00",       "4.17.0%00", "4.17.0-r%C3%A9", "4.17.0%2F1", "4.17.0_1",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (request_ocp_version(bad[i], strlen(bad[i]), out, sizeof(out), &v))
			fail_msg("\"%s\" should be refused", bad[i]);
}

static void test_ocp_version_bounded(void **state)
{
	(void)state;
	char seg[300], out[256];
	struct semver v;
	memset(seg, 'a', sizeof(seg));
	memcpy(seg, "4.17.0-", 7);
	/* 255 bytes fit the 256-byte buffer with the NUL; 256 do not */
	assert_true(request_ocp_version(seg, 255, out, sizeof(out), &v));
	assert_int_equal(strlen(out), 255);
	assert_false(request_ocp_version(seg, 256, out, sizeof(out), &v));
}

static void test_cluster_id(void **state)
{
	(void)state;
	char buf[256];
	const char *ua =
	    "insights-operator/4.17.0-abc cluster/9abc1e7a-d834-4c6d-99b1-826399958d1c";
	assert_string_equal(request_cluster_id(ua, buf, sizeof(buf)),
	                    "9abc1e7a-d834-4c6d-99b1-826399958d1c");
	assert_string_equal(request_cluster_id("io cluster/abc,extra", buf, sizeof(buf)), "abc");
	assert_string_equal(request_cluster_id("cluster/abc def", buf, sizeof(buf)), "abc");
	/* other c's, and partial matches, before the one that starts it */
	assert_string_equal(
	    request_cluster_id("curl/8.1 cluste cclus cluster/abc", buf, sizeof(buf)), "abc");
	assert_string_equal(request_cluster_id("ccluster/x", buf, sizeof(buf)), "x");
	static const char *const none[] = {"",          "insights-operator/4.17.0", "cluster/",
	                                   "cluster/,", "cluster/ cluster/abc",     "Cluster/abc"};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		if (request_cluster_id(none[i], buf, sizeof(buf)))
			fail_msg("\"%s\" names no cluster", none[i]);
	assert_null(request_cluster_id(NULL, buf, sizeof(buf)));
	char small[4];
	assert_string_equal(request_cluster_id("cluster/abcdef", small, sizeof(small)), "abc");
}

static void test_accepts_gzip(void **state)
{
	(void)state;
	static const char *const yes[] = {
	    "gzip", "GZIP", "x-gzip", "*", "br, gzip", "gzip;q=0.5", "deflate;q=1, gzip ; q=0.1"};
	static const char *const no[] = {"",           "identity",   "gzip;q=0", "gzip;q=-1",
	                                 "br",         ";;,,",       "q=1",      "gzipx",
	                                 "gzip;q=abc", "x-gzip;Q=0", "gzip;q="};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!request_accepts_gzip(yes[i]))
			fail_msg("\"%s\" admits gzip", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (request_accepts_gzip(no[i]))
			fail_msg("\"%s\" does not admit gzip", no[i]);
	assert_false(request_accepts_gzip(NULL));
}

static void test_etag_matches(void **state)
{
	(void)state;
	const char *etag = "\"0123456789abcdef\"";
	static const char *const yes[] = {"\"0123456789abcdef\"", "W/\"0123456789abcdef\"", "*",
	                                  "\"nope\", \"0123456789abcdef\", \"other\""};
	static const char *const no[] = {"",
	                                 "W/",
	                                 "\"",
	                                 ", , ,",
	                                 "\"nope\"",
	                                 "W/\"nope\"",
	                                 "\"0123456789abcdef",
	                                 "0123456789abcdef"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!request_etag_matches(yes[i], etag))
			fail_msg("'%s' matches", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (request_etag_matches(no[i], etag))
			fail_msg("'%s' does not match", no[i]);
	assert_false(request_etag_matches(NULL, etag));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match_literal), cmocka_unit_test(test_match_segment),
	    cmocka_unit_test(test_ocp_version),   cmocka_unit_test(test_ocp_version_bounded),
	    cmocka_unit_test(test_cluster_id),    cmocka_unit_test(test_accepts_gzip),
	    cmocka_unit_test(test_etag_matches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
