/* Unit tests for the pure steps of the Unleash poller: the backoff and the
 * atomic file write of the backup. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unleash.h"
#include "unleash_features.h"

/* As the Go SDK: 401, 403 and 404 skip ten intervals at once; 429 and 5xx
 * (and no answer at all) one more per failure, up to ten; each success
 * removes one. */
static void test_backoff(void **state)
{
	(void)state;
	assert_int_equal(unleash_backoff(0, 200), 0);
	assert_int_equal(unleash_backoff(0, 304), 0);
	assert_int_equal(unleash_backoff(3, 200), 2);
	assert_int_equal(unleash_backoff(0, 401), 10);
	assert_int_equal(unleash_backoff(2, 403), 10);
	assert_int_equal(unleash_backoff(0, 404), 10);
	unsigned s = 0;
	for (int i = 1; i <= 12; i++) {
		s = unleash_backoff(s, i % 2 ? 429 : 503);
		assert_int_equal(s, i < 10 ? i : 10);
	}
	assert_int_equal(unleash_backoff(4, 0), 5);
	for (int i = 9; i >= 0; i--) {
		s = unleash_backoff(s, 200);
		assert_int_equal(s, i);
	}
}

static void test_file_write_replaces_atomically(void **state)
{
	(void)state;
	char dir[] = "/tmp/gcs-unleash-test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], err[256];
	snprintf(path, sizeof(path), "%s/backup.json", dir);
	assert_int_equal(unleash_file_write(path, "{\"features\":[]}", 15, err, sizeof(err)), 0);
	assert_int_equal(unleash_file_write(path, "{\"features\":[1]}", 16, err, sizeof(err)), 0);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char buf[64] = "";
	assert_int_equal(fread(buf, 1, sizeof(buf) - 1, f), 16);
	fclose(f);
	assert_string_equal(buf, "{\"features\":[1]}");
	unlink(path);
	/* A directory that does not exist: an error naming the file. */
	snprintf(path, sizeof(path), "%s/missing/backup.json", dir);
	assert_int_equal(unleash_file_write(path, "{}", 2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing/backup.json"));
	assert_non_null(strstr(err, "cannot create"));
	rmdir(dir);
}

/* A backup or bootstrap file: absent is 0 (nothing to start from), a
 * directory or a FIFO is -1 with the exact reason, a refused answer -2, a
 * good one 1 with its bytes and the state. */
static void test_file_read_outcomes(void **state)
{
	(void)state;
	char dir[] = "/tmp/gcs-unleash-test.XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], err[256], want[256], *body = NULL;
	size_t len = 0;
	struct unleash_features *f = NULL;
	snprintf(path, sizeof(path), "%s/none.json", dir);
	assert_int_equal(unleash_file_read(path, "t", &f, &body, &len, err, sizeof(err)), 0);
	assert_null(body);
	assert_int_equal(unleash_file_read(dir, "t", &f, &body, &len, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: cannot read: is a directory", dir);
	assert_string_equal(err, want);
	snprintf(path, sizeof(path), "%s/fifo.json", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(10); /* a blocking open would wait for a writer */
	assert_int_equal(unleash_file_read(path, "t", &f, &body, &len, err, sizeof(err)), -1);
	alarm(0);
	snprintf(want, sizeof(want), "%s: cannot read: not a regular file", path);
	assert_string_equal(err, want);
	unlink(path);
	snprintf(path, sizeof(path), "%s/bad.json", dir);
	assert_int_equal(unleash_file_write(path, "[]", 2, err, sizeof(err)), 0);
	assert_int_equal(unleash_file_read(path, "t", &f, &body, &len, err, sizeof(err)), -2);
	assert_null(body);
	assert_null(f);
	static const char good[] = "{\"features\":[{\"name\":\"t\",\"enabled\":true}]}";
	assert_int_equal(unleash_file_write(path, good, strlen(good), err, sizeof(err)), 0);
	assert_int_equal(unleash_file_read(path, "t", &f, &body, &len, err, sizeof(err)), 1);
	assert_int_equal(len, strlen(good));
	assert_string_equal(body, good);
	assert_non_null(unleash_features_find(f, "t"));
	unleash_features_unref(f);
	free(body);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_file_write_replaces_atomically),
	    cmocka_unit_test(test_file_read_outcomes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
