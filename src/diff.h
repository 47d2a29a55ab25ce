/* diff: what a cluster would receive differently from one conditions version
 * to another (gcs --diff), rule by rule rather than line by line, as text,
 * Markdown or JSON (shape: src/diff.schema.json, the README). */
#ifndef GCS_DIFF_H
#define GCS_DIFF_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

enum diff_format { DIFF_TEXT, DIFF_MARKDOWN, DIFF_JSON };

/* "text", "markdown" or "json". */
bool diff_parse_format(const char *text, enum diff_format *out);

/* Downloads and validates cfg->stable_version (old) and cfg->canary_version
 * (new) exactly as startup does (problems go to stderr as --check reports
 * them, each version named "<label> <version>"), then prints the
 * differences to out. Returns the exit status of diff(1): 0 identical, 1
 * different, 2 trouble. */
int diff_run(const struct gcs_config *cfg, const char *old_label, const char *new_label,
             enum diff_format format, FILE *out);

#endif
