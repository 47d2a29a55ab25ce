/* unleash_features: the client API answer, parsed and prepared once per poll. */
#include "unleash_features.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsontext.h"
#include "unleash_regex.h"

static const char *const op_names[UNLEASH_OP_COUNT] = {
    [UNLEASH_OP_UNKNOWN] = "(unknown)",
    [UNLEASH_OP_IN] = "IN",
    [UNLEASH_OP_NOT_IN] = "NOT_IN",
    [UNLEASH_OP_STR_STARTS_WITH] = "STR_STARTS_WITH",
    [UNLEASH_OP_STR_ENDS_WITH] = "STR_ENDS_WITH",
    [UNLEASH_OP_STR_CONTAINS] = "STR_CONTAINS",
    [UNLEASH_OP_NUM_EQ] = "NUM_EQ",
    [UNLEASH_OP_NUM_GT] = "NUM_GT",
    [UNLEASH_OP_NUM_GTE] = "NUM_GTE",
    [UNLEASH_OP_NUM_LT] = "NUM_LT",
    [UNLEASH_OP_NUM_LTE] = "NUM_LTE",
    [UNLEASH_OP_DATE_AFTER] = "DATE_AFTER",
    [UNLEASH_OP_DATE_BEFORE] = "DATE_BEFORE",
    [UNLEASH_OP_SEMVER_EQ] = "SEMVER_EQ",
    [UNLEASH_OP_SEMVER_GT] = "SEMVER_GT",
    [UNLEASH_OP_SEMVER_GTE] = "SEMVER_GTE",
    [UNLEASH_OP_SEMVER_LT] = "SEMVER_LT",
    [UNLEASH_OP_SEMVER_LTE] = "SEMVER_LTE",
    [UNLEASH_OP_IN_CIDR] = "IN_CIDR",
    [UNLEASH_OP_REGEX] = "REGEX",
};

const char *unleash_op_name(enum unleash_op op)
{
	return op >= 0 && op < UNLEASH_OP_COUNT ? op_names[op] : op_names[UNLEASH_OP_UNKNOWN];
}

/* snprintf whose truncation is fine: pointers and messages are cut, never
 * overrun. */
#define FMT(buf, ...) fmt_cut((buf), sizeof(buf), __VA_ARGS__)

static void fmt_cut(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt_cut(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
}

/* ---- parsing context: the first error wins, memory failures included ---- */

struct parser {
	struct unleash_features *f;
	json_t *segments; /* top-level list, or NULL when inlined */
	char *err;
	size_t errlen;
	bool failed;
};

static bool fail(struct parser *p, const char *pointer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(struct parser *p, const char *pointer, const char *fmt, ...)
{
	if (p->failed)
		return false;
	p->failed = true;
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	fmt_cut(p->err, p->errlen, "client API answer: %s: %s", *pointer ? pointer : "/", why);
	return false;
}

static bool oom(struct parser *p)
{
	return fail(p, "", "out of memory");
}

static char *dup_str(struct parser *p, const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		oom(p);
	return d;
}

/* A list of n texts, and the texts. */
static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void *alloc_array(struct parser *p, size_t n, size_t size)
{
	void *a = calloc(n ? n : 1, size);
	if (!a)
		oom(p);
	return a;
}

/* The number of context field name, numbering it when new. The features
 * of one answer read few fields: a look through them is enough. */
static bool field_number(struct parser *p, const char *name, unsigned *out)
{
	struct unleash_features *f = p->f;
	for (size_t i = 0; i < f->nfields; i++)
		if (strcmp(f->fields[i], name) == 0) {
			*out = (unsigned)i;
			return true;
		}
	char **grown = realloc(f->fields, (f->nfields + 1) * sizeof(*grown));
	if (!grown)
		return oom(p);
	f->fields = grown;
	if (!(f->fields[f->nfields] = dup_str(p, name)))
		return false;
	*out = (unsigned)f->nfields++;
	return true;
}

const char *const unleash_field_names[UNLEASH_FIELDS_KNOWN] = {
    [UNLEASH_FIELD_USER_ID] = "userId",
    [UNLEASH_FIELD_SESSION_ID] = "sessionId",
    [UNLEASH_FIELD_REMOTE_ADDRESS] = "remoteAddress",
    [UNLEASH_FIELD_APP_NAME] = "appName",
    [UNLEASH_FIELD_ENVIRONMENT] = "environment",
};

/* The fields the SDKs read by themselves, at their enum unleash_field. */
static bool number_known(struct parser *p)
{
	unsigned number;
	for (size_t i = 0; i < UNLEASH_FIELDS_KNOWN; i++)
		if (!field_number(p, unleash_field_names[i], &number))
			return false;
	return true;
}

/* "/features/3/strategies/0" and the like. */
static void child_ptr(char *out, size_t cap, const char *base, const char *key, long index)
{
	if (key) {
		struct buf tok = {0};
		buf_pointer_token(&tok, key);
		fmt_cut(out, cap, "%s%s", base, buf_str(&tok));
		buf_free(&tok);
	} else {
		fmt_cut(out, cap, "%s/%ld", base, index);
	}
}

/* Type checks of optional members: absent (or null) is fine. */
static bool opt_type(struct parser *p, json_t *obj, const char *key, const char *base,
                     json_type type, const char *what, json_t **out)
{
	json_t *v = json_object_get(obj, key);
	*out = json_is_null(v) ? NULL : v;
	if (!*out)
		return true;
	bool ok = type == JSON_TRUE ? json_is_boolean(v) : json_typeof(v) == type;
	if (!ok) {
		char ptr[512];
		child_ptr(ptr, sizeof(ptr), base, key, 0);
		return fail(p, ptr, "must be %s", what);
	}
	return true;
}

static bool opt_bool(struct parser *p, json_t *obj, const char *key, const char *base, bool dflt,
                     bool *out)
{
	json_t *v;
	if (!opt_type(p, obj, key, base, JSON_TRUE, "a boolean", &v))
		return false;
	*out = v ? json_is_true(v) : dflt;
	return true;
}

static bool opt_string(struct parser *p, json_t *obj, const char *key, const char *base,
                       const char **out)
{
	json_t *v;
	if (!opt_type(p, obj, key, base, JSON_STRING, "a string", &v))
		return false;
	*out = v ? json_string_value(v) : NULL;
	return true;
}

/* An empty object stands for an empty list too: it is how lua-cjson
 * encodes an empty Lua table, in features scripts and tests write by hand. */
static bool opt_array(struct parser *p, json_t *obj, const char *key, const char *base,
                      json_t **out)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_object(v) && json_object_size(v) == 0) {
		*out = NULL;
		return true;
	}
	return opt_type(p, obj, key, base, JSON_ARRAY, "an array", out);
}

