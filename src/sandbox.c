#include "sandbox.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua-cjson.h>

#include "log.h"
#include "lualimits.h"
#include "luagcs.h"
#include "unleash_lua.h"

/* lua-cjson's header names only the main entry point. */
extern int luaopen_cjson_safe(lua_State *L);

enum {
	REQUEST_FIELDS = 4, /* fields set in the request table for each call */
};

static const char *const fail_names[SANDBOX_FAILS] = {"error", "budget", "memory", "result"};

struct sandbox {
	lua_State *L;
	struct sandbox_chunk chunk;
	struct sandbox_loader loader;
	int route_ref;
	int module_ref;
	int ctx_ref;
	int request_ref;                  /* the request table scripts get, a proxy */
	int fields_ref;                   /* the fields it reads through, refilled for each call */
	int request_keys[REQUEST_FIELDS]; /* its field names, interned once */
	struct {                          /* the text each field of the table holds */
		size_t len;               /* SIZE_MAX: not known, set it */
		char text[64];
	} held[REQUEST_FIELDS];
	const struct route_request *req; /* during a call: the request, for user_agent */
	const char *channel_names[2];    /* "stable", "canary", as this state interned them */
	struct unleash_usage *usage;     /* the owner's: counts the configured feature */
};

const char *sandbox_fail_name(enum sandbox_fail kind)
{
	return kind >= 0 && kind < SANDBOX_FAILS ? fail_names[kind] : "none";
}

/* The CPU budget and the memory cap are lualimits.h's: each call runs between
 * lualimits_reset and lualimits_done, and a failed one is classified by the limit
 * it crossed. */

void sandbox_set_budget(long ms)
{
	lualimits_set_budget(ms);
}

static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

static enum sandbox_fail classify(lua_State *L, int status, bool bad_result)
{
	enum lualimits_over over = lualimits_crossed(L);
	if (over == LUALIMITS_OVER_BUDGET)
		return SANDBOX_BUDGET;
	if (over == LUALIMITS_OVER_MEMORY || status == LUA_ERRMEM)
		return SANDBOX_MEMORY;
	if (status == LUA_OK)
		return SANDBOX_OK;
	return bad_result ? SANDBOX_RESULT : SANDBOX_ERROR;
}

static void copy_error(lua_State *L, int idx, char *err, size_t errlen)
{
	const char *msg = lua_tostring(L, idx);
	snprintf(err, errlen, "%s", msg ? msg : "(error object is not a string)");
}

/* Runs fn protected with one light userdata argument; the budget starts
 * anew. On failure err gets the message. */
static enum sandbox_fail run_protected(lua_State *L, lua_CFunction fn, void *arg, char *err,
                                       size_t errlen)
{
	lualimits_reset(L);
	lua_pushcfunction(L, fn);
	lua_pushlightuserdata(L, arg);
	int status = lua_pcall(L, 1, 0, 0);
	enum sandbox_fail kind = classify(L, status, false);
	lualimits_done(L);
	if (kind != SANDBOX_OK)
		copy_error(L, -1, err, errlen);
	lua_settop(L, 0);
	return kind;
}

/* ---- the libraries a script may use ---- */

static int sandbox_print(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	log_msg(LOGL_INFO, lua_tostring(L, -1), "source", "routing script", NULL);
	return 0;
}

static int request_read_only(lua_State *L)
{
	return luaL_error(L, "request is read-only (copy what you want to change)");
}

/* rawset(t, k, v), except on the request table. */
static int sandbox_rawset(lua_State *L)
{
	struct sandbox *sb = lua_touserdata(L, lua_upvalueindex(2));
	lua_rawgeti(L, LUA_REGISTRYINDEX, sb->request_ref);
	if (lua_rawequal(L, 1, -1))
		return request_read_only(L);
	lua_pop(L, 1);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
	return lua_gettop(L);
}

