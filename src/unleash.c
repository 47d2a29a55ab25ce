/* unleash: the poller, registration and metrics of an Unleash SDK. */
#include "unleash.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "client.h"
#include "deadline.h"
#include "file.h"
#include "log.h"
#include "metrics.h"
#include "unleash_features.h"
#include "unleash_usage.h"
#include "version.h"

/* Startup never waits longer than this for Unleash: an outage must not
 * block a deployment. */
#define FIRST_ANSWER_WAIT_MS 2000
#define MAX_SKIPS            10
#define FAIL_LOG_EVERY       10 /* poll failures in a row per warning */
#define MAX_BODY_BYTES       (32u << 20)
#define CONNECT_TIMEOUT_MS   3000L
#define TRANSFER_TIMEOUT_MS  10000L
#define STOP_TIMEOUT_MS      1000L

struct unleash {
	const struct gcs_config *cfg;
	struct routing *routing;
	bool report;
	char instance_id[300];
	char connection_id[40];
	char sdk[80]; /* "gcs:<version>", as unleash-sdk and sdkVersion */
	char started[32];
	char *base_url;

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu; /* guards stop and answered, with cond */
	pthread_cond_t cond;
	bool stop;
	bool answered;
	atomic_bool stopping; /* read by curl's progress callback mid-transfer */

	/* Owned by the polling thread after start. */
	CURL *curl;
	char *etag;
	char *body; /* the answer in use, to skip republishing the same one */
	size_t body_len;
	bool known;         /* a state was published (fetch, backup or bootstrap) */
	bool unfiltered;    /* the toggle's parents are outside namePrefix */
	bool backup_behind; /* the backup file does not hold body: written again each poll */
	unsigned skips;     /* poll intervals to skip (backoff) */
	struct log_throttle poll_failures;
	bool registered;
	uint64_t yes, no; /* counts of a bucket not sent yet */
	char bucket_start[32];
};

/* ---- small pure steps ---- */

unsigned unleash_backoff(unsigned skips, long status)
{
	if (status == 200 || status == 304)
		return skips > 0 ? skips - 1 : 0;
	if (status == 401 || status == 403 || status == 404)
		return MAX_SKIPS;
	return skips < MAX_SKIPS ? skips + 1 : MAX_SKIPS;
}

/* A random (version 4) UUID: one per process, as the SDKs' connection ID. */
static void new_uuid(char out[40])
{
	unsigned char b[16] = {0};
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, b, sizeof(b)) != (ssize_t)sizeof(b)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		srand((unsigned)(ts.tv_nsec ^ getpid()));
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (unsigned char)rand();
	}
	if (fd >= 0)
		close(fd);
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 40, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

