/* jsonschema: JSON Schema 2020-12 validation.
 *
 * A schema is compiled once into a tree of nodes when it is added: every
 * keyword is checked, every pattern compiled. Validation then only reads the
 * nodes, so concurrent js_validate calls share nothing mutable. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "jsonschema.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "uri.h"

#define JS_META_SCHEMA "https://json-schema.org/draft/2020-12/schema"

/* Nested schema applications allowed in one validation. Instances parsed by
 * jansson are at most 2048 deep; recursive schemas apply about two nodes per
 * level. The bound keeps a hostile instance or schema from exhausting the
 * stack. */
#define JS_MAX_DEPTH 5000

/* How much of a value a message quotes before cutting it with "...". */
#define JS_QUOTE_CHARS 40

enum js_type {
	JS_NULL = 1 << 0,
	JS_BOOLEAN = 1 << 1,
	JS_OBJECT = 1 << 2,
	JS_ARRAY = 1 << 3,
	JS_NUMBER = 1 << 4,
	JS_STRING = 1 << 5,
	JS_INTEGER = 1 << 6,
};

static const struct {
	const char *name;
	unsigned bit;
} js_type_names[] = {
    {"null", JS_NULL},     {"boolean", JS_BOOLEAN}, {"object", JS_OBJECT},   {"array", JS_ARRAY},
    {"number", JS_NUMBER}, {"string", JS_STRING},   {"integer", JS_INTEGER},
};

enum js_kind { JS_SCHEMA, JS_TRUE, JS_FALSE };

struct js_doc;

struct js_list {
	struct js_node **v;
	size_t n;
};

struct js_named {
	const char *name; /* borrowed from the schema's JSON */
	struct js_node *node;
};

struct js_pattern {
	const char *source; /* borrowed from the schema's JSON */
	pcre2_code *code;
	struct js_node *node;
};

struct js_node {
	struct js_doc *doc;
	char *where;              /* JSON pointer into the document */
	const char *base;         /* URI of the enclosing resource, owned by the doc */
	struct js_node *resource; /* root of the enclosing resource */
	enum js_kind kind;

	unsigned types; /* 0: no "type" keyword */
	const json_t *const_value, *enum_values;
	const json_t *maximum, *minimum, *exclusive_maximum, *exclusive_minimum;
	json_int_t max_length, min_length, max_items, min_items, max_properties, min_properties;
	struct js_pattern pattern;
	const json_t *required;
	bool unique_items;

	const json_t *properties_json;
	struct js_named *properties;
	size_t n_properties;
	struct js_pattern *pattern_properties;
	size_t n_pattern_properties;
	struct js_named *defs;
	size_t n_defs;
	struct js_node *additional_properties, *items, *not_schema;
	struct js_list prefix_items, all_of, any_of, one_of;

	const char *ref;   /* as written, for messages */
	char *ref_uri;     /* absolute URI without fragment */
	char *ref_pointer; /* decoded fragment: a JSON pointer */
	struct js_node *ref_target;

	int mark; /* scratch for the cycle check, used only while adding */
};

struct js_resource {
	char *uri;
	struct js_node *root;
};

struct js_doc {
	json_t *schema; /* owned reference, or NULL when the schema is borrowed */
	char *origin;
	struct js_node **nodes; /* owns every node of the document */
	size_t n_nodes, cap_nodes;
	struct js_resource *resources;
	size_t n_resources, cap_resources;
};

struct js_registry {
	struct js_doc **docs;
	size_t n_docs, cap_docs;
};

/* ---- small helpers ---- */

static bool grow(void **v, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return true;
	size_t cap2 = *cap ? *cap * 2 : 8;
	while (cap2 < need)
		cap2 *= 2;
	void *v2 = realloc(*v, cap2 * size);
	if (!v2)
		return false;
	*v = v2;
	*cap = cap2;
	return true;
}

static size_t utf8_length(const char *s, size_t bytes)
{
	size_t n = 0;
	for (size_t i = 0; i < bytes; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

/* Byte offset of the first `chars` code points of s. */
static size_t utf8_prefix(const char *s, size_t bytes, size_t chars)
{
	size_t i = 0, n = 0;
	while (i < bytes) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (n == chars)
				break;
			n++;
		}
		i++;
	}
	return i;
}

static const char *plural(json_int_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* ---- numbers and JSON equality ---- */

static bool is_integral(const json_t *x)
{
	if (json_is_integer(x))
		return true;
	if (!json_is_real(x))
		return false;
	double d = json_real_value(x);
	return isfinite(d) && d == trunc(d);
}

static int cmp_int_real(json_int_t i, double d)
{
	/* Exact: compare the integral parts as integers, then the fraction.
	 * Converting i to double would round above 2^53. */
	if (d >= 9223372036854775808.0)
		return -1;
	if (d < -9223372036854775808.0)
		return 1;
	double t = trunc(d);
	json_int_t ti = (json_int_t)t;
	if (i != ti)
		return i < ti ? -1 : 1;
	double frac = d - t;
	return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int num_cmp(const json_t *a, const json_t *b)
{
	if (json_is_integer(a) && json_is_integer(b)) {
		json_int_t x = json_integer_value(a), y = json_integer_value(b);
		return x < y ? -1 : x > y;
	}
	if (json_is_real(a) && json_is_real(b)) {
		double x = json_real_value(a), y = json_real_value(b);
		return x < y ? -1 : x > y;
	}
	if (json_is_integer(a))
		return cmp_int_real(json_integer_value(a), json_real_value(b));
	return -cmp_int_real(json_integer_value(b), json_real_value(a));
}

/* JSON equality as the specification defines it: 1 and 1.0 are equal,
 * which json_equal() does not consider. */
static bool js_equal(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return num_cmp(a, b) == 0;
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) ==
		           0;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!js_equal(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b))
			return false;
		const char *key;
		json_t *va;
		json_object_foreach((json_t *)a, key, va)
		{
			json_t *vb = json_object_get(b, key);
			if (!vb || !js_equal(va, vb))
				return false;
		}
		return true;
	}
	default:
		return true; /* null, true, false: same type is same value */
	}
}

