/* unleash_lua: prepared features as Lua values, evaluated in C. */
#include "unleash_lua.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unleash_features.h"
#include "unleash_eval.h"
#include "unleash_usage.h"

#define HANDLE_MT "unleash.feature"

/* A prepared feature is a table a script may read (its fields describe the
 * feature); the evaluation finds the C feature through a handle stored in
 * it under this key, which no script can name. */
static const char handle_key;

struct handle {
	const void *magic;              /* &handle_key: tells a handle from any other userdata */
	struct unleash_features *owner; /* a reference: keeps t alive */
	const struct unleash_feature *t;
	bool counted;
};

static int handle_gc(lua_State *L)
{
	struct handle *h = lua_touserdata(L, 1);
	unleash_features_unref(h->owner);
	h->owner = NULL;
	return 0;
}

/* Pushes the Lua key of each context field f numbers (at number + 1),
 * once per answer: every handle of it carries that table as its user
 * value, so the evaluation reads a field without making its key from the C
 * name. */
static void push_keys(lua_State *L, const struct unleash_features *f)
{
	lua_createtable(L, (int)f->nfields, 0);
	for (size_t i = 0; i < f->nfields; i++) {
		lua_pushstring(L, f->fields[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

/* keys: the stack index of push_keys's table for f. */
static void push_handle(lua_State *L, struct unleash_features *f, int keys,
                        const struct unleash_feature *t, bool counted)
{
	struct handle *h = lua_newuserdatauv(L, sizeof(*h), 1);
	*h = (struct handle){.magic = &handle_key, .owner = NULL, .t = t, .counted = counted};
	if (luaL_newmetatable(L, HANDLE_MT)) {
		lua_pushcfunction(L, handle_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushliteral(L, "prepared");
		lua_setfield(L, -2, "__metatable");
	}
	lua_setmetatable(L, -2);
	lua_pushvalue(L, keys);
	lua_setiuservalue(L, -2, 1);
	h->owner = unleash_features_ref(f);
}

/* The handle of the feature at idx; NULL for anything else. Only this
 * file makes a userdata of that size with that mark, and no script can
 * write one's bytes: the mark is as good as the metatable, and does not
 * cost a lookup of it in the registry on every call. */
static const struct handle *handle_of(lua_State *L, int idx)
{
	if (lua_type(L, idx) != LUA_TTABLE)
		return NULL;
	const struct handle *h = NULL;
	if (lua_rawgetp(L, idx, &handle_key) == LUA_TUSERDATA &&
	    lua_rawlen(L, -1) == sizeof(struct handle))
		h = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return h && h->magic == &handle_key && h->owner ? h : NULL;
}

/* ---- the feature as a table: a description, not a contract ---- */

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

static void push_constraint(lua_State *L, const struct unleash_constraint *c)
{
	lua_createtable(L, 0, 6);
	set_str(L, "context", c->context);
	set_str(L, "op", unleash_op_name(c->op));
	set_bool(L, "inverted", c->inverted);
	set_bool(L, "case_insensitive", c->case_insensitive);
	if (c->unusable)
		set_str(L, "unusable", c->unusable);
	push_list(L, c->values, c->nvalues);
	lua_setfield(L, -2, "values");
	set_num(L, "number", c->has_number, c->number);
	set_num(L, "date", c->has_date, c->date);
	set_str(L, "version", c->semver ? c->semver->text : NULL);
}

static void push_variants(lua_State *L, const struct unleash_variant *v, size_t n)
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

static void push_strategy(lua_State *L, const struct unleash_strategy *s)
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
		push_constraint(L, &s->constraints[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "constraints");
	if (s->segment_missing)
		set_bool(L, "segment_missing", true);
	set_num(L, "rollout", s->has_rollout, s->rollout);
	set_str(L, "group_id", s->group_id);
	set_str(L, "stickiness", s->stickiness);
	if (s->ids) {
		push_list(L, s->ids, s->nids);
		lua_setfield(L, -2, "ids");
	}
	push_variants(L, s->variants, s->nvariants);
	lua_setfield(L, -2, "variants");
}

/* depth 0: the feature with its parents; depth 1: a parent, whose own
 * dependencies are listed but not followed (they make the child off).
 * keys: the absolute stack index of push_keys's table for f. */
static void push_feature(lua_State *L, struct unleash_features *f, int keys,
                         const struct unleash_feature *t, int depth, bool counted)
{
	lua_createtable(L, 0, 6);
	set_str(L, "name", t->name);
	set_bool(L, "enabled", t->enabled);
	lua_createtable(L, (int)t->nstrategies, 0);
	for (size_t i = 0; i < t->nstrategies; i++) {
		push_strategy(L, &t->strategies[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "strategies");
	push_variants(L, t->variants, t->nvariants);
	lua_setfield(L, -2, "variants");
	lua_createtable(L, (int)t->ndeps, 0);
	for (size_t i = 0; i < t->ndeps; i++) {
		const struct unleash_dependency *d = &t->deps[i];
		lua_createtable(L, 0, 4);
		set_str(L, "feature", d->feature);
		set_bool(L, "enabled", d->enabled);
		if (d->nvariants) {
			push_list(L, d->variants, d->nvariants);
			lua_setfield(L, -2, "variants");
		}
		if (depth == 0 && d->parent) {
			push_feature(L, f, keys, d->parent, 1, false);
			lua_setfield(L, -2, "parent");
		}
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "dependencies");
	push_handle(L, f, keys, t, counted);
	lua_rawsetp(L, -2, &handle_key);
}

void unleash_lua_push(lua_State *L, struct unleash_features *f, const char *name, bool counted)
{
	const struct unleash_feature *t = unleash_features_find(f, name);
	if (!t) {
		lua_pushnil(L);
		return;
	}
	push_keys(L, f);
	push_feature(L, f, lua_gettop(L), t, 0, counted);
	lua_remove(L, -2);
}

/* ---- the context: a Lua table read as the SDKs read theirs ---- */

/* The module's own state, upvalue 1 of is_enabled and of get_variant (each
 * its own). Upvalue 2 keeps the feature asked about last alive, 3 its
 * handle, 4 the handle's keys (push_handle). */
struct module {
	struct unleash_usage *usage; /* NULL: nowhere */
	const void *last;            /* the feature table asked about last */
	const struct handle *h;      /* its handle */
};

#define KEYS lua_upvalueindex(4)

/* The fields numbered below KEPT are read at most once per evaluation: a
 * field several constraints and the rollout read (userId) costs one look. */
#define KEPT 8

struct lua_context {
	lua_State *L;
	int idx;       /* 0: no context */
	int room;      /* stack slots reserved and not yet used */
	unsigned kept; /* bit id: value[id] and len[id] are read */
	const char *value[KEPT];
	size_t len[KEPT];
};

/* Values read stay on the stack until the evaluation returns, so that the
 * strings handed out stay alive. A C function starts with LUA_MINSTACK free
 * slots: the first reads use those (but for RESULT_SLOTS, which the
 * function's own results need afterwards), without asking for more. */
enum { RESULT_SLOTS = 4 };

static void reserve(struct lua_context *c, int n)
{
	if (c->room < n) {
		luaL_checkstack(c->L, 32, "unleash context");
		c->room = 32;
	}
	c->room -= n;
}

static bool is_null(lua_State *L, int type)
{
	return type == LUA_TNIL || (type == LUA_TLIGHTUSERDATA && !lua_touserdata(L, -1));
}

/* Pushes the key of field id (name). */
static void push_key(lua_State *L, unsigned id, const char *name)
{
	if (lua_rawgeti(L, KEYS, (lua_Integer)id + 1) != LUA_TSTRING) {
		lua_pop(L, 1);
		lua_pushstring(L, name);
	}
}

/* The field at the top level, as t[k] reads it (metamethods too). */
static int top_field(struct lua_context *c, unsigned id, const char *name)
{
	push_key(c->L, id, name);
	return lua_gettable(c->L, c->idx);
}

/* The registry's key of the static context (unleash_lua_set_static). */
static const char static_key;

void unleash_lua_set_static(lua_State *L, const char *app_name, const char *environment)
{
	lua_createtable(L, 0, 2);
	if (app_name) {
		lua_pushstring(L, app_name);
		lua_setfield(L, -2, "appName");
	}
	if (environment) {
		lua_pushstring(L, environment);
		lua_setfield(L, -2, "environment");
	}
	lua_rawsetp(L, LUA_REGISTRYINDEX, &static_key);
}

/* The static context's value of field id, pushed; nil for a field it does
 * not give. */
static int static_field(lua_State *L, unsigned id, const char *name)
{
	if (id != UNLEASH_FIELD_APP_NAME && id != UNLEASH_FIELD_ENVIRONMENT) {
		lua_pushnil(L);
		return LUA_TNIL;
	}
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &static_key) != LUA_TTABLE)
		return LUA_TNIL;
	int type = lua_getfield(L, -1, name);
	lua_remove(L, -2);
	return type;
}

/* A field as the SDKs read it: the top level, else the static context
 * (appName, environment; given with no context too), else properties; a
 * string as it is, another value as tostring gives it; nil and cjson.null
 * are absent. */
static const char *read_field(struct lua_context *c, unsigned id, const char *name, size_t *len)
{
	lua_State *L = c->L;
	reserve(c, 4);
	int type = c->idx ? top_field(c, id, name) : LUA_TNIL;
	if (type == LUA_TNIL)
		type = static_field(L, id, name);
	if (type == LUA_TSTRING)
		return lua_tolstring(L, -1, len);
	if (type == LUA_TNIL) {
		if (!c->idx || lua_getfield(L, c->idx, "properties") != LUA_TTABLE)
			return NULL;
		push_key(L, id, name);
		type = lua_gettable(L, -2);
	}
	if (is_null(L, type))
		return NULL;
	return luaL_tolstring(L, -1, len);
}

static const char *lua_field(void *arg, unsigned id, const char *name, size_t *len)
{
	struct lua_context *c = arg;
	bool keep = id < KEPT;
	if (keep && (c->kept >> id & 1u)) {
		*len = c->len[id];
		return c->value[id];
	}
	const char *v = read_field(c, id, name, len);
	if (keep) {
		c->kept |= 1u << id;
		c->value[id] = v;
		c->len[id] = v ? *len : 0;
	}
	return v;
}

static const char *lua_top(void *arg, unsigned id, const char *name)
{
	struct lua_context *c = arg;
	if (!c->idx)
		return NULL;
	reserve(c, 1);
	size_t len;
	const char *v =
	    top_field(c, id, name) == LUA_TSTRING ? lua_tolstring(c->L, -1, &len) : NULL;
	return v && len > 0 ? v : NULL;
}

static bool lua_now(void *arg, double *now)
{
	struct lua_context *c = arg;
	reserve(c, 1);
	if (!c->idx || lua_getfield(c->L, c->idx, "currentTime") == LUA_TNIL) {
		*now = (double)time(NULL);
		return true;
	}
	const char *text = lua_tostring(c->L, -1);
	return text && jsvalue_date(text, now);
}

/* The context argument at 2: a table, or nil for none. */
static struct unleash_context context_of(lua_State *L, struct lua_context *c)
{
	int type = lua_type(L, 2);
	luaL_argexpected(L, type == LUA_TTABLE || type <= LUA_TNIL, 2, "table or nil");
	c->L = L;
	c->idx = type == LUA_TTABLE ? 2 : 0;
	c->room = LUA_MINSTACK - RESULT_SLOTS;
	c->kept = 0;
	return (struct unleash_context){
	    .field = lua_field, .top = lua_top, .now = lua_now, .arg = c};
}

/* ---- the module ---- */

/* The handle of the feature at 1, through the module's cache of the one
 * asked about last: a worker asks about the same context.unleash call after
 * call. Upvalue 2 keeps that table alive, so no other value can have its
 * address while it is cached. */
static const struct handle *cached_handle(lua_State *L, struct module *m)
{
	const void *p = lua_topointer(L, 1);
	if (p && p == m->last)
		return m->h;
	const struct handle *h = handle_of(L, 1);
	if (h) {
		lua_pushvalue(L, 1);
		lua_replace(L, lua_upvalueindex(2));
		lua_rawgetp(L, 1, &handle_key);
		lua_getiuservalue(L, -1, 1);
		lua_replace(L, KEYS);
		lua_replace(L, lua_upvalueindex(3));
		m->last = p;
		m->h = h;
	}
	return h;
}

/* unleash.is_enabled(feature, ctx) -> boolean; false for anything but a
 * prepared feature. */
static int l_is_enabled(lua_State *L)
{
	struct module *m = lua_touserdata(L, lua_upvalueindex(1));
	const struct handle *h = cached_handle(L, m);
	struct lua_context lc;
	struct unleash_context ctx = context_of(L, &lc);
	bool on = h && unleash_eval_enabled(h->t, &ctx);
	if (h && h->counted)
		unleash_usage_count(m->usage, on);
	lua_pushboolean(L, on);
	return 1;
}

/* unleash.get_variant(feature, ctx) -> { name=, enabled=, feature_enabled=,
 * payload= { type=, value= } } */
static int l_get_variant(lua_State *L)
{
	const struct handle *h = cached_handle(L, lua_touserdata(L, lua_upvalueindex(1)));
	struct lua_context lc;
	struct unleash_context ctx = context_of(L, &lc);
	struct unleash_result v = {.name = "disabled"};
	if (h)
		unleash_eval_variant(h->t, &ctx, &v);
	lua_createtable(L, 0, 4);
	set_str(L, "name", v.name);
	set_bool(L, "enabled", v.enabled);
	set_bool(L, "feature_enabled", v.feature_enabled);
	if (v.payload_type) {
		lua_createtable(L, 0, 2);
		set_str(L, "type", v.payload_type);
		set_str(L, "value", v.payload_value);
		lua_setfield(L, -2, "payload");
	}
	return 1;
}

/* The JSON text of the value at idx, by lua-cjson (through require, so the
 * sandbox's own copy); pushed on the stack. */
static const char *encode(lua_State *L, int idx, size_t *len)
{
	idx = lua_absindex(L, idx);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "cjson");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "encode");
	lua_pushvalue(L, idx);
	lua_call(L, 1, 1);
	lua_remove(L, -2);
	const char *text = lua_tolstring(L, -1, len);
	if (!text)
		luaL_error(L, "cjson.encode gave no text");
	return text;
}

/* unleash.prepare_answer(answer) -> { [name] = feature }, { problem lines }:
 * a whole client API answer (its JSON text, or a table as decoded JSON)
 * prepared as the server prepares Unleash's. Raises on an answer the
 * server would refuse. */
static int l_prepare_answer(lua_State *L)
{
	size_t len = 0;
	const char *body = lua_type(L, 1) == LUA_TSTRING  ? lua_tolstring(L, 1, &len)
	                   : lua_type(L, 1) == LUA_TTABLE ? encode(L, 1, &len)
	                                                  : NULL;
	luaL_argexpected(L, body, 1, "JSON text or table");
	char err[512];
	struct unleash_features *f = unleash_features_parse(body, len, NULL, err, sizeof(err));
	if (!f) {
		luaL_where(L, 2);
		lua_pushstring(L, err);
		lua_concat(L, 2);
		return lua_error(L);
	}
	push_keys(L, f);
	int keys = lua_gettop(L);
	lua_createtable(L, 0, (int)f->nfeatures);
	for (size_t i = 0; i < f->nfeatures; i++) {
		push_feature(L, f, keys, &f->features[i], 0, false);
		lua_setfield(L, -2, f->features[i].name);
	}
	push_list(L, f->problems, f->nproblems);
	unleash_features_unref(f);
	return 2;
}

/* unleash.prepare(feature) -> feature: one written by hand as the client
 * API serves it (segments inlined), prepared; for examples and tests. */
static int l_prepare(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	lua_pushcfunction(L, l_prepare_answer);
	lua_createtable(L, 0, 1);
	lua_createtable(L, 1, 0);
	lua_pushvalue(L, 1);
	lua_rawseti(L, -2, 1);
	lua_setfield(L, -2, "features");
	lua_call(L, 1, 1);
	lua_getfield(L, 1, "name");
	lua_gettable(L, -2);
	return 1;
}

/* fn as a closure over a module state of its own and its cache. */
static void push_function(lua_State *L, lua_CFunction fn, struct unleash_usage *usage)
{
	struct module *m = lua_newuserdatauv(L, sizeof(*m), 0);
	*m = (struct module){.usage = usage};
	lua_pushnil(L);
	lua_pushnil(L);
	lua_pushnil(L);
	lua_pushcclosure(L, fn, 4);
}

static void new_module(lua_State *L, struct unleash_usage *usage)
{
	static const luaL_Reg funcs[] = {
	    {"prepare", l_prepare},
	    {"prepare_answer", l_prepare_answer},
	    {NULL, NULL},
	};
	luaL_newlib(L, funcs);
	push_function(L, l_is_enabled, usage);
	lua_setfield(L, -2, "is_enabled");
	push_function(L, l_get_variant, NULL);
	lua_setfield(L, -2, "get_variant");
}

int luaopen_unleash(lua_State *L)
{
	new_module(L, NULL);
	return 1;
}

static int open_counted(lua_State *L)
{
	new_module(L, lua_touserdata(L, lua_upvalueindex(1)));
	return 1;
}

void unleash_lua_preload(lua_State *L, struct unleash_usage *usage)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushlightuserdata(L, usage);
	lua_pushcclosure(L, open_counted, 1);
	lua_setfield(L, -2, "unleash");
	lua_pop(L, 1);
}
