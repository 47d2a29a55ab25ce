/* seen: each ID is new once, the capacity is a hard bound, and of threads
 * adding the same IDs at once exactly one sees each as new. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "seen.h"

static void id_of(char *buf, size_t cap, unsigned i)
{
	snprintf(buf, cap, "%08x-0000-4000-8000-%012x", i * 2654435761u, i);
}

static void test_new_once_then_known(void **state)
{
	(void)state;
	struct seen *s = seen_new(1000);
	assert_non_null(s);
	char id[64];
	for (unsigned i = 0; i < 1000; i++) {
		id_of(id, sizeof(id), i);
		assert_int_equal(seen_add(s, id), SEEN_NEW);
	}
	for (unsigned i = 0; i < 1000; i++) {
		id_of(id, sizeof(id), i);
		assert_int_equal(seen_add(s, id), SEEN_KNOWN);
	}
	assert_int_equal(seen_add(s, ""), SEEN_FULL); /* the 1001st */
	seen_free(s);
}

static void test_full_still_knows_its_ids(void **state)
{
	(void)state;
	struct seen *s = seen_new(3);
	assert_int_equal(seen_add(s, "a"), SEEN_NEW);
	assert_int_equal(seen_add(s, "b"), SEEN_NEW);
	assert_int_equal(seen_add(s, "c"), SEEN_NEW);
	assert_int_equal(seen_add(s, "d"), SEEN_FULL);
	assert_int_equal(seen_add(s, "d"), SEEN_FULL);
	assert_int_equal(seen_add(s, "b"), SEEN_KNOWN);
	assert_int_equal(seen_add(s, "a"), SEEN_KNOWN);
	seen_free(s);
}

/* The two steps are one seen_add: the key of a prefetch finds what
 * seen_add added and the other way round, other work in between. */
static void test_two_steps_are_one_add(void **state)
{
	(void)state;
	struct seen *s = seen_new(100);
	char id[64];
	for (unsigned i = 0; i < 100; i++) {
		id_of(id, sizeof(id), i);
		struct seen_key key = seen_prefetch(s, id);
		if (i % 2 == 0)
			assert_int_equal(seen_add(s, id), SEEN_NEW);
		assert_int_equal(seen_add_key(s, key), i % 2 ? SEEN_NEW : SEEN_KNOWN);
	}
	for (unsigned i = 0; i < 100; i++) {
		id_of(id, sizeof(id), i);
		assert_int_equal(seen_add(s, id), SEEN_KNOWN);
	}
	id_of(id, sizeof(id), 100);
	assert_int_equal(seen_add_key(s, seen_prefetch(s, id)), SEEN_FULL);
	seen_free(s);
}

enum { THREADS = 8, IDS = 20000 };

struct worker {
	struct seen *s;
	unsigned new_count;
};

static void *add_all(void *arg)
{
	struct worker *w = arg;
	char id[64];
	for (unsigned i = 0; i < IDS; i++) {
		id_of(id, sizeof(id), i);
		if (seen_add(w->s, id) == SEEN_NEW)
			w->new_count++;
	}
	return NULL;
}

static void test_concurrent_adds_new_exactly_once(void **state)
{
	(void)state;
	struct seen *s = seen_new(IDS);
	pthread_t t[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){s, 0};
		assert_int_equal(pthread_create(&t[i], NULL, add_all, &w[i]), 0);
	}
	unsigned total = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		total += w[i].new_count;
	}
	assert_int_equal(total, IDS);
	seen_free(s);
}

/* cmocka's list of this suite's tests: every suite's main has this shape */
int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_once_then_known),
	    cmocka_unit_test(test_full_still_knows_its_ids),
	    cmocka_unit_test(test_two_steps_are_one_add),
	    cmocka_unit_test(test_concurrent_adds_new_exactly_once),
	};
	return cmocka_run_group_tests_name("seen", tests, NULL, NULL);
}