/* ---- quoting values in messages ---- */

static void fmt_number(const json_t *x, char *buf, size_t len)
{
	if (json_is_integer(x)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(x));
		return;
	}
	/* The shortest form that reads back as the same double. */
	double d = json_real_value(x);
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return;
	}
}

/* Writes x as JSON on one line, cut after JS_QUOTE_CHARS code points. */
static void fmt_value(const json_t *x, char *buf, size_t len)
{
	if (json_is_number(x)) {
		fmt_number(x, buf, len);
		return;
	}
	const char *s;
	size_t n;
	char *dumped = NULL;
	json_t *cut = NULL;
	if (json_is_string(x)) {
		s = json_string_value(x);
		n = json_string_length(x);
		size_t keep = utf8_prefix(s, n, JS_QUOTE_CHARS);
		cut = json_stringn(s, keep);
		dumped = cut ? json_dumps(cut, JSON_ENCODE_ANY) : NULL;
		json_decref(cut);
		snprintf(buf, len, "%s%s", dumped ? dumped : "\"?\"", keep < n ? "..." : "");
		free(dumped);
		return;
	}
	dumped = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!dumped) {
		snprintf(buf, len, "(value)");
		return;
	}
	n = strlen(dumped);
	size_t keep = utf8_prefix(dumped, n, JS_QUOTE_CHARS);
	snprintf(buf, len, "%.*s%s", (int)keep, dumped, keep < n ? "..." : "");
	free(dumped);
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
		return is_integral(x) ? "integer" : "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	default:
		return "null";
	}
}

/* Decodes %XX escapes of a URI fragment; NULL on a malformed escape. */
static char *percent_decode(const char *s)
{
	size_t n = strlen(s), len;
	char *out = malloc(n + 1);
	if (out && !uri_decode(s, n, out, n + 1, &len)) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- compiling schemas ---- */

struct cctx {
	struct js_doc *doc;
	struct buf where;
	const char *base;
	struct js_node *resource;
	js_report_fn report;
	void *ud;
	int problems;
};

__attribute__((format(printf, 2, 3))) static void schema_error(struct cctx *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->doc->origin && c->doc->origin[0]) {
		size_t used = strlen(msg);
		snprintf(msg + used, sizeof(msg) - used, " in %s", c->doc->origin);
	}
	c->problems++;
	if (c->report)
		c->report(c->ud, buf_str(&c->where), msg);
}

static void node_free(struct js_node *n)
{
	if (!n)
		return;
	free(n->where);
	pcre2_code_free(n->pattern.code);
	for (size_t i = 0; i < n->n_pattern_properties; i++)
		pcre2_code_free(n->pattern_properties[i].code);
	free(n->pattern_properties);
	free(n->properties);
	free(n->defs);
	free(n->prefix_items.v);
	free(n->all_of.v);
	free(n->any_of.v);
	free(n->one_of.v);
	free(n->ref_uri);
	free(n->ref_pointer);
	free(n);
}

static void doc_free(struct js_doc *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n_nodes; i++)
		node_free(d->nodes[i]);
	free(d->nodes);
	for (size_t i = 0; i < d->n_resources; i++)
		free(d->resources[i].uri);
	free(d->resources);
	free(d->origin);
	json_decref(d->schema);
	free(d);
}

static struct js_node *compile(struct cctx *c, const json_t *json);

static struct js_node *compile_child(struct cctx *c, const json_t *json, const char *token)
{
	size_t mark = c->where.len;
	buf_pointer_token(&c->where, token);
	struct js_node *n = compile(c, json);
	buf_truncate(&c->where, mark);
	return n;
}

/* ECMA-262 names Unicode general categories by their long aliases
 * (\p{Letter}); PCRE2 knows them by the short ones. */
static const char *const js_categories[][2] = {
    {"Other", "C"},
    {"Control", "Cc"},
    {"cntrl", "Cc"},
    {"Format", "Cf"},
    {"Unassigned", "Cn"},
    {"Private_Use", "Co"},
    {"Surrogate", "Cs"},
    {"Letter", "L"},
    {"Cased_Letter", "L&"},
    {"Lowercase_Letter", "Ll"},
    {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"},
    {"Titlecase_Letter", "Lt"},
    {"Uppercase_Letter", "Lu"},
    {"Mark", "M"},
    {"Combining_Mark", "M"},
    {"Spacing_Mark", "Mc"},
    {"Enclosing_Mark", "Me"},
    {"Nonspacing_Mark", "Mn"},
    {"Number", "N"},
    {"Decimal_Number", "Nd"},
    {"digit", "Nd"},
    {"Letter_Number", "Nl"},
    {"Other_Number", "No"},
    {"Punctuation", "P"},
    {"punct", "P"},
    {"Connector_Punctuation", "Pc"},
    {"Dash_Punctuation", "Pd"},
    {"Close_Punctuation", "Pe"},
    {"Final_Punctuation", "Pf"},
    {"Initial_Punctuation", "Pi"},
    {"Other_Punctuation", "Po"},
    {"Open_Punctuation", "Ps"},
    {"Symbol", "S"},
    {"Currency_Symbol", "Sc"},
    {"Modifier_Symbol", "Sk"},
    {"Math_Symbol", "Sm"},
    {"Other_Symbol", "So"},
    {"Separator", "Z"},
    {"Line_Separator", "Zl"},
    {"Paragraph_Separator", "Zp"},
    {"Space_Separator", "Zs"},
    {"LC", "L&"},
};

/* Writes the PCRE2 spelling of the ECMA-262 property name (len bytes). */
static void ecma_property(struct buf *out, const char *name, size_t len)
{
	static const char *const prefixes[][2] = {
	    {"General_Category=", ""},      {"gc=", ""},      {"Script=", "sc:"}, {"sc=", "sc:"},
	    {"Script_Extensions=", "scx:"}, {"scx=", "scx:"},
	};
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i][0]);
		if (len > pl && strncmp(name, prefixes[i][0], pl) == 0) {
			buf_put(out, prefixes[i][1], strlen(prefixes[i][1]));
			name += pl;
			len -= pl;
			break;
		}
	}
	for (size_t i = 0; i < sizeof(js_categories) / sizeof(js_categories[0]); i++) {
		if (strlen(js_categories[i][0]) == len &&
		    strncmp(name, js_categories[i][0], len) == 0) {
			buf_put(out, js_categories[i][1], strlen(js_categories[i][1]));
			return;
		}
	}
	buf_put(out, name, len);
}