/* load() that never accepts precompiled chunks: bytecode can break the VM. */
static int sandbox_load(lua_State *L)
{
	bool has_env = lua_gettop(L) >= 4;
	lua_settop(L, 4);
	int n = 4;
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_pushliteral(L, "t");
	if (has_env)
		lua_pushvalue(L, 4);
	lua_call(L, has_env ? 4 : 3, LUA_MULTRET);
	return lua_gettop(L) - n;
}

/* package.searchers entry: the owner's loader is the only place modules
 * other than the built-in ones come from. */
static int owner_searcher(lua_State *L)
{
	struct sandbox *sb = lua_touserdata(L, lua_upvalueindex(1));
	const char *name = luaL_checkstring(L, 1);
	struct sandbox_module m = {.owned = NULL};
	char why[512];
	int found = sb->loader.find(sb->loader.ud, name, &m, why, sizeof(why));
	if (found < 0)
		return luaL_error(L, "%s", why);
	if (found == 0) {
		lua_pushstring(L, why);
		return 1;
	}
	/* The chunk name is built outside Lua: nothing may raise between the
	 * loader's allocation and its release. */
	char chunkname[sizeof(m.path) + 1];
	snprintf(chunkname, sizeof(chunkname), "@%s", m.path);
	int status = luaL_loadbufferx(L, m.text, m.len, chunkname, "t");
	free(m.owned);
	if (status != LUA_OK)
		return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name,
		                  m.path, lua_tostring(L, -1));
	lua_pushstring(L, m.path);
	return 2;
}

static void preload(lua_State *L, const char *name, lua_CFunction open)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, open);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
}

static void open_lib(lua_State *L, const char *name, lua_CFunction open)
{
	luaL_requiref(L, name, open, 1);
	lua_pop(L, 1);
}

/* os: only the clocks. */
static void open_os_clocks(lua_State *L)
{
	luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
	lua_createtable(L, 0, 2);
	lua_getfield(L, -2, "time");
	lua_setfield(L, -2, "time");
	lua_getfield(L, -2, "clock");
	lua_setfield(L, -2, "clock");
	lua_pushvalue(L, -1);
	lua_setglobal(L, LUA_OSLIBNAME);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	lua_insert(L, -2);
	lua_setfield(L, -2, LUA_OSLIBNAME);
	lua_pop(L, 2);
}

/* require: the built-in modules (preload), then the owner's loader. */
static void restrict_package(lua_State *L, struct sandbox *sb)
{
	lua_getglobal(L, LUA_LOADLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "loadlib");
	lua_pushnil(L);
	lua_setfield(L, -2, "searchpath");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "path");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "cpath");
	lua_createtable(L, 2, 0);
	lua_getfield(L, -2, "searchers");
	lua_rawgeti(L, -1, 1); /* the preload searcher */
	lua_rawseti(L, -3, 1);
	lua_pop(L, 1);
	lua_pushlightuserdata(L, sb);
	lua_pushcclosure(L, owner_searcher, 1);
	lua_rawseti(L, -2, 2);
	lua_setfield(L, -2, "searchers");
	lua_pop(L, 1);
}

/* The two answers of route, interned and kept for the life of the state,
 * so that a call's result is told by its address. */
static void intern_channel_names(lua_State *L, struct sandbox *sb)
{
	for (int i = 0; i < 2; i++) {
		sb->channel_names[i] = lua_pushstring(L, route_channel_name((enum gcs_channel)i));
		luaL_ref(L, LUA_REGISTRYINDEX);
	}
}

