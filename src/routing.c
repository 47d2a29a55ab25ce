#include "routing.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lua-cjson.h>

#include "toggles.h"
#include "log.h"
#include "luagcs.h"
#include "metrics.h"

/* lua-cjson's header names only the main entry point. */
extern int luaopen_cjson_safe(lua_State *L);

enum {
	MEMORY_LIMIT = 32 << 20,      /* bytes per lua_State */
	INSTRUCTION_BUDGET = 1000000, /* VM instructions per call of route (and per chunk run) */
	HOOK_EVERY = 1000,            /* instructions between two budget checks */
	MAX_SCRIPT_BYTES = 1 << 20,   /* a routing script or module larger than this is a mistake */
	FAIL_LOG_EVERY_S = 10,        /* at most one failure line per kind in this many seconds */
	ERR_MAX = 4096,               /* internal error text, traceback included */
};

/* Failure kinds, in the order of the metric labels. */
enum fail_kind { FAIL_NONE = -1, FAIL_ERROR, FAIL_BUDGET, FAIL_MEMORY, FAIL_RESULT, FAIL_KINDS };
static const char *const fail_names[FAIL_KINDS] = {"error", "budget", "memory", "result"};

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

/* An immutable, checked script and the modules it required while being
 * checked, shared by the workers built from it. */
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

/* Per lua_State limits; the allocator's userdata, so the hook finds it too. */
struct limits {
	size_t used;
	long steps;
	bool over_budget;
	bool over_memory;
};

struct lstate {
	lua_State *L;
	struct limits lim;
	struct script *script; /* borrowed from the owner of the lstate */
	bool record;           /* checking: modules come from disk and are added to script */
	int route_ref;
	int module_ref;
	int ctx_ref;
	struct luagcs_decision decision; /* what the last call made of the toggle */
};

struct worker {
	struct worker *next;
	struct lstate st;
	struct script *script; /* owned reference: what st was built from */
	uint64_t seen_gen;
	uint64_t unleash_gen;
};

struct watched {
	char *path;
	struct file_id id;
};

struct fail_log {
	bool logged;
	struct timespec last;
	unsigned long suppressed;
};

struct routing {
	char *script_path;
	char *stable_version;
	char *canary_version;
	char *app_name;
	char *environment;
	char *toggle_name;
	double reload_interval;
	pthread_key_t worker_key;
	bool key_created;

	/* Guards script, features, unleash_gen and workers; generation is
	 * only raised under it, so a worker that reads it under the lock sees
	 * a consistent pair. */
	pthread_mutex_t mu;
	struct script *script;
	struct toggles *features;
	uint64_t unleash_gen;
	struct worker *workers;
	_Atomic uint64_t generation;

	/* One reload at a time; guards the watch list. */
	pthread_mutex_t reload_mu;
	struct watched *watch;
	size_t nwatch;

	pthread_mutex_t watch_mu;
	pthread_cond_t watch_cond;
	bool watch_stop;
	bool watch_running;
	pthread_t watch_thread;

	pthread_mutex_t fail_mu;
	struct fail_log fails[FAIL_KINDS];
};

/* ---- small helpers ---- */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static bool dup_failed(const char *src, const char *copy)
{
	return src && !copy;
}

static void first_line(char *dst, size_t dstlen, const char *src)
{
	size_t n = strcspn(src, "\n");
	if (dstlen == 0)
		return;
	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

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
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_size > MAX_SCRIPT_BYTES) {
		snprintf(err, errlen, "%s: larger than %d bytes", path, MAX_SCRIPT_BYTES);
		close(fd);
		return -1;
	}
	size_t cap = (size_t)st.st_size + 1;
	char *buf = malloc(cap);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return -1;
	}
	size_t len = 0;
	for (;;) {
		if (len == cap - 1) {
			/* the file grew while we read it: read no more than the cap */
			if (cap > MAX_SCRIPT_BYTES) {
				snprintf(err, errlen, "%s: larger than %d bytes", path,
				         MAX_SCRIPT_BYTES);
				free(buf);
				close(fd);
				return -1;
			}
			char *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				snprintf(err, errlen, "%s: out of memory", path);
				free(buf);
				close(fd);
				return -1;
			}
			buf = bigger;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			free(buf);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	*id = id_of_stat(&st);
	return 0;
}

/* ---- scripts (refcounted snapshots) ---- */

static void script_unref(struct script *s)
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

static struct script *script_ref(struct script *s)
{
	if (s)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

static struct script *script_read(const char *path, char *err, size_t errlen)
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
		script_unref(s);
		return NULL;
	}
	/* "@" makes Lua name the file in messages: "path:line: why". */
	s->chunkname[0] = '@';
	strcpy(s->chunkname + 1, path);
	if (read_file(path, &s->source, &s->len, &s->id, err, errlen) != 0) {
		script_unref(s);
		return NULL;
	}
	return s;
}

static const struct module_src *script_module(const struct script *s, const char *name)
{
	for (size_t i = 0; i < s->nmods; i++)
		if (s->mods[i].source && strcmp(s->mods[i].name, name) == 0)
			return &s->mods[i];
	return NULL;
}

/* Takes ownership of source (which may be NULL for a missing file). */
static int script_add_module(struct script *s, const char *name, const char *path, char *source,
                             size_t len, struct file_id id)
{
	struct module_src *mods = realloc(s->mods, (s->nmods + 1) * sizeof(*mods));
	if (!mods) {
		free(source);
		return -1;
	}
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
		free(source);
		return -1;
	}
	s->nmods++;
	return 0;
}

