/* log: one JSON object per line on stderr: time, level, msg, then fields. */
#ifndef GCS_LOG_H
#define GCS_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERROR };

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* Parses "debug", "info", "warn", "error"; returns false on anything else. */
bool log_parse_level(const char *text, enum log_level *out);

/* Fields follow msg as key, value string pairs ending with NULL:
 *   log_msg(LOGL_INFO, "loaded", "channel", "stable", "version", v, NULL);
 * A NULL value is written as JSON null. Thread-safe; one write(2) per line. */
void log_msg(enum log_level level, const char *msg, ...) __attribute__((sentinel));

/* The wall-clock time now as log lines carry it, UTC with milliseconds:
 * "2026-01-02T15:04:05.123Z" (24 characters and the NUL). */
void log_utc_now(char *buf, size_t len);

/* A failure that can repeat on every request or poll logs its first line
 * of a run, then at most one per every_s seconds and/or one per every_n
 * events (0: no such limit). Not thread-safe: the caller serializes. */
struct log_throttle {
	double every_s;
	unsigned long every_n;
	unsigned long events;     /* since the run began (log_throttle_reset) */
	unsigned long suppressed; /* held back since the last line let through */
	double last;              /* deadline_now() of that line */
};

/* Counts an event; true when its line is to be written, with *suppressed
 * (when not NULL) the events held back since the previous one. */
bool log_throttle_pass(struct log_throttle *t, unsigned long *suppressed);
/* Ends a run: the next event is the first of a new one. */
void log_throttle_reset(struct log_throttle *t);

#endif