/* Rewrites \p{...} and \P{...} of an ECMA-262 pattern for PCRE2; the rest of
 * the syntax PCRE2 reads the same way (with the options compile_pattern
 * sets). Returns a malloc'd string or NULL. */
static char *ecma_to_pcre2(const char *source)
{
	struct buf out = {0};
	for (const char *p = source; *p; p++) {
		if (*p != '\\' || !p[1]) {
			buf_put(&out, p, 1);
			continue;
		}
		const char *close = strchr(p + 2, '}');
		if ((p[1] == 'p' || p[1] == 'P') && p[2] == '{' && close) {
			buf_put(&out, p, 3);
			ecma_property(&out, p + 3, (size_t)(close - p - 3));
			buf_put(&out, "}", 1);
			p = close;
		} else {
			buf_put(&out, p, 2);
			p++;
		}
	}
	return buf_take(&out);
}

static bool compile_pattern(struct cctx *c, const char *source, pcre2_code **code)
{
	int err = 0;
	PCRE2_SIZE offset = 0;
	char *translated = ecma_to_pcre2(source);
	pcre2_compile_context *ctx = pcre2_compile_context_create(NULL);
	if (!translated || !ctx) {
		free(translated);
		pcre2_compile_context_free(ctx);
		schema_error(c, "out of memory");
		return false;
	}
	/* ECMA-262 semantics: "$" only at the very end; \uXXXX and \u{X...}
	 * escapes. */
	pcre2_set_compile_extra_options(ctx, PCRE2_EXTRA_ALT_BSUX);
	*code =
	    pcre2_compile((PCRE2_SPTR)translated, PCRE2_ZERO_TERMINATED,
	                  PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX, &err, &offset, ctx);
	free(translated);
	pcre2_compile_context_free(ctx);
	if (!*code) {
		PCRE2_UCHAR text[256];
		pcre2_get_error_message(err, text, sizeof(text));
		schema_error(c, "pattern %s does not compile: %s at offset %zu", source,
		             (const char *)text, (size_t)offset);
		return false;
	}
	return true;
}

static bool get_count(struct cctx *c, const json_t *v, const char *kw, json_int_t *out)
{
	if (is_integral(v)) {
		if (json_is_integer(v) && json_integer_value(v) >= 0) {
			*out = json_integer_value(v);
			return true;
		}
		if (json_is_real(v) && json_real_value(v) >= 0) {
			double d = json_real_value(v);
			*out = d >= 9.2e18 ? (json_int_t)9.2e18 : (json_int_t)d;
			return true;
		}
	}
	schema_error(c, "%s must be a non-negative integer", kw);
	return false;
}

static bool compile_list(struct cctx *c, const json_t *v, const char *kw, struct js_list *out)
{
	if (!json_is_array(v) || json_array_size(v) == 0) {
		schema_error(c, "%s must be a non-empty array of schemas", kw);
		return false;
	}
	out->v = calloc(json_array_size(v), sizeof(*out->v));
	if (!out->v) {
		schema_error(c, "out of memory");
		return false;
	}
	out->n = json_array_size(v);
	for (size_t i = 0; i < out->n; i++) {
		size_t mark = c->where.len;
		buf_printf(&c->where, "/%zu", i);
		out->v[i] = compile(c, json_array_get(v, i));
		buf_truncate(&c->where, mark);
	}
	return true;
}

static bool compile_named(struct cctx *c, const json_t *v, const char *kw, struct js_named **out,
                          size_t *n)
{
	if (!json_is_object(v)) {
		schema_error(c, "%s must be an object of schemas", kw);
		return false;
	}
	*out = calloc(json_object_size(v) + 1, sizeof(**out));
	if (!*out) {
		schema_error(c, "out of memory");
		return false;
	}
	const char *key;
	json_t *sub;
	json_object_foreach((json_t *)v, key, sub)
	{
		(*out)[*n].name = key;
		(*out)[*n].node = compile_child(c, sub, key);
		(*n)++;
	}
	return true;
}

/* One handler per keyword; `c->where` already points at the keyword. */
typedef void (*kw_fn)(struct cctx *c, struct js_node *n, const json_t *v, const char *kw);

static void kw_annotation_string(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	(void)n;
	if (!json_is_string(v))
		schema_error(c, "%s must be a string", kw);
}

static void kw_examples(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	(void)n;
	if (!json_is_array(v))
		schema_error(c, "%s must be an array", kw);
}

static void kw_schema(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	(void)n;
	(void)kw;
	const char *s = json_string_value(v);
	if (!s || (strcmp(s, JS_META_SCHEMA) != 0 && strcmp(s, JS_META_SCHEMA "#") != 0)) {
		char q[128];
		fmt_value(v, q, sizeof(q));
		schema_error(c, "$schema %s is not supported, only %s", q, JS_META_SCHEMA);
	}
}

static void kw_id(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	/* Applied before the other keywords, by compile(). */
	(void)c;
	(void)n;
	(void)v;
	(void)kw;
}