/* ---- values ---- */

/* A copy without surrounding white space (String.prototype.trim, ASCII). */
static char *trimmed(struct parser *p, const char *s, size_t len, bool lower)
{
	while (len > 0 && jsvalue_is_space((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && jsvalue_is_space((unsigned char)s[len - 1]))
		len--;
	char *d = malloc(len + 1);
	if (!d) {
		oom(p);
		return NULL;
	}
	for (size_t i = 0; i < len; i++)
		d[i] = lower ? (char)tolower((unsigned char)s[i]) : s[i];
	d[len] = '\0';
	return d;
}

/* A copy of one part of a list: trimmed next to commas only. */
static char *kept_ends(struct parser *p, const char *s, size_t len, bool first, bool last)
{
	while (!first && len > 0 && jsvalue_is_space((unsigned char)*s)) {
		s++;
		len--;
	}
	while (!last && len > 0 && jsvalue_is_space((unsigned char)s[len - 1]))
		len--;
	char *d = strndup(s, len);
	if (!d)
		oom(p);
	return d;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The strings of a list, as they are. */
static bool raw_values(struct parser *p, json_t *values, char ***out, size_t *n)
{
	*out = alloc_array(p, json_array_size(values), sizeof(char *));
	*n = 0;
	if (!*out)
		return false;
	size_t i;
	json_t *v;
	json_array_foreach(values, i, v)
	{
		if (json_is_string(v) && !((*out)[(*n)++] = dup_str(p, json_string_value(v))))
			return false;
	}
	return true;
}

/* The SDKs' cleanValues: non-empty strings, trimmed. */
static bool clean_values(struct parser *p, json_t *values, bool lower, char ***out, size_t *n)
{
	*out = alloc_array(p, json_array_size(values), sizeof(char *));
	*n = 0;
	if (!*out)
		return false;
	size_t i;
	json_t *v;
	json_array_foreach(values, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) == 0)
			continue;
		char *t = trimmed(p, json_string_value(v), json_string_length(v), lower);
		if (!t)
			return false;
		(*out)[(*n)++] = t;
	}
	return true;
}

/* JavaScript's Number(v) of a JSON value as the API serves it. */
static bool json_js_number(json_t *v, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return true;
	}
	if (json_is_string(v))
		return jsvalue_number(json_string_value(v), out);
	return false;
}

