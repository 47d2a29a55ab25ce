/* config: the download retry settings come from the table, with the
 * documented defaults, and are checked like every other millisecond value;
 * Clowder's file (ACG_CONFIG) fills what no GCS_* variable sets, row by row
 * of the README's precedence table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "../support/tmpdir.h"

static const char *const fetch_vars[] = {"GCS_FETCH_BACKOFF_MS", "GCS_FETCH_BUDGET_MS"};
/* What Clowder's file may set; each test starts with none of them. */
static const char *const clowder_vars[] = {
    "ACG_CONFIG",       "GCS_LISTEN",      "GCS_METRICS_LISTEN",
    "GCS_METRICS_PATH", "GCS_UNLEASH_URL", "GCS_UNLEASH_TOKEN",
};

static int setup(void **state)
{
	(void)state;
	setenv("STABLE_VERSION", "1.1.3", 1);
	for (size_t i = 0; i < sizeof(fetch_vars) / sizeof(fetch_vars[0]); i++)
		unsetenv(fetch_vars[i]);
	for (size_t i = 0; i < sizeof(clowder_vars) / sizeof(clowder_vars[0]); i++)
		unsetenv(clowder_vars[i]);
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

static void test_bad_metrics_settings_are_refused(void **state)
{
	(void)state;
	expect_refused("GCS_METRICS_PATH", "metrics",
	               "a path starting with /, without spaces, ? or #");
	expect_refused("GCS_METRICS_PATH", "/metrics?x",
	               "a path starting with /, without spaces, ? or #");
	/* GCS_LISTEN's default */
	expect_refused("GCS_METRICS_LISTEN", "0.0.0.0:8000",
	               "is also the API's address (GCS_LISTEN): metrics need a port of their own");
}

/* gcs --diff OLD NEW: the versions stand in for the variables, are checked
 * as they are, and the environment is left as it was. */
static void test_versions_given_stand_in_for_the_variables(void **state)
{
	(void)state;
	struct gcs_config cfg;
	char err[256] = "";
	unsetenv("STABLE_VERSION");
	setenv("CANARY_VERSION", "not a version", 1);
	struct config_versions v = {"1.0.0", "1.2.0"};
	assert_int_equal(config_read(&cfg, &v, err, sizeof(err)), 0);
	assert_string_equal(cfg.stable_version, "1.0.0");
	assert_string_equal(cfg.canary_version, "1.2.0");
	assert_null(getenv("STABLE_VERSION"));
	assert_string_equal(getenv("CANARY_VERSION"), "not a version");
	v.canary = "1.2.0 beta";
	assert_int_equal(config_read(&cfg, &v, err, sizeof(err)), -1);
	assert_string_equal(err,
	                    "CANARY_VERSION=\"1.2.0 beta\": not a version (letters, digits, '.', "
	                    "'-', '+', '_')");
	unsetenv("CANARY_VERSION");
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

/* --- ACG_CONFIG ----------------------------------------------------------- */

static char dir[256], file[300];

static int clowder_setup(void **state)
{
	setup(state);
	tmpdir_make(dir, sizeof(dir), "gcs-test-config");
	snprintf(file, sizeof(file), "%s/cdappconfig.json", dir);
	setenv("ACG_CONFIG", file, 1);
	return 0;
}

static int clowder_teardown(void **state)
{
	(void)state;
	tmpdir_remove(dir);
	return 0;
}

#define FULL_FILE                                                                                  \
	"{\"publicPort\": 8080, \"webPort\": 8001, \"metricsPort\": 9001, "                        \
	"\"metricsPath\": \"/clowder-metrics\", \"logging\": {\"type\": \"null\"}, "               \
	"\"featureFlags\": {\"hostname\": \"unleash.env\", \"port\": 4242, \"scheme\": "           \
	"\"https\", \"clientAccessToken\": \"from-clowder\"}}"

static void load(struct gcs_config *cfg, const char *text)
{
	char err[512] = "";
	tmpdir_write(file, text);
	if (config_from_env(cfg, err, sizeof(err)) != 0)
		fail_msg("config_from_env: %s", err);
}

/* The five settings of the precedence table, as they came out. */
static void expect_settings(const struct gcs_config *cfg, const char *const want[5])
{
	const char *got[5] = {cfg->listen, cfg->metrics_listen, cfg->metrics_path, cfg->unleash_url,
	                      cfg->unleash_token};
	for (int i = 0; i < 5; i++)
		assert_string_equal(got[i], want[i]);
}

static void test_clowder_fills_every_unset_setting(void **state)
{
	(void)state;
	struct gcs_config cfg;
	load(&cfg, FULL_FILE);
	expect_settings(&cfg,
	                (const char *const[]){"0.0.0.0:8080", "0.0.0.0:9001", "/clowder-metrics",
	                                      "https://unleash.env:4242/api", "from-clowder"});
}

static void test_explicit_variables_win_over_clowder(void **state)
{
	(void)state;
	setenv("GCS_LISTEN", "127.0.0.1:7000", 1);
	setenv("GCS_METRICS_LISTEN", "127.0.0.1:7001", 1);
	setenv("GCS_METRICS_PATH", "/m", 1);
	setenv("GCS_UNLEASH_URL", "http://edge:3063/api", 1);
	setenv("GCS_UNLEASH_TOKEN", "from-secret", 1);
	struct gcs_config cfg;
	load(&cfg, FULL_FILE);
	expect_settings(&cfg, (const char *const[]){"127.0.0.1:7000", "127.0.0.1:7001", "/m",
	                                            "http://edge:3063/api", "from-secret"});
}

/* Each row apart: one variable set, the others still from the file. */
static void test_each_variable_wins_alone(void **state)
{
	(void)state;
	struct gcs_config cfg;
	setenv("GCS_UNLEASH_TOKEN", "from-secret", 1);
	load(&cfg, FULL_FILE);
	assert_string_equal(cfg.unleash_token, "from-secret");
	assert_string_equal(cfg.unleash_url, "https://unleash.env:4242/api");
	unsetenv("GCS_UNLEASH_TOKEN");
	setenv("GCS_UNLEASH_URL", "http://edge:3063/api", 1);
	load(&cfg, FULL_FILE);
	assert_string_equal(cfg.unleash_url, "http://edge:3063/api");
	assert_string_equal(cfg.unleash_token, "from-clowder");
	assert_string_equal(cfg.listen, "0.0.0.0:8080");
	/* set and empty counts as unset: the file's (a Template's empty
	 * parameter must not hide Clowder's connection) */
	setenv("GCS_UNLEASH_URL", "", 1);
	setenv("GCS_UNLEASH_TOKEN", "", 1);
	load(&cfg, FULL_FILE);
	assert_string_equal(cfg.unleash_url, "https://unleash.env:4242/api");
	assert_string_equal(cfg.unleash_token, "from-clowder");
	unsetenv("GCS_UNLEASH_TOKEN");
	unsetenv("GCS_UNLEASH_URL");
	setenv("GCS_METRICS_PATH", "/m", 1);
	load(&cfg, FULL_FILE);
	assert_string_equal(cfg.metrics_path, "/m");
	assert_string_equal(cfg.metrics_listen, "0.0.0.0:9001");
}

static void test_without_clowder_the_defaults_hold(void **state)
{
	(void)state;
	unsetenv("ACG_CONFIG");
	struct gcs_config cfg;
	char err[256] = "";
	assert_int_equal(config_from_env(&cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.listen, "0.0.0.0:8000");
	assert_null(cfg.metrics_listen);
	assert_string_equal(cfg.metrics_path, "/metrics");
	assert_null(cfg.unleash_url);
	assert_null(cfg.unleash_token);
}

static void test_web_port_when_no_public_port_and_no_flags(void **state)
{
	(void)state;
	struct gcs_config cfg;
	load(&cfg, "{\"webPort\": 8001, \"metricsPort\": 9001, \"metricsPath\": \"/metrics\", "
	           "\"logging\": {\"type\": \"null\"}}");
	assert_string_equal(cfg.listen, "0.0.0.0:8001");
	assert_null(cfg.unleash_url);
	assert_null(cfg.unleash_token);
	load(&cfg, "{\"metricsPort\": 9001, \"metricsPath\": \"/metrics\", "
	           "\"logging\": {\"type\": \"null\"}}");
	assert_string_equal(cfg.listen, "0.0.0.0:8000");
}

static void expect_file_refused(const char *text, const char *says)
{
	struct gcs_config cfg;
	char err[512] = "", want[512];
	tmpdir_write(file, text);
	assert_int_equal(config_from_env(&cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "ACG_CONFIG %s: %s", file, says);
	assert_string_equal(err, want);
}

#define BASE                                                                                       \
	"\"metricsPort\": 9001, \"metricsPath\": \"/metrics\", \"logging\": {\"type\": \"null\"}"

static void test_broken_files_are_refused_naming_pointer_and_rule(void **state)
{
	(void)state;
	expect_file_refused("{\"publicPort\": 70000, " BASE "}",
	                    "/publicPort: 70000 is not a port (1 to 65535)");
	expect_file_refused("{\"metricsPort\": 0, \"metricsPath\": \"/metrics\", "
	                    "\"logging\": {\"type\": \"null\"}}",
	                    "/metricsPort: 0 is not a port (1 to 65535)");
	expect_file_refused("{\"publicPort\": \"8000\", " BASE "}",
	                    "/publicPort: expected integer, got string");
	expect_file_refused("{\"publicPort\": 8000, \"metricsPath\": \"/metrics\", "
	                    "\"logging\": {\"type\": \"null\"}}",
	                    "missing required property \"metricsPort\"");
	expect_file_refused("{\"metricsPort\": 9001, \"metricsPath\": \"metrics\", "
	                    "\"logging\": {\"type\": \"null\"}}",
	                    "/metricsPath: \"metrics\" does not start with /");
	expect_file_refused("{\"publicPort\": 9001, " BASE "}",
	                    "/metricsPort: 9001 is also the public port: metrics must have a port "
	                    "of their own");
	expect_file_refused("{" BASE ", \"featureFlags\": {\"hostname\": \"u\", \"port\": 99999, "
	                    "\"scheme\": \"http\", \"clientAccessToken\": \"t\"}}",
	                    "/featureFlags/port: 99999 is not a port (1 to 65535)");
	expect_file_refused("{" BASE ", \"featureFlags\": {\"hostname\": \"u\", \"port\": 4242, "
	                    "\"scheme\": \"ftp\", \"clientAccessToken\": \"t\"}}",
	                    "/featureFlags/scheme: \"ftp\" is not one of [\"http\",\"https\"]");
	expect_file_refused(
	    "{" BASE ", \"featureFlags\": {\"hostname\": \"u\", \"port\": 4242, "
	    "\"scheme\": \"http\"}}",
	    "/featureFlags/clientAccessToken: missing, and GCS_UNLEASH_TOKEN is not "
	    "set: Unleash refuses a client without a token");
	expect_file_refused("[1, 2]", "expected object, got array");
	expect_file_refused("{\"publicPort\": 8000,", "invalid JSON: line 1, column 20: string or "
	                                              "'}' expected near end of file");
}

/* The missing token is refused only when the file's URL would be used.
 * (Shaped like test_each_variable_wins_alone: the same two variables, set
 * in turn, here against a file without a token.) */
static void test_missing_token_is_fine_with_an_explicit_token_or_url(void **state)
{
	(void)state;
	const char *text = "{" BASE ", \"featureFlags\": {\"hostname\": \"u\", \"port\": 4242, "
	                   "\"scheme\": \"http\"}}";
	struct gcs_config cfg;
	setenv("GCS_UNLEASH_TOKEN", "from-secret", 1);
	load(&cfg, text);
	assert_string_equal(cfg.unleash_url, "http://u:4242/api");
	assert_string_equal(cfg.unleash_token, "from-secret");
	unsetenv("GCS_UNLEASH_TOKEN");
	setenv("GCS_UNLEASH_URL", "http://edge:3063/api", 1);
	load(&cfg, text);
	assert_string_equal(cfg.unleash_url, "http://edge:3063/api");
	assert_null(cfg.unleash_token);
}

static void test_unreadable_files_are_refused(void **state)
{
	(void)state;
	struct gcs_config cfg;
	char err[512] = "", want[512];
	assert_int_equal(config_from_env(&cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "ACG_CONFIG %s: cannot read: No such file or directory", file);
	assert_string_equal(err, want);
	setenv("ACG_CONFIG", dir, 1);
	assert_int_equal(config_from_env(&cfg, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "ACG_CONFIG %s: cannot read: is a directory", dir);
	assert_string_equal(err, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_fetch_retry_defaults, setup),
	    cmocka_unit_test_setup(test_fetch_retry_settings_are_read, setup),
	    cmocka_unit_test_setup(test_bad_fetch_retry_settings_are_refused, setup),
	    cmocka_unit_test_setup(test_bad_metrics_settings_are_refused, setup),
	    cmocka_unit_test_setup(test_versions_given_stand_in_for_the_variables, setup),
	    cmocka_unit_test_setup_teardown(test_clowder_fills_every_unset_setting, clowder_setup,
	                                    clowder_teardown),
	    cmocka_unit_test_setup_teardown(test_explicit_variables_win_over_clowder, clowder_setup,
	                                    clowder_teardown),
	    cmocka_unit_test_setup_teardown(test_each_variable_wins_alone, clowder_setup,
	                                    clowder_teardown),
	    cmocka_unit_test_setup_teardown(test_without_clowder_the_defaults_hold, clowder_setup,
	                                    clowder_teardown),
	    cmocka_unit_test_setup_teardown(test_web_port_when_no_public_port_and_no_flags,
	                                    clowder_setup, clowder_teardown),
	    cmocka_unit_test_setup_teardown(test_broken_files_are_refused_naming_pointer_and_rule,
	                                    clowder_setup, clowder_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_missing_token_is_fine_with_an_explicit_token_or_url, clowder_setup,
	        clowder_teardown),
	    cmocka_unit_test_setup_teardown(test_unreadable_files_are_refused, clowder_setup,
	                                    clowder_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
