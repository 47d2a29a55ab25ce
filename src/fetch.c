#include "fetch.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "client.h"
#include "deadline.h"
#include "version.h"

#define MAX_REDIRECTS 5L

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init_once(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void fetch_global_init(void)
{
	pthread_once(&global_once, global_init_once);
}

void fetch_buf_free(struct fetch_buf *buf)
{
	if (!buf)
		return;
	free(buf->data);
	buf->data = NULL;
	buf->len = 0;
}

bool fetch_is_transient(int curl_code, long http_status)
{
	switch (curl_code) {
	case CURLE_OK:
	case CURLE_HTTP_RETURNED_ERROR:
		/* 408 stays permanent on purpose: only 429 among the 4xx says
		 * "come back later". */
		return http_status >= 500 || http_status == 429;
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_AGAIN:
		return true;
	default:
		return false;
	}
}

long fetch_backoff_ms(const struct fetch_opts *opts, int retry)
{
	if (retry < 1 || opts->backoff_ms <= 0)
		return 0;
	long ms = opts->backoff_ms;
	for (int i = 1; i < retry; i++) {
		if (ms > LONG_MAX / 2)
			return LONG_MAX;
		ms *= 2;
	}
	return ms;
}

/* What one try ended with, enough to decide on a retry and to explain. */
struct attempt {
	CURLcode code;
	long status;
	bool connected;
	bool too_large;
	bool out_of_memory;
	char redirect_target[512]; /* set when a redirect was refused */
	char reason[CURL_ERROR_SIZE];
};

/* Error lines end without punctuation or newline, whatever curl wrote. */
static void trim_reason(char *reason)
{
	size_t n = strlen(reason);
	while (n > 0 && strchr(".\r\n ", reason[n - 1]))
		reason[--n] = '\0';
}

static CURLcode set_options(CURL *h, const char *url, const struct fetch_opts *opts,
                            struct client_sink *sink, char *errbuf)
{
	char user_agent[96]; /* libcurl copies it */
	snprintf(user_agent, sizeof(user_agent), "gcs/%s", gcs_version);
	struct client_opts client = {
	    .protocols = "file,http,https",
	    .redir_protocols = "http,https",
	    .max_redirects = MAX_REDIRECTS,
	    .connect_timeout_ms = opts->connect_timeout_ms,
	    .timeout_ms = opts->timeout_ms,
	    /* Rejects early when the server announces a larger Content-Length;
	     * client_sink_write enforces the cap when it does not. */
	    .max_bytes =
	        opts->max_bytes > (size_t)INT64_MAX ? INT64_MAX : (curl_off_t)opts->max_bytes,
	    /* A 4xx/5xx body is never wanted; stopping at the status also keeps
	     * a large error page from being reported as "too large". */
	    .fail_on_error = true,
	    .user_agent = user_agent,
	    .errbuf = errbuf,
	    .on_body = client_sink_write,
	    .body_data = sink,
	};
	CURLcode rc = client_setup(h, &client);
	return rc != CURLE_OK ? rc : curl_easy_setopt(h, CURLOPT_URL, url);
}

static void try_once(const char *url, const struct fetch_opts *opts, struct client_sink *sink,
                     struct attempt *a)
{
	memset(a, 0, sizeof(*a));
	CURL *h = curl_easy_init();
	if (!h) {
		a->code = CURLE_FAILED_INIT;
		snprintf(a->reason, sizeof(a->reason), "curl_easy_init failed");
		return;
	}
	a->code = set_options(h, url, opts, sink, a->reason);
	if (a->code == CURLE_OK)
		a->code = curl_easy_perform(h);
	if (a->code != CURLE_OK && a->reason[0] == '\0')
		snprintf(a->reason, sizeof(a->reason), "%s", curl_easy_strerror(a->code));
	trim_reason(a->reason);

	long redirects = 0;
	curl_off_t connect_us = 0;
	char *effective = NULL;
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &a->status) != CURLE_OK)
		a->status = 0;
	if (curl_easy_getinfo(h, CURLINFO_REDIRECT_COUNT, &redirects) != CURLE_OK)
		redirects = 0;
	if (curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connect_us) != CURLE_OK)
		connect_us = 0;
	a->connected = connect_us > 0;
	/* A redirect to a scheme outside REDIR_PROTOCOLS ends with the refused
	 * target as the effective URL. */
	if (a->code == CURLE_UNSUPPORTED_PROTOCOL && redirects > 0 &&
	    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK && effective)
		snprintf(a->redirect_target, sizeof(a->redirect_target), "%s", effective);
	a->too_large = sink->too_large || a->code == CURLE_FILESIZE_EXCEEDED;
	/* The Content-Length check can fire before FAILONERROR looks at the
	 * status: a large 404 page is still a 404. */
	if (a->status >= 400) {
		a->code = CURLE_HTTP_RETURNED_ERROR;
		a->too_large = false;
	}
	a->out_of_memory = sink->bytes.oom;
	curl_easy_cleanup(h);
}