static char *param_text(struct parser *p, json_t *v);

/* ---- constraints ---- */

static enum unleash_op op_of(const char *name)
{
	for (int op = UNLEASH_OP_UNKNOWN + 1; op < UNLEASH_OP_COUNT; op++)
		if (name && strcmp(name, op_names[op]) == 0)
			return (enum unleash_op)op;
	return UNLEASH_OP_UNKNOWN;
}

static void add_problem(struct parser *p, const char *pointer, const char *why)
{
	struct unleash_features *f = p->f;
	char line[640];
	FMT(line, "%s: %s", pointer, why);
	char **grown = realloc(f->problems, (f->nproblems + 1) * sizeof(char *));
	if (!grown) {
		oom(p);
		return;
	}
	f->problems = grown;
	if (!(f->problems[f->nproblems] = strdup(line))) {
		oom(p);
		return;
	}
	f->nproblems++;
}

static bool prepare_semver(struct parser *p, json_t *value, struct unleash_constraint *c)
{
	const char *text = json_string_value(value);
	if (!text)
		return true;
	/* The SDKs' semver library forgives one leading "v" or "=" here. */
	if (*text == 'v' || *text == '=')
		text++;
	struct unleash_version *v = calloc(1, sizeof(*v));
	bool ok = v && (v->text = strdup(text));
	if (ok && semver_parse(v->text, strlen(v->text), &v->ver)) {
		c->semver = v;
		return true;
	}
	if (v)
		free(v->text);
	free(v);
	return ok ? true : oom(p);
}

static bool prepare_value(struct parser *p, json_t *jc, const char *ptr,
                          struct unleash_constraint *c)
{
	json_t *value = json_object_get(jc, "value");
	switch (c->op) {
	case UNLEASH_OP_NUM_EQ:
	case UNLEASH_OP_NUM_GT:
	case UNLEASH_OP_NUM_GTE:
	case UNLEASH_OP_NUM_LT:
	case UNLEASH_OP_NUM_LTE:
		c->has_number = json_js_number(value, &c->number) && !isnan(c->number);
		return true;
	case UNLEASH_OP_DATE_AFTER:
	case UNLEASH_OP_DATE_BEFORE:
		c->has_date =
		    json_is_string(value) && jsvalue_date(json_string_value(value), &c->date);
		return true;
	case UNLEASH_OP_SEMVER_EQ:
	case UNLEASH_OP_SEMVER_GT:
	case UNLEASH_OP_SEMVER_GTE:
	case UNLEASH_OP_SEMVER_LT:
	case UNLEASH_OP_SEMVER_LTE:
		return prepare_semver(p, value, c);
	case UNLEASH_OP_IN_CIDR:
		c->cidrs = alloc_array(p, c->nvalues, sizeof(*c->cidrs));
		if (!c->cidrs)
			return false;
		for (size_t i = 0; i < c->nvalues; i++)
			if (jsvalue_cidr_parse(c->values[i], false, &c->cidrs[c->ncidrs]))
				c->ncidrs++;
		return true;
	case UNLEASH_OP_REGEX: {
		char why[320];
		const char *problem =
		    json_is_string(value)
		        ? unleash_regex_compile(json_string_value(value), c->case_insensitive,
		                                &c->regex, why, sizeof(why))
		        : "value is not a string";
		if (problem) {
			c->unusable = "REGEX pattern cannot be used";
			char ptrv[512];
			FMT(ptrv, "%s/value", ptr);
			add_problem(p, ptrv, problem);
		}
		return !p->failed;
	}
	default:
		return true;
	}
}

static bool parse_constraint(struct parser *p, json_t *jc, const char *ptr,
                             struct unleash_constraint *c)
{
	if (!json_is_object(jc))
		return fail(p, ptr, "a constraint must be an object");
	const char *context, *operator;
	json_t *values;
	if (!opt_string(p, jc, "contextName", ptr, &context) ||
	    !opt_string(p, jc, "operator", ptr, &operator) ||
	    !opt_bool(p, jc, "inverted", ptr, false, &c->inverted) ||
	    !opt_bool(p, jc, "caseInsensitive", ptr, false, &c->case_insensitive) ||
	    !opt_array(p, jc, "values", ptr, &values))
		return false;
	if (!(c->context = dup_str(p, context)) || !field_number(p, c->context, &c->field))
		return false;
	c->op = op_of(operator);
	if (c->op == UNLEASH_OP_UNKNOWN) {
		c->unusable = "unknown operator";
		char ptro[512];
		FMT(ptro, "%s/operator", ptr);
		add_problem(p, ptro, operator? "unknown operator" : "no operator");
		return !p->failed;
	}
	bool lower = c->case_insensitive && c->op >= UNLEASH_OP_STR_STARTS_WITH &&
	             c->op <= UNLEASH_OP_STR_CONTAINS;
	if (!clean_values(p, values, lower, &c->values, &c->nvalues))
		return false;
	if (c->op == UNLEASH_OP_IN || c->op == UNLEASH_OP_NOT_IN)
		qsort(c->values, c->nvalues, sizeof(char *), cmp_str);
	return prepare_value(p, jc, ptr, c);
}