static void kw_ref(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	(void)kw;
	if (!json_is_string(v)) {
		schema_error(c, "$ref must be a string");
		return;
	}
	n->ref = json_string_value(v);
	char *abs = uri_resolve(c->base, n->ref);
	if (!abs) {
		schema_error(c, "out of memory");
		return;
	}
	char *hash = strchr(abs, '#');
	const char *fragment = hash ? hash + 1 : "";
	if (hash)
		*hash = '\0';
	n->ref_pointer = percent_decode(fragment);
	n->ref_uri = abs;
	if (!n->ref_pointer)
		schema_error(c, "$ref \"%s\" has a malformed %%-escape", n->ref);
	else if (n->ref_pointer[0] && n->ref_pointer[0] != '/')
		schema_error(c, "$ref \"%s\": plain-name fragments ($anchor) are not supported",
		             n->ref);
}

static void kw_type(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	(void)kw;
	size_t count = json_is_array(v) ? json_array_size(v) : 1;
	if (!json_is_string(v) && (!json_is_array(v) || count == 0)) {
		schema_error(c, "type must be a type name or a non-empty array of them");
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const json_t *t = json_is_array(v) ? json_array_get(v, i) : v;
		const char *name = json_string_value(t);
		unsigned bit = 0;
		for (size_t k = 0; name && k < sizeof(js_type_names) / sizeof(js_type_names[0]);
		     k++)
			if (strcmp(name, js_type_names[k].name) == 0)
				bit = js_type_names[k].bit;
		if (!bit || (n->types & bit)) {
			char q[128];
			fmt_value(t, q, sizeof(q));
			schema_error(c, "type %s is %s", q,
			             bit ? "listed twice" : "not a JSON type");
			return;
		}
		n->types |= bit;
	}
}

static void kw_const(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	(void)c;
	(void)kw;
	n->const_value = v;
}

static void kw_enum(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	(void)kw;
	if (!json_is_array(v))
		schema_error(c, "enum must be an array");
	else
		n->enum_values = v;
}

static void kw_number(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	if (!json_is_number(v)) {
		schema_error(c, "%s must be a number", kw);
		return;
	}
	if (strcmp(kw, "maximum") == 0)
		n->maximum = v;
	else if (strcmp(kw, "minimum") == 0)
		n->minimum = v;
	else if (strcmp(kw, "exclusiveMaximum") == 0)
		n->exclusive_maximum = v;
	else
		n->exclusive_minimum = v;
}

static void kw_count(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	json_int_t count;
	if (!get_count(c, v, kw, &count))
		return;
	if (strcmp(kw, "maxLength") == 0)
		n->max_length = count;
	else if (strcmp(kw, "minLength") == 0)
		n->min_length = count;
	else if (strcmp(kw, "maxItems") == 0)
		n->max_items = count;
	else if (strcmp(kw, "minItems") == 0)
		n->min_items = count;
	else if (strcmp(kw, "maxProperties") == 0)
		n->max_properties = count;
	else
		n->min_properties = count;
}

static void kw_pattern(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	if (!json_is_string(v)) {
		schema_error(c, "%s must be a string", kw);
		return;
	}
	if (compile_pattern(c, json_string_value(v), &n->pattern.code))
		n->pattern.source = json_string_value(v);
}

static void kw_required(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	(void)kw;
	bool ok = json_is_array(v);
	for (size_t i = 0; ok && i < json_array_size(v); i++) {
		const json_t *name = json_array_get(v, i);
		ok = json_is_string(name);
		for (size_t j = 0; ok && j < i; j++)
			ok = !js_equal(name, json_array_get(v, j));
	}
	if (!ok)
		schema_error(c, "required must be an array of distinct strings");
	else
		n->required = v;
}

static void kw_unique_items(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	if (!json_is_boolean(v))
		schema_error(c, "%s must be a boolean", kw);
	else
		n->unique_items = json_is_true(v);
}

static void kw_properties(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	if (compile_named(c, v, kw, &n->properties, &n->n_properties))
		n->properties_json = v;
}

static void kw_defs(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	compile_named(c, v, kw, &n->defs, &n->n_defs);
}

static void kw_pattern_properties(struct cctx *c, struct js_node *n, const json_t *v,
                                  const char *kw)
{
	if (!json_is_object(v)) {
		schema_error(c, "%s must be an object of schemas", kw);
		return;
	}
	n->pattern_properties = calloc(json_object_size(v) + 1, sizeof(*n->pattern_properties));
	if (!n->pattern_properties) {
		schema_error(c, "out of memory");
		return;
	}
	const char *key;
	json_t *sub;
	json_object_foreach((json_t *)v, key, sub)
	{
		struct js_pattern *p = &n->pattern_properties[n->n_pattern_properties++];
		p->source = key;
		size_t mark = c->where.len;
		buf_pointer_token(&c->where, key);
		compile_pattern(c, key, &p->code);
		p->node = compile(c, sub);
		buf_truncate(&c->where, mark);
	}
}

static void kw_subschema(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	if (strcmp(kw, "items") == 0 && json_is_array(v)) {
		schema_error(c, "items must be a schema; since 2020-12 an array of schemas is "
		                "prefixItems");
		return;
	}
	struct js_node *sub = compile(c, v);
	if (strcmp(kw, "items") == 0)
		n->items = sub;
	else if (strcmp(kw, "additionalProperties") == 0)
		n->additional_properties = sub;
	else
		n->not_schema = sub;
}

static void kw_list(struct cctx *c, struct js_node *n, const json_t *v, const char *kw)
{
	struct js_list *l = strcmp(kw, "prefixItems") == 0 ? &n->prefix_items
	                    : strcmp(kw, "allOf") == 0     ? &n->all_of
	                    : strcmp(kw, "anyOf") == 0     ? &n->any_of
	                                                   : &n->one_of;
	compile_list(c, v, kw, l);
}

