/* unleash_usage: how often the configured feature was found enabled and
 * disabled, for the metrics an Unleash SDK sends (yes/no per feature).
 * Each routing worker counts into its own counter, written by that worker
 * alone; the metrics sender takes the sums of all of them. */
#ifndef GCS_UNLEASH_USAGE_H
#define GCS_UNLEASH_USAGE_H

#include <stdbool.h>
#include <stdint.h>

struct unleash_usage;

/* A new counter, read by unleash_usage_take until freed; NULL without
 * memory. Freeing keeps what it counted for the next take. */
struct unleash_usage *unleash_usage_new(void);
void unleash_usage_free(struct unleash_usage *u);

/* One evaluation's result; u may be NULL (nothing is counted). */
void unleash_usage_count(struct unleash_usage *u, bool yes);

/* The sums since the last take, over every counter; resets them. */
void unleash_usage_take(uint64_t *yes, uint64_t *no);

#endif
