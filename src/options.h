/* options: the command line read into one struct, and its usage text. Which
 * command runs and what it needs; main runs it. */
#ifndef GCS_OPTIONS_H
#define GCS_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "diff.h"

struct options {
	bool check;
	bool check_config;
	const char *route_cluster; /* "-": read cluster IDs from standard input */
	const char *route_ocp;
	bool diff;
	const char *diff_versions[2]; /* both NULL: STABLE_VERSION and CANARY_VERSION */
	enum diff_format diff_format;
	bool format_given;
};

/* Fills o (zeroed by the caller) from argv. --help and --version print and
 * exit 0. Returns 0, or -1 after one line on stderr: the caller prints the
 * usage and exits 2. */
int options_parse(int argc, char **argv, struct options *o);

/* The usage text, then the environment variables. */
void options_usage(FILE *out);

#endif
