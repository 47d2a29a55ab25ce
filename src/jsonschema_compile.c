/* jsonschema_compile: a schema document compiled into a tree of nodes.
 * Every keyword is checked and every pattern compiled here, once, when the
 * schema is added; a keyword the table below does not list is refused. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema_tree.h"
#include "uri.h"

#define JS_META_SCHEMA "https://json-schema.org/draft/2020-12/schema"

bool js_grow(void **v, size_t *cap, size_t need, size_t size)
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

__attribute__((format(printf, 2, 3))) void js_schema_error(struct js_cctx *c, const char *fmt, ...)
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
	for (size_t i = 0; i < n->pattern_properties.n; i++)
		pcre2_code_free(n->pattern_properties.v[i].code);
	free(n->pattern_properties.v);
	free(n->properties.v);
	free(n->defs.v);
	free(n->prefix_items.v);
	free(n->all_of.v);
	free(n->any_of.v);
	free(n->one_of.v);
	free(n->ref_uri);
	free(n->ref_pointer);
	free(n);
}

void js_doc_free(struct js_doc *d)
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

static struct js_node *compile(struct js_cctx *c, const json_t *json);

static struct js_node *compile_child(struct js_cctx *c, const json_t *json, const char *token)
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

static bool compile_pattern(struct js_cctx *c, const char *source, pcre2_code **code)
{
	int err = 0;
	PCRE2_SIZE offset = 0;
	char *translated = ecma_to_pcre2(source);
	pcre2_compile_context *ctx = pcre2_compile_context_create(NULL);
	if (!translated || !ctx) {
		free(translated);
		pcre2_compile_context_free(ctx);
		js_schema_error(c, "out of memory");
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
		js_schema_error(c, "pattern %s does not compile: %s at offset %zu", source,
		                (const char *)text, (size_t)offset);
		return false;
	}
	return true;
}

/* ---- the keywords ---- */

struct keyword;

/* Compiles the value v of keyword kw into n; `c->where` already points at
 * the keyword. */
typedef void (*kw_fn)(struct js_cctx *c, struct js_node *n, const json_t *v,
                      const struct keyword *kw);

/* How a keyword's value holds schemas, for js_node_at to follow. */
enum kw_children {
	KW_LEAF,     /* none */
	KW_ONE,      /* one schema: a struct js_node * */
	KW_LIST,     /* an array of schemas: a struct js_list */
	KW_NAMED,    /* an object of schemas: a struct js_named_list */
	KW_PATTERNS, /* an object of schemas keyed by patterns: a struct js_pattern_list */
};

/* One row per keyword. `field` is where in the node its handler stores what
 * it compiles, for the handlers that serve several keywords (which thus
 * never tell them apart by name again) and for every keyword that holds
 * schemas. */
struct keyword {
	const char *name;
	kw_fn fn;
	size_t field; /* offsetof(struct js_node, ...) */
	enum kw_children children;
};

static void *field_of(struct js_node *n, const struct keyword *kw)
{
	return (char *)n + kw->field;
}

