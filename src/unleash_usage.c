/* unleash_usage: per-worker yes/no counters, summed when metrics are sent. */
#include "unleash_usage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct unleash_usage {
	_Atomic uint64_t yes, no;
	struct unleash_usage *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct unleash_usage *counters;
static uint64_t freed_yes, freed_no; /* what freed counters had not handed over */

struct unleash_usage *unleash_usage_new(void)
{
	struct unleash_usage *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	pthread_mutex_lock(&mu);
	u->next = counters;
	counters = u;
	pthread_mutex_unlock(&mu);
	return u;
}

void unleash_usage_free(struct unleash_usage *u)
{
	if (!u)
		return;
	pthread_mutex_lock(&mu);
	for (struct unleash_usage **p = &counters; *p; p = &(*p)->next)
		if (*p == u) {
			*p = u->next;
			break;
		}
	freed_yes += atomic_load(&u->yes);
	freed_no += atomic_load(&u->no);
	pthread_mutex_unlock(&mu);
	free(u);
}

void unleash_usage_count(struct unleash_usage *u, bool yes)
{
	if (u)
		atomic_fetch_add_explicit(yes ? &u->yes : &u->no, 1, memory_order_relaxed);
}

void unleash_usage_take(uint64_t *yes, uint64_t *no)
{
	pthread_mutex_lock(&mu);
	*yes = freed_yes;
	*no = freed_no;
	freed_yes = freed_no = 0;
	for (struct unleash_usage *u = counters; u; u = u->next) {
		*yes += atomic_exchange(&u->yes, 0);
		*no += atomic_exchange(&u->no, 0);
	}
	pthread_mutex_unlock(&mu);
}