static void free_constraint(struct unleash_constraint *c)
{
	free(c->context);
	free_list(c->values, c->nvalues);
	if (c->semver)
		free(c->semver->text);
	free(c->semver);
	free(c->cidrs);
	unleash_regex_free(c->regex);
}

/* ---- strategies ---- */

/* Parameters become strings, as the SDKs read them; numbers print as
 * JavaScript's String(n) would for the values Unleash sends. */
static char *param_text(struct parser *p, json_t *v)
{
	char buf[64];
	if (json_is_string(v))
		return dup_str(p, json_string_value(v));
	if (json_is_integer(v))
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, sizeof(buf), "%s", json_is_true(v) ? "true" : "false");
	else
		return NULL;
	return dup_str(p, buf);
}

const char *unleash_strategy_param(const struct unleash_strategy *s, const char *key)
{
	for (size_t i = 0; i < s->nparams; i++)
		if (strcmp(s->param_keys[i], key) == 0)
			return s->param_values[i];
	return NULL;
}

static bool parse_params(struct parser *p, json_t *params, struct unleash_strategy *s)
{
	size_t n = json_object_size(params);
	s->param_keys = alloc_array(p, n, sizeof(char *));
	s->param_values = alloc_array(p, n, sizeof(char *));
	if (!s->param_keys || !s->param_values)
		return false;
	const char *key;
	json_t *v;
	json_object_foreach(params, key, v)
	{
		char *text = param_text(p, v);
		if (!text) {
			if (p->failed)
				return false;
			continue;
		}
		s->param_keys[s->nparams] = dup_str(p, key);
		s->param_values[s->nparams++] = text;
		if (!s->param_keys[s->nparams - 1])
			return false;
	}
	return true;
}

/* "a, b ,c": split on commas, each part trimmed (the SDKs' /\s*,\s*\/);
 * with keep_ends, the white space at the ends of the whole text is kept,
 * as the Node SDK's split alone keeps it (applicationHostname). */
static bool split_list(struct parser *p, const char *text, bool keep_ends, char ***out, size_t *n)
{
	size_t parts = 1;
	for (const char *q = text; *q; q++)
		parts += *q == ',';
	*out = alloc_array(p, parts, sizeof(char *));
	*n = 0;
	if (!*out)
		return false;
	const char *start = text;
	for (;;) {
		const char *end = strchr(start, ',');
		size_t len = end ? (size_t)(end - start) : strlen(start);
		char *part = keep_ends ? kept_ends(p, start, len, start == text, !end)
		                       : trimmed(p, start, len, false);
		if (!((*out)[(*n)++] = part))
			return false;
		if (!end)
			return true;
		start = end + 1;
	}
}

static const char *const kind_names[UNLEASH_KIND_COUNT] = {
    [UNLEASH_KIND_UNKNOWN] = "(unknown)",
    [UNLEASH_KIND_DEFAULT] = "default",
    [UNLEASH_KIND_USER_WITH_ID] = "userWithId",
    [UNLEASH_KIND_FLEXIBLE_ROLLOUT] = "flexibleRollout",
    [UNLEASH_KIND_GRADUAL_USER_ID] = "gradualRolloutUserId",
    [UNLEASH_KIND_GRADUAL_SESSION_ID] = "gradualRolloutSessionId",
    [UNLEASH_KIND_GRADUAL_RANDOM] = "gradualRolloutRandom",
    [UNLEASH_KIND_REMOTE_ADDRESS] = "remoteAddress",
    [UNLEASH_KIND_APPLICATION_HOSTNAME] = "applicationHostname",
};

/* (Alike in shape to the operators' names above: two tables, one per enum.) */
const char *unleash_kind_name(enum unleash_kind kind)
{
	return kind > UNLEASH_KIND_UNKNOWN && kind < UNLEASH_KIND_COUNT
	           ? kind_names[kind]
	           : kind_names[UNLEASH_KIND_UNKNOWN];
}