/* Runs protected (memory errors): arg 1 is the sandbox. */
static int open_sandbox(lua_State *L)
{
	struct sandbox *sb = lua_touserdata(L, 1);

	open_lib(L, LUA_GNAME, luaopen_base);
	open_lib(L, LUA_LOADLIBNAME, luaopen_package);
	open_lib(L, LUA_STRLIBNAME, luaopen_string);
	open_lib(L, LUA_TABLIBNAME, luaopen_table);
	open_lib(L, LUA_MATHLIBNAME, luaopen_math);
	open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
	open_os_clocks(L);

	lua_pushglobaltable(L);
	lua_pushnil(L);
	lua_setfield(L, -2, "dofile");
	lua_pushnil(L);
	lua_setfield(L, -2, "loadfile");
	lua_getfield(L, -1, "load");
	lua_pushcclosure(L, sandbox_load, 1);
	lua_setfield(L, -2, "load");
	lua_pushcfunction(L, sandbox_print);
	lua_setfield(L, -2, "print");
	lua_getfield(L, -1, "rawset");
	lua_pushlightuserdata(L, sb);
	lua_pushcclosure(L, sandbox_rawset, 2);
	lua_setfield(L, -2, "rawset");
	lua_pop(L, 1);

	restrict_package(L, sb);
	intern_channel_names(L, sb);
	luagcs_preload(L);
	unleash_lua_preload(L, sb->usage);
	preload(L, "cjson", luaopen_cjson);
	preload(L, "cjson.safe", luaopen_cjson_safe);
	return 0;
}

/* ---- building ---- */

/* Runs protected: the chunk's result is arg 1. */
static int check_module(lua_State *L)
{
	struct sandbox *sb = lua_touserdata(L, lua_upvalueindex(1));
	if (!lua_istable(L, 1))
		return luaL_error(L, "%s: must return a table with a function route, returned %s",
		                  sb->chunk.path, luaL_typename(L, 1));
	if (lua_getfield(L, 1, "route") != LUA_TFUNCTION)
		return luaL_error(L, "%s: the returned table has no function route (route is %s)",
		                  sb->chunk.path, luaL_typename(L, -1));
	sb->route_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, 1);
	sb->module_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	if (sb->L)
		lualimits_state_close(sb->L);
	free(sb);
}

/* Runs the chunk and keeps its route; the sandbox's libraries are open. */
static enum sandbox_fail run_chunk(struct sandbox *sb, char *err, size_t errlen)
{
	lua_State *L = sb->L;
	const struct sandbox_chunk *c = &sb->chunk;
	lua_pushcfunction(L, traceback);
	int status = luaL_loadbufferx(L, c->text, c->len, c->chunkname, "t");
	if (status != LUA_OK) {
		/* a syntax error: the message already reads "path:line: why" */
		enum sandbox_fail kind = classify(L, status, false);
		copy_error(L, -1, err, errlen);
		return kind == SANDBOX_OK ? SANDBOX_ERROR : kind;
	}
	status = lua_pcall(L, 0, 1, 1);
	enum sandbox_fail kind = classify(L, status, false);
	if (kind != SANDBOX_OK) {
		copy_error(L, -1, err, errlen);
		return kind;
	}
	lua_pushlightuserdata(L, sb);
	lua_pushcclosure(L, check_module, 1);
	lua_insert(L, -2);
	status = lua_pcall(L, 1, 0, 1);
	kind = classify(L, status, false);
	if (kind != SANDBOX_OK) {
		copy_error(L, -1, err, errlen);
		return kind;
	}
	lua_settop(L, 0);
	return SANDBOX_OK;
}