static bool attempt_is_transient(const struct attempt *a)
{
	if (a->too_large || a->out_of_memory || a->redirect_target[0])
		return false;
	return fetch_is_transient(a->code, a->status);
}

/* The path of a file:// URL, percent-decoded; NULL for other schemes. */
static char *file_url_path(const char *url)
{
	if (strncasecmp(url, "file://", 7) != 0)
		return NULL;
	CURLU *u = curl_url();
	if (!u)
		return NULL;
	char *path = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, CURLU_URLDECODE) != CURLUE_OK)
		path = NULL;
	curl_url_cleanup(u);
	return path;
}

/* curl reads a directory as an empty body and says only "couldn't open"
 * for a missing file, so local files get a precise reason up front. */
static bool check_local_file(const char *url, char *reason, size_t len)
{
	char *path = file_url_path(url);
	if (!path)
		return true;
	struct stat st;
	bool ok = false;
	if (stat(path, &st) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			snprintf(reason, len, "no such file");
		else
			snprintf(reason, len, "%s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(reason, len, "not a regular file");
	} else {
		ok = true;
	}
	curl_free(path);
	return ok;
}

static void describe(const struct attempt *a, const struct fetch_opts *opts, char *out, size_t len)
{
	if (a->too_large)
		snprintf(out, len, "larger than %zu bytes", opts->max_bytes);
	else if (a->out_of_memory)
		snprintf(out, len, "out of memory");
	else if (a->redirect_target[0])
		snprintf(out, len, "redirect to %s refused: only http and https are followed",
		         a->redirect_target);
	else if (a->code == CURLE_HTTP_RETURNED_ERROR || (a->code == CURLE_OK && a->status))
		snprintf(out, len, "HTTP %ld", a->status);
	else if (a->code == CURLE_OPERATION_TIMEDOUT && !a->connected)
		snprintf(out, len, "connect timed out after %ld ms", opts->connect_timeout_ms);
	else if (a->code == CURLE_OPERATION_TIMEDOUT)
		snprintf(out, len, "timed out after %ld ms", opts->timeout_ms);
	else if (a->code == CURLE_FILE_COULDNT_READ_FILE)
		snprintf(out, len, "no such file");
	else
		snprintf(out, len, "%s", a->reason);
}

static bool is_http_ok(const struct attempt *a)
{
	/* file:// has no status; http(s) must end on a 2xx (a 3xx left over
	 * means the redirect was not followed). */
	return a->code == CURLE_OK && (a->status == 0 || (a->status >= 200 && a->status < 300));
}

enum fetch_result fetch_get(const char *url, const struct fetch_opts *opts, struct fetch_buf *out,
                            char *err, size_t errlen)
{
	out->data = NULL;
	out->len = 0;
	fetch_global_init();
	if (global_rc != CURLE_OK) {
		snprintf(err, errlen, "%s: curl_global_init: %s", url,
		         curl_easy_strerror(global_rc));
		return FETCH_PERMANENT;
	}
	char reason[CURL_ERROR_SIZE + 600];
	if (!check_local_file(url, reason, sizeof(reason))) {
		snprintf(err, errlen, "%s: %s", url, reason);
		return FETCH_PERMANENT;
	}

	double start = deadline_now();
	int max_tries = opts->max_tries > 0 ? opts->max_tries : 1;
	struct attempt a;
	int tries = 0;
	for (;;) {
		struct client_sink sink = {.max_bytes = opts->max_bytes};
		tries++;
		try_once(url, opts, &sink, &a);
		if (is_http_ok(&a) && !a.too_large) {
			out->len = sink.bytes.len;
			out->data = buf_take(&sink.bytes);
			if (!out->data) {
				out->len = 0;
				snprintf(err, errlen, "%s: out of memory", url);
				return FETCH_PERMANENT;
			}
			return FETCH_OK;
		}
		buf_free(&sink.bytes);
		if (a.code == CURLE_OK && !a.too_large) {
			/* e.g. a 3xx curl did not follow or a 1xx: nothing to
			 * retry, and not a body either. */
			describe(&a, opts, reason, sizeof(reason));
			snprintf(err, errlen, "%s: unexpected %s", url, reason);
			return FETCH_PERMANENT;
		}
		if (!attempt_is_transient(&a)) {
			describe(&a, opts, reason, sizeof(reason));
			snprintf(err, errlen, "%s: %s", url, reason);
			return FETCH_PERMANENT;
		}
		if (tries >= max_tries)
			break;
		long wait = fetch_backoff_ms(opts, tries);
		long elapsed_ms = (long)((deadline_now() - start) * 1000);
		if (elapsed_ms + wait > opts->budget_ms)
			break;
		deadline_sleep((double)wait / 1000);
	}
	describe(&a, opts, reason, sizeof(reason));
	if (a.code == CURLE_HTTP_RETURNED_ERROR)
		snprintf(err, errlen, "%s: %s after %d %s", url, reason, tries,
		         tries == 1 ? "try" : "tries");
	else
		snprintf(err, errlen, "%s: %s (%d %s)", url, reason, tries,
		         tries == 1 ? "try" : "tries");
	return FETCH_TRANSIENT;
}

static bool has_scheme(const char *s)
{
	return strncasecmp(s, "file://", 7) == 0 || strncasecmp(s, "http://", 7) == 0 ||
	       strncasecmp(s, "https://", 8) == 0;
}

/* The template with every {version} replaced; caller frees. */
static char *expand_version(const char *tmpl, const char *version)
{
	static const char key[] = "{version}";
	const size_t key_len = sizeof(key) - 1;
	size_t vlen = strlen(version), n = 0;
	for (const char *p = strstr(tmpl, key); p; p = strstr(p + key_len, key))
		n++;
	size_t tlen = strlen(tmpl);
	if (vlen > key_len && n > (SIZE_MAX - tlen - 1) / (vlen - key_len))
		return NULL;
	char *out = malloc(tlen + n * (vlen > key_len ? vlen - key_len : 0) + 1);
	if (!out)
		return NULL;
	char *w = out;
	const char *r = tmpl;
	for (const char *p = strstr(r, key); p; p = strstr(r, key)) {
		memcpy(w, r, (size_t)(p - r));
		w += p - r;
		memcpy(w, version, vlen);
		w += vlen;
		r = p + key_len;
	}
	strcpy(w, r);
	return out;
}

/* An absolute form of a plain path, by joining with the cwd (no realpath:
 * the directory may not exist yet and the error should name it). */
static char *absolute_path(const char *path)
{
	if (path[0] == '/')
		return strdup(path);
	char *cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	while (path[0] == '.' && (path[1] == '/' || path[1] == '\0')) {
		path += path[1] ? 2 : 1;
		while (path[0] == '/')
			path++;
	}
	char *out = NULL;
	size_t cwd_len = strlen(cwd);
	bool slash = cwd_len > 0 && cwd[cwd_len - 1] == '/';
	if (asprintf(&out, "%s%s%s", cwd, (slash || !path[0]) ? "" : "/", path) < 0)
		out = NULL;
	free(cwd);
	return out;
}

char *fetch_url_for(const char *url_template, const char *version, const char *relpath)
{
	char *base = expand_version(url_template, version);
	if (!base)
		return NULL;
	const char *prefix = "";
	size_t keep = 0; /* the part trailing slashes must not eat into */
	if (has_scheme(base)) {
		keep = (size_t)(strstr(base, "://") - base) + 3;
	} else {
		char *abs = absolute_path(base);
		free(base);
		if (!abs)
			return NULL;
		base = abs;
		prefix = "file://";
	}
	size_t len = strlen(base);
	while (len > keep && base[len - 1] == '/')
		len--;
	while (relpath[0] == '/')
		relpath++;
	char *url = NULL;
	if (asprintf(&url, "%s%.*s/%s", prefix, (int)len, base, relpath) < 0)
		url = NULL;
	free(base);
	return url;
}
