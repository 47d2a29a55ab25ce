#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool reserve(struct buf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + n + 1)
		cap *= 2;
	char *d = realloc(b->data, cap);
	if (!d) {
		b->oom = true;
		return false;
	}
	b->data = d;
	b->cap = cap;
	return true;
}

void buf_put(struct buf *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

int buf_read_fd(struct buf *b, int fd, size_t limit)
{
	char chunk[16384];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (b->len + (size_t)n >= limit)
			return 1;
		buf_put(b, chunk, (size_t)n);
	}
}

void buf_pointer_token(struct buf *b, const char *token)
{
	buf_put(b, "/", 1);
	for (const char *t = token; *t; t++) {
		if (*t == '~')
			buf_put(b, "~0", 2);
		else if (*t == '/')
			buf_put(b, "~1", 2);
		else
			buf_put(b, t, 1);
	}
}

const char *buf_str(const struct buf *b)
{
	return b->data ? b->data : "";
}

void buf_truncate(struct buf *b, size_t len)
{
	if (len < b->len) {
		b->len = len;
		b->data[len] = '\0';
	}
}

char *buf_take(struct buf *b)
{
	if (!reserve(b, 0)) {
		buf_free(b);
		return NULL;
	}
	b->data[b->len] = '\0';
	char *s = b->data;
	*b = (struct buf){0};
	return s;
}

void buf_free(struct buf *b)
{
	free(b->data);
	*b = (struct buf){0};
}
