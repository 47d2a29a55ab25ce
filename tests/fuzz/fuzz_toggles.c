/* An Unleash client API answer (a poll's body, the bootstrap file, the
 * backup file: one format) through the whole poll path, then each feature
 * evaluated by unleash_eval, the evaluation the server runs, with a fuzzed
 * context.
 *
 * Input: the answer, a NUL byte, then the context as lines: userId,
 * sessionId, remoteAddress, environment, appName, currentTime, then
 * name=value properties.
 *
 * Properties: a refused answer says why; parsing is deterministic; keeping
 * one feature keeps it (and only features it depends on); an evaluation
 * gives the same answer twice, a variant of an enabled feature says the
 * feature is on; and a decision's cost is bounded per constraint: it reads
 * the context at most a fixed number of times per constraint, strategy and
 * variant of the feature and its parents, and takes at most
 * COST_PER_CONSTRAINT_NS of CPU per constraint (a REGEX is matched in time
 * linear in a subject of at most 1,024 bytes). */
#include <time.h>

#include "fuzz.h"
#include "unleash_features.h"
#include "unleash_eval.h"

/* Generous under ASan and UBSan, where a 1,024-byte RE2 match takes tens
 * of microseconds; a backtracking matcher would take seconds. */
#define COST_PER_CONSTRAINT_NS 2000000.0
#define COST_BASE_NS           2000000.0

#define FIELDS_MAX 64

struct fuzz_context {
	const char *names[FIELDS_MAX], *values[FIELDS_MAX];
	size_t lens[FIELDS_MAX], n;
	const char *current_time;
	char *text; /* owns the strings */
	unsigned long reads;
};

static const char *const top_fields[] = {"userId",      "sessionId", "remoteAddress",
                                         "environment", "appName",   "currentTime"};

static const char *ctx_field(void *arg, unsigned id, const char *name, size_t *len)
{
	(void)id; /* read by name: the numbering is the unit tests' to check */
	struct fuzz_context *c = arg;
	c->reads++;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->names[i], name) == 0) {
			*len = c->lens[i];
			return c->values[i];
		}
	return NULL;
}

static const char *ctx_top(void *arg, unsigned id, const char *name)
{
	struct fuzz_context *c = arg;
	size_t len;
	const char *v = ctx_field(arg, id, name, &len);
	for (size_t i = 0; i < sizeof(top_fields) / sizeof(*top_fields); i++)
		if (v && strcmp(name, top_fields[i]) == 0)
			return *v ? v : NULL;
	(void)c;
	return NULL;
}

static bool ctx_now(void *arg, double *now)
{
	struct fuzz_context *c = arg;
	c->reads++;
	if (!c->current_time) {
		*now = 1700000000;
		return true;
	}
	return jsvalue_date(c->current_time, now);
}

/* The lines as fields: the first six by name, then name=value. Values
 * keep their bytes up to a NUL, as a C string does. */
static void parse_context(struct fuzz_context *c, const uint8_t *data, size_t size)
{
	memset(c, 0, sizeof(*c));
	c->text = malloc(2 * size + 2);
	if (!c->text)
		abort();
	char *out = c->text;
	for (size_t i = 0; c->n < FIELDS_MAX; i++) {
		const uint8_t *rest, *value = NULL;
		size_t rest_size, value_size = 0,
		                  n = fuzz_split(data, size, '\n', &rest, &rest_size);
		size_t k = n;
		const char *name = i < 6 ? top_fields[i] : NULL;
		if (!name)
			k = fuzz_split(data, n, '=', &value, &value_size);
		else
			value = data, value_size = n;
		if (!name) {
			memcpy(out, data, k);
			out[k] = '\0';
			name = out;
			out += k + 1;
		}
		memcpy(out, value, value_size);
		out[value_size] = '\0';
		c->names[c->n] = name;
		c->values[c->n] = out;
		c->lens[c->n++] = strlen(out);
		if (i == 5)
			c->current_time = out;
		out += value_size + 1;
		data = rest;
		size = rest_size;
		if (size == 0)
			break;
	}
}

static struct unleash_context context_of(struct fuzz_context *c)
{
	return (struct unleash_context){
	    .field = ctx_field, .top = ctx_top, .now = ctx_now, .arg = c};
}

/* What one feature may cost in reads of the context, itself alone. */
static unsigned long own_reads(const struct unleash_feature *t, size_t *constraints)
{
	unsigned long reads = 3; /* a variant's sticky fields */
	for (size_t i = 0; i < t->nvariants; i++)
		reads += t->variants[i].noverrides;
	for (size_t i = 0; i < t->nstrategies; i++) {
		const struct unleash_strategy *s = &t->strategies[i];
		reads += s->nconstraints + 2 + 3; /* + userId/sessionId, + sticky fields */
		*constraints += s->nconstraints;
		for (size_t k = 0; k < s->nvariants; k++)
			reads += s->variants[k].noverrides;
	}
	return reads;
}

/* The feature and the parents it is evaluated with. */
static unsigned long max_reads(const struct unleash_feature *t, size_t *constraints)
{
	*constraints = 0;
	unsigned long reads = own_reads(t, constraints);
	for (size_t i = 0; i < t->ndeps; i++)
		if (t->deps[i].parent)
			reads += own_reads(t->deps[i].parent, constraints);
	return reads;
}

static double cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* A variant as one comparable string. */
static void variant_text(const struct unleash_result *v, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s|%d|%d|%s|%s", v->name, v->enabled, v->feature_enabled,
	         v->payload_type ? v->payload_type : "-",
	         v->payload_value ? v->payload_value : "-");
}

