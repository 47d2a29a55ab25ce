/* regex: checks that a container-log regex compiles with PCRE2 and RE2 and uses only
 * what Go's RE2 syntax accepts (the Insights Operator compiles it with Go). */
#ifndef GCS_REGEX_H
#define GCS_REGEX_H

#include <stdbool.h>
#include <stddef.h>

/* Returns true when acceptable; otherwise writes one line to err, e.g.
 * "lookahead (?=...) at offset 3 is not supported by Go's RE2". */
bool regex_check_re2(const char *pattern, char *err, size_t errlen);

#endif
