/* sandbox: the engine alone, with loaders written here, so that the seam
 * between the Lua state and whoever owns the modules is tested on its own:
 * what require asks the loader, what it does with each answer, and where
 * a call's decision lands. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sandbox.h"
#include "unleash_features.h"
#include "unleash_usage.h"
#include "../support/budget.h"

/* A loader over one in-memory module, counting what it was asked. */
struct fake_loader {
	const char *name; /* the one module it knows */
	const char *text; /* its text */
	bool owned;       /* hand over a malloc'd copy, for the sandbox to free */
	int answer;       /* for any other name: 0 (not found) or -1 (failure) */
	const char *why;  /* what it says then */
	int asked;        /* calls */
	char last[64];    /* the last name asked */
};

static int fake_find(void *ud, const char *name, struct sandbox_module *m, char *why, size_t whylen)
{
	struct fake_loader *f = ud;
	f->asked++;
	snprintf(f->last, sizeof(f->last), "%s", name);
	if (!f->name || strcmp(name, f->name) != 0) {
		snprintf(why, whylen, "%s", f->why ? f->why : "not here");
		return f->answer;
	}
	snprintf(m->path, sizeof(m->path), "/fake/%s.lua", name);
	m->len = strlen(f->text);
	if (f->owned) {
		m->owned = strdup(f->text);
		assert_non_null(m->owned);
		m->text = m->owned;
	} else {
		m->text = f->text;
	}
	return 1;
}

struct built {
	struct sandbox *sb;
	enum sandbox_fail kind;
	char err[2048];
};

static struct built build(const char *source, struct fake_loader *f, struct unleash_usage *d)
{
	struct built b = {.sb = NULL};
	struct sandbox_chunk chunk = {.path = "/fake/routing.lua",
	                              .chunkname = "@/fake/routing.lua",
	                              .text = source,
	                              .len = strlen(source)};
	struct sandbox_loader loader = {.find = fake_find, .ud = f};
	b.kind = sandbox_new(&b.sb, &chunk, &loader, d, b.err, sizeof(b.err));
	return b;
}

static struct sandbox *build_ok(const char *source, struct fake_loader *f, struct unleash_usage *d)
{
	struct built b = build(source, f, d);
	if (b.kind != SANDBOX_OK)
		fail_msg("sandbox_new: %s", b.err);
	assert_non_null(b.sb);
	return b.sb;
}

static enum sandbox_fail call(struct sandbox *sb, enum gcs_channel *ch, char *reason,
                              size_t reasonlen, char *err, size_t errlen)
{
	struct route_request req = {
	    .cluster_id = "c-1", .api = "v2", .ocp_version = "4.17.0", .user_agent = "io"};
	struct sandbox_context ctx = {.stable_version = "1.1.3", .canary_version = "1.2.0"};
	assert_int_equal(sandbox_set_context(sb, &ctx, err, errlen), SANDBOX_OK);
	return sandbox_call(sb, &req, ch, reason, reasonlen, err, errlen);
}

/* The route below answers canary when the module gave v = 7. */
static const char uses_module[] = "local gcs = require 'gcs'\n"
                                  "local cjson = require 'cjson'\n"
                                  "local unleash = require 'unleash'\n"
                                  "local m = require 'policy'\n"
                                  "return { route = function()\n"
                                  "  return m.v == 7 and 'canary' or 'stable', 'policy' end }\n";

static void expect_canary_from_module(struct fake_loader *f)
{
	struct sandbox *sb = build_ok(uses_module, f, NULL);
	/* built-in modules never reach the owner's loader */
	assert_int_equal(f->asked, 1);
	assert_string_equal(f->last, "policy");
	enum gcs_channel ch;
	char reason[32], err[512];
	assert_int_equal(call(sb, &ch, reason, sizeof(reason), err, sizeof(err)), SANDBOX_OK);
	assert_int_equal(ch, GCS_CANARY);
	assert_string_equal(reason, "policy");
	sandbox_free(sb);
}

static void test_borrowed_text_is_compiled(void **state)
{
	(void)state;
	struct fake_loader f = {.name = "policy", .text = "return { v = 7 }\n"};
	expect_canary_from_module(&f);
}

/* Under AddressSanitizer a copy the sandbox forgot to free fails the run. */
static void test_owned_text_is_compiled_and_freed(void **state)
{
	(void)state;
	struct fake_loader f = {.name = "policy", .text = "return { v = 7 }\n", .owned = true};
	expect_canary_from_module(&f);
}