/* CPU nanoseconds of one evaluation (both kinds, as getVariant costs at
 * least isEnabled); the context reads it made are left in c->reads. */
static double evaluation_ns(const struct unleash_feature *t, struct fuzz_context *c,
                            const struct unleash_context *ctx, bool *on, struct unleash_result *v)
{
	c->reads = 0;
	double started = cpu_ns();
	if (v)
		unleash_eval_variant(t, ctx, v);
	else
		*on = unleash_eval_enabled(t, ctx);
	return cpu_ns() - started;
}

/* The bounds on reads and on CPU time. A thread's CPU time still moves on
 * a loaded machine (page faults, the sanitizers' own work): over the bound,
 * the best of three more runs decides. */
static void check_cost(const struct unleash_feature *t, struct fuzz_context *c,
                       const struct unleash_context *ctx, bool variant)
{
	size_t constraints;
	unsigned long bound = max_reads(t, &constraints);
	double limit = COST_BASE_NS + COST_PER_CONSTRAINT_NS * (double)constraints;
	bool on;
	struct unleash_result v;
	double ns = evaluation_ns(t, c, ctx, &on, variant ? &v : NULL);
	FUZZ_CHECK(c->reads <= bound, "\"%s\": %lu reads of the context, bound %lu", t->name,
	           c->reads, bound);
	for (int i = 0; i < 3 && ns > limit; i++) {
		double again = evaluation_ns(t, c, ctx, &on, variant ? &v : NULL);
		ns = again < ns ? again : ns;
	}
	FUZZ_CHECK(ns <= limit, "\"%s\": %.0f ns for %zu constraints", t->name, ns, constraints);
}

static bool random_variants(const struct unleash_variant *v, size_t n)
{
	return n > 0 && v[0].stickiness && strcmp(v[0].stickiness, "default") != 0;
}

/* Whether a decision may draw a random number even with a userId: a
 * random strategy or stickiness, or one on a field the context may lack. */
static bool may_be_random(const struct unleash_feature *t, int depth)
{
	if (random_variants(t->variants, t->nvariants))
		return true;
	for (size_t i = 0; i < t->nstrategies; i++) {
		const struct unleash_strategy *s = &t->strategies[i];
		if (s->kind == UNLEASH_KIND_GRADUAL_RANDOM ||
		    random_variants(s->variants, s->nvariants) ||
		    (s->stickiness && strcmp(s->stickiness, "default") != 0))
			return true;
		const char *stickiness = unleash_strategy_param(s, "stickiness");
		if (stickiness && strcmp(stickiness, "default") != 0)
			return true;
	}
	for (size_t i = 0; depth == 0 && i < t->ndeps; i++)
		if (t->deps[i].parent && may_be_random(t->deps[i].parent, 1))
			return true;
	return false;
}

static void check_toggle(const struct unleash_feature *t, const uint8_t *data, size_t size)
{
	struct fuzz_context c;
	parse_context(&c, data, size);
	struct unleash_context ctx = context_of(&c);
	check_cost(t, &c, &ctx, false);
	check_cost(t, &c, &ctx, true);
	bool first = unleash_eval_enabled(t, &ctx);
	bool second = unleash_eval_enabled(t, &ctx);
	bool sticky = c.lens[0] > 0 && !may_be_random(t, 0);
	FUZZ_CHECK(!sticky || first == second, "\"%s\": two evaluations disagree", t->name);
	struct unleash_result v;
	unleash_eval_variant(t, &ctx, &v);
	char text[512];
	variant_text(&v, text, sizeof(text));
	FUZZ_CHECK(!v.enabled || v.feature_enabled, "\"%s\": a variant of a feature off: %s",
	           t->name, text);
	FUZZ_CHECK(!sticky || !first || v.feature_enabled,
	           "\"%s\" is enabled but its variant says the feature is off: %s", t->name, text);
	free(c.text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *ctx;
	size_t ctx_size, body_size = fuzz_split(data, size, '\0', &ctx, &ctx_size);
	const char *body = (const char *)data;
	char err[512] = "";
	struct unleash_features *all =
	    unleash_features_parse(body, body_size, NULL, err, sizeof(err));
	if (!all) {
		FUZZ_CHECK(err[0], "refused without a reason");
		return 0;
	}
	char err2[512] = "";
	struct unleash_features *again =
	    unleash_features_parse(body, body_size, NULL, err2, sizeof(err2));
	FUZZ_CHECK(again && again->nfeatures == all->nfeatures &&
	               again->nproblems == all->nproblems,
	           "two parses of one answer disagree");
	for (size_t i = 0; i < all->nproblems; i++)
		FUZZ_CHECK(strcmp(all->problems[i], again->problems[i]) == 0,
		           "two parses list other problems");
	unleash_features_unref(again);

	for (size_t i = 0; i < all->nfeatures; i++) {
		const char *name = all->features[i].name;
		FUZZ_CHECK(unleash_features_find(all, name) != NULL, "\"%s\" parsed but not found",
		           name);
		struct unleash_features *one =
		    unleash_features_parse(body, body_size, name, err, sizeof(err));
		FUZZ_CHECK(one, "\"%s\" parses with every toggle but not alone: %s", name, err);
		const struct unleash_feature *t = unleash_features_find(one, name);
		FUZZ_CHECK(t, "keeping \"%s\" lost it", name);
		FUZZ_CHECK(one->nfeatures <= 1 + t->ndeps, "keeping \"%s\" kept %zu toggles", name,
		           one->nfeatures);
		check_toggle(t, ctx, ctx_size);
		unleash_features_unref(one);
		if (i >= 8) /* enough evaluations per input; parsing covered the rest */
			break;
	}
	unleash_features_unref(all);
	return 0;
}
