/* unleash: gcs as an Unleash server-side SDK, the client of the family
 * (unleash_features prepares what it polls, unleash_eval decides,
 * unleash_usage counts, unleash_lua offers it to routing scripts). A
 * background thread polls the
 * client API (GET /client/features), hands each new state to routing as a
 * prepared features object, keeps a backup, registers the instance and
 * sends usage metrics, as the official SDKs do. Works unchanged against
 * Unleash Edge, which serves the same client API. */
#ifndef GCS_UNLEASH_H
#define GCS_UNLEASH_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "routing.h"

/* The Unleash client specification whose isEnabled and getVariant suites
 * unleash_eval passes; sent as Unleash-Client-Spec (the server then serves
 * segments apart from the features). */
#define UNLEASH_SPEC_VERSION "5.2.0"

struct unleash;

/* Publishes the bootstrap file or the backup (the backup wins: it is the
 * last state Unleash gave), then, when cfg->unleash_url is set, starts
 * polling and waits at most about 2 s for a first answer; never fails
 * startup because Unleash is down. report: register and send metrics
 * (the server; not gcs --route). NULL when there is nothing to run. */
struct unleash *unleash_start(const struct gcs_config *cfg, struct routing *routing, bool report);
void unleash_stop(struct unleash *u);

/* Backoff, as the Go SDK: intervals to skip before the next poll after an
 * answer with this HTTP status (0: no answer at all), given the count now. */
unsigned unleash_backoff(unsigned skips, long status);

/* A client API answer kept in a file: written to a temporary file and
 * renamed over path, so a crash never leaves half a file. */
int unleash_file_write(const char *path, const char *body, size_t len, char *err, size_t errlen);

struct unleash_features;
/* Reads such a file (GCS_UNLEASH_BACKUP, GCS_UNLEASH_BOOTSTRAP) as startup
 * does: its bytes, parsed by unleash_features_parse for the feature name. Returns 1
 * with the state and the bytes (the caller unrefs *state, frees *body), 0
 * when the file does not exist, -1 when it cannot be read and -2 when the
 * state is refused, both with one line in err and nothing returned. */
int unleash_file_read(const char *path, const char *name, struct unleash_features **state,
                      char **body, size_t *len, char *err, size_t errlen);

#endif