static const struct {
	const char *name;
	kw_fn fn;
} js_keywords[] = {
    {"$id", kw_id},
    {"$schema", kw_schema},
    {"$ref", kw_ref},
    {"$defs", kw_defs},
    {"$comment", kw_annotation_string},
    {"title", kw_annotation_string},
    {"description", kw_annotation_string},
    {"examples", kw_examples},
    {"type", kw_type},
    {"const", kw_const},
    {"enum", kw_enum},
    {"maximum", kw_number},
    {"minimum", kw_number},
    {"exclusiveMaximum", kw_number},
    {"exclusiveMinimum", kw_number},
    {"maxLength", kw_count},
    {"minLength", kw_count},
    {"pattern", kw_pattern},
    {"maxItems", kw_count},
    {"minItems", kw_count},
    {"uniqueItems", kw_unique_items},
    {"prefixItems", kw_list},
    {"items", kw_subschema},
    {"maxProperties", kw_count},
    {"minProperties", kw_count},
    {"required", kw_required},
    {"properties", kw_properties},
    {"patternProperties", kw_pattern_properties},
    {"additionalProperties", kw_subschema},
    {"allOf", kw_list},
    {"anyOf", kw_list},
    {"oneOf", kw_list},
    {"not", kw_subschema},
};

bool js_keyword_supported(const char *keyword)
{
	for (size_t i = 0; i < sizeof(js_keywords) / sizeof(js_keywords[0]); i++)
		if (strcmp(js_keywords[i].name, keyword) == 0)
			return true;
	return false;
}

static kw_fn keyword_handler(const char *keyword)
{
	for (size_t i = 0; i < sizeof(js_keywords) / sizeof(js_keywords[0]); i++)
		if (strcmp(js_keywords[i].name, keyword) == 0)
			return js_keywords[i].fn;
	return NULL;
}

static struct js_node *new_node(struct cctx *c)
{
	struct js_doc *d = c->doc;
	struct js_node *n = calloc(1, sizeof(*n));
	char *where = strdup(buf_str(&c->where));
	if (!n || !where ||
	    !grow((void **)&d->nodes, &d->cap_nodes, d->n_nodes + 1, sizeof(*d->nodes))) {
		free(n);
		free(where);
		schema_error(c, "out of memory");
		return NULL;
	}
	d->nodes[d->n_nodes++] = n;
	n->doc = d;
	n->where = where;
	n->max_length = n->min_length = n->max_items = n->min_items = -1;
	n->max_properties = n->min_properties = -1;
	return n;
}

static bool add_resource(struct cctx *c, char *uri, struct js_node *root)
{
	struct js_doc *d = c->doc;
	for (size_t i = 0; i < d->n_resources; i++) {
		if (uri[0] && strcmp(d->resources[i].uri, uri) == 0) {
			schema_error(c, "$id \"%s\" is used twice", uri);
			free(uri);
			return false;
		}
	}
	if (!grow((void **)&d->resources, &d->cap_resources, d->n_resources + 1,
	          sizeof(*d->resources))) {
		schema_error(c, "out of memory");
		free(uri);
		return false;
	}
	d->resources[d->n_resources].uri = uri;
	d->resources[d->n_resources].root = root;
	d->n_resources++;
	return true;
}

/* Applies $id: the node becomes the root of a resource with a new base. */
static void enter_resource(struct cctx *c, struct js_node *n, const json_t *id)
{
	const char *s = json_string_value(id);
	if (!s) {
		schema_error(c, "$id must be a string");
		return;
	}
	char *uri = uri_resolve(c->base, s);
	if (!uri) {
		schema_error(c, "out of memory");
		return;
	}
	char *hash = strchr(uri, '#');
	if (hash && hash[1]) {
		schema_error(c, "$id \"%s\" must not have a fragment", s);
		free(uri);
		return;
	}
	if (hash)
		*hash = '\0';
	if (add_resource(c, uri, n)) {
		c->base = uri;
		c->resource = n;
	}
}

static struct js_node *compile(struct cctx *c, const json_t *json)
{
	struct js_node *n = new_node(c);
	if (!n)
		return NULL;
	if (!c->resource)
		c->resource = n; /* the document's root */
	if (json_is_boolean(json)) {
		n->kind = json_is_true(json) ? JS_TRUE : JS_FALSE;
		n->base = c->base;
		n->resource = c->resource;
		return n;
	}
	if (!json_is_object(json)) {
		schema_error(c, "a schema must be an object or a boolean");
		return n;
	}
	const char *saved_base = c->base;
	struct js_node *saved_resource = c->resource;
	const json_t *id = json_object_get(json, "$id");
	if (id) {
		size_t mark = c->where.len;
		buf_pointer_token(&c->where, "$id");
		enter_resource(c, n, id);
		buf_truncate(&c->where, mark);
	}
	n->base = c->base;
	n->resource = c->resource;

	const char *key;
	json_t *v;
	json_object_foreach((json_t *)json, key, v)
	{
		size_t mark = c->where.len;
		buf_pointer_token(&c->where, key);
		kw_fn fn = keyword_handler(key);
		if (fn)
			fn(c, n, v, key);
		else
			schema_error(c, "unsupported keyword \"%s\"", key);
		buf_truncate(&c->where, mark);
	}
	c->base = saved_base;
	c->resource = saved_resource;
	return n;
}

/* ---- resolving $ref ---- */

static struct js_node *find_resource(const struct js_doc *d, const char *uri)
{
	for (size_t i = 0; i < d->n_resources; i++)
		if (d->resources[i].uri[0] && strcmp(d->resources[i].uri, uri) == 0)
			return d->resources[i].root;
	return NULL;
}

static struct js_node *find_named(const struct js_named *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return v[i].node;
	return NULL;
}

