/* metrics: counters and gauges, rendered in the Prometheus text format.
 * Every update is a relaxed atomic: nothing locks on the request path. */
#ifndef GCS_METRICS_H
#define GCS_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* routing (kind: "error", "budget", "memory", "result") */
void metrics_routing_error(const char *kind);
void metrics_routing_reload(bool ok);

/* unleash (result: "ok", "not_modified", "error") */
void metrics_unleash_fetch(const char *result);
void metrics_unleash_success(double unix_time);
/* percent < 0: unknown (not a single flexibleRollout strategy) */
void metrics_unleash_rollout(double percent);

#endif
