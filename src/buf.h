/* buf: a growable byte buffer, always NUL-terminated after its bytes. Running
 * out of memory is sticky, so a writer checks `oom` once at the end. */
#ifndef GCS_BUF_H
#define GCS_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len, cap;
	bool oom;
};

void buf_put(struct buf *b, const char *s, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends "/" and token escaped as an RFC 6901 JSON pointer reference
 * token: ~ as ~0, / as ~1. */
void buf_pointer_token(struct buf *b, const char *token);

/* The bytes as a C string, "" before anything was written. */
const char *buf_str(const struct buf *b);

/* Appends what fd holds, up to its end. Returns 0; -1 with errno on a read
 * error; 1 as soon as b would hold `limit` bytes or more. */
int buf_read_fd(struct buf *b, int fd, size_t limit);

/* Drops the bytes after the first `len` (a length taken earlier). */
void buf_truncate(struct buf *b, size_t len);

/* The bytes as a malloc'd C string the caller frees, leaving b empty; NULL
 * when memory ran out at any point. */
char *buf_take(struct buf *b);

void buf_free(struct buf *b);

#endif
