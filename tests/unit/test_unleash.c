/* Unit tests for the pure steps of the Unleash poller: toggle extraction,
 * segment resolution, rollout detection and the backup file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unleash.h"

static char *extract(const char *body, const char *name, int *rc)
{
	char err[256] = "";
	char *toggle = (char *)0x1;
	*rc = unleash_extract_toggle(body, strlen(body), name, &toggle, err, sizeof(err));
	return toggle;
}

/* The value at a path like "strategies/0/constraints" of a JSON text. */
static json_t *at(json_t *doc, const char *key, int index, const char *key2)
{
	json_t *v = json_array_get(json_object_get(doc, key), (size_t)index);
	return key2 ? json_object_get(v, key2) : v;
}

static void test_extract_picks_the_named_toggle(void **state)
{
	(void)state;
	int rc;
	char *t = extract("{\"version\":2,\"features\":["
	                  "{\"name\":\"other\",\"enabled\":false,\"strategies\":[]},"
	                  "{\"name\":\"canary\",\"enabled\":true,\"strategies\":[{\"name\":"
	                  "\"flexibleRollout\",\"parameters\":{\"rollout\":\"30\"}}]}]}",
	                  "canary", &rc);
	assert_int_equal(rc, 0);
	assert_non_null(t);
	json_t *doc = json_loads(t, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "name")), "canary");
	assert_true(json_is_true(json_object_get(doc, "enabled")));
	assert_string_equal(json_string_value(at(doc, "strategies", 0, "name")), "flexibleRollout");
	json_decref(doc);
	free(t);
}

static void test_extract_absent_toggle_is_null(void **state)
{
	(void)state;
	int rc;
	char *t = extract("{\"features\":[{\"name\":\"other\",\"enabled\":true}]}", "canary", &rc);
	assert_int_equal(rc, 0);
	assert_null(t);
	t = extract("{\"features\":[]}", "canary", &rc);
	assert_int_equal(rc, 0);
	assert_null(t);
}

static void test_extract_rejects_what_is_not_an_answer(void **state)
{
	(void)state;
	int rc;
	char *t = extract("<html>proxy error</html>", "canary", &rc);
	assert_int_equal(rc, -1);
	assert_null(t);
	t = extract("{\"toggles\":[]}", "canary", &rc);
	assert_int_equal(rc, -1);
	assert_null(t);
	t = extract("{\"features\":[\"canary\"]}", "canary", &rc);
	assert_int_equal(rc, 0); /* a string is not a feature named canary */
	assert_null(t);
}

static void test_extract_resolves_segments_into_constraints(void **state)
{
	(void)state;
	int rc;
	char *t =
	    extract("{\"features\":[{\"name\":\"canary\",\"enabled\":true,\"strategies\":["
	            "{\"name\":\"default\",\"constraints\":[{\"contextName\":\"appName\","
	            "\"operator\":\"IN\",\"values\":[\"gcs\"]}],\"segments\":[2,1]},"
	            "{\"name\":\"default\",\"segments\":[1]}]}],"
	            "\"segments\":[{\"id\":1,\"constraints\":[{\"contextName\":\"ocpVersion\","
	            "\"operator\":\"SEMVER_GT\",\"value\":\"4.16.0\"}]},"
	            "{\"id\":2,\"constraints\":[{\"contextName\":\"environment\",\"operator\":"
	            "\"IN\",\"values\":[\"production\"]},{\"contextName\":\"userId\",\"operator\":"
	            "\"STR_STARTS_WITH\",\"values\":[\"a\"]}]}]}",
	            "canary", &rc);
	assert_int_equal(rc, 0);
	assert_non_null(t);
	json_t *doc = json_loads(t, 0, NULL);
	assert_non_null(doc);

	json_t *first = at(doc, "strategies", 0, NULL);
	assert_null(json_object_get(first, "segments"));
	json_t *c = json_object_get(first, "constraints");
	assert_int_equal(json_array_size(c), 4); /* own, then segment 2's two, then 1's */
	assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "contextName")),
	                    "appName");
	assert_string_equal(json_string_value(json_object_get(json_array_get(c, 1), "contextName")),
	                    "environment");
	assert_string_equal(json_string_value(json_object_get(json_array_get(c, 2), "operator")),
	                    "STR_STARTS_WITH");
	assert_string_equal(json_string_value(json_object_get(json_array_get(c, 3), "operator")),
	                    "SEMVER_GT");

	/* A strategy without constraints of its own gets the segment's. */
	json_t *second = at(doc, "strategies", 1, NULL);
	assert_null(json_object_get(second, "segments"));
	assert_int_equal(json_array_size(json_object_get(second, "constraints")), 1);
	json_decref(doc);
	free(t);
}

static void test_extract_keeps_unknown_segment_references(void **state)
{
	(void)state;
	int rc;
	char *t = extract("{\"features\":[{\"name\":\"canary\",\"enabled\":true,\"strategies\":["
	                  "{\"name\":\"default\",\"constraints\":[],\"segments\":[1,404]}]}],"
	                  "\"segments\":[{\"id\":1,\"constraints\":[{\"contextName\":\"a\","
	                  "\"operator\":\"IN\",\"values\":[\"b\"]}]}]}",
	                  "canary", &rc);
	assert_int_equal(rc, 0);
	json_t *doc = json_loads(t, 0, NULL);
	json_t *refs = at(doc, "strategies", 0, "segments");
	/* Left for the evaluation, which turns the strategy off, as SDKs do. */
	assert_int_equal(json_array_size(refs), 1);
	assert_int_equal(json_integer_value(json_array_get(refs, 0)), 404);
	assert_int_equal(json_array_size(at(doc, "strategies", 0, "constraints")), 1);
	json_decref(doc);
	free(t);
}

