/* script: the routing script and the modules it requires, as files: read
 * whole through one descriptor, kept with their identity (what stat(2) says
 * through symlinks: device, inode, size, mtime), shared by the workers as an
 * immutable, refcounted snapshot, and watched for a change. */
#ifndef GCS_SCRIPT_H
#define GCS_SCRIPT_H

#include <stdbool.h>
#include <stddef.h>

#include "sandbox.h"

struct script;

/* Reads the script at path; NULL with "path: why" in err. */
struct script *script_read(const char *path, char *err, size_t errlen);
struct script *script_ref(struct script *s);
void script_unref(struct script *s);

/* The main chunk for a sandbox; its pointers live as long as s. */
struct sandbox_chunk script_chunk(const struct script *s);

/* Where require finds the script's own modules ("a.b" is <dir>/a/b.lua).
 * Checking: from disk, each module (found or not) kept in s, which must not
 * be shared yet. Serving: the text kept while s was checked; a module the
 * check never required is read from disk, and is not part of s. */
struct sandbox_loader script_checking_loader(struct script *s);
struct sandbox_loader script_serving_loader(const struct script *s);

/* The files one load attempt read, with the identity each had then: the
 * script (s NULL: path could not be read, so its identity now) and the
 * modules its check looked for. NULL when out of memory: nothing is watched
 * and only a reload by signal notices a change. */
struct script_watch;
struct script_watch *script_watch_new(const char *path, const struct script *s);
/* Whether any of those files differs now (appeared, went, was replaced);
 * false for NULL. */
bool script_watch_changed(const struct script_watch *w);
void script_watch_free(struct script_watch *w);

#endif
