/* lualimits: what one Lua state may use. The memory cap is its allocator; the
 * CPU-time budget of each call is kept by a watchdog thread that signals a
 * thread whose call ran over; once either limit is crossed a count hook
 * raises at every instruction, so a pcall in the script cannot swallow the
 * error. A state made here belongs to one thread at a time. */
#ifndef GCS_LUALIMITS_H
#define GCS_LUALIMITS_H

#include <lua.h>

enum {
	LUALIMITS_MEMORY = 32 << 20, /* bytes per lua_State */
};

/* Which limit a call crossed; the budget first when both were. */
enum lualimits_over {
	LUALIMITS_WITHIN,
	LUALIMITS_OVER_BUDGET,
	LUALIMITS_OVER_MEMORY,
};

/* The CPU time one call may use, for every state of the process; 0, the
 * start: no limit. */
void lualimits_set_budget(long ms);

/* A new state under the memory cap, watched by the watchdog (started with
 * the first); NULL when out of memory. */
lua_State *lualimits_state_new(void);

/* Closes a state made by lualimits_state_new, its limits with it. */
void lualimits_state_close(lua_State *L);

/* A call starts: its budget starts anew and no limit is crossed yet.
 * Calls nest (each example's call of route inside a check of examples gets
 * its own budget); each lualimits_reset has its lualimits_done. */
void lualimits_reset(lua_State *L);

/* A call is over; after the outermost the watchdog stops looking. What
 * lualimits_crossed says stays until the next lualimits_reset. */
void lualimits_done(lua_State *L);

/* The limit the current call crossed, if any. */
enum lualimits_over lualimits_crossed(lua_State *L);

#endif
