#include "seen.h"

#include "murmur3.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { HUGE_PAGE = 2 << 20 };

/* Open addressing over 64-bit hashes of the IDs (0 marks a free slot), at
 * most half full so that probes stay short. A slot goes from 0 to a hash
 * by compare-and-swap and never changes again, so readers need no lock. */
struct seen {
	size_t capacity, mask;
	_Atomic size_t count;
	_Atomic uint64_t *slots;
};

struct seen *seen_new(size_t capacity)
{
	size_t n = 2;
	while (n < 2 * capacity)
		n *= 2;
	struct seen *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	/* The slots are read at random, one per canary answer: on 4 KiB pages
	 * almost every read of a large set also misses the TLB. So the memory
	 * asks for huge pages, which the kernel gives where transparent huge
	 * pages are on ("madvise" or "always"), and is faulted in at once. */
	size_t bytes = n * sizeof(*s->slots);
	void *mem = NULL;
	if (posix_memalign(&mem, bytes >= HUGE_PAGE ? HUGE_PAGE : 64, bytes) != 0) {
		free(s);
		return NULL;
	}
	if (bytes >= HUGE_PAGE)
		(void)madvise(mem, bytes, MADV_HUGEPAGE); /* a hint: without it, small pages */
	memset(mem, 0, bytes);
	s->slots = mem;
	s->capacity = capacity;
	s->mask = n - 1;
	return s;
}

void seen_free(struct seen *s)
{
	if (!s)
		return;
	free(s->slots);
	free(s);
}

/* Two MurmurHash3 of the ID with different seeds make its 64-bit key: a
 * few instructions per 4 bytes, and bits spread well enough for linear
 * probing even between IDs that differ only at the end. 0 marks a free
 * slot, so no key is 0. */
static uint64_t key_of(const char *id)
{
	size_t n = strlen(id);
	uint64_t h =
	    (uint64_t)murmur3_32(id, n, 0x9747b28cu) << 32 | murmur3_32(id, n, 0x5bd1e995u);
	return h ? h : 1;
}

struct seen_key seen_prefetch(const struct seen *s, const char *id)
{
	struct seen_key key = {key_of(id)};
	__builtin_prefetch(&s->slots[key.hash & s->mask], 1);
	return key;
}

enum seen_result seen_add(struct seen *s, const char *id)
{
	return seen_add_key(s, (struct seen_key){key_of(id)});
}

enum seen_result seen_add_key(struct seen *s, struct seen_key key)
{
	uint64_t h = key.hash;
	size_t i = (size_t)h & s->mask;
	for (size_t probes = 0; probes <= s->mask; probes++, i = (i + 1) & s->mask) {
		uint64_t cur = atomic_load_explicit(&s->slots[i], memory_order_acquire);
		if (cur == h)
			return SEEN_KNOWN;
		if (cur != 0)
			continue;
		/* reserve room first: the count never exceeds the capacity */
		if (atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed) >= s->capacity) {
			atomic_fetch_sub_explicit(&s->count, 1, memory_order_relaxed);
			return SEEN_FULL;
		}
		uint64_t expected = 0;
		if (atomic_compare_exchange_strong_explicit(
		        &s->slots[i], &expected, h, memory_order_acq_rel, memory_order_acquire))
			return SEEN_NEW;
		atomic_fetch_sub_explicit(&s->count, 1, memory_order_relaxed);
		if (expected == h)
			return SEEN_KNOWN; /* another thread added the same ID just now */
	}
	return SEEN_FULL;
}
