/* jsvalue: texts read as the JavaScript SDKs (the Node SDK, Unleash) read
 * them: white space, Number(text), ISO-8601 dates, IP addresses and CIDR
 * ranges. Pure functions, no allocation. */
#ifndef GCS_JSVALUE_H
#define GCS_JSVALUE_H

#include <stdbool.h>
#include <stddef.h>

/* What String.prototype.trim removes, in ASCII. */
bool jsvalue_is_space(unsigned char c);

/* JavaScript's Number(text); false for NaN. */
bool jsvalue_number(const char *text, double *out);

/* ISO-8601 ("2022-01-29", "2022-01-29T13:00:00.000Z", "...+02:00"; no
 * offset is UTC) to seconds since the epoch; false when not a date. */
bool jsvalue_date(const char *text, double *out);

struct jsvalue_cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

/* "10.0.0.0/8", "2001:db8::/32" or a single address (a full prefix);
 * v4_only refuses IPv6. */
bool jsvalue_cidr_parse(const char *text, bool v4_only, struct jsvalue_cidr *out);

/* An IP address (v4 or v6) in any of the ranges. */
bool jsvalue_cidr_match(const struct jsvalue_cidr *cidrs, size_t n, const char *address);

#endif
