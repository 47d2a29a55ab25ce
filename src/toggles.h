/* toggles: one answer of the Unleash client API (GET /api/client/features),
 * parsed once, validated and prepared for evaluation: segments resolved,
 * parents attached, regexes compiled, versions, dates, numbers and CIDR
 * ranges parsed, value lists cleaned. Immutable once made and shared by
 * every thread through a reference count; the request path only reads it.
 * The evaluation itself is unleash_eval's, on these prepared values. */
#ifndef GCS_TOGGLES_H
#define GCS_TOGGLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "semver.h"

enum toggle_op {
	FOP_UNKNOWN, /* never holds, inverted or not, as in the SDKs */
	FOP_IN,
	FOP_NOT_IN,
	FOP_STR_STARTS_WITH,
	FOP_STR_ENDS_WITH,
	FOP_STR_CONTAINS,
	FOP_NUM_EQ,
	FOP_NUM_GT,
	FOP_NUM_GTE,
	FOP_NUM_LT,
	FOP_NUM_LTE,
	FOP_DATE_AFTER,
	FOP_DATE_BEFORE,
	FOP_SEMVER_EQ,
	FOP_SEMVER_GT,
	FOP_SEMVER_GTE,
	FOP_SEMVER_LT,
	FOP_SEMVER_LTE,
	FOP_IN_CIDR,
	FOP_REGEX,
	FOP_COUNT
};

/* The operator's name as Unleash spells it. */
const char *toggles_op_name(enum toggle_op op);

struct toggle_cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix;
};

struct toggle_semver {
	char *text; /* owns what ver points into */
	struct semver ver;
};

struct toggle_regex; /* a compiled pattern, matched in bounded time */

struct toggle_constraint {
	char *context; /* contextName */
	enum toggle_op op;
	bool inverted, case_insensitive;
	/* IN, NOT_IN, STR_*, IN_CIDR: the values, empty ones dropped, the rest
	 * trimmed (and lowercased for a case-insensitive STR_*); sorted by
	 * strcmp for IN and NOT_IN, which look a value up. */
	char **values;
	size_t nvalues;
	bool has_number; /* NUM_*: JavaScript's Number(value) is not NaN */
	double number;
	bool has_date;                /* DATE_*: value is a date */
	double date;                  /* seconds since the epoch */
	struct toggle_semver *semver; /* SEMVER_*: NULL when value is no version */
	struct toggle_cidr *cidrs;    /* IN_CIDR: the valid ranges among values */
	size_t ncidrs;
	struct toggle_regex *regex; /* REGEX: NULL when unusable */
	const char *unusable;       /* why it never holds (logged, counted) */
};

struct toggle_override {
	char *context;
	char **values; /* as served: the SDKs compare them untrimmed */
	size_t nvalues;
};

struct toggle_variant {
	char *name;
	double weight;
	char *stickiness;                   /* NULL: default */
	char *payload_type, *payload_value; /* NULL: no payload */
	struct toggle_override *overrides;
	size_t noverrides;
};

/* The strategies the official SDKs implement; any other never holds. */
enum toggle_kind {
	TK_UNKNOWN,
	TK_DEFAULT,
	TK_USER_WITH_ID,
	TK_FLEXIBLE_ROLLOUT,
	TK_GRADUAL_USER_ID,
	TK_GRADUAL_SESSION_ID,
	TK_GRADUAL_RANDOM,
	TK_REMOTE_ADDRESS,
	TK_APPLICATION_HOSTNAME,
	TK_COUNT
};

/* The strategy's name as Unleash spells it (what registration lists). */
const char *toggles_strategy_name(enum toggle_kind kind);

struct toggle_strategy {
	char *name;
	enum toggle_kind kind;
	/* Parameters as served: strings, or numbers the API sometimes sends. */
	char **param_keys, **param_values;
	size_t nparams;
	struct toggle_constraint *constraints; /* the strategy's, then its segments' */
	size_t nconstraints;
	bool segment_missing; /* references a segment the answer lacks: off */
	/* Prepared from the parameters. */
	bool has_rollout; /* flexibleRollout's rollout, gradual*'s percentage */
	double rollout;
	char *group_id;   /* groupId, or for flexibleRollout the toggle's name when empty */
	char *stickiness; /* flexibleRollout's, "default" when absent */
	/* userWithId's userIds (sorted by strcmp), remoteAddress's IPs,
	 * applicationHostname's hostNames (lowercased): split, trimmed */
	char **ids;
	size_t nids;
	struct toggle_cidr *cidrs; /* remoteAddress: the IPv4 ranges among IPs */
	size_t ncidrs;
	struct toggle_variant *variants;
	size_t nvariants;
};

struct toggle_dependency {
	char *feature;
	bool enabled;    /* the state the parent must be in (default true) */
	char **variants; /* with enabled: one of these variants of the parent */
	size_t nvariants;
	const struct toggle *parent; /* NULL when the answer lacks it */
};

struct toggle {
	char *name;
	bool enabled;
	struct toggle_strategy *strategies;
	size_t nstrategies;
	struct toggle_variant *variants;
	size_t nvariants;
	struct toggle_dependency *deps;
	size_t ndeps;
};

struct toggles {
	_Atomic int refs;
	struct toggle *toggles;
	size_t ntoggles;
	/* One line per constraint that can never be used (a pattern outside
	 * RE2's syntax, an unknown operator), with its JSON pointer. */
	char **problems;
	size_t nproblems;
	bool missing_parent; /* a kept toggle depends on one the answer lacks */
};

/* Parses a client API answer, segments inline or served apart (the
 * Unleash-Client-Spec header decides). name keeps only that toggle and its
 * parents; NULL keeps every toggle (tests and tools). Returns NULL with
 * one line in err (JSON pointer and rule) when the answer is not a client
 * API answer or the kept toggles are malformed: such a state is never
 * used. A constraint that cannot be used is not an error: it never holds
 * and is listed in problems. */
struct toggles *toggles_parse(const char *body, size_t len, const char *name, char *err,
                              size_t errlen);
struct toggles *toggles_ref(struct toggles *f);
void toggles_unref(struct toggles *f);

/* NULL when the answer has no such toggle. */
const struct toggle *toggles_find(const struct toggles *f, const char *name);

/* The rollout of an enabled toggle whose only strategy is flexibleRollout;
 * 0 for a disabled toggle; -1 otherwise (absent, several strategies). */
double toggles_rollout_percent(const struct toggles *f, const char *name);

/* What the evaluation uses per request. */

/* JavaScript's Number(text); false for NaN. */
bool toggles_js_number(const char *text, double *out);
/* ISO-8601 ("2022-01-29", "2022-01-29T13:00:00.000Z", "...+02:00"; no
 * offset is UTC) to seconds since the epoch; false when not a date. */
bool toggles_parse_time(const char *text, double *out);
/* A strict SemVer text against a prepared version: <0, 0, >0; false when
 * text is no version. */
bool toggles_semver_cmp(const char *text, const struct toggle_semver *v, int *order);
/* An IP address (v4 or v6) in any of the ranges. */
bool toggles_cidr_match(const struct toggle_cidr *cidrs, size_t n, const char *address);
/* True on a match anywhere in subject[0..len), by RE2 (linear time); a
 * subject over 1024 bytes never matches. */
bool toggles_regex_match(const struct toggle_regex *re, const char *subject, size_t len);

#endif
