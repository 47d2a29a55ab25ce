/* Downloads: the retry policy, URL templates, and real transfers over
 * file:// and over HTTP against a small server this test runs on 127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"

#define CAP 1024

/* The HTTP server: one thread, one connection at a time, HTTP/1.0 with
 * Connection: close, answers chosen by path. */
struct server {
	int listen_fd;
	int stop_pipe[2];
	unsigned short port;
	pthread_t thread;
	atomic_int hits_flaky;
	atomic_int hits_always_503;
	atomic_int hits_missing;
	atomic_int hits_slow;
	atomic_int hits_ok;
};

static struct server srv;
static char tmp_dir[] = "/tmp/test_fetch_XXXXXX";

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* the client gave up, e.g. after the size cap */
		data += n;
		len -= (size_t)n;
	}
}

static void respond(int fd, const char *status, const char *headers, const char *body)
{
	char head[512];
	int n = snprintf(head, sizeof(head), "HTTP/1.0 %s\r\nConnection: close\r\n%s\r\n", status,
	                 headers);
	send_all(fd, head, (size_t)n);
	send_all(fd, body, strlen(body));
}

/* Waits until the client closes the connection (its timeout), so a slow
 * answer never holds up the tests that follow. */
static void wait_for_client_close(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char buf[256];
	while (poll(&p, 1, 10000) > 0) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return;
	}
}

static void send_big(int fd, const char *status, bool with_length)
{
	size_t size = 4 * CAP;
	char *body = malloc(size + 1);
	assert_non_null(body);
	memset(body, 'x', size);
	body[size] = '\0';
	char headers[128];
	if (with_length)
		snprintf(headers, sizeof(headers), "Content-Length: %zu\r\n", size);
	else
		headers[0] = '\0';
	respond(fd, status, headers, body);
	free(body);
}

static void serve(int fd, const char *path)
{
	/* one branch per path the tests ask for, alike in shape */
	if (strcmp(path, "/ok") == 0) {
		atomic_fetch_add(&srv.hits_ok, 1);
		respond(fd, "200 OK", "Content-Length: 5\r\n", "hello");
	} else if (strcmp(path, "/missing") == 0) {
		atomic_fetch_add(&srv.hits_missing, 1);
		respond(fd, "404 Not Found", "", "no such version");
	} else if (strcmp(path, "/forbidden") == 0) {
		respond(fd, "403 Forbidden", "", "");
	} else if (strcmp(path, "/flaky") == 0) {
		if (atomic_fetch_add(&srv.hits_flaky, 1) < 2)
			respond(fd, "503 Service Unavailable", "", "later");
		else
			respond(fd, "200 OK", "", "finally");
	} else if (strcmp(path, "/always-503") == 0) {
		atomic_fetch_add(&srv.hits_always_503, 1);
		respond(fd, "503 Service Unavailable", "", "later");
	} else if (strcmp(path, "/redirect-file") == 0) {
		respond(fd, "302 Found", "Location: file:///etc/passwd\r\n", "");
	} else if (strcmp(path, "/redirect-ok") == 0) {
		respond(fd, "302 Found", "Location: /ok\r\n", "");
	} else if (strcmp(path, "/redirect-loop") == 0) {
		respond(fd, "302 Found", "Location: /redirect-loop\r\n", "");
	} else if (strcmp(path, "/slow") == 0) {
		atomic_fetch_add(&srv.hits_slow, 1);
		wait_for_client_close(fd);
	} else if (strcmp(path, "/big-with-length") == 0) {
		send_big(fd, "200 OK", true);
	} else if (strcmp(path, "/big-streamed") == 0) {
		send_big(fd, "200 OK", false);
	} else if (strcmp(path, "/missing-big") == 0) {
		send_big(fd, "404 Not Found", true);
	} else {
		respond(fd, "500 Internal Server Error", "", "unknown test path");
	}
}

/* Reads the request head and returns the path of its request line. */
static bool read_request_path(int fd, char *path, size_t len)
{
	char req[2048];
	size_t used = 0;
	while (used < sizeof(req) - 1) {
		ssize_t n = recv(fd, req + used, sizeof(req) - 1 - used, 0);
		if (n <= 0)
			return false;
		used += (size_t)n;
		req[used] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	char method[16], target[512];
	if (sscanf(req, "%15s %511s", method, target) != 2)
		return false;
	snprintf(path, len, "%s", target);
	return true;
}

static void *server_main(void *arg)
{
	(void)arg;
	struct pollfd fds[2] = {{.fd = srv.listen_fd, .events = POLLIN},
	                        {.fd = srv.stop_pipe[0], .events = POLLIN}};
	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].revents)
			break;
		int fd = accept(srv.listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		char path[512];
		if (read_request_path(fd, path, sizeof(path)))
			serve(fd, path);
		close(fd);
	}
	return NULL;
}

