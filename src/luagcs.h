/* luagcs: the `gcs` Lua module the host offers to routing scripts and to
 * the Unleash evaluation (src/unleash.lua): hashing, logging, and the
 * per-request matchers over values toggles.c prepared. Also built as a Lua
 * C module (build/lua/gcs.so) so busted runs the scripts with the same
 * code. scripts/README.md documents the functions. */
#ifndef GCS_LUAGCS_H
#define GCS_LUAGCS_H

#include <lua.h>
#include <stdbool.h>

struct toggles;

/* What gcs.decided recorded during one call: the configured toggle's
 * result, for Unleash's yes/no metrics. */
struct luagcs_decision {
	bool made, yes;
};

int luaopen_gcs(lua_State *L);

/* Makes `require "gcs"` (recording decisions in d, which may be NULL) and
 * `require "unleash"` (the built-in evaluation) available in L. */
void luagcs_preload(lua_State *L, struct luagcs_decision *d);

/* Pushes the prepared toggle name of f (nil when f lacks it), its parents
 * attached. counted: the evaluation reports its result through
 * gcs.decided. The table keeps f alive while Lua references it. */
void luagcs_push_toggle(lua_State *L, struct toggles *f, const char *name, bool counted);

#endif