static void test_not_found_reaches_the_script(void **state)
{
	(void)state;
	struct fake_loader f = {.answer = 0, .why = "no file /fake/x.lua"};
	struct sandbox *sb = build_ok("local ok, e = pcall(require, 'x')\n"
	                              "assert(not ok)\n"
	                              "assert(e:find(\"module 'x' not found\", 1, true), e)\n"
	                              "assert(e:find('no file /fake/x.lua', 1, true), e)\n"
	                              "return { route = function() return 'stable' end }\n",
	                              &f, NULL);
	assert_int_equal(f.asked, 1);
	sandbox_free(sb);
}

static void test_loader_failure_fails_require(void **state)
{
	(void)state;
	struct fake_loader f = {.answer = -1, .why = "out of memory recording module 'x'"};
	struct built b =
	    build("require 'x'\nreturn { route = function() return 'stable' end }\n", &f, NULL);
	assert_int_equal(b.kind, SANDBOX_ERROR);
	assert_null(b.sb);
	assert_non_null(strstr(b.err, "out of memory recording module 'x'"));
	/* a failure is not "not found": nothing about searching */
	assert_null(strstr(b.err, "not found"));
}

static void test_module_syntax_error_names_its_file(void **state)
{
	(void)state;
	struct fake_loader f = {.name = "bad", .text = "return {\n", .owned = true};
	struct built b =
	    build("require 'bad'\nreturn { route = function() return 'stable' end }\n", &f, NULL);
	assert_int_equal(b.kind, SANDBOX_ERROR);
	assert_non_null(strstr(b.err, "error loading module 'bad' from file '/fake/bad.lua'"));
	assert_non_null(strstr(b.err, "/fake/bad.lua:2:"));
	/* and the script's own line, from the traceback */
	assert_non_null(strstr(b.err, "/fake/routing.lua:1:"));
}

/* Each evaluation of context.unleash is counted in the owner's usage; one
 * the script prepared itself is not. */
static void test_usage_goes_to_the_owner(void **state)
{
	(void)state;
	static const char evaluates[] =
	    "local unleash = require 'unleash'\n"
	    "local own = unleash.prepare { name = 'own', enabled = true, strategies = {} }\n"
	    "return { route = function(q, c)\n"
	    "  unleash.is_enabled(own, {})\n"
	    "  unleash.is_enabled(c.unleash, { userId = q.cluster_id })\n"
	    "  unleash.is_enabled(c.unleash, { userId = 'c-2' })\n"
	    "  unleash.is_enabled(c.unleash, { userId = q.cluster_id })\n"
	    "  return 'stable' end }\n";
	static const char answer[] =
	    "{\"features\":[{\"name\":\"t\",\"enabled\":true,\"strategies\":[{\"name\":"
	    "\"userWithId\",\"parameters\":{\"userIds\":\"c-1\"}}]}]}";
	char err[512], reason[32];
	struct unleash_features *f =
	    unleash_features_parse(answer, strlen(answer), "t", err, sizeof(err));
	assert_non_null(f);
	uint64_t yes, no;
	unleash_usage_take(&yes, &no);
	struct unleash_usage *u = unleash_usage_new();
	struct fake_loader fl = {.answer = 0};
	struct sandbox *sb = build_ok(evaluates, &fl, u);
	struct route_request req = {.cluster_id = "c-1", .api = "v1", .user_agent = "io"};
	struct sandbox_context ctx = {.stable_version = "1.1.3",
	                              .canary_version = "1.2.0",
	                              .features = f,
	                              .feature_name = "t"};
	assert_int_equal(sandbox_set_context(sb, &ctx, err, sizeof(err)), SANDBOX_OK);
	enum gcs_channel ch;
	assert_int_equal(sandbox_call(sb, &req, &ch, reason, sizeof(reason), err, sizeof(err)),
	                 SANDBOX_OK);
	unleash_usage_take(&yes, &no);
	assert_int_equal(yes, 2);
	assert_int_equal(no, 1);
	sandbox_free(sb);
	unleash_usage_free(u);

	/* without a counter, the same script still runs and counts nothing */
	sb = build_ok(evaluates, &fl, NULL);
	assert_int_equal(sandbox_set_context(sb, &ctx, err, sizeof(err)), SANDBOX_OK);
	assert_int_equal(sandbox_call(sb, &req, &ch, reason, sizeof(reason), err, sizeof(err)),
	                 SANDBOX_OK);
	unleash_usage_take(&yes, &no);
	assert_int_equal(yes + no, 0);
	sandbox_free(sb);
	unleash_features_unref(f);
}

/* The SDK's static context: appName and environment come from the
 * server's settings when the evaluated context has none at its top level,
 * before its properties (the SDKs merge their configuration's at the top);
 * the context's own win. Without settings, properties are read. */
