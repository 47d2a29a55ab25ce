/* handlers: the route table and its handlers, on libmicrohttpd. Every body
 * is a response object built once at startup; a request only routes, looks
 * up and queues. The first canary answer to each cluster is logged. */
#ifndef GCS_HANDLERS_H
#define GCS_HANDLERS_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "conditions.h"
#include "routing.h"

struct handlers;

/* Builds the responses of stable, canary and the OpenAPI document. canary
 * and routing may be NULL. The metrics are answered at metrics_path by the
 * public listener, or by the metrics listener alone when metrics_apart. On
 * error returns NULL with one line in err. */
struct handlers *handlers_new(const struct cond_set *stable, const struct cond_set *canary,
                              struct routing *routing, const char *metrics_path, bool metrics_apart,
                              char *err, size_t errlen);
void handlers_free(struct handlers *h);

/* Whether path is one the route table answers (the metrics path must hide
 * none). */
bool handlers_is_api_path(const char *path);

/* libmicrohttpd's callbacks, cls the struct handlers: the access handlers
 * of the public listener (the route table) and of the metrics listener
 * (the metrics path alone), and MHD_OPTION_NOTIFY_COMPLETED for both. A
 * connection's socket context, when set, is its entry in conns (conns.h):
 * it is told when a request is answered and when it completes. */
enum MHD_Result handlers_public(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **req_cls);
enum MHD_Result handlers_metrics(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls);
void handlers_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                        enum MHD_RequestTerminationCode toe);

/* SIGTERM: /readyz answers 503 and every response closes its connection. */
void handlers_drain(struct handlers *h);
/* Requests begun (a first call seen) and not yet completed. */
int handlers_in_flight(const struct handlers *h);

#endif