/* ---- containment: allocator and instruction budget ---- */

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct limits *lim = ud;
	/* With ptr NULL, osize tells the object type, not a size. */
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		free(ptr);
		lim->used -= old;
		return NULL;
	}
	if (nsize > old && nsize - old > (size_t)MEMORY_LIMIT - lim->used) {
		/* Sticky: the call fails even if an emergency collection lets
		 * Lua retry successfully, so a script near the cap fails the
		 * same way every time. */
		lim->over_memory = true;
		return NULL;
	}
	void *p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	lim->used = lim->used - old + nsize;
	return p;
}

static struct limits *limits_of(lua_State *L)
{
	void *ud;
	lua_getallocf(L, &ud);
	return ud;
}

/* Once a limit is crossed the hook fires on every instruction and raises
 * every time: a pcall in the script may catch one error, but the next
 * instruction after it raises again, until the error leaves the script. */
static void budget_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	struct limits *lim = limits_of(L);
	lim->steps += HOOK_EVERY;
	if (lim->steps > INSTRUCTION_BUDGET)
		lim->over_budget = true;
	if (!lim->over_budget && !lim->over_memory)
		return;
	lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
	luaL_where(L, 0);
	if (lim->over_budget)
		lua_pushfstring(L, "instruction budget of %d exceeded", (int)INSTRUCTION_BUDGET);
	else
		lua_pushfstring(L, "memory limit of %d MiB exceeded", (int)(MEMORY_LIMIT >> 20));
	lua_concat(L, 2);
	lua_error(L);
}

static void limits_reset(lua_State *L)
{
	struct limits *lim = limits_of(L);
	lim->steps = 0;
	lim->over_budget = false;
	lim->over_memory = false;
	lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_EVERY);
}

static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (!msg) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	luaL_traceback(L, L, msg, 1);
	return 1;
}

static enum fail_kind classify(lua_State *L, int status, bool bad_result)
{
	struct limits *lim = limits_of(L);
	if (lim->over_budget)
		return FAIL_BUDGET;
	if (lim->over_memory || status == LUA_ERRMEM)
		return FAIL_MEMORY;
	if (status == LUA_OK)
		return FAIL_NONE;
	return bad_result ? FAIL_RESULT : FAIL_ERROR;
}

static void copy_error(lua_State *L, int idx, char *err, size_t errlen)
{
	const char *msg = lua_tostring(L, idx);
	snprintf(err, errlen, "%s", msg ? msg : "(error object is not a string)");
}

/* ---- sandbox ---- */

static int sandbox_print(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	log_msg(LOGL_INFO, lua_tostring(L, -1), "source", "routing script", NULL);
	return 0;
}

/* load() that never accepts precompiled chunks: bytecode can break the VM. */
static int sandbox_load(lua_State *L)
{
	bool has_env = lua_gettop(L) >= 4;
	lua_settop(L, 4);
	int n = 4;
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_pushliteral(L, "t");
	if (has_env)
		lua_pushvalue(L, 4);
	lua_call(L, has_env ? 4 : 3, LUA_MULTRET);
	return lua_gettop(L) - n;
}

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

/* package.searchers entry: modules come only from the script's directory.
 * While a script is checked they are read from disk and kept with it; a
 * worker then loads the very same text. */
static int script_searcher(lua_State *L)
{
	struct lstate *st = lua_touserdata(L, lua_upvalueindex(1));
	const char *name = luaL_checkstring(L, 1);
	if (!valid_module_name(name)) {
		lua_pushfstring(L, "no module name '%s' allowed in the script directory", name);
		return 1;
	}
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%s.lua", st->script->dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		lua_pushfstring(L, "module path for '%s' too long", name);
		return 1;
	}
	/* "a.b" lives in "a/b.lua"; the prefix (the directory) has no dots
	 * to replace because only the part after it comes from name. */
	for (char *p = path + strlen(st->script->dir) + 1; *p; p++)
		if (*p == '.' && strcmp(p, ".lua") != 0)
			*p = '/';

	const struct module_src *m = script_module(st->script, name);
	char *source = NULL;
	size_t len = 0;
	const char *text;
	if (m) {
		text = m->source;
		len = m->len;
	} else {
		char err[512];
		struct file_id id = {.present = false};
		if (read_file(path, &source, &len, &id, err, sizeof(err)) != 0) {
			if (st->record &&
			    script_add_module(st->script, name, path, NULL, 0, id) != 0)
				return luaL_error(L, "out of memory recording module '%s'", name);
			lua_pushfstring(L, "%s", err);
			return 1;
		}
		text = source;
		if (st->record) {
			if (script_add_module(st->script, name, path, source, len, id) != 0)
				return luaL_error(L, "out of memory recording module '%s'", name);
			source = NULL; /* now owned by the script */
			text = script_module(st->script, name)->source;
		}
	}
	lua_pushfstring(L, "@%s", path);
	int status = luaL_loadbufferx(L, text, len, lua_tostring(L, -1), "t");
	free(source);
	if (status != LUA_OK)
		return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, path,
		                  lua_tostring(L, -1));
	lua_pushstring(L, path);
	return 2;
}

static void preload(lua_State *L, const char *name, lua_CFunction open)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_pushcfunction(L, open);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
}