static int server_start(void **state)
{
	(void)state;
	fetch_global_init();
	memset(&srv, 0, sizeof(srv));
	srv.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (srv.listen_fd < 0)
		return -1;
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(addr);
	if (bind(srv.listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(srv.listen_fd, 16) != 0 ||
	    getsockname(srv.listen_fd, (struct sockaddr *)&addr, &alen) != 0)
		return -1;
	srv.port = ntohs(addr.sin_port);
	if (pipe(srv.stop_pipe) != 0)
		return -1;
	if (pthread_create(&srv.thread, NULL, server_main, NULL) != 0)
		return -1;
	if (!mkdtemp(tmp_dir))
		return -1;
	return 0;
}

static int server_stop(void **state)
{
	(void)state;
	if (write(srv.stop_pipe[1], "x", 1) != 1)
		return -1;
	pthread_join(srv.thread, NULL);
	close(srv.listen_fd);
	close(srv.stop_pipe[0]);
	close(srv.stop_pipe[1]);
	static const char *const files[] = {"exact.json", "empty.json", "big.json"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[256];
		snprintf(path, sizeof(path), "%s/%s", tmp_dir, files[i]);
		if (unlink(path) != 0 && errno != ENOENT)
			return -1;
	}
	return rmdir(tmp_dir);
}

static struct fetch_opts test_opts(void)
{
	struct fetch_opts o = {
	    .connect_timeout_ms = 2000,
	    .timeout_ms = 300,
	    .max_bytes = CAP,
	    .max_tries = 4,
	    .backoff_ms = 10,
	    .budget_ms = 20000,
	};
	return o;
}

static void http_url(char *buf, size_t len, const char *path)
{
	snprintf(buf, len, "http://127.0.0.1:%u%s", srv.port, path);
}

/* ---- policy ---- */

static void test_transient_classes(void **state)
{
	(void)state;
	assert_false(fetch_is_transient(CURLE_OK, 200));
	assert_false(fetch_is_transient(CURLE_HTTP_RETURNED_ERROR, 404));
	assert_false(fetch_is_transient(CURLE_HTTP_RETURNED_ERROR, 403));
	assert_false(fetch_is_transient(CURLE_HTTP_RETURNED_ERROR, 400));
	assert_false(fetch_is_transient(CURLE_HTTP_RETURNED_ERROR, 410));
	assert_true(fetch_is_transient(CURLE_HTTP_RETURNED_ERROR, 429));
	assert_true(fetch_is_transient(CURLE_HTTP_RETURNED_ERROR, 500));
	assert_true(fetch_is_transient(CURLE_HTTP_RETURNED_ERROR, 503));
	assert_true(fetch_is_transient(CURLE_HTTP_RETURNED_ERROR, 504));

	assert_true(fetch_is_transient(CURLE_COULDNT_CONNECT, 0));
	assert_true(fetch_is_transient(CURLE_OPERATION_TIMEDOUT, 0));
	assert_true(fetch_is_transient(CURLE_RECV_ERROR, 0));
	assert_true(fetch_is_transient(CURLE_SEND_ERROR, 0));
	assert_true(fetch_is_transient(CURLE_GOT_NOTHING, 0));
	assert_true(fetch_is_transient(CURLE_PARTIAL_FILE, 200));
	assert_true(fetch_is_transient(CURLE_COULDNT_RESOLVE_HOST, 0));

	assert_false(fetch_is_transient(CURLE_FILE_COULDNT_READ_FILE, 0));
	assert_false(fetch_is_transient(CURLE_UNSUPPORTED_PROTOCOL, 0));
	assert_false(fetch_is_transient(CURLE_FILESIZE_EXCEEDED, 200));
	assert_false(fetch_is_transient(CURLE_WRITE_ERROR, 200));
	assert_false(fetch_is_transient(CURLE_TOO_MANY_REDIRECTS, 302));
	assert_false(fetch_is_transient(CURLE_PEER_FAILED_VERIFICATION, 0));
	assert_false(fetch_is_transient(CURLE_URL_MALFORMAT, 0));
}

static void test_backoff_doubles(void **state)
{
	(void)state;
	struct fetch_opts o = {.backoff_ms = 500};
	assert_int_equal(fetch_backoff_ms(&o, 1), 500);
	assert_int_equal(fetch_backoff_ms(&o, 2), 1000);
	assert_int_equal(fetch_backoff_ms(&o, 3), 2000);
	assert_int_equal(fetch_backoff_ms(&o, 4), 4000);
	/* No overflow into a negative sleep for absurd retry counts. */
	assert_true(fetch_backoff_ms(&o, 200) > 0);
}

/* ---- URL templates ---- */

static void expect_url(const char *tmpl, const char *version, const char *rel, const char *expected)
{
	char *url = fetch_url_for(tmpl, version, rel);
	assert_non_null(url);
	assert_string_equal(url, expected);
	free(url);
}

static void test_url_with_scheme(void **state)
{
	(void)state;
	expect_url("http://127.0.0.1:8080/{version}", "1.0.9", "v1/rules.json",
	           "http://127.0.0.1:8080/1.0.9/v1/rules.json");
	expect_url("https://example.test/conditions/{version}/", "1.2.0", "v2/x.json",
	           "https://example.test/conditions/1.2.0/v2/x.json");
	expect_url("http://h/{version}//", "1.2.0", "/v1/rules.json",
	           "http://h/1.2.0/v1/rules.json");
	expect_url("https://h/{version}/tree/{version}", "4.17.0-rc.1", "a.json",
	           "https://h/4.17.0-rc.1/tree/4.17.0-rc.1/a.json");
	expect_url("file:///srv/rules/{version}", "1.1.3", "v1/rules.json",
	           "file:///srv/rules/1.1.3/v1/rules.json");
	expect_url("HTTP://h/{version}", "1.1.3", "v1/rules.json", "HTTP://h/1.1.3/v1/rules.json");
	/* No {version}: joined as is, the config rejects such templates. */
	expect_url("http://h/static", "1.1.3", "v1/rules.json", "http://h/static/v1/rules.json");
	expect_url("file:///", "1.1.3", "v1/rules.json", "file:///v1/rules.json");
}

static void test_url_plain_paths(void **state)
{
	(void)state;
	expect_url("/srv/rules/{version}", "1.1.3", "v1/rules.json",
	           "file:///srv/rules/1.1.3/v1/rules.json");
	expect_url("/srv/rules/{version}/", "1.1.3", "v1/rules.json",
	           "file:///srv/rules/1.1.3/v1/rules.json");
	expect_url("/{version}", "1.1.3", "v1/rules.json", "file:///1.1.3/v1/rules.json");

	char *cwd = getcwd(NULL, 0);
	assert_non_null(cwd);
	char expected[4096];
	snprintf(expected, sizeof(expected), "file://%s/rules/1.1.3/v1/rules.json", cwd);
	expect_url("rules/{version}", "1.1.3", "v1/rules.json", expected);
	expect_url("./rules/{version}/", "1.1.3", "v1/rules.json", expected);
	/* A directory that does not exist still gives a URL to report. */
	snprintf(expected, sizeof(expected), "file://%s/no/such/dir/9.9.9/v1/rules.json", cwd);
	expect_url("no/such/dir/{version}", "9.9.9", "v1/rules.json", expected);
	free(cwd);
}

/* ---- transfers: one case a test ---- */

#define STR_(x) #x
#define STR(x)  STR_(x)

enum where { AT_FILE, AT_HTTP, AT_URL };

/* One download and what must come of it. Zero fields are "not checked" or,
 * for the options, test_opts()'s value. */
struct fetch_case {
	const char *name;
	enum where kind;
	const char *at; /* a file under tmp_dir, an HTTP path, or the whole URL */
	long file_size; /* AT_FILE: written first (the a..z pattern); -1: none */
	int max_tries;  /* options that differ from test_opts() */
	long backoff_ms;
	long budget_ms;
	atomic_int *hits; /* reset before the download */
	int want_hits;
	enum fetch_result want;
	const char *body;      /* FETCH_OK: the body, or NULL for the file's pattern */
	const char *err_is;    /* the whole error after "<url>: " */
	const char *err_start; /* what the error starts with after "<url>: " */
	const char *err_has[2];
};

static void write_file(const char *path, size_t size)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < size; i++)
		assert_int_not_equal(fputc('a' + (int)(i % 26), f), EOF);
	assert_int_equal(fclose(f), 0);
}

