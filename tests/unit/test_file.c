/* file: a whole file or the reason why not; what is no regular file is
 * refused without a read, a FIFO without waiting for a writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"

static char dir[] = "/tmp/gcs-test-file-XXXXXX";

static int make_dir(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* dir/name holding n bytes of 'x'; its path in path. */
static void write_file(char *path, size_t cap, const char *name, size_t n)
{
	snprintf(path, cap, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		fputc('x', f);
	assert_int_equal(fclose(f), 0);
}

static void test_reads_whole_file_and_its_identity(void **state)
{
	(void)state;
	char path[256], why[128], *out;
	size_t len = 99;
	struct stat st, want;
	write_file(path, sizeof(path), "ten", 10);
	assert_int_equal(file_read(path, 10, &out, &len, &st, why, sizeof(why)), FILE_READ);
	assert_int_equal(len, 10);
	assert_string_equal(out, "xxxxxxxxxx");
	assert_int_equal(stat(path, &want), 0);
	assert_true(st.st_ino == want.st_ino && st.st_dev == want.st_dev);
	free(out);
	write_file(path, sizeof(path), "empty", 0);
	assert_int_equal(file_read(path, 10, &out, &len, NULL, why, sizeof(why)), FILE_READ);
	assert_int_equal(len, 0);
	assert_string_equal(out, "");
	free(out);
}

/* max bytes are read, one more is refused with the limit in the reason. */
static void test_size_bound(void **state)
{
	(void)state;
	char path[256], why[128], *out = NULL;
	size_t len;
	write_file(path, sizeof(path), "eleven", 11);
	assert_int_equal(file_read(path, 10, &out, &len, NULL, why, sizeof(why)), FILE_FAILED);
	assert_null(out);
	assert_string_equal(why, "larger than 10 bytes");
	assert_int_equal(file_read(path, 11, &out, &len, NULL, why, sizeof(why)), FILE_READ);
	assert_int_equal(len, 11);
	free(out);
}

static void test_absent_directory_fifo(void **state)
{
	(void)state;
	char path[256], why[128], *out = NULL;
	size_t len;
	snprintf(path, sizeof(path), "%s/none", dir);
	assert_int_equal(file_read(path, 10, &out, &len, NULL, why, sizeof(why)), FILE_ABSENT);
	assert_int_equal(file_read(dir, 10, &out, &len, NULL, why, sizeof(why)), FILE_FAILED);
	assert_string_equal(why, "is a directory");
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	/* a blocking open would wait for a writer that never comes */
	alarm(10);
	assert_int_equal(file_read(path, 10, &out, &len, NULL, why, sizeof(why)), FILE_FAILED);
	alarm(0);
	assert_string_equal(why, "not a regular file");
	snprintf(path, sizeof(path), "%s/none/deeper", dir);
	assert_int_equal(file_read(path, 10, &out, &len, NULL, why, sizeof(why)), FILE_ABSENT);
	assert_null(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reads_whole_file_and_its_identity),
	    cmocka_unit_test(test_size_bound),
	    cmocka_unit_test(test_absent_directory_fifo),
	};
	return cmocka_run_group_tests_name("file", tests, make_dir, remove_dir);
}