int unleash_file_write(const char *path, const char *body, size_t len, char *err, size_t errlen)
{
	size_t tmplen = strlen(path) + 32;
	char *tmp = malloc(tmplen);
	if (!tmp) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	snprintf(tmp, tmplen, "%s.tmp.%ld", path, (long)getpid());
	int rc = -1;
	FILE *f = fopen(tmp, "w");
	if (!f) {
		snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
		goto out;
	}
	bool ok = fwrite(body, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
	int saved = errno;
	if (fclose(f) != 0 && ok) {
		ok = false;
		saved = errno;
	}
	if (!ok) {
		snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(saved));
		unlink(tmp);
		goto out;
	}
	if (rename(tmp, path) != 0) {
		snprintf(err, errlen, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	return rc;
}

int unleash_file_read(const char *path, const char *name, struct unleash_features **state,
                      char **body, size_t *len, char *err, size_t errlen)
{
	*state = NULL;
	*len = 0;
	char why[128];
	enum file_result r = file_read(path, MAX_BODY_BYTES, body, len, NULL, why, sizeof(why));
	if (r == FILE_ABSENT)
		return 0;
	if (r == FILE_FAILED) {
		snprintf(err, errlen, "%s: cannot read: %s", path, why);
		return -1;
	}
	*state = unleash_features_parse(*body, *len, name, err, errlen);
	if (*state)
		return 1;
	free(*body);
	*body = NULL;
	*len = 0;
	return -2;
}

/* ---- publishing a state ---- */

/* Writes the state in use to GCS_UNLEASH_BACKUP. A failure (a full,
 * read-only or missing directory) is warned once and retried after every
 * successful poll until a write succeeds; gcs_unleash_backup_behind shows it
 * meanwhile, and serving never depends on it. */
static void write_backup(struct unleash *u, const char *body, size_t len)
{
	char err[640];
	bool ok = unleash_file_write(u->cfg->unleash_backup, body, len, err, sizeof(err)) == 0;
	metrics_unleash_backup(ok);
	if (!ok && !u->backup_behind)
		log_msg(LOGL_WARN, "Unleash backup not written; retried after every poll", "error",
		        err, NULL);
	else if (ok && u->backup_behind)
		log_msg(LOGL_INFO, "Unleash backup written again", NULL);
	u->backup_behind = !ok;
}

/* Hands a parsed state to routing and keeps its body (the backup's bytes).
 * Takes f and body. */
static void publish(struct unleash *u, struct unleash_features *f, char *body, size_t len,
                    const char *source)
{
	const char *name = u->cfg->unleash_toggle;
	const struct unleash_feature *t = unleash_features_find(f, name);
	if (!u->unfiltered && f->missing_parent) {
		/* The parents are outside namePrefix: ask for everything. */
		u->unfiltered = true;
		free(u->etag);
		u->etag = NULL;
	} else if (u->unfiltered && (!t || t->ndeps == 0)) {
		u->unfiltered = false;
		free(u->etag);
		u->etag = NULL;
	}
	routing_set_features(u->routing, f);
	double pct = unleash_features_rollout(f, name);
	metrics_unleash_rollout(pct);
	metrics_unleash_unusable(f->nproblems);
	for (size_t i = 0; i < f->nproblems; i++)
		log_msg(LOGL_WARN, "Unleash constraint cannot be used; it never holds", "toggle",
		        name, "source", source, "problem", f->problems[i], NULL);
	char pct_text[32];
	snprintf(pct_text, sizeof(pct_text), "%g", pct);
	log_msg(LOGL_INFO, t ? "Unleash toggle updated" : "Unleash toggle absent", "toggle", name,
	        "source", source, "rollout", pct >= 0 ? pct_text : NULL, NULL);
	unleash_features_unref(f);

	if (u->cfg->unleash_backup && strcmp(source, "backup") != 0)
		write_backup(u, body, len);
	free(u->body);
	u->body = body;
	u->body_len = len;
	u->known = true;
}

static void log_refused(const char *source, const char *err)
{
	log_msg(LOGL_ERROR, "Unleash state refused; keeping the last one", "source", source,
	        "error", err, NULL);
}

/* Parses body and, when it is new, hands it to routing. Takes body. */
static bool adopt(struct unleash *u, char *body, size_t len, const char *source)
{
	if (u->known && u->body && len == u->body_len && memcmp(body, u->body, len) == 0) {
		free(body);
		return true;
	}
	char err[640];
	struct unleash_features *f =
	    unleash_features_parse(body, len, u->cfg->unleash_toggle, err, sizeof(err));
	if (!f) {
		log_refused(source, err);
		free(body);
		return false;
	}
	publish(u, f, body, len, source);
	return true;
}

/* At startup, before any state: the backup or the bootstrap file. */
static bool adopt_file(struct unleash *u, const char *path, const char *source)
{
	char err[640], *body;
	size_t len;
	struct unleash_features *f;
	int rc = unleash_file_read(path, u->cfg->unleash_toggle, &f, &body, &len, err, sizeof(err));
	if (rc == -1)
		log_msg(LOGL_WARN, "Unleash file ignored", "source", source, "error", err, NULL);
	else if (rc == -2)
		log_refused(source, err);
	if (rc <= 0)
		return false;
	publish(u, f, body, len, source);
	return true;
}

/* ---- HTTP ---- */

/* Keeps the ETag of the answer, for the next If-None-Match. */
static size_t on_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
	char **etag = userdata;
	size_t n = size * nitems;
	if (etag && n > 5 && strncasecmp(buffer, "etag:", 5) == 0) {
		const char *v = buffer + 5;
		const char *end = buffer + n;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
			end--;
		char *copy = strndup(v, (size_t)(end - v));
		if (copy) {
			free(*etag);
			*etag = copy;
		}
	}
	return n;
}

/* Lets unleash_stop interrupt a transfer instead of waiting for its timeout. */
static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	struct unleash *u = clientp;
	return atomic_load(&u->stopping) ? 1 : 0;
}