static bool compile_list(struct js_cctx *c, const json_t *v, const char *kw, struct js_list *out)
{
	if (!json_is_array(v) || json_array_size(v) == 0) {
		js_schema_error(c, "%s must be a non-empty array of schemas", kw);
		return false;
	}
	out->v = calloc(json_array_size(v), sizeof(*out->v));
	if (!out->v) {
		js_schema_error(c, "out of memory");
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

static bool compile_named(struct js_cctx *c, const json_t *v, const char *kw,
                          struct js_named_list *out)
{
	if (!json_is_object(v)) {
		js_schema_error(c, "%s must be an object of schemas", kw);
		return false;
	}
	out->v = calloc(json_object_size(v) + 1, sizeof(*out->v));
	if (!out->v) {
		js_schema_error(c, "out of memory");
		return false;
	}
	const char *key;
	json_t *sub;
	json_object_foreach((json_t *)v, key, sub)
	{
		out->v[out->n].name = key;
		out->v[out->n].node = compile_child(c, sub, key);
		out->n++;
	}
	return true;
}

static void kw_annotation_string(struct js_cctx *c, struct js_node *n, const json_t *v,
                                 const struct keyword *kw)
{
	(void)n;
	if (!json_is_string(v))
		js_schema_error(c, "%s must be a string", kw->name);
}

static void kw_examples(struct js_cctx *c, struct js_node *n, const json_t *v,
                        const struct keyword *kw)
{
	(void)n;
	if (!json_is_array(v))
		js_schema_error(c, "%s must be an array", kw->name);
}

static void kw_schema(struct js_cctx *c, struct js_node *n, const json_t *v,
                      const struct keyword *kw)
{
	(void)n;
	(void)kw;
	const char *s = json_string_value(v);
	if (!s || (strcmp(s, JS_META_SCHEMA) != 0 && strcmp(s, JS_META_SCHEMA "#") != 0)) {
		char q[128];
		js_fmt_value(v, q, sizeof(q));
		js_schema_error(c, "$schema %s is not supported, only %s", q, JS_META_SCHEMA);
	}
}

static void kw_id(struct js_cctx *c, struct js_node *n, const json_t *v, const struct keyword *kw)
{
	/* Applied before the other keywords, by compile(). */
	(void)c;
	(void)n;
	(void)v;
	(void)kw;
}

static void kw_ref(struct js_cctx *c, struct js_node *n, const json_t *v, const struct keyword *kw)
{
	(void)kw;
	if (!json_is_string(v)) {
		js_schema_error(c, "$ref must be a string");
		return;
	}
	n->ref = json_string_value(v);
	char *abs = uri_resolve(c->base, n->ref);
	if (!abs) {
		js_schema_error(c, "out of memory");
		return;
	}
	char *hash = strchr(abs, '#');
	const char *fragment = hash ? hash + 1 : "";
	if (hash)
		*hash = '\0';
	n->ref_pointer = percent_decode(fragment);
	n->ref_uri = abs;
	if (!n->ref_pointer)
		js_schema_error(c, "$ref \"%s\" has a malformed %%-escape", n->ref);
	else if (n->ref_pointer[0] && n->ref_pointer[0] != '/')
		js_schema_error(c, "$ref \"%s\": plain-name fragments ($anchor) are not supported",
		                n->ref);
}

static void kw_type(struct js_cctx *c, struct js_node *n, const json_t *v, const struct keyword *kw)
{
	(void)kw;
	size_t count = json_is_array(v) ? json_array_size(v) : 1;
	if (!json_is_string(v) && (!json_is_array(v) || count == 0)) {
		js_schema_error(c, "type must be a type name or a non-empty array of them");
		return;
	}
	for (size_t i = 0; i < count; i++) {
		const json_t *t = json_is_array(v) ? json_array_get(v, i) : v;
		const char *name = json_string_value(t);
		unsigned bit = 0;
		for (size_t k = 0; name && k < JS_N_TYPES; k++)
			if (strcmp(name, js_type_names[k].name) == 0)
				bit = js_type_names[k].bit;
		if (!bit || (n->types & bit)) {
			char q[128];
			js_fmt_value(t, q, sizeof(q));
			js_schema_error(c, "type %s is %s", q,
			                bit ? "listed twice" : "not a JSON type");
			return;
		}
		n->types |= bit;
	}
}

static void kw_const(struct js_cctx *c, struct js_node *n, const json_t *v,
                     const struct keyword *kw)
{
	(void)c;
	(void)kw;
	n->const_value = v;
}

static void kw_enum(struct js_cctx *c, struct js_node *n, const json_t *v, const struct keyword *kw)
{
	(void)kw;
	if (!json_is_array(v))
		js_schema_error(c, "enum must be an array");
	else
		n->enum_values = v;
}

/* maximum, minimum, exclusiveMaximum, exclusiveMinimum */
static void kw_number(struct js_cctx *c, struct js_node *n, const json_t *v,
                      const struct keyword *kw)
{
	if (json_is_number(v))
		*(const json_t **)field_of(n, kw) = v;
	else
		js_schema_error(c, "%s must be a number", kw->name);
}

/* maxLength, minLength, maxItems, minItems, maxProperties, minProperties */
static void kw_count(struct js_cctx *c, struct js_node *n, const json_t *v,
                     const struct keyword *kw)
{
	json_int_t *count = field_of(n, kw);
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*count = json_integer_value(v);
	} else if (js_is_integral(v) && json_is_real(v) && json_real_value(v) >= 0) {
		double d = json_real_value(v);
		*count = d >= 9.2e18 ? (json_int_t)9.2e18 : (json_int_t)d;
	} else {
		js_schema_error(c, "%s must be a non-negative integer", kw->name);
	}
}

static void kw_pattern(struct js_cctx *c, struct js_node *n, const json_t *v,
                       const struct keyword *kw)
{
	if (!json_is_string(v)) {
		js_schema_error(c, "%s must be a string", kw->name);
		return;
	}
	if (compile_pattern(c, json_string_value(v), &n->pattern.code))
		n->pattern.source = json_string_value(v);
}

static void kw_required(struct js_cctx *c, struct js_node *n, const json_t *v,
                        const struct keyword *kw)
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
		js_schema_error(c, "required must be an array of distinct strings");
	else
		n->required = v;
}