static struct js_node *find_index(const struct js_list *l, const char *token)
{
	char *end;
	errno = 0;
	unsigned long i = strtoul(token, &end, 10);
	if (!*token || *end || errno || (token[0] == '0' && token[1]) || i >= l->n)
		return NULL;
	return l->v[i];
}

/* Follows a JSON pointer through the compiled tree, so that the target is
 * always a compiled schema; pointers into non-schema values fail. */
static struct js_node *walk_pointer(struct js_node *n, const char *pointer)
{
	char token[1024];
	const char *p = pointer;
	const char *keyword = NULL;
	char keyword_buf[1024];
	while (n && *p == '/') {
		size_t t = 0;
		for (p++; *p && *p != '/'; p++) {
			char ch = *p;
			if (ch == '~') {
				if (p[1] != '0' && p[1] != '1')
					return NULL;
				ch = p[1] == '0' ? '~' : '/';
				p++;
			}
			if (t + 1 >= sizeof(token))
				return NULL;
			token[t++] = ch;
		}
		token[t] = '\0';
		if (!keyword) {
			if (strcmp(token, "items") == 0)
				n = n->items;
			else if (strcmp(token, "additionalProperties") == 0)
				n = n->additional_properties;
			else if (strcmp(token, "not") == 0)
				n = n->not_schema;
			else {
				memcpy(keyword_buf, token, t + 1);
				keyword = keyword_buf;
			}
			continue;
		}
		if (strcmp(keyword, "properties") == 0)
			n = find_named(n->properties, n->n_properties, token);
		else if (strcmp(keyword, "$defs") == 0)
			n = find_named(n->defs, n->n_defs, token);
		else if (strcmp(keyword, "prefixItems") == 0)
			n = find_index(&n->prefix_items, token);
		else if (strcmp(keyword, "allOf") == 0)
			n = find_index(&n->all_of, token);
		else if (strcmp(keyword, "anyOf") == 0)
			n = find_index(&n->any_of, token);
		else if (strcmp(keyword, "oneOf") == 0)
			n = find_index(&n->one_of, token);
		else if (strcmp(keyword, "patternProperties") == 0) {
			struct js_node *found = NULL;
			for (size_t i = 0; i < n->n_pattern_properties; i++)
				if (strcmp(n->pattern_properties[i].source, token) == 0)
					found = n->pattern_properties[i].node;
			n = found;
		} else
			n = NULL;
		keyword = NULL;
	}
	return keyword || *p ? NULL : n;
}

enum resolve_result { RESOLVED, NO_RESOURCE, BAD_POINTER };

static enum resolve_result resolve_ref(const struct js_registry *reg, const struct js_doc *doc,
                                       const struct js_node *n, struct js_node **target)
{
	struct js_node *root = NULL;
	if (strcmp(n->ref_uri, n->base) == 0)
		root = n->resource;
	if (!root)
		root = find_resource(doc, n->ref_uri);
	for (size_t i = 0; !root && reg && i < reg->n_docs; i++)
		root = find_resource(reg->docs[i], n->ref_uri);
	if (!root)
		return NO_RESOURCE;
	*target = walk_pointer(root, n->ref_pointer);
	return *target ? RESOLVED : BAD_POINTER;
}

/* Reports a problem of n's $ref, which may belong to another document. */
static void ref_error(struct cctx *c, const struct js_node *n, const char *why)
{
	struct buf saved = c->where;
	struct js_doc *saved_doc = c->doc;
	struct buf at = {0};
	buf_put(&at, n->where, strlen(n->where));
	buf_pointer_token(&at, "$ref");
	c->where = at;
	c->doc = n->doc;
	schema_error(c, "$ref \"%s\" %s", n->ref, why);
	c->where = saved;
	c->doc = saved_doc;
	buf_free(&at);
}

/* Links the $refs of doc. A reference to a resource not (yet) known is
 * an error only when `final`; a bad pointer into a known one always is. */
static void link_doc(struct cctx *c, const struct js_registry *reg, struct js_doc *doc, bool final,
                     bool report)
{
	for (size_t i = 0; i < doc->n_nodes; i++) {
		struct js_node *n = doc->nodes[i];
		if (!n->ref_uri || !n->ref_pointer || n->ref_target)
			continue;
		enum resolve_result r = resolve_ref(reg, doc, n, &n->ref_target);
		if (!report)
			continue;
		if (r == BAD_POINTER)
			ref_error(c, n, "points to no schema in its resource");
		else if (r == NO_RESOURCE && final)
			ref_error(c, n, "does not resolve to a known schema");
	}
}

/* Edges that apply another schema to the same instance. A cycle of them
 * would never end, whatever the instance. */
static bool cycle_from(struct js_node *n, const struct js_doc *only, struct js_node **culprit)
{
	if (!n || (only && n->doc != only) || n->mark == 2)
		return false;
	if (n->mark == 1) {
		*culprit = n;
		return true;
	}
	n->mark = 1;
	const struct js_list *lists[] = {&n->all_of, &n->any_of, &n->one_of};
	if (cycle_from(n->ref_target, only, culprit) || cycle_from(n->not_schema, only, culprit))
		return true;
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < lists[k]->n; i++)
			if (cycle_from(lists[k]->v[i], only, culprit))
				return true;
	n->mark = 2;
	return false;
}

static void check_cycles(struct cctx *c, struct js_doc **docs, size_t n_docs,
                         const struct js_doc *only)
{
	for (size_t d = 0; d < n_docs; d++)
		for (size_t i = 0; i < docs[d]->n_nodes; i++)
			docs[d]->nodes[i]->mark = 0;
	for (size_t d = 0; d < n_docs; d++) {
		for (size_t i = 0; i < docs[d]->n_nodes; i++) {
			struct js_node *culprit = NULL;
			if (!cycle_from(docs[d]->nodes[i], only, &culprit))
				continue;
			ref_error(c, culprit,
			          "leads back to this schema without descending into "
			          "the value (endless cycle)");
			return;
		}
	}
}

