/* make bench-routing: the cost of routing decisions, as the HTTP workers
 * make them (routing_decide: per-thread Lua state, request table, budget
 * hook), for one script and optionally one toggle of a client API answer.
 *
 *   routing WARMUP CALLS SCRIPT [TOGGLES_FILE TOGGLE_NAME]
 *
 * Makes WARMUP decisions, then CALLS more, the cluster IDs rotating over
 * the 10,000 that tests/bench/rotate.lua sends (or, with BENCH_ID_PREFIX
 * set, over that prefix followed by 0000 to 9999: the long IDs a client
 * may put in its User-Agent), and prints one line:
 * "<CPU ns per decision> <percent answered canary>" over the CALLS.
 * tests/bench/routing.sh runs it per case, and under callgrind twice, with
 * CALLS and with 0: the difference is the instructions of CALLS decisions
 * (the script's load, the toggle's parse and the warm-up cancel out). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "routing.h"
#include "unleash_features.h"

#define IDS 10000

static char *ids[IDS];

/* CPU time of this thread: on a shared machine the time spent waiting for
 * a core is not the decision's. */
static double cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "routing bench: %s: %s\n", what, why);
	exit(1);
}

static char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		die(path, "cannot open");
	char *buf = NULL;
	size_t cap = 0;
	*len = 0;
	for (;;) {
		if (*len == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			if (!buf)
				die(path, "out of memory");
		}
		size_t n = fread(buf + *len, 1, cap - *len, fp);
		if (n == 0)
			break;
		*len += n;
	}
	if (ferror(fp))
		die(path, "read error");
	fclose(fp);
	return buf;
}

/* The toggle must be there and wholly usable: a constraint that never
 * holds would measure another path than the one named. */
static struct unleash_features *load_toggles(const char *path, const char *name)
{
	size_t len;
	char *body = read_file(path, &len);
	char err[512];
	struct unleash_features *f = unleash_features_parse(body, len, name, err, sizeof(err));
	free(body);
	if (!f)
		die(path, err);
	if (!unleash_features_find(f, name))
		die(path, "no such toggle");
	if (f->nproblems > 0)
		die(path, f->problems[0]);
	return f;
}

static long count_arg(const char *text)
{
	char *end;
	long n = strtol(text, &end, 10);
	if (!*text || *end || n < 0)
		die(text, "not a count");
	return n;
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 6) {
		fprintf(stderr, "usage: %s WARMUP CALLS SCRIPT [TOGGLES_FILE TOGGLE_NAME]\n",
		        argv[0]);
		return 2;
	}
	long warmup = count_arg(argv[1]), calls = count_arg(argv[2]);
	log_set_level(LOGL_ERROR);
	setenv("STABLE_VERSION", "1.1.3", 1);
	setenv("CANARY_VERSION", "1.2.0", 1);
	setenv("GCS_ROUTING_SCRIPT", argv[3], 1);
	if (argc == 6)
		setenv("GCS_UNLEASH_TOGGLE", argv[5], 1);
	struct gcs_config cfg;
	char err[512];
	if (config_from_env(&cfg, err, sizeof(err)) < 0)
		die("environment", err);
	struct routing *r = routing_new(&cfg, err, sizeof(err));
	if (!r)
		die(argv[3], err);
	if (argc == 6) {
		struct unleash_features *f = load_toggles(argv[4], argv[5]);
		routing_set_features(r, f);
		unleash_features_unref(f);
	}
	const char *prefix = getenv("BENCH_ID_PREFIX");
	for (int i = 0; i < IDS; i++) {
		int n = prefix ? asprintf(&ids[i], "%s%04d", prefix, i)
		               : asprintf(&ids[i], "%08x-0000-4000-8000-%012x", i, i);
		if (n < 0)
			die("cluster IDs", "out of memory");
	}

	char reason[128];
	long canary = 0;
	double start = 0;
	for (long i = 0; i < warmup + calls; i++) {
		if (i == warmup)
			start = cpu_now();
		struct route_request q = {ids[i % IDS], "v2", "4.17.0",
		                          "insights-operator/4.17.0 cluster/x", "127.0.0.1"};
		if (routing_decide(r, &q, reason, sizeof(reason)) == GCS_CANARY && i >= warmup)
			canary++;
	}
	double ns = calls ? (cpu_now() - start) / (double)calls * 1e9 : 0;
	routing_free(r);
	printf("%.1f %.1f\n", ns, calls ? (double)canary * 100 / (double)calls : 0.0);
	return 0;
}
