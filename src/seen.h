/* seen: a set of cluster IDs of fixed size, shared by the HTTP threads
 * without a lock, so that a cluster is reported the first time only
 * ("canary served"). Memory is allocated once; past the capacity nothing
 * more is added. */
#ifndef GCS_SEEN_H
#define GCS_SEEN_H

#include <stddef.h>
#include <stdint.h>

enum seen_result {
	SEEN_NEW,   /* first time: added */
	SEEN_KNOWN, /* added before (or a 64-bit hash collision with one that was) */
	SEEN_FULL,  /* not there, and capacity IDs are already in */
};

struct seen;

/* Room for capacity IDs (8 bytes each, times two for short probes). NULL
 * when out of memory. */
struct seen *seen_new(size_t capacity);
void seen_free(struct seen *s);

/* Thread-safe: of several threads adding the same new ID at once, exactly
 * one gets SEEN_NEW. */
enum seen_result seen_add(struct seen *s, const char *id);

/* seen_add in two steps, for a caller with other work to do in between:
 * a large set's slot is almost never in cache, and the first step starts
 * loading it, so that the second finds it there. No key seen_prefetch
 * gives has a hash of 0: a caller may keep 0 for "none". */
struct seen_key {
	uint64_t hash;
};
struct seen_key seen_prefetch(const struct seen *s, const char *id);
enum seen_result seen_add_key(struct seen *s, struct seen_key key);

#endif