enum sandbox_fail sandbox_new(struct sandbox **out, const struct sandbox_chunk *chunk,
                              const struct sandbox_loader *loader, struct unleash_usage *usage,
                              char *err, size_t errlen)
{
	*out = NULL;
	struct sandbox *sb = calloc(1, sizeof(*sb));
	lua_State *L = sb ? lualimits_state_new() : NULL;
	if (!L) {
		snprintf(err, errlen, "%s: cannot create a Lua state", chunk->path);
		free(sb);
		return SANDBOX_MEMORY;
	}
	sb->L = L;
	sb->chunk = *chunk;
	sb->loader = *loader;
	sb->usage = usage;
	sb->route_ref = sb->module_ref = sb->ctx_ref = sb->request_ref = sb->fields_ref = LUA_NOREF;
	/* Each call leaves a little young garbage (the request table, the
	 * strings a script builds): the generational collector suits that. */
	lua_gc(L, LUA_GCGEN, 0, 0);

	/* One budget for opening and the chunk. */
	lualimits_reset(L);
	enum sandbox_fail kind = run_protected(L, open_sandbox, sb, err, errlen);
	if (kind == SANDBOX_OK)
		kind = run_chunk(sb, err, errlen);
	lualimits_done(L);
	if (kind != SANDBOX_OK) {
		sandbox_free(sb);
		return kind;
	}
	*out = sb;
	return SANDBOX_OK;
}

/* ---- context and calls ---- */

static void set_string_field(lua_State *L, const char *key, const char *value)
{
	if (!value)
		return;
	lua_pushstring(L, value);
	lua_setfield(L, -2, key);
}

struct ctx_args {
	struct sandbox *sb;
	const struct sandbox_context *ctx;
};

/* Runs protected: builds the context table for one generation. */
static int build_context(lua_State *L)
{
	struct ctx_args *a = lua_touserdata(L, 1);
	const struct sandbox_context *c = a->ctx;
	lua_createtable(L, 0, 5);
	set_string_field(L, "stable_version", c->stable_version);
	set_string_field(L, "canary_version", c->canary_version ? c->canary_version : "none");
	set_string_field(L, "app_name", c->app_name);
	set_string_field(L, "environment", c->environment);
	unleash_lua_set_static(L, c->app_name, c->environment);
	if (c->features) {
		unleash_lua_push(L, c->features, c->feature_name, true);
		lua_setfield(L, -2, "unleash");
	}
	luaL_unref(L, LUA_REGISTRYINDEX, a->sb->ctx_ref);
	a->sb->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

enum sandbox_fail sandbox_set_context(struct sandbox *sb, const struct sandbox_context *ctx,
                                      char *err, size_t errlen)
{
	struct ctx_args a = {.sb = sb, .ctx = ctx};
	return run_protected(sb->L, build_context, &a, err, errlen);
}

struct call_args {
	struct sandbox *sb;
	const struct route_request *req; /* NULL: request and context at req_idx, ctx_idx */
	int req_idx, ctx_idx;
	enum gcs_channel channel;
	char *reason;
	size_t reasonlen;
	bool bad_result;
};

/* The request's fields (scripts/README.md) that push_request sets. The
 * User-Agent is read on demand (request_index): it is the one long string
 * of a request, and Lua allocates and collects each long string, while
 * the routing scripts gcs ships never read it. */
static const char *const request_fields[REQUEST_FIELDS] = {"cluster_id", "api", "ocp_version",
                                                           "remote_addr"};

/* __index of the request's fields: user_agent, while the call runs. */
static int request_index(lua_State *L)
{
	const struct sandbox *sb = lua_touserdata(L, lua_upvalueindex(1));
	const char *key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
	if (sb->req && sb->req->user_agent && key && strcmp(key, "user_agent") == 0)
		lua_pushstring(L, sb->req->user_agent);
	else
		lua_pushnil(L);
	return 1;
}

/* next() over the fields (upvalue 1), whatever a script made of the
 * global next; its state argument, the proxy, is not read. */
static int request_next(lua_State *L)
{
	lua_settop(L, 2);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 2);
	if (lua_next(L, -2))
		return 2;
	lua_pushnil(L);
	return 1;
}

/* __pairs of the request table: the fields it reads through. The state
 * handed out is the proxy, never the fields table, which a script could
 * write through. */
