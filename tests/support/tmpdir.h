/* tmpdir: for the cmocka suites that write files (tests/unit): a fresh
 * temporary directory, removed with what it holds, and files replaced the
 * way an editor or a deploy does, through a temporary file and rename(2).
 * Header only, as each suite is one translation unit; include it after
 * <cmocka.h>. */
#ifndef GCS_TEST_TMPDIR_H
#define GCS_TEST_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

/* dir becomes a new directory "/tmp/<prefix>-XXXXXX". */
static inline void tmpdir_make(char *dir, size_t len, const char *prefix)
{
	snprintf(dir, len, "/tmp/%s-XXXXXX", prefix);
	assert_non_null(mkdtemp(dir));
}

static inline void tmpdir_remove(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* path holds text, written to path.tmp and renamed over it. */
static inline void tmpdir_write(const char *path, const char *text)
{
	char tmp[512];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* dir/name holds text, as tmpdir_write writes it. */
static inline void tmpdir_write_in(const char *dir, const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	tmpdir_write(path, text);
}

#endif
