/* unleash_eval: the SDKs' isEnabled and getVariant over prepared features. */
#include "unleash_eval.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "murmur3.h"
#include "semver.h"
#include "unleash_features.h"

#define VARIANT_SEED 86028157u

/* ---- context ---- */

static const char *field(const struct unleash_context *c, unsigned id, const char *name,
                         size_t *len)
{
	size_t ignored;
	return c->field(c->arg, id, name, len ? len : &ignored);
}

static const char *known(const struct unleash_context *c, enum unleash_field id, size_t *len)
{
	return field(c, id, unleash_field_names[id], len);
}

/* A random integer 1..range, as the SDKs' randomInt. Not for secrets: it
 * spreads the requests that have no sticky ID. */
static unsigned random_int(unsigned range)
{
	static _Thread_local uint64_t state;
	if (!state)
		state = ((uint64_t)time(NULL) << 20) ^ (uint64_t)(uintptr_t)&state ^
		        0x9e3779b97f4a7c15u;
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return (unsigned)(state % range) + 1;
}

/* The same as text, the sticky ID of a request without one. */
static const char *random_id(char *buf, size_t cap, unsigned range)
{
	snprintf(buf, cap, "%u", random_int(range));
	return buf;
}

/* The SDKs' normalizedValue: murmur3(group_id ":" id, seed) % normalizer + 1. */
static double normalized(const char *id, size_t idlen, const char *group, size_t glen,
                         double normalizer, uint32_t seed)
{
	size_t n = glen + 1 + idlen;
	char stack[256];
	char *buf = n <= sizeof(stack) ? stack : malloc(n);
	if (!buf)
		return INFINITY; /* above every rollout and weight: no hit */
	memcpy(buf, group, glen);
	buf[glen] = ':';
	memcpy(buf + glen + 1, id, idlen);
	uint32_t h = murmur3_32(buf, n, seed);
	if (buf != stack)
		free(buf);
	if (normalizer == 100)
		return (double)(h % 100u) + 1;
	return fmod((double)h, normalizer) + 1;
}

/* ---- constraints ---- */

static bool in_sorted(char *const *values, size_t n, const char *v)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v, values[mid]);
		if (c == 0)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

static bool str_test(enum unleash_op op, const char *value, size_t len, const char *v)
{
	size_t vlen = strlen(v);
	switch (op) {
	case UNLEASH_OP_STR_STARTS_WITH:
		return vlen <= len && memcmp(value, v, vlen) == 0;
	case UNLEASH_OP_STR_ENDS_WITH:
		return vlen <= len && memcmp(value + len - vlen, v, vlen) == 0;
	default:
		return memmem(value, len, v, vlen) != NULL;
	}
}

/* STR_*: the values were lowered when prepared, the context's value is
 * lowered here (ASCII, as Lua's and JavaScript's lowering of these). */
static bool str_holds(const struct unleash_constraint *c, const char *value, size_t len)
{
	char stack[256];
	char *lowered = NULL;
	if (c->case_insensitive) {
		lowered = len < sizeof(stack) ? stack : malloc(len + 1);
		if (!lowered)
			return false;
		for (size_t i = 0; i < len; i++)
			lowered[i] = (char)tolower((unsigned char)value[i]);
		lowered[len] = '\0';
		value = lowered;
	}
	bool held = false;
	for (size_t i = 0; i < c->nvalues && !held; i++)
		held = str_test(c->op, value, len, c->values[i]);
	if (lowered && lowered != stack)
		free(lowered);
	return held;
}

static bool num_holds(enum unleash_op op, double a, double b)
{
	switch (op) {
	case UNLEASH_OP_NUM_EQ:
		return a == b;
	case UNLEASH_OP_NUM_GT:
		return a > b;
	case UNLEASH_OP_NUM_GTE:
		return a >= b;
	case UNLEASH_OP_NUM_LT:
		return a < b;
	default:
		return a <= b;
	}
}

static bool semver_holds(enum unleash_op op, int order)
{
	switch (op) {
	case UNLEASH_OP_SEMVER_EQ:
		return order == 0;
	case UNLEASH_OP_SEMVER_GT:
		return order > 0;
	case UNLEASH_OP_SEMVER_GTE:
		return order >= 0;
	case UNLEASH_OP_SEMVER_LT:
		return order < 0;
	default:
		return order <= 0;
	}
}