static void open_lib(lua_State *L, const char *name, lua_CFunction open)
{
	luaL_requiref(L, name, open, 1);
	lua_pop(L, 1);
}

/* Runs protected (memory errors): arg 1 is the lstate. */
static int open_sandbox(lua_State *L)
{
	struct lstate *st = lua_touserdata(L, 1);

	open_lib(L, LUA_GNAME, luaopen_base);
	open_lib(L, LUA_LOADLIBNAME, luaopen_package);
	open_lib(L, LUA_STRLIBNAME, luaopen_string);
	open_lib(L, LUA_TABLIBNAME, luaopen_table);
	open_lib(L, LUA_MATHLIBNAME, luaopen_math);
	open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);

	/* os: only the clocks. */
	luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
	lua_createtable(L, 0, 2);
	lua_getfield(L, -2, "time");
	lua_setfield(L, -2, "time");
	lua_getfield(L, -2, "clock");
	lua_setfield(L, -2, "clock");
	lua_pushvalue(L, -1);
	lua_setglobal(L, LUA_OSLIBNAME);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	lua_insert(L, -2);
	lua_setfield(L, -2, LUA_OSLIBNAME);
	lua_pop(L, 2);

	lua_pushglobaltable(L);
	lua_pushnil(L);
	lua_setfield(L, -2, "dofile");
	lua_pushnil(L);
	lua_setfield(L, -2, "loadfile");
	lua_getfield(L, -1, "load");
	lua_pushcclosure(L, sandbox_load, 1);
	lua_setfield(L, -2, "load");
	lua_pushcfunction(L, sandbox_print);
	lua_setfield(L, -2, "print");
	lua_pop(L, 1);

	lua_getglobal(L, LUA_LOADLIBNAME);
	lua_pushnil(L);
	lua_setfield(L, -2, "loadlib");
	lua_pushnil(L);
	lua_setfield(L, -2, "searchpath");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "path");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "cpath");
	lua_createtable(L, 2, 0);
	lua_getfield(L, -2, "searchers");
	lua_rawgeti(L, -1, 1); /* the preload searcher */
	lua_rawseti(L, -3, 1);
	lua_pop(L, 1);
	lua_pushlightuserdata(L, st);
	lua_pushcclosure(L, script_searcher, 1);
	lua_rawseti(L, -2, 2);
	lua_setfield(L, -2, "searchers");
	lua_pop(L, 1);

	luagcs_preload(L, &st->decision);
	preload(L, "cjson", luaopen_cjson);
	preload(L, "cjson.safe", luaopen_cjson_safe);
	return 0;
}

/* Runs protected: the chunk's result is arg 1. */
static int check_module(lua_State *L)
{
	struct lstate *st = lua_touserdata(L, lua_upvalueindex(1));
	if (!lua_istable(L, 1))
		return luaL_error(L, "%s: must return a table with a function route, returned %s",
		                  st->script->path, luaL_typename(L, 1));
	if (lua_getfield(L, 1, "route") != LUA_TFUNCTION)
		return luaL_error(L, "%s: the returned table has no function route (route is %s)",
		                  st->script->path, luaL_typename(L, -1));
	st->route_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, 1);
	st->module_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

static void lstate_close(struct lstate *st)
{
	if (st->L)
		lua_close(st->L);
	st->L = NULL;
}

/* Creates the sandboxed state and runs the script's chunk in it. */
static enum fail_kind lstate_build(struct lstate *st, struct script *script, bool record, char *err,
                                   size_t errlen)
{
	memset(st, 0, sizeof(*st));
	st->script = script;
	st->record = record;
	st->route_ref = st->module_ref = st->ctx_ref = LUA_NOREF;
	lua_State *L = lua_newstate(limited_alloc, &st->lim);
	if (!L) {
		snprintf(err, errlen, "%s: cannot create a Lua state", script->path);
		return FAIL_MEMORY;
	}
	st->L = L;
	/* Each call leaves a little young garbage (the request table, the
	 * strings a script builds): the generational collector suits that. */
	lua_gc(L, LUA_GCGEN, 0, 0);
	limits_reset(L);

	lua_pushcfunction(L, open_sandbox);
	lua_pushlightuserdata(L, st);
	int status = lua_pcall(L, 1, 0, 0);
	enum fail_kind kind = classify(L, status, false);
	if (kind != FAIL_NONE) {
		copy_error(L, -1, err, errlen);
		lstate_close(st);
		return kind;
	}

	lua_pushcfunction(L, traceback);
	status = luaL_loadbufferx(L, script->source, script->len, script->chunkname, "t");
	if (status != LUA_OK) {
		/* a syntax error: the message already reads "path:line: why" */
		kind = classify(L, status, false);
		copy_error(L, -1, err, errlen);
		lstate_close(st);
		return kind == FAIL_NONE ? FAIL_ERROR : kind;
	}
	status = lua_pcall(L, 0, 1, 1);
	kind = classify(L, status, false);
	if (kind != FAIL_NONE) {
		copy_error(L, -1, err, errlen);
		lstate_close(st);
		return kind;
	}
	lua_pushlightuserdata(L, st);
	lua_pushcclosure(L, check_module, 1);
	lua_insert(L, -2);
	status = lua_pcall(L, 1, 0, 1);
	kind = classify(L, status, false);
	if (kind != FAIL_NONE) {
		copy_error(L, -1, err, errlen);
		lstate_close(st);
		return kind;
	}
	lua_settop(L, 0);
	return FAIL_NONE;
}

