#include "metrics.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "route.h"
#include "version.h"

static const char *const endpoint_names[EP_COUNT] = {"v1",      "v2",     "openapi", "metrics",
                                                     "healthz", "readyz", "other"};
static const unsigned codes[] = {200, 304, 400, 404, 405, 413, 414, 431, 500, 503};
#define NCODES (sizeof(codes) / sizeof(codes[0]))
static const double buckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                 0.01,   0.025,   0.05,   0.1,   0.5,    1.0};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

static _Atomic uint64_t requests[EP_COUNT][NCODES + 1]; /* last: any other code */
static _Atomic uint64_t hist[EP_COUNT][NBUCKETS + 1];   /* last: +Inf only */
static _Atomic uint64_t hist_sum_ns[EP_COUNT];
static _Atomic uint64_t served[2][2]; /* [v2][canary] */

static _Atomic int64_t connections_open;
static _Atomic uint64_t connection_limit;
static _Atomic uint64_t connections_refused;
static const char *const cut_reasons[METRICS_CUTS] = {"request_timeout", "keepalive_timeout"};
static _Atomic uint64_t connections_cut[METRICS_CUTS];

#define MAX_CONFIGS 256
struct config_metric {
	char file[256];
	char version[128];
	_Atomic uint64_t count;
};
static struct config_metric configs[MAX_CONFIGS];
static int nconfigs;

static const char *stable_version, *canary_version;

static _Atomic uint64_t routing_errors[SANDBOX_FAILS];
static _Atomic uint64_t routing_reloads[2]; /* [ok] */
/* The last reload's outcome: a rejected script leaves the previous one
 * serving until a later reload succeeds, which only a gauge can show. */
static _Atomic int routing_last_reload_failed;

static const char *const poll_results[METRICS_POLLS] = {"ok", "not_modified", "error"};
static _Atomic uint64_t unleash_fetches[METRICS_POLLS];
static _Atomic uint64_t unleash_success_ms;
static _Atomic int64_t unleash_rollout_milli = -1000;
static _Atomic uint64_t unleash_interval_ms; /* 0: no Unleash configured */
static _Atomic uint64_t unleash_backoff;
static _Atomic uint64_t unleash_unusable;
static _Atomic uint64_t unleash_posts[2][2]; /* [metrics?][ok?] */
static _Atomic uint64_t unleash_backups[2];  /* [ok?] */
static _Atomic int unleash_backup_behind;

#define RELAXED memory_order_relaxed

void metrics_set_versions(const char *stable, const char *canary)
{
	stable_version = stable;
	canary_version = canary;
}

int metrics_register_config(const char *file, const char *version)
{
	for (int i = 0; i < nconfigs; i++)
		if (strcmp(configs[i].file, file) == 0 && strcmp(configs[i].version, version) == 0)
			return i;
	if (nconfigs == MAX_CONFIGS)
		return -1;
	snprintf(configs[nconfigs].file, sizeof(configs[0].file), "%s", file);
	snprintf(configs[nconfigs].version, sizeof(configs[0].version), "%s", version);
	return nconfigs++;
}

void metrics_request(enum metrics_endpoint ep, unsigned status, double seconds)
{
	size_t c = NCODES;
	for (size_t i = 0; i < NCODES; i++)
		if (codes[i] == status)
			c = i;
	atomic_fetch_add_explicit(&requests[ep][c], 1, RELAXED);
	size_t b = NBUCKETS;
	for (size_t i = 0; i < NBUCKETS; i++) {
		if (seconds <= buckets[i]) {
			b = i;
			break;
		}
	}
	atomic_fetch_add_explicit(&hist[ep][b], 1, RELAXED);
	atomic_fetch_add_explicit(&hist_sum_ns[ep], (uint64_t)(seconds * 1e9), RELAXED);
}

void metrics_served(bool v2, bool canary)
{
	atomic_fetch_add_explicit(&served[v2][canary], 1, RELAXED);
}

void metrics_config_served(int id)
{
	if (id >= 0 && id < nconfigs)
		atomic_fetch_add_explicit(&configs[id].count, 1, RELAXED);
}