static void case_url(const struct fetch_case *c, char *url, size_t len)
{
	char path[256];
	switch (c->kind) {
	case AT_FILE:
		snprintf(path, sizeof(path), "%s%s", tmp_dir, c->at);
		if (c->file_size >= 0)
			write_file(path, (size_t)c->file_size);
		snprintf(url, len, "file://%s", path);
		break;
	case AT_HTTP:
		http_url(url, len, c->at);
		break;
	case AT_URL:
		snprintf(url, len, "%s", c->at);
		break;
	}
}

static void expect_body(const struct fetch_case *c, const struct fetch_buf *buf)
{
	assert_non_null(buf->data);
	if (c->body) {
		assert_int_equal(buf->len, strlen(c->body));
		assert_string_equal(buf->data, c->body);
		return;
	}
	assert_int_equal(buf->len, (size_t)c->file_size);
	assert_int_equal(buf->data[buf->len], '\0');
	for (size_t i = 0; i < buf->len; i++)
		assert_int_equal(buf->data[i], 'a' + (int)(i % 26));
}

static void expect_err(const struct fetch_case *c, const char *url, const char *err)
{
	char want[1024];
	if (c->err_is) {
		snprintf(want, sizeof(want), "%s: %s", url, c->err_is);
		assert_string_equal(err, want);
	}
	if (c->err_start) {
		snprintf(want, sizeof(want), "%s: %s", url, c->err_start);
		assert_memory_equal(err, want, strlen(want));
	}
	for (size_t i = 0; i < 2 && c->err_has[i]; i++)
		assert_non_null(strstr(err, c->err_has[i]));
}

