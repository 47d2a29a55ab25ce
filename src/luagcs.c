#include "luagcs.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "toggles.h"
#include "murmur3.h"

#ifndef GCS_LUA_MODULE
#include "log.h"

/* src/unleash.lua, the Unleash evaluation, built into the binary. */
__asm__(".section .rodata\n"
        ".balign 16\n"
        ".global gcs_unleash_lua\n"
        "gcs_unleash_lua:\n"
        ".incbin \"src/unleash.lua\"\n"
        "gcs_unleash_lua_end:\n"
        ".balign 8\n"
        ".global gcs_unleash_lua_len\n"
        "gcs_unleash_lua_len:\n"
        ".quad gcs_unleash_lua_end - gcs_unleash_lua\n"
        ".previous\n");
extern const char gcs_unleash_lua[];
extern const uint64_t gcs_unleash_lua_len;
#endif

#define PREPARED_MT "gcs.prepared"

/* ---- hashing and logging ---- */

/* gcs.murmur3(s [, seed]) -> unsigned 32-bit hash as an integer. The seed is
 * taken modulo 2^32, as the SDKs pass it to a uint32 parameter. */
static int l_murmur3(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	lua_Integer seed = luaL_optinteger(L, 2, 0);
	lua_pushinteger(L, (lua_Integer)murmur3_32(s, len, (uint32_t)seed));
	return 1;
}

/* gcs.normalized(id, group_id, normalizer [, seed]): the SDKs'
 * murmur3(group_id .. ":" .. id, seed) % normalizer + 1, without building
 * the joined string in Lua. */
static int l_normalized(lua_State *L)
{
	size_t idlen, glen;
	const char *id = luaL_checklstring(L, 1, &idlen);
	const char *group = luaL_checklstring(L, 2, &glen);
	lua_Integer normalizer = luaL_checkinteger(L, 3);
	lua_Integer seed = luaL_optinteger(L, 4, 0);
	luaL_argcheck(L, normalizer > 0, 3, "must be positive");
	char stack[256];
	size_t n = glen + 1 + idlen;
	char *buf = n <= sizeof(stack) ? stack : lua_newuserdatauv(L, n, 0);
	memcpy(buf, group, glen);
	buf[glen] = ':';
	memcpy(buf + glen + 1, id, idlen);
	uint32_t h = murmur3_32(buf, n, (uint32_t)seed);
	lua_pushinteger(L, (lua_Integer)(h % (uint64_t)normalizer) + 1);
	return 1;
}

static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};

#ifdef GCS_LUA_MODULE
/* Outside the server (busted) there is no log module: plain stderr lines. */
static void write_log(int level, const char *message)
{
	fprintf(stderr, "gcs.log %s: %s\n", level_names[level], message);
}
#else
static void write_log(int level, const char *message)
{
	static const enum log_level levels[] = {LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERROR};
	log_msg(levels[level], message, "source", "routing script", NULL);
}
#endif

/* gcs.log(level, message): level is "debug", "info", "warn" or "error". */
static int l_log(lua_State *L)
{
	int level = luaL_checkoption(L, 1, NULL, level_names);
	const char *message = luaL_checkstring(L, 2);
	write_log(level, message);
	return 0;
}

/* ---- prepared values: userdata that keep their features alive ---- */

enum prepared_kind { PREP_SEMVER, PREP_CIDRS, PREP_REGEX };

struct prepared {
	struct toggles *owner;
	enum prepared_kind kind;
	const void *obj;
	size_t n;
};

static int prepared_gc(lua_State *L)
{
	struct prepared *p = lua_touserdata(L, 1);
	toggles_unref(p->owner);
	p->owner = NULL;
	return 0;
}