static int request_pairs(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushcclosure(L, request_next, 1);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

/* The request table scripts get is an empty proxy: a read goes through
 * __index to the fields (sb->fields_ref), which only push_request writes,
 * and every write, to a field it has as to a new one, meets __newindex.
 * __metatable keeps the metatable, and with it the fields, out of reach,
 * and the sandbox's rawset (sandbox_rawset) refuses the proxy. */
static void new_request_table(struct sandbox *sb, lua_State *L)
{
	lua_createtable(L, 0, REQUEST_FIELDS); /* the fields */
	lua_createtable(L, 0, 1);
	lua_pushlightuserdata(L, sb);
	lua_pushcclosure(L, request_index, 1);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
	lua_pushvalue(L, -1);
	sb->fields_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	lua_createtable(L, 0, 0); /* the proxy */
	lua_createtable(L, 0, 4);
	lua_pushvalue(L, -3);
	lua_setfield(L, -2, "__index");
	lua_pushvalue(L, -3);
	lua_pushcclosure(L, request_pairs, 1);
	lua_setfield(L, -2, "__pairs");
	lua_pushcfunction(L, request_read_only);
	lua_setfield(L, -2, "__newindex");
	lua_pushboolean(L, false);
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	sb->request_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	for (int i = 0; i < REQUEST_FIELDS; i++) {
		lua_pushstring(L, request_fields[i]);
		sb->request_keys[i] = luaL_ref(L, LUA_REGISTRYINDEX);
		sb->held[i].len = SIZE_MAX;
	}
}

/* One request table per state, refilled for each call: a table less to
 * make and collect per request is a sixth of a decision's cost, and its
 * keys are interned once, not per request. No script can write the fields,
 * so one that already holds this request's text (the API, the OCP version
 * and the address mostly repeat) is left as it is; every other is set
 * again, its length known, so past the cache lua_pushstring keeps for text
 * it saw at the same address. Leaves the proxy on the stack. */
static void push_request(struct sandbox *sb, lua_State *L, const struct route_request *req)
{
	if (lua_rawgeti(L, LUA_REGISTRYINDEX, sb->fields_ref) != LUA_TTABLE) {
		lua_pop(L, 1);
		new_request_table(sb, L);
	}
	const char *values[REQUEST_FIELDS] = {req->cluster_id, req->api, req->ocp_version,
	                                      req->remote_addr};
	for (int i = 0; i < REQUEST_FIELDS; i++) {
		const char *text = values[i];
		size_t held = sb->held[i].len; /* SIZE_MAX: nil or too long, set again */
		if (text && held != SIZE_MAX && strncmp(sb->held[i].text, text, held) == 0 &&
		    text[held] == '\0')
			continue;
		size_t len = text ? strlen(text) : SIZE_MAX;
		lua_rawgeti(L, LUA_REGISTRYINDEX, sb->request_keys[i]);
		if (text)
			lua_pushlstring(L, text, len);
		else
			lua_pushnil(L);
		lua_rawset(L, -3);
		bool fits = len < sizeof(sb->held[i].text);
		if (fits)
			memcpy(sb->held[i].text, text, len);
		sb->held[i].len = fits ? len : SIZE_MAX;
	}
	lua_pop(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, sb->request_ref);
	sb->req = req;
}

/* "file:line:" of the route function's definition: a bad result has no
 * line of its own to blame. */
static const char *route_where(lua_State *L, int route_ref)
{
	lua_Debug ar;
	lua_rawgeti(L, LUA_REGISTRYINDEX, route_ref);
	if (!lua_getinfo(L, ">S", &ar) || ar.linedefined <= 0)
		return lua_pushliteral(L, "");
	return lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.linedefined);
}

static const char *describe_value(lua_State *L, int idx)
{
	if (lua_type(L, idx) == LUA_TSTRING)
		return lua_pushfstring(L, "the string \"%s\"", lua_tostring(L, idx));
	return lua_pushfstring(L, "a %s value", luaL_typename(L, idx));
}

/* Runs protected with the traceback handler: one call of route, its result
 * checked. Everything that allocates happens in here. */
