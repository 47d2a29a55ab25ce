/* uri: percent-decoding, the one decoder of %XX escapes (request paths,
 * JSON Schema $ref fragments), and reference resolution (JSON Schema $id
 * and $ref). */
#ifndef GCS_URI_H
#define GCS_URI_H

#include <stdbool.h>
#include <stddef.h>

/* Decodes the %XX escapes of s[0..n) into out (cap bytes), NUL-terminated,
 * with its length in *len; %00 yields a NUL byte, which the caller may
 * refuse. False when a '%' is not followed by two hex digits or when the
 * result and its NUL do not fit in cap. */
bool uri_decode(const char *s, size_t n, char *out, size_t cap, size_t *len);

/* ref resolved against base as RFC 3986 section 5.2 says, dot segments
 * removed: a malloc'd string, NULL when out of memory. */
char *uri_resolve(const char *base, const char *ref);

#endif