static void push_prepared(lua_State *L, struct toggles *owner, enum prepared_kind kind,
                          const void *obj, size_t n)
{
	struct prepared *p = lua_newuserdatauv(L, sizeof(*p), 0);
	p->owner = NULL;
	p->kind = kind;
	p->obj = obj;
	p->n = n;
	if (luaL_newmetatable(L, PREPARED_MT)) {
		lua_pushcfunction(L, prepared_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushliteral(L, "prepared");
		lua_setfield(L, -2, "__metatable");
	}
	lua_setmetatable(L, -2);
	p->owner = toggles_ref(owner);
}

static const struct prepared *check_prepared(lua_State *L, int idx, enum prepared_kind kind)
{
	const struct prepared *p = luaL_checkudata(L, idx, PREPARED_MT);
	static const char *const names[] = {"a prepared version", "prepared ranges",
	                                    "a prepared pattern"};
	luaL_argcheck(L, p->kind == kind && p->owner, idx, names[kind]);
	return p;
}

/* ---- what the evaluation calls per request ---- */

/* gcs.js_number(s) -> JavaScript's Number(s), nil for NaN. */
static int l_js_number(lua_State *L)
{
	double v;
	if (lua_type(L, 1) == LUA_TNUMBER) {
		lua_settop(L, 1);
		return 1;
	}
	const char *s = lua_tostring(L, 1);
	if (s && toggles_js_number(s, &v) && v == v)
		lua_pushnumber(L, v);
	else
		lua_pushnil(L);
	return 1;
}

/* gcs.parse_time(s) -> seconds since the epoch, nil when not a date. */
static int l_parse_time(lua_State *L)
{
	double t;
	const char *s = lua_tostring(L, 1);
	if (s && toggles_parse_time(s, &t))
		lua_pushnumber(L, t);
	else
		lua_pushnil(L);
	return 1;
}

/* gcs.semver_compare(text, version) -> -1, 0, 1, nil when text is none. */
static int l_semver_compare(lua_State *L)
{
	const struct prepared *p = check_prepared(L, 2, PREP_SEMVER);
	const char *s = lua_tostring(L, 1);
	int order;
	if (s && toggles_semver_cmp(s, p->obj, &order))
		lua_pushinteger(L, order < 0 ? -1 : order > 0);
	else
		lua_pushnil(L);
	return 1;
}

/* gcs.cidr_match(ranges, address) -> boolean */
static int l_cidr_match(lua_State *L)
{
	const struct prepared *p = check_prepared(L, 1, PREP_CIDRS);
	const char *s = lua_tostring(L, 2);
	lua_pushboolean(L, s && toggles_cidr_match(p->obj, p->n, s));
	return 1;
}

/* gcs.regex_match(pattern, subject) -> boolean */
static int l_regex_match(lua_State *L)
{
	const struct prepared *p = check_prepared(L, 1, PREP_REGEX);
	size_t len;
	const char *s = lua_tolstring(L, 2, &len);
	lua_pushboolean(L, s && toggles_regex_match(p->obj, s, len));
	return 1;
}

/* gcs.decided(yes): the evaluation of the configured toggle for this call;
 * the host counts it once per routing decision. Outside the server, and
 * in checks, it records nothing. */
static int l_decided(lua_State *L)
{
	struct luagcs_decision *d = lua_touserdata(L, lua_upvalueindex(1));
	if (d) {
		d->made = true;
		d->yes = lua_toboolean(L, 1);
	}
	return 0;
}

/* ---- the prepared toggle as a Lua table (src/unleash.lua's input) ---- */

static void set_str(lua_State *L, const char *key, const char *value)
{
	if (!value)
		return;
	lua_pushstring(L, value);
	lua_setfield(L, -2, key);
}

static void set_num(lua_State *L, const char *key, bool present, double value)
{
	if (!present)
		return;
	lua_pushnumber(L, value);
	lua_setfield(L, -2, key);
}

static void set_bool(lua_State *L, const char *key, bool value)
{
	lua_pushboolean(L, value);
	lua_setfield(L, -2, key);
}

static void push_list(lua_State *L, char *const *v, size_t n)
{
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_pushstring(L, v[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

static void push_set(lua_State *L, char *const *v, size_t n)
{
	lua_createtable(L, 0, (int)n);
	for (size_t i = 0; i < n; i++) {
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, v[i]);
	}
}

static void push_constraint(lua_State *L, struct toggles *f, const struct toggle_constraint *c)
{
	lua_createtable(L, 0, 6);
	set_str(L, "context", c->context);
	set_str(L, "op", toggles_op_name(c->op));
	set_bool(L, "inverted", c->inverted);
	if (c->unusable)
		set_bool(L, "unusable", true);
	if (c->op == FOP_IN || c->op == FOP_NOT_IN) {
		push_set(L, c->values, c->nvalues);
		lua_setfield(L, -2, "set");
	} else if (c->op >= FOP_STR_STARTS_WITH && c->op <= FOP_STR_CONTAINS) {
		set_bool(L, "case_insensitive", c->case_insensitive);
		push_list(L, c->values, c->nvalues);
		lua_setfield(L, -2, "values");
	}
	set_num(L, "number", c->has_number, c->number);
	set_num(L, "date", c->has_date, c->date);
	if (c->semver) {
		push_prepared(L, f, PREP_SEMVER, c->semver, 1);
		lua_setfield(L, -2, "semver");
	}
	if (c->op == FOP_IN_CIDR) {
		push_prepared(L, f, PREP_CIDRS, c->cidrs, c->ncidrs);
		lua_setfield(L, -2, "cidrs");
	}
	if (c->regex) {
		push_prepared(L, f, PREP_REGEX, c->regex, 1);
		lua_setfield(L, -2, "regex");
	}
}

static void push_variants(lua_State *L, const struct toggle_variant *v, size_t n)
{
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 4);
		set_str(L, "name", v[i].name);
		set_num(L, "weight", true, v[i].weight);
		set_str(L, "stickiness", v[i].stickiness);
		if (v[i].payload_type) {
			lua_createtable(L, 0, 2);
			set_str(L, "type", v[i].payload_type);
			set_str(L, "value", v[i].payload_value);
			lua_setfield(L, -2, "payload");
		}
		lua_createtable(L, (int)v[i].noverrides, 0);
		for (size_t k = 0; k < v[i].noverrides; k++) {
			lua_createtable(L, 0, 2);
			set_str(L, "context", v[i].overrides[k].context);
			push_list(L, v[i].overrides[k].values, v[i].overrides[k].nvalues);
			lua_setfield(L, -2, "values");
			lua_rawseti(L, -2, (lua_Integer)k + 1);
		}
		lua_setfield(L, -2, "overrides");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

static void push_strategy(lua_State *L, struct toggles *f, const struct toggle_strategy *s)
{
	lua_createtable(L, 0, 10);
	set_str(L, "name", s->name);
	lua_createtable(L, 0, (int)s->nparams);
	for (size_t i = 0; i < s->nparams; i++) {
		lua_pushstring(L, s->param_values[i]);
		lua_setfield(L, -2, s->param_keys[i]);
	}
	lua_setfield(L, -2, "parameters");
	lua_createtable(L, (int)s->nconstraints, 0);
	for (size_t i = 0; i < s->nconstraints; i++) {
		push_constraint(L, f, &s->constraints[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "constraints");
	if (s->segment_missing)
		set_bool(L, "segment_missing", true);
	set_num(L, "rollout", s->has_rollout, s->rollout);
	set_str(L, "group_id", s->group_id);
	set_str(L, "stickiness", s->stickiness);
	if (s->ids) {
		push_set(L, s->ids, s->nids);
		lua_setfield(L, -2, "ids");
	}
	if (s->cidrs) {
		push_prepared(L, f, PREP_CIDRS, s->cidrs, s->ncidrs);
		lua_setfield(L, -2, "cidrs");
	}
	push_variants(L, s->variants, s->nvariants);
	lua_setfield(L, -2, "variants");
}

/* depth 0: the toggle with its parents; depth 1: a parent, whose own
 * dependencies are listed but not followed (they make the child off). */
static void push_toggle(lua_State *L, struct toggles *f, const struct toggle *t, int depth)
{
	lua_createtable(L, 0, 6);
	set_str(L, "name", t->name);
	set_bool(L, "enabled", t->enabled);
	lua_createtable(L, (int)t->nstrategies, 0);
	for (size_t i = 0; i < t->nstrategies; i++) {
		push_strategy(L, f, &t->strategies[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "strategies");
	push_variants(L, t->variants, t->nvariants);
	lua_setfield(L, -2, "variants");
	lua_createtable(L, (int)t->ndeps, 0);
	for (size_t i = 0; i < t->ndeps; i++) {
		const struct toggle_dependency *d = &t->deps[i];
		lua_createtable(L, 0, 4);
		set_str(L, "feature", d->feature);
		set_bool(L, "enabled", d->enabled);
		if (d->nvariants) {
			push_list(L, d->variants, d->nvariants);
			lua_setfield(L, -2, "variants");
		}
		if (depth == 0 && d->parent) {
			push_toggle(L, f, d->parent, 1);
			lua_setfield(L, -2, "parent");
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "dependencies");
}

void luagcs_push_toggle(lua_State *L, struct toggles *f, const char *name, bool counted)
{
	const struct toggle *t = toggles_find(f, name);
	if (!t) {
		lua_pushnil(L);
		return;
	}
	push_toggle(L, f, t, 0);
	if (counted)
		set_bool(L, "counted", true);
}

/* gcs.features(json [, name]) -> { [name] = toggle }, { problem lines }, or
 * nil and the error: a client API answer prepared as the server prepares
 * it, for tests, tools and scripts that build a toggle by hand. */
static int l_features(lua_State *L)
{
	size_t len;
	const char *body = luaL_checklstring(L, 1, &len);
	const char *name = luaL_optstring(L, 2, NULL);
	char err[512];
	struct toggles *f = toggles_parse(body, len, name, err, sizeof(err));
	if (!f) {
		lua_pushnil(L);
		lua_pushstring(L, err);
		return 2;
	}
	lua_createtable(L, 0, (int)f->ntoggles);
	for (size_t i = 0; i < f->ntoggles; i++) {
		push_toggle(L, f, &f->toggles[i], 0);
		lua_setfield(L, -2, f->toggles[i].name);
	}
	push_list(L, f->problems, f->nproblems);
	toggles_unref(f);
	return 2;
}

static const luaL_Reg funcs[] = {
    {"murmur3", l_murmur3},
    {"normalized", l_normalized},
    {"log", l_log},
    {"js_number", l_js_number},
    {"parse_time", l_parse_time},
    {"semver_compare", l_semver_compare},
    {"cidr_match", l_cidr_match},
    {"regex_match", l_regex_match},
    {"features", l_features},
    {NULL, NULL},
};

static void new_module(lua_State *L, struct luagcs_decision *d)
{
	luaL_newlib(L, funcs);
	lua_pushlightuserdata(L, d);
	lua_pushcclosure(L, l_decided, 1);
	lua_setfield(L, -2, "decided");
}

int luaopen_gcs(lua_State *L)
{
	new_module(L, NULL);
	return 1;
}

#ifndef GCS_LUA_MODULE
static int open_with_decision(lua_State *L)
{
	new_module(L, lua_touserdata(L, lua_upvalueindex(1)));
	return 1;
}

static int open_unleash(lua_State *L)
{
	if (luaL_loadbufferx(L, gcs_unleash_lua, (size_t)gcs_unleash_lua_len, "=unleash.lua",
	                     "t") != LUA_OK)
		return lua_error(L);
	lua_call(L, 0, 1);
	return 1;
}

void luagcs_preload(lua_State *L, struct luagcs_decision *d)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushlightuserdata(L, d);
	lua_pushcclosure(L, open_with_decision, 1);
	lua_setfield(L, -2, "gcs");
	lua_pushcfunction(L, open_unleash);
	lua_setfield(L, -2, "unleash");
	lua_pop(L, 1);
}
#endif