static int call_glue(lua_State *L)
{
	struct call_args *a = lua_touserdata(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->sb->route_ref);
	if (a->req) {
		push_request(a->sb, L, a->req);
		lua_rawgeti(L, LUA_REGISTRYINDEX, a->sb->ctx_ref);
	} else {
		lua_pushvalue(L, 2);
		lua_pushvalue(L, 3);
	}
	lua_call(L, 2, 2);
	int ch = lua_absindex(L, -2);
	int why = lua_absindex(L, -1);
	const char *text = lua_type(L, ch) == LUA_TSTRING ? lua_tostring(L, ch) : NULL;
	/* Short strings are interned: the script's "stable" is this state's. */
	const char *const *names = a->sb->channel_names;
	if (text && (text == names[GCS_STABLE] || strcmp(text, ROUTE_STABLE) == 0)) {
		a->channel = GCS_STABLE;
	} else if (text && (text == names[GCS_CANARY] || strcmp(text, ROUTE_CANARY) == 0)) {
		a->channel = GCS_CANARY;
	} else {
		a->bad_result = true;
		return luaL_error(L, "%sroute returned %s, not \"stable\" or \"canary\"",
		                  route_where(L, a->sb->route_ref), describe_value(L, ch));
	}
	if (!lua_isnil(L, why) && lua_type(L, why) != LUA_TSTRING) {
		a->bad_result = true;
		return luaL_error(L, "%sroute returned %s as the reason, not a string",
		                  route_where(L, a->sb->route_ref), describe_value(L, why));
	}
	if (a->reasonlen > 0) {
		size_t n = 0;
		const char *reason = lua_isnil(L, why) ? "" : lua_tolstring(L, why, &n);
		if (n >= a->reasonlen)
			n = a->reasonlen - 1;
		memcpy(a->reason, reason, n);
		a->reason[n] = '\0';
	}
	return 0;
}

/* Calls route as a says; channel gets the checked result. */
static enum sandbox_fail call_route(struct call_args *a, enum gcs_channel *channel, char *err,
                                    size_t errlen)
{
	struct sandbox *sb = a->sb;
	lua_State *L = sb->L;
	if (!lua_checkstack(L, 8)) {
		snprintf(err, errlen, "%s: Lua stack exhausted", sb->chunk.path);
		return SANDBOX_MEMORY;
	}
	int base = lua_gettop(L);
	lualimits_reset(L);
	lua_pushcfunction(L, traceback);
	lua_pushcfunction(L, call_glue);
	lua_pushlightuserdata(L, a);
	if (!a->req) {
		lua_pushvalue(L, a->req_idx);
		lua_pushvalue(L, a->ctx_idx);
	}
	int status = lua_pcall(L, a->req ? 1 : 3, 0, base + 1);
	sb->req = NULL;
	enum sandbox_fail kind = classify(L, status, a->bad_result);
	lualimits_done(L);
	if (status == LUA_ERRMEM)
		/* Lua skips the message handler for memory errors: no traceback,
		 * and the stack is gone, so say at least which limit and where. */
		snprintf(err, errlen, "%s: memory limit of %d MiB exceeded", sb->chunk.path,
		         (int)(LUALIMITS_MEMORY >> 20));
	else if (kind != SANDBOX_OK)
		copy_error(L, -1, err, errlen);
	lua_settop(L, base);
	*channel = a->channel;
	return kind;
}

enum sandbox_fail sandbox_call(struct sandbox *sb, const struct route_request *req,
                               enum gcs_channel *channel, char *reason, size_t reasonlen, char *err,
                               size_t errlen)
{
	struct call_args a = {
	    .sb = sb, .req = req, .channel = GCS_STABLE, .reason = reason, .reasonlen = reasonlen};
	return call_route(&a, channel, err, errlen);
}

/* ---- the module's own examples ---- */

