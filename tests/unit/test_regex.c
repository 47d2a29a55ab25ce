/* The Go RE2 check: each construct PCRE2 accepts and Go rejects, look-alikes
 * that are fine, PCRE2 syntax errors, and every container-log regex of the
 * real conditions in rules/. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "regex.h"

#define GO " is not supported by Go's RE2"

struct rejected {
	const char *pattern;
	const char *message;
};

static void expect_accepted(const char *pattern)
{
	char err[512] = "";
	if (!regex_check_re2(pattern, err, sizeof(err)))
		fail_msg("/%s/ should be accepted, got: %s", pattern, err);
}

static void expect_rejected(const struct rejected *r)
{
	char err[512] = "";
	if (regex_check_re2(r->pattern, err, sizeof(err)))
		fail_msg("/%s/ should be rejected with: %s", r->pattern, r->message);
	if (strcmp(err, r->message) != 0)
		fail_msg("/%s/: expected \"%s\", got \"%s\"", r->pattern, r->message, err);
}

static void test_rejected_constructs(void **state)
{
	(void)state;
	static const struct rejected cases[] = {
	    {"foo(?=bar)", "lookahead (?= at offset 3" GO},
	    {"(?!a)b", "negative lookahead (?! at offset 0" GO},
	    {"a(?<=b)", "lookbehind (?<= at offset 1" GO},
	    {"a(?<!b)", "negative lookbehind (?<! at offset 1" GO},
	    {"(a)\\1", "backreference \\1 at offset 3" GO},
	    {"(a)(b)\\2", "backreference \\2 at offset 6" GO},
	    {"(a)\\9", "backreference \\9 at offset 3" GO},
	    {"(a)\\18", "backreference \\1 at offset 3" GO},
	    /* octal in Go, but a backreference in PCRE2 once ten groups exist */
	    {"(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)\\12", "octal escape after ten capture groups at "
	                                           "offset 30 reads as a backreference in PCRE2"},
	    {"(?P<n>a)\\k<n>", "backreference \\k at offset 8" GO},
	    {"(?P<n>a)\\k{n}", "backreference \\k at offset 8" GO},
	    {"(a)\\g{1}", "backreference or subroutine call \\g at offset 3" GO},
	    {"(a)\\g1", "backreference or subroutine call \\g at offset 3" GO},
	    {"(?P<n>a)(?P=n)", "backreference (?P= at offset 8" GO},
	    {"(?>a+)b", "atomic group (?> at offset 0" GO},
	    {"a*+", "possessive quantifier *+ at offset 1" GO},
	    {"a++b", "possessive quantifier ++ at offset 1" GO},
	    {"a?+", "possessive quantifier ?+ at offset 1" GO},
	    {"xa{2,3}+", "possessive quantifier {2,3}+ at offset 2" GO},
	    {"a{2}+", "possessive quantifier {2}+ at offset 1" GO},
	    {"(a|(?R))", "recursion (?R at offset 3" GO},
	    {"(a)(?1)", "subroutine call (?1 at offset 3" GO},
	    {"(a)(?-1)", "subroutine call (?-1 at offset 3" GO},
	    {"(a)(?+1)(b)", "subroutine call (?+1 at offset 3" GO},
	    {"(?P<n>a)(?&n)", "subroutine call (?& at offset 8" GO},
	    {"(?P<n>a)(?P>n)", "subroutine call (?P> at offset 8" GO},
	    {"(a)?(?(1)b|c)", "conditional (?( at offset 4" GO},
	    {"(?C1)a", "callout (?C at offset 0" GO},
	    {"\\Gfoo", "anchor \\G at offset 0" GO},
	    {"foo\\Kbar", "match start reset \\K at offset 3" GO},
	    {"(*FAIL)", "backtracking verb or option (* at offset 0" GO},
	    {"a(*SKIP)b|c", "backtracking verb or option (* at offset 1" GO},
	    {"(*UTF)a", "backtracking verb or option (* at offset 0" GO},
	    /* Beyond the classic list: other PCRE2-only syntax. */
	    {"(?|(a)|(b))", "branch reset group (?| at offset 0" GO},
	    {"a(?#note)b", "comment (?# at offset 1" GO},
	    {"(?x)a b", "inline flag 'x' (Go has only i, m, s, U) at offset 0" GO},
	    {"(?i-)a", "flag group with a '-' not followed by a flag at offset 0" GO},
	    {"(?<name>a)",
	     "named group (?<name> at offset 0 is not supported by Go's RE2 before Go 1.22; "
	     "use (?P<name>...)"},
	    {"(?'name'a)",
	     "named group (?'name' at offset 0 is not supported by Go's RE2; use (?P<name>...)"},
	    {"a\\Z", "escape \\Z at offset 1" GO},
	    {"\\h+", "escape \\h at offset 0" GO},
	    {"\\R", "escape \\R at offset 0" GO},
	    {"\\e", "escape \\e at offset 0" GO},
	    {"\\cA", "escape \\c at offset 0" GO},
	    {"\\C", "escape \\C at offset 0" GO},
	    {"\\N", "escape \\N at offset 0" GO},
	    {"\\E", "escape \\E at offset 0" GO},
	    {"[\\b]", "escape \\b in a character class at offset 1" GO},
	    {"[a\\1]", "escape \\1 in a character class at offset 2" GO},
	    {"[\\Qa\\E]", "escape \\Q in a character class at offset 1" GO},
	    {"\\xA", "hex escape \\x without two digits or braces at offset 0" GO},
	    {"x\\v", "escape \\v at offset 1 means vertical whitespace in PCRE2 but a vertical "
	             "tab in Go's RE2"},
	    {"[\\v]", "escape \\v at offset 1 means vertical whitespace in PCRE2 but a vertical "
	              "tab in Go's RE2"},
	    {"\\\xc3\xa9", "escaped non-ASCII character at offset 0" GO},
	    {"a**", "quantifier right after a quantifier at offset 2" GO},
	    {"a{2}{3}", "quantifier right after a quantifier at offset 4" GO},
	    {"a*??", "quantifier right after a quantifier at offset 3" GO},
	    {"a{1001}", "repeat count over 1000 at offset 1" GO},
	    {"a{1,1001}", "repeat count over 1000 at offset 1" GO},
	    {"a{01}", "repeat count with a leading zero at offset 1" GO},
	    /* A literal backslash, then a backreference. */
	    {"\\\\\\1", "backreference \\1 at offset 2" GO},
	    /* Constructs after look-alikes are still found. */
	    {"[(?=]\\((?=x)", "lookahead (?= at offset 7" GO},
	    {"\\Q(?=\\E(?=x)", "lookahead (?= at offset 7" GO},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_rejected(&cases[i]);
}

