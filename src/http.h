/* http: the listeners, on libmicrohttpd: the public one and the metrics
 * one (GCS_METRICS_LISTEN), their options, and the hand-over of each
 * connection to conns; what a request is answered is handlers'. */
#ifndef GCS_HTTP_H
#define GCS_HTTP_H

#include <stddef.h>

#include "conditions.h"
#include "config.h"
#include "routing.h"

struct http_server;

/* Starts listening on cfg->listen, and for the metrics on
 * cfg->metrics_listen when set. canary and routing may be NULL. On error
 * returns NULL with one line in err. */
struct http_server *http_start(const struct gcs_config *cfg, const struct cond_set *stable,
                               const struct cond_set *canary, struct routing *routing, char *err,
                               size_t errlen);
/* Checks the listen addresses' form ("0.0.0.0:8000", "[::]:8000") and that
 * the metrics path hides no API path, before anything is loaded. Returns 0,
 * or -1 with one line in err. */
int http_check(const struct gcs_config *cfg, char *err, size_t errlen);

/* "host:port" actually bound (port 0 resolved); the metrics listener's, or
 * NULL when the metrics are on the public listener. */
const char *http_address(const struct http_server *srv);
const char *http_metrics_address(const struct http_server *srv);
/* SIGTERM: /readyz answers 503, no new connections, responses close their
 * connection; then waits for in-flight requests, at most grace seconds. */
void http_drain(struct http_server *srv, double grace);
void http_stop(struct http_server *srv);

#endif
