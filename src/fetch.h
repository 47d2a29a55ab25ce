/* fetch: downloads through libcurl with timeouts, a size cap and a retry
 * policy. file://, http://, https://; redirects only between http(s). */
#ifndef GCS_FETCH_H
#define GCS_FETCH_H

#include <stdbool.h>
#include <stddef.h>

struct fetch_opts {
	long connect_timeout_ms; /* per try */
	long timeout_ms;         /* per try, whole transfer */
	size_t max_bytes;        /* larger bodies fail permanently */
	int max_tries;           /* transient failures are retried up to this */
	long backoff_ms;         /* first backoff; doubles each retry */
	long budget_ms;          /* no new try starts after this much time */
};

struct fetch_buf {
	char *data; /* NUL-terminated for convenience; len excludes it */
	size_t len;
};

enum fetch_result {
	FETCH_OK = 0,
	FETCH_PERMANENT, /* 404, 403, other 4xx, bad scheme, too large, bad redirect */
	FETCH_TRANSIENT, /* still failing after the retries */
};

/* On failure err holds one line: what failed and why (HTTP status, curl's
 * reason, "larger than N bytes", "redirect to file:// refused"). */
enum fetch_result fetch_get(const char *url, const struct fetch_opts *opts, struct fetch_buf *out,
                            char *err, size_t errlen);
void fetch_buf_free(struct fetch_buf *buf);

/* Retry policy, separate so it can be unit-tested. curl_code is a CURLcode,
 * http_status 0 when there was no HTTP response. */
bool fetch_is_transient(int curl_code, long http_status);
long fetch_backoff_ms(const struct fetch_opts *opts, int retry /* 1-based */);

/* Expands {version} in the template and appends "/" relpath. A plain path
 * becomes a file:// URL (relative paths are made absolute). Caller frees. */
char *fetch_url_for(const char *url_template, const char *version, const char *relpath);

/* curl_global_init once, before threads. */
void fetch_global_init(void);

#endif
