/* luapool: the small blocks of one Lua state, kept for reuse when freed. */
#include "luapool.h"

#include <stdlib.h>
#include <string.h>

/* The size class of n bytes (n > 0); LUAPOOL_CLASSES for a size not kept.
 * Every block of a kept size is allocated at its class's full size, so a
 * block can change hands within its class. */
static unsigned class_of(size_t n)
{
	size_t c = (n - 1) / LUAPOOL_GRAIN;
	return c < LUAPOOL_CLASSES ? (unsigned)c : LUAPOOL_CLASSES;
}

static void *take(struct luapool *p, unsigned c)
{
	void *b = p->free[c];
	if (b) {
		memcpy(&p->free[c], b, sizeof(void *));
		p->kept[c]--;
		return b;
	}
	return malloc((size_t)(c + 1) * LUAPOOL_GRAIN);
}

static void give(struct luapool *p, unsigned c, void *b)
{
	if (c == LUAPOOL_CLASSES || p->kept[c] >= LUAPOOL_KEEP) {
		free(b);
		return;
	}
	memcpy(b, &p->free[c], sizeof(void *));
	p->free[c] = b;
	p->kept[c]++;
}

void *luapool_realloc(struct luapool *p, void *block, size_t osize, size_t nsize)
{
	size_t old = block ? osize : 0;
	unsigned oc = old ? class_of(old) : LUAPOOL_CLASSES;
	if (nsize == 0) {
		if (block)
			give(p, oc, block);
		return NULL;
	}
	unsigned nc = class_of(nsize);
	if (nc == LUAPOOL_CLASSES && (!block || oc == LUAPOOL_CLASSES))
		return realloc(block, nsize); /* neither size is kept */
	if (block && nc == oc)
		return block; /* the block already has room */
	void *nb = nc == LUAPOOL_CLASSES ? malloc(nsize) : take(p, nc);
	if (!nb)
		return NULL;
	if (block) {
		memcpy(nb, block, old < nsize ? old : nsize);
		give(p, oc, block);
	}
	return nb;
}

void luapool_clear(struct luapool *p)
{
	for (unsigned c = 0; c < LUAPOOL_CLASSES; c++) {
		while (p->free[c]) {
			void *b = p->free[c];
			memcpy(&p->free[c], b, sizeof(void *));
			free(b);
		}
		p->kept[c] = 0;
	}
}
