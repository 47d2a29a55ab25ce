#include "script.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "file.h"

enum {
	MAX_SCRIPT_BYTES = 1 << 20, /* a routing script or module larger than this is a mistake */
};

/* What stat(2) says about a file, through symlinks: a ConfigMap swap changes
 * the inode even when size and mtime happen to match. */
struct file_id {
	bool present;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct module_src {
	char *name;
	char *path;
	char *source; /* NULL: looked for while checking, but missing */
	size_t len;
	struct file_id id;
};

/* Immutable once shared: the modules are added only while the script is
 * checked, before any worker sees it. */
struct script {
	atomic_int refs;
	char *path;
	char *chunkname;
	char *dir;
	char *source;
	size_t len;
	struct file_id id;
	struct module_src *mods;
	size_t nmods;
};

struct watched {
	char *path;
	struct file_id id;
};

struct script_watch {
	struct watched *files;
	size_t n;
};

/* ---- file identity and reading ---- */

static struct file_id id_of_stat(const struct stat *st)
{
	struct file_id id = {
	    .present = true,
	    .dev = st->st_dev,
	    .ino = st->st_ino,
	    .size = st->st_size,
	    .mtime = st->st_mtim,
	};
	return id;
}

static struct file_id stat_id(const char *path)
{
	struct stat st;
	struct file_id none = {.present = false};
	if (stat(path, &st) != 0)
		return none;
	return id_of_stat(&st);
}

static bool same_id(const struct file_id *a, const struct file_id *b)
{
	if (a->present != b->present)
		return false;
	if (!a->present)
		return true;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Reads a whole file through one descriptor, so that the identity recorded
 * for the watch is the identity of the bytes read. */
static int read_file(const char *path, char **out, size_t *outlen, struct file_id *id, char *err,
                     size_t errlen)
{
	struct stat st;
	char why[128];
	enum file_result r = file_read(path, MAX_SCRIPT_BYTES, out, outlen, &st, why, sizeof(why));
	if (r != FILE_READ) {
		snprintf(err, errlen, "%s: %s", path, r == FILE_ABSENT ? strerror(ENOENT) : why);
		return -1;
	}
	*id = id_of_stat(&st);
	return 0;
}

/* ---- the snapshot ---- */

void script_unref(struct script *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	for (size_t i = 0; i < s->nmods; i++) {
		free(s->mods[i].name);
		free(s->mods[i].path);
		free(s->mods[i].source);
	}
	free(s->mods);
	free(s->path);
	free(s->chunkname);
	free(s->dir);
	free(s->source);
	free(s);
}

struct script *script_ref(struct script *s)
{
	if (s)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

struct script *script_read(const char *path, char *err, size_t errlen)
{
	struct script *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->path = strdup(path);
	s->chunkname = malloc(strlen(path) + 2);
	const char *slash = strrchr(path, '/');
	if (!slash)
		s->dir = strdup(".");
	else if (slash == path)
		s->dir = strdup("/");
	else
		s->dir = strndup(path, (size_t)(slash - path));
	if (!s->path || !s->chunkname || !s->dir) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	/* "@" makes Lua name the file in messages: "path:line: why". */
	s->chunkname[0] = '@';
	strcpy(s->chunkname + 1, path);
	if (read_file(path, &s->source, &s->len, &s->id, err, errlen) != 0)
		goto fail;
	return s;
fail:
	script_unref(s);
	return NULL;
}

struct sandbox_chunk script_chunk(const struct script *s)
{
	struct sandbox_chunk c = {
	    .path = s->path, .chunkname = s->chunkname, .text = s->source, .len = s->len};
	return c;
}

/* ---- modules ---- */

static bool valid_module_name(const char *name)
{
	if (!*name || name[0] == '.')
		return false;
	for (const char *p = name; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		          (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.';
		if (!ok || (p[0] == '.' && p[1] == '.'))
			return false;
	}
	return name[strlen(name) - 1] != '.';
}

/* The file of module name in the script's directory; false with why when
 * the name cannot be one. */
static bool module_path(const struct script *s, const char *name, char *path, size_t pathlen,
                        char *why, size_t whylen)
{
	if (!valid_module_name(name)) {
		snprintf(why, whylen, "no module name '%s' allowed in the script directory", name);
		return false;
	}
	int n = snprintf(path, pathlen, "%s/%s.lua", s->dir, name);
	if (n < 0 || (size_t)n >= pathlen) {
		snprintf(why, whylen, "module path for '%s' too long", name);
		return false;
	}
	/* "a.b" lives in "a/b.lua"; the prefix (the directory) has no dots
	 * to replace because only the part after it comes from name. */
	for (char *p = path + strlen(s->dir) + 1; *p; p++)
		if (*p == '.' && strcmp(p, ".lua") != 0)
			*p = '/';
	return true;
}

static const struct module_src *recorded(const struct script *s, const char *name)
{
	for (size_t i = 0; i < s->nmods; i++)
		if (s->mods[i].source && strcmp(s->mods[i].name, name) == 0)
			return &s->mods[i];
	return NULL;
}

/* Takes ownership of source (which may be NULL for a missing file). */
static int add_module(struct script *s, const char *name, const char *path, char *source,
                      size_t len, struct file_id id)
{
	struct module_src *mods = realloc(s->mods, (s->nmods + 1) * sizeof(*mods));
	if (!mods)
		goto fail;
	s->mods = mods;
	struct module_src *m = &mods[s->nmods];
	m->name = strdup(name);
	m->path = strdup(path);
	m->source = source;
	m->len = len;
	m->id = id;
	if (!m->name || !m->path) {
		free(m->name);
		free(m->path);
		goto fail;
	}
	s->nmods++;
	return 0;
fail:
	free(source);
	return -1;
}

static int out_of_memory(const char *name, char *why, size_t whylen)
{
	snprintf(why, whylen, "out of memory recording module '%s'", name);
	return -1;
}

/* sandbox_find_fn while checking: the text read now is kept in the script
 * and is the text the sandbox compiles. */
static int find_checking(void *ud, const char *name, struct sandbox_module *m, char *why,
                         size_t whylen)
{
	struct script *s = ud;
	if (!module_path(s, name, m->path, sizeof(m->path), why, whylen))
		return 0;
	const struct module_src *src = recorded(s, name);
	if (!src) {
		char *text = NULL;
		size_t len = 0;
		struct file_id id = {.present = false};
		if (read_file(m->path, &text, &len, &id, why, whylen) != 0)
			return add_module(s, name, m->path, NULL, 0, id) == 0
			           ? 0
			           : out_of_memory(name, why, whylen);
		if (add_module(s, name, m->path, text, len, id) != 0)
			return out_of_memory(name, why, whylen);
		src = &s->mods[s->nmods - 1];
	}
	m->text = src->source;
	m->len = src->len;
	return 1;
}

/* sandbox_find_fn for a worker: s is shared, so it is only read. */
static int find_serving(void *ud, const char *name, struct sandbox_module *m, char *why,
                        size_t whylen)
{
	const struct script *s = ud;
	if (!module_path(s, name, m->path, sizeof(m->path), why, whylen))
		return 0;
	const struct module_src *src = recorded(s, name);
	if (src) {
		m->text = src->source;
		m->len = src->len;
		return 1;
	}
	char *text;
	struct file_id id;
	if (read_file(m->path, &text, &m->len, &id, why, whylen) != 0)
		return 0;
	m->text = m->owned = text;
	return 1;
}

struct sandbox_loader script_checking_loader(struct script *s)
{
	struct sandbox_loader l = {.find = find_checking, .ud = s};
	return l;
}

struct sandbox_loader script_serving_loader(const struct script *s)
{
	/* find_serving never writes through ud */
	struct sandbox_loader l = {.find = find_serving, .ud = (void *)s};
	return l;
}

/* ---- the watch ---- */

struct script_watch *script_watch_new(const char *path, const struct script *s)
{
	struct script_watch *w = calloc(1, sizeof(*w));
	size_t n = 1 + (s ? s->nmods : 0);
	struct watched *files = w ? calloc(n, sizeof(*files)) : NULL;
	char *first = files ? strdup(path) : NULL;
	if (!first) {
		free(files);
		free(w);
		return NULL;
	}
	files[0].path = first;
	files[0].id = s ? s->id : stat_id(path);
	size_t k = 1;
	for (size_t i = 0; s && i < s->nmods; i++) {
		files[k].path = strdup(s->mods[i].path);
		files[k].id = s->mods[i].id;
		if (files[k].path)
			k++;
	}
	w->files = files;
	w->n = k;
	return w;
}

bool script_watch_changed(const struct script_watch *w)
{
	for (size_t i = 0; w && i < w->n; i++) {
		struct file_id now = stat_id(w->files[i].path);
		if (!same_id(&now, &w->files[i].id))
			return true;
	}
	return false;
}

void script_watch_free(struct script_watch *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n; i++)
		free(w->files[i].path);
	free(w->files);
	free(w);
}
