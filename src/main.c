/* gcs: serves the Insights Operator gathering conditions, stable or canary
 * per cluster. Strict at startup (any problem exits non-zero before
 * listening, so a bad release crash-loops while old pods keep serving),
 * forgiving at runtime. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "conditions.h"
#include "config.h"
#include "diag.h"
#include "diff.h"
#include "fetch.h"
#include "http.h"
#include "jsonschema.h"
#include "log.h"
#include "metrics.h"
#include "routing.h"
#include "semver.h"
#include "unleash.h"
#include "version.h"

enum { EXIT_INVALID = 1, EXIT_USAGE = 2 };

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

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: gcs [--check | --check-config | --route CLUSTER_ID [--ocp-version V] |\n"
	        "            --route - | --diff [OLD NEW] [--format text|markdown|json] |\n"
	        "            --version | --help]\n"
	        "\n"
	        "  (no flag)      download and validate both versions, then serve HTTP\n"
	        "  --check        download and validate everything, print a summary, exit\n"
	        "  --check-config validate the environment only (no download), exit 0 or 2\n"
	        "  --route ID     print the channel, version and file cluster ID would get\n"
	        "  --ocp-version  with --route: the cluster's OpenShift version (v2 API)\n"
	        "  --route -      the same for each line \"ID [OCP_VERSION]\" of standard input:\n"
	        "                 ID, channel, version, file, reason, tab-separated\n"
	        "  --diff         what clusters would receive differently from OLD to NEW\n"
	        "                 (default: STABLE_VERSION to CANARY_VERSION); exit 0 identical,\n"
	        "                 1 different, 2 trouble\n"
	        "  --format       with --diff: text (default), markdown or json\n"
	        "  --version      print the build version\n"
	        "  --help         this text\n"
	        "\n"
	        "Exit status: 0 ok, 1 invalid conditions or runtime failure, 2 usage.\n\n");
	config_print_help(out);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			exit(0);
		} else if (strcmp(a, "--version") == 0) {
			printf("gcs %s\n", gcs_version);
			exit(0);
		} else if (strcmp(a, "--check") == 0) {
			o->check = true;
		} else if (strcmp(a, "--check-config") == 0) {
			o->check_config = true;
		} else if (strcmp(a, "--route") == 0 && i + 1 < argc) {
			o->route_cluster = argv[++i];
		} else if (strcmp(a, "--ocp-version") == 0 && i + 1 < argc) {
			o->route_ocp = argv[++i];
		} else if (strcmp(a, "--diff") == 0) {
			o->diff = true;
		} else if (strcmp(a, "--format") == 0 && i + 1 < argc) {
			if (!diff_parse_format(argv[++i], &o->diff_format)) {
				fprintf(stderr, "gcs: --format \"%s\": text, markdown or json\n",
				        argv[i]);
				return -1;
			}
			o->format_given = true;
		} else if (o->diff && a[0] != '-' && !o->diff_versions[1]) {
			o->diff_versions[o->diff_versions[0] ? 1 : 0] = a;
		} else {
			fprintf(stderr, "gcs: unknown or incomplete argument \"%s\"\n", a);
			return -1;
		}
	}
	if (o->route_ocp && !o->route_cluster) {
		fprintf(stderr, "gcs: --ocp-version goes with --route\n");
		return -1;
	}
	if (o->check + o->check_config + !!o->route_cluster + o->diff > 1) {
		fprintf(stderr,
		        "gcs: --check, --check-config, --route and --diff are separate commands\n");
		return -1;
	}
	if (o->route_ocp && strcmp(o->route_cluster, "-") == 0) {
		fprintf(stderr, "gcs: with --route -, each line of standard input carries its "
		                "OCP version\n");
		return -1;
	}
	if (o->format_given && !o->diff) {
		fprintf(stderr, "gcs: --format goes with --diff\n");
		return -1;
	}
	if (o->diff_versions[0] && !o->diff_versions[1]) {
		fprintf(stderr, "gcs: --diff takes two versions (OLD NEW) or none\n");
		return -1;
	}
	/* --diff OLD NEW is --diff with STABLE_VERSION=OLD CANARY_VERSION=NEW:
	 * the versions are checked as the variables are. */
	if (o->diff_versions[0] && (setenv("STABLE_VERSION", o->diff_versions[0], 1) < 0 ||
	                            setenv("CANARY_VERSION", o->diff_versions[1], 1) < 0)) {
		fprintf(stderr, "gcs: out of memory\n");
		return -1;
	}
	return 0;
}

