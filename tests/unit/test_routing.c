/* routing: strict loading, containment of broken scripts, hot reload. Each
 * test writes its scripts into a fresh temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unleash_features.h"
#include "jsontext.h"
#include "log.h"
#include "metrics.h"
#include "murmur3.h"
#include "routing.h"

#include "../support/budget.h"
#include "../support/tmpdir.h"

struct fixture {
	char dir[64];
	char script[128];
	struct gcs_config cfg;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	tmpdir_make(fx->dir, sizeof(fx->dir), "gcs-routing");
	snprintf(fx->script, sizeof(fx->script), "%s/routing.lua", fx->dir);
	fx->cfg.stable_version = "1.1.3";
	fx->cfg.canary_version = "1.2.0";
	fx->cfg.routing_script = fx->script;
	fx->cfg.reload_interval = 0.05;
	fx->cfg.routing_budget_ms = test_budget_ms();
	fx->cfg.unleash_app_name = "gcs";
	fx->cfg.unleash_environment = "production";
	fx->cfg.unleash_toggle = "gcs-canary";
	log_set_level(LOGL_ERROR);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	tmpdir_remove(fx->dir);
	free(fx);
	return 0;
}

static struct routing *load(struct fixture *fx, const char *source, char *err, size_t errlen)
{
	tmpdir_write(fx->script, source);
	err[0] = '\0';
	return routing_new(&fx->cfg, err, errlen);
}

static struct routing *load_ok(struct fixture *fx, const char *source)
{
	char err[1024];
	struct routing *r = load(fx, source, err, sizeof(err));
	if (!r)
		fail_msg("routing_new: %s", err);
	return r;
}

static enum gcs_channel decide(struct routing *r, const char *cluster, char *reason, size_t len)
{
	struct route_request req = {
	    .cluster_id = cluster,
	    .api = "v2",
	    .ocp_version = "4.17.0",
	    .user_agent = "insights-operator/4.17.0",
	    .remote_addr = "127.0.0.1",
	};
	return routing_decide(r, &req, reason, len);
}

/* The current value of a routing counter, as GET /metrics shows it. */
static unsigned long long counter(const char *series)
{
	struct buf out = {0};
	metrics_render(&out);
	buf_put(&out, "", 1);
	assert_false(out.oom);
	const char *at = strstr(out.data, series);
	unsigned long long value = 0;
	if (!at || sscanf(at + strlen(series), " %llu", &value) != 1)
		fail_msg("no series %s in the metrics", series);
	buf_free(&out);
	return value;
}

/* Routes cluster "c-<anything>" to canary, everything else to stable, and
 * misbehaves on request for the containment tests. */
static const char good_script[] =
    "local M = {}\n"
    "function M.route(request, context)\n"
    "  local id = request.cluster_id\n"
    "  if id == nil then return 'stable', 'no id' end\n"
    "  if id == 'loop' then while true do end end\n"
    "  if id == 'loop-in-pcall' then\n"
    "    while true do pcall(function() while true do end end) end\n"
    "  end\n"
    "  if id == 'bomb' then local s = 'x' while true do s = s .. s end "
    "end\n"
    "  if id == 'bomb-in-pcall' then\n"
    "    while true do pcall(function() local s = 'x' while true do s = s .. s end end) end\n"
    "  end\n"
    "  if id == 'error' then error('asked to fail') end\n"
    "  if id == 'number' then return 42 end\n"
    "  if id == 'other-string' then return 'beta' end\n"
    "  if id == 'bad-reason' then return 'canary', {} end\n"
    "  if id:sub(1, 2) == 'c-' then return 'canary', 'prefix c-' end\n"
    "  return 'stable', 'default'\n"
    "end\n"
    "return M\n";

