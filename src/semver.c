#include "semver.h"

#include <string.h>

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

/* A numeric core part: digits, no leading zero, fits in 64 bits. */
static bool parse_number(const char **p, const char *end, uint64_t *out)
{
	const char *s = *p;
	if (s == end || !is_digit(*s))
		return false;
	if (*s == '0' && s + 1 < end && is_digit(s[1]))
		return false;
	uint64_t v = 0;
	while (s < end && is_digit(*s)) {
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*out = v;
	return true;
}

/* Dot-separated identifiers up to end or stop; numeric pre-release
 * identifiers must not have leading zeros (numeric_rule). */
static bool parse_idents(const char **p, const char *end, char stop, bool numeric_rule)
{
	const char *s = *p;
	for (;;) {
		const char *start = s;
		bool all_digits = true;
		while (s < end && *s != '.' && *s != stop) {
			if (!is_ident_char(*s))
				return false;
			if (!is_digit(*s))
				all_digits = false;
			s++;
		}
		if (s == start)
			return false;
		if (numeric_rule && all_digits && *start == '0' && s - start > 1)
			return false;
		if (s < end && *s == '.') {
			s++;
			continue;
		}
		break;
	}
	*p = s;
	return true;
}

bool semver_parse(const char *s, size_t len, struct semver *out)
{
	const char *p = s, *end = s + len;
	struct semver v = {0};
	if (!parse_number(&p, end, &v.major) || p == end || *p++ != '.')
		return false;
	if (!parse_number(&p, end, &v.minor) || p == end || *p++ != '.')
		return false;
	if (!parse_number(&p, end, &v.patch))
		return false;
	if (p < end && *p == '-') {
		v.pre = ++p;
		if (!parse_idents(&p, end, '+', true))
			return false;
		v.pre_len = (size_t)(p - v.pre);
	}
	if (p < end && *p == '+') {
		p++;
		if (!parse_idents(&p, end, '\0', false))
			return false;
	}
	if (p != end)
		return false;
	*out = v;
	return true;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
	return (a > b) - (a < b);
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_digit(s[i]))
			return false;
	return true;
}

/* One pre-release identifier against another (SemVer 11.4). */
static int cmp_ident(const char *a, size_t an, const char *b, size_t bn)
{
	bool a_num = all_digits(a, an), b_num = all_digits(b, bn);
	if (a_num && b_num) {
		/* no leading zeros, so the longer number is the larger */
		if (an != bn)
			return an < bn ? -1 : 1;
		int c = memcmp(a, b, an);
		return (c > 0) - (c < 0);
	}
	if (a_num != b_num)
		return a_num ? -1 : 1;
	int c = memcmp(a, b, an < bn ? an : bn);
	if (c != 0)
		return c < 0 ? -1 : 1;
	return cmp_u64(an, bn);
}

int semver_cmp(const struct semver *a, const struct semver *b)
{
	int c;
	if ((c = cmp_u64(a->major, b->major)) || (c = cmp_u64(a->minor, b->minor)) ||
	    (c = cmp_u64(a->patch, b->patch)))
		return c;
	if (!a->pre || !b->pre)
		return a->pre ? -1 : (b->pre ? 1 : 0);

	const char *pa = a->pre, *ea = a->pre + a->pre_len;
	const char *pb = b->pre, *eb = b->pre + b->pre_len;
	while (pa < ea && pb < eb) {
		const char *da = memchr(pa, '.', (size_t)(ea - pa));
		const char *db = memchr(pb, '.', (size_t)(eb - pb));
		if (!da)
			da = ea;
		if (!db)
			db = eb;
		if ((c = cmp_ident(pa, (size_t)(da - pa), pb, (size_t)(db - pb))))
			return c;
		pa = da < ea ? da + 1 : ea;
		pb = db < eb ? db + 1 : eb;
	}
	/* a larger set of identifiers has higher precedence */
	return (pa < ea) - (pb < eb);
}