static void print_schema_problem(void *ud, const char *pointer, const char *message)
{
	diag_add(ud, "%s%s%s", pointer && *pointer ? pointer : "", pointer && *pointer ? ": " : "",
	         message);
}

/* Everything a server needs before it may listen. */
struct loaded {
	struct js_registry *schemas;
	struct cond_set *stable, *canary; /* canary may equal stable */
	struct routing *routing;
};

static void loaded_free(struct loaded *l)
{
	routing_free(l->routing);
	if (l->canary != l->stable)
		cond_free(l->canary);
	cond_free(l->stable);
	js_registry_free(l->schemas);
}

/* Problems go to stderr as plain lines for a person running --check or
 * --route, and as JSON log records for a server (its logs are collected). */
static int load_all(const struct gcs_config *cfg, struct loaded *l, FILE *summary, bool plain)
{
	struct diag problems = {0};
	char err[1024];

	l->schemas = js_registry_new();
	problems.prefix = "schemas: ";
	if (!l->schemas ||
	    js_registry_load_dir(l->schemas, cfg->schema_dir, print_schema_problem, &problems) ||
	    problems.count) {
		if (!problems.count)
			diag_add(&problems, "%s: cannot load", cfg->schema_dir);
		goto fail;
	}
	problems.prefix = NULL;

	l->stable = cond_load("stable", cfg->stable_version, cfg, l->schemas, &problems, summary);
	if (cfg->canary_version) {
		if (strcmp(cfg->canary_version, cfg->stable_version) == 0)
			l->canary = l->stable; /* the same tree: fetched once */
		else
			l->canary = cond_load("canary", cfg->canary_version, cfg, l->schemas,
			                      &problems, summary);
	}
	if (problems.count)
		goto fail;

	l->routing = routing_new(cfg, err, sizeof(err));
	if (!l->routing) {
		diag_add(&problems, "routing script: %s", err);
		goto fail;
	}
	if (summary)
		fprintf(summary, "routing script %s: ok\n", cfg->routing_script);
	diag_free(&problems);
	return 0;

fail:
	for (size_t i = 0; i < problems.n; i++) {
		if (plain)
			fprintf(stderr, "%s\n", problems.lines[i]);
		else
			log_msg(LOGL_ERROR, "invalid conditions", "problem", problems.lines[i],
			        NULL);
	}
	char count[32];
	snprintf(count, sizeof(count), "%zu", problems.count);
	if (plain)
		fprintf(stderr, "gcs: %s problem%s; not serving\n", count,
		        problems.count == 1 ? "" : "s");
	else
		log_msg(LOGL_ERROR, "not serving", "problems", count, NULL);
	diag_free(&problems);
	loaded_free(l);
	return -1;
}

static int explain_route(const struct gcs_config *cfg, struct loaded *l, const struct options *o)
{
	struct semver v;
	if (o->route_ocp && !semver_parse(o->route_ocp, strlen(o->route_ocp), &v)) {
		fprintf(stderr, "gcs: --ocp-version \"%s\" is not a SemVer 2.0.0 version\n",
		        o->route_ocp);
		return EXIT_USAGE;
	}
	struct unleash *u = unleash_start(cfg, l->routing, false);
	struct route_request req = {
	    .cluster_id = o->route_cluster,
	    .api = o->route_ocp ? "v2" : "v1",
	    .ocp_version = o->route_ocp,
	};
	char reason[256] = "no canary version loaded";
	enum gcs_channel ch = GCS_STABLE;
	if (l->canary)
		ch = routing_decide(l->routing, &req, reason, sizeof(reason));
	unleash_stop(u);
	const struct cond_set *set = ch == GCS_CANARY ? l->canary : l->stable;
	printf("cluster:  %s\nchannel:  %s\nversion:  %s\nreason:   %s\n", o->route_cluster,
	       ch == GCS_CANARY ? "canary" : "stable", set->version, reason);
	if (o->route_ocp) {
		const struct cond_file *f = cond_lookup(set, &v);
		if (f)
			printf("file:     v2/%s (ocpVersion %s)\n", f->path, o->route_ocp);
		else
			printf(
			    "file:     none: ocpVersion %s is below the mapping's first entry %s "
			    "(HTTP 404)\n",
			    o->route_ocp, set->map[0].text);
	} else {
		printf("file:     v1/rules.json\n");
	}
	return 0;
}

