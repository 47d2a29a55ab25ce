/* unleash_eval: whether a prepared feature is enabled for a context, and
 * which variant it gives, exactly as the official server-side SDKs decide
 * (the Unleash client specification; where it is silent, the Node SDK):
 * strategies, constraints, segments, dependencies, variants, stickiness.
 * Reads only the prepared feature (toggles.h) and the context; allocates
 * nothing on the usual path; safe from any thread. */
#ifndef GCS_UNLEASH_EVAL_H
#define GCS_UNLEASH_EVAL_H

#include <stdbool.h>
#include <stddef.h>

struct unleash_feature;

/* The Unleash context, read through the caller's representation. Strings
 * are NUL-terminated and stay valid until the evaluation returns. */
struct unleash_context {
	/* A field as the SDKs read it (top level first, then properties), as
	 * text; NULL when absent. id is the field's number in the features'
	 * answer (enum unleash_field, unleash_features.fields), name its name. */
	const char *(*field)(void *arg, unsigned id, const char *name, size_t *len);
	/* A field at the top level only, when it is a non-empty string (what
	 * a variant's default stickiness takes); NULL otherwise. */
	const char *(*top)(void *arg, unsigned id, const char *name);
	/* currentTime in seconds since the epoch: the context's, or now when it
	 * has none; false when it has one that is not a date. */
	bool (*now)(void *arg, double *now);
	void *arg;
};

bool unleash_eval_enabled(const struct unleash_feature *t, const struct unleash_context *ctx);

/* The variant as the SDKs' getVariant gives it. The strings point into t. */
struct unleash_result {
	const char *name; /* "disabled" when none */
	bool enabled, feature_enabled;
	const char *payload_type, *payload_value; /* NULL: no payload */
};

void unleash_eval_variant(const struct unleash_feature *t, const struct unleash_context *ctx,
                          struct unleash_result *out);

/* The host name applicationHostname compares, lowercased: HOSTNAME from the
 * environment, else the system's host name, else "undefined" (as the Node
 * SDK). Read once per process. */
const char *unleash_eval_hostname(void);

#endif
