#include "startup.h"

#include <string.h>

#include "conditions.h"
#include "diag.h"
#include "jsonschema.h"
#include "log.h"
#include "routing.h"

static void schema_problem(void *ud, const char *pointer, const char *message)
{
	if (pointer && *pointer)
		diag_add(ud, "%s: %s", pointer, message);
	else
		diag_add(ud, "%s", message);
}

/* Each problem, then the count and the refusal. */
static void report(const struct diag *problems, const struct startup_plan *plan)
{
	for (size_t i = 0; i < problems->n; i++) {
		if (plan->plain)
			fprintf(stderr, "%s\n", problems->lines[i]);
		else
			log_msg(LOGL_ERROR, "invalid conditions", "problem", problems->lines[i],
			        NULL);
	}
	char count[32];
	snprintf(count, sizeof(count), "%zu", problems->count);
	if (plan->plain)
		fprintf(stderr, "gcs: %s problem%s; %s\n", count, problems->count == 1 ? "" : "s",
		        plan->refusal);
	else
		log_msg(LOGL_ERROR, plan->refusal, "problems", count, NULL);
}

/* The schemas, then both versions: the problems of both are collected
 * before anything is reported. */
static void load_conditions(struct startup *s, const struct gcs_config *cfg,
                            const struct startup_plan *plan, struct diag *problems)
{
	const char *const *v = plan->versions;
	s->schemas = js_registry_new();
	problems->prefix = "schemas: ";
	if (!s->schemas ||
	    js_registry_load_dir(s->schemas, cfg->schema_dir, schema_problem, problems) ||
	    problems->count) {
		if (!problems->count)
			diag_add(problems, "%s: cannot load", cfg->schema_dir);
		return;
	}
	problems->prefix = NULL;
	s->stable = cond_load(plan->labels[0], v[0], cfg, s->schemas, problems, plan->summary);
	if (v[1] && strcmp(v[1], v[0]) == 0)
		s->canary = s->stable; /* the same tree: fetched once */
	else if (v[1])
		s->canary =
		    cond_load(plan->labels[1], v[1], cfg, s->schemas, problems, plan->summary);
}

int startup_load(struct startup *s, const struct gcs_config *cfg, const struct startup_plan *plan)
{
	struct diag problems = {0};
	char err[1024];

	*s = (struct startup){0};
	load_conditions(s, cfg, plan, &problems);
	if (!problems.count && plan->routing) {
		s->routing = routing_new(cfg, err, sizeof(err));
		if (!s->routing)
			diag_add(&problems, "routing script: %s", err);
		else if (plan->summary)
			fprintf(plan->summary, "routing script %s: ok\n", cfg->routing_script);
	}
	int rc = problems.count ? -1 : 0;
	if (rc < 0) {
		report(&problems, plan);
		startup_free(s);
	}
	diag_free(&problems);
	return rc;
}

void startup_free(struct startup *s)
{
	routing_free(s->routing);
	if (s->canary != s->stable)
		cond_free(s->canary);
	cond_free(s->stable);
	js_registry_free(s->schemas);
	*s = (struct startup){0};
}
