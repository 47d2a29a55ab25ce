/* answer: what a cluster is answered, in one place for the server, gcs
 * --route and gcs --route -: the channel the routing script decides, that
 * version's conditions, the file the mapping assigns to the OCP version,
 * and why. Nothing here allocates or formats. A header: the one function is
 * small and on the request path. */
#ifndef GCS_ANSWER_H
#define GCS_ANSWER_H

#include <stdbool.h>
#include <stddef.h>

#include "conditions.h"
#include "route.h"
#include "routing.h"
#include "semver.h"

/* What answers: the routing and the versions loaded. canary NULL: every
 * cluster gets stable and the script is not asked. */
struct answerer {
	struct routing *routing;
	const struct cond_set *stable, *canary;
};

struct answer {
	enum gcs_channel channel;
	const struct cond_set *set; /* the channel's version */
	/* v2: the file the mapping assigns to the OCP version; NULL for v1,
	 * and when the version is below the mapping's first entry */
	const struct cond_file *file;
	/* v2 without a file: the mapping's first entry (HTTP 404), else NULL */
	const char *mapping_start;
	/* the script's reason (in the caller's buffer), or why it was not asked */
	const char *reason;
};

/* Whether the script is asked at all. When it is not, answer_cluster reads
 * nothing of the request: a caller for whom its fields cost something fills
 * them only when this is true. */
static inline bool answer_asks(const struct answerer *a)
{
	return a->canary && a->routing;
}

/* Answers req; ocp is req->ocp_version parsed (NULL for v1). The script's
 * reason goes into reason (reasonlen bytes). Thread-safe as routing_decide
 * is. Inline: the server calls it for every request, and a stable-only
 * server then pays only for the lookup it would make anyway. */
static inline void answer_cluster(const struct answerer *a, const struct route_request *req,
                                  const struct semver *ocp, char *reason, size_t reasonlen,
                                  struct answer *out)
{
	out->channel = GCS_STABLE;
	out->reason = "no canary version loaded";
	if (answer_asks(a)) {
		out->channel = routing_decide(a->routing, req, reason, reasonlen);
		out->reason = reason;
	}
	out->set = out->channel == GCS_CANARY ? a->canary : a->stable;
	out->file = ocp ? cond_lookup(out->set, ocp) : NULL;
	out->mapping_start = ocp && !out->file ? out->set->map[0].text : NULL;
}

#endif
