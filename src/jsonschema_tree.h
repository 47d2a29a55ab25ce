/* jsonschema_tree: private to the jsonschema module, whose public surface is
 * jsonschema.h. The tree a schema is compiled into (jsonschema_compile.c
 * writes it, jsonschema_validate.c only reads it, jsonschema_registry.c keeps
 * the documents and links their $refs) and the helpers they share
 * (jsonschema_value.c). Nothing outside src/jsonschema_*.c includes it. */
#ifndef GCS_JSONSCHEMA_TREE_H
#define GCS_JSONSCHEMA_TREE_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "jsonschema.h"

/* The bits of a node's "type" keyword. */
enum js_type {
	JS_NULL = 1 << 0,
	JS_BOOLEAN = 1 << 1,
	JS_OBJECT = 1 << 2,
	JS_ARRAY = 1 << 3,
	JS_NUMBER = 1 << 4,
	JS_STRING = 1 << 5,
	JS_INTEGER = 1 << 6,
};

#define JS_N_TYPES 7
extern const struct js_type_name {
	const char *name;
	unsigned bit;
} js_type_names[JS_N_TYPES];

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

struct js_named_list {
	struct js_named *v;
	size_t n;
};

struct js_pattern {
	const char *source; /* borrowed from the schema's JSON */
	pcre2_code *code;
	struct js_node *node;
};

struct js_pattern_list {
	struct js_pattern *v;
	size_t n;
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
	struct js_named_list properties, defs;
	struct js_pattern_list pattern_properties;
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

/* ---- compiling (jsonschema_compile.c) ---- */

/* Where compiling (and linking) stands: problems are reported at `where`,
 * a JSON pointer into doc, naming doc's origin. */
struct js_cctx {
	struct js_doc *doc;
	struct buf where;
	const char *base;
	struct js_node *resource;
	js_report_fn report;
	void *ud;
	int problems;
};

__attribute__((format(printf, 2, 3))) void js_schema_error(struct js_cctx *c, const char *fmt, ...);

/* Compiles schema into a new document (NULL when out of memory). With
 * `keep`, the document holds a reference to schema; otherwise it borrows it
 * and must be freed before the caller lets go of it. Problems go to c. */
struct js_doc *js_doc_compile(struct js_cctx *c, const json_t *schema, const char *origin,
                              bool keep);
void js_doc_free(struct js_doc *d);

/* The schema a JSON pointer names below n, followed through the compiled
 * tree, so that the target is always a compiled schema: NULL for a pointer
 * into a non-schema value. */
struct js_node *js_node_at(struct js_node *n, const char *pointer);

/* Makes room for `need` elements of `size` bytes in *v (capacity *cap). */
bool js_grow(void **v, size_t *cap, size_t need, size_t size);

/* ---- validating (jsonschema_validate.c) ---- */

/* Validates instance against root; reports every problem, returns how many. */
int js_run(const struct js_node *root, const json_t *instance, js_report_fn report, void *ud);

/* ---- values as the specification sees them (jsonschema_value.c) ---- */

/* True for an integer, or a real with no fraction (1.0 is an integer). */
bool js_is_integral(const json_t *x);
/* Compares two numbers exactly, integers beyond 2^53 included: -1, 0, 1. */
int js_num_cmp(const json_t *a, const json_t *b);
/* JSON equality as the specification defines it: 1 and 1.0 are equal,
 * which json_equal() does not consider. */
bool js_equal(const json_t *a, const json_t *b);
/* The shortest form of a number that reads back as the same value. */
void js_fmt_number(const json_t *x, char *buf, size_t len);
/* x as JSON on one line, cut with "..." after a few dozen code points, for
 * quoting in a message. */
void js_fmt_value(const json_t *x, char *buf, size_t len);

#endif
