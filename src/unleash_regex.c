/* unleash_regex: REGEX constraints, compiled once, matched in bounded time. */
#include "unleash_regex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"
#include "regex.h"

/* Bounds on what an Unleash admin can make every request do: RE2 matches in
 * time linear in the subject, with a program of at most MAX_MEMORY;
 * context values longer than MAX_SUBJECT never match, so one match costs
 * at most microseconds. */
#define MAX_PATTERN 1024
#define MAX_MEMORY  (1L << 20)
#define MAX_SUBJECT 1024

struct unleash_regex {
	struct pattern *p;
};

bool unleash_regex_match(const struct unleash_regex *re, const char *subject, size_t len)
{
	return re && len <= MAX_SUBJECT && pattern_match(re->p, subject, len);
}

const char *unleash_regex_compile(const char *text, bool caseless, struct unleash_regex **out,
                                  char *why, size_t whylen)
{
	*out = NULL;
	if (strlen(text) > MAX_PATTERN) {
		snprintf(why, whylen, "pattern longer than %d bytes", MAX_PATTERN);
		return why;
	}
	/* What Go's regexp refuses the Go SDK cannot use either, even where
	 * RE2 itself would accept it. */
	char re2[256];
	if (!regex_check_re2(text, re2, sizeof(re2))) {
		snprintf(why, whylen, "%s", re2);
		return why;
	}
	struct unleash_regex *re = malloc(sizeof(*re));
	if (!re) {
		snprintf(why, whylen, "out of memory");
		return why;
	}
	if (!(re->p = pattern_compile(text, caseless, MAX_MEMORY, why, whylen))) {
		free(re);
		return why;
	}
	*out = re;
	return NULL;
}

void unleash_regex_free(struct unleash_regex *re)
{
	if (re)
		pattern_free(re->p);
	free(re);
}
