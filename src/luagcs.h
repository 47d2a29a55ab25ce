/* luagcs: the `gcs` Lua module the host offers to routing scripts:
 * gcs.murmur3(s, seed), gcs.log(level, message). Also built as a Lua C
 * module (build/lua/gcs.so) so busted runs the scripts with the same code. */
#ifndef GCS_LUAGCS_H
#define GCS_LUAGCS_H

#include <lua.h>

int luaopen_gcs(lua_State *L);

#endif
