/* answer: the one path from a request to its answer that the server, gcs
 * --route and gcs --route - share. The versions are built by hand: two
 * mappings whose entries and files tell the versions apart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "log.h"

#include "../support/budget.h"
#include "../support/tmpdir.h"

/* One version: a mapping of two entries, each to a file of its own. */
struct version {
	struct cond_set set;
	struct cond_file files[2];
	struct cond_entry map[2];
	char first[16], second[16];
};

static void version_init(struct version *v, const char *name, const char *first, const char *second)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->first, sizeof(v->first), "%s", first);
	snprintf(v->second, sizeof(v->second), "%s", second);
	v->files[0].path = v->first;
	v->files[1].path = v->second;
	v->map[0] = (struct cond_entry){.text = v->first, .file = &v->files[0]};
	v->map[1] = (struct cond_entry){.text = v->second, .file = &v->files[1]};
	assert_true(semver_parse(v->first, strlen(v->first), &v->map[0].ver));
	assert_true(semver_parse(v->second, strlen(v->second), &v->map[1].ver));
	v->set = (struct cond_set){
	    .version = (char *)name, .files = v->files, .nfiles = 2, .map = v->map, .nmap = 2};
}

static struct semver parse(const char *text)
{
	struct semver v;
	assert_true(semver_parse(text, strlen(text), &v));
	return v;
}

static void test_channel_names(void **state)
{
	(void)state;
	assert_string_equal(route_channel_name(GCS_STABLE), "stable");
	assert_string_equal(route_channel_name(GCS_CANARY), "canary");
}

/* Without a canary the script is not asked, and says why. */
static void test_no_canary_is_stable_unasked(void **state)
{
	(void)state;
	struct version stable;
	version_init(&stable, "1.1.3", "4.10.0", "4.17.0");
	const struct answerer who = {.stable = &stable.set};
	assert_false(answer_asks(&who));
	struct route_request req = {.cluster_id = "c-1", .api = "v2", .ocp_version = "4.18.1"};
	struct semver v = parse("4.18.1");
	char reason[64] = "untouched";
	struct answer a;
	answer_cluster(&who, &req, &v, reason, sizeof(reason), &a);
	assert_int_equal(a.channel, GCS_STABLE);
	assert_ptr_equal(a.set, &stable.set);
	assert_ptr_equal(a.file, &stable.files[1]);
	assert_null(a.mapping_start);
	assert_string_equal(a.reason, "no canary version loaded");
	assert_string_equal(reason, "untouched");
}

/* v1 has no file from the mapping; v2 below the first entry names it. */
static void test_v1_and_below_the_mapping(void **state)
{
	(void)state;
	struct version stable;
	version_init(&stable, "1.1.3", "4.10.0", "4.17.0");
	const struct answerer who = {.stable = &stable.set};
	char reason[64];
	struct answer a;
	struct route_request v1 = {.cluster_id = "c-1", .api = "v1"};
	answer_cluster(&who, &v1, NULL, reason, sizeof(reason), &a);
	assert_null(a.file);
	assert_null(a.mapping_start);
	struct route_request old = {.cluster_id = "c-1", .api = "v2", .ocp_version = "4.9.9"};
	struct semver v = parse("4.9.9");
	answer_cluster(&who, &old, &v, reason, sizeof(reason), &a);
	assert_null(a.file);
	assert_string_equal(a.mapping_start, "4.10.0");
	struct route_request exact = {.cluster_id = "c-1", .api = "v2", .ocp_version = "4.10.0"};
	v = parse("4.10.0");
	answer_cluster(&who, &exact, &v, reason, sizeof(reason), &a);
	assert_ptr_equal(a.file, &stable.files[0]);
}

static const char script[] = "local M = {}\n"
                             "function M.route(request, context)\n"
                             "  local id = request.cluster_id or ''\n"
                             "  if id:sub(1, 2) == 'c-' then return 'canary', 'prefix c-' end\n"
                             "  return 'stable', 'default'\n"
                             "end\n"
                             "return M\n";

/* With a canary the script decides, and the file comes from its version. */
static void test_script_picks_the_version(void **state)
{
	(void)state;
	char dir[64], path[128], err[512];
	tmpdir_make(dir, sizeof(dir), "gcs-answer");
	snprintf(path, sizeof(path), "%s/routing.lua", dir);
	tmpdir_write(path, script);
	struct gcs_config cfg = {.stable_version = "1.1.3",
	                         .canary_version = "1.2.0",
	                         .routing_script = path,
	                         .reload_interval = 1,
	                         .routing_budget_ms = test_budget_ms(),
	                         .unleash_app_name = "gcs",
	                         .unleash_environment = "production",
	                         .unleash_toggle = "gcs-canary"};
	struct routing *r = routing_new(&cfg, err, sizeof(err));
	if (!r)
		fail_msg("routing_new: %s", err);
	struct version stable, canary;
	version_init(&stable, "1.1.3", "4.10.0", "4.17.0");
	version_init(&canary, "1.2.0", "4.10.0", "4.18.0");
	const struct answerer who = {.routing = r, .stable = &stable.set, .canary = &canary.set};
	assert_true(answer_asks(&who));
	struct semver v = parse("4.18.1");
	char reason[64];
	struct answer a;
	struct route_request req = {.cluster_id = "c-1", .api = "v2", .ocp_version = "4.18.1"};
	answer_cluster(&who, &req, &v, reason, sizeof(reason), &a);
	assert_int_equal(a.channel, GCS_CANARY);
	assert_ptr_equal(a.set, &canary.set);
	assert_ptr_equal(a.file, &canary.files[1]);
	assert_ptr_equal(a.reason, reason);
	assert_string_equal(reason, "prefix c-");
	req.cluster_id = "x-1";
	answer_cluster(&who, &req, &v, reason, sizeof(reason), &a);
	assert_int_equal(a.channel, GCS_STABLE);
	assert_ptr_equal(a.set, &stable.set);
	assert_ptr_equal(a.file, &stable.files[1]);
	assert_string_equal(a.reason, "default");
	routing_free(r);
	tmpdir_remove(dir);
}

/* cmocka's list of this suite's tests: every suite's main has this shape */
int main(void)
{
	log_set_level(LOGL_ERROR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_channel_names),
	    cmocka_unit_test(test_no_canary_is_stable_unasked),
	    cmocka_unit_test(test_v1_and_below_the_mapping),
	    cmocka_unit_test(test_script_picks_the_version),
	};
	return cmocka_run_group_tests_name("answer", tests, NULL, NULL);
}
