#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"

static _Atomic int min_level = LOGL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
	atomic_store(&min_level, level);
}

bool log_enabled(enum log_level level)
{
	return (int)level >= atomic_load_explicit(&min_level, memory_order_relaxed);
}

/* Any case: deployments carried over from the Go service say "INFO". */
bool log_parse_level(const char *text, enum log_level *out)
{
	for (int i = LOGL_DEBUG; i <= LOGL_ERROR; i++) {
		if (strcasecmp(text, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	if (strcasecmp(text, "warning") == 0) {
		*out = LOGL_WARN;
		return true;
	}
	return false;
}

/* A bounded line buffer: a log line never allocates. Over-long values are
 * cut, and the line stays valid JSON. */
struct line {
	char buf[8192];
	size_t len;
};

static void put(struct line *l, const char *s, size_t n)
{
	size_t room = sizeof(l->buf) - 16 - l->len; /* keep room for the closing */
	if (n > room)
		n = room;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void put_str(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* JSON string escaping of log text, apart from jsontext's (which writes Go's
 * HTML-safe bytes into a growable buffer): a log line is a fixed 8 KiB
 * buffer and logging never allocates, so that it works when memory runs
 * out. Its cases are alike in shape by nature. */
static void put_json_string(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	put(l, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[6];
		switch (*p) {
		case '"':
			put(l, "\\\"", 2);
			break;
		case '\\':
			put(l, "\\\\", 2);
			break;
		case '\n':
			put(l, "\\n", 2);
			break;
		case '\t':
			put(l, "\\t", 2);
			break;
		default:
			if (*p < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 15];
				put(l, esc, 6);
			} else {
				put(l, (const char *)p, 1);
			}
		}
	}
	put(l, "\"", 1);
}

void log_utc_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void log_msg(enum log_level level, const char *msg, ...)
{
	if (!log_enabled(level))
		return;

	struct line l = {.len = 0};
	char when[64];
	log_utc_now(when, sizeof(when));

	put_str(&l, "{\"time\":\"");
	put_str(&l, when);
	put_str(&l, "\",\"level\":\"");
	put_str(&l, level_names[level]);
	put_str(&l, "\",\"msg\":");
	put_json_string(&l, msg);

	va_list ap;
	va_start(ap, msg);
	const char *key;
	while ((key = va_arg(ap, const char *)) != NULL) {
		const char *value = va_arg(ap, const char *);
		put(&l, ",", 1);
		put_json_string(&l, key);
		put(&l, ":", 1);
		if (value)
			put_json_string(&l, value);
		else
			put_str(&l, "null");
	}
	va_end(ap);
	/* put() reserved room for these even when values were cut */
	memcpy(l.buf + l.len, "}\n", 2);
	l.len += 2;

	/* One write so concurrent lines never interleave. */
	ssize_t w = write(STDERR_FILENO, l.buf, l.len);
	(void)w;
}

bool log_throttle_pass(struct log_throttle *t, unsigned long *suppressed)
{
	double now = deadline_now();
	bool pass = t->events == 0 || ((t->every_n == 0 || t->events % t->every_n == 0) &&
	                               (t->every_s <= 0 || now - t->last >= t->every_s));
	t->events++;
	if (!pass) {
		t->suppressed++;
		return false;
	}
	if (suppressed)
		*suppressed = t->suppressed;
	t->suppressed = 0;
	t->last = now;
	return true;
}

void log_throttle_reset(struct log_throttle *t)
{
	t->events = 0;
	t->suppressed = 0;
}