static void test_static_context(void **state)
{
	(void)state;
	static const char answer[] =
	    "{\"features\":[{\"name\":\"t\",\"enabled\":true,\"strategies\":[{\"name\":\"default\","
	    "\"constraints\":[{\"contextName\":\"appName\",\"operator\":\"IN\",\"values\":[\"gcs-"
	    "a\"]},"
	    "{\"contextName\":\"environment\",\"operator\":\"IN\",\"values\":[\"prod\"]}]}]}]}";
	static const char source[] =
	    "local unleash = require 'unleash'\n"
	    "local cases = {\n"
	    "  {},\n"
	    "  { appName = 'other' },\n"
	    "  { appName = 'gcs-a', environment = 'prod' },\n"
	    "  { properties = { appName = 'gcs-a', environment = 'prod' } },\n"
	    "}\n"
	    "return { route = function(request, context)\n"
	    "  local r = {}\n"
	    "  for i, ctx in ipairs(cases) do\n"
	    "    r[i] = unleash.is_enabled(context.unleash, ctx) and 'y' or 'n'\n"
	    "  end\n"
	    "  return 'stable', table.concat(r)\n"
	    "end }\n";
	char err[512], reason[32];
	struct unleash_features *f =
	    unleash_features_parse(answer, strlen(answer), "t", err, sizeof(err));
	assert_non_null(f);
	static const struct {
		const char *app_name, *environment, *want;
	} settings[] = {
	    {"gcs-a", "prod", "ynyy"}, /* properties unread: the settings stand first */
	    {"gcs-b", "prod", "nnyn"},
	    {NULL, NULL, "nnyy"}, /* no settings: properties are read */
	};
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		struct fake_loader loader = {.answer = 0};
		struct sandbox *sb = build_ok(source, &loader, NULL);
		struct sandbox_context ctx = {.stable_version = "1.1.3",
		                              .canary_version = "1.2.0",
		                              .app_name = settings[i].app_name,
		                              .environment = settings[i].environment,
		                              .features = f,
		                              .feature_name = "t"};
		assert_int_equal(sandbox_set_context(sb, &ctx, err, sizeof(err)), SANDBOX_OK);
		struct route_request req = {.cluster_id = "c-1", .api = "v1"};
		enum gcs_channel ch;
		assert_int_equal(
		    sandbox_call(sb, &req, &ch, reason, sizeof(reason), err, sizeof(err)),
		    SANDBOX_OK);
		assert_string_equal(reason, settings[i].want);
		sandbox_free(sb);
	}
	unleash_features_unref(f);
}

/* No context at all is an empty one: the static context still gives
 * appName and environment, as the SDKs' isEnabled(name) without one. */
static void test_static_context_without_context(void **state)
{
	(void)state;
	static const char answer[] =
	    "{\"features\":[{\"name\":\"t\",\"enabled\":true,\"strategies\":[{\"name\":\"default\","
	    "\"constraints\":[{\"contextName\":\"appName\",\"operator\":\"IN\",\"values\":[\"gcs-"
	    "a\"]}"
	    "]}]}]}";
	static const char source[] =
	    "local unleash = require 'unleash'\n"
	    "return { route = function(request, context)\n"
	    "  return 'stable', unleash.is_enabled(context.unleash) and 'y' "
	    "or 'n'\n"
	    "end }\n";
	char err[512], reason[32];
	struct unleash_features *f =
	    unleash_features_parse(answer, strlen(answer), "t", err, sizeof(err));
	assert_non_null(f);
	static const struct {
		const char *app_name, *want;
	} settings[] = {{"gcs-a", "y"}, {"gcs-b", "n"}, {NULL, "n"}};
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		struct fake_loader loader = {.answer = 0};
		struct sandbox *sb = build_ok(source, &loader, NULL);
		struct sandbox_context ctx = {.stable_version = "1.1.3",
		                              .canary_version = "1.2.0",
		                              .app_name = settings[i].app_name,
		                              .features = f,
		                              .feature_name = "t"};
		assert_int_equal(sandbox_set_context(sb, &ctx, err, sizeof(err)), SANDBOX_OK);
		struct route_request req = {.cluster_id = "c-1", .api = "v1"};
		enum gcs_channel ch;
		assert_int_equal(
		    sandbox_call(sb, &req, &ch, reason, sizeof(reason), err, sizeof(err)),
		    SANDBOX_OK);
		assert_string_equal(reason, settings[i].want);
		sandbox_free(sb);
	}
	unleash_features_unref(f);
}

/* pairs lists the request's fields (user_agent apart, read on demand),
 * twice in a row alike: the iterator keeps no state of its own. */