static void test_decides_with_reason(void **state)
{
	struct routing *r = load_ok(*state, good_script);
	char reason[64];
	assert_int_equal(decide(r, "c-1", reason, sizeof(reason)), GCS_CANARY);
	assert_string_equal(reason, "prefix c-");
	assert_int_equal(decide(r, "x-1", reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "default");
	assert_int_equal(decide(r, NULL, reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "no id");
	routing_free(r);
}

static void test_no_canary_never_calls_the_script(void **state)
{
	struct fixture *fx = *state;
	tmpdir_write(fx->script, "return { route = function() return 'canary', 'always' end }\n");
	char err[256];
	fx->cfg.canary_version = NULL;
	struct routing *r = routing_new(&fx->cfg, err, sizeof(err));
	assert_non_null(r);
	char reason[64];
	assert_int_equal(decide(r, "c-1", reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "no canary version");
	routing_free(r);
}

static void test_request_and_context_fields(void **state)
{
	struct routing *r = load_ok(
	    *state, "return { route = function(q, c)\n"
	            "  return 'stable', table.concat({q.api, q.ocp_version or '-', q.user_agent,\n"
	            "    q.remote_addr or '-', c.stable_version, c.canary_version, c.app_name,\n"
	            "    c.environment, tostring(c.unleash)}, ' ')\n"
	            "end }\n");
	char reason[256];
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "v2 4.17.0 insights-operator/4.17.0 127.0.0.1 1.1.3 1.2.0 gcs "
	                            "production nil");
	routing_free(r);
}

static void expect_load_error(struct fixture *fx, const char *source, const char *want)
{
	char err[1024];
	struct routing *r = load(fx, source, err, sizeof(err));
	if (r) {
		routing_free(r);
		fail_msg("routing_new accepted a script that should fail with '%s'", want);
	}
	if (!strstr(err, want))
		fail_msg("error '%s' does not contain '%s'", err, want);
	assert_null(strchr(err, '\n'));
}

/* The request table is the state's own, refilled for each call: a field a
 * call had is gone when the next call lacks it, and no call can add one. */
static void test_request_refilled_and_read_only(void **state)
{
	struct routing *r = load_ok(
	    *state, "return { route = function(q)\n"
	            "  if q.cluster_id == 'write' then q.note = 'kept' end\n"
	            "  if q.note then return 'canary', 'leaked' end\n"
	            "  return q.cluster_id and 'canary' or 'stable', q.cluster_id or 'nil'\n"
	            "end }\n");
	char reason[128];
	assert_int_equal(decide(r, "a", reason, sizeof(reason)), GCS_CANARY);
	assert_string_equal(reason, "a");
	assert_int_equal(decide(r, NULL, reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "nil");
	/* a write fails the call (answered stable), and leaves nothing behind */
	assert_int_equal(decide(r, "write", reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "routing failed: error");
	assert_int_equal(decide(r, "b", reason, sizeof(reason)), GCS_CANARY);
	assert_string_equal(reason, "b");
	routing_free(r);
}

/* (Shaped like the tests above, one script and its answers per case.)
 * Fields that repeat from one call to the next are left in the table, not
 * set again: each call must still see exactly its own request, and a
 * script must find no way to write the table (an assignment to a field it
 * has, rawset, or its metatable removed) that would leave a forged field
 * for the next call. */
static void test_request_fields_follow_each_request(void **state)
{
	struct routing *r = load_ok(
	    *state, "return { route = function(q)\n"
	            "  if q.cluster_id == 'assign' then q.api = 'forged' end\n"
	            "  if q.cluster_id == 'rawset' then rawset(q, 'api', 'forged') end\n"
	            "  if q.cluster_id == 'meta' then setmetatable(q, nil); q.api = 'forged' end\n"
	            "  local keys = 0\n"
	            "  for _ in pairs(q) do keys = keys + 1 end\n"
	            "  return 'stable', table.concat({q.cluster_id or '-', q.api,\n"
	            "    q.ocp_version or '-', q.remote_addr or '-', q.user_agent or '-',\n"
	            "    tostring(getmetatable(q)), keys}, ' ')\n"
	            "end }\n");
	struct {
		struct route_request req;
		const char *want;
	} calls[] = {
	    {{"a", "v2", "4.17.0", "ua/1", "10.0.0.1"}, "a v2 4.17.0 10.0.0.1 ua/1 false 4"},
	    {{"b", "v2", "4.17.0", "ua/2", "10.0.0.1"}, "b v2 4.17.0 10.0.0.1 ua/2 false 4"},
	    {{"c", "v1", NULL, NULL, "10.0.0.1"}, "c v1 - 10.0.0.1 - false 3"},
	    {{NULL, "v2", "4.16.1", "ua/3", NULL}, "- v2 4.16.1 - ua/3 false 2"},
	    {{"d", "v2", "4.16.1", "ua/4", "10.0.0.2"}, "d v2 4.16.1 10.0.0.2 ua/4 false 4"},
	    {{"assign", "v2", "4.16.1", "ua/5", "10.0.0.2"}, "routing failed: error"},
	    {{"e", "v2", "4.16.1", "ua/6", "10.0.0.2"}, "e v2 4.16.1 10.0.0.2 ua/6 false 4"},
	    {{"rawset", "v2", "4.16.1", "ua/5", "10.0.0.2"}, "routing failed: error"},
	    {{"e", "v2", "4.16.1", "ua/6", "10.0.0.2"}, "e v2 4.16.1 10.0.0.2 ua/6 false 4"},
	    {{"meta", "v2", "4.16.1", "ua/7", "10.0.0.2"}, "routing failed: error"},
	    {{"f", "v2", "4.16.1", "ua/8", "10.0.0.2"}, "f v2 4.16.1 10.0.0.2 ua/8 false 4"},
	};
	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		char reason[128];
		assert_int_equal(routing_decide(r, &calls[i].req, reason, sizeof(reason)),
		                 GCS_STABLE);
		if (strcmp(reason, calls[i].want) != 0)
			fail_msg("call %zu: got '%s', want '%s'", i, reason, calls[i].want);
	}
	routing_free(r);
}

static void test_syntax_error_names_file_and_line(void **state)
{
	struct fixture *fx = *state;
	char want[160];
	snprintf(want, sizeof(want), "%s:4:", fx->script);
	expect_load_error(
	    fx, "local M = {}\nfunction M.route()\n  return 'stable' +\nend\nreturn M\n", want);
}

static void test_runtime_error_names_file_and_line(void **state)
{
	struct fixture *fx = *state;
	char want[160];
	snprintf(want, sizeof(want), "%s:2: broken at load", fx->script);
	expect_load_error(fx, "local M = {}\nerror('broken at load')\nreturn M\n", want);
}

static void test_error_in_route_on_samples(void **state)
{
	struct fixture *fx = *state;
	char want[160];
	snprintf(want, sizeof(want), "%s:1: attempt to index a nil value", fx->script);
	expect_load_error(fx, "return { route = function(q) return q.cluster_id.x end }\n", want);
}

static void test_missing_file(void **state)
{
	struct fixture *fx = *state;
	char err[512];
	snprintf(fx->script, sizeof(fx->script), "%s/absent.lua", fx->dir);
	assert_null(routing_new(&fx->cfg, err, sizeof(err)));
	assert_non_null(strstr(err, fx->script));
	assert_non_null(strstr(err, "No such file"));
}

static void test_route_missing(void **state)
{
	expect_load_error(*state, "return { rout = function() return 'stable' end }\n",
	                  "no function route");
	expect_load_error(*state, "return 'stable'\n", "must return a table");
}

static void test_wrong_return_on_samples(void **state)
{
	expect_load_error(*state, "return { route = function() return 'yes' end }\n",
	                  "route returned the string \"yes\"");
	expect_load_error(*state, "return { route = function() end }\n",
	                  "route returned a nil value");
}

static void test_failing_example_rejects(void **state)
{
	expect_load_error(*state,
	                  "return { route = function() return 'stable' end,\n"
	                  "  examples = { { request = { api = 'v1' }, expect = 'stable' },\n"
	                  "               { request = { cluster_id = 'a', api = 'v1' }, expect = "
	                  "'canary' } } }\n",
	                  "examples[2]: expected canary, route returned stable");
	expect_load_error(*state,
	                  "return { route = function() return 'stable' end,\n"
	                  "  examples = { { request = { api = 'v1' }, expect = 'maybe' } } }\n",
	                  "examples[1].expect");
}

static void test_examples_with_context(void **state)
{
	struct routing *r = load_ok(
	    *state, "return { route = function(q, c)\n"
	            "  if c.unleash and c.unleash.enabled then return 'canary' end\n"
	            "  return 'stable' end,\n"
	            "  examples = {\n"
	            "    { request = { api = 'v1' }, expect = 'stable' },\n"
	            "    { request = { api = 'v1' }, context = { unleash = { enabled = true } },\n"
	            "      expect = 'canary' } } }\n");
	routing_free(r);
}

static void test_sandbox(void **state)
{
	struct fixture *fx = *state;
	tmpdir_write_in(fx->dir, "helper.lua",
	                "return { answer = function() return 'stable' end }\n");
	struct routing *r =
	    load_ok(fx, "assert(io == nil and debug == nil and dofile == nil and loadfile == nil)\n"
	                "assert(os.execute == nil and os.getenv == nil and os.remove == nil)\n"
	                "assert(type(os.time()) == 'number' and type(os.clock()) == 'number')\n"
	                "assert(package.loadlib == nil and package.cpath == '')\n"
	                "local bytecode = string.dump(function() return 1 end)\n"
	                "assert(load(bytecode) == nil)\n"
	                "assert(load(bytecode, 'x', 'b') == nil)\n"
	                "assert(load('return 7')() == 7)\n"
	                "assert(load('return x', 'c', 't', { x = 8 })() == 8)\n"
	                "assert(require('cjson').decode('[1,2]')[2] == 2)\n"
	                "assert(require('cjson.safe').decode('not json') == nil)\n"
	                "assert(require('gcs').murmur3('hello', 0) == 0x248bfa47)\n"
	                "assert(not pcall(require, 'io'))\n"
	                "assert(not pcall(require, '..secret'))\n"
	                "print('sandbox ok')\n"
	                "local helper = require 'helper'\n"
	                "return { route = function() return helper.answer(), 'helper' end }\n");
	char reason[64];
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "helper");
	routing_free(r);
}

static void expect_contained(struct routing *r, const char *cluster, const char *kind)
{
	char series[64];
	snprintf(series, sizeof(series), "gcs_routing_errors_total{kind=\"%s\"}", kind);
	unsigned long long before = counter(series);
	char reason[64];
	assert_int_equal(decide(r, cluster, reason, sizeof(reason)), GCS_STABLE);
	char want[64];
	snprintf(want, sizeof(want), "routing failed: %s", kind);
	assert_string_equal(reason, want);
	assert_int_equal(counter(series), before + 1);
	/* the worker still answers afterwards */
	assert_int_equal(decide(r, "c-after", reason, sizeof(reason)), GCS_CANARY);
}

static void test_containment(void **state)
{
	struct routing *r = load_ok(*state, good_script);
	expect_contained(r, "loop", "budget");
	expect_contained(r, "loop-in-pcall", "budget");
	expect_contained(r, "error", "error");
	expect_contained(r, "number", "result");
	expect_contained(r, "other-string", "result");
	expect_contained(r, "bad-reason", "result");
	routing_free(r);
}

/* The memory cap, on a budget that cannot come first: doubling a string to
 * 32 MiB is real work in C, which the CPU budget counts too, and under a
 * sanitizer on a loaded machine it can take longer than 50 ms. */
static void test_containment_memory(void **state)
{
	struct fixture *fx = *state;
	fx->cfg.routing_budget_ms = 10000;
	struct routing *r = load_ok(fx, good_script);
	expect_contained(r, "bomb", "memory");
	expect_contained(r, "bomb-in-pcall", "memory");
	routing_free(r);
}

static void test_reload_keeps_previous_on_failure(void **state)
{
	struct fixture *fx = *state;
	struct routing *r = load_ok(fx, "return { route = function() return 'canary', 'A' end }\n");
	char reason[64];
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_CANARY);

	unsigned long long failed = counter("gcs_routing_reloads_total{result=\"failed\"}");
	tmpdir_write(fx->script, "return { route = function() return 'canary' end\n");
	assert_int_equal(routing_reload(r), -1);
	tmpdir_write(fx->script, "return { route = function() while true do end end }\n");
	assert_int_equal(routing_reload(r), -1);
	assert_int_equal(counter("gcs_routing_reloads_total{result=\"failed\"}"), failed + 2);
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_CANARY);
	assert_string_equal(reason, "A");

	tmpdir_write(fx->script, "return { route = function() return 'stable', 'B' end }\n");
	assert_int_equal(routing_reload(r), 0);
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "B");
	routing_free(r);
}