static void test_fetch_case(void **state)
{
	const struct fetch_case *c = *state;
	char url[512], err[512] = "";
	case_url(c, url, sizeof(url));
	struct fetch_opts o = test_opts();
	if (c->max_tries)
		o.max_tries = c->max_tries;
	if (c->backoff_ms)
		o.backoff_ms = c->backoff_ms;
	if (c->budget_ms)
		o.budget_ms = c->budget_ms;
	if (c->hits)
		atomic_store(c->hits, 0);
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), c->want);
	if (c->hits)
		assert_int_equal(atomic_load(c->hits), c->want_hits);
	if (c->want == FETCH_OK) {
		expect_body(c, &buf);
		fetch_buf_free(&buf);
		assert_null(buf.data);
		return;
	}
	expect_err(c, url, err);
	assert_null(buf.data);
}

static const struct fetch_case cases[] = {
    /* file:// */
    /* exactly the cap is allowed */
    {"test_file_ok", AT_FILE, "/exact.json", CAP, .want = FETCH_OK},
    {"test_file_empty", AT_FILE, "/empty.json", 0, .want = FETCH_OK, .body = ""},
    {"test_file_missing", AT_FILE, "/9.9.9/v1/rules.json", -1, .want = FETCH_PERMANENT,
     .err_is = "no such file"},
    {"test_file_directory", AT_FILE, "", -1, .want = FETCH_PERMANENT,
     .err_has = {"not a regular file"}},
    {"test_file_too_large", AT_FILE, "/big.json", CAP + 1, .want = FETCH_PERMANENT,
     .err_is = "larger than " STR(CAP) " bytes"},
    {"test_unsupported_scheme", AT_URL, "ftp://127.0.0.1/x.json", .want = FETCH_PERMANENT,
     .err_has = {"ftp://127.0.0.1/x.json: ", "ftp"}},
    /* HTTP */
    {"test_http_ok", AT_HTTP, "/ok", .want = FETCH_OK, .body = "hello"},
    {"test_http_404_permanent_no_retry", AT_HTTP, "/missing", .hits = &srv.hits_missing,
     .want_hits = 1, .want = FETCH_PERMANENT, .err_is = "HTTP 404"},
    /* An error page over the size cap is still reported by its status. */
    {"test_http_404_large_page", AT_HTTP, "/missing-big", .want = FETCH_PERMANENT,
     .err_is = "HTTP 404"},
    {"test_http_403_permanent", AT_HTTP, "/forbidden", .want = FETCH_PERMANENT,
     .err_is = "HTTP 403"},
    {"test_http_503_twice_then_ok", AT_HTTP, "/flaky", .hits = &srv.hits_flaky, .want_hits = 3,
     .want = FETCH_OK, .body = "finally"},
    {"test_http_503_exhausts_tries", AT_HTTP, "/always-503", .hits = &srv.hits_always_503,
     .want_hits = 4, .want = FETCH_TRANSIENT, .err_is = "HTTP 503 after 4 tries"},
    /* The first backoff alone is over budget: no second try may start. */
    {"test_budget_stops_retries", AT_HTTP, "/always-503", .backoff_ms = 50, .budget_ms = 40,
     .hits = &srv.hits_always_503, .want_hits = 1, .want = FETCH_TRANSIENT,
     .err_is = "HTTP 503 after 1 try"},
    {"test_redirect_to_file_refused", AT_HTTP, "/redirect-file", .want = FETCH_PERMANENT,
     .err_start = "redirect to file:///etc/passwd refused"},
    {"test_redirect_http_followed", AT_HTTP, "/redirect-ok", .hits = &srv.hits_ok, .want_hits = 1,
     .want = FETCH_OK, .body = "hello"},
    {"test_redirect_loop_permanent", AT_HTTP, "/redirect-loop", .want = FETCH_PERMANENT,
     .err_has = {"redirects"}},
    {"test_http_timeout", AT_HTTP, "/slow", .max_tries = 2, .hits = &srv.hits_slow, .want_hits = 2,
     .want = FETCH_TRANSIENT, .err_is = "timed out after 300 ms (2 tries)"},
    {"test_http_too_large_with_length", AT_HTTP, "/big-with-length", .want = FETCH_PERMANENT,
     .err_is = "larger than " STR(CAP) " bytes"},
    {"test_http_too_large_streamed", AT_HTTP, "/big-streamed", .want = FETCH_PERMANENT,
     .err_is = "larger than " STR(CAP) " bytes"},
};

