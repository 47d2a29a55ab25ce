/* jsonschema_validate: an instance checked against a compiled schema. It
 * only reads the tree, so concurrent validations share nothing mutable;
 * every problem is reported with the JSON pointer of the value and the rule
 * broken. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema_tree.h"

/* Nested schema applications allowed in one validation. Instances parsed by
 * jansson are at most 2048 deep; recursive schemas apply about two nodes per
 * level. The bound keeps a hostile instance or schema from exhausting the
 * stack. */
#define JS_MAX_DEPTH 5000

static size_t utf8_length(const char *s, size_t bytes)
{
	size_t n = 0;
	for (size_t i = 0; i < bytes; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

static const char *plural(json_int_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

static const char *type_name(const json_t *x)
{
	switch (json_typeof(x)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return js_is_integral(x) ? "integer" : "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

struct vctx {
	struct buf ptr; /* JSON pointer of the instance value being checked */
	pcre2_match_data *match;
	js_report_fn report;
	void *ud;
	int problems;
	unsigned depth;
};

__attribute__((format(printf, 2, 3))) static void fail(struct vctx *v, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->problems++;
	if (v->report)
		v->report(v->ud, buf_str(&v->ptr), msg);
}

static void validate(struct vctx *v, const struct js_node *n, const json_t *x);

static void validate_at(struct vctx *v, const struct js_node *n, const json_t *x, const char *token)
{
	size_t mark = v->ptr.len;
	buf_pointer_token(&v->ptr, token);
	validate(v, n, x);
	buf_truncate(&v->ptr, mark);
}

static void validate_index(struct vctx *v, const struct js_node *n, const json_t *x, size_t i)
{
	size_t mark = v->ptr.len;
	buf_printf(&v->ptr, "/%zu", i);
	validate(v, n, x);
	buf_truncate(&v->ptr, mark);
}

static bool type_matches(unsigned types, const json_t *x)
{
	switch (json_typeof(x)) {
	case JSON_OBJECT:
		return types & JS_OBJECT;
	case JSON_ARRAY:
		return types & JS_ARRAY;
	case JSON_STRING:
		return types & JS_STRING;
	case JSON_INTEGER:
	case JSON_REAL:
		return (types & JS_NUMBER) || ((types & JS_INTEGER) && js_is_integral(x));
	case JSON_TRUE:
	case JSON_FALSE:
		return types & JS_BOOLEAN;
	default:
		return types & JS_NULL;
	}
}

static void check_type(struct vctx *v, unsigned types, const json_t *x)
{
	if (type_matches(types, x))
		return;
	char expected[128] = "";
	size_t count = 0, total = 0;
	for (size_t k = 0; k < JS_N_TYPES; k++)
		total += (types & js_type_names[k].bit) != 0;
	for (size_t k = 0; k < JS_N_TYPES; k++) {
		if (!(types & js_type_names[k].bit))
			continue;
		count++;
		size_t used = strlen(expected);
		snprintf(expected + used, sizeof(expected) - used, "%s%s",
		         count == 1       ? ""
		         : count == total ? " or "
		                          : ", ",
		         js_type_names[k].name);
	}
	fail(v, "expected %s, got %s", expected, type_name(x));
}

static void check_number(struct vctx *v, const struct js_node *n, const json_t *x)
{
	char a[64], b[64];
	js_fmt_number(x, a, sizeof(a));
	if (n->maximum && js_num_cmp(x, n->maximum) > 0) {
		js_fmt_number(n->maximum, b, sizeof(b));
		fail(v, "%s is greater than the maximum %s", a, b);
	}
	if (n->minimum && js_num_cmp(x, n->minimum) < 0) {
		js_fmt_number(n->minimum, b, sizeof(b));
		fail(v, "%s is less than the minimum %s", a, b);
	}
	if (n->exclusive_maximum && js_num_cmp(x, n->exclusive_maximum) >= 0) {
		js_fmt_number(n->exclusive_maximum, b, sizeof(b));
		fail(v, "%s is not less than the exclusive maximum %s", a, b);
	}
	if (n->exclusive_minimum && js_num_cmp(x, n->exclusive_minimum) <= 0) {
		js_fmt_number(n->exclusive_minimum, b, sizeof(b));
		fail(v, "%s is not greater than the exclusive minimum %s", a, b);
	}
}

/* True on a match; a matching error (e.g. a resource limit) is reported. */
static bool pattern_matches(struct vctx *v, const struct js_pattern *p, const char *s, size_t len)
{
	int rc = pcre2_match(p->code, (PCRE2_SPTR)s, len, 0, 0, v->match, NULL);
	if (rc >= 0)
		return true;
	if (rc != PCRE2_ERROR_NOMATCH) {
		PCRE2_UCHAR text[256];
		pcre2_get_error_message(rc, text, sizeof(text));
		fail(v, "pattern %s could not be matched: %s", p->source, (const char *)text);
	}
	return false;
}

/* A bound on a size: a string's characters, an array's items, an object's
 * properties ("array has 3 items, more than the maximum 2"); -1: none. */
static void check_size(struct vctx *v, json_int_t size, json_int_t max, json_int_t min,
                       const char *what, const char *one, const char *many)
{
	if (max >= 0 && size > max)
		fail(v,
		     "%s has %" JSON_INTEGER_FORMAT
		     " %s, more than the maximum %" JSON_INTEGER_FORMAT,
		     what, size, plural(size, one, many), max);
	if (min >= 0 && size < min)
		fail(v,
		     "%s has %" JSON_INTEGER_FORMAT
		     " %s, fewer than the minimum %" JSON_INTEGER_FORMAT,
		     what, size, plural(size, one, many), min);
}

static void check_string(struct vctx *v, const struct js_node *n, const json_t *x)
{
	const char *s = json_string_value(x);
	size_t bytes = json_string_length(x);
	if (n->max_length >= 0 || n->min_length >= 0)
		check_size(v, (json_int_t)utf8_length(s, bytes), n->max_length, n->min_length,
		           "string", "character", "characters");
	if (n->pattern.code && !pattern_matches(v, &n->pattern, s, bytes)) {
		char q[256];
		js_fmt_value(x, q, sizeof(q));
		fail(v, "%s does not match %s", q, n->pattern.source);
	}
}

static void check_array(struct vctx *v, const struct js_node *n, const json_t *x)
{
	json_int_t size = (json_int_t)json_array_size(x);
	check_size(v, size, n->max_items, n->min_items, "array", "item", "items");
	if (n->unique_items) {
		for (size_t j = 1; j < (size_t)size; j++) {
			for (size_t i = 0; i < j; i++) {
				if (js_equal(json_array_get(x, i), json_array_get(x, j))) {
					fail(v, "items %zu and %zu are equal (uniqueItems)", i, j);
					break;
				}
			}
		}
	}
	size_t i = 0;
	for (; i < n->prefix_items.n && i < (size_t)size; i++)
		validate_index(v, n->prefix_items.v[i], json_array_get(x, i), i);
	if (!n->items)
		return;
	for (; i < (size_t)size; i++) {
		if (n->items->kind == JS_FALSE)
			fail(v, "item %zu is not allowed (at most %zu %s)", i, n->prefix_items.n,
			     plural((json_int_t)n->prefix_items.n, "item", "items"));
		else
			validate_index(v, n->items, json_array_get(x, i), i);
	}
}

static bool matches_pattern_property(struct vctx *v, const struct js_node *n, const char *key,
                                     const json_t *value)
{
	bool matched = false;
	for (size_t i = 0; i < n->pattern_properties.n; i++) {
		const struct js_pattern *p = &n->pattern_properties.v[i];
		if (pattern_matches(v, p, key, strlen(key))) {
			matched = true;
			validate_at(v, p->node, value, key);
		}
	}
	return matched;
}

static void check_object(struct vctx *v, const struct js_node *n, const json_t *x)
{
	json_int_t size = (json_int_t)json_object_size(x);
	check_size(v, size, n->max_properties, n->min_properties, "object", "property",
	           "properties");
	for (size_t i = 0; n->required && i < json_array_size(n->required); i++) {
		const char *name = json_string_value(json_array_get(n->required, i));
		if (!json_object_get(x, name)) {
			char q[256];
			js_fmt_value(json_array_get(n->required, i), q, sizeof(q));
			fail(v, "missing required property %s", q);
		}
	}
	for (size_t i = 0; i < n->properties.n; i++) {
		const json_t *value = json_object_get(x, n->properties.v[i].name);
		if (value)
			validate_at(v, n->properties.v[i].node, value, n->properties.v[i].name);
	}
	if (n->pattern_properties.n == 0 && !n->additional_properties)
		return;
	const char *key;
	json_t *value;
	json_object_foreach((json_t *)x, key, value)
	{
		bool matched = matches_pattern_property(v, n, key, value);
		if (matched || !n->additional_properties ||
		    (n->properties_json && json_object_get(n->properties_json, key)))
			continue;
		if (n->additional_properties->kind == JS_FALSE) {
			json_t *name = json_string(key);
			char q[256] = "";
			if (name)
				js_fmt_value(name, q, sizeof(q));
			json_decref(name);
			fail(v, "property %s is not allowed", q);
		} else {
			validate_at(v, n->additional_properties, value, key);
		}
	}
}

/* Collects a branch's problems quietly, keeping the first for a summary. */
struct capture {
	int count;
	char *first; /* "pointer: message", malloc'd */
};

static void capture_report(void *ud, const char *pointer, const char *message)
{
	struct capture *cap = ud;
	if (cap->count++ > 0)
		return;
	size_t len = strlen(pointer) + strlen(message) + 16;
	cap->first = malloc(len);
	if (cap->first)
		snprintf(cap->first, len, "%s: %s", pointer[0] ? pointer : "(root)", message);
}

/* Validates x against one branch without reporting; returns its problems.
 * The caller frees cap->first. */
static int try_branch(struct vctx *v, const struct js_node *n, const json_t *x, struct capture *cap)
{
	js_report_fn report = v->report;
	void *ud = v->ud;
	int problems = v->problems;
	cap->count = 0;
	cap->first = NULL;
	v->report = capture_report;
	v->ud = cap;
	validate(v, n, x);
	int found = v->problems - problems;
	v->report = report;
	v->ud = ud;
	v->problems = problems;
	return found;
}

static void check_any_of(struct vctx *v, const struct js_list *l, const json_t *x)
{
	struct capture cap, best = {0};
	size_t best_index = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (try_branch(v, l->v[i], x, &cap) == 0) {
			free(cap.first);
			free(best.first);
			return;
		}
		if (i == 0 || cap.count < best.count) {
			free(best.first);
			best = cap;
			best_index = i;
		} else {
			free(cap.first);
		}
	}
	const char *first = best.first ? best.first : "?";
	if (best.count == 1)
		fail(v, "does not match any of the %zu schemas in anyOf (closest is #%zu: %s)",
		     l->n, best_index, first);
	else
		fail(v,
		     "does not match any of the %zu schemas in anyOf (closest is #%zu with %d "
		     "problems, first %s)",
		     l->n, best_index, best.count, first);
	free(best.first);
}

static void check_one_of(struct vctx *v, const struct js_list *l, const json_t *x)
{
	struct capture cap;
	size_t matched = 0, first = 0, second = 0;
	for (size_t i = 0; i < l->n; i++) {
		int found = try_branch(v, l->v[i], x, &cap);
		free(cap.first);
		if (found != 0)
			continue;
		if (matched == 0)
			first = i;
		else if (matched == 1)
			second = i;
		matched++;
	}
	if (matched == 0)
		fail(v, "does not match any of the %zu schemas in oneOf", l->n);
	else if (matched > 1)
		fail(
		    v,
		    "matches %zu of the %zu schemas in oneOf (#%zu and #%zu), expected exactly one",
		    matched, l->n, first, second);
}

static void validate(struct vctx *v, const struct js_node *n, const json_t *x)
{
	if (!n)
		return; /* only after a compile error, which refused the schema */
	if (n->kind == JS_TRUE)
		return;
	if (n->kind == JS_FALSE) {
		fail(v, "no value is allowed here (false schema)");
		return;
	}
	if (v->depth >= JS_MAX_DEPTH) {
		fail(v, "schemas nest deeper than %d levels here", JS_MAX_DEPTH);
		return;
	}
	v->depth++;
	if (n->ref && !n->ref_target)
		fail(v, "$ref \"%s\" does not resolve to a known schema", n->ref);
	else if (n->ref_target)
		validate(v, n->ref_target, x);
	if (n->types)
		check_type(v, n->types, x);
	if (n->const_value && !js_equal(n->const_value, x)) {
		char a[256], b[256];
		js_fmt_value(x, a, sizeof(a));
		js_fmt_value(n->const_value, b, sizeof(b));
		fail(v, "%s is not the constant %s", a, b);
	}
	if (n->enum_values) {
		bool found = false;
		for (size_t i = 0; !found && i < json_array_size(n->enum_values); i++)
			found = js_equal(json_array_get(n->enum_values, i), x);
		if (!found) {
			char a[256], b[256];
			js_fmt_value(x, a, sizeof(a));
			js_fmt_value(n->enum_values, b, sizeof(b));
			fail(v, "%s is not one of %s", a, b);
		}
	}
	if (json_is_number(x))
		check_number(v, n, x);
	else if (json_is_string(x))
		check_string(v, n, x);
	else if (json_is_array(x))
		check_array(v, n, x);
	else if (json_is_object(x))
		check_object(v, n, x);
	for (size_t i = 0; i < n->all_of.n; i++)
		validate(v, n->all_of.v[i], x);
	if (n->any_of.n > 0)
		check_any_of(v, &n->any_of, x);
	if (n->one_of.n > 0)
		check_one_of(v, &n->one_of, x);
	if (n->not_schema) {
		struct capture cap;
		int found = try_branch(v, n->not_schema, x, &cap);
		free(cap.first);
		if (found == 0)
			fail(v, "must not match the schema in \"not\"");
	}
	v->depth--;
}

int js_run(const struct js_node *root, const json_t *instance, js_report_fn report, void *ud)
{
	struct vctx v = {.report = report, .ud = ud};
	v.match = pcre2_match_data_create(1, NULL);
	if (!v.match) {
		fail(&v, "out of memory");
		return v.problems;
	}
	validate(&v, root, instance);
	if (v.ptr.oom)
		fail(&v, "out of memory while validating");
	pcre2_match_data_free(v.match);
	buf_free(&v.ptr);
	return v.problems;
}