/* ---- the registry ---- */

struct js_registry *js_registry_new(void)
{
	return calloc(1, sizeof(struct js_registry));
}

void js_registry_free(struct js_registry *reg)
{
	if (!reg)
		return;
	for (size_t i = 0; i < reg->n_docs; i++)
		doc_free(reg->docs[i]);
	free(reg->docs);
	free(reg);
}

/* With `keep`, the document holds a reference to schema; otherwise it
 * borrows it and must be freed before the caller lets go of it. */
static struct js_doc *doc_compile(struct cctx *c, const json_t *schema, const char *origin,
                                  bool keep)
{
	struct js_doc *d = calloc(1, sizeof(*d));
	char *anonymous = strdup("");
	if (!d || !anonymous || (origin && !(d->origin = strdup(origin)))) {
		free(anonymous);
		free(d);
		if (c->report)
			c->report(c->ud, "", "out of memory");
		c->problems++;
		return NULL;
	}
	if (keep)
		d->schema = json_incref((json_t *)schema);
	c->doc = d;
	c->base = "";
	/* Placeholder for the document's own (anonymous) base; the root takes
	 * a real URI from its $id if it has one. */
	if (!add_resource(c, anonymous, NULL))
		return d;
	struct js_node *root = compile(c, schema);
	d->resources[0].root = root;
	if (c->where.oom)
		schema_error(c, "out of memory");
	return d;
}

static bool doc_resources_clash(struct cctx *c, const struct js_registry *reg,
                                const struct js_doc *d)
{
	for (size_t i = 0; i < d->n_resources; i++) {
		const char *uri = d->resources[i].uri;
		for (size_t k = 0; uri[0] && k < reg->n_docs; k++) {
			if (find_resource(reg->docs[k], uri)) {
				schema_error(c, "$id \"%s\" is already registered", uri);
				return true;
			}
		}
	}
	return false;
}

int js_registry_add(struct js_registry *reg, json_t *schema, const char *origin,
                    js_report_fn report, void *ud)
{
	struct cctx c = {.report = report, .ud = ud};
	struct js_doc *d = doc_compile(&c, schema, origin, true);
	if (d && c.problems == 0 && !doc_resources_clash(&c, reg, d))
		link_doc(&c, reg, d, false, true);
	if (c.problems == 0 &&
	    !grow((void **)&reg->docs, &reg->cap_docs, reg->n_docs + 1, sizeof(*reg->docs))) {
		schema_error(&c, "out of memory");
	}
	if (c.problems > 0) {
		doc_free(d);
		buf_free(&c.where);
		return c.problems;
	}
	reg->docs[reg->n_docs++] = d;
	/* Earlier documents may have been waiting for this one. */
	for (size_t i = 0; i + 1 < reg->n_docs; i++)
		link_doc(&c, reg, reg->docs[i], false, false);
	check_cycles(&c, reg->docs, reg->n_docs, NULL);
	if (c.problems > 0) {
		/* Refuse the document that closed the cycle and forget every link
		 * into it, so the registry stays as it was. */
		for (size_t i = 0; i < reg->n_docs; i++)
			for (size_t k = 0; k < reg->docs[i]->n_nodes; k++) {
				struct js_node *n = reg->docs[i]->nodes[k];
				if (n->ref_target && n->ref_target->doc == d)
					n->ref_target = NULL;
			}
		reg->n_docs--;
		doc_free(d);
	}
	buf_free(&c.where);
	return c.problems;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int js_registry_load_dir(struct js_registry *reg, const char *dir, js_report_fn report, void *ud)
{
	int problems = 0;
	char msg[4400];
	DIR *dh = opendir(dir);
	if (!dh) {
		snprintf(msg, sizeof(msg), "cannot open schema directory %s: %s", dir,
		         strerror(errno));
		if (report)
			report(ud, "", msg);
		return 1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(dh))) {
		size_t len = strlen(e->d_name);
		if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0 || e->d_name[0] == '.')
			continue;
		char *copy = strdup(e->d_name);
		if (!copy || !grow((void **)&names, &cap, n + 1, sizeof(*names))) {
			free(copy);
			problems++;
			if (report)
				report(ud, "", "out of memory");
			break;
		}
		names[n++] = copy;
	}
	closedir(dh);
	/* Sorted, so that messages come in the same order on every host. */
	if (n > 0)
		qsort(names, n, sizeof(*names), compare_names);
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		json_error_t err;
		json_t *schema = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
		if (!schema) {
			snprintf(msg, sizeof(msg), "%s:%d:%d: %s", path, err.line, err.column,
			         err.text);
			if (report)
				report(ud, "", msg);
			problems++;
		} else {
			problems += js_registry_add(reg, schema, path, report, ud);
			json_decref(schema);
		}
		free(names[i]);
	}
	free(names);
	if (n == 0 && problems == 0) {
		snprintf(msg, sizeof(msg), "no *.json schema in %s", dir);
		if (report)
			report(ud, "", msg);
		problems++;
	}
	for (size_t i = 0; i < reg->n_docs; i++) {
		struct cctx c = {.report = report, .ud = ud, .doc = reg->docs[i]};
		link_doc(&c, reg, reg->docs[i], true, true);
		problems += c.problems;
		buf_free(&c.where);
	}
	return problems;
}

