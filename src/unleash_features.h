/* unleash_features: one answer of the Unleash client API (GET
 * /api/client/features), parsed once, validated and prepared for
 * evaluation: segments resolved, parents attached, regexes compiled,
 * versions, dates, numbers and CIDR ranges parsed, value lists cleaned,
 * strategies recognised. Immutable once made and shared by every thread
 * through a reference count; the request path only reads it. The
 * evaluation itself is unleash_eval's, on these prepared values. */
#ifndef GCS_UNLEASH_FEATURES_H
#define GCS_UNLEASH_FEATURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jsvalue.h"
#include "semver.h"
#include "unleash_regex.h"

enum unleash_op {
	UNLEASH_OP_UNKNOWN, /* never holds, inverted or not, as in the SDKs */
	UNLEASH_OP_IN,
	UNLEASH_OP_NOT_IN,
	UNLEASH_OP_STR_STARTS_WITH,
	UNLEASH_OP_STR_ENDS_WITH,
	UNLEASH_OP_STR_CONTAINS,
	UNLEASH_OP_NUM_EQ,
	UNLEASH_OP_NUM_GT,
	UNLEASH_OP_NUM_GTE,
	UNLEASH_OP_NUM_LT,
	UNLEASH_OP_NUM_LTE,
	UNLEASH_OP_DATE_AFTER,
	UNLEASH_OP_DATE_BEFORE,
	UNLEASH_OP_SEMVER_EQ,
	UNLEASH_OP_SEMVER_GT,
	UNLEASH_OP_SEMVER_GTE,
	UNLEASH_OP_SEMVER_LT,
	UNLEASH_OP_SEMVER_LTE,
	UNLEASH_OP_IN_CIDR,
	UNLEASH_OP_REGEX,
	UNLEASH_OP_COUNT
};

/* The operator's name as Unleash spells it. */
const char *unleash_op_name(enum unleash_op op);

struct unleash_version {
	char *text; /* owns what ver points into */
	struct semver ver;
};

/* The context fields an answer's features read are numbered, so that a
 * reader of the context finds a field by its number (unleash_lua keeps the
 * Lua key of each) rather than by its name. The fields the SDKs read by
 * themselves have fixed numbers; an answer's others follow, in the order
 * they appear (unleash_features.fields names them all). */
enum unleash_field {
	UNLEASH_FIELD_USER_ID,
	UNLEASH_FIELD_SESSION_ID,
	UNLEASH_FIELD_REMOTE_ADDRESS,
	UNLEASH_FIELD_APP_NAME, /* these two the SDK's static context gives */
	UNLEASH_FIELD_ENVIRONMENT,
	UNLEASH_FIELDS_KNOWN
};

/* Their names, by number. */
extern const char *const unleash_field_names[UNLEASH_FIELDS_KNOWN];

struct unleash_constraint {
	char *context;  /* contextName */
	unsigned field; /* its number */
	enum unleash_op op;
	bool inverted, case_insensitive;
	/* IN, NOT_IN, STR_*, IN_CIDR: the values, empty ones dropped, the rest
	 * trimmed (and lowercased for a case-insensitive STR_*); sorted by
	 * strcmp for IN and NOT_IN, which look a value up. */
	char **values;
	size_t nvalues;
	bool has_number; /* NUM_*: JavaScript's Number(value) is not NaN */
	double number;
	bool has_date;                  /* DATE_*: value is a date */
	double date;                    /* seconds since the epoch */
	struct unleash_version *semver; /* SEMVER_*: NULL when value is no version */
	struct jsvalue_cidr *cidrs;     /* IN_CIDR: the valid ranges among values */
	size_t ncidrs;
	struct unleash_regex *regex; /* REGEX: NULL when unusable */
	const char *unusable;        /* why it never holds (logged, counted) */
};

struct unleash_override {
	char *context;
	unsigned field;
	char **values; /* as served: the SDKs compare them untrimmed */
	size_t nvalues;
};

struct unleash_variant {
	char *name;
	double weight;
	char *stickiness;                   /* NULL: default */
	unsigned sticky_field;              /* stickiness's number, when it names a field */
	char *payload_type, *payload_value; /* NULL: no payload */
	struct unleash_override *overrides;
	size_t noverrides;
};

