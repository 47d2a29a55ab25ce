#include "routing.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "log.h"
#include "metrics.h"
#include "sandbox.h"
#include "script.h"
#include "unleash_features.h"
#include "unleash_usage.h"

enum {
	FAIL_LOG_EVERY_S = 10, /* at most one failure line per kind in this many seconds */
	ERR_MAX = 4096,        /* internal error text, traceback included */
};

/* One per HTTP worker thread, found through worker_key. */
struct worker {
	struct worker *next;
	struct sandbox *sb;          /* NULL until built, and after a failure */
	struct script *script;       /* owned reference: what sb was built from */
	struct unleash_usage *usage; /* counts what its calls made of the feature */
	uint64_t seen_gen;
	uint64_t unleash_gen;
};

struct routing {
	char *script_path;
	char *stable_version;
	char *canary_version;
	char *app_name;
	char *environment;
	char *feature_name; /* GCS_UNLEASH_TOGGLE */
	double reload_interval;
	pthread_key_t worker_key;
	bool key_created;

	/* Guards script, features, unleash_gen and workers; generation is
	 * only raised under it, so a worker that reads it under the lock sees
	 * a consistent pair. */
	pthread_mutex_t mu;
	struct script *script;
	struct unleash_features *features;
	uint64_t unleash_gen;
	struct worker *workers;
	_Atomic uint64_t generation;

	/* One reload at a time; guards the watch. */
	pthread_mutex_t reload_mu;
	struct script_watch *watch;

	pthread_mutex_t watch_mu;
	pthread_cond_t watch_cond;
	bool watch_stop;
	bool watch_running;
	pthread_t watch_thread;