static enum unleash_kind kind_of(const char *name)
{
	for (int k = UNLEASH_KIND_UNKNOWN + 1; k < UNLEASH_KIND_COUNT; k++)
		if (strcmp(name, kind_names[k]) == 0)
			return (enum unleash_kind)k;
	return UNLEASH_KIND_UNKNOWN;
}

static bool prepare_strategy(struct parser *p, struct unleash_strategy *s, const char *feature)
{
	s->kind = kind_of(s->name);
	const char *pct = unleash_strategy_param(
	    s, strcmp(s->name, "flexibleRollout") == 0 ? "rollout" : "percentage");
	s->has_rollout = pct && jsvalue_number(pct, &s->rollout) && !isnan(s->rollout);
	const char *group = s->group_param = unleash_strategy_param(s, "groupId");
	const char *stickiness = s->sticky_param = unleash_strategy_param(s, "stickiness");
	if (strcmp(s->name, "flexibleRollout") == 0) {
		if (!group || !*group)
			group = feature;
		if (!(s->stickiness = dup_str(p, stickiness ? stickiness : "default")))
			return false;
	}
	/* "random" is a field's name too, to a variant's stickiness */
	s->sticky = !stickiness || strcmp(stickiness, "default") == 0 ? UNLEASH_STICKY_DEFAULT
	            : strcmp(stickiness, "random") == 0               ? UNLEASH_STICKY_RANDOM
	                                                              : UNLEASH_STICKY_FIELD;
	if (s->sticky != UNLEASH_STICKY_DEFAULT && !field_number(p, stickiness, &s->sticky_field))
		return false;
	if (!(s->group_id = dup_str(p, group ? group : "")))
		return false;
	s->group_id_len = strlen(s->group_id);
	const char *list =
	    s->kind == UNLEASH_KIND_USER_WITH_ID           ? unleash_strategy_param(s, "userIds")
	    : s->kind == UNLEASH_KIND_REMOTE_ADDRESS       ? unleash_strategy_param(s, "IPs")
	    : s->kind == UNLEASH_KIND_APPLICATION_HOSTNAME ? unleash_strategy_param(s, "hostNames")
	                                                   : NULL;
	if (list &&
	    !split_list(p, list, s->kind == UNLEASH_KIND_APPLICATION_HOSTNAME, &s->ids, &s->nids))
		return false;
	if (list && s->kind == UNLEASH_KIND_USER_WITH_ID)
		qsort(s->ids, s->nids, sizeof(char *), cmp_str);
	if (list && s->kind == UNLEASH_KIND_APPLICATION_HOSTNAME)
		for (size_t i = 0; i < s->nids; i++)
			for (char *c = s->ids[i]; *c; c++)
				*c = (char)tolower((unsigned char)*c);
	if (list && s->kind == UNLEASH_KIND_REMOTE_ADDRESS) {
		if (!(s->cidrs = alloc_array(p, s->nids, sizeof(*s->cidrs))))
			return false;
		for (size_t i = 0; i < s->nids; i++)
			if (jsvalue_cidr_parse(s->ids[i], true, &s->cidrs[s->ncidrs]))
				s->ncidrs++;
	}
	return true;
}

/* The one skeleton of the lists of objects a feature holds (variants,
 * dependencies): an array of size-byte items, each element an object read
 * by one() at its own pointer; not_object is the problem otherwise. The
 * count is kept as items are read, so that a failure frees what was read. */
typedef bool (*read_object_fn)(struct parser *p, json_t *obj, const char *ptr, void *item);

static bool parse_objects(struct parser *p, json_t *list, const char *base, size_t size,
                          const char *not_object, read_object_fn one, void **out, size_t *n)
{
	*n = 0;
	*out = alloc_array(p, json_array_size(list), size);
	if (!*out)
		return false;
	size_t i;
	json_t *jv;
	json_array_foreach(list, i, jv)
	{
		char ptr[512];
		child_ptr(ptr, sizeof(ptr), base, NULL, (long)i);
		void *item = (char *)*out + (*n)++ * size;
		if (!json_is_object(jv))
			return fail(p, ptr, "%s", not_object);
		if (!one(p, jv, ptr, item))
			return false;
	}
	return true;
}

