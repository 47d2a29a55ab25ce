/* make bench-routing: the cost of one routing decision, as the HTTP workers
 * make it (routing_decide: per-thread Lua state, request table, budget hook),
 * for the default script on its allowlist path and on its Unleash rollout
 * path, against a script that only answers "stable" (the floor). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "toggles.h"
#include "log.h"
#include "routing.h"

#define CALLS 500000
#define IDS   10000

static char ids[IDS][40];

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* ns per call over CALLS decisions, and the share answered canary. */
static double measure(const char *script, const char *toggle, int *canary_pct)
{
	struct gcs_config cfg;
	char err[512], reason[128];
	setenv("STABLE_VERSION", "1.1.3", 1);
	setenv("GCS_ROUTING_SCRIPT", script, 1);
	if (config_from_env(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	struct routing *r = routing_new(&cfg, "1.1.3", "1.2.0", err, sizeof(err));
	if (!r) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	if (toggle) {
		char ferr[512];
		struct toggles *f = toggles_parse(toggle, strlen(toggle), cfg.unleash_toggle, ferr,
		                                    sizeof(ferr));
		if (!f) {
			fprintf(stderr, "%s\n", ferr);
			exit(1);
		}
		routing_set_features(r, f);
		toggles_unref(f);
	}
	long canary = 0;
	double start = 0;
	for (int i = -CALLS / 10; i < CALLS; i++) { /* the first tenth warms up */
		if (i == 0)
			start = now();
		struct route_request q = {ids[(i + CALLS) % IDS], "v2", "4.17.0",
		                          "insights-operator/4.17.0 cluster/x", "127.0.0.1"};
		if (routing_decide(r, &q, reason, sizeof(reason)) == GCS_CANARY && i >= 0)
			canary++;
	}
	double ns = (now() - start) / CALLS * 1e9;
	routing_free(r);
	*canary_pct = (int)(canary * 100 / CALLS);
	return ns;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s FLOOR_SCRIPT ALLOWLIST_SCRIPT DEFAULT_SCRIPT\n",
		        argv[0]);
		return 2;
	}
	log_set_level(LOGL_ERROR);
	for (int i = 0; i < IDS; i++)
		snprintf(ids[i], sizeof(ids[i]), "%08x-0000-4000-8000-%012x", i, i);
	const char *toggle =
	    "{\"features\":[{\"name\":\"insights-operator-gathering-conditions-service\","
	    "\"enabled\":true,"
	    "\"strategies\":[{\"name\":\"flexibleRollout\",\"constraints\":[],\"parameters\":"
	    "{\"rollout\":\"50\",\"stickiness\":\"default\","
	    "\"groupId\":\"insights-operator-gathering-conditions-service\"}}]}]}";
	int pct;
	double floor_ns = measure(argv[1], NULL, &pct);
	printf("%-46s %8.0f ns/call  canary %3d%%\n", "floor: route returns \"stable\"", floor_ns,
	       pct);
	double allow_ns = measure(argv[2], NULL, &pct);
	printf("%-46s %8.0f ns/call  canary %3d%%  %.1fx floor\n",
	       "default script, half the IDs in force_canary", allow_ns, pct, allow_ns / floor_ns);
	double unleash_ns = measure(argv[3], toggle, &pct);
	printf("%-46s %8.0f ns/call  canary %3d%%  %.1fx floor\n",
	       "default script, Unleash flexibleRollout 50%", unleash_ns, pct,
	       unleash_ns / floor_ns);
	return 0;
}
