#include "lualimits.h"

#include <lauxlib.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "log.h"
#include "luapool.h"

enum {
	WATCH_EVERY_MS = 10, /* how often the watchdog looks at the calls running */
};

/* The signal the watchdog sends a thread whose call ran over its budget.
 * Ignored by default, so a stray one harms nothing. */
#define OVERRUN_SIGNAL SIGURG

/* Per lua_State limits; the allocator's userdata, so the hook finds it too.
 * The fields below the line are the watchdog's view of the call running. */
struct limits {
	lua_State *L;
	size_t used;
	struct luapool pool;               /* the state's small blocks, freed and kept */
	volatile sig_atomic_t over_budget; /* set by the signal handler */
	bool over_memory;
	bool hooked;
	int depth; /* nested begin/done: a call inside a check of examples */
	/* ---- */
	_Atomic unsigned long call;      /* raised at every begin */
	_Atomic bool running;            /* between the outer begin and done */
	_Atomic unsigned long thread;    /* pthread_t of the thread running it */
	_Atomic unsigned long kill_call; /* the call the watchdog signalled */
	unsigned long seen_call;         /* watchdog only */
	double seen_cpu;                 /* watchdog only: CPU seconds when first seen */
	struct limits *next, *prev;      /* under registry_mu */
};

/* Lua 5.4 sends every VM instruction through its hook machinery while a
 * count hook is set: a budget counted that way cost a third of a routing
 * decision. So a call runs with no hook. A watchdog thread looks at the
 * calls running every WATCH_EVERY_MS; once one has used the budget of
 * its thread's CPU time it signals that thread, whose handler sets a count
 * hook of one instruction (lua_sethook is safe in a signal handler: lua.c
 * does the same on Ctrl-C). From then on the hook raises at every
 * instruction, so a pcall in the script cannot swallow the error. */

static void set_overrun_hook(struct limits *lim);

static _Atomic long budget_ms; /* 0: not set, no limit */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct limits *registry;
static pthread_once_t watchdog_once = PTHREAD_ONCE_INIT;
static _Thread_local struct limits *running_here;

static void on_overrun(int sig)
{
	(void)sig;
	struct limits *lim = running_here;
	if (lim && atomic_load(&lim->running) &&
	    atomic_load(&lim->call) == atomic_load(&lim->kill_call)) {
		lim->over_budget = 1;
		set_overrun_hook(lim);
	}
}

static void watch_one(struct limits *lim)
{
	if (!atomic_load(&lim->running)) {
		lim->seen_call = 0;
		return;
	}
	unsigned long call = atomic_load(&lim->call);
	pthread_t thread = (pthread_t)atomic_load(&lim->thread);
	double now;
	if (!deadline_thread_cpu(thread, &now))
		return;
	if (lim->seen_call != call) {
		lim->seen_call = call;
		lim->seen_cpu = now;
	} else if (atomic_load(&budget_ms) > 0 &&
	           (now - lim->seen_cpu) * 1000 >= (double)atomic_load(&budget_ms)) {
		atomic_store(&lim->kill_call, call);
		pthread_kill(thread, OVERRUN_SIGNAL);
	}
}

static void *watchdog(void *arg)
{
	(void)arg;
	for (;;) {
		deadline_sleep(WATCH_EVERY_MS / 1000.0);
		pthread_mutex_lock(&registry_mu);
		for (struct limits *lim = registry; lim; lim = lim->next)
			watch_one(lim);
		pthread_mutex_unlock(&registry_mu);
	}
	return NULL;
}

