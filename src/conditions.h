/* conditions: one conditions version, downloaded, validated and rendered
 * once into the exact bytes served. Nothing here runs per request except
 * cond_lookup, which neither allocates nor parses JSON. */
#ifndef GCS_CONDITIONS_H
#define GCS_CONDITIONS_H

#include <stdio.h>

#include "body.h"
#include "config.h"
#include "diag.h"
#include "jsonschema.h"
#include "semver.h"

struct cond_file {
	char *path;    /* as the mapping names it, relative to v2/ */
	char *version; /* the body's own "version" field (metrics label) */
	struct body body;
};

struct cond_entry {
	char *text; /* the mapping's version string; ver points into it */
	struct semver ver;
	const struct cond_file *file;
};

struct cond_set {
	char *version;    /* the conditions version, e.g. "1.2.0" */
	char *v1_version; /* the "version" field of v1/rules.json */
	struct body v1;
	struct cond_file *files;
	size_t nfiles;
	struct cond_entry *map;
	size_t nmap;
};

/* Downloads and validates one version's tree. Every problem goes to
 * problems (prefixed "<channel> <version>: "); on any problem returns NULL.
 * summary, when not NULL, gets one line for the version and one per file. */
struct cond_set *cond_load(const char *channel, const char *version, const struct gcs_config *cfg,
                           const struct js_registry *schemas, struct diag *problems, FILE *summary);
void cond_free(struct cond_set *set);

/* The file the mapping assigns to v: the last entry <= v. NULL when v is
 * below the first entry. */
const struct cond_file *cond_lookup(const struct cond_set *set, const struct semver *v);

/* The mapping's rules beyond its schema, as the Rules Team's build enforces
 * them: an entry at least, SemVer versions strictly increasing, the first
 * not above COND_FIRST_ENTRY_MAX, every path passing cond_path_problem.
 * Fills set->map (file pointers NULL, resolved by cond_load); each problem
 * is a line "v2/cluster_version_mapping.json: /I/J: ..." in problems.
 * Returns true when it added none. */
bool cond_check_mapping(struct cond_set *set, const json_t *mapping, struct diag *problems);

/* Path rule of the Rules Team's build: relative, inside v2/, plain
 * characters. Returns NULL when fine, else why not. */
const char *cond_path_problem(const char *path);

/* The first mapping entry must not be above this (the Rules Team's rule). */
#define COND_FIRST_ENTRY_MAX "4.17.0-0"

#endif