static void kw_unique_items(struct js_cctx *c, struct js_node *n, const json_t *v,
                            const struct keyword *kw)
{
	if (!json_is_boolean(v))
		js_schema_error(c, "%s must be a boolean", kw->name);
	else
		n->unique_items = json_is_true(v);
}

/* properties (see kw_properties), $defs */
static void kw_named(struct js_cctx *c, struct js_node *n, const json_t *v,
                     const struct keyword *kw)
{
	compile_named(c, v, kw->name, field_of(n, kw));
}

static void kw_properties(struct js_cctx *c, struct js_node *n, const json_t *v,
                          const struct keyword *kw)
{
	/* Validation also asks the JSON whether a key is a property's. */
	if (compile_named(c, v, kw->name, field_of(n, kw)))
		n->properties_json = v;
}

static void kw_pattern_properties(struct js_cctx *c, struct js_node *n, const json_t *v,
                                  const struct keyword *kw)
{
	if (!json_is_object(v)) {
		js_schema_error(c, "%s must be an object of schemas", kw->name);
		return;
	}
	struct js_pattern_list *l = field_of(n, kw);
	l->v = calloc(json_object_size(v) + 1, sizeof(*l->v));
	if (!l->v) {
		js_schema_error(c, "out of memory");
		return;
	}
	const char *key;
	json_t *sub;
	json_object_foreach((json_t *)v, key, sub)
	{
		struct js_pattern *p = &l->v[l->n++];
		p->source = key;
		size_t mark = c->where.len;
		buf_pointer_token(&c->where, key);
		compile_pattern(c, key, &p->code);
		p->node = compile(c, sub);
		buf_truncate(&c->where, mark);
	}
}

/* additionalProperties, not (and items, see kw_items) */
static void kw_subschema(struct js_cctx *c, struct js_node *n, const json_t *v,
                         const struct keyword *kw)
{
	*(struct js_node **)field_of(n, kw) = compile(c, v);
}

static void kw_items(struct js_cctx *c, struct js_node *n, const json_t *v,
                     const struct keyword *kw)
{
	if (json_is_array(v))
		js_schema_error(c, "items must be a schema; since 2020-12 an array of schemas is "
		                   "prefixItems");
	else
		kw_subschema(c, n, v, kw);
}

/* prefixItems, allOf, anyOf, oneOf */
static void kw_list(struct js_cctx *c, struct js_node *n, const json_t *v, const struct keyword *kw)
{
	compile_list(c, v, kw->name, field_of(n, kw));
}