static void watchdog_start(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_overrun;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(OVERRUN_SIGNAL, &sa, NULL);
	/* The watchdog itself takes no signals meant for the request path. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_t t;
	if (pthread_create(&t, NULL, watchdog, NULL) == 0)
		pthread_detach(t);
	else
		log_msg(LOGL_ERROR, "routing: no watchdog thread; a runaway script is not stopped",
		        NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void lualimits_register(struct limits *lim)
{
	pthread_once(&watchdog_once, watchdog_start);
	pthread_mutex_lock(&registry_mu);
	lim->next = registry;
	if (registry)
		registry->prev = lim;
	registry = lim;
	pthread_mutex_unlock(&registry_mu);
}

static void lualimits_unregister(struct limits *lim)
{
	pthread_mutex_lock(&registry_mu);
	if (lim->prev)
		lim->prev->next = lim->next;
	else if (registry == lim)
		registry = lim->next;
	if (lim->next)
		lim->next->prev = lim->prev;
	pthread_mutex_unlock(&registry_mu);
}

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct limits *lim = ud;
	/* With ptr NULL, osize tells the object type, not a size. */
	size_t old = ptr ? osize : 0;
	if (nsize == 0) {
		luapool_realloc(&lim->pool, ptr, osize, 0);
		lim->used -= old;
		return NULL;
	}
	if (nsize > old && nsize - old > (size_t)LUALIMITS_MEMORY - lim->used) {
		/* Sticky: the call fails even if an emergency collection lets
		 * Lua retry successfully, so a script near the cap fails the
		 * same way every time; and a pcall that catches the memory
		 * error meets the hook at the next instruction. */
		lim->over_memory = true;
		set_overrun_hook(lim);
		return NULL;
	}
	void *p = luapool_realloc(&lim->pool, ptr, osize, nsize);
	if (!p)
		return NULL;
	lim->used = lim->used - old + nsize;
	return p;
}

static struct limits *lualimits_of(lua_State *L)
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
	struct limits *lim = lualimits_of(L);
	if (!lim->over_budget && !lim->over_memory)
		return;
	luaL_where(L, 0);
	if (lim->over_budget)
		lua_pushfstring(L, "CPU time budget of %d ms exceeded",
		                (int)atomic_load(&budget_ms));
	else
		lua_pushfstring(L, "memory limit of %d MiB exceeded",
		                (int)(LUALIMITS_MEMORY >> 20));
	lua_concat(L, 2);
	lua_error(L);
}

void lualimits_set_budget(long ms)
{
	atomic_store(&budget_ms, ms);
}

static void set_overrun_hook(struct limits *lim)
{
	if (lim->L) {
		lua_sethook(lim->L, budget_hook, LUA_MASKCOUNT, 1);
		lim->hooked = true;
	}
}

/* A call starts: its budget starts anew (nested calls too, as each
 * example's call of route gets its own). */
void lualimits_reset(lua_State *L)
{
	struct limits *lim = lualimits_of(L);
	lim->over_budget = 0;
	lim->over_memory = false;
	if (lim->hooked) {
		lua_sethook(L, NULL, 0, 0);
		lim->hooked = false;
	}
	running_here = lim;
	atomic_store_explicit(&lim->thread, (unsigned long)pthread_self(), memory_order_relaxed);
	atomic_fetch_add_explicit(&lim->call, 1, memory_order_release);
	if (lim->depth++ == 0)
		atomic_store_explicit(&lim->running, true, memory_order_release);
}

/* The outermost call is over: the watchdog stops looking. */
void lualimits_done(lua_State *L)
{
	struct limits *lim = lualimits_of(L);
	if (--lim->depth == 0)
		atomic_store_explicit(&lim->running, false, memory_order_release);
}

enum lualimits_over lualimits_crossed(lua_State *L)
{
	struct limits *lim = lualimits_of(L);
	if (lim->over_budget)
		return LUALIMITS_OVER_BUDGET;
	return lim->over_memory ? LUALIMITS_OVER_MEMORY : LUALIMITS_WITHIN;
}

lua_State *lualimits_state_new(void)
{
	struct limits *lim = calloc(1, sizeof(*lim));
	lua_State *L = lim ? lua_newstate(limited_alloc, lim) : NULL;
	if (!L) {
		if (lim)
			luapool_clear(&lim->pool);
		free(lim);
		return NULL;
	}
	lim->L = L;
	lualimits_register(lim);
	return L;
}

void lualimits_state_close(lua_State *L)
{
	struct limits *lim = lualimits_of(L);
	lualimits_unregister(lim);
	lua_close(L);
	luapool_clear(&lim->pool);
	free(lim);
}
