/* jsonschema: JSON Schema 2020-12 validation for the keywords the contract
 * schemas use. A schema with any other keyword is refused when it is added,
 * never silently ignored. */
#ifndef GCS_JSONSCHEMA_H
#define GCS_JSONSCHEMA_H

#include <jansson.h>
#include <stdbool.h>

/* Called once per problem: pointer is the JSON pointer (RFC 6901) into the
 * instance (or into the schema when adding one), message says the rule
 * broken, e.g. "5000 is greater than the maximum 4096". */
typedef void (*js_report_fn)(void *ud, const char *pointer, const char *message);

struct js_registry;

struct js_registry *js_registry_new(void);
void js_registry_free(struct js_registry *reg);

/* Adds one schema (the registry takes a reference). Checks every keyword,
 * compiles every pattern. Returns the number of problems reported (0 = ok). */
int js_registry_add(struct js_registry *reg, json_t *schema, const char *origin,
                    js_report_fn report, void *ud);
/* Adds every *.json in dir; then checks that every $ref resolves. */
int js_registry_load_dir(struct js_registry *reg, const char *dir, js_report_fn report, void *ud);

/* True if the keyword is implemented (for the official test-suite runner). */
bool js_keyword_supported(const char *keyword);

/* Validates instance against the schema registered under id. Reports every
 * problem found; returns how many. */
int js_validate(const struct js_registry *reg, const char *id, const json_t *instance,
                js_report_fn report, void *ud);
/* Same with a schema value that need not be registered (it may $ref
 * registered ones). */
int js_validate_with(const struct js_registry *reg, const json_t *schema, const json_t *instance,
                     js_report_fn report, void *ud);

#endif