struct thread_call {
	struct routing *r;
	enum gcs_channel channel;
	char reason[64];
};

static void *decide_in_thread(void *arg)
{
	struct thread_call *c = arg;
	c->channel = decide(c->r, "x", c->reason, sizeof(c->reason));
	return NULL;
}

static void test_other_thread_picks_up_reload(void **state)
{
	struct fixture *fx = *state;
	struct routing *r = load_ok(fx, "return { route = function() return 'canary', 'A' end }\n");
	/* One thread decides before and after the reload, so its own state
	 * must be rebuilt, not created fresh. */
	struct thread_call first = {.r = r};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, decide_in_thread, &first), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(first.channel, GCS_CANARY);

	char reason[64];
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_CANARY);
	tmpdir_write(fx->script, "return { route = function() return 'stable', 'B' end }\n");
	assert_int_equal(routing_reload(r), 0);
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "B");

	struct thread_call second = {.r = r};
	assert_int_equal(pthread_create(&t, NULL, decide_in_thread, &second), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(second.channel, GCS_STABLE);
	assert_string_equal(second.reason, "B");
	routing_free(r);
}

/* A client API answer holding one toggle (text after the name's quote). */
static void set_toggle(struct routing *r, const char *toggle)
{
	char body[512], err[256];
	if (!toggle) {
		routing_set_features(r, NULL);
		return;
	}
	snprintf(body, sizeof(body), "{\"features\": [%s]}", toggle);
	struct unleash_features *f =
	    unleash_features_parse(body, strlen(body), NULL, err, sizeof(err));
	assert_non_null(f);
	routing_set_features(r, f);
	unleash_features_unref(f);
}

