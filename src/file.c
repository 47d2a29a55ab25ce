/* file: a whole file read, bounded, without blocking on what is no file. */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"

/* The bytes of the open fd, whose status is st, into out; false with why. */
static bool read_open(int fd, const struct stat *st, size_t max, char **out, size_t *len, char *why,
                      size_t whylen)
{
	const char *no = NULL;
	struct buf b = {0};
	int got = 0;
	if (S_ISDIR(st->st_mode))
		no = "is a directory";
	else if (!S_ISREG(st->st_mode))
		no = "not a regular file";
	else if ((unsigned long long)st->st_size <= max)
		got = buf_read_fd(&b, fd, max + 1);
	if (no) {
		snprintf(why, whylen, "%s", no);
	} else if (got < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
	} else if (got > 0 || (unsigned long long)st->st_size > max) {
		snprintf(why, whylen, "larger than %zu bytes", max);
	} else {
		*len = b.len;
		if (!(*out = buf_take(&b)))
			snprintf(why, whylen, "out of memory");
	}
	buf_free(&b);
	return *out != NULL;
}

enum file_result file_read(const char *path, size_t max, char **out, size_t *len, struct stat *st,
                           char *why, size_t whylen)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return FILE_ABSENT;
		snprintf(why, whylen, "%s", strerror(errno));
		return FILE_FAILED;
	}
	struct stat own;
	if (!st)
		st = &own;
	bool ok = false;
	if (fstat(fd, st) != 0)
		snprintf(why, whylen, "%s", strerror(errno));
	else
		ok = read_open(fd, st, max, out, len, why, whylen);
	close(fd);
	return ok ? FILE_READ : FILE_FAILED;
}
