/* unleash_lua: the `unleash` Lua module routing scripts require, its
 * functions C functions of the host over unleash_eval (scripts/README.md):
 * unleash.is_enabled(feature, ctx), unleash.get_variant(feature, ctx),
 * unleash.prepare(feature) and unleash.prepare_answer(answer). Also built
 * into build/lua/gcs.so (luaopen_unleash) for busted. */
#ifndef GCS_UNLEASH_LUA_H
#define GCS_UNLEASH_LUA_H

#include <lua.h>
#include <stdbool.h>

struct unleash_features;
struct unleash_usage;

int luaopen_unleash(lua_State *L);

/* Makes `require "unleash"` available in L; a counted feature's
 * evaluations are counted in usage (NULL: nowhere), which the caller owns
 * for as long as L lives. */
void unleash_lua_preload(lua_State *L, struct unleash_usage *usage);

/* The SDK's static context of every evaluation in L: an appName or
 * environment the evaluated context lacks at its top level is read here,
 * before its properties, as the official SDKs merge their configuration's
 * into each context. NULL: none (a busted run has no server). */
void unleash_lua_set_static(lua_State *L, const char *app_name, const char *environment);

/* Pushes feature name of f prepared for the module (nil when f lacks it),
 * its parents attached; counted: each is_enabled of it is counted. The
 * value keeps f alive while Lua references it. */
void unleash_lua_push(lua_State *L, struct unleash_features *f, const char *name, bool counted);

#endif
