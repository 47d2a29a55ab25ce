/* Unit tests for unleash_usage: the yes/no counts of every routing worker,
 * summed and reset when taken, those of a freed counter included. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>

#include "unleash_usage.h"

static void test_sums_every_counter_and_resets(void **state)
{
	(void)state;
	uint64_t yes, no;
	unleash_usage_take(&yes, &no);
	struct unleash_usage *a = unleash_usage_new(), *b = unleash_usage_new();
	assert_non_null(a);
	assert_non_null(b);
	unleash_usage_count(a, true);
	unleash_usage_count(a, false);
	unleash_usage_count(b, true);
	unleash_usage_count(NULL, true); /* nowhere: not counted */
	unleash_usage_take(&yes, &no);
	assert_int_equal(yes, 2);
	assert_int_equal(no, 1);
	unleash_usage_take(&yes, &no);
	assert_int_equal(yes + no, 0);

	/* what a counter held when freed is in the next take, once */
	unleash_usage_count(b, false);
	unleash_usage_free(b);
	unleash_usage_count(a, true);
	unleash_usage_take(&yes, &no);
	assert_int_equal(yes, 1);
	assert_int_equal(no, 1);
	unleash_usage_take(&yes, &no);
	assert_int_equal(yes + no, 0);
	unleash_usage_free(a);
}

enum { WORKERS = 4, COUNTS = 100000 };

static void *worker(void *arg)
{
	struct unleash_usage *u = arg;
	for (int i = 0; i < COUNTS; i++)
		unleash_usage_count(u, i % 4 == 0);
	return NULL;
}

/* Takes while workers count lose nothing and count nothing twice. */
static void test_takes_while_workers_count(void **state)
{
	(void)state;
	uint64_t yes, no, total_yes = 0, total_no = 0;
	unleash_usage_take(&yes, &no);
	struct unleash_usage *u[WORKERS];
	pthread_t t[WORKERS];
	for (int i = 0; i < WORKERS; i++) {
		assert_non_null(u[i] = unleash_usage_new());
		assert_int_equal(pthread_create(&t[i], NULL, worker, u[i]), 0);
	}
	for (int k = 0; k < 50; k++) {
		unleash_usage_take(&yes, &no);
		total_yes += yes;
		total_no += no;
	}
	for (int i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < WORKERS; i++)
		unleash_usage_free(u[i]);
	unleash_usage_take(&yes, &no);
	total_yes += yes;
	total_no += no;
	assert_int_equal(total_yes, WORKERS * COUNTS / 4);
	assert_int_equal(total_no, WORKERS * COUNTS * 3 / 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sums_every_counter_and_resets),
	    cmocka_unit_test(test_takes_while_workers_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
