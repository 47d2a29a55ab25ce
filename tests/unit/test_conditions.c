/* Loading a real version: path confinement, mapping lookup, rendered bodies
 * and the problems reported for broken trees. Runs from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "conditions.h"
#include "config.h"
#include "diag.h"
#include "jsonschema.h"
#include "rules_config.h"

static struct js_registry *schemas;
static struct gcs_config cfg;

static void ignore(void *ud, const char *p, const char *m)
{
	(void)ud;
	fail_msg("schema problem %s: %s", p, m);
}

static int setup(void **state)
{
	(void)state;
	rules_config(&cfg);
	schemas = js_registry_new();
	return js_registry_load_dir(schemas, "rules/schemas", ignore, NULL);
}

static int teardown(void **state)
{
	(void)state;
	js_registry_free(schemas);
	return 0;
}

static void test_path_rules(void **state)
{
	(void)state;
	assert_null(cond_path_problem("config_default.json"));
	assert_null(cond_path_problem("remote_configurations/config_default.json"));
	assert_null(cond_path_problem("a-b_c.1/x.json"));
	assert_string_equal(cond_path_problem("/etc/passwd"),
	                    "absolute path; must be relative to v2/");
	assert_string_equal(cond_path_problem("../v1/rules.json"), "'..' segment leaves v2/");
	assert_string_equal(cond_path_problem("a/../../x.json"), "'..' segment leaves v2/");
	assert_string_equal(cond_path_problem("a\\b.json"), "backslash in path");
	assert_string_equal(cond_path_problem("%2e%2e/x.json"), "percent-escape in path");
	assert_string_equal(cond_path_problem("a//b.json"), "empty path segment");
	assert_string_equal(cond_path_problem("a/"), "empty path segment");
	assert_string_equal(cond_path_problem("./a.json"), "'.' segment in path");
	assert_string_equal(cond_path_problem(""), "path is empty");
	assert_non_null(cond_path_problem("a?b.json"));
	assert_non_null(cond_path_problem("a#b.json"));
	assert_non_null(cond_path_problem("file:x.json"));
}

static const char *lookup(const struct cond_set *set, const char *v)
{
	struct semver sv;
	if (!semver_parse(v, strlen(v), &sv))
		fail_msg("bad version %s", v);
	const struct cond_file *f = cond_lookup(set, &sv);
	return f ? f->path : NULL;
}

static void test_real_version_lookup(void **state)
{
	(void)state;
	struct diag d = {0};
	struct cond_set *set = cond_load("canary", "1.2.0", &cfg, schemas, &d, NULL);
	for (size_t i = 0; i < d.n; i++)
		print_message("%s\n", d.lines[i]);
	assert_non_null(set);
	assert_int_equal(set->nfiles, 2);
	assert_int_equal(set->nmap, 5);
	const char *def = "remote_configurations/config_default.json";
	const char *val = "remote_configurations/config_validation.json";
	/* the file each version gets; NULL: below the first entry */
	const struct {
		const char *version, *path;
	} want[] = {
	    {"3.9.9", NULL},      {"4.0.0-rc.1", NULL},
	    {"4.0.0", def},       {"4.16.99", def},
	    {"4.17.0-0", val},    {"4.17.0-rc.1", val},
	    {"4.17.0", def},      {"4.17.6-0.ci-2024-08-19-220527", def},
	    {"4.18.0-ec.2", val}, {"4.18.0", def},
	    {"99.0.0", def},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const char *got = lookup(set, want[i].version);
		bool same =
		    got && want[i].path ? strcmp(got, want[i].path) == 0 : got == want[i].path;
		if (!same)
			fail_msg("%s: got %s, want %s", want[i].version, got ? got : "none",
			         want[i].path ? want[i].path : "none");
	}
	/* one file per distinct path: the two entries share a body */
	struct semver a, b;
	semver_parse("4.0.0", 5, &a);
	semver_parse("4.18.0", 6, &b);
	assert_ptr_equal(cond_lookup(set, &a), cond_lookup(set, &b));
	cond_free(set);
	diag_free(&d);
}

/* (Shaped like the lookup test above: load a tree, look versions up.) */
static void test_bodies(void **state)
{
	(void)state;
	struct diag d = {0};
	struct cond_set *set = cond_load("stable", "1.1.3", &cfg, schemas, &d, NULL);
	assert_non_null(set);
	assert_string_equal(set->v1_version, "1.1.3");
	assert_memory_equal(set->v1.data, "{\"version\":\"1.1.3\",\"rules\":[{\"conditions\":", 41);
	assert_int_equal(set->v1.data[set->v1.len - 1], '}');
	for (size_t i = 0; i < set->nfiles; i++) {
		const struct body *b = &set->files[i].body;
		assert_memory_equal(b->data, "{\"conditional_gathering_rules\":[", 32);
		assert_non_null(strstr(b->data, "],\"version\":\"1.1.3\"}"));
		assert_int_equal(strlen(b->etag), 18);
		assert_string_not_equal(b->etag, set->v1.etag);
		/* the gzip form inflates to the same bytes */
		char *out = malloc(b->len + 16);
		z_stream zs = {0};
		assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
		zs.next_in = (Bytef *)b->gz;
		zs.avail_in = (uInt)b->gz_len;
		zs.next_out = (Bytef *)out;
		zs.avail_out = (uInt)b->len + 16;
		assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
		assert_int_equal(zs.total_out, b->len);
		assert_memory_equal(out, b->data, b->len);
		inflateEnd(&zs);
		free(out);
	}
	cond_free(set);
	diag_free(&d);
}

/* A version that is not there is one problem, named, and nothing loads. */
static void test_missing_version(void **state)
{
	(void)state;
	struct diag d = {0};
	struct cond_set *set = cond_load("canary", "9.9.9", &cfg, schemas, &d, NULL);
	assert_null(set);
	assert_true(d.n >= 1);
	assert_non_null(strstr(d.lines[0], "canary 9.9.9: v1/rules.json: "));
	diag_free(&d);
}

/* cmocka's list of this suite's tests: every suite's main has this shape */
int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_rules),
	    cmocka_unit_test(test_real_version_lookup),
	    cmocka_unit_test(test_bodies),
	    cmocka_unit_test(test_missing_version),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