/* The few versions clusters run repeat: each thread keeps the last texts
 * it parsed, by content (a text is no key once freed), and parses a text
 * at most once while it stays. NULL when text is no version. */
#define MEMO_SLOTS 8
#define MEMO_TEXT  32

struct version_memo {
	char text[MEMO_TEXT]; /* "" when the slot is empty */
	bool valid;
	struct semver ver; /* its pre points into text */
};

static const struct semver *parsed_version(const char *text, size_t len)
{
	static _Thread_local struct version_memo memo[MEMO_SLOTS];
	static _Thread_local struct semver scratch;
	if (len == 0 || len >= MEMO_TEXT) /* too long to keep: parsed each time */
		return semver_parse(text, len, &scratch) ? &scratch : NULL;
	struct version_memo *m = &memo[(len + (unsigned char)text[len - 1]) % MEMO_SLOTS];
	if (memcmp(m->text, text, len + 1) != 0) {
		memcpy(m->text, text, len + 1);
		m->valid = semver_parse(m->text, len, &m->ver);
	}
	return m->valid ? &m->ver : NULL;
}

/* The constraint before inversion. The SDKs compare currentTime whatever
 * the constraint's contextName says. */
static bool holds(const struct unleash_constraint *c, const struct unleash_context *ctx)
{
	size_t len;
	if (c->op == UNLEASH_OP_DATE_AFTER || c->op == UNLEASH_OP_DATE_BEFORE) {
		double now;
		if (!c->has_date || !ctx->now(ctx->arg, &now))
			return false;
		return c->op == UNLEASH_OP_DATE_AFTER ? now > c->date : now < c->date;
	}
	const char *value = field(ctx, c->field, c->context, &len);
	switch (c->op) {
	case UNLEASH_OP_IN:
		return value && in_sorted(c->values, c->nvalues, value);
	case UNLEASH_OP_NOT_IN:
		return !(value && in_sorted(c->values, c->nvalues, value));
	case UNLEASH_OP_STR_STARTS_WITH:
	case UNLEASH_OP_STR_ENDS_WITH:
	case UNLEASH_OP_STR_CONTAINS:
		return value && str_holds(c, value, len);
	case UNLEASH_OP_NUM_EQ:
	case UNLEASH_OP_NUM_GT:
	case UNLEASH_OP_NUM_GTE:
	case UNLEASH_OP_NUM_LT:
	case UNLEASH_OP_NUM_LTE: {
		double n;
		return value && c->has_number && jsvalue_number(value, &n) &&
		       num_holds(c->op, n, c->number);
	}
	case UNLEASH_OP_SEMVER_EQ:
	case UNLEASH_OP_SEMVER_GT:
	case UNLEASH_OP_SEMVER_GTE:
	case UNLEASH_OP_SEMVER_LT:
	case UNLEASH_OP_SEMVER_LTE: {
		const struct semver *v = value && c->semver ? parsed_version(value, len) : NULL;
		return v && semver_holds(c->op, semver_cmp(v, &c->semver->ver));
	}
	case UNLEASH_OP_IN_CIDR:
		return value && jsvalue_cidr_match(c->cidrs, c->ncidrs, value);
	case UNLEASH_OP_REGEX:
		return value && unleash_regex_match(c->regex, value, len);
	default:
		return false;
	}
}

/* An unknown operator or an unusable pattern never holds, inverted or not. */
static bool constraint_holds(const struct unleash_constraint *c, const struct unleash_context *ctx)
{
	if (c->unusable || c->op == UNLEASH_OP_UNKNOWN)
		return false;
	return holds(c, ctx) != c->inverted;
}

/* ---- strategies ---- */

static bool hit(const char *id, size_t len, const struct unleash_strategy *s)
{
	return id && *id && s->has_rollout && s->rollout > 0 &&
	       normalized(id, len, s->group_id, s->group_id_len, 100, 0) <= s->rollout;
}

/* flexibleRollout's sticky ID: userId, else sessionId, else random for
 * "default"; random for "random"; the named field otherwise. */
static const char *sticky_id(const struct unleash_strategy *s, const struct unleash_context *ctx,
                             char *buf, size_t cap, size_t *len)
{
	const char *id;
	switch (s->sticky) {
	case UNLEASH_STICKY_DEFAULT:
		if ((id = known(ctx, UNLEASH_FIELD_USER_ID, len)) ||
		    (id = known(ctx, UNLEASH_FIELD_SESSION_ID, len)))
			return id;
		break;
	case UNLEASH_STICKY_FIELD:
		return field(ctx, s->sticky_field, s->stickiness, len);
	default:
		break;
	}
	random_id(buf, cap, 10001);
	*len = strlen(buf);
	return buf;
}