/* ---- validation ---- */

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
		return (types & JS_NUMBER) || ((types & JS_INTEGER) && is_integral(x));
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
	for (size_t k = 0; k < sizeof(js_type_names) / sizeof(js_type_names[0]); k++)
		total += (types & js_type_names[k].bit) != 0;
	for (size_t k = 0; k < sizeof(js_type_names) / sizeof(js_type_names[0]); k++) {
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
	fmt_number(x, a, sizeof(a));
	if (n->maximum && num_cmp(x, n->maximum) > 0) {
		fmt_number(n->maximum, b, sizeof(b));
		fail(v, "%s is greater than the maximum %s", a, b);
	}
	if (n->minimum && num_cmp(x, n->minimum) < 0) {
		fmt_number(n->minimum, b, sizeof(b));
		fail(v, "%s is less than the minimum %s", a, b);
	}
	if (n->exclusive_maximum && num_cmp(x, n->exclusive_maximum) >= 0) {
		fmt_number(n->exclusive_maximum, b, sizeof(b));
		fail(v, "%s is not less than the exclusive maximum %s", a, b);
	}
	if (n->exclusive_minimum && num_cmp(x, n->exclusive_minimum) <= 0) {
		fmt_number(n->exclusive_minimum, b, sizeof(b));
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

static void check_string(struct vctx *v, const struct js_node *n, const json_t *x)
{
	const char *s = json_string_value(x);
	size_t bytes = json_string_length(x);
	if (n->max_length >= 0 || n->min_length >= 0) {
		json_int_t chars = (json_int_t)utf8_length(s, bytes);
		if (n->max_length >= 0 && chars > n->max_length)
			fail(v,
			     "string has %" JSON_INTEGER_FORMAT
			     " %s, more than the maximum %" JSON_INTEGER_FORMAT,
			     chars, plural(chars, "character", "characters"), n->max_length);
		if (n->min_length >= 0 && chars < n->min_length)
			fail(v,
			     "string has %" JSON_INTEGER_FORMAT
			     " %s, fewer than the minimum %" JSON_INTEGER_FORMAT,
			     chars, plural(chars, "character", "characters"), n->min_length);
	}
	if (n->pattern.code && !pattern_matches(v, &n->pattern, s, bytes)) {
		char q[256];
		fmt_value(x, q, sizeof(q));
		fail(v, "%s does not match %s", q, n->pattern.source);
	}
}

static void check_array(struct vctx *v, const struct js_node *n, const json_t *x)
{
	json_int_t size = (json_int_t)json_array_size(x);
	if (n->max_items >= 0 && size > n->max_items)
		fail(v,
		     "array has %" JSON_INTEGER_FORMAT
		     " %s, more than the maximum %" JSON_INTEGER_FORMAT,
		     size, plural(size, "item", "items"), n->max_items);
	if (n->min_items >= 0 && size < n->min_items)
		fail(v,
		     "array has %" JSON_INTEGER_FORMAT
		     " %s, fewer than the minimum %" JSON_INTEGER_FORMAT,
		     size, plural(size, "item", "items"), n->min_items);
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
	for (size_t i = 0; i < n->n_pattern_properties; i++) {
		const struct js_pattern *p = &n->pattern_properties[i];
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
	if (n->max_properties >= 0 && size > n->max_properties)
		fail(v,
		     "object has %" JSON_INTEGER_FORMAT
		     " %s, more than the maximum %" JSON_INTEGER_FORMAT,
		     size, plural(size, "property", "properties"), n->max_properties);
	if (n->min_properties >= 0 && size < n->min_properties)
		fail(v,
		     "object has %" JSON_INTEGER_FORMAT
		     " %s, fewer than the minimum %" JSON_INTEGER_FORMAT,
		     size, plural(size, "property", "properties"), n->min_properties);
	for (size_t i = 0; n->required && i < json_array_size(n->required); i++) {
		const char *name = json_string_value(json_array_get(n->required, i));
		if (!json_object_get(x, name)) {
			char q[256];
			fmt_value(json_array_get(n->required, i), q, sizeof(q));
			fail(v, "missing required property %s", q);
		}
	}
	for (size_t i = 0; i < n->n_properties; i++) {
		const json_t *value = json_object_get(x, n->properties[i].name);
		if (value)
			validate_at(v, n->properties[i].node, value, n->properties[i].name);
	}
	if (n->n_pattern_properties == 0 && !n->additional_properties)
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
				fmt_value(name, q, sizeof(q));
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
		fmt_value(x, a, sizeof(a));
		fmt_value(n->const_value, b, sizeof(b));
		fail(v, "%s is not the constant %s", a, b);
	}
	if (n->enum_values) {
		bool found = false;
		for (size_t i = 0; !found && i < json_array_size(n->enum_values); i++)
			found = js_equal(json_array_get(n->enum_values, i), x);
		if (!found) {
			char a[256], b[256];
			fmt_value(x, a, sizeof(a));
			fmt_value(n->enum_values, b, sizeof(b));
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

static int run(const struct js_node *root, const json_t *instance, js_report_fn report, void *ud)
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

int js_validate(const struct js_registry *reg, const char *id, const json_t *instance,
                js_report_fn report, void *ud)
{
	const struct js_node *root = NULL;
	for (size_t i = 0; reg && id && !root && id[0] && i < reg->n_docs; i++)
		root = find_resource(reg->docs[i], id);
	if (!root) {
		char msg[512];
		snprintf(msg, sizeof(msg), "no schema with $id \"%s\" is registered", id ? id : "");
		if (report)
			report(ud, "", msg);
		return 1;
	}
	return run(root, instance, report, ud);
}

int js_validate_with(const struct js_registry *reg, const json_t *schema, const json_t *instance,
                     js_report_fn report, void *ud)
{
	struct cctx c = {.report = report, .ud = ud};
	struct js_doc *d = doc_compile(&c, schema, NULL, false);
	if (d && c.problems == 0)
		link_doc(&c, reg, d, true, true);
	if (d && c.problems == 0)
		check_cycles(&c, &d, 1, d);
	int problems = c.problems;
	if (problems == 0)
		problems = run(d->resources[0].root, instance, report, ud);
	doc_free(d);
	buf_free(&c.where);
	return problems;
}
