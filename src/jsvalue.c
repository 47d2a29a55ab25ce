/* jsvalue: values read as the JavaScript SDKs read them. */
#include "jsvalue.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool jsvalue_is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool jsvalue_number(const char *text, double *out)
{
	size_t len = strlen(text);
	while (len > 0 && jsvalue_is_space((unsigned char)*text)) {
		text++;
		len--;
	}
	while (len > 0 && jsvalue_is_space((unsigned char)text[len - 1]))
		len--;
	if (len == 0) {
		*out = 0;
		return true;
	}
	char buf[128];
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	const char *s = buf;
	int sign = 1;
	if (*s == '+' || *s == '-') {
		sign = *s == '-' ? -1 : 1;
		s++;
	}
	if (strcmp(s, "Infinity") == 0) {
		*out = sign * INFINITY;
		return true;
	}
	if (s == buf && s[0] == '0' &&
	    (s[1] == 'x' || s[1] == 'X' || s[1] == 'o' || s[1] == 'O' || s[1] == 'b' ||
	     s[1] == 'B')) {
		int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
		if (!s[2])
			return false;
		double v = 0;
		for (const char *q = s + 2; *q; q++) {
			int d = isdigit((unsigned char)*q) ? *q - '0'
			        : isxdigit((unsigned char)*q)
			            ? tolower((unsigned char)*q) - 'a' + 10
			            : 99;
			if (d >= base)
				return false;
			v = v * base + d;
		}
		*out = v;
		return true;
	}
	/* A decimal literal: digits, an optional fraction, an optional exponent. */
	const char *q = s;
	size_t digits = 0;
	while (isdigit((unsigned char)*q)) {
		q++;
		digits++;
	}
	if (*q == '.') {
		q++;
		while (isdigit((unsigned char)*q)) {
			q++;
			digits++;
		}
	}
	if (digits == 0)
		return false;
	if (*q == 'e' || *q == 'E') {
		q++;
		if (*q == '+' || *q == '-')
			q++;
		if (!isdigit((unsigned char)*q))
			return false;
		while (isdigit((unsigned char)*q))
			q++;
	}
	if (*q)
		return false;
	*out = sign * strtod(s, NULL);
	return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool digits_at(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool jsvalue_date(const char *s, double *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0;
	double frac = 0;
	if (!digits_at(s, 4, &y) || s[4] != '-' || !digits_at(s + 5, 2, &mo) || s[7] != '-' ||
	    !digits_at(s + 8, 2, &d))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31)
		return false;
	s += 10;
	if (*s) {
		if ((*s != 'T' && *s != ' ') || !digits_at(s + 1, 2, &h) || s[3] != ':' ||
		    !digits_at(s + 4, 2, &mi))
			return false;
		s += 6;
		if (*s == ':') {
			if (!digits_at(s + 1, 2, &sec))
				return false;
			s += 3;
			if (*s == '.') {
				s++;
				double scale = 0.1;
				if (!isdigit((unsigned char)*s))
					return false;
				while (isdigit((unsigned char)*s)) {
					frac += (*s - '0') * scale;
					scale /= 10;
					s++;
				}
			}
		}
		if (h > 24 || mi > 59 || sec > 59)
			return false;
	}
	long offset = 0;
	if (*s && !((*s == 'Z' || *s == 'z') && !s[1])) {
		int oh, om;
		if (*s != '+' && *s != '-')
			return false;
		int sign = *s == '-' ? -1 : 1;
		if (!digits_at(s + 1, 2, &oh))
			return false;
		const char *m = s + 3;
		if (*m == ':')
			m++;
		if (!digits_at(m, 2, &om) || m[2])
			return false;
		offset = sign * (oh * 60L + om) * 60L;
	}
	*out = (double)days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400.0 + h * 3600.0 +
	       mi * 60.0 + sec + frac - (double)offset;
	return true;
}

/* "10.0.0.0/8", "2001:db8::/32" or a single address. */
bool jsvalue_cidr_parse(const char *text, bool v4_only, struct jsvalue_cidr *out)
{
	char addr[64];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	if (alen == 0 || alen >= sizeof(addr))
		return false;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	memset(out, 0, sizeof(*out));
	out->family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	if ((v4_only && out->family != AF_INET) || inet_pton(out->family, addr, out->addr) != 1)
		return false;
	unsigned max = out->family == AF_INET ? 32 : 128;
	out->prefix = max;
	if (slash) {
		const char *b = slash + 1;
		if (!*b || strlen(b) > 3)
			return false;
		unsigned v = 0;
		for (; *b; b++) {
			if (!isdigit((unsigned char)*b))
				return false;
			v = v * 10 + (unsigned)(*b - '0');
		}
		if (v > max)
			return false;
		out->prefix = v;
	}
	return true;
}

bool jsvalue_cidr_match(const struct jsvalue_cidr *cidrs, size_t n, const char *address)
{
	unsigned char a[16];
	int family = strchr(address, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(family, address, a) != 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct jsvalue_cidr *c = &cidrs[i];
		if (c->family != family)
			continue;
		unsigned full = c->prefix / 8, rest = c->prefix % 8;
		if (memcmp(c->addr, a, full) != 0)
			continue;
		unsigned char mask = (unsigned char)(0xff << (8 - rest));
		if (rest && ((c->addr[full] ^ a[full]) & mask))
			continue;
		return true;
	}
	return false;
}
