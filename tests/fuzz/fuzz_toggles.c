/* An Unleash client API answer (a poll's body, the bootstrap file, the
 * backup file: one format) through the whole poll path, then each toggle
 * evaluated by the built-in src/unleash.lua with a fuzzed context.
 *
 * Input: the answer, a NUL byte, then the context as lines: userId,
 * sessionId, remoteAddress, environment, appName, currentTime, then
 * name=value properties.
 *
 * Properties: a refused answer says why; parsing is deterministic; keeping
 * one toggle keeps it (and only toggles it depends on); the table Lua gets
 * is that toggle; an evaluation never raises, stays within a decision's
 * bounds (1,000,000 Lua instructions, the harness's deterministic stand-in
 * for the routing script's CPU budget, and the sandbox's 32 MiB of Lua
 * memory), and gives the same answer twice. */
#include <lauxlib.h>
#include <lualib.h>

#include "fuzz.h"
#include "luagcs.h"
#include "toggles.h"

extern int luaopen_cjson(lua_State *L);

/* The routing script's budget per decision (src/routing.c): the whole
 * evaluation of one toggle must fit in it. */
#define DECISION_BUDGET 1000000
#define HOOK_EVERY      1000
/* src/sandbox.c's cap on a routing script's lua_State */
#define DECISION_MEMORY (32u << 20)

static lua_State *L;
static int is_enabled_ref, get_variant_ref;
static long steps;
static size_t lua_used, lua_peak; /* bytes the Lua allocator holds, and the peak */

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		lua_used -= old;
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (p) {
		lua_used = lua_used - old + nsize;
		if (lua_used > lua_peak)
			lua_peak = lua_used;
	}
	return p;
}

static void budget_hook(lua_State *l, lua_Debug *ar)
{
	(void)ar;
	steps += HOOK_EVERY;
	if (steps > DECISION_BUDGET)
		luaL_error(l, "instruction budget exceeded");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	L = lua_newstate(counting_alloc, NULL);
	luaL_openlibs(L);
	luagcs_preload(L, NULL);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, luaopen_cjson);
	lua_setfield(L, -2, "cjson");
	lua_pop(L, 1);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "unleash");
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		fprintf(stderr, "require \"unleash\": %s\n", lua_tostring(L, -1));
		abort();
	}
	lua_getfield(L, -1, "is_enabled");
	is_enabled_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_getfield(L, -1, "get_variant");
	get_variant_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 1);
	return 0;
}

static void push_context(const uint8_t *data, size_t size)
{
	static const char *const fields[] = {"userId",      "sessionId", "remoteAddress",
	                                     "environment", "appName",   "currentTime"};
	lua_createtable(L, 0, 8);
	lua_createtable(L, 0, 4); /* properties */
	for (size_t i = 0; size > 0 || i == 0; i++) {
		const uint8_t *rest;
		size_t rest_size, n = fuzz_split(data, size, '\n', &rest, &rest_size);
		if (i < sizeof(fields) / sizeof(*fields)) {
			lua_pushlstring(L, (const char *)data, n);
			lua_setfield(L, -3, fields[i]);
		} else {
			const uint8_t *value;
			size_t value_size, k = fuzz_split(data, n, '=', &value, &value_size);
			lua_pushlstring(L, (const char *)data, k);
			lua_pushlstring(L, (const char *)value, value_size);
			lua_rawset(L, -3);
		}
		data = rest;
		size = rest_size;
		if (size == 0)
			break;
	}
	lua_setfield(L, -2, "properties");
}

/* Calls fn(toggle, ctx) under the budget with the same random seed each
 * time (gradualRolloutRandom, stickiness random); leaves one result. */