void metrics_connections(int delta)
{
	atomic_fetch_add_explicit(&connections_open, delta, RELAXED);
}

void metrics_connection_limit(unsigned limit)
{
	atomic_store_explicit(&connection_limit, limit, RELAXED);
}

void metrics_connection_refused(void)
{
	atomic_fetch_add_explicit(&connections_refused, 1, RELAXED);
}

void metrics_connection_cut(enum metrics_cut reason)
{
	if (reason >= 0 && reason < METRICS_CUTS)
		atomic_fetch_add_explicit(&connections_cut[reason], 1, RELAXED);
}

void metrics_routing_error(enum sandbox_fail kind)
{
	if (kind >= 0 && kind < SANDBOX_FAILS)
		atomic_fetch_add_explicit(&routing_errors[kind], 1, RELAXED);
}

void metrics_routing_reload(bool ok)
{
	atomic_fetch_add_explicit(&routing_reloads[ok], 1, RELAXED);
	atomic_store_explicit(&routing_last_reload_failed, !ok, RELAXED);
}

void metrics_unleash_fetch(enum metrics_poll result)
{
	if (result >= 0 && result < METRICS_POLLS)
		atomic_fetch_add_explicit(&unleash_fetches[result], 1, RELAXED);
}

void metrics_unleash_success(double unix_time)
{
	atomic_store_explicit(&unleash_success_ms, (uint64_t)(unix_time * 1000), RELAXED);
}

void metrics_unleash_interval(double seconds)
{
	atomic_store_explicit(&unleash_interval_ms, (uint64_t)(seconds * 1000), RELAXED);
}

void metrics_unleash_backoff(unsigned intervals)
{
	atomic_store_explicit(&unleash_backoff, intervals, RELAXED);
}

void metrics_unleash_unusable(size_t constraints)
{
	atomic_store_explicit(&unleash_unusable, constraints, RELAXED);
}

void metrics_unleash_post(bool metrics, bool ok)
{
	atomic_fetch_add_explicit(&unleash_posts[metrics][ok], 1, RELAXED);
}

void metrics_unleash_backup(bool ok)
{
	atomic_fetch_add_explicit(&unleash_backups[ok], 1, RELAXED);
	atomic_store_explicit(&unleash_backup_behind, !ok, RELAXED);
}

void metrics_unleash_rollout(double percent)
{
	atomic_store_explicit(&unleash_rollout_milli,
	                      percent < 0 ? -1000 : (int64_t)(percent * 1000), RELAXED);
}

