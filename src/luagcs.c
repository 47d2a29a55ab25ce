#include "luagcs.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "murmur3.h"

#ifndef GCS_LUA_MODULE
#include "log.h"
#endif

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

int luaopen_gcs(lua_State *L)
{
	static const luaL_Reg funcs[] = {
	    {"murmur3", l_murmur3},
	    {"log", l_log},
	    {NULL, NULL},
	};
	luaL_newlib(L, funcs);
	return 1;
}