	pthread_mutex_t fail_mu;
	struct log_throttle fails[SANDBOX_FAILS];
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

/* What route receives as its context with features f. */
static struct sandbox_context context_of(const struct routing *r, struct unleash_features *f)
{
	struct sandbox_context c = {
	    .stable_version = r->stable_version,
	    .canary_version = r->canary_version,
	    .app_name = r->app_name,
	    .environment = r->environment,
	    .features = f,
	    .feature_name = r->feature_name,
	};
	return c;
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

/* A feature shaped as the Unleash client API serves it: half of the
 * clusters in a flexible rollout. */
static struct unleash_features *sample_features(const char *name)
{
	json_t *t =
	    json_pack("{s:[{s:s, s:s, s:b, s:b, s:b, s:s, s:[{s:s, s:[], s:{s:s, s:s, s:s}, "
	              "s:[]}], s:[]}]}",
	              "features", "name", name, "type", "release", "enabled", 1, "stale", 0,
	              "impressionData", 0, "project", "default", "strategies", "name",
	              "flexibleRollout", "constraints", "parameters", "rollout", "50", "stickiness",
	              "default", "groupId", name, "variants", "variants");
	char *text = t ? json_dumps(t, JSON_COMPACT) : NULL;
	json_decref(t);
	char err[256];
	struct unleash_features *f =
	    text ? unleash_features_parse(text, strlen(text), name, err, sizeof(err)) : NULL;
	free(text);
	return f;
}

static const char *describe_sample(const struct route_request *req, char *buf, size_t len)
{
	snprintf(buf, len, "sample request {cluster_id=%s, api=%s}",
	         req->cluster_id ? req->cluster_id : "nil", req->api);
	return buf;
}

/* Calls route on every sample request with features f in the context. */
static int check_samples(const struct routing *r, struct sandbox *sb, struct unleash_features *f,
                         const char *what_features, char *err, size_t errlen)
{
	char msg[ERR_MAX / 2]; /* leaves room in err for what was being checked */
	struct sandbox_context ctx = context_of(r, f);
	if (sandbox_set_context(sb, &ctx, msg, sizeof(msg)) != SANDBOX_OK) {
		snprintf(err, errlen, "%s: building the context with %s: %s", r->script_path,
		         what_features, msg);
		return -1;
	}
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		enum gcs_channel ch;
		char reason[128];
		char what[128];
		enum sandbox_fail kind =
		    sandbox_call(sb, &samples[i], &ch, reason, sizeof(reason), msg, sizeof(msg));
		if (kind != SANDBOX_OK) {
			snprintf(err, errlen, "route on a %s with %s failed (%s): %s",
			         describe_sample(&samples[i], what, sizeof(what)), what_features,
			         sandbox_fail_name(kind), msg);
			return -1;
		}
	}
	return 0;
}

/* Compiles and runs the script in a scratch state, calls route on the
 * samples under each feature, checks the module's own examples. Modules are
 * read from disk and kept in s. */
static int check_script(const struct routing *r, struct script *s, struct unleash_features *current,
                        char *err, size_t errlen)
{
	struct sandbox *sb;
	struct sandbox_chunk chunk = script_chunk(s);
	struct sandbox_loader loader = script_checking_loader(s);
	char msg[ERR_MAX / 2];
	if (sandbox_new(&sb, &chunk, &loader, NULL, msg, sizeof(msg)) != SANDBOX_OK) {
		snprintf(err, errlen, "%s", msg);
		return -1;
	}
	struct unleash_features *sample = sample_features(r->feature_name);
	struct unleash_features *candidates[] = {NULL, sample, current};
	const char *names[] = {"no Unleash toggle", "a 50% rollout toggle",
	                       "the current Unleash toggle"};
	int rc = 0;
	for (size_t t = 0; t < 3 && rc == 0; t++)
		if (t == 0 || candidates[t])
			rc = check_samples(r, sb, candidates[t], names[t], err, errlen);
	unleash_features_unref(sample);
	struct sandbox_context plain = context_of(r, NULL);
	if (rc == 0 && sandbox_set_context(sb, &plain, msg, sizeof(msg)) != SANDBOX_OK) {
		snprintf(err, errlen, "%s: building the context: %s", r->script_path, msg);
		rc = -1;
	}
	if (rc == 0)
		rc = sandbox_check_examples(sb, err, errlen);
	sandbox_free(sb);
	return rc;
}

/* Replaces the watch with the files the last attempt read. */
static void set_watch(struct routing *r, const struct script *s)
{
	script_watch_free(r->watch);
	r->watch = script_watch_new(r->script_path, s);
}

/* Reads and checks the script; called with reload_mu held. */
static struct script *load_checked(struct routing *r, char *err, size_t errlen)
{
	struct script *s = script_read(r->script_path, err, errlen);
	if (!s) {
		set_watch(r, NULL);
		return NULL;
	}
	pthread_mutex_lock(&r->mu);
	struct unleash_features *current = unleash_features_ref(r->features);
	pthread_mutex_unlock(&r->mu);
	int rc = check_script(r, s, current, err, errlen);
	unleash_features_unref(current);
	set_watch(r, s);
	if (rc != 0) {
		script_unref(s);
		return NULL;
	}
	return s;
}

/* ---- failures on the request path ---- */

static void report_failure(struct routing *r, enum sandbox_fail kind, const char *message)
{
	metrics_routing_error(kind);
	unsigned long suppressed;
	pthread_mutex_lock(&r->fail_mu);
	bool pass = log_throttle_pass(&r->fails[kind], &suppressed);
	pthread_mutex_unlock(&r->fail_mu);
	if (!pass)
		return;
	const char *name = sandbox_fail_name(kind);
	char count[32];
	snprintf(count, sizeof(count), "%lu", suppressed);
	log_msg(LOGL_ERROR, "routing script failed; answering stable", "kind", name, "script",
	        r->script_path, "error", message, "suppressed_since_last", count, NULL);
}

/* Counts and logs a failed decision, which answers stable. */
static enum gcs_channel failed(struct routing *r, enum sandbox_fail kind, const char *message,
                               char *reason, size_t reasonlen)
{
	report_failure(r, kind, message);
	if (reasonlen > 0)
		snprintf(reason, reasonlen, "routing failed: %s", sandbox_fail_name(kind));
	return GCS_STABLE;
}

/* ---- workers ---- */

static struct worker *worker_get(struct routing *r)
{
	struct worker *w = pthread_getspecific(r->worker_key);
	if (w)
		return w;
	w = calloc(1, sizeof(*w));
	if (!w || !(w->usage = unleash_usage_new()) || pthread_setspecific(r->worker_key, w) != 0) {
		if (w)
			unleash_usage_free(w->usage);
		free(w);
		return NULL;
	}
	pthread_mutex_lock(&r->mu);
	w->next = r->workers;
	r->workers = w;
	pthread_mutex_unlock(&r->mu);
	return w;
}

/* A worker's sandbox serves the modules its script kept when checked. */
static enum sandbox_fail worker_build(struct worker *w, char *err, size_t errlen)
{
	struct sandbox_chunk chunk = script_chunk(w->script);
	struct sandbox_loader loader = script_serving_loader(w->script);
	return sandbox_new(&w->sb, &chunk, &loader, w->usage, err, errlen);
}

/* Brings the worker's state up to the published generation: a new script
 * rebuilds the state, new features only the context. */
static enum sandbox_fail worker_sync(struct routing *r, struct worker *w, char *err, size_t errlen)
{
	pthread_mutex_lock(&r->mu);
	struct script *s = script_ref(r->script);
	uint64_t unleash_gen = r->unleash_gen;
	struct unleash_features *features = unleash_features_ref(r->features);
	uint64_t gen = atomic_load(&r->generation);
	pthread_mutex_unlock(&r->mu);