/* The headers the official SDKs send on every call. */
static struct curl_slist *request_headers(const struct unleash *u, double interval,
                                          const char *etag, bool json)
{
	const struct gcs_config *cfg = u->cfg;
	char interval_ms[32];
	snprintf(interval_ms, sizeof(interval_ms), "%.0f", interval * 1000);
	const char *values[][2] = {
	    {"Authorization", cfg->unleash_token},
	    {"User-Agent", cfg->unleash_app_name},
	    {"unleash-appname", cfg->unleash_app_name},
	    {"unleash-instanceid", u->instance_id},
	    {"unleash-connection-id", u->connection_id},
	    {"unleash-interval", interval_ms},
	    {"unleash-sdk", u->sdk},
	    {"Unleash-Client-Spec", UNLEASH_SPEC_VERSION},
	    {"If-None-Match", etag},
	    {"Content-Type", json ? "application/json" : NULL},
	};
	char line[1024];
	struct curl_slist *h = NULL, *next;
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		if (!values[i][1] || !*values[i][1])
			continue;
		snprintf(line, sizeof(line), "%s: %s", values[i][0], values[i][1]);
		next = curl_slist_append(h, line);
		if (!next) {
			curl_slist_free_all(h);
			return NULL;
		}
		h = next;
	}
	return h;
}

/* One request to {url}/client/{path}: a GET, or a POST of post. Returns the
 * HTTP status, 0 with err when there was no answer. */
static long call(struct unleash *u, const char *path, const char *post, double interval,
                 struct client_sink *out, char *err, size_t errlen)
{
	char url[2048];
	snprintf(url, sizeof(url), "%s/client/%s", u->base_url, path);
	struct curl_slist *headers =
	    request_headers(u, interval, post ? NULL : u->etag, post != NULL);
	if (!headers) {
		snprintf(err, errlen, "out of memory");
		return 0;
	}
	CURL *c = u->curl;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, post ? NULL : &u->etag);
	if (post)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
	else
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(headers);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", url,
		         out->too_large ? "answer larger than the limit" : curl_easy_strerror(rc));
		return 0;
	}
	if (status < 200 || status >= 300)
		snprintf(err, errlen, "%s: HTTP %ld", url, status);
	return status;
}

/* ---- the poll ---- */

static void poll_once(struct unleash *u)
{
	char err[2200] = "";
	char path[1024];
	struct client_sink body = {.max_bytes = MAX_BODY_BYTES};
	if (u->unfiltered) {
		snprintf(path, sizeof(path), "features");
	} else {
		char *name = curl_easy_escape(u->curl, u->cfg->unleash_toggle, 0);
		snprintf(path, sizeof(path), "features?namePrefix=%s", name ? name : "");
		curl_free(name);
	}
	bool was_unfiltered = u->unfiltered;
	long status = call(u, path, NULL, u->cfg->unleash_refresh, &body, err, sizeof(err));
	bool ok = false;
	if (status == 304) {
		metrics_unleash_fetch(METRICS_POLL_NOT_MODIFIED);
		ok = true;
	} else if (status == 200) {
		size_t len = body.bytes.len;
		char *data = buf_take(&body.bytes);
		ok = data && adopt(u, data, len, "unleash");
		if (ok)
			metrics_unleash_fetch(METRICS_POLL_OK);
		else {
			/* A state we cannot read is not a state: ask again in full. */
			free(u->etag);
			u->etag = NULL;
			snprintf(err, sizeof(err), "the answer was refused (logged above)");
		}
	}
	buf_free(&body.bytes);
	unsigned before = u->skips;
	u->skips = unleash_backoff(u->skips, ok ? 200 : status);
	metrics_unleash_backoff(u->skips);
	if (ok) {
		metrics_unleash_success((double)time(NULL));
		if (u->backup_behind && u->body)
			write_backup(u, u->body, u->body_len);
		if (u->poll_failures.events > 0)
			log_msg(LOGL_INFO, "Unleash reachable again", NULL);
		log_throttle_reset(&u->poll_failures);
		/* Switched to the unfiltered list: fetch it now. */
		if (u->unfiltered && !was_unfiltered)
			poll_once(u);
		return;
	}
	metrics_unleash_fetch(METRICS_POLL_ERROR);
	bool pass = log_throttle_pass(&u->poll_failures, NULL);
	if (status == 401 || status == 403 || status == 404) {
		char st[16];
		snprintf(st, sizeof(st), "%ld", status);
		log_msg(LOGL_ERROR,
		        status == 404 ? "Unleash answered 404: is GCS_UNLEASH_URL the API root?"
		                      : "Unleash refused the token (GCS_UNLEASH_TOKEN)",
		        "status", st, "error", err, "skipped_intervals", "10", NULL);
	} else if (pass || before == 0) {
		/* The first failure of a run, then every tenth, not every poll. */
		log_msg(LOGL_WARN, "Unleash poll failed; keeping the last known state", "error",
		        err, "state", u->known ? "known" : "none", NULL);
	}
}

/* ---- registration and metrics ---- */