static void test_unleash_generations(void **state)
{
	struct routing *r =
	    load_ok(*state, "return { route = function(q, c)\n"
	                    "  if c.unleash == nil then return 'stable', 'nil' end\n"
	                    "  return c.unleash.enabled and 'canary' or 'stable', c.unleash.name\n"
	                    "end }\n");
	char reason[64];
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "nil");
	set_toggle(r, "{\"name\": \"gcs-canary\", \"enabled\": true, \"strategies\": []}");
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_CANARY);
	assert_string_equal(reason, "gcs-canary");
	set_toggle(r, "{\"name\": \"gcs-canary\", \"enabled\": false, \"strategies\": []}");
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "gcs-canary");
	set_toggle(r, NULL);
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_STABLE);
	assert_string_equal(reason, "nil");
	routing_free(r);
}

/* A reload checks the script against the current toggle too. */
static void test_reload_checks_current_toggle(void **state)
{
	struct fixture *fx = *state;
	struct routing *r = load_ok(fx, "return { route = function() return 'stable' end }\n");
	set_toggle(r, "{\"name\": \"gcs-canary\", \"enabled\": true, \"strategies\": []}");
	tmpdir_write(fx->script,
	             "return { route = function(q, c)\n"
	             "  if c.unleash and #c.unleash.strategies == 0 then error('none') end\n"
	             "  return 'stable' end }\n");
	assert_int_equal(routing_reload(r), -1);
	routing_free(r);
}