static void test_accepted_lookalikes(void **state)
{
	/* \1..\7 followed by an octal digit is an octal escape in Go */
	expect_accepted("\\101");
	expect_accepted("x\\012y");
	expect_accepted("(a)\\101");
	(void)state;
	static const char *const ok[] = {
	    "\\(?=",        /* an optional literal '(' then '=' */
	    "[(?=]",        /* a class of three characters */
	    "[(?<=\\]]+",   /* an escaped ']' does not close the class */
	    "[]a]",         /* ']' first in a class is literal */
	    "[^](?=]",      /* also after '^' */
	    "\\\\1",        /* a literal backslash, then the digit 1 */
	    "\\\\(?:x)",    /* a literal backslash, then a group */
	    "\\Q(?=a++\\E", /* \Q...\E quotes everything */
	    "\\Qa\\\\1",    /* ...to the end without \E */
	    "a{2}",
	    "a{2,}",
	    "a{2,5}?",
	    "a{1000}",
	    "a{0,1000}",
	    "x{,3}",
	    "x{a}",
	    "a{",
	    "{",
	    "a*?",
	    "a+?",
	    "a??",
	    "(?i)abc",
	    "(?i:abc)",
	    "(?-s:.)",
	    "(?im-sU:x)",
	    "(?s)",
	    "(?P<name>x)",
	    "(?:x)|y",
	    "\\d+\\s*\\w?\\D\\S\\W",
	    "\\pL\\PL\\p{Greek}\\P{Han}",
	    "\\p{L}+",
	    "\\x41\\x{263a}",
	    "\\x{41}+",
	    "[[:alpha:]]+",
	    "[[:^digit:]x]",
	    "[\\d\\-_.]",
	    "\\.\\/\\_\\-\\ ",
	    "^foo$",
	    "\\Afoo\\z",
	    "\\bword\\B",
	    "\\0",
	    "\\012",
	    "[\\012]",
	    "[\\0]",
	    "\\a\\f\\n\\r\\t",
	    "[\\a\\f\\n\\r\\t]",
	    "caf\xc3\xa9+",
	    "[\xc3\xa9-\xc3\xbf]",
	    "kube-controller-manager.*",
	    "^(a|b)*c$",
	    "a|",
	    "()",
	};
	/* a list of samples, alike in shape only to test_semver.c's */
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		expect_accepted(ok[i]);
}