/* ---- context and calls ---- */

struct ctx_args {
	struct lstate *st;
	const struct routing *r;
	struct toggles *features;
};

static void set_string_field(lua_State *L, const char *key, const char *value)
{
	if (!value)
		return;
	lua_pushstring(L, value);
	lua_setfield(L, -2, key);
}

/* Runs protected: builds the context table for one generation. */
static int build_context(lua_State *L)
{
	struct ctx_args *a = lua_touserdata(L, 1);
	const struct routing *r = a->r;
	lua_createtable(L, 0, 5);
	set_string_field(L, "stable_version", r->stable_version);
	set_string_field(L, "canary_version", r->canary_version ? r->canary_version : "none");
	set_string_field(L, "app_name", r->app_name);
	set_string_field(L, "environment", r->environment);
	if (a->features) {
		luagcs_push_toggle(L, a->features, r->toggle_name, true);
		lua_setfield(L, -2, "unleash");
	}
	luaL_unref(L, LUA_REGISTRYINDEX, a->st->ctx_ref);
	a->st->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	return 0;
}

static enum fail_kind lstate_set_context(struct lstate *st, const struct routing *r,
                                         struct toggles *features, char *err, size_t errlen)
{
	lua_State *L = st->L;
	struct ctx_args a = {.st = st, .r = r, .features = features};
	limits_reset(L);
	lua_pushcfunction(L, build_context);
	lua_pushlightuserdata(L, &a);
	int status = lua_pcall(L, 1, 0, 0);
	enum fail_kind kind = classify(L, status, false);
	if (kind != FAIL_NONE)
		copy_error(L, -1, err, errlen);
	lua_settop(L, 0);
	return kind;
}

struct call_args {
	struct lstate *st;
	const struct route_request *req; /* NULL: request and context are args 2 and 3 */
	enum gcs_channel channel;
	char *reason;
	size_t reasonlen;
	bool bad_result;
};

static void push_request(lua_State *L, const struct route_request *req)
{
	lua_createtable(L, 0, 5);
	set_string_field(L, "cluster_id", req->cluster_id);
	set_string_field(L, "api", req->api);
	set_string_field(L, "ocp_version", req->ocp_version);
	set_string_field(L, "user_agent", req->user_agent);
	set_string_field(L, "remote_addr", req->remote_addr);
}

/* "file:line:" of the route function's definition: a bad result has no
 * line of its own to blame. */
static const char *route_where(lua_State *L, int route_ref)
{
	lua_Debug ar;
	lua_rawgeti(L, LUA_REGISTRYINDEX, route_ref);
	if (!lua_getinfo(L, ">S", &ar) || ar.linedefined <= 0)
		return lua_pushliteral(L, "");
	return lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.linedefined);
}

static const char *describe_value(lua_State *L, int idx)
{
	if (lua_type(L, idx) == LUA_TSTRING)
		return lua_pushfstring(L, "the string \"%s\"", lua_tostring(L, idx));
	return lua_pushfstring(L, "a %s value", luaL_typename(L, idx));
}

/* Runs protected with the traceback handler: one call of route, its result
 * checked. Everything that allocates happens in here. */
static int call_glue(lua_State *L)
{
	struct call_args *a = lua_touserdata(L, 1);
	lua_rawgeti(L, LUA_REGISTRYINDEX, a->st->route_ref);
	if (a->req) {
		push_request(L, a->req);
		lua_rawgeti(L, LUA_REGISTRYINDEX, a->st->ctx_ref);
	} else {
		lua_pushvalue(L, 2);
		lua_pushvalue(L, 3);
	}
	lua_call(L, 2, 2);
	int ch = lua_absindex(L, -2);
	int why = lua_absindex(L, -1);
	const char *text = lua_type(L, ch) == LUA_TSTRING ? lua_tostring(L, ch) : NULL;
	if (text && strcmp(text, "stable") == 0) {
		a->channel = GCS_STABLE;
	} else if (text && strcmp(text, "canary") == 0) {
		a->channel = GCS_CANARY;
	} else {
		a->bad_result = true;
		return luaL_error(L, "%sroute returned %s, not \"stable\" or \"canary\"",
		                  route_where(L, a->st->route_ref), describe_value(L, ch));
	}
	if (!lua_isnil(L, why) && lua_type(L, why) != LUA_TSTRING) {
		a->bad_result = true;
		return luaL_error(L, "%sroute returned %s as the reason, not a string",
		                  route_where(L, a->st->route_ref), describe_value(L, why));
	}
	if (a->reasonlen > 0) {
		size_t n = 0;
		const char *reason = lua_isnil(L, why) ? "" : lua_tolstring(L, why, &n);
		if (n >= a->reasonlen)
			n = a->reasonlen - 1;
		memcpy(a->reason, reason, n);
		a->reason[n] = '\0';
	}
	return 0;
}

/* Calls route; with req NULL the request and context are the values at
 * req_idx and ctx_idx. */