	enum sandbox_fail kind = SANDBOX_OK;
	bool rebuild = !w->sb || s != w->script;
	if (rebuild) {
		sandbox_free(w->sb);
		script_unref(w->script);
		w->script = s;
		s = NULL;
		kind = worker_build(w, err, errlen);
	}
	if (kind == SANDBOX_OK && (rebuild || unleash_gen != w->unleash_gen)) {
		struct sandbox_context ctx = context_of(r, features);
		kind = sandbox_set_context(w->sb, &ctx, err, errlen);
	}
	if (kind != SANDBOX_OK) {
		sandbox_free(w->sb);
		w->sb = NULL;
	} else {
		w->seen_gen = gen;
		w->unleash_gen = unleash_gen;
	}
	script_unref(s);
	unleash_features_unref(features);
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
	if (!w)
		return failed(r, SANDBOX_MEMORY, "cannot allocate a routing worker", reason,
		              reasonlen);
	uint64_t gen = atomic_load_explicit(&r->generation, memory_order_acquire);
	if (!w->sb || gen != w->seen_gen) {
		enum sandbox_fail kind = worker_sync(r, w, err, sizeof(err));
		if (kind != SANDBOX_OK)
			return failed(r, kind, err, reason, reasonlen);
	}
	enum gcs_channel ch;
	enum sandbox_fail kind = sandbox_call(w->sb, req, &ch, reason, reasonlen, err, sizeof(err));
	if (kind == SANDBOX_OK)
		return ch;
	/* After a budget or memory failure the script's own data may be half
	 * updated: start the next call from a fresh state. */
	if (kind == SANDBOX_BUDGET || kind == SANDBOX_MEMORY) {
		sandbox_free(w->sb);
		w->sb = NULL;
	}
	return failed(r, kind, err, reason, reasonlen);
}

/* ---- lifecycle ---- */

/* The settings routing keeps for its lifetime; false when out of memory. */
static bool copy_settings(struct routing *r, const struct gcs_config *cfg)
{
	r->script_path = strdup(cfg->routing_script);
	r->stable_version = dup_or_null(cfg->stable_version);
	r->canary_version = dup_or_null(cfg->canary_version);
	r->app_name = dup_or_null(cfg->unleash_app_name);
	r->environment = dup_or_null(cfg->unleash_environment);
	r->feature_name = strdup(cfg->unleash_toggle);
	r->reload_interval = cfg->reload_interval;
	return r->script_path && !dup_failed(cfg->stable_version, r->stable_version) &&
	       !dup_failed(cfg->canary_version, r->canary_version) &&
	       !dup_failed(cfg->unleash_app_name, r->app_name) &&
	       !dup_failed(cfg->unleash_environment, r->environment) && r->feature_name;
}

/* One line for the caller: the traceback, if any, is noise at startup. Lua
 * shortens long file names in its messages, so the full path goes in front
 * when it is not there already. */
static void startup_error(const struct routing *r, const char *msg, char *err, size_t errlen)
{
	char line[ERR_MAX / 2];
	first_line(line, sizeof(line), msg);
	if (strncmp(line, r->script_path, strlen(r->script_path)) == 0)
		snprintf(err, errlen, "%s", line);
	else
		snprintf(err, errlen, "%s: %s", r->script_path, line);
}

struct routing *routing_new(const struct gcs_config *cfg, char *err, size_t errlen)
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
	deadline_cond_init(&r->watch_cond);
	for (size_t i = 0; i < SANDBOX_FAILS; i++)
		r->fails[i].every_s = FAIL_LOG_EVERY_S;
	atomic_init(&r->generation, 0);
	sandbox_set_budget(cfg->routing_budget_ms);
	if (!copy_settings(r, cfg)) {
		snprintf(err, errlen, "routing: out of memory");
		goto fail;
	}
	int rc = pthread_key_create(&r->worker_key, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "routing: pthread_key_create: %s", strerror(rc));
		goto fail;
	}
	r->key_created = true;

	char msg[ERR_MAX];
	pthread_mutex_lock(&r->reload_mu);
	struct script *s = load_checked(r, msg, sizeof(msg));
	pthread_mutex_unlock(&r->reload_mu);
	if (!s) {
		startup_error(r, msg, err, errlen);
		goto fail;
	}
	r->script = s;
	atomic_store(&r->generation, 1);
	log_msg(LOGL_INFO, "routing script loaded", "script", r->script_path, NULL);
	return r;