static json_t *client_identity(const struct unleash *u)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:s}", "appName", u->cfg->unleash_app_name,
	                 "instanceId", u->instance_id, "connectionId", u->connection_id,
	                 "platformName", "C", "platformVersion", "C11", "yggdrasilVersion",
	                 "specVersion", UNLEASH_SPEC_VERSION);
}

static bool post_json(struct unleash *u, const char *path, json_t *doc, bool metrics)
{
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	char err[2200] = "out of memory";
	long status = 0;
	struct client_sink body = {.max_bytes = MAX_BODY_BYTES};
	if (text)
		status =
		    call(u, path, text, u->cfg->unleash_metrics_interval, &body, err, sizeof(err));
	free(text);
	buf_free(&body.bytes);
	bool ok = status >= 200 && status < 300;
	metrics_unleash_post(metrics, ok);
	if (!ok)
		log_msg(LOGL_WARN,
		        metrics ? "Unleash metrics not sent; kept for the next interval"
		                : "Unleash registration failed; retried with the metrics",
		        "error", err, NULL);
	return ok;
}

static void register_instance(struct unleash *u)
{
	json_t *doc = client_identity(u);
	json_t *strategies = json_array();
	/* the strategies unleash_eval implements */
	for (int k = UNLEASH_KIND_UNKNOWN + 1; strategies && k < UNLEASH_KIND_COUNT; k++)
		json_array_append_new(strategies, json_string(unleash_kind_name(k)));
	if (doc && strategies && json_object_set_new(doc, "sdkVersion", json_string(u->sdk)) == 0 &&
	    json_object_set_new(doc, "strategies", strategies) == 0 &&
	    json_object_set_new(doc, "started", json_string(u->started)) == 0 &&
	    json_object_set_new(
	        doc, "interval",
	        json_integer((json_int_t)(u->cfg->unleash_metrics_interval * 1000))) == 0)
		u->registered = post_json(u, "register", doc, false);
	else
		json_decref(doc);
}

/* One bucket of yes/no counts. A bucket that could not be sent is kept
 * and merged into the next; an empty one is not sent. */
static void send_metrics(struct unleash *u)
{
	if (!u->registered)
		register_instance(u);
	uint64_t yes, no;
	unleash_usage_take(&yes, &no);
	u->yes += yes;
	u->no += no;
	char stop[32];
	log_utc_now(stop, sizeof(stop));
	if (u->yes + u->no == 0) {
		snprintf(u->bucket_start, sizeof(u->bucket_start), "%s", stop);
		return;
	}
	json_t *doc = client_identity(u);
	json_t *bucket = json_pack("{s:s, s:s, s:{s:{s:I, s:I, s:{}}}}", "start", u->bucket_start,
	                           "stop", stop, "toggles", u->cfg->unleash_toggle, "yes",
	                           (json_int_t)u->yes, "no", (json_int_t)u->no, "variants");
	if (!doc || !bucket || json_object_set_new(doc, "bucket", bucket) < 0) {
		json_decref(doc);
		return;
	}
	if (post_json(u, "metrics", doc, true)) {
		u->yes = u->no = 0;
		snprintf(u->bucket_start, sizeof(u->bucket_start), "%s", stop);
	}
}

/* ---- the thread ---- */

/* Waits until the moment `at` (deadline_now's clock) or a stop; returns
 * true on stop. */
static bool wait_until(struct unleash *u, double at)
{
	struct timespec until = deadline_after(at - deadline_now());
	pthread_mutex_lock(&u->mu);
	while (!u->stop && !deadline_wait(&u->cond, &u->mu, &until))
		;
	bool stop = u->stop;
	pthread_mutex_unlock(&u->mu);
	return stop;
}

static void *poll_loop(void *arg)
{
	struct unleash *u = arg;
	double metrics_every = u->report ? u->cfg->unleash_metrics_interval : 0;
	if (metrics_every > 0)
		register_instance(u);
	double next_metrics = deadline_now() + metrics_every;
	for (;;) {
		poll_once(u);
		pthread_mutex_lock(&u->mu);
		u->answered = true;
		pthread_cond_broadcast(&u->cond);
		pthread_mutex_unlock(&u->mu);
		double next_poll = deadline_now() + u->cfg->unleash_refresh * (1 + u->skips);
		while (metrics_every > 0 && next_metrics < next_poll) {
			if (wait_until(u, next_metrics))
				goto stopped;
			send_metrics(u);
			next_metrics = deadline_now() + metrics_every;
		}
		if (wait_until(u, next_poll))
			goto stopped;
	}
stopped:
	if (metrics_every > 0) {
		/* What this process counted since the last bucket, sent quickly:
		 * a shutdown must not wait on an unreachable Unleash. */
		atomic_store(&u->stopping, false);
		curl_easy_setopt(u->curl, CURLOPT_TIMEOUT_MS, STOP_TIMEOUT_MS);
		send_metrics(u);
	}
	return NULL;
}