static enum fail_kind lstate_call(struct lstate *st, const struct route_request *req, int req_idx,
                                  int ctx_idx, enum gcs_channel *channel, char *reason,
                                  size_t reasonlen, char *err, size_t errlen)
{
	lua_State *L = st->L;
	if (!lua_checkstack(L, 8)) {
		snprintf(err, errlen, "%s: Lua stack exhausted", st->script->path);
		return FAIL_MEMORY;
	}
	int base = lua_gettop(L);
	struct call_args a = {
	    .st = st, .req = req, .channel = GCS_STABLE, .reason = reason, .reasonlen = reasonlen};
	limits_reset(L);
	lua_pushcfunction(L, traceback);
	lua_pushcfunction(L, call_glue);
	lua_pushlightuserdata(L, &a);
	if (!req) {
		lua_pushvalue(L, req_idx);
		lua_pushvalue(L, ctx_idx);
	}
	int status = lua_pcall(L, req ? 1 : 3, 0, base + 1);
	enum fail_kind kind = classify(L, status, a.bad_result);
	if (status == LUA_ERRMEM)
		/* Lua skips the message handler for memory errors: no traceback,
		 * and the stack is gone, so say at least which limit and where. */
		snprintf(err, errlen, "%s: memory limit of %d MiB exceeded", st->script->path,
		         (int)(MEMORY_LIMIT >> 20));
	else if (kind != FAIL_NONE)
		copy_error(L, -1, err, errlen);
	lua_settop(L, base);
	*channel = a.channel;
	return kind;
}

/* ---- checking a candidate script ---- */

static const char sample_cluster[] = "8a7bf9b2-0b8e-4ad3-a0f6-0c4d2c8e9f31";
static const struct route_request samples[] = {
    {NULL, "v1", NULL, "insights-operator/4.17.0", "127.0.0.1"},
    {sample_cluster, "v1", NULL,
     "insights-operator/4.17.0 cluster/8a7bf9b2-0b8e-4ad3-a0f6-0c4d2c8e9f31", "127.0.0.1"},
    {NULL, "v2", "4.17.0", "insights-operator/4.17.0", NULL},
    {sample_cluster, "v2", "4.17.0",
     "insights-operator/4.17.0 cluster/8a7bf9b2-0b8e-4ad3-a0f6-0c4d2c8e9f31", NULL},
};

/* A toggle shaped as the Unleash client API serves it: half of the
 * clusters in a flexible rollout. */
static struct toggles *sample_features(const char *name)
{
	json_t *t = json_pack("{s:[{s:s, s:s, s:b, s:b, s:b, s:s, s:[{s:s, s:[], s:{s:s, s:s, s:s}, "
	                      "s:[]}], s:[]}]}",
	                      "features", "name", name, "type", "release", "enabled", 1, "stale", 0,
	                      "impressionData", 0, "project", "default", "strategies", "name",
	                      "flexibleRollout", "constraints", "parameters", "rollout", "50",
	                      "stickiness", "default", "groupId", name, "variants", "variants");
	char *text = t ? json_dumps(t, JSON_COMPACT) : NULL;
	json_decref(t);
	char err[256];
	struct toggles *f = text ? toggles_parse(text, strlen(text), name, err, sizeof(err)) : NULL;
	free(text);
	return f;
}

struct examples_args {
	struct lstate *st;
};

static bool is_channel(const char *s)
{
	return s && (strcmp(s, "stable") == 0 || strcmp(s, "canary") == 0);
}

/* Runs protected: checks module.examples, a list of
 * {request = {...}, context = {...} or nil, expect = "stable"|"canary"}. */
static int check_examples(lua_State *L)
{
	struct examples_args *a = lua_touserdata(L, 1);
	struct lstate *st = a->st;
	const char *path = st->script->path;
	lua_rawgeti(L, LUA_REGISTRYINDEX, st->module_ref);
	int type = lua_getfield(L, -1, "examples");
	if (type == LUA_TNIL)
		return 0;
	if (type != LUA_TTABLE)
		return luaL_error(L, "%s: examples must be a list, not a %s", path,
		                  luaL_typename(L, -1));
	int examples = lua_gettop(L);
	lua_Integer n = luaL_len(L, examples);
	for (lua_Integer i = 1; i <= n; i++) {
		int top = lua_gettop(L);
		if (lua_geti(L, examples, i) != LUA_TTABLE)
			return luaL_error(L, "%s: examples[%d] must be a table", path, (int)i);
		int ex = lua_gettop(L);
		if (lua_getfield(L, ex, "request") != LUA_TTABLE)
			return luaL_error(L, "%s: examples[%d].request must be a table", path,
			                  (int)i);
		int req = lua_gettop(L);
		lua_getfield(L, ex, "expect");
		const char *expect = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
		if (!is_channel(expect))
			return luaL_error(
			    L, "%s: examples[%d].expect must be \"stable\" or \"canary\"", path,
			    (int)i);
		/* The example's context overrides the published fields; the
		 * toggle is nil unless the example gives one, so examples do not
		 * depend on the live Unleash state. */
		lua_newtable(L);
		int ctx = lua_gettop(L);
		lua_rawgeti(L, LUA_REGISTRYINDEX, st->ctx_ref);
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, ctx);
		}
		lua_pop(L, 1);
		lua_pushnil(L);
		lua_setfield(L, ctx, "unleash");
		type = lua_getfield(L, ex, "context");
		if (type == LUA_TTABLE) {
			lua_pushnil(L);
			while (lua_next(L, -2)) {
				lua_pushvalue(L, -2);
				lua_insert(L, -2);
				lua_rawset(L, ctx);
			}
		} else if (type != LUA_TNIL) {
			return luaL_error(L, "%s: examples[%d].context must be a table", path,
			                  (int)i);
		}
		lua_pop(L, 1);

		enum gcs_channel got;
		char reason[256];
		char err[1024];
		enum fail_kind kind =
		    lstate_call(st, NULL, req, ctx, &got, reason, sizeof(reason), err, sizeof(err));
		if (kind != FAIL_NONE)
			return luaL_error(L, "examples[%d]: %s", (int)i, err);
		const char *got_name = got == GCS_CANARY ? "canary" : "stable";
		if (strcmp(got_name, expect) != 0)
			return luaL_error(L,
			                  "%s: examples[%d]: expected %s, route returned %s (%s)",
			                  path, (int)i, expect, got_name, reason);
		lua_settop(L, top);
	}
	return 0;
}

