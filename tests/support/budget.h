/* budget: the routing CPU budget the cmocka suites run with: 50 ms, as the
 * server's default, or GCS_ROUTING_BUDGET_MS when set (make valgrind sets
 * it: under memcheck, loading a script alone takes longer than 50 ms). */
#ifndef GCS_TEST_BUDGET_H
#define GCS_TEST_BUDGET_H

#include <stdlib.h>

static inline long test_budget_ms(void)
{
	const char *v = getenv("GCS_ROUTING_BUDGET_MS");
	long ms = v ? strtol(v, NULL, 10) : 0;
	return ms > 0 ? ms : 50;
}

#endif
