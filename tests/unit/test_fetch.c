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

/* ---- file:// transfers ---- */

static void write_file(const char *path, size_t size)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (size_t i = 0; i < size; i++)
		assert_int_not_equal(fputc('a' + (int)(i % 26), f), EOF);
	assert_int_equal(fclose(f), 0);
}

static void test_file_ok(void **state)
{
	(void)state;
	char path[256], url[300], err[512] = "";
	snprintf(path, sizeof(path), "%s/exact.json", tmp_dir);
	write_file(path, CAP); /* exactly the cap is allowed */
	snprintf(url, sizeof(url), "file://%s", path);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_OK);
	assert_int_equal(buf.len, CAP);
	assert_int_equal(buf.data[CAP], '\0');
	assert_int_equal(buf.data[0], 'a');
	assert_int_equal(buf.data[27], 'b');
	fetch_buf_free(&buf);
	assert_null(buf.data);
}

static void test_file_empty(void **state)
{
	(void)state;
	char path[256], url[300], err[512] = "";
	snprintf(path, sizeof(path), "%s/empty.json", tmp_dir);
	write_file(path, 0);
	snprintf(url, sizeof(url), "file://%s", path);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_OK);
	assert_int_equal(buf.len, 0);
	assert_non_null(buf.data);
	assert_string_equal(buf.data, "");
	fetch_buf_free(&buf);
}

static void test_file_missing(void **state)
{
	(void)state;
	char url[300], expected[400], err[512] = "";
	snprintf(url, sizeof(url), "file://%s/9.9.9/v1/rules.json", tmp_dir);
	snprintf(expected, sizeof(expected), "%s: no such file", url);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_PERMANENT);
	assert_string_equal(err, expected);
	assert_null(buf.data);
}

static void test_file_directory(void **state)
{
	(void)state;
	char url[300], err[512] = "";
	snprintf(url, sizeof(url), "file://%s", tmp_dir);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_PERMANENT);
	assert_non_null(strstr(err, "not a regular file"));
}

static void test_file_too_large(void **state)
{
	(void)state;
	char path[256], url[300], expected[400], err[512] = "";
	snprintf(path, sizeof(path), "%s/big.json", tmp_dir);
	write_file(path, CAP + 1);
	snprintf(url, sizeof(url), "file://%s", path);
	snprintf(expected, sizeof(expected), "%s: larger than %d bytes", url, CAP);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_PERMANENT);
	assert_string_equal(err, expected);
	assert_null(buf.data);
}

static void test_unsupported_scheme(void **state)
{
	(void)state;
	char err[512] = "";
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get("ftp://127.0.0.1/x.json", &o, &buf, err, sizeof(err)),
	                 FETCH_PERMANENT);
	assert_non_null(strstr(err, "ftp://127.0.0.1/x.json: "));
	assert_non_null(strstr(err, "ftp"));
}

/* ---- HTTP transfers ---- */

static void test_http_ok(void **state)
{
	(void)state;
	char url[128], err[512] = "";
	http_url(url, sizeof(url), "/ok");
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_OK);
	assert_int_equal(buf.len, 5);
	assert_string_equal(buf.data, "hello");
	fetch_buf_free(&buf);
}

static void test_http_404_permanent_no_retry(void **state)
{
	(void)state;
	char url[128], expected[256], err[512] = "";
	http_url(url, sizeof(url), "/missing");
	snprintf(expected, sizeof(expected), "%s: HTTP 404", url);
	atomic_store(&srv.hits_missing, 0);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_PERMANENT);
	assert_string_equal(err, expected);
	assert_int_equal(atomic_load(&srv.hits_missing), 1);
	assert_null(buf.data);
}

/* An error page over the size cap is still reported by its status. */
static void test_http_404_large_page(void **state)
{
	(void)state;
	char url[128], expected[256], err[512] = "";
	http_url(url, sizeof(url), "/missing-big");
	snprintf(expected, sizeof(expected), "%s: HTTP 404", url);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_PERMANENT);
	assert_string_equal(err, expected);
}

static void test_http_403_permanent(void **state)
{
	(void)state;
	char url[128], expected[256], err[512] = "";
	http_url(url, sizeof(url), "/forbidden");
	snprintf(expected, sizeof(expected), "%s: HTTP 403", url);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_PERMANENT);
	assert_string_equal(err, expected);
}

static void test_http_503_twice_then_ok(void **state)
{
	(void)state;
	char url[128], err[512] = "";
	http_url(url, sizeof(url), "/flaky");
	atomic_store(&srv.hits_flaky, 0);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_OK);
	assert_int_equal(atomic_load(&srv.hits_flaky), 3);
	assert_string_equal(buf.data, "finally");
	fetch_buf_free(&buf);
}