static void expect_pcre2_error(const char *pattern, const char *words, const char *offset)
{
	char err[512] = "";
	if (regex_check_re2(pattern, err, sizeof(err)))
		fail_msg("/%s/ should not compile", pattern);
	if (strncmp(err, "does not compile: ", 18) != 0 || !strstr(err, words))
		fail_msg("/%s/: expected a PCRE2 error about \"%s\", got \"%s\"", pattern, words,
		         err);
	size_t n = strlen(err), m = strlen(offset);
	if (n < m || strcmp(err + n - m, offset) != 0)
		fail_msg("/%s/: expected \"%s\" at the end of \"%s\"", pattern, offset, err);
}

static void test_pcre2_errors(void **state)
{
	(void)state;
	expect_pcre2_error("(abc", "missing closing parenthesis", "at offset 4");
	expect_pcre2_error("abc)", "unmatched closing parenthesis", "at offset 3");
	expect_pcre2_error("[abc", "missing terminating ]", "at offset 4");
	expect_pcre2_error("*a", "quantifier does not follow a repeatable item", "at offset 0");
	expect_pcre2_error("a\\", "\\ at end of pattern", "at offset 2");
	expect_pcre2_error("a{3,2}", "numbers out of order", "at offset 5");
	expect_pcre2_error("[z-a]", "range out of order", "at offset 3");
	expect_pcre2_error("ab\xff", "UTF-8 error", "at offset 2");
}

static void test_long_message_truncated(void **state)
{
	(void)state;
	char err[16];
	memset(err, 'x', sizeof(err));
	assert_false(regex_check_re2("foo(?=bar)", err, sizeof(err)));
	assert_int_equal(err[sizeof(err) - 1], '\0');
	assert_string_equal(err, "lookahead (?= a");
}

/* ---- the real conditions ---- */

static int regexes_checked;

static void check_string(const char *file, const char *where, const char *pattern)
{
	char err[512];
	if (!regex_check_re2(pattern, err, sizeof(err)))
		fail_msg("%s: %s: /%s/: %s", file, where, pattern, err);
	regexes_checked++;
}

static void check_container_logs(const char *file, json_t *root)
{
	json_t *logs = json_object_get(root, "container_logs");
	size_t i, j;
	json_t *log, *msg;
	char where[128];
	json_array_foreach(logs, i, log)
	{
		const char *pod = json_string_value(json_object_get(log, "pod_name_regex"));
		if (pod) {
			snprintf(where, sizeof(where), "/container_logs/%zu/pod_name_regex", i);
			check_string(file, where, pod);
		}
		/* The operator also matches the messages as one alternation. */
		size_t joined_len = 0;
		char *joined = NULL;
		json_array_foreach(json_object_get(log, "messages"), j, msg)
		{
			const char *m = json_string_value(msg);
			assert_non_null(m);
			snprintf(where, sizeof(where), "/container_logs/%zu/messages/%zu", i, j);
			check_string(file, where, m);
			size_t mlen = strlen(m);
			joined = realloc(joined, joined_len + mlen + 2);
			assert_non_null(joined);
			if (joined_len)
				joined[joined_len++] = '|';
			memcpy(joined + joined_len, m, mlen + 1);
			joined_len += mlen;
		}
		if (joined) {
			snprintf(where, sizeof(where), "/container_logs/%zu/messages joined", i);
			check_string(file, where, joined);
			free(joined);
		}
	}
}

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	size_t n = strlen(path);
	if (type != FTW_F || n < 5 || strcmp(path + n - 5, ".json") != 0)
		return 0;
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	if (!root)
		fail_msg("%s:%d: %s", path, jerr.line, jerr.text);
	if (json_is_object(root))
		check_container_logs(path, root);
	json_decref(root);
	return 0;
}

static void test_real_conditions(void **state)
{
	(void)state;
	DIR *d = opendir("rules");
	if (!d)
		fail_msg("rules/ not found: run from the repository root");
	int versions = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char v2[512];
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(v2, sizeof(v2), "rules/%s/v2", e->d_name);
		if (stat(v2, &st) != 0 || !S_ISDIR(st.st_mode))
			continue;
		versions++;
		assert_int_equal(nftw(v2, visit, 16, FTW_PHYS), 0);
	}
	closedir(d);
	assert_true(versions > 0);
	/* Guards against a walk that silently found nothing. */
	assert_true(regexes_checked > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rejected_constructs),
	    cmocka_unit_test(test_accepted_lookalikes),
	    cmocka_unit_test(test_pcre2_errors),
	    cmocka_unit_test(test_long_message_truncated),
	    cmocka_unit_test(test_real_conditions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