/* What was taken from Clowder's file, said once at startup. */
static void log_clowder(const struct gcs_config *cfg)
{
	const struct clowder *c = &cfg->clowder;
	if (!cfg->acg_config)
		return;
	log_msg(LOGL_INFO, "clowder configuration", "file", cfg->acg_config, "listen", cfg->listen,
	        "metrics", cfg->metrics_listen, "metrics_path", cfg->metrics_path, "unleash",
	        cfg->unleash_url, NULL);
	if (!c->feature_flags)
		log_msg(LOGL_INFO,
		        "no featureFlags in the Clowder configuration: no Unleash from Clowder",
		        "unleash", cfg->unleash_url, NULL);
	if (c->cloudwatch)
		log_msg(
		    LOGL_INFO,
		    "logs stay JSON lines on standard error; the platform's forwarder ships them",
		    "logging", c->logging_type, NULL);
}

static int serve(const struct gcs_config *cfg, struct loaded *l)
{
	char err[512];
	/* From here on signals are taken by sigwait below: block them before
	 * the server's threads start so that every thread inherits the mask.
	 * Until now (downloading, validating) SIGTERM and Ctrl-C end the
	 * process at once: there is nothing to drain yet. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	metrics_set_versions(cfg->stable_version, l->canary ? cfg->canary_version : NULL);
	if (routing_start_watch(l->routing) < 0)
		log_msg(LOGL_WARN, "routing script watch not started; SIGHUP still reloads", NULL);
	struct unleash *u = unleash_start(cfg, l->routing, true);
	struct http_server *srv =
	    http_start(cfg, l->stable, l->canary, l->routing, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "gcs: %s\n", err);
		log_msg(LOGL_ERROR, "cannot serve", "error", err, NULL);
		unleash_stop(u);
		return EXIT_INVALID;
	}
	log_msg(LOGL_INFO, "listening", "address", http_address(srv), "metrics",
	        http_metrics_address(srv), "stable", cfg->stable_version, "canary",
	        l->canary ? cfg->canary_version : NULL, NULL);

	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_msg(LOGL_INFO, "SIGHUP: reloading the routing script", NULL);
			routing_reload(l->routing);
			continue;
		}
		break;
	}
	log_msg(LOGL_INFO, "shutting down", NULL);
	http_drain(srv, cfg->shutdown_grace);
	http_stop(srv);
	unleash_stop(u);
	log_msg(LOGL_INFO, "stopped", NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct gcs_config cfg;
	char err[512];

	if (parse_args(argc, argv, &o) < 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	bool command = o.check || o.route_cluster || o.diff;
	if (config_from_env(&cfg, err, sizeof(err)) < 0 ||
	    (!command && http_check(&cfg, err, sizeof(err)) < 0)) {
		fprintf(stderr, "gcs: %s (see gcs --help)\n", err);
		return EXIT_USAGE;
	}
	/* What a manifest's environment can be checked with before it is
	 * applied: the same reading as startup, nothing fetched. */
	if (o.check_config)
		return 0;
	log_set_level(cfg.log_level);
	/* A person running --check or --route reads plain lines on stdout and
	 * stderr; progress records would only be noise there. */
	if (command && !getenv("GCS_LOG_LEVEL"))
		log_set_level(LOGL_WARN);
	log_clowder(&cfg);

	signal(SIGPIPE, SIG_IGN);
	fetch_global_init();

	if (o.diff) {
		bool named = o.diff_versions[0] != NULL;
		if (!cfg.canary_version) {
			fprintf(stderr,
			        named ? "gcs: --diff OLD NEW: NEW is none\n"
			              : "gcs: --diff compares STABLE_VERSION with "
			                "CANARY_VERSION, and CANARY_VERSION is none: give OLD "
			                "NEW\n");
			return EXIT_USAGE;
		}
		return diff_run(&cfg, named ? "old" : "stable", named ? "new" : "canary",
		                o.diff_format, stdout);
	}

	struct loaded l = {0};
	if (load_all(&cfg, &l, o.check ? stdout : NULL, o.check || o.route_cluster) < 0)
		return EXIT_INVALID;

	int rc;
	if (o.check)
		rc = 0;
	else if (o.route_cluster && strcmp(o.route_cluster, "-") == 0)
		rc = batch_route(&cfg, l.routing, l.stable, l.canary, stdin, stdout);
	else if (o.route_cluster)
		rc = explain_route(&cfg, &l, &o);
	else
		rc = serve(&cfg, &l);
	loaded_free(&l);
	return rc;
}