/* value is one of list's n texts: a strategy's IDs or host names, a
 * dependency's variants. */
static bool listed(char *const *list, size_t n, const char *value)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], value) == 0)
			return true;
	return false;
}

/* The strategy's own rule, its constraints apart. */
static bool rule_holds(const struct unleash_strategy *s, const struct unleash_context *ctx)
{
	char buf[16];
	const char *v;
	size_t len;
	switch (s->kind) {
	case UNLEASH_KIND_DEFAULT:
		return true;
	case UNLEASH_KIND_USER_WITH_ID:
		v = known(ctx, UNLEASH_FIELD_USER_ID, NULL);
		return s->ids && v && in_sorted(s->ids, s->nids, v);
	case UNLEASH_KIND_FLEXIBLE_ROLLOUT:
		if (!s->has_rollout || s->rollout <= 0)
			return false;
		v = sticky_id(s, ctx, buf, sizeof(buf), &len);
		return hit(v, len, s);
	case UNLEASH_KIND_GRADUAL_USER_ID:
		v = known(ctx, UNLEASH_FIELD_USER_ID, &len);
		return hit(v, len, s);
	case UNLEASH_KIND_GRADUAL_SESSION_ID:
		v = known(ctx, UNLEASH_FIELD_SESSION_ID, &len);
		return hit(v, len, s);
	case UNLEASH_KIND_GRADUAL_RANDOM:
		return s->has_rollout && s->rollout >= random_int(100);
	case UNLEASH_KIND_REMOTE_ADDRESS:
		v = known(ctx, UNLEASH_FIELD_REMOTE_ADDRESS, NULL);
		return s->ids && v &&
		       (listed(s->ids, s->nids, v) || jsvalue_cidr_match(s->cidrs, s->ncidrs, v));
	case UNLEASH_KIND_APPLICATION_HOSTNAME:
		return s->ids && listed(s->ids, s->nids, unleash_eval_hostname());
	default:
		return false;
	}
}

static bool strategy_holds(const struct unleash_strategy *s, const struct unleash_context *ctx)
{
	if (s->kind == UNLEASH_KIND_UNKNOWN || s->segment_missing)
		return false;
	for (size_t i = 0; i < s->nconstraints; i++)
		if (!constraint_holds(&s->constraints[i], ctx))
			return false;
	return rule_holds(s, ctx);
}

/* ---- features ---- */

static bool parents_hold(const struct unleash_feature *t, const struct unleash_context *ctx);

/* On, and the strategy that made it so (NULL for a feature without
 * strategies). */
static bool enabled_by(const struct unleash_feature *t, const struct unleash_context *ctx,
                       const struct unleash_strategy **by)
{
	*by = NULL;
	if (!t->enabled || !parents_hold(t, ctx))
		return false;
	if (t->nstrategies == 0)
		return true; /* an enabled feature without strategies is on for everyone */
	for (size_t i = 0; i < t->nstrategies; i++)
		if (strategy_holds(&t->strategies[i], ctx)) {
			*by = &t->strategies[i];
			return true;
		}
	return false;
}

/* Parents are evaluated with the child's context. A missing parent, or one
 * that has parents itself, makes the child off. */
static bool parents_hold(const struct unleash_feature *t, const struct unleash_context *ctx)
{
	for (size_t i = 0; i < t->ndeps; i++) {
		const struct unleash_dependency *d = &t->deps[i];
		const struct unleash_feature *parent = d->parent;
		if (!parent || parent->ndeps > 0)
			return false;
		bool ok;
		if (!d->enabled) {
			ok = !unleash_eval_enabled(parent, ctx);
		} else if (d->nvariants > 0) {
			struct unleash_result v;
			unleash_eval_variant(parent, ctx, &v);
			ok = v.feature_enabled && listed(d->variants, d->nvariants, v.name);
		} else {
			ok = unleash_eval_enabled(parent, ctx);
		}
		if (!ok)
			return false;
	}
	return true;
}

bool unleash_eval_enabled(const struct unleash_feature *t, const struct unleash_context *ctx)
{
	const struct unleash_strategy *by;
	return enabled_by(t, ctx, &by);
}

