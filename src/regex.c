/* The RE2 check is a scanner over the pattern, not a parser: it walks
 * escapes, character classes, group openings and quantifiers, and rejects
 * what PCRE2 accepts but Go's regexp/syntax does not (or reads differently).
 *
 * A pattern the scan passes is then compiled by PCRE2 and by RE2 (C++, the
 * syntax Go's regexp was ported from), which refuses what the scan cannot
 * see: limits on the parsed tree (nesting depth over 1000, programs too
 * large, (a{500}){500}), Unicode property and POSIX class names RE2 does not
 * know (\pl: PCRE2 reads names without regard to case), capture group names.
 *
 * What it does not catch: Go and RE2 differing on a limit or a Unicode
 * table's version; same syntax, different meaning: $ before a final newline
 * in PCRE2, \s matching \v in PCRE2, case folding of non-ASCII letters.
 * \1..\7 followed by an octal digit is an octal escape in Go; PCRE2 reads it
 * the same way while the pattern has fewer than ten capture groups, so it is
 * accepted then and refused as ambiguous otherwise. It is stricter than Go
 * on purpose for (?<name> (accepted only since Go 1.22; older Insights
 * Operators reject it). */
#include "regex.h"

#include "pattern.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#define GO_MAX_REPEAT 1000
#define NOT_IN_GO     "is not supported by Go's RE2"

#define RE2_MAX_MEMORY (8L << 20) /* RE2's default */

struct scan {
	const char *p; /* NUL-terminated, so p[len] is a safe sentinel */
	size_t len;
	char *err;
	size_t errlen;
};

static bool reject(struct scan *s, size_t at, const char *what, const char *why)
{
	snprintf(s->err, s->errlen, "%s at offset %zu %s", what, at, why);
	return false;
}

/* Counts '(' that open a capture group, skipping escapes and classes;
 * named groups count too. A rough count is enough for the octal rule. */
