/* route: what a routing decision is asked and what it answers, the contract
 * between the request side (http, gcs --route) and the script's side
 * (routing, sandbox). A leaf: it includes nothing of gcs. */
#ifndef GCS_ROUTE_H
#define GCS_ROUTE_H

enum gcs_channel { GCS_STABLE = 0, GCS_CANARY = 1 };

/* A channel's name, as the script returns it, the X-Gcs-Channel header
 * carries it and the logs and metrics label it. */
#define ROUTE_STABLE "stable"
#define ROUTE_CANARY "canary"

static inline const char *route_channel_name(enum gcs_channel ch)
{
	return ch == GCS_CANARY ? ROUTE_CANARY : ROUTE_STABLE;
}

struct route_request {
	const char *cluster_id;  /* NULL when the User-Agent names none */
	const char *api;         /* "v1" or "v2" */
	const char *ocp_version; /* NULL for v1 */
	const char *user_agent;  /* NULL when absent */
	const char *remote_addr; /* NULL when unknown */
};

#endif