static const char *describe_sample(const struct route_request *req, char *buf, size_t len)
{
	snprintf(buf, len, "sample request {cluster_id=%s, api=%s}",
	         req->cluster_id ? req->cluster_id : "nil", req->api);
	return buf;
}

/* Compiles and runs the script in a scratch state, calls route on the
 * samples under each toggle, checks the module's own examples. */
static int check_script(const struct routing *r, struct script *s, struct toggles *current,
                        char *err, size_t errlen)
{
	struct lstate st;
	char msg[ERR_MAX / 2]; /* leaves room in err for what was being checked */
	if (lstate_build(&st, s, true, msg, sizeof(msg)) != FAIL_NONE) {
		snprintf(err, errlen, "%s", msg);
		return -1;
	}
	struct toggles *sample = sample_features(r->toggle_name);
	struct toggles *toggles[] = {NULL, sample, current};
	const char *toggle_names[] = {"no Unleash toggle", "a 50% rollout toggle",
	                              "the current Unleash toggle"};
	int rc = 0;
	for (size_t t = 0; t < 3 && rc == 0; t++) {
		if (t > 0 && !toggles[t])
			continue;
		if (lstate_set_context(&st, r, toggles[t], msg, sizeof(msg)) != FAIL_NONE) {
			snprintf(err, errlen, "%s: building the context with %s: %s", s->path,
			         toggle_names[t], msg);
			rc = -1;
			break;
		}
		for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
			enum gcs_channel ch;
			char reason[128];
			char what[128];
			enum fail_kind kind = lstate_call(&st, &samples[i], 0, 0, &ch, reason,
			                                  sizeof(reason), msg, sizeof(msg));
			if (kind != FAIL_NONE) {
				snprintf(err, errlen, "route on a %s with %s failed (%s): %s",
				         describe_sample(&samples[i], what, sizeof(what)),
				         toggle_names[t], fail_names[kind], msg);
				rc = -1;
				break;
			}
		}
	}
	toggles_unref(sample);
	if (rc == 0 && lstate_set_context(&st, r, NULL, msg, sizeof(msg)) != FAIL_NONE) {
		snprintf(err, errlen, "%s: building the context: %s", s->path, msg);
		rc = -1;
	}
	if (rc == 0) {
		struct examples_args a = {.st = &st};
		limits_reset(st.L);
		lua_pushcfunction(st.L, check_examples);
		lua_pushlightuserdata(st.L, &a);
		int status = lua_pcall(st.L, 1, 0, 0);
		if (status != LUA_OK) {
			copy_error(st.L, -1, err, errlen);
			rc = -1;
		}
	}
	lstate_close(&st);
	return rc;
}

/* Replaces the watch list with the files the last attempt read. */
static void set_watch(struct routing *r, const struct script *s, const struct file_id *script_id)
{
	for (size_t i = 0; i < r->nwatch; i++)
		free(r->watch[i].path);
	free(r->watch);
	r->watch = NULL;
	r->nwatch = 0;
	size_t n = 1 + (s ? s->nmods : 0);
	struct watched *w = calloc(n, sizeof(*w));
	if (!w)
		return;
	w[0].path = strdup(r->script_path);
	w[0].id = *script_id;
	size_t k = 1;
	for (size_t i = 0; s && i < s->nmods; i++) {
		w[k].path = strdup(s->mods[i].path);
		w[k].id = s->mods[i].id;
		if (w[k].path)
			k++;
	}
	if (!w[0].path) {
		for (size_t i = 1; i < k; i++)
			free(w[i].path);
		free(w);
		return;
	}
	r->watch = w;
	r->nwatch = k;
}

/* Reads and checks the script; called with reload_mu held. */
static struct script *load_checked(struct routing *r, char *err, size_t errlen)
{
	struct script *s = script_read(r->script_path, err, errlen);
	if (!s) {
		struct file_id id = stat_id(r->script_path);
		set_watch(r, NULL, &id);
		return NULL;
	}
	pthread_mutex_lock(&r->mu);
	struct toggles *current = toggles_ref(r->features);
	pthread_mutex_unlock(&r->mu);
	int rc = check_script(r, s, current, err, errlen);
	toggles_unref(current);
	set_watch(r, s, &s->id);
	if (rc != 0) {
		script_unref(s);
		return NULL;
	}
	return s;
}

/* ---- failures on the request path ---- */

static void report_failure(struct routing *r, enum fail_kind kind, const char *message)
{
	metrics_routing_error(fail_names[kind]);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&r->fail_mu);
	struct fail_log *f = &r->fails[kind];
	if (f->logged && now.tv_sec - f->last.tv_sec < FAIL_LOG_EVERY_S) {
		f->suppressed++;
		pthread_mutex_unlock(&r->fail_mu);
		return;
	}
	unsigned long suppressed = f->suppressed;
	f->suppressed = 0;
	f->logged = true;
	f->last = now;
	pthread_mutex_unlock(&r->fail_mu);
	char count[32];
	snprintf(count, sizeof(count), "%lu", suppressed);
	log_msg(LOGL_ERROR, "routing script failed; answering stable", "kind", fail_names[kind],
	        "script", r->script_path, "error", message, "suppressed_since_last", count, NULL);
}

