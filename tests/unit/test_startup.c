/* The one loader behind serving, --check, --route and --diff: both versions
 * and the script loaded or nothing kept, every problem told once with the
 * caller's labels and closing words. Runs from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conditions.h"
#include "config.h"
#include "log.h"
#include "rules_config.h"
#include "startup.h"

static struct gcs_config cfg;

static int setup(void **state)
{
	(void)state;
	rules_config(&cfg);
	/* as for a command: progress records would only be noise on stderr */
	log_set_level(LOGL_WARN);
	return 0;
}

/* What a stream received, as one string (the caller frees it). */
static char *contents(FILE *f)
{
	fflush(f);
	long n = ftell(f);
	assert_true(n >= 0);
	char *text = calloc(1, (size_t)n + 1);
	rewind(f);
	assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
	return text;
}

/* startup_load with stderr going to a temporary file; *told gets what it
 * wrote there. */
static int load_telling(struct startup *s, const struct startup_plan *plan, char **told)
{
	FILE *err = tmpfile();
	assert_non_null(err);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(err), STDERR_FILENO) >= 0);
	int rc = startup_load(s, &cfg, plan);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	*told = contents(err);
	fclose(err);
	return rc;
}

static const char *last_line(const char *text)
{
	size_t n = strlen(text);
	assert_true(n > 0 && text[n - 1] == '\n');
	const char *p = text + n - 1;
	while (p > text && p[-1] != '\n')
		p--;
	return p;
}

/* What a failed load, or startup_free, leaves: nothing. */
static void assert_nothing_kept(const struct startup *s)
{
	assert_null(s->schemas);
	assert_null(s->stable);
	assert_null(s->canary);
	assert_null(s->routing);
}

/* Equal versions are one tree, fetched once; the script's line closes the
 * summary. */
static void test_same_version_once_with_script(void **state)
{
	(void)state;
	FILE *summary = tmpfile();
	const struct startup_plan plan = {
	    .versions = {"1.1.3", "1.1.3"},
	    .labels = {"stable", "canary"},
	    .routing = true,
	    .plain = true,
	    .refusal = "not serving",
	    .summary = summary,
	};
	struct startup s;
	char *told;
	assert_int_equal(load_telling(&s, &plan, &told), 0);
	assert_string_equal(told, "");
	assert_non_null(s.schemas);
	assert_non_null(s.stable);
	assert_ptr_equal(s.canary, s.stable);
	assert_non_null(s.routing);
	char *text = contents(summary);
	assert_non_null(strstr(text, "1.1.3"));
	char want[512];
	snprintf(want, sizeof(want), "routing script %s: ok\n", cfg.routing_script);
	assert_string_equal(last_line(text), want);
	free(text);
	free(told);
	fclose(summary);
	startup_free(&s);
	assert_nothing_kept(&s);
}

/* No canary version: no canary set, and no script unless asked for. */
static void test_without_canary_or_script(void **state)
{
	(void)state;
	const struct startup_plan plan = {
	    .versions = {"1.1.3", NULL},
	    .labels = {"old", "new"},
	    .plain = true,
	    .refusal = "nothing compared",
	};
	struct startup s;
	char *told;
	assert_int_equal(load_telling(&s, &plan, &told), 0);
	assert_string_equal(told, "");
	assert_non_null(s.stable);
	assert_null(s.canary);
	assert_null(s.routing);
	free(told);
	startup_free(&s);
}

/* Both versions' problems are told, each under its label, then one count
 * with the caller's closing words; nothing is kept and the script is not
 * loaded. */
static void test_problems_of_both_told_once(void **state)
{
	(void)state;
	const struct startup_plan plan = {
	    .versions = {"9.9.8", "9.9.9"},
	    .labels = {"old", "new"},
	    .routing = true,
	    .plain = true,
	    .refusal = "nothing compared",
	};
	struct startup s;
	char *told;
	assert_int_equal(load_telling(&s, &plan, &told), -1);
	assert_non_null(strstr(told, "old 9.9.8: v1/rules.json: "));
	assert_non_null(strstr(told, "new 9.9.9: v1/rules.json: "));
	assert_null(
	    strstr(strstr(told, "old 9.9.8: v1/rules.json: ") + 1, "old 9.9.8: v1/rules.json: "));
	const char *last = last_line(told);
	assert_int_equal(strncmp(last, "gcs: ", 5), 0);
	assert_non_null(strstr(last, " problems; nothing compared\n"));
	assert_nothing_kept(&s);
	free(told);
}

/* Schemas that cannot be read stop everything before any download. */
static void test_missing_schemas(void **state)
{
	(void)state;
	struct gcs_config saved = cfg;
	cfg.schema_dir = "tests/unit/no-such-schemas";
	/* Each test spells its whole plan, as main's callers do, rather than
	 * sharing a base: what a test loads stands beside what it asserts. */
	const struct startup_plan plan = {
	    .versions = {"1.1.3", "1.2.0"},
	    .labels = {"stable", "canary"},
	    .routing = true,
	    .plain = true,
	    .refusal = "not serving",
	};
	struct startup s;
	char *told;
	int rc = load_telling(&s, &plan, &told);
	cfg = saved;
	assert_int_equal(rc, -1);
	assert_int_equal(strncmp(told, "schemas: ", 9), 0);
	assert_null(strstr(told, "stable 1.1.3"));
	assert_string_equal(last_line(told), "gcs: 1 problem; not serving\n");
	assert_nothing_kept(&s);
	free(told);
}

/* cmocka's list of this suite's tests: every suite's main has this shape */
int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_same_version_once_with_script),
	    cmocka_unit_test(test_without_canary_or_script),
	    cmocka_unit_test(test_problems_of_both_told_once),
	    cmocka_unit_test(test_missing_schemas),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