/* ---- start and stop ---- */

static int setup_curl(struct unleash *u)
{
	u->curl = curl_easy_init();
	if (!u->curl)
		return -1;
	const struct client_opts client = {
	    .protocols = "http,https",
	    .connect_timeout_ms = CONNECT_TIMEOUT_MS,
	    .timeout_ms = TRANSFER_TIMEOUT_MS,
	    .accept_encoding = "",
	    .on_body = client_sink_write,
	    .on_header = on_header,
	    .on_progress = on_progress,
	    .progress_data = u,
	};
	return client_setup(u->curl, &client) == CURLE_OK ? 0 : -1;
}

static void unleash_free(struct unleash *u)
{
	if (u->curl)
		curl_easy_cleanup(u->curl);
	free(u->base_url);
	free(u->etag);
	free(u->body);
	free(u);
}

static bool start_thread(struct unleash *u)
{
	const struct gcs_config *cfg = u->cfg;
	size_t blen = strlen(cfg->unleash_url);
	while (blen > 0 && cfg->unleash_url[blen - 1] == '/')
		blen--;
	if (setup_curl(u) < 0 || !(u->base_url = strndup(cfg->unleash_url, blen))) {
		log_msg(LOGL_ERROR, "Unleash disabled: cannot set up libcurl", NULL);
		return false;
	}
	if (deadline_cond_init(&u->cond) != 0) {
		log_msg(LOGL_ERROR, "Unleash disabled: cannot create a condition variable", NULL);
		return false;
	}
	pthread_mutex_init(&u->mu, NULL);
	int err = pthread_create(&u->thread, NULL, poll_loop, u);
	if (err != 0) {
		log_msg(LOGL_ERROR, "Unleash disabled: cannot start the polling thread", "error",
		        strerror(err), NULL);
		pthread_cond_destroy(&u->cond);
		pthread_mutex_destroy(&u->mu);
		return false;
	}
	u->thread_started = true;

	pthread_mutex_lock(&u->mu);
	struct timespec until = deadline_after(FIRST_ANSWER_WAIT_MS / 1000.0);
	while (!u->answered && !deadline_wait(&u->cond, &u->mu, &until))
		;
	bool answered = u->answered;
	pthread_mutex_unlock(&u->mu);
	if (!answered)
		log_msg(LOGL_WARN, "Unleash has not answered yet; serving without waiting", "url",
		        cfg->unleash_url, NULL);
	return true;
}

struct unleash *unleash_start(const struct gcs_config *cfg, struct routing *routing, bool report)
{
	if (!cfg->unleash_url && !cfg->unleash_bootstrap)
		return NULL;
	struct unleash *u = calloc(1, sizeof(*u));
	if (!u) {
		log_msg(LOGL_ERROR, "Unleash disabled: out of memory", NULL);
		return NULL;
	}
	u->cfg = cfg;
	u->routing = routing;
	u->report = report;
	u->poll_failures.every_n = FAIL_LOG_EVERY;
	char host[256] = "unknown";
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(u->instance_id, sizeof(u->instance_id), "%s-%ld", host, (long)getpid());
	new_uuid(u->connection_id);
	snprintf(u->sdk, sizeof(u->sdk), "gcs:%s", gcs_version);
	log_utc_now(u->started, sizeof(u->started));
	snprintf(u->bucket_start, sizeof(u->bucket_start), "%s", u->started);
	if (cfg->unleash_url) /* a bootstrap file alone is never stale */
		metrics_unleash_interval(cfg->unleash_refresh);

	if (!(cfg->unleash_backup && adopt_file(u, cfg->unleash_backup, "backup")) &&
	    cfg->unleash_bootstrap)
		adopt_file(u, cfg->unleash_bootstrap, "bootstrap");
	if (cfg->unleash_url && !start_thread(u)) {
		unleash_free(u);
		return NULL;
	}
	return u;
}

void unleash_stop(struct unleash *u)
{
	if (!u)
		return;
	if (u->thread_started) {
		atomic_store(&u->stopping, true);
		pthread_mutex_lock(&u->mu);
		u->stop = true;
		pthread_cond_broadcast(&u->cond);
		pthread_mutex_unlock(&u->mu);
		pthread_join(u->thread, NULL);
		pthread_cond_destroy(&u->cond);
		pthread_mutex_destroy(&u->mu);
	}
	unleash_free(u);
}
