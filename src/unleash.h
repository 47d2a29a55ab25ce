/* unleash: polls an Unleash server's client API in a background thread and
 * hands the configured toggle (segments resolved) to routing. */
#ifndef GCS_UNLEASH_H
#define GCS_UNLEASH_H

#include "config.h"
#include "routing.h"

struct unleash;

/* NULL when cfg->unleash_url is not set. Reads the backup file if any, then
 * waits at most about 2 s for a first answer; never fails startup because
 * Unleash is down. */
struct unleash *unleash_start(const struct gcs_config *cfg, struct routing *routing);
void unleash_stop(struct unleash *u);

#endif