static void test_connection_refused_transient(void **state)
{
	(void)state;
	/* A port that was just free: nothing listens there. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t alen = sizeof(addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
	close(fd);

	char url[128], err[512] = "";
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/ok", ntohs(addr.sin_port));
	struct fetch_opts o = test_opts();
	o.max_tries = 2;
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_TRANSIENT);
	assert_non_null(strstr(err, url));
	assert_non_null(strstr(err, "(2 tries)"));
}

/* Two threads downloading at once, as the startup thread and the Unleash
 * poller may. */
static void *fetch_ok_thread(void *arg)
{
	(void)arg;
	char url[128], err[512];
	http_url(url, sizeof(url), "/ok");
	struct fetch_opts o = test_opts();
	for (int i = 0; i < 5; i++) {
		struct fetch_buf buf;
		if (fetch_get(url, &o, &buf, err, sizeof(err)) != FETCH_OK)
			return (void *)1;
		bool same = strcmp(buf.data, "hello") == 0;
		fetch_buf_free(&buf);
		if (!same)
			return (void *)1;
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, fetch_ok_thread, NULL), 0);
	for (int i = 0; i < 2; i++) {
		void *ret;
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
	}
}

int main(void)
{
	static const struct CMUnitTest before[] = {
	    cmocka_unit_test(test_transient_classes),
	    cmocka_unit_test(test_backoff_doubles),
	    cmocka_unit_test(test_url_with_scheme),
	    cmocka_unit_test(test_url_plain_paths),
	};
	static const struct CMUnitTest after[] = {
	    cmocka_unit_test(test_connection_refused_transient),
	    cmocka_unit_test(test_threads),
	};
	enum {
		NB = sizeof(before) / sizeof(before[0]),
		NC = sizeof(cases) / sizeof(cases[0]),
		NA = sizeof(after) / sizeof(after[0])
	};
	struct CMUnitTest tests[NB + NC + NA];
	memcpy(tests, before, sizeof(before));
	for (size_t i = 0; i < NC; i++)
		tests[NB + i] = (struct CMUnitTest){.name = cases[i].name,
		                                    .test_func = test_fetch_case,
		                                    .initial_state = (void *)&cases[i]};
	memcpy(tests + NB + NC, after, sizeof(after));
	return _cmocka_run_group_tests("tests", tests, NB + NC + NA, server_start, server_stop);
}
