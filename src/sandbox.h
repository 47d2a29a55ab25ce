/* sandbox: one sandboxed lua_State running a routing script: under the
 * memory cap and the CPU budget (lualimits.h), tracebacks, the
 * libraries the contract allows (scripts/README.md), the chunk run once and
 * its route function called per request. Where `require` finds a module of
 * the script's own is the owner's business, through a sandbox_loader. A
 * sandbox belongs to one thread at a time. */
#ifndef GCS_SANDBOX_H
#define GCS_SANDBOX_H

#include <stddef.h>

#include "route.h"

/* How a call failed, in the order of the gcs_routing_errors_total labels. */
enum sandbox_fail {
	SANDBOX_OK = -1,
	SANDBOX_ERROR,  /* the script raised an error */
	SANDBOX_BUDGET, /* the instruction budget ran out */
	SANDBOX_MEMORY, /* the memory cap was reached */
	SANDBOX_RESULT, /* route returned something the contract does not allow */
	SANDBOX_FAILS,
};

/* The metric label of a failure kind: "error", "budget", "memory", "result". */
const char *sandbox_fail_name(enum sandbox_fail kind);

/* A module's text, as a loader hands it over. */
struct sandbox_module {
	char path[4096]; /* the file, for messages and the chunk name */
	const char *text;
	size_t len;
	char *owned; /* when set, text was allocated for this load: the sandbox frees it */
};

/* Finds module name for require. Returns 1 with m filled; 0 when there is
 * no such module (why says where it looked); -1 when require must fail with
 * why (out of memory). m->owned is set only when 1 is returned. */
typedef int (*sandbox_find_fn)(void *ud, const char *name, struct sandbox_module *m, char *why,
                               size_t whylen);

struct sandbox_loader {
	sandbox_find_fn find;
	void *ud;
};

/* The script's main chunk. Every pointer is borrowed and must outlive the
 * sandbox (the loader's ud too: route may require a module late). */
struct sandbox_chunk {
	const char *path;      /* names the script in messages */
	const char *chunkname; /* "@" path, so Lua's messages read "path:line: why" */
	const char *text;
	size_t len;
};

/* What route receives as its second argument. */
struct sandbox_context {
	const char *stable_version;
	const char *canary_version; /* NULL: "none" */
	const char *app_name;
	const char *environment;
	struct unleash_features *features; /* NULL: context.unleash is nil */
	const char *feature_name;          /* the one context.unleash holds */
};

struct sandbox;
struct unleash_usage;

/* The CPU time one call of route (and one chunk run) may use, for every
 * sandbox of the process (GCS_ROUTING_BUDGET_MS); no limit until set. */
void sandbox_set_budget(long ms);

/* Creates the state and runs the chunk, which must return a table with a
 * function route. usage (NULL: nowhere) counts each evaluation of
 * context.unleash by unleash.is_enabled; the caller owns it for as long as
 * the sandbox lives. On failure *out is NULL and err says why. */
enum sandbox_fail sandbox_new(struct sandbox **out, const struct sandbox_chunk *chunk,
                              const struct sandbox_loader *loader, struct unleash_usage *usage,
                              char *err, size_t errlen);
void sandbox_free(struct sandbox *sb);

/* Builds the context every following call receives. */
enum sandbox_fail sandbox_set_context(struct sandbox *sb, const struct sandbox_context *ctx,
                                      char *err, size_t errlen);

/* One call of route(request, context), its result checked. */
enum sandbox_fail sandbox_call(struct sandbox *sb, const struct route_request *req,
                               enum gcs_channel *channel, char *reason, size_t reasonlen, char *err,
                               size_t errlen);

/* Checks the module's own examples (scripts/README.md): each example's
 * context over the current one, without the Unleash toggle unless the
 * example gives one. Returns 0, or -1 with the first mismatch in err. */
int sandbox_check_examples(struct sandbox *sb, char *err, size_t errlen);

#endif
