/* metrics: counters and gauges, rendered in the Prometheus text format.
 * Every update is a relaxed atomic: nothing locks on the request path. */
#ifndef GCS_METRICS_H
#define GCS_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "sandbox.h"

enum metrics_endpoint {
	EP_V1,
	EP_V2,
	EP_OPENAPI,
	EP_METRICS,
	EP_HEALTHZ,
	EP_READYZ,
	EP_OTHER,
	EP_COUNT
};

/* Called once at startup, before any request. */
void metrics_set_versions(const char *stable, const char *canary /* NULL: none */);
/* Registers a served v2 file (mapping path, body version); returns its id
 * for metrics_config_served. The same pair registered twice shares an id. */
int metrics_register_config(const char *file, const char *version);

void metrics_request(enum metrics_endpoint ep, unsigned status, double seconds);
void metrics_served(bool v2, bool canary);
void metrics_config_served(int id);

/* connections: open now (delta), the configured limit, refused at it, cut
 * at a deadline by reason */
enum metrics_cut { METRICS_CUT_REQUEST, METRICS_CUT_KEEPALIVE, METRICS_CUTS };
void metrics_connections(int delta);
void metrics_connection_limit(unsigned limit);
void metrics_connection_refused(void);
void metrics_connection_cut(enum metrics_cut reason);

/* Appends the Prometheus text exposition (format 0.0.4). */
void metrics_render(struct buf *out);

/* routing: a failed call, labelled kind= sandbox_fail_name(kind) */
void metrics_routing_error(enum sandbox_fail kind);
/* Counts the reload and remembers its outcome for gcs_routing_last_reload_failed. */
void metrics_routing_reload(bool ok);

/* unleash: a poll, labelled result="ok", "not_modified", "error" */
enum metrics_poll { METRICS_POLL_OK, METRICS_POLL_NOT_MODIFIED, METRICS_POLL_ERROR, METRICS_POLLS };
void metrics_unleash_fetch(enum metrics_poll result);
void metrics_unleash_success(double unix_time);
/* The configured GCS_UNLEASH_REFRESH: alerts on a stale state scale with it. */
void metrics_unleash_interval(double seconds);
void metrics_unleash_backoff(unsigned intervals);
void metrics_unleash_unusable(size_t constraints);
/* metrics: a usage-metrics post, else a registration */
void metrics_unleash_post(bool metrics, bool ok);
/* A write of GCS_UNLEASH_BACKUP: counted by result; a failed one leaves the
 * backup behind the state in use until one succeeds. */
void metrics_unleash_backup(bool ok);
/* percent < 0: unknown (not a single flexibleRollout strategy) */
void metrics_unleash_rollout(double percent);

#endif
