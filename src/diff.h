/* diff: what a cluster would receive differently from one conditions version
 * to another (gcs --diff), rule by rule rather than line by line, as text,
 * Markdown or JSON (shape: src/diff.schema.json, the README). */
#ifndef GCS_DIFF_H
#define GCS_DIFF_H

#include <stdbool.h>
#include <stdio.h>

enum diff_format { DIFF_TEXT, DIFF_MARKDOWN, DIFF_JSON };

/* "text", "markdown" or "json". */
bool diff_parse_format(const char *text, enum diff_format *out);

struct cond_set;

/* Prints to out what clusters would receive differently from old to new
 * (both loaded as startup loads them), the report naming them by labels
 * ("old" "new", or "stable" "canary"). Returns the exit status of diff(1): 0
 * identical, 1 different, 2 when out cannot be written. */
int diff_print(const struct cond_set *old, const struct cond_set *new, const char *const labels[2],
               enum diff_format format, FILE *out);

#endif