static bool read_variant(struct parser *p, json_t *jv, const char *ptr, void *item)
{
	struct unleash_variant *v = item;
	const char *name, *stickiness;
	json_t *weight, *overrides;
	if (!opt_string(p, jv, "name", ptr, &name) ||
	    !opt_string(p, jv, "stickiness", ptr, &stickiness) ||
	    !opt_array(p, jv, "overrides", ptr, &overrides))
		return false;
	weight = json_object_get(jv, "weight");
	v->weight = json_is_number(weight) ? json_number_value(weight) : 0;
	if (!(v->name = dup_str(p, name)) ||
	    (stickiness && (!(v->stickiness = dup_str(p, stickiness)) ||
	                    !field_number(p, stickiness, &v->sticky_field))))
		return false;
	v->overrides = alloc_array(p, json_array_size(overrides), sizeof(*v->overrides));
	if (!v->overrides)
		return false;
	size_t k;
	json_t *jo;
	json_array_foreach(overrides, k, jo)
	{
		struct unleash_override *o = &v->overrides[v->noverrides++];
		json_t *vals = json_object_get(jo, "values");
		if (!(o->context =
		          dup_str(p, json_string_value(json_object_get(jo, "contextName")))) ||
		    !field_number(p, o->context, &o->field) ||
		    !raw_values(p, json_is_array(vals) ? vals : NULL, &o->values, &o->nvalues))
			return false;
	}
	json_t *payload = json_object_get(jv, "payload");
	const char *ptype = json_string_value(json_object_get(payload, "type"));
	json_t *pvalue = json_object_get(payload, "value");
	if (ptype &&
	    (!(v->payload_type = dup_str(p, ptype)) || !(v->payload_value = param_text(p, pvalue))))
		return false;
	return true;
}

static bool parse_variants(struct parser *p, json_t *list, const char *base,
                           struct unleash_variant **out, size_t *n)
{
	return parse_objects(p, list, base, sizeof(**out), "a variant must be an object",
	                     read_variant, (void **)out, n);
}

static void free_variants(struct unleash_variant *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].stickiness);
		free(v[i].payload_type);
		free(v[i].payload_value);
		for (size_t k = 0; k < v[i].noverrides; k++) {
			free(v[i].overrides[k].context);
			free_list(v[i].overrides[k].values, v[i].overrides[k].nvalues);
		}
		free(v[i].overrides);
	}
	free(v);
}

static json_t *segment_by_id(json_t *segments, json_t *id, size_t *index)
{
	size_t i;
	json_t *seg;
	json_array_foreach(segments, i, seg)
	{
		json_t *sid = json_object_get(seg, "id");
		if (json_is_integer(sid) && json_is_integer(id) &&
		    json_integer_value(sid) == json_integer_value(id)) {
			*index = i;
			return seg;
		}
	}
	return NULL;
}

/* The strategy's constraints, then those of the segments it references. */
static bool parse_constraints(struct parser *p, json_t *js, const char *ptr,
                              struct unleash_strategy *s)
{
	json_t *list, *refs;
	if (!opt_array(p, js, "constraints", ptr, &list) ||
	    !opt_array(p, js, "segments", ptr, &refs))
		return false;
	size_t total = json_array_size(list), i, k;
	json_t *ref, *seg, *c;
	json_array_foreach(refs, i, ref)
	{
		size_t at;
		seg = segment_by_id(p->segments, ref, &at);
		json_t *sc = json_object_get(seg, "constraints");
		if (!seg || (sc && !json_is_array(sc)))
			s->segment_missing = true;
		else
			total += json_array_size(sc);
	}
	if (!(s->constraints = alloc_array(p, total, sizeof(*s->constraints))))
		return false;
	json_array_foreach(list, i, c)
	{
		char full[600];
		FMT(full, "%s/constraints/%zu", ptr, i);
		if (!parse_constraint(p, c, full, &s->constraints[s->nconstraints++]))
			return false;
	}
	json_array_foreach(refs, i, ref)
	{
		size_t at;
		seg = segment_by_id(p->segments, ref, &at);
		json_array_foreach(json_object_get(seg, "constraints"), k, c)
		{
			char full[600];
			FMT(full, "/segments/%zu/constraints/%zu", at, k);
			if (!parse_constraint(p, c, full, &s->constraints[s->nconstraints++]))
				return false;
		}
	}
	return true;
}

