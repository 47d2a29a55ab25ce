/* config: the download retry settings come from the table, with the
 * documented defaults, and are checked like every other millisecond value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static const char *const fetch_vars[] = {"GCS_FETCH_BACKOFF_MS", "GCS_FETCH_BUDGET_MS"};

static int setup(void **state)
{
	(void)state;
	setenv("STABLE_VERSION", "1.1.3", 1);
	for (size_t i = 0; i < sizeof(fetch_vars) / sizeof(fetch_vars[0]); i++)
		unsetenv(fetch_vars[i]);
	return 0;
}

static void test_fetch_retry_defaults(void **state)
{
	(void)state;
	struct gcs_config cfg;
	char err[256] = "";
	assert_int_equal(config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.fetch.backoff_ms, 500);
	assert_int_equal(cfg.fetch.budget_ms, 20000);
}

static void test_fetch_retry_settings_are_read(void **state)
{
	(void)state;
	setenv("GCS_FETCH_BACKOFF_MS", "250", 1);
	setenv("GCS_FETCH_BUDGET_MS", "3600000", 1);
	struct gcs_config cfg;
	char err[256] = "";
	assert_int_equal(config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.fetch.backoff_ms, 250);
	assert_int_equal(cfg.fetch.budget_ms, 3600000);
	assert_int_equal(fetch_backoff_ms(&cfg.fetch, 1), 250);
}

static void expect_refused(const char *var, const char *value, const char *says)
{
	setup(NULL);
	setenv(var, value, 1);
	struct gcs_config cfg;
	char err[256] = "";
	assert_int_equal(config_from_env(&cfg, err, sizeof(err)), -1);
	char want[256];
	snprintf(want, sizeof(want), "%s=\"%s\": %s", var, value, says);
	assert_string_equal(err, want);
}

static void test_bad_fetch_retry_settings_are_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fetch_vars) / sizeof(fetch_vars[0]); i++) {
		expect_refused(fetch_vars[i], "0", "must be 1 to 3600000 ms");
		expect_refused(fetch_vars[i], "3600001", "must be 1 to 3600000 ms");
		expect_refused(fetch_vars[i], "0.5", "not a whole number");
		expect_refused(fetch_vars[i], "-1", "not a whole number");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_fetch_retry_defaults, setup),
	    cmocka_unit_test_setup(test_fetch_retry_settings_are_read, setup),
	    cmocka_unit_test_setup(test_bad_fetch_retry_settings_are_refused, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
