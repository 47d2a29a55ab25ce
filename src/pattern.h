/* pattern: a regular expression matched in time linear in the subject, by
 * RE2, the engine whose syntax and guarantees Go's regexp (and so the Go
 * Unleash SDK) has. For REGEX constraints, which an Unleash admin types and
 * every request matches. The one C++ file of gcs: RE2 has no C API. */
#ifndef GCS_PATTERN_H
#define GCS_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pattern;

/* NULL with one line in err when RE2 refuses the pattern or its program
 * would need more than max_mem bytes. */
struct pattern *pattern_compile(const char *re, bool caseless, long max_mem, char *err,
                                size_t errlen);
/* A match anywhere in subject[0..len). Thread-safe. */
bool pattern_match(const struct pattern *p, const char *subject, size_t len);
void pattern_free(struct pattern *p);

#ifdef __cplusplus
}
#endif

#endif