/* ---- variants ---- */

static bool override_matches(const struct unleash_variant *v, const struct unleash_context *ctx)
{
	for (size_t i = 0; i < v->noverrides; i++) {
		const struct unleash_override *o = &v->overrides[i];
		const char *value = field(ctx, o->field, o->context, NULL);
		for (size_t k = 0; value && k < o->nvalues; k++)
			if (strcmp(o->values[k], value) == 0)
				return true;
	}
	return false;
}

/* A variant's stickiness: NULL or "default" for the SDKs' own order, else
 * the field name, numbered id. */
struct sticky {
	const char *name;
	unsigned id;
};

static const char *variant_seed(struct sticky st, const struct unleash_context *ctx, char *buf,
                                size_t cap, size_t *len)
{
	static const enum unleash_field order[] = {UNLEASH_FIELD_USER_ID, UNLEASH_FIELD_SESSION_ID,
	                                           UNLEASH_FIELD_REMOTE_ADDRESS};
	const char *v = NULL;
	if (st.name && strcmp(st.name, "default") != 0) {
		v = field(ctx, st.id, st.name, len);
	} else {
		for (size_t i = 0; !v && i < sizeof(order) / sizeof(order[0]); i++)
			v = ctx->top(ctx->arg, order[i], unleash_field_names[order[i]]);
		if (v)
			*len = strlen(v);
	}
	if (v)
		return v;
	random_id(buf, cap, 100000);
	*len = strlen(buf);
	return buf;
}

static const struct unleash_variant *select_variant(const char *group, struct sticky st,
                                                    const struct unleash_variant *variants,
                                                    size_t n, const struct unleash_context *ctx)
{
	double total = 0;
	for (size_t i = 0; i < n; i++)
		total += variants[i].weight;
	if (!(total > 0))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (override_matches(&variants[i], ctx))
			return &variants[i];
	char buf[16];
	size_t len;
	const char *seed = variant_seed(st, ctx, buf, sizeof(buf), &len);
	double target = normalized(seed, len, group, strlen(group), total, VARIANT_SEED);
	double counter = 0;
	for (size_t i = 0; i < n; i++) {
		if (variants[i].weight == 0)
			continue;
		counter += variants[i].weight;
		if (counter >= target)
			return &variants[i];
	}
	return NULL;
}

/* The stickiness of a list of variants: the first one's, else (for a
 * strategy's) the strategy's stickiness parameter. */
static struct sticky variants_sticky(const struct unleash_variant *v,
                                     const struct unleash_strategy *s)
{
	if (v[0].stickiness)
		return (struct sticky){v[0].stickiness, v[0].sticky_field};
	if (s && s->sticky != UNLEASH_STICKY_DEFAULT)
		return (struct sticky){s->sticky_param, s->sticky_field};
	return (struct sticky){NULL, 0};
}

void unleash_eval_variant(const struct unleash_feature *t, const struct unleash_context *ctx,
                          struct unleash_result *out)
{
	const struct unleash_strategy *by;
	*out = (struct unleash_result){.name = "disabled"};
	if (!enabled_by(t, ctx, &by))
		return;
	out->feature_enabled = true;
	const struct unleash_variant *v = NULL;
	if (by && by->nvariants > 0) {
		v = select_variant(by->group_param ? by->group_param : "undefined",
		                   variants_sticky(by->variants, by), by->variants, by->nvariants,
		                   ctx);
	}
	if (!v && t->nvariants > 0)
		v = select_variant(t->name, variants_sticky(t->variants, NULL), t->variants,
		                   t->nvariants, ctx);
	if (!v)
		return;
	out->name = v->name;
	out->enabled = true;
	out->payload_type = v->payload_type;
	out->payload_value = v->payload_value;
}

/* ---- this host ---- */

static char hostname[256];
static pthread_once_t hostname_once = PTHREAD_ONCE_INIT;

static void read_hostname(void)
{
	const char *env = getenv("HOSTNAME");
	if (env && *env)
		snprintf(hostname, sizeof(hostname), "%s", env);
	else if (gethostname(hostname, sizeof(hostname) - 1) != 0 || !*hostname)
		snprintf(hostname, sizeof(hostname), "undefined");
	for (char *c = hostname; *c; c++)
		*c = (char)tolower((unsigned char)*c);
}

const char *unleash_eval_hostname(void)
{
	pthread_once(&hostname_once, read_hostname);
	return hostname;
}