static int capture_groups(const char *p)
{
	int n = 0;
	bool in_class = false;
	for (; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
		} else if (in_class) {
			in_class = *p != ']';
		} else if (*p == '[') {
			in_class = true;
			if (p[1] == ']' || (p[1] == '^' && p[2] == ']'))
				p += p[1] == '^' ? 2 : 1;
		} else if (*p == '(' && (p[1] != '?' || p[2] == 'P' || p[2] == '<')) {
			n++;
		}
	}
	return n;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_octal(char c)
{
	return c >= '0' && c <= '7';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_alnum(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Past a {...} starting at i, or i itself when there is none; keeps \p{L}
 * and \x{41} from looking like quantifiers. */
static size_t skip_braces(const struct scan *s, size_t i)
{
	if (s->p[i] != '{')
		return i;
	const char *end = strchr(s->p + i, '}');
	return end ? (size_t)(end - s->p) + 1 : s->len;
}

/* \x at e: Go wants exactly two hex digits or \x{hex}, where PCRE2 also
 * takes zero or one digit. Returns the offset after it, 0 when invalid. */
static size_t hex_escape_end(const struct scan *s, size_t e)
{
	size_t i = e + 2;
	if (s->p[i] == '{') {
		size_t j = i + 1;
		while (is_hex(s->p[j]))
			j++;
		return (j > i + 1 && s->p[j] == '}') ? j + 1 : 0;
	}
	return (is_hex(s->p[i]) && is_hex(s->p[i + 1])) ? i + 2 : 0;
}

/* An escape both engines read the same way, outside or inside a class. */
static bool is_common_escape(char c)
{
	return strchr("dDsSwWafnrt", c) != NULL;
}

/* Checks the escape whose backslash is at e; on success *next is past it. */
static bool check_escape(struct scan *s, size_t e, bool in_class, size_t *next)
{
	char c = s->p[e + 1];
	char what[64];
	*next = e + 2;
	if (c == '\0') {
		*next = e + 1; /* a trailing backslash: PCRE2 reports it */
		return true;
	}
	if ((unsigned char)c >= 0x80)
		return reject(s, e, "escaped non-ASCII character", NOT_IN_GO);
	if (!is_alnum(c) || is_common_escape(c))
		return true;
	if (c == 'p' || c == 'P') {
		*next = skip_braces(s, e + 2);
		return true;
	}
	if (c == 'x') {
		*next = hex_escape_end(s, e);
		if (*next)
			return true;
		return reject(s, e, "hex escape \\x without two digits or braces", NOT_IN_GO);
	}
	if (c == '0' || (in_class && c >= '1' && c <= '7' && is_octal(s->p[e + 2]))) {
		size_t i = e + 2;
		while (i < e + 4 && is_octal(s->p[i]))
			i++;
		*next = i;
		return true;
	}
	if (c == 'v')
		return reject(s, e, "escape \\v",
		              "means vertical whitespace in PCRE2 but a vertical tab in Go's RE2");
	if (!in_class) {
		if (strchr("AzbB", c))
			return true;
		if (c == 'Q') {
			const char *end = strstr(s->p + e + 2, "\\E");
			*next = end ? (size_t)(end - s->p) + 2 : s->len;
			return true;
		}
		if (c >= '1' && c <= '7' && is_octal(s->p[e + 2])) {
			if (capture_groups(s->p) >= 10)
				return reject(s, e, "octal escape after ten capture groups",
				              "reads as a backreference in PCRE2");
			size_t i = e + 2;
			while (i < e + 4 && is_octal(s->p[i]))
				i++;
			*next = i;
			return true;
		}
		if (is_digit(c)) {
			snprintf(what, sizeof(what), "backreference \\%c", c);
			return reject(s, e, what, NOT_IN_GO);
		}
		if (c == 'k')
			return reject(s, e, "backreference \\k", NOT_IN_GO);
		if (c == 'g')
			return reject(s, e, "backreference or subroutine call \\g", NOT_IN_GO);
		if (c == 'G')
			return reject(s, e, "anchor \\G", NOT_IN_GO);
		if (c == 'K')
			return reject(s, e, "match start reset \\K", NOT_IN_GO);
	}
	snprintf(what, sizeof(what), "escape \\%c%s", c, in_class ? " in a character class" : "");
	return reject(s, e, what, NOT_IN_GO);
}

/* Checks the class whose '[' is at b; on success *next is past its ']'. */
static bool check_class(struct scan *s, size_t b, size_t *next)
{
	size_t i = b + 1;
	if (s->p[i] == '^')
		i++;
	if (s->p[i] == ']') /* first, it is a literal */
		i++;
	while (i < s->len && s->p[i] != ']') {
		if (s->p[i] == '\\') {
			if (!check_escape(s, i, true, &i))
				return false;
		} else if (s->p[i] == '[' && s->p[i + 1] == ':') {
			const char *end = strstr(s->p + i + 2, ":]");
			i = end ? (size_t)(end - s->p) + 2 : i + 1;
		} else {
			i++;
		}
	}
	*next = i < s->len ? i + 1 : s->len;
	return true;
}

/* Go's flags are i, m, s and U, with at most one '-' that must be
 * followed by a flag; the group ends with ':' or ')'. */
static bool check_flags(struct scan *s, size_t g, size_t *next)
{
	bool negated = false, flag_since_minus = false;
	char what[64];
	for (size_t i = g + 2; i < s->len; i++) {
		char c = s->p[i];
		if (c == 'i' || c == 'm' || c == 's' || c == 'U') {
			flag_since_minus = true;
		} else if (c == '-' && !negated) {
			negated = true;
			flag_since_minus = false;
		} else if ((c == ':' || c == ')') && (!negated || flag_since_minus)) {
			*next = i + 1;
			return true;
		} else if (c == ':' || c == ')' || c == '-') {
			return reject(s, g, "flag group with a '-' not followed by a flag",
			              NOT_IN_GO);
		} else {
			snprintf(what, sizeof(what), "inline flag '%c' (Go has only i, m, s, U)",
			         (unsigned char)c < 0x80 ? c : '?');
			return reject(s, g, what, NOT_IN_GO);
		}
	}
	*next = s->len;
	return true;
}

/* Checks the group opening "(?" at g; on success *next is past the part of
 * its syntax that is not an ordinary pattern. */
/* Group openings Go's RE2 does not take, by what follows "(?"; a longer
 * opening stands before the shorter one it starts with. */
static const struct {
	const char *after, *construct, *why;
} foreign_groups[] = {
    {"=", "lookahead (?=", NOT_IN_GO},
    {"!", "negative lookahead (?!", NOT_IN_GO},
    {"<=", "lookbehind (?<=", NOT_IN_GO},
    {"<!", "negative lookbehind (?<!", NOT_IN_GO},
    {"<", "named group (?<name>", "is not supported by Go's RE2 before Go 1.22; use (?P<name>...)"},
    {"'", "named group (?'name'", "is not supported by Go's RE2; use (?P<name>...)"},
    {">", "atomic group (?>", NOT_IN_GO},
    {"|", "branch reset group (?|", NOT_IN_GO},
    {"#", "comment (?#", NOT_IN_GO},
    {"(", "conditional (?(", NOT_IN_GO},
    {"C", "callout (?C", NOT_IN_GO},
    {"R", "recursion (?R", NOT_IN_GO},
    {"&", "subroutine call (?&", NOT_IN_GO},
    {"P=", "backreference (?P=", NOT_IN_GO},
    {"P>", "subroutine call (?P>", NOT_IN_GO},
};

static bool check_group(struct scan *s, size_t g, size_t *next)
{
	const char *q = s->p + g + 2;
	char what[64];
	if (q[0] == 'P' && q[1] == '<') { /* (?P<name>...): Go's own named group */
		const char *end = strchr(q, '>');
		*next = end ? (size_t)(end - s->p) + 1 : s->len;
		return true;
	}
	for (size_t i = 0; i < sizeof(foreign_groups) / sizeof(foreign_groups[0]); i++)
		if (strncmp(q, foreign_groups[i].after, strlen(foreign_groups[i].after)) == 0)
			return reject(s, g, foreign_groups[i].construct, foreign_groups[i].why);
	if (q[0] == 'P')
		return reject(s, g, "group (?P", NOT_IN_GO);
	if (is_digit(q[0]) || ((q[0] == '+' || q[0] == '-') && is_digit(q[1]))) {
		int n = is_digit(q[0]) ? 1 : 2;
		snprintf(what, sizeof(what), "subroutine call (?%.*s", n, q);
		return reject(s, g, what, NOT_IN_GO);
	}
	return check_flags(s, g, next);
}

/* A {n}, {n,} or {n,m} at i as PCRE2 reads it: on success *next is past
 * it. Anything else is a literal '{' in both engines. */
static bool parse_repeat(const struct scan *s, size_t i, size_t *next, unsigned long *min,
                         unsigned long *max, bool *leading_zero)
{
	size_t j = i + 1;
	*min = *max = 0;
	*leading_zero = false;
	if (!is_digit(s->p[j]))
		return false;
	*leading_zero = s->p[j] == '0' && is_digit(s->p[j + 1]);
	for (; is_digit(s->p[j]); j++)
		*min = *min > 100000 ? *min : *min * 10 + (unsigned long)(s->p[j] - '0');
	*max = *min;
	if (s->p[j] == ',') {
		j++;
		if (is_digit(s->p[j]) && s->p[j] == '0' && is_digit(s->p[j + 1]))
			*leading_zero = true;
		for (*max = 0; is_digit(s->p[j]); j++)
			*max = *max > 100000 ? *max : *max * 10 + (unsigned long)(s->p[j] - '0');
	}
	if (s->p[j] != '}')
		return false;
	*next = j + 1;
	return true;
}

/* The quantifier at i (its operator already known to end at op_end):
 * Go allows a lazy '?' after it, no possessive '+', and no second
 * quantifier right after. */
static bool check_quantifier_suffix(struct scan *s, size_t i, size_t op_end, size_t *next)
{
	char what[64];
	if (s->p[op_end] == '+') {
		snprintf(what, sizeof(what), "possessive quantifier %.*s+", (int)(op_end - i),
		         s->p + i);
		return reject(s, i, what, NOT_IN_GO);
	}
	*next = s->p[op_end] == '?' ? op_end + 1 : op_end;
	return true;
}

static bool scan_pattern(struct scan *s)
{
	bool after_quantifier = false;
	size_t i = 0;
	while (i < s->len) {
		char c = s->p[i];
		size_t next = i + 1;
		bool quantifier = false;
		if (c == '\\') {
			if (!check_escape(s, i, false, &next))
				return false;
		} else if (c == '[') {
			if (!check_class(s, i, &next))
				return false;
		} else if (c == '(' && s->p[i + 1] == '*') {
			return reject(s, i, "backtracking verb or option (*", NOT_IN_GO);
		} else if (c == '(' && s->p[i + 1] == '?') {
			if (!check_group(s, i, &next))
				return false;
		} else if (c == '*' || c == '+' || c == '?' || c == '{') {
			size_t op_end = i + 1;
			unsigned long min, max;
			bool leading_zero;
			quantifier =
			    c != '{' || parse_repeat(s, i, &op_end, &min, &max, &leading_zero);
			if (quantifier && after_quantifier)
				return reject(s, i, "quantifier right after a quantifier",
				              NOT_IN_GO);
			if (quantifier && c == '{' && leading_zero)
				return reject(s, i, "repeat count with a leading zero", NOT_IN_GO);
			if (quantifier && c == '{' && (min > GO_MAX_REPEAT || max > GO_MAX_REPEAT))
				return reject(s, i, "repeat count over 1000", NOT_IN_GO);
			if (quantifier && !check_quantifier_suffix(s, i, op_end, &next))
				return false;
		}
		after_quantifier = quantifier;
		i = next;
	}
	return true;
}

bool regex_check_re2(const char *pattern, char *err, size_t errlen)
{
	struct scan s = {.p = pattern, .len = strlen(pattern), .err = err, .errlen = errlen};
	if (!scan_pattern(&s))
		return false;

	int code;
	PCRE2_SIZE offset;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code,
	                               &offset, NULL);
	if (!re) {
		PCRE2_UCHAR msg[256];
		if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
			snprintf((char *)msg, sizeof(msg), "error %d", code);
		snprintf(err, errlen, "does not compile: %s at offset %zu", (const char *)msg,
		         (size_t)offset);
		return false;
	}
	pcre2_code_free(re);
	/* What the scan cannot see (names, limits of the parsed tree) RE2
	 * itself, Go's syntax in C++, refuses. */
	struct pattern *p = pattern_compile(pattern, false, RE2_MAX_MEMORY, err, errlen);
	if (!p)
		return false;
	pattern_free(p);
	return true;
}