/* ---- workers ---- */

static struct worker *worker_get(struct routing *r)
{
	struct worker *w = pthread_getspecific(r->worker_key);
	if (w)
		return w;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	if (pthread_setspecific(r->worker_key, w) != 0) {
		free(w);
		return NULL;
	}
	pthread_mutex_lock(&r->mu);
	w->next = r->workers;
	r->workers = w;
	pthread_mutex_unlock(&r->mu);
	return w;
}

/* Brings the worker's state up to the published generation: a new script
 * rebuilds the state, a new toggle only the context. */
static enum fail_kind worker_sync(struct routing *r, struct worker *w, char *err, size_t errlen)
{
	pthread_mutex_lock(&r->mu);
	struct script *s = script_ref(r->script);
	uint64_t unleash_gen = r->unleash_gen;
	struct toggles *toggle = toggles_ref(r->features);
	uint64_t gen = atomic_load(&r->generation);
	pthread_mutex_unlock(&r->mu);

	enum fail_kind kind = FAIL_NONE;
	bool rebuild = !w->st.L || s != w->script;
	if (rebuild) {
		lstate_close(&w->st);
		script_unref(w->script);
		w->script = s;
		s = NULL;
		kind = lstate_build(&w->st, w->script, false, err, errlen);
	}
	if (kind == FAIL_NONE && (rebuild || unleash_gen != w->unleash_gen))
		kind = lstate_set_context(&w->st, r, toggle, err, errlen);
	if (kind != FAIL_NONE) {
		lstate_close(&w->st);
	} else {
		w->seen_gen = gen;
		w->unleash_gen = unleash_gen;
	}
	script_unref(s);
	toggles_unref(toggle);
	return kind;
}

static void set_reason(char *reason, size_t reasonlen, const char *text)
{
	if (reasonlen > 0)
		snprintf(reason, reasonlen, "%s", text);
}

enum gcs_channel routing_decide(struct routing *r, const struct route_request *req, char *reason,
                                size_t reasonlen)
{
	if (!r->canary_version) {
		set_reason(reason, reasonlen, "no canary version");
		return GCS_STABLE;
	}
	char err[ERR_MAX];
	struct worker *w = worker_get(r);
	if (!w) {
		report_failure(r, FAIL_MEMORY, "cannot allocate a routing worker");
		set_reason(reason, reasonlen, "routing failed: memory");
		return GCS_STABLE;
	}
	uint64_t gen = atomic_load_explicit(&r->generation, memory_order_acquire);
	if (!w->st.L || gen != w->seen_gen) {
		enum fail_kind kind = worker_sync(r, w, err, sizeof(err));
		if (kind != FAIL_NONE) {
			report_failure(r, kind, err);
			if (reasonlen > 0)
				snprintf(reason, reasonlen, "routing failed: %s", fail_names[kind]);
			return GCS_STABLE;
		}
	}
	enum gcs_channel ch;
	w->st.decision.made = false;
	enum fail_kind kind =
	    lstate_call(&w->st, req, 0, 0, &ch, reason, reasonlen, err, sizeof(err));
	if (kind == FAIL_NONE) {
		if (w->st.decision.made)
			toggles_count(w->st.decision.yes);
		return ch;
	}
	/* After a budget or memory failure the script's own data may be half
	 * updated: start the next call from a fresh state. */
	if (kind == FAIL_BUDGET || kind == FAIL_MEMORY)
		lstate_close(&w->st);
	report_failure(r, kind, err);
	if (reasonlen > 0)
		snprintf(reason, reasonlen, "routing failed: %s", fail_names[kind]);
	return GCS_STABLE;
}

/* ---- lifecycle ---- */

struct routing *routing_new(const struct gcs_config *cfg, const char *stable_version,
                            const char *canary_version, char *err, size_t errlen)
{
	struct routing *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "routing: out of memory");
		return NULL;
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->reload_mu, NULL);
	pthread_mutex_init(&r->watch_mu, NULL);
	pthread_mutex_init(&r->fail_mu, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&r->watch_cond, &attr);
	pthread_condattr_destroy(&attr);
	atomic_init(&r->generation, 0);

	const char *toggle = cfg->unleash_toggle ? cfg->unleash_toggle
	                                         : "insights-operator-gathering-conditions-service";
	r->script_path =
	    dup_or_null(cfg->routing_script ? cfg->routing_script : "scripts/routing.lua");
	r->stable_version = dup_or_null(stable_version);
	r->canary_version = dup_or_null(canary_version);
	r->app_name = dup_or_null(cfg->unleash_app_name);
	r->environment = dup_or_null(cfg->unleash_environment);
	r->toggle_name = strdup(toggle);
	r->reload_interval = cfg->reload_interval > 0 ? cfg->reload_interval : 2.0;
	if (!r->script_path || dup_failed(stable_version, r->stable_version) ||
	    dup_failed(canary_version, r->canary_version) ||
	    dup_failed(cfg->unleash_app_name, r->app_name) ||
	    dup_failed(cfg->unleash_environment, r->environment) || !r->toggle_name) {
		snprintf(err, errlen, "routing: out of memory");
		routing_free(r);
		return NULL;
	}
	int rc = pthread_key_create(&r->worker_key, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "routing: pthread_key_create: %s", strerror(rc));
		routing_free(r);
		return NULL;
	}
	r->key_created = true;

	char msg[ERR_MAX];
	pthread_mutex_lock(&r->reload_mu);
	struct script *s = load_checked(r, msg, sizeof(msg));
	pthread_mutex_unlock(&r->reload_mu);
	if (!s) {
		/* One line for the caller: the traceback, if any, is noise at
		 * startup. Lua shortens long file names in its messages, so the
		 * full path goes in front when it is not there already. */
		char line[ERR_MAX / 2];
		first_line(line, sizeof(line), msg);
		if (strncmp(line, r->script_path, strlen(r->script_path)) == 0)
			snprintf(err, errlen, "%s", line);
		else
			snprintf(err, errlen, "%s: %s", r->script_path, line);
		routing_free(r);
		return NULL;
	}
	r->script = s;
	atomic_store(&r->generation, 1);
	log_msg(LOGL_INFO, "routing script loaded", "script", r->script_path, NULL);
	return r;
}