static bool parse_strategy(struct parser *p, json_t *js, const char *ptr, const char *feature,
                           struct unleash_strategy *s)
{
	if (!json_is_object(js))
		return fail(p, ptr, "a strategy must be an object");
	const char *name;
	json_t *params, *variants;
	if (!opt_string(p, js, "name", ptr, &name) ||
	    !opt_type(p, js, "parameters", ptr, JSON_OBJECT, "an object", &params) ||
	    !opt_array(p, js, "variants", ptr, &variants))
		return false;
	if (!(s->name = dup_str(p, name)) || !parse_params(p, params, s) ||
	    !parse_constraints(p, js, ptr, s))
		return false;
	char vptr[512];
	child_ptr(vptr, sizeof(vptr), ptr, "variants", 0);
	return parse_variants(p, variants, vptr, &s->variants, &s->nvariants) &&
	       prepare_strategy(p, s, feature);
}

static void free_strategy(struct unleash_strategy *s)
{
	free(s->name);
	free_list(s->param_keys, s->nparams);
	free_list(s->param_values, s->nparams);
	for (size_t i = 0; i < s->nconstraints; i++)
		free_constraint(&s->constraints[i]);
	free(s->constraints);
	free(s->group_id);
	free(s->stickiness);
	free_list(s->ids, s->nids);
	free(s->cidrs);
	free_variants(s->variants, s->nvariants);
}

/* ---- features ---- */

static bool read_dependency(struct parser *p, json_t *jd, const char *ptr, void *item)
{
	struct unleash_dependency *d = item;
	const char *feature;
	json_t *variants;
	if (!opt_string(p, jd, "feature", ptr, &feature) ||
	    !opt_bool(p, jd, "enabled", ptr, true, &d->enabled) ||
	    !opt_array(p, jd, "variants", ptr, &variants))
		return false;
	if (!feature)
		return fail(p, ptr, "a dependency must name its parent \"feature\"");
	return (d->feature = dup_str(p, feature)) &&
	       clean_values(p, variants, false, &d->variants, &d->nvariants);
}

static bool parse_dependencies(struct parser *p, json_t *list, const char *base,
                               struct unleash_feature *t)
{
	return parse_objects(p, list, base, sizeof(*t->deps), "a dependency must be an object",
	                     read_dependency, (void **)&t->deps, &t->ndeps);
}

static bool parse_feature(struct parser *p, json_t *jt, const char *ptr, struct unleash_feature *t)
{
	const char *name;
	json_t *strategies, *variants, *deps;
	if (!opt_string(p, jt, "name", ptr, &name) ||
	    !opt_bool(p, jt, "enabled", ptr, false, &t->enabled) ||
	    !opt_array(p, jt, "variants", ptr, &variants) ||
	    !opt_array(p, jt, "dependencies", ptr, &deps))
		return false;
	/* Unleash always names a feature; without one it could be neither
	 * asked for by name nor told apart from another. */
	if (!name)
		return fail(p, ptr, "a feature must have a \"name\"");
	if (!(t->name = dup_str(p, name)))
		return false;
	/* The SDKs: a feature whose strategies are not a list is off. */
	strategies = json_object_get(jt, "strategies");
	if (!json_is_array(strategies)) {
		strategies = NULL;
		t->enabled = false;
	}
	if (!(t->strategies = alloc_array(p, json_array_size(strategies), sizeof(*t->strategies))))
		return false;
	size_t i;
	json_t *js;
	json_array_foreach(strategies, i, js)
	{
		char sptr[512];
		FMT(sptr, "%s/strategies/%zu", ptr, i);
		if (!parse_strategy(p, js, sptr, t->name, &t->strategies[t->nstrategies++]))
			return false;
	}
	char vptr[512], dptr[512];
	FMT(vptr, "%s/variants", ptr);
	FMT(dptr, "%s/dependencies", ptr);
	return parse_variants(p, variants, vptr, &t->variants, &t->nvariants) &&
	       parse_dependencies(p, deps, dptr, t);
}

static void free_feature(struct unleash_feature *t)
{
	free(t->name);
	for (size_t i = 0; i < t->nstrategies; i++)
		free_strategy(&t->strategies[i]);
	free(t->strategies);
	free_variants(t->variants, t->nvariants);
	for (size_t i = 0; i < t->ndeps; i++) {
		free(t->deps[i].feature);
		free_list(t->deps[i].variants, t->deps[i].nvariants);
	}
	free(t->deps);
}

static json_t *feature_named(json_t *features, const char *name, size_t *index)
{
	size_t i;
	json_t *jt;
	json_array_foreach(features, i, jt)
	{
		const char *n = json_string_value(json_object_get(jt, "name"));
		if (n && strcmp(n, name) == 0) {
			*index = i;
			return jt;
		}
	}
	return NULL;
}