static void test_pairs_lists_fields(void **state)
{
	(void)state;
	static const char source[] =
	    "local function list(request)\n"
	    "  local k = {}\n"
	    "  for key, v in pairs(request) do k[#k + 1] = key .. '=' .. v end\n"
	    "  table.sort(k)\n"
	    "  return table.concat(k, ',')\n"
	    "end\n"
	    "return { route = function(request)\n"
	    "  local a, b = list(request), list(request)\n"
	    "  return 'stable', a == b and a or 'differ'\n"
	    "end }\n";
	struct fake_loader f = {.answer = 0};
	struct sandbox *sb = build_ok(source, &f, NULL);
	enum gcs_channel ch;
	char reason[128], err[512];
	assert_int_equal(call(sb, &ch, reason, sizeof(reason), err, sizeof(err)), SANDBOX_OK);
	assert_string_equal(reason, "api=v2,cluster_id=c-1,ocp_version=4.17.0");
	sandbox_free(sb);
}

static void test_failure_kinds(void **state)
{
	(void)state;
	static const struct {
		const char *route;
		enum sandbox_fail kind;
		const char *label;
		const char *says;
		long budget_ms; /* 0: test_budget_ms(), as every other test */
	} cases[] = {
	    {"return 'maybe'", SANDBOX_RESULT, "result", "route returned the string \"maybe\"", 0},
	    {"error('boom')", SANDBOX_ERROR, "error", "/fake/routing.lua:1: boom", 0},
	    {"while true do pcall(function() while true do end end) end", SANDBOX_BUDGET, "budget",
	     "CPU time budget of", 0},
	    /* a budget that cannot come first: doubling a string to 32 MiB is
	     * work in C, which the budget counts, and under a sanitizer on a
	     * loaded machine it can take more than 50 ms */
	    {"local s = 'x' while true do s = s .. s end", SANDBOX_MEMORY, "memory",
	     "memory limit of 32 MiB exceeded", 10000},
	    /* the request table takes no write, whichever way it is tried */
	    {"request.api = 'x'", SANDBOX_ERROR, "error",
	     "/fake/routing.lua:1: request is read-only (copy what you want to change)", 0},
	    {"request.new = 'x'", SANDBOX_ERROR, "error",
	     "/fake/routing.lua:1: request is read-only (copy what you want to change)", 0},
	    {"rawset(request, 'api', 'x')", SANDBOX_ERROR, "error",
	     "/fake/routing.lua:1: request is read-only (copy what you want to change)", 0},
	    {"setmetatable(request, nil)", SANDBOX_ERROR, "error",
	     "/fake/routing.lua:1: cannot change a protected metatable", 0},
	    /* pairs hands out no table to write through: its state is the
	     * proxy itself */
	    {"local _, t = pairs(request) t.api = 'x'", SANDBOX_ERROR, "error",
	     "/fake/routing.lua:1: request is read-only (copy what you want to change)", 0},
	    {"local f, t = pairs(request) rawset(t, 'api', 'x')", SANDBOX_ERROR, "error",
	     "/fake/routing.lua:1: request is read-only (copy what you want to change)", 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char source[256];
		snprintf(source, sizeof(source), "return { route = function(request) %s end }\n",
		         cases[i].route);
		struct fake_loader f = {.answer = 0};
		struct sandbox *sb = build_ok(source, &f, NULL);
		enum gcs_channel ch = GCS_CANARY;
		char reason[32], err[2048];
		sandbox_set_budget(cases[i].budget_ms ? cases[i].budget_ms : test_budget_ms());
		enum sandbox_fail kind = call(sb, &ch, reason, sizeof(reason), err, sizeof(err));
		sandbox_set_budget(test_budget_ms());
		if (kind != cases[i].kind || !strstr(err, cases[i].says))
			fail_msg("%s: got %s: %s", cases[i].route, sandbox_fail_name(kind), err);
		assert_string_equal(sandbox_fail_name(kind), cases[i].label);
		assert_int_equal(ch, GCS_STABLE);
		sandbox_free(sb);
	}
}

int main(void)
{
	log_set_level(LOGL_ERROR);
	sandbox_set_budget(test_budget_ms());
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_borrowed_text_is_compiled),
	    cmocka_unit_test(test_owned_text_is_compiled_and_freed),
	    cmocka_unit_test(test_not_found_reaches_the_script),
	    cmocka_unit_test(test_loader_failure_fails_require),
	    cmocka_unit_test(test_module_syntax_error_names_its_file),
	    cmocka_unit_test(test_usage_goes_to_the_owner),
	    cmocka_unit_test(test_static_context),
	    cmocka_unit_test(test_static_context_without_context),
	    cmocka_unit_test(test_pairs_lists_fields),
	    cmocka_unit_test(test_failure_kinds),
	};
	return cmocka_run_group_tests_name("sandbox", tests, NULL, NULL);
}