/* One row per keyword; rows alike in shape are the table's point. */
static const struct keyword js_keywords[] = {
    {"$id", kw_id, 0, KW_LEAF},
    {"$schema", kw_schema, 0, KW_LEAF},
    {"$ref", kw_ref, 0, KW_LEAF},
    {"$defs", kw_named, offsetof(struct js_node, defs), KW_NAMED},
    {"$comment", kw_annotation_string, 0, KW_LEAF},
    {"title", kw_annotation_string, 0, KW_LEAF},
    {"description", kw_annotation_string, 0, KW_LEAF},
    {"examples", kw_examples, 0, KW_LEAF},
    {"type", kw_type, 0, KW_LEAF},
    {"const", kw_const, 0, KW_LEAF},
    {"enum", kw_enum, 0, KW_LEAF},
    {"maximum", kw_number, offsetof(struct js_node, maximum), KW_LEAF},
    {"minimum", kw_number, offsetof(struct js_node, minimum), KW_LEAF},
    {"exclusiveMaximum", kw_number, offsetof(struct js_node, exclusive_maximum), KW_LEAF},
    {"exclusiveMinimum", kw_number, offsetof(struct js_node, exclusive_minimum), KW_LEAF},
    {"maxLength", kw_count, offsetof(struct js_node, max_length), KW_LEAF},
    {"minLength", kw_count, offsetof(struct js_node, min_length), KW_LEAF},
    {"pattern", kw_pattern, 0, KW_LEAF},
    {"maxItems", kw_count, offsetof(struct js_node, max_items), KW_LEAF},
    {"minItems", kw_count, offsetof(struct js_node, min_items), KW_LEAF},
    {"uniqueItems", kw_unique_items, 0, KW_LEAF},
    {"prefixItems", kw_list, offsetof(struct js_node, prefix_items), KW_LIST},
    {"items", kw_items, offsetof(struct js_node, items), KW_ONE},
    {"maxProperties", kw_count, offsetof(struct js_node, max_properties), KW_LEAF},
    {"minProperties", kw_count, offsetof(struct js_node, min_properties), KW_LEAF},
    {"required", kw_required, 0, KW_LEAF},
    {"properties", kw_properties, offsetof(struct js_node, properties), KW_NAMED},
    {"patternProperties", kw_pattern_properties, offsetof(struct js_node, pattern_properties),
     KW_PATTERNS},
    {"additionalProperties", kw_subschema, offsetof(struct js_node, additional_properties), KW_ONE},
    {"allOf", kw_list, offsetof(struct js_node, all_of), KW_LIST},
    {"anyOf", kw_list, offsetof(struct js_node, any_of), KW_LIST},
    {"oneOf", kw_list, offsetof(struct js_node, one_of), KW_LIST},
    {"not", kw_subschema, offsetof(struct js_node, not_schema), KW_ONE},
};

static const struct keyword *keyword_named(const char *name)
{
	for (size_t i = 0; i < sizeof(js_keywords) / sizeof(js_keywords[0]); i++)
		if (strcmp(js_keywords[i].name, name) == 0)
			return &js_keywords[i];
	return NULL;
}

bool js_keyword_supported(const char *keyword)
{
	return keyword_named(keyword) != NULL;
}

static struct js_node *new_node(struct js_cctx *c)
{
	struct js_doc *d = c->doc;
	struct js_node *n = calloc(1, sizeof(*n));
	char *where = strdup(buf_str(&c->where));
	if (!n || !where ||
	    !js_grow((void **)&d->nodes, &d->cap_nodes, d->n_nodes + 1, sizeof(*d->nodes))) {
		free(n);
		free(where);
		js_schema_error(c, "out of memory");
		return NULL;
	}
	d->nodes[d->n_nodes++] = n;
	n->doc = d;
	n->where = where;
	n->max_length = n->min_length = n->max_items = n->min_items = -1;
	n->max_properties = n->min_properties = -1;
	return n;
}

