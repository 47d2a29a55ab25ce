/* script: reading the files, the two loaders a sandbox gets (checking keeps
 * what it reads, serving hands out what was kept), and the watch. Each test
 * works in a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "sandbox.h"
#include "script.h"

#include "../support/tmpdir.h"

struct fixture {
	char dir[64];
	char script[128];
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	tmpdir_make(fx->dir, sizeof(fx->dir), "gcs-script");
	snprintf(fx->script, sizeof(fx->script), "%s/routing.lua", fx->dir);
	log_set_level(LOGL_ERROR);
	*state = fx;
	return 0;
}

/* The same shape as test_routing.c's teardown: each cmocka suite is one
 * program, and their fixtures differ (this one has no configuration). */
static int teardown(void **state)
{
	struct fixture *fx = *state;
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

static struct script *read_ok(struct fixture *fx)
{
	char err[512];
	struct script *s = script_read(fx->script, err, sizeof(err));
	if (!s)
		fail_msg("script_read: %s", err);
	return s;
}

/* A sandbox over s with one of its loaders; the reason route returns. */
static void route_reason(struct script *s, bool checking, char *reason, size_t len)
{
	struct sandbox *sb;
	struct sandbox_chunk chunk = script_chunk(s);
	struct sandbox_loader loader =
	    checking ? script_checking_loader(s) : script_serving_loader(s);
	char err[2048];
	if (sandbox_new(&sb, &chunk, &loader, NULL, err, sizeof(err)) != SANDBOX_OK)
		fail_msg("sandbox_new: %s", err);
	struct sandbox_context ctx = {.stable_version = "1.1.3"};
	assert_int_equal(sandbox_set_context(sb, &ctx, err, sizeof(err)), SANDBOX_OK);
	struct route_request req = {.cluster_id = "c-1", .api = "v2"};
	enum gcs_channel ch;
	if (sandbox_call(sb, &req, &ch, reason, len, err, sizeof(err)) != SANDBOX_OK)
		fail_msg("route: %s", err);
	sandbox_free(sb);
}

static const char requires_policy[] = "local p = require 'sub.policy'\n"
                                      "return { route = function() return 'stable', p.name end }\n";

static void test_serving_loader_hands_out_the_checked_text(void **state)
{
	struct fixture *fx = *state;
	char sub[128];
	snprintf(sub, sizeof(sub), "%s/sub", fx->dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	tmpdir_write_in(fx->dir, "sub/policy.lua", "return { name = 'checked' }\n");
	tmpdir_write_in(fx->dir, "routing.lua", requires_policy);
	struct script *s = read_ok(fx);
	char reason[64];
	route_reason(s, true, reason, sizeof(reason));
	assert_string_equal(reason, "checked");

	/* edited and even removed on disk: the workers still get what was checked */
	tmpdir_write_in(fx->dir, "sub/policy.lua", "return { name = 'edited' }\n");
	route_reason(s, false, reason, sizeof(reason));
	assert_string_equal(reason, "checked");
	char path[256];
	snprintf(path, sizeof(path), "%s/sub/policy.lua", fx->dir);
	assert_int_equal(unlink(path), 0);
	route_reason(s, false, reason, sizeof(reason));
	assert_string_equal(reason, "checked");
	script_unref(s);
}

/* A module only some requests require was never seen by the check: the
 * serving loader reads it from disk, as gcs always did. */
static void test_module_the_check_never_required_comes_from_disk(void **state)
{
	struct fixture *fx = *state;
	tmpdir_write_in(fx->dir, "late.lua", "return { name = 'late' }\n");
	tmpdir_write_in(
	    fx->dir, "routing.lua",
	    "return { route = function() return 'stable', require('late').name end }\n");
	struct script *s = read_ok(fx);
	char reason[64];
	route_reason(s, false, reason, sizeof(reason));
	assert_string_equal(reason, "late");
	script_unref(s);
}

/* (Shaped like the test above: write modules, read, route; one case each.) */
static void test_module_names_stay_in_the_directory(void **state)
{
	struct fixture *fx = *state;
	tmpdir_write_in(
	    fx->dir, "routing.lua",
	    "for _, name in ipairs({'..up', '.hidden', 'a..b', 'trailing.', 'a/b', ''}) do\n"
	    "  local ok, e = pcall(require, name)\n"
	    "  assert(not ok and e:find('no module name', 1, true), name)\n"
	    "end\n"
	    "return { route = function() return 'stable', 'ok' end }\n");
	struct script *s = read_ok(fx);
	char reason[64];
	route_reason(s, true, reason, sizeof(reason));
	assert_string_equal(reason, "ok");
	script_unref(s);
}

static void test_read_errors_name_the_file(void **state)
{
	struct fixture *fx = *state;
	char err[512];
	assert_null(script_read(fx->script, err, sizeof(err)));
	assert_non_null(strstr(err, fx->script));
	assert_non_null(strstr(err, "No such file or directory"));

	assert_null(script_read(fx->dir, err, sizeof(err)));
	assert_non_null(strstr(err, "is a directory"));

	/* a FIFO is refused at once: opening it to read would wait for a
	 * writer, and hold a reload (or startup) with it */
	char fifo[160];
	snprintf(fifo, sizeof(fifo), "%s/fifo.lua", fx->dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm(10);
	assert_null(script_read(fifo, err, sizeof(err)));
	alarm(0);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(unlink(fifo), 0);

	FILE *f = fopen(fx->script, "w");
	assert_non_null(f);
	for (int i = 0; i < (1 << 20) / 16 + 1; i++)
		assert_true(fputs("-- padding line\n", f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_null(script_read(fx->script, err, sizeof(err)));
	assert_non_null(strstr(err, "larger than 1048576 bytes"));
}

/* The script as a reload reads and checks it, and the watch made then. */
static struct script_watch *checked_watch(struct fixture *fx)
{
	struct script *s = read_ok(fx);
	char reason[64];
	route_reason(s, true, reason, sizeof(reason));
	struct script_watch *w = script_watch_new(fx->script, s);
	script_unref(s);
	assert_non_null(w);
	assert_false(script_watch_changed(w));
	return w;
}

static void test_watch_sees_script_and_modules(void **state)
{
	struct fixture *fx = *state;
	tmpdir_write_in(fx->dir, "policy.lua", "return { name = 'a' }\n");
	tmpdir_write_in(fx->dir, "routing.lua",
	                "local ok = pcall(require, 'optional')\n"
	                "local p = require 'policy'\n"
	                "return { route = function() return 'stable', p.name end }\n");

	/* a module replaced */
	struct script_watch *w = checked_watch(fx);
	tmpdir_write_in(fx->dir, "policy.lua", "return { name = 'b' }\n");
	assert_true(script_watch_changed(w));
	script_watch_free(w);

	/* a module the check looked for but did not find, appearing */
	w = checked_watch(fx);
	tmpdir_write_in(fx->dir, "optional.lua", "return {}\n");
	assert_true(script_watch_changed(w));
	script_watch_free(w);

	/* the script replaced */
	w = checked_watch(fx);
	tmpdir_write_in(fx->dir, "routing.lua",
	                "return { route = function() return 'canary' end }\n");
	assert_true(script_watch_changed(w));
	script_watch_free(w);

	/* a script that could not be read is watched for appearing */
	assert_int_equal(unlink(fx->script), 0);
	w = script_watch_new(fx->script, NULL);
	assert_non_null(w);
	assert_false(script_watch_changed(w));
	tmpdir_write_in(fx->dir, "routing.lua",
	                "return { route = function() return 'canary' end }\n");
	assert_true(script_watch_changed(w));
	script_watch_free(w);

	assert_false(script_watch_changed(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_serving_loader_hands_out_the_checked_text, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_module_the_check_never_required_comes_from_disk,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_module_names_stay_in_the_directory, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_read_errors_name_the_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_watch_sees_script_and_modules, setup, teardown),
	};
	return cmocka_run_group_tests_name("script", tests, NULL, NULL);
}
