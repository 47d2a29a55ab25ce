/* unleash: polls an Unleash server's client API in a background thread and
 * hands the configured toggle (segments resolved) to routing. */
#ifndef GCS_UNLEASH_H
#define GCS_UNLEASH_H

#include <stddef.h>

#include "config.h"
#include "routing.h"

struct unleash;

/* NULL when cfg->unleash_url is not set. Reads the backup file if any, then
 * waits at most about 2 s for a first answer; never fails startup because
 * Unleash is down. */
struct unleash *unleash_start(const struct gcs_config *cfg, struct routing *routing);
void unleash_stop(struct unleash *u);

/* The pure steps of a poll, public for the unit tests. */

/* From a client API answer (GET /client/features), the feature named name as
 * compact JSON with each strategy's segment references replaced by the
 * segments' constraints (a reference to an unknown segment is left in the
 * strategy's "segments", which the Lua evaluation treats as off). *toggle_json
 * is NULL when the answer has no such feature; the caller frees it. Returns
 * -1 with err when the body is not a client API answer. */
int unleash_extract_toggle(const char *body, size_t len, const char *name, char **toggle_json,
                           char *err, size_t errlen);

/* The rollout percentage of an enabled toggle whose only strategy is
 * flexibleRollout; 0 for a disabled toggle; -1 otherwise (absent toggle,
 * several strategies, another strategy, unparsable). */
double unleash_rollout_percent(const char *toggle_json);

/* The backup file: the toggle (JSON text, or NULL for "no such toggle")
 * written to a temporary file and renamed over path, so a crash never
 * leaves half a file. */
int unleash_backup_write(const char *path, const char *toggle_json, char *err, size_t errlen);
/* Returns 1 with *toggle_json (possibly NULL) when the file holds a state, 0
 * when the file does not exist, -1 with err when it is unreadable or
 * malformed. The caller frees *toggle_json. */
int unleash_backup_read(const char *path, char **toggle_json, char *err, size_t errlen);

#endif
