/* request: what gcs reads from an HTTP request, as pure functions of the
 * request's text (no libmicrohttpd), so that tests and fuzzers call them
 * directly. */
#ifndef GCS_REQUEST_H
#define GCS_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "semver.h"

/* True when path matches pattern: literal text in which the first '*'
 * stands for one non-empty segment (no '/'), returned in *seg and *seg_len
 * (NULL and 0 for a pattern without '*'). */
bool request_match(const char *pattern, const char *path, const char **seg, size_t *seg_len);

/* The ocpVersion path segment: percent-decoded strictly (a bad escape or
 * %00 fails) into text (cap bytes), then parsed as SemVer into *v, whose
 * pre-release points into text. */
bool request_ocp_version(const char *seg, size_t seg_len, char *text, size_t cap, struct semver *v);

/* The cluster ID: what follows "cluster/" in the User-Agent, cut at the
 * first space or comma (as the service in the field does) and to cap - 1
 * bytes, copied into buf. NULL when ua is NULL or names none. */
const char *request_cluster_id(const char *ua, char *buf, size_t cap);

/* Accept-Encoding admits gzip: the token gzip, x-gzip or *, with q > 0. */
bool request_accepts_gzip(const char *accept_encoding);

/* If-None-Match (may be NULL) is "*" or lists etag, compared weakly. */
bool request_etag_matches(const char *if_none_match, const char *etag);

#endif