int routing_reload(struct routing *r)
{
	char msg[ERR_MAX];
	pthread_mutex_lock(&r->reload_mu);
	struct script *s = load_checked(r, msg, sizeof(msg));
	pthread_mutex_unlock(&r->reload_mu);
	if (!s) {
		log_msg(LOGL_ERROR, "routing script rejected; keeping the previous one", "script",
		        r->script_path, "error", msg, NULL);
		metrics_routing_reload(false);
		return -1;
	}
	pthread_mutex_lock(&r->mu);
	struct script *old = r->script;
	r->script = s;
	uint64_t gen = atomic_fetch_add(&r->generation, 1) + 1;
	pthread_mutex_unlock(&r->mu);
	script_unref(old);
	char gen_text[32];
	snprintf(gen_text, sizeof(gen_text), "%llu", (unsigned long long)gen);
	log_msg(LOGL_INFO, "routing script reloaded", "script", r->script_path, "generation",
	        gen_text, NULL);
	metrics_routing_reload(true);
	return 0;
}

void routing_set_features(struct routing *r, struct toggles *f)
{
	toggles_ref(f);
	pthread_mutex_lock(&r->mu);
	struct toggles *old = r->features;
	r->features = f;
	r->unleash_gen++;
	atomic_fetch_add(&r->generation, 1);
	pthread_mutex_unlock(&r->mu);
	toggles_unref(old);
}

static bool watch_changed(struct routing *r)
{
	bool changed = false;
	pthread_mutex_lock(&r->reload_mu);
	for (size_t i = 0; i < r->nwatch && !changed; i++) {
		struct file_id now = stat_id(r->watch[i].path);
		changed = !same_id(&now, &r->watch[i].id);
	}
	pthread_mutex_unlock(&r->reload_mu);
	return changed;
}

static void *watch_main(void *arg)
{
	struct routing *r = arg;
	pthread_mutex_lock(&r->watch_mu);
	while (!r->watch_stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		double whole = (double)(long)r->reload_interval;
		until.tv_sec += (time_t)whole;
		until.tv_nsec += (long)((r->reload_interval - whole) * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!r->watch_stop &&
		       pthread_cond_timedwait(&r->watch_cond, &r->watch_mu, &until) != ETIMEDOUT)
			;
		if (r->watch_stop)
			break;
		pthread_mutex_unlock(&r->watch_mu);
		if (watch_changed(r))
			routing_reload(r);
		pthread_mutex_lock(&r->watch_mu);
	}
	pthread_mutex_unlock(&r->watch_mu);
	return NULL;
}

int routing_start_watch(struct routing *r)
{
	pthread_mutex_lock(&r->watch_mu);
	if (r->watch_running) {
		pthread_mutex_unlock(&r->watch_mu);
		return 0;
	}
	r->watch_stop = false;
	int rc = pthread_create(&r->watch_thread, NULL, watch_main, r);
	if (rc == 0)
		r->watch_running = true;
	pthread_mutex_unlock(&r->watch_mu);
	if (rc != 0) {
		log_msg(LOGL_ERROR, "cannot start the routing script watch", "error", strerror(rc),
		        NULL);
		return -1;
	}
	return 0;
}

void routing_free(struct routing *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->watch_mu);
	bool running = r->watch_running;
	r->watch_stop = true;
	pthread_cond_broadcast(&r->watch_cond);
	pthread_mutex_unlock(&r->watch_mu);
	if (running)
		pthread_join(r->watch_thread, NULL);

	while (r->workers) {
		struct worker *w = r->workers;
		r->workers = w->next;
		lstate_close(&w->st);
		script_unref(w->script);
		free(w);
	}
	if (r->key_created)
		pthread_key_delete(r->worker_key);
	script_unref(r->script);
	for (size_t i = 0; i < r->nwatch; i++)
		free(r->watch[i].path);
	free(r->watch);
	toggles_unref(r->features);
	free(r->script_path);
	free(r->stable_version);
	free(r->canary_version);
	free(r->app_name);
	free(r->environment);
	free(r->toggle_name);
	pthread_cond_destroy(&r->watch_cond);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->reload_mu);
	pthread_mutex_destroy(&r->watch_mu);
	pthread_mutex_destroy(&r->fail_mu);
	free(r);
}
