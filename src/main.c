/* gcs: serves the Insights Operator gathering conditions, stable or canary
 * per cluster. Strict at startup (any problem exits non-zero before
 * listening, so a bad release crash-loops while old pods keep serving),
 * forgiving at runtime. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"
#include "batch.h"
#include "conditions.h"
#include "config.h"
#include "diff.h"
#include "fetch.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "options.h"
#include "routing.h"
#include "semver.h"
#include "startup.h"
#include "unleash.h"

enum { EXIT_INVALID = 1, EXIT_USAGE = 2 };

static int explain_route(const struct gcs_config *cfg, const struct answerer *answerer,
                         const struct options *o)
{
	struct semver v;
	if (o->route_ocp && !semver_parse(o->route_ocp, strlen(o->route_ocp), &v)) {
		fprintf(stderr, "gcs: --ocp-version \"%s\" is not a SemVer 2.0.0 version\n",
		        o->route_ocp);
		return EXIT_USAGE;
	}
	struct unleash *u = unleash_start(cfg, answerer->routing, false);
	struct route_request req = {
	    .cluster_id = o->route_cluster,
	    .api = o->route_ocp ? "v2" : "v1",
	    .ocp_version = o->route_ocp,
	};
	char reason[256];
	struct answer a;
	answer_cluster(answerer, &req, o->route_ocp ? &v : NULL, reason, sizeof(reason), &a);
	unleash_stop(u);
	printf("cluster:  %s\nchannel:  %s\nversion:  %s\nreason:   %s\n", o->route_cluster,
	       route_channel_name(a.channel), a.set->version, a.reason);
	if (a.file)
		printf("file:     v2/%s (ocpVersion %s)\n", a.file->path, o->route_ocp);
	else if (a.mapping_start)
		printf("file:     none: ocpVersion %s is below the mapping's first entry %s "
		       "(HTTP 404)\n",
		       o->route_ocp, a.mapping_start);
	else
		printf("file:     v1/rules.json\n");
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

static int serve(const struct gcs_config *cfg, struct startup *s)
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
	metrics_set_versions(cfg->stable_version, s->canary ? cfg->canary_version : NULL);
	if (routing_start_watch(s->routing) < 0)
		log_msg(LOGL_WARN, "routing script watch not started; SIGHUP still reloads", NULL);
	struct unleash *u = unleash_start(cfg, s->routing, true);
	struct http_server *srv =
	    http_start(cfg, s->stable, s->canary, s->routing, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "gcs: %s\n", err);
		log_msg(LOGL_ERROR, "cannot serve", "error", err, NULL);
		unleash_stop(u);
		return EXIT_INVALID;
	}
	log_msg(LOGL_INFO, "listening", "address", http_address(srv), "metrics",
	        http_metrics_address(srv), ROUTE_STABLE, cfg->stable_version, ROUTE_CANARY,
	        s->canary ? cfg->canary_version : NULL, NULL);

	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_msg(LOGL_INFO, "SIGHUP: reloading the routing script", NULL);
			routing_reload(s->routing);
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

/* --diff: OLD and NEW loaded as startup loads them, then compared. Exits as
 * diff(1): 0 identical, 1 different, 2 trouble. */
static int run_diff(const struct gcs_config *cfg, const struct options *o)
{
	bool named = o->diff_versions[0] != NULL;
	if (!cfg->canary_version) {
		fprintf(stderr, named ? "gcs: --diff OLD NEW: NEW is none\n"
		                      : "gcs: --diff compares STABLE_VERSION with "
		                        "CANARY_VERSION, and CANARY_VERSION is none: give OLD "
		                        "NEW\n");
		return EXIT_USAGE;
	}
	const struct startup_plan plan = {
	    .versions = {cfg->stable_version, cfg->canary_version},
	    .labels = {named ? "old" : ROUTE_STABLE, named ? "new" : ROUTE_CANARY},
	    .plain = true,
	    .refusal = "nothing compared",
	};
	struct startup s;
	if (startup_load(&s, cfg, &plan) < 0)
		return 2;
	int rc = diff_print(s.stable, s.canary, plan.labels, o->diff_format, stdout);
	startup_free(&s);
	return rc;
}

/* Serving, --check and --route: the loaded versions and script, then the
 * command. */
static int run(const struct gcs_config *cfg, const struct options *o)
{
	/* A person running --check or --route reads plain lines on stderr;
	 * a server's problems are log records. */
	const struct startup_plan plan = {
	    .versions = {cfg->stable_version, cfg->canary_version},
	    .labels = {ROUTE_STABLE, ROUTE_CANARY},
	    .routing = true,
	    .plain = o->check || o->route_cluster,
	    .refusal = "not serving",
	    .summary = o->check ? stdout : NULL,
	};
	struct startup s;
	if (startup_load(&s, cfg, &plan) < 0)
		return EXIT_INVALID;
	const struct answerer answerer = {
	    .routing = s.routing, .stable = s.stable, .canary = s.canary};
	int rc;
	if (o->check)
		rc = 0;
	else if (o->route_cluster && strcmp(o->route_cluster, "-") == 0)
		rc = batch_route(cfg, &answerer, stdin, stdout);
	else if (o->route_cluster)
		rc = explain_route(cfg, &answerer, o);
	else
		rc = serve(cfg, &s);
	startup_free(&s);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = {0};
	struct gcs_config cfg;
	char err[512];

	if (options_parse(argc, argv, &o) < 0) {
		options_usage(stderr);
		return EXIT_USAGE;
	}
	bool command = o.check || o.route_cluster || o.diff;
	/* --diff OLD NEW compares OLD with NEW, each checked as the variable
	 * it stands in for is: STABLE_VERSION and CANARY_VERSION. */
	struct config_versions named = {o.diff_versions[0], o.diff_versions[1]};
	if (config_read(&cfg, o.diff_versions[0] ? &named : NULL, err, sizeof(err)) < 0 ||
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
	return o.diff ? run_diff(&cfg, &o) : run(&cfg, &o);
}