static bool is_channel(const char *s)
{
	return s && (strcmp(s, ROUTE_STABLE) == 0 || strcmp(s, ROUTE_CANARY) == 0);
}

/* Copies the fields of the table on top into the table at dst. */
static void copy_fields(lua_State *L, int dst)
{
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, dst);
	}
}

/* Pushes the context of examples[i]: the published fields, no toggle, the
 * example's own context over them. ex is the example's index. */
static void push_example_context(lua_State *L, struct sandbox *sb, int ex, int i)
{
	lua_newtable(L);
	int ctx = lua_gettop(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, sb->ctx_ref);
	copy_fields(L, ctx);
	lua_pop(L, 1);
	lua_pushnil(L);
	lua_setfield(L, ctx, "unleash");
	int type = lua_getfield(L, ex, "context");
	if (type == LUA_TTABLE)
		copy_fields(L, ctx);
	else if (type != LUA_TNIL)
		luaL_error(L, "%s: examples[%d].context must be a table", sb->chunk.path, i);
	lua_pop(L, 1);
}

/* Runs protected: checks module.examples, a list of
 * {request = {...}, context = {...} or nil, expect = "stable"|"canary"}. */
static int check_examples(lua_State *L)
{
	struct sandbox *sb = lua_touserdata(L, 1);
	const char *path = sb->chunk.path;
	lua_rawgeti(L, LUA_REGISTRYINDEX, sb->module_ref);
	int type = lua_getfield(L, -1, "examples");
	if (type == LUA_TNIL)
		return 0;
	if (type != LUA_TTABLE)
		return luaL_error(L, "%s: examples must be a list, not a %s", path,
		                  luaL_typename(L, -1));
	int examples = lua_gettop(L);
	lua_Integer n = luaL_len(L, examples);
	for (lua_Integer i = 1; i <= n; i++) {
		int top = lua_gettop(L);
		if (lua_geti(L, examples, i) != LUA_TTABLE)
			return luaL_error(L, "%s: examples[%d] must be a table", path, (int)i);
		int ex = lua_gettop(L);
		if (lua_getfield(L, ex, "request") != LUA_TTABLE)
			return luaL_error(L, "%s: examples[%d].request must be a table", path,
			                  (int)i);
		int req = lua_gettop(L);
		lua_getfield(L, ex, "expect");
		const char *expect = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
		if (!is_channel(expect))
			return luaL_error(
			    L, "%s: examples[%d].expect must be \"stable\" or \"canary\"", path,
			    (int)i);
		push_example_context(L, sb, ex, (int)i);

		enum gcs_channel got;
		char reason[256];
		char err[1024];
		struct call_args call = {.sb = sb,
		                         .req_idx = req,
		                         .ctx_idx = lua_gettop(L),
		                         .channel = GCS_STABLE,
		                         .reason = reason,
		                         .reasonlen = sizeof(reason)};
		enum sandbox_fail kind = call_route(&call, &got, err, sizeof(err));
		if (kind != SANDBOX_OK)
			return luaL_error(L, "examples[%d]: %s", (int)i, err);
		const char *got_name = route_channel_name(got);
		if (strcmp(got_name, expect) != 0)
			return luaL_error(L,
			                  "%s: examples[%d]: expected %s, route returned %s (%s)",
			                  path, (int)i, expect, got_name, reason);
		lua_settop(L, top);
	}
	return 0;
}

int sandbox_check_examples(struct sandbox *sb, char *err, size_t errlen)
{
	lualimits_reset(sb->L);
	lua_pushcfunction(sb->L, check_examples);
	lua_pushlightuserdata(sb->L, sb);
	int status = lua_pcall(sb->L, 1, 0, 0);
	lualimits_done(sb->L);
	if (status != LUA_OK) {
		copy_error(sb->L, -1, err, errlen);
		lua_settop(sb->L, 0);
		return -1;
	}
	return 0;
}