static void evaluate(int fn_ref, int toggle, int ctx, const char *name)
{
	lua_getglobal(L, "math");
	lua_getfield(L, -1, "randomseed");
	lua_pushinteger(L, 7);
	lua_call(L, 1, 0);
	lua_pop(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
	lua_pushvalue(L, toggle);
	lua_pushvalue(L, ctx);
	steps = 0;
	size_t base = lua_used;
	lua_peak = lua_used;
	lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
	int rc = lua_pcall(L, 2, 1, 0);
	lua_sethook(L, NULL, 0, 0);
	FUZZ_CHECK(rc == LUA_OK, "evaluating \"%s\" raised: %s", name, lua_tostring(L, -1));
	FUZZ_CHECK(lua_peak - base <= DECISION_MEMORY,
	           "evaluating \"%s\" took %zu bytes of Lua memory", name, lua_peak - base);
}

/* A variant result as one comparable string. */
static const char *variant_text(int idx)
{
	idx = lua_absindex(L, idx);
	lua_getglobal(L, "string");
	lua_getfield(L, -1, "format");
	lua_remove(L, -2);
	lua_pushliteral(L, "%s|%s|%s|%s|%s");
	lua_getfield(L, idx, "name");
	lua_getfield(L, idx, "enabled");
	lua_getfield(L, idx, "feature_enabled");
	lua_getfield(L, idx, "payload");
	if (lua_istable(L, -1)) {
		lua_getfield(L, -1, "type");
		lua_getfield(L, -2, "value");
		lua_remove(L, -3);
	} else {
		lua_pushnil(L);
	}
	for (int i = -5; i <= -1; i++) {
		luaL_tolstring(L, i, NULL);
		lua_replace(L, i - 1);
	}
	lua_call(L, 6, 1);
	return lua_tostring(L, -1);
}

static void check_toggle(struct toggles *f, const char *name, const uint8_t *ctx, size_t ctx_size)
{
	int top = lua_gettop(L);
	luagcs_push_toggle(L, f, name, false);
	FUZZ_CHECK(lua_istable(L, -1), "Lua got no table for kept toggle \"%s\"", name);
	lua_getfield(L, -1, "name");
	FUZZ_CHECK(lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), name) == 0,
	           "Lua got another toggle than \"%s\"", name);
	lua_pop(L, 1);
	int toggle = lua_gettop(L);
	push_context(ctx, ctx_size);
	int context = lua_gettop(L);

	evaluate(is_enabled_ref, toggle, context, name);
	int first = lua_toboolean(L, -1);
	evaluate(is_enabled_ref, toggle, context, name);
	FUZZ_CHECK(lua_toboolean(L, -1) == first, "\"%s\": two evaluations disagree", name);
	evaluate(get_variant_ref, toggle, context, name);
	const char *v1 = variant_text(-1);
	evaluate(get_variant_ref, toggle, context, name);
	const char *v2 = variant_text(-1);
	FUZZ_CHECK(strcmp(v1, v2) == 0, "\"%s\": two variants disagree: %s, %s", name, v1, v2);
	FUZZ_CHECK(!first || strncmp(v1, "disabled|false|false", 20) != 0,
	           "\"%s\" is enabled but its variant says the feature is off: %s", name, v1);
	lua_settop(L, top);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *ctx;
	size_t ctx_size, body_size = fuzz_split(data, size, '\0', &ctx, &ctx_size);
	const char *body = (const char *)data;
	char err[512] = "";
	struct toggles *all = toggles_parse(body, body_size, NULL, err, sizeof(err));
	if (!all) {
		FUZZ_CHECK(err[0], "refused without a reason");
		return 0;
	}
	char err2[512] = "";
	struct toggles *again = toggles_parse(body, body_size, NULL, err2, sizeof(err2));
	FUZZ_CHECK(again && again->ntoggles == all->ntoggles && again->nproblems == all->nproblems,
	           "two parses of one answer disagree");
	for (size_t i = 0; i < all->nproblems; i++)
		FUZZ_CHECK(strcmp(all->problems[i], again->problems[i]) == 0,
		           "two parses list other problems");
	toggles_unref(again);

	for (size_t i = 0; i < all->ntoggles; i++) {
		const char *name = all->toggles[i].name;
		FUZZ_CHECK(toggles_find(all, name) != NULL, "\"%s\" parsed but not found", name);
		struct toggles *one = toggles_parse(body, body_size, name, err, sizeof(err));
		FUZZ_CHECK(one, "\"%s\" parses with every toggle but not alone: %s", name, err);
		const struct toggle *t = toggles_find(one, name);
		FUZZ_CHECK(t, "keeping \"%s\" lost it", name);
		FUZZ_CHECK(one->ntoggles <= 1 + t->ndeps, "keeping \"%s\" kept %zu toggles", name,
		           one->ntoggles);
		check_toggle(one, name, ctx, ctx_size);
		toggles_unref(one);
		if (i >= 8) /* enough evaluations per input; parsing covered the rest */
			break;
	}
	toggles_unref(all);
	/* Lua sees only the small userdata holding each prepared state, not
	 * the state itself: collect now so that every input's memory is freed
	 * before the next (and libFuzzer's leak check sees it freed). */
	lua_gc(L, LUA_GCCOLLECT);
	return 0;
}
