/* routing: the per-request channel decision, made by the processing team's
 * Lua script (see scripts/README.md for the contract). One lua_State per
 * HTTP worker thread, rebuilt when the published generation changes; no
 * lock on the request path. */
#ifndef GCS_ROUTING_H
#define GCS_ROUTING_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "route.h"

struct routing;

/* Loads and checks the script (cfg->routing_script) as a reload would.
 * Strict: any problem is an error with file and line in err. No
 * cfg->canary_version means routing_decide always answers stable without
 * calling Lua. */
struct routing *routing_new(const struct gcs_config *cfg, char *err, size_t errlen);
void routing_free(struct routing *r);

/* Starts the polling thread (cfg->reload_interval) that reloads on change. */
int routing_start_watch(struct routing *r);
/* Reloads now (SIGHUP). Returns 0 when published, -1 when the previous
 * script was kept (logged and counted). */
int routing_reload(struct routing *r);

struct unleash_features;
/* Publishes a new Unleash state (routing takes its own reference; NULL:
 * context.unleash is nil). Workers pick it up on their next call. */
void routing_set_features(struct routing *r, struct unleash_features *f);

/* Thread-safe; uses the calling thread's lua_State. Never fails: any script
 * problem yields GCS_STABLE (counted and logged). reason gets a short text. */
enum gcs_channel routing_decide(struct routing *r, const struct route_request *req, char *reason,
                                size_t reasonlen);

#endif