static void line(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(struct buf *out, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_put(out, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void help(struct buf *out, const char *name, const char *type, const char *text)
{
	line(out, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* A counter by result: counts[1] succeeded (good), counts[0] did not (bad). */
static void results(struct buf *out, const char *name, const char *text, const char *good,
                    const char *bad, _Atomic uint64_t counts[2])
{
	help(out, name, "counter", text);
	line(out, "%s{result=\"%s\"} %llu\n%s{result=\"%s\"} %llu\n", name, good,
	     (unsigned long long)atomic_load_explicit(&counts[1], RELAXED), name, bad,
	     (unsigned long long)atomic_load_explicit(&counts[0], RELAXED));
}

/* Label values here come from validated versions and mapping paths
 * ([A-Za-z0-9._/-]), which need no escaping; versions are checked by config. */
static void render_configs(struct buf *out)
{
	help(out, "io_gathering_remote_configuration", "counter",
	     "Remote configurations served by the v2 API, by mapping file and version");
	for (int i = 0; i < nconfigs; i++)
		line(out, "io_gathering_remote_configuration{file=\"%s\",version=\"%s\"} %llu\n",
		     configs[i].file, configs[i].version,
		     (unsigned long long)atomic_load_explicit(&configs[i].count, RELAXED));
}

static void render_requests(struct buf *out)
{
	help(out, "gcs_http_requests_total", "counter", "HTTP requests by endpoint and status");
	for (int ep = 0; ep < EP_COUNT; ep++) {
		for (size_t c = 0; c <= NCODES; c++) {
			uint64_t n = atomic_load_explicit(&requests[ep][c], RELAXED);
			/* only what happened: 7 endpoints x 11 codes of zeros is noise */
			if (!n)
				continue;
			char code[8];
			snprintf(code, sizeof(code), "%u", c < NCODES ? codes[c] : 0);
			line(out, "gcs_http_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n",
			     endpoint_names[ep], c < NCODES ? code : "other",
			     (unsigned long long)n);
		}
	}
}

static void render_durations(struct buf *out)
{
	help(out, "gcs_http_request_duration_seconds", "histogram",
	     "Time from request to response queued");
	for (int ep = 0; ep < EP_COUNT; ep++) {
		uint64_t cum = 0;
		for (size_t b = 0; b < NBUCKETS; b++) {
			cum += atomic_load_explicit(&hist[ep][b], RELAXED);
			line(out,
			     "gcs_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} "
			     "%llu\n",
			     endpoint_names[ep], buckets[b], (unsigned long long)cum);
		}
		cum += atomic_load_explicit(&hist[ep][NBUCKETS], RELAXED);
		line(out,
		     "gcs_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n",
		     endpoint_names[ep], (unsigned long long)cum);
		line(out, "gcs_http_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n",
		     endpoint_names[ep], atomic_load_explicit(&hist_sum_ns[ep], RELAXED) / 1e9);
		line(out, "gcs_http_request_duration_seconds_count{endpoint=\"%s\"} %llu\n",
		     endpoint_names[ep], (unsigned long long)cum);
	}
}

static void render_connections(struct buf *out)
{
	help(out, "gcs_http_connections", "gauge", "HTTP connections open now");
	line(out, "gcs_http_connections %lld\n",
	     (long long)atomic_load_explicit(&connections_open, RELAXED));
	help(out, "gcs_http_connection_limit", "gauge",
	     "Open HTTP connections beyond which new ones are refused (GCS_CONNECTION_LIMIT)");
	line(out, "gcs_http_connection_limit %llu\n",
	     (unsigned long long)atomic_load_explicit(&connection_limit, RELAXED));
	help(out, "gcs_http_connections_refused_total", "counter",
	     "HTTP connections closed at once because the limit was reached");
	line(out, "gcs_http_connections_refused_total %llu\n",
	     (unsigned long long)atomic_load_explicit(&connections_refused, RELAXED));
	help(out, "gcs_http_connections_cut_total", "counter",
	     "HTTP connections closed for missing a deadline, by reason");
	for (size_t i = 0; i < METRICS_CUTS; i++)
		line(out, "gcs_http_connections_cut_total{reason=\"%s\"} %llu\n", cut_reasons[i],
		     (unsigned long long)atomic_load_explicit(&connections_cut[i], RELAXED));
}

static void render_versions(struct buf *out)
{
	help(out, "gcs_served_total", "counter", "Conditions served by api, channel and version");
	for (int v2 = 0; v2 < 2; v2++) {
		for (int canary = 0; canary < 2; canary++) {
			const char *version = canary ? canary_version : stable_version;
			if (!version)
				continue;
			line(
			    out,
			    "gcs_served_total{api=\"%s\",channel=\"%s\",version=\"%s\"} %llu\n",
			    v2 ? "v2" : "v1", route_channel_name(canary), version,
			    (unsigned long long)atomic_load_explicit(&served[v2][canary], RELAXED));
		}
	}

	help(out, "gcs_conditions_info", "gauge", "Conditions versions loaded, by channel");
	if (stable_version)
		line(out, "gcs_conditions_info{channel=\"stable\",version=\"%s\"} 1\n",
		     stable_version);
	if (canary_version)
		line(out, "gcs_conditions_info{channel=\"canary\",version=\"%s\"} 1\n",
		     canary_version);

	help(out, "gcs_build_info", "gauge", "Build of this gcs binary");
	line(out, "gcs_build_info{version=\"%s\"} 1\n", gcs_version);
}

static void render_routing(struct buf *out)
{
	help(out, "gcs_routing_errors_total", "counter",
	     "Routing script calls that failed and answered stable, by kind");
	for (int i = 0; i < SANDBOX_FAILS; i++)
		line(out, "gcs_routing_errors_total{kind=\"%s\"} %llu\n",
		     sandbox_fail_name((enum sandbox_fail)i),
		     (unsigned long long)atomic_load_explicit(&routing_errors[i], RELAXED));

	results(out, "gcs_routing_reloads_total", "Routing script reloads by result", "ok",
	        "failed", routing_reloads);
	help(out, "gcs_routing_last_reload_failed", "gauge",
	     "1 when the last routing script reload was rejected and the previous script still "
	     "serves");
	line(out, "gcs_routing_last_reload_failed %d\n",
	     atomic_load_explicit(&routing_last_reload_failed, RELAXED));
}

static void render_unleash_polls(struct buf *out)
{
	help(out, "gcs_unleash_fetch_total", "counter", "Unleash polls by result");
	for (size_t i = 0; i < METRICS_POLLS; i++)
		line(out, "gcs_unleash_fetch_total{result=\"%s\"} %llu\n", poll_results[i],
		     (unsigned long long)atomic_load_explicit(&unleash_fetches[i], RELAXED));
	help(out, "gcs_unleash_last_success_timestamp_seconds", "gauge",
	     "Unix time of the last successful Unleash poll (0: never)");
	line(out, "gcs_unleash_last_success_timestamp_seconds %.3f\n",
	     atomic_load_explicit(&unleash_success_ms, RELAXED) / 1000.0);
	uint64_t interval = atomic_load_explicit(&unleash_interval_ms, RELAXED);
	if (interval) {
		help(out, "gcs_unleash_poll_interval_seconds", "gauge",
		     "Configured seconds between Unleash polls (GCS_UNLEASH_REFRESH)");
		line(out, "gcs_unleash_poll_interval_seconds %g\n", interval / 1000.0);
	}
	help(out, "gcs_unleash_backoff_intervals", "gauge",
	     "Poll intervals skipped after Unleash errors before the next poll");
	line(out, "gcs_unleash_backoff_intervals %llu\n",
	     (unsigned long long)atomic_load_explicit(&unleash_backoff, RELAXED));
}

static void render_unleash_state(struct buf *out)
{
	help(out, "gcs_unleash_unusable_constraints", "gauge",
	     "Constraints of the current Unleash state that can never hold (bad pattern, unknown "
	     "operator)");
	line(out, "gcs_unleash_unusable_constraints %llu\n",
	     (unsigned long long)atomic_load_explicit(&unleash_unusable, RELAXED));
	static const char *const post_names[2] = {"gcs_unleash_register_total",
	                                          "gcs_unleash_metrics_posts_total"};
	static const char *const post_help[2] = {"Registrations sent to Unleash by result",
	                                         "Usage metrics sent to Unleash by result"};
	for (int m = 0; m < 2; m++)
		results(out, post_names[m], post_help[m], "ok", "error", unleash_posts[m]);
	results(out, "gcs_unleash_backup_writes_total",
	        "Writes of the Unleash backup file (GCS_UNLEASH_BACKUP) by result", "ok", "error",
	        unleash_backups);
	help(out, "gcs_unleash_backup_behind", "gauge",
	     "1 while the last write of the Unleash backup failed: the file does not hold the "
	     "state in use");
	line(out, "gcs_unleash_backup_behind %d\n",
	     atomic_load_explicit(&unleash_backup_behind, RELAXED));
	int64_t rollout = atomic_load_explicit(&unleash_rollout_milli, RELAXED);
	if (rollout >= 0) {
		help(out, "gcs_unleash_rollout_percent", "gauge",
		     "Rollout of the toggle's single flexibleRollout strategy");
		line(out, "gcs_unleash_rollout_percent %g\n", rollout / 1000.0);
	}
}

void metrics_render(struct buf *out)
{
	render_configs(out);
	render_requests(out);
	render_durations(out);
	render_connections(out);
	render_versions(out);
	render_routing(out);
	render_unleash_polls(out);
	render_unleash_state(out);
}