static bool add_resource(struct js_cctx *c, char *uri, struct js_node *root)
{
	struct js_doc *d = c->doc;
	for (size_t i = 0; i < d->n_resources; i++) {
		if (uri[0] && strcmp(d->resources[i].uri, uri) == 0) {
			js_schema_error(c, "$id \"%s\" is used twice", uri);
			free(uri);
			return false;
		}
	}
	if (!js_grow((void **)&d->resources, &d->cap_resources, d->n_resources + 1,
	             sizeof(*d->resources))) {
		js_schema_error(c, "out of memory");
		free(uri);
		return false;
	}
	d->resources[d->n_resources].uri = uri;
	d->resources[d->n_resources].root = root;
	d->n_resources++;
	return true;
}

/* Applies $id: the node becomes the root of a resource with a new base. */
static void enter_resource(struct js_cctx *c, struct js_node *n, const json_t *id)
{
	const char *s = json_string_value(id);
	if (!s) {
		js_schema_error(c, "$id must be a string");
		return;
	}
	char *uri = uri_resolve(c->base, s);
	if (!uri) {
		js_schema_error(c, "out of memory");
		return;
	}
	char *hash = strchr(uri, '#');
	if (hash && hash[1]) {
		js_schema_error(c, "$id \"%s\" must not have a fragment", s);
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

static struct js_node *compile(struct js_cctx *c, const json_t *json)
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
		js_schema_error(c, "a schema must be an object or a boolean");
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
		const struct keyword *kw = keyword_named(key);
		if (kw)
			kw->fn(c, n, v, kw);
		else
			js_schema_error(c, "unsupported keyword \"%s\"", key);
		buf_truncate(&c->where, mark);
	}
	c->base = saved_base;
	c->resource = saved_resource;
	return n;
}

/* ---- following a JSON pointer ---- */

static struct js_node *find_named(const struct js_named_list *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return l->v[i].node;
	return NULL;
}

/* find_named's loop over the other element type: a pattern property also
 * holds its compiled pattern, which validation reads, so the two lists stay
 * apart. */
static struct js_node *find_pattern(const struct js_pattern_list *l, const char *source)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].source, source) == 0)
			return l->v[i].node;
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

/* The schema that token names in the value of n's keyword kw. */
static struct js_node *child_at(struct js_node *n, const struct keyword *kw, const char *token)
{
	switch (kw->children) {
	case KW_LIST:
		return find_index(field_of(n, kw), token);
	case KW_NAMED:
		return find_named(field_of(n, kw), token);
	case KW_PATTERNS:
		return find_pattern(field_of(n, kw), token);
	default:
		return NULL;
	}
}

/* Reads the reference token after the '/' at p, unescaped, into token (cap
 * bytes); returns where it ends, or NULL on a bad escape or a long token. */
static const char *pointer_token(const char *p, char *token, size_t cap)
{
	size_t t = 0;
	for (p++; *p && *p != '/'; p++) {
		char ch = *p;
		if (ch == '~') {
			if (p[1] != '0' && p[1] != '1')
				return NULL;
			ch = p[1] == '0' ? '~' : '/';
			p++;
		}
		if (t + 1 >= cap)
			return NULL;
		token[t++] = ch;
	}
	token[t] = '\0';
	return p;
}

struct js_node *js_node_at(struct js_node *n, const char *pointer)
{
	char token[1024];
	const char *p = pointer;
	const struct keyword *kw = NULL; /* read, its value's token not yet */
	while (n && *p == '/') {
		p = pointer_token(p, token, sizeof(token));
		if (!p)
			return NULL;
		if (kw) {
			n = child_at(n, kw, token);
			kw = NULL;
			continue;
		}
		kw = keyword_named(token);
		if (!kw || kw->children == KW_LEAF)
			return NULL;
		if (kw->children == KW_ONE) {
			n = *(struct js_node **)field_of(n, kw);
			kw = NULL;
		}
	}
	return kw || *p ? NULL : n;
}

/* ---- a document ---- */

struct js_doc *js_doc_compile(struct js_cctx *c, const json_t *schema, const char *origin,
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
		js_schema_error(c, "out of memory");
	return d;
}
