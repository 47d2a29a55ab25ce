/* log: one JSON object per line on stderr: time, level, msg, then fields. */
#ifndef GCS_LOG_H
#define GCS_LOG_H

#include <stdbool.h>

enum log_level { LOGL_DEBUG, LOGL_INFO, LOGL_WARN, LOGL_ERROR };

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* Parses "debug", "info", "warn", "error"; returns false on anything else. */
bool log_parse_level(const char *text, enum log_level *out);

/* Fields follow msg as key, value string pairs ending with NULL:
 *   log_msg(LOGL_INFO, "loaded", "channel", "stable", "version", v, NULL);
 * A NULL value is written as JSON null. Thread-safe; one write(2) per line. */
void log_msg(enum log_level level, const char *msg, ...) __attribute__((sentinel));

#endif
