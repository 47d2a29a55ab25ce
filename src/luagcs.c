#include "luagcs.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "murmur3.h"

#ifndef GCS_LUA_MODULE
#include "log.h"
#endif

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

static const luaL_Reg funcs[] = {
    {"murmur3", l_murmur3},
    {"normalized", l_normalized},
    {"log", l_log},
    {NULL, NULL},
};

int luaopen_gcs(lua_State *L)
{
	luaL_newlib(L, funcs);
	return 1;
}

#ifndef GCS_LUA_MODULE
void luagcs_preload(lua_State *L)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, luaopen_gcs);
	lua_setfield(L, -2, "gcs");
	lua_pop(L, 1);
}
#endif
