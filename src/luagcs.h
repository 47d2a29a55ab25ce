/* luagcs: the `gcs` Lua module the host offers to routing scripts:
 * hashing (murmur3, normalized) and logging. Also built as a Lua C module
 * (build/lua/gcs.so) so busted runs the scripts with the same code.
 * scripts/README.md documents the functions. */
#ifndef GCS_LUAGCS_H
#define GCS_LUAGCS_H

#include <lua.h>

int luaopen_gcs(lua_State *L);

/* Makes `require "gcs"` available in L. */
void luagcs_preload(lua_State *L);

#endif
