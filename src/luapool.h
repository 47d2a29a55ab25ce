/* luapool: the small blocks of one Lua state, kept for reuse when freed.
 * A routing decision makes and drops the same few small objects (the
 * cluster ID's string first), and the collector frees them in batches that
 * overflow the C library's per-thread cache, so that every allocation took
 * its slow path. Not thread-safe: one pool per lua_State, used by its
 * allocator only. The caller does the accounting: a block kept here is free
 * as far as the memory cap is concerned, and the pool holds at most
 * LUAPOOL_KEEP blocks of each size. */
#ifndef GCS_LUAPOOL_H
#define GCS_LUAPOOL_H

#include <stddef.h>

enum {
	LUAPOOL_GRAIN = 16,  /* block sizes kept: multiples of this ... */
	LUAPOOL_CLASSES = 8, /* ... up to this many times it */
	LUAPOOL_KEEP = 512,  /* blocks kept per size */
};

struct luapool {
	void *free[LUAPOOL_CLASSES]; /* a list through each block's first word */
	unsigned kept[LUAPOOL_CLASSES];
};

/* The lua_Alloc contract without the accounting: block NULL (osize then
 * says nothing) or of osize bytes; nsize 0 frees it and returns NULL, else
 * returns a block of nsize bytes with the old contents, or NULL, the old
 * block untouched, when out of memory. */
void *luapool_realloc(struct luapool *p, void *block, size_t osize, size_t nsize);

/* Frees the blocks kept; the pool stays usable. */
void luapool_clear(struct luapool *p);

#endif
