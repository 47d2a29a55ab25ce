/* unleash_regex: the patterns of Unleash's REGEX operator, compiled once by
 * RE2 and matched in bounded time, whatever an Unleash admin writes: RE2
 * matches in time linear in the subject, with a program of bounded size,
 * and a subject over 1,024 bytes never matches (a cluster ID is 36). */
#ifndef GCS_UNLEASH_REGEX_H
#define GCS_UNLEASH_REGEX_H

#include <stdbool.h>
#include <stddef.h>

struct unleash_regex;

/* Compiles text (caseless: case-insensitively). Returns NULL with *out
 * set, or a reason (written in why) when the pattern cannot be used: too
 * long, outside Go's RE2 syntax (the Go SDK could not use it either), too
 * large a program. */
const char *unleash_regex_compile(const char *text, bool caseless, struct unleash_regex **out,
                                  char *why, size_t whylen);
void unleash_regex_free(struct unleash_regex *re);

/* True on a match anywhere in subject[0..len); false for a NULL pattern
 * and for a subject over 1,024 bytes. */
bool unleash_regex_match(const struct unleash_regex *re, const char *subject, size_t len);

#endif