static void test_modules_are_part_of_the_snapshot(void **state)
{
	struct fixture *fx = *state;
	tmpdir_write_in(fx->dir, "policy.lua", "return { channel = 'canary' }\n");
	struct routing *r = load_ok(
	    fx, "return { route = function() return require('policy').channel, 'mod' end }\n");
	/* changed on disk but not reloaded: workers keep the checked text */
	tmpdir_write_in(fx->dir, "policy.lua", "return { channel = 'stable' }\n");
	char reason[64];
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_CANARY);
	assert_int_equal(routing_reload(r), 0);
	assert_int_equal(decide(r, "x", reason, sizeof(reason)), GCS_STABLE);
	routing_free(r);
}

static bool wait_for_channel(struct routing *r, enum gcs_channel want, const char *want_reason)
{
	char reason[64];
	for (int i = 0; i < 400; i++) {
		if (decide(r, "x", reason, sizeof(reason)) == want &&
		    strcmp(reason, want_reason) == 0)
			return true;
		usleep(25 * 1000);
	}
	return false;
}

static void test_watch_reloads_on_change(void **state)
{
	struct fixture *fx = *state;
	struct routing *r = load_ok(fx, "return { route = function() return 'canary', 'A' end }\n");
	assert_int_equal(routing_start_watch(r), 0);
	tmpdir_write(fx->script, "return { route = function() return 'stable', 'B' end }\n");
	assert_true(wait_for_channel(r, GCS_STABLE, "B"));

	/* a ConfigMap-style swap: the file is a symlink through ..data */
	char path[256], target[256];
	snprintf(path, sizeof(path), "%s/..v1", fx->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/..v1/routing.lua", fx->dir);
	tmpdir_write(path, "return { route = function() return 'canary', 'C' end }\n");
	snprintf(path, sizeof(path), "%s/..data", fx->dir);
	assert_int_equal(symlink("..v1", path), 0);
	snprintf(target, sizeof(target), "%s/routing.lua.new", fx->dir);
	assert_int_equal(symlink("..data/routing.lua", target), 0);
	assert_int_equal(rename(target, fx->script), 0);
	assert_true(wait_for_channel(r, GCS_CANARY, "C"));

	snprintf(path, sizeof(path), "%s/..v2", fx->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/..v2/routing.lua", fx->dir);
	tmpdir_write(path, "return { route = function() return 'stable', 'D' end }\n");
	snprintf(target, sizeof(target), "%s/..data.new", fx->dir);
	assert_int_equal(symlink("..v2", target), 0);
	snprintf(path, sizeof(path), "%s/..data", fx->dir);
	assert_int_equal(rename(target, path), 0);
	assert_true(wait_for_channel(r, GCS_STABLE, "D"));
	routing_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_decides_with_reason, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_canary_never_calls_the_script, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_and_context_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_refilled_and_read_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_fields_follow_each_request, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_syntax_error_names_file_and_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_runtime_error_names_file_and_line, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_error_in_route_on_samples, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_route_missing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_return_on_samples, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failing_example_rejects, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_examples_with_context, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sandbox, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_containment, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_containment_memory, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload_keeps_previous_on_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_thread_picks_up_reload, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_unleash_generations, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload_checks_current_toggle, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_modules_are_part_of_the_snapshot, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_watch_reloads_on_change, setup, teardown),
	};
	return cmocka_run_group_tests_name("routing", tests, NULL, NULL);
}