/* The strategies the official SDKs implement; any other never holds. */
enum unleash_kind {
	UNLEASH_KIND_UNKNOWN,
	UNLEASH_KIND_DEFAULT,
	UNLEASH_KIND_USER_WITH_ID,
	UNLEASH_KIND_FLEXIBLE_ROLLOUT,
	UNLEASH_KIND_GRADUAL_USER_ID,
	UNLEASH_KIND_GRADUAL_SESSION_ID,
	UNLEASH_KIND_GRADUAL_RANDOM,
	UNLEASH_KIND_REMOTE_ADDRESS,
	UNLEASH_KIND_APPLICATION_HOSTNAME,
	UNLEASH_KIND_COUNT
};

/* The strategy's name as Unleash spells it (what registration lists). */
const char *unleash_kind_name(enum unleash_kind kind);

struct unleash_strategy {
	char *name;
	enum unleash_kind kind;
	/* Parameters as served: strings, or numbers the API sometimes sends. */
	char **param_keys, **param_values;
	size_t nparams;
	struct unleash_constraint *constraints; /* the strategy's, then its segments' */
	size_t nconstraints;
	bool segment_missing; /* references a segment the answer lacks: off */
	/* Prepared from the parameters. */
	bool has_rollout; /* flexibleRollout's rollout, gradual*'s percentage */
	double rollout;
	char *group_id; /* groupId, or for flexibleRollout the feature's name when empty */
	size_t group_id_len;
	char *stickiness; /* flexibleRollout's, "default" when absent */
	/* The stickiness parameter (any strategy's: its variants' default) as
	 * the evaluation uses it: "default", "random" or a field's number. */
	enum unleash_sticky {
		UNLEASH_STICKY_DEFAULT,
		UNLEASH_STICKY_RANDOM,
		UNLEASH_STICKY_FIELD
	} sticky;
	unsigned sticky_field;
	/* The groupId and stickiness parameters as served (NULL: absent),
	 * which the strategy's variants read; they point into param_values. */
	const char *group_param, *sticky_param;
	/* userWithId's userIds (sorted by strcmp), remoteAddress's IPs,
	 * applicationHostname's hostNames (lowercased): split, trimmed */
	char **ids;
	size_t nids;
	struct jsvalue_cidr *cidrs; /* remoteAddress: the IPv4 ranges among IPs */
	size_t ncidrs;
	struct unleash_variant *variants;
	size_t nvariants;
};

struct unleash_dependency {
	char *feature;
	bool enabled;    /* the state the parent must be in (default true) */
	char **variants; /* with enabled: one of these variants of the parent */
	size_t nvariants;
	const struct unleash_feature *parent; /* NULL when the answer lacks it */
};

struct unleash_feature {
	char *name;
	bool enabled;
	struct unleash_strategy *strategies;
	size_t nstrategies;
	struct unleash_variant *variants;
	size_t nvariants;
	struct unleash_dependency *deps;
	size_t ndeps;
};

struct unleash_features {
	_Atomic int refs;
	struct unleash_feature *features;
	size_t nfeatures;
	/* One line per constraint that can never be used (a pattern outside
	 * RE2's syntax, an unknown operator), with its JSON pointer. */
	char **problems;
	size_t nproblems;
	bool missing_parent; /* a kept feature depends on one the answer lacks */
	char **fields;       /* the context fields read, by number (enum unleash_field first) */
	size_t nfields;
};

/* Parses a client API answer, segments inline or served apart (the
 * Unleash-Client-Spec header decides). name keeps only that feature and its
 * parents; NULL keeps every feature (tests and tools). Returns NULL with
 * one line in err (JSON pointer and rule) when the answer is not a client
 * API answer or the kept features are malformed: such a state is never
 * used. A constraint that cannot be used is not an error: it never holds
 * and is listed in problems. */
struct unleash_features *unleash_features_parse(const char *body, size_t len, const char *name,
                                                char *err, size_t errlen);
struct unleash_features *unleash_features_ref(struct unleash_features *f);
void unleash_features_unref(struct unleash_features *f);

/* NULL when the answer has no such feature. */
const struct unleash_feature *unleash_features_find(const struct unleash_features *f,
                                                    const char *name);

/* A strategy's parameter as served (numbers as JavaScript prints them);
 * NULL when absent. */
const char *unleash_strategy_param(const struct unleash_strategy *s, const char *key);

/* The rollout of an enabled feature whose only strategy is flexibleRollout;
 * 0 for a disabled feature; -1 otherwise (absent, several strategies). */
double unleash_features_rollout(const struct unleash_features *f, const char *name);

#endif