static void test_rollout_percent(void **state)
{
	(void)state;
	assert_true(unleash_rollout_percent(
	                "{\"enabled\":true,\"strategies\":[{\"name\":\"flexibleRollout\","
	                "\"parameters\":{\"rollout\":\"30\",\"stickiness\":\"default\"}}]}") ==
	            30.0);
	assert_true(unleash_rollout_percent(
	                "{\"enabled\":true,\"strategies\":[{\"name\":"
	                "\"flexibleRollout\",\"parameters\":{\"rollout\":45}}]}") == 45.0);
	assert_true(unleash_rollout_percent(
	                "{\"enabled\":false,\"strategies\":[{\"name\":\"flexibleRollout\","
	                "\"parameters\":{\"rollout\":\"30\"}}]}") == 0.0);
	assert_true(unleash_rollout_percent(
	                "{\"enabled\":true,\"strategies\":[{\"name\":\"flexibleRollout\","
	                "\"parameters\":{\"rollout\":\"30\"}},{\"name\":\"default\"}]}") < 0);
	assert_true(unleash_rollout_percent(
	                "{\"enabled\":true,\"strategies\":[{\"name\":\"default\"}]}") < 0);
	assert_true(unleash_rollout_percent(
	                "{\"enabled\":true,\"strategies\":[{\"name\":\"flexibleRollout\","
	                "\"parameters\":{\"rollout\":\"lots\"}}]}") < 0);
	assert_true(unleash_rollout_percent(NULL) < 0);
	assert_true(unleash_rollout_percent("not json") < 0);
}

struct tmpdir {
	char path[64];
};

static int setup_dir(void **state)
{
	struct tmpdir *d = malloc(sizeof(*d));
	if (!d)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/gcs-test-unleash.XXXXXX");
	if (!mkdtemp(d->path)) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int teardown_dir(void **state)
{
	struct tmpdir *d = *state;
	DIR *dir = opendir(d->path);
	if (dir) {
		struct dirent *e;
		char p[512];
		while ((e = readdir(dir))) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(p, sizeof(p), "%s/%s", d->path, e->d_name);
			unlink(p);
		}
		closedir(dir);
	}
	rmdir(d->path);
	free(d);
	return 0;
}

static int count_files(const char *path)
{
	int n = 0;
	DIR *dir = opendir(path);
	struct dirent *e;
	while (dir && (e = readdir(dir)))
		n += e->d_name[0] != '.';
	if (dir)
		closedir(dir);
	return n;
}

static void test_backup_round_trip(void **state)
{
	struct tmpdir *d = *state;
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/unleash.json", d->path);
	const char *toggle = "{\"name\":\"canary\",\"enabled\":true,\"strategies\":[{\"name\":"
	                     "\"flexibleRollout\",\"parameters\":{\"rollout\":\"30\"}}]}";

	char *back = (char *)0x1;
	assert_int_equal(unleash_backup_read(path, &back, err, sizeof(err)), 0);
	assert_null(back);

	assert_int_equal(unleash_backup_write(path, toggle, err, sizeof(err)), 0);
	assert_int_equal(unleash_backup_read(path, &back, err, sizeof(err)), 1);
	assert_non_null(back);
	assert_string_equal(back, toggle);
	free(back);
	assert_int_equal(count_files(d->path), 1); /* no temporary file left behind */

	/* "No such toggle" is a state too, and replaces the previous one. */
	assert_int_equal(unleash_backup_write(path, NULL, err, sizeof(err)), 0);
	back = (char *)0x1;
	assert_int_equal(unleash_backup_read(path, &back, err, sizeof(err)), 1);
	assert_null(back);
	assert_int_equal(count_files(d->path), 1);
}

static void test_backup_rejects_bad_files(void **state)
{
	struct tmpdir *d = *state;
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/bad.json", d->path);
	const char *bad[] = {"{\"format\":1,\"toggle\":", "{\"toggle\":{}}",
	                     "{\"format\":1,\"toggle\":[1]}", "[]"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fputs(bad[i], f);
		fclose(f);
		char *back = (char *)0x1;
		err[0] = '\0';
		assert_int_equal(unleash_backup_read(path, &back, err, sizeof(err)), -1);
		assert_null(back);
		assert_non_null(strstr(err, path)); /* the error names the file */
	}
}

static void test_backup_write_failure_is_reported(void **state)
{
	struct tmpdir *d = *state;
	char path[128], err[256] = "";
	snprintf(path, sizeof(path), "%s/missing-dir/unleash.json", d->path);
	assert_int_equal(unleash_backup_write(path, "{}", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing-dir"));
	assert_int_equal(unleash_backup_write(path, "not json", err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_extract_picks_the_named_toggle),
	    cmocka_unit_test(test_extract_absent_toggle_is_null),
	    cmocka_unit_test(test_extract_rejects_what_is_not_an_answer),
	    cmocka_unit_test(test_extract_resolves_segments_into_constraints),
	    cmocka_unit_test(test_extract_keeps_unknown_segment_references),
	    cmocka_unit_test(test_rollout_percent),
	    cmocka_unit_test_setup_teardown(test_backup_round_trip, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_backup_rejects_bad_files, setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(test_backup_write_failure_is_reported, setup_dir,
	                                    teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