static bool keep_feature(struct parser *p, json_t *features, size_t index)
{
	struct unleash_features *f = p->f;
	json_t *jt = json_array_get(features, index);
	char ptr[64];
	FMT(ptr, "/features/%zu", index);
	if (!json_is_object(jt))
		return fail(p, ptr, "a feature must be an object");
	const char *name = json_string_value(json_object_get(jt, "name"));
	for (size_t i = 0; i < f->nfeatures; i++)
		if (name && strcmp(f->features[i].name, name) == 0)
			return true; /* a parent of several, kept once */
	return parse_feature(p, jt, ptr, &f->features[f->nfeatures++]);
}

const struct unleash_feature *unleash_features_find(const struct unleash_features *f,
                                                    const char *name)
{
	for (size_t i = 0; f && i < f->nfeatures; i++)
		if (strcmp(f->features[i].name, name) == 0)
			return &f->features[i];
	return NULL;
}

/* Parents are looked up once: the evaluation follows pointers. With a
 * feature named, only its own parents count as missing: a parent's parents
 * are never followed (they make the child off). */
static void link_parents(struct unleash_features *f, bool named)
{
	for (size_t i = 0; i < f->nfeatures; i++) {
		struct unleash_feature *t = &f->features[i];
		for (size_t k = 0; k < t->ndeps; k++) {
			t->deps[k].parent = unleash_features_find(f, t->deps[k].feature);
			if (!t->deps[k].parent && (!named || i == 0))
				f->missing_parent = true;
		}
	}
}

static bool keep(struct parser *p, json_t *features, const char *name)
{
	size_t n = json_array_size(features);
	if (!(p->f->features = alloc_array(p, n, sizeof(*p->f->features))))
		return false;
	if (!name) {
		for (size_t i = 0; i < n; i++)
			if (!keep_feature(p, features, i))
				return false;
		return true;
	}
	size_t at;
	json_t *jt = feature_named(features, name, &at);
	if (!jt)
		return true;
	if (!keep_feature(p, features, at))
		return false;
	/* The parents, evaluated with the child's context; theirs are not
	 * followed (a parent with parents makes the child off). */
	const struct unleash_feature *t = &p->f->features[0];
	for (size_t k = 0; k < t->ndeps; k++) {
		size_t pat;
		if (feature_named(features, t->deps[k].feature, &pat) &&
		    !keep_feature(p, features, pat))
			return false;
	}
	return true;
}

struct unleash_features *unleash_features_parse(const char *body, size_t len, const char *name,
                                                char *err, size_t errlen)
{
	struct unleash_features *f = calloc(1, sizeof(*f));
	if (!f) {
		snprintf(err, errlen, "client API answer: out of memory");
		return NULL;
	}
	atomic_init(&f->refs, 1);
	struct parser p = {.f = f, .err = err, .errlen = errlen};
	char jerr[256];
	json_t *doc = jsontext_parse(body, len, jerr, sizeof(jerr));
	json_t *features = json_object_get(doc, "features");
	json_t *segments;
	if (!number_known(&p)) {
		/* out of memory, said */
	} else if (!doc) {
		snprintf(err, errlen, "client API answer is not JSON: %s", jerr);
		p.failed = true;
	} else if (!json_is_object(doc)) {
		fail(&p, "", "must be an object with a \"features\" array");
	} else if (!json_is_array(features)) {
		fail(&p, "/features", "must be an array");
	} else if (opt_array(&p, doc, "segments", "", &segments)) {
		p.segments = segments;
		if (keep(&p, features, name))
			link_parents(f, name != NULL);
	}
	json_decref(doc);
	if (p.failed) {
		unleash_features_unref(f);
		return NULL;
	}
	return f;
}

struct unleash_features *unleash_features_ref(struct unleash_features *f)
{
	if (f)
		atomic_fetch_add(&f->refs, 1);
	return f;
}

void unleash_features_unref(struct unleash_features *f)
{
	if (!f || atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	for (size_t i = 0; i < f->nfeatures; i++)
		free_feature(&f->features[i]);
	free(f->features);
	free_list(f->problems, f->nproblems);
	free_list(f->fields, f->nfields);
	free(f);
}

double unleash_features_rollout(const struct unleash_features *f, const char *name)
{
	const struct unleash_feature *t = unleash_features_find(f, name);
	if (!t)
		return -1;
	if (!t->enabled)
		return 0;
	if (t->nstrategies != 1 || strcmp(t->strategies[0].name, "flexibleRollout") != 0 ||
	    !t->strategies[0].has_rollout)
		return -1;
	double pct = t->strategies[0].rollout;
	return pct >= 0 && pct <= 100 ? pct : -1;
}