static void test_http_503_exhausts_tries(void **state)
{
	(void)state;
	char url[128], expected[256], err[512] = "";
	http_url(url, sizeof(url), "/always-503");
	snprintf(expected, sizeof(expected), "%s: HTTP 503 after 4 tries", url);
	atomic_store(&srv.hits_always_503, 0);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_TRANSIENT);
	assert_string_equal(err, expected);
	assert_int_equal(atomic_load(&srv.hits_always_503), 4);
	assert_null(buf.data);
}

static void test_budget_stops_retries(void **state)
{
	(void)state;
	char url[128], expected[256], err[512] = "";
	http_url(url, sizeof(url), "/always-503");
	snprintf(expected, sizeof(expected), "%s: HTTP 503 after 1 try", url);
	atomic_store(&srv.hits_always_503, 0);
	struct fetch_opts o = test_opts();
	/* The first backoff alone is over budget: no second try may start. */
	o.backoff_ms = 50;
	o.budget_ms = 40;
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_TRANSIENT);
	assert_string_equal(err, expected);
	assert_int_equal(atomic_load(&srv.hits_always_503), 1);
}

static void test_redirect_to_file_refused(void **state)
{
	(void)state;
	char url[128], expected[256], err[512] = "";
	http_url(url, sizeof(url), "/redirect-file");
	snprintf(expected, sizeof(expected), "%s: redirect to file:///etc/passwd refused", url);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_PERMANENT);
	assert_memory_equal(err, expected, strlen(expected));
	assert_null(buf.data);
}

static void test_redirect_http_followed(void **state)
{
	(void)state;
	char url[128], err[512] = "";
	http_url(url, sizeof(url), "/redirect-ok");
	atomic_store(&srv.hits_ok, 0);
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_OK);
	assert_string_equal(buf.data, "hello");
	assert_int_equal(atomic_load(&srv.hits_ok), 1);
	fetch_buf_free(&buf);
}

static void test_redirect_loop_permanent(void **state)
{
	(void)state;
	char url[128], err[512] = "";
	http_url(url, sizeof(url), "/redirect-loop");
	struct fetch_opts o = test_opts();
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_PERMANENT);
	assert_non_null(strstr(err, "redirects"));
}

static void test_http_timeout(void **state)
{
	(void)state;
	char url[128], expected[256], err[512] = "";
	http_url(url, sizeof(url), "/slow");
	snprintf(expected, sizeof(expected), "%s: timed out after 300 ms (2 tries)", url);
	atomic_store(&srv.hits_slow, 0);
	struct fetch_opts o = test_opts();
	o.max_tries = 2;
	struct fetch_buf buf;
	assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_TRANSIENT);
	assert_string_equal(err, expected);
	assert_int_equal(atomic_load(&srv.hits_slow), 2);
}

static void test_http_too_large(void **state)
{
	(void)state;
	static const char *const paths[] = {"/big-with-length", "/big-streamed"};
	for (size_t i = 0; i < 2; i++) {
		char url[128], expected[256], err[512] = "";
		http_url(url, sizeof(url), paths[i]);
		snprintf(expected, sizeof(expected), "%s: larger than %d bytes", url, CAP);
		struct fetch_opts o = test_opts();
		struct fetch_buf buf;
		assert_int_equal(fetch_get(url, &o, &buf, err, sizeof(err)), FETCH_PERMANENT);
		assert_string_equal(err, expected);
		assert_null(buf.data);
	}
}

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
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transient_classes),
	    cmocka_unit_test(test_backoff_doubles),
	    cmocka_unit_test(test_url_with_scheme),
	    cmocka_unit_test(test_url_plain_paths),
	    cmocka_unit_test(test_file_ok),
	    cmocka_unit_test(test_file_empty),
	    cmocka_unit_test(test_file_missing),
	    cmocka_unit_test(test_file_directory),
	    cmocka_unit_test(test_file_too_large),
	    cmocka_unit_test(test_unsupported_scheme),
	    cmocka_unit_test(test_http_ok),
	    cmocka_unit_test(test_http_404_permanent_no_retry),
	    cmocka_unit_test(test_http_404_large_page),
	    cmocka_unit_test(test_http_403_permanent),
	    cmocka_unit_test(test_http_503_twice_then_ok),
	    cmocka_unit_test(test_http_503_exhausts_tries),
	    cmocka_unit_test(test_budget_stops_retries),
	    cmocka_unit_test(test_redirect_to_file_refused),
	    cmocka_unit_test(test_redirect_http_followed),
	    cmocka_unit_test(test_redirect_loop_permanent),
	    cmocka_unit_test(test_http_timeout),
	    cmocka_unit_test(test_http_too_large),
	    cmocka_unit_test(test_connection_refused_transient),
	    cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, server_start, server_stop);
}