fail:
	routing_free(r);
	return NULL;
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

void routing_set_features(struct routing *r, struct unleash_features *f)
{
	unleash_features_ref(f);
	pthread_mutex_lock(&r->mu);
	struct unleash_features *old = r->features;
	r->features = f;
	r->unleash_gen++;
	atomic_fetch_add(&r->generation, 1);
	pthread_mutex_unlock(&r->mu);
	unleash_features_unref(old);
}

static bool watch_changed(struct routing *r)
{
	pthread_mutex_lock(&r->reload_mu);
	bool changed = script_watch_changed(r->watch);
	pthread_mutex_unlock(&r->reload_mu);
	return changed;
}

static void *watch_main(void *arg)
{
	struct routing *r = arg;
	pthread_mutex_lock(&r->watch_mu);
	while (!r->watch_stop) {
		struct timespec until = deadline_after(r->reload_interval);
		while (!r->watch_stop && !deadline_wait(&r->watch_cond, &r->watch_mu, &until))
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
		sandbox_free(w->sb);
		script_unref(w->script);
		unleash_usage_free(w->usage);
		free(w);
	}
	if (r->key_created)
		pthread_key_delete(r->worker_key);
	script_unref(r->script);
	script_watch_free(r->watch);
	unleash_features_unref(r->features);
	free(r->script_path);
	free(r->stable_version);
	free(r->canary_version);
	free(r->app_name);
	free(r->environment);
	free(r->feature_name);
	pthread_cond_destroy(&r->watch_cond);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->reload_mu);
	pthread_mutex_destroy(&r->watch_mu);
	pthread_mutex_destroy(&r->fail_mu);
	free(r);
}
