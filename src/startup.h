/* startup: what gcs loads before it answers anything (serving, --check,
 * --route, --diff): the schemas, two conditions versions downloaded and
 * validated, and the routing script for the commands that route. Strict:
 * every problem is reported once, then one closing line, and nothing is
 * kept. */
#ifndef GCS_STARTUP_H
#define GCS_STARTUP_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

struct js_registry;
struct cond_set;
struct routing;

/* What to load, and how its problems are told. */
struct startup_plan {
	/* the version most clusters get (--diff: OLD) and the one tried on
	 * the canary population (--diff: NEW; NULL: none), each named in
	 * problems "<label> <version>: " */
	const char *versions[2];
	const char *labels[2];
	bool routing; /* also cfg->routing_script */
	/* Problems as plain lines on stderr for a person running a command,
	 * or as JSON log records for a server (its logs are collected). */
	bool plain;
	const char *refusal; /* the closing words: "not serving", "nothing compared" */
	FILE *summary;       /* --check: one line per version, file and the script; or NULL */
};

struct startup {
	struct js_registry *schemas;
	struct cond_set *stable, *canary; /* canary NULL: none; equal versions: one set */
	struct routing *routing;          /* NULL unless the plan asks for it */
};

/* Fills s as plan says. Returns 0, or -1 with every problem reported and
 * s left empty. */
int startup_load(struct startup *s, const struct gcs_config *cfg, const struct startup_plan *plan);
void startup_free(struct startup *s);

#endif
