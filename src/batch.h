/* batch: gcs --route -, the channel of many clusters at once. Cluster IDs
 * come on one stream, one per line (optionally followed by an OCP version),
 * and each gets one tab-separated line: cluster ID, channel, version, file,
 * reason. The same script and Unleash state as the server decide. */
#ifndef GCS_BATCH_H
#define GCS_BATCH_H

#include <stdio.h>

#include "answer.h"
#include "config.h"

/* answerer->canary may be NULL (every cluster gets stable). Starts and stops Unleash
 * itself, as the server would. A line that cannot be read as an ID and a
 * version is named on stderr and skipped; the others are answered. Returns
 * the exit status: 0, or 2 when some line was skipped, or 1 when in or out
 * failed. */
int batch_route(const struct gcs_config *cfg, const struct answerer *answerer, FILE *in, FILE *out);

#endif
