/* unleash: the background poller of an Unleash server's client API. */
#include "unleash.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

/* Startup never waits longer than this for Unleash: an outage must not
 * block a deployment. */
#define FIRST_ANSWER_WAIT_MS 2000
#define MAX_BACKOFF_S        60.0
#define MAX_BODY_BYTES       (32u << 20)
#define CONNECT_TIMEOUT_MS   3000L
#define TRANSFER_TIMEOUT_MS  10000L

struct unleash {
	const struct gcs_config *cfg;
	struct routing *routing;
	char *features_url;
	char instance_id[300];

	pthread_t thread;
	pthread_mutex_t mu; /* guards stop and answered, with cond */
	pthread_cond_t cond;
	bool stop;
	bool answered;
	atomic_bool stopping; /* read by curl's progress callback mid-transfer */

	/* Owned by the polling thread after start. */
	CURL *curl;
	char *etag;
	char *toggle; /* the published toggle JSON, NULL for nil */
	bool known;   /* toggle holds a state (from a fetch or the backup) */
	int failures; /* consecutive failed polls */
};

/* ---- pure steps ---- */

static json_t *segments_by_id(json_t *segments, json_int_t id)
{
	size_t i;
	json_t *seg;
	json_array_foreach(segments, i, seg)
	{
		json_t *sid = json_object_get(seg, "id");
		if (json_is_integer(sid) && json_integer_value(sid) == id)
			return seg;
	}
	return NULL;
}

/* Appends the referenced segments' constraints to the strategy's; keeps
 * only the references that could not be resolved. */
static int resolve_strategy_segments(json_t *strategy, json_t *segments)
{
	json_t *refs = json_object_get(strategy, "segments");
	if (!json_is_array(refs) || json_array_size(refs) == 0) {
		json_object_del(strategy, "segments");
		return 0;
	}
	json_t *constraints = json_object_get(strategy, "constraints");
	if (!json_is_array(constraints)) {
		constraints = json_array();
		if (!constraints || json_object_set_new(strategy, "constraints", constraints) < 0)
			return -1;
	}
	json_t *unresolved = json_array();
	if (!unresolved)
		return -1;
	size_t i;
	json_t *ref;
	json_array_foreach(refs, i, ref)
	{
		json_t *seg =
		    json_is_integer(ref) ? segments_by_id(segments, json_integer_value(ref)) : NULL;
		json_t *seg_constraints = json_object_get(seg, "constraints");
		if (!seg || (seg_constraints && !json_is_array(seg_constraints))) {
			json_array_append(unresolved, ref);
			continue;
		}
		if (seg_constraints && json_array_extend(constraints, seg_constraints) < 0) {
			json_decref(unresolved);
			return -1;
		}
	}
	if (json_array_size(unresolved) == 0) {
		json_decref(unresolved);
		json_object_del(strategy, "segments");
		return 0;
	}
	return json_object_set_new(strategy, "segments", unresolved);
}

int unleash_extract_toggle(const char *body, size_t len, const char *name, char **toggle_json,
                           char *err, size_t errlen)
{
	*toggle_json = NULL;
	json_error_t jerr;
	json_t *doc = json_loadb(body, len, 0, &jerr);
	if (!doc) {
		snprintf(err, errlen, "client API answer is not JSON: line %d: %s", jerr.line,
		         jerr.text);
		return -1;
	}
	json_t *features = json_object_get(doc, "features");
	if (!json_is_array(features)) {
		snprintf(err, errlen, "client API answer has no \"features\" array");
		json_decref(doc);
		return -1;
	}
	json_t *segments = json_object_get(doc, "segments");
	json_t *toggle = NULL;
	size_t i;
	json_t *feature;
	json_array_foreach(features, i, feature)
	{
		json_t *fname = json_object_get(feature, "name");
		if (json_is_string(fname) && strcmp(json_string_value(fname), name) == 0) {
			toggle = feature;
			break;
		}
	}
	if (!toggle) {
		json_decref(doc);
		return 0;
	}
	if (!json_is_object(toggle)) {
		snprintf(err, errlen, "feature \"%s\" is not an object", name);
		json_decref(doc);
		return -1;
	}
	json_t *strategies = json_object_get(toggle, "strategies");
	json_t *strategy;
	json_array_foreach(strategies, i, strategy)
	{
		if (json_is_object(strategy) && resolve_strategy_segments(strategy, segments) < 0) {
			snprintf(err, errlen, "out of memory resolving segments of \"%s\"", name);
			json_decref(doc);
			return -1;
		}
	}
	*toggle_json = json_dumps(toggle, JSON_COMPACT);
	json_decref(doc);
	if (!*toggle_json) {
		snprintf(err, errlen, "out of memory serializing \"%s\"", name);
		return -1;
	}
	return 0;
}

double unleash_rollout_percent(const char *toggle_json)
{
	if (!toggle_json)
		return -1;
	json_t *toggle = json_loads(toggle_json, 0, NULL);
	double pct = -1;
	json_t *strategies = json_object_get(toggle, "strategies");
	json_t *enabled = json_object_get(toggle, "enabled");
	if (json_is_false(enabled)) {
		pct = 0;
	} else if (json_is_true(enabled) && json_array_size(strategies) == 1) {
		json_t *s = json_array_get(strategies, 0);
		json_t *params = json_object_get(s, "parameters");
		json_t *rollout = json_object_get(params, "rollout");
		const char *sname = json_string_value(json_object_get(s, "name"));
		if (sname && strcmp(sname, "flexibleRollout") == 0) {
			/* The API serves the rollout as a string; accept a number too. */
			if (json_is_number(rollout)) {
				pct = json_number_value(rollout);
			} else if (json_is_string(rollout)) {
				char *end;
				errno = 0;
				double v = strtod(json_string_value(rollout), &end);
				if (errno == 0 && end != json_string_value(rollout) && *end == '\0')
					pct = v;
			}
			if (pct < 0 || pct > 100)
				pct = -1;
		}
	}
	json_decref(toggle);
	return pct;
}

int unleash_backup_write(const char *path, const char *toggle_json, char *err, size_t errlen)
{
	json_t *toggle = json_null();
	if (toggle_json) {
		json_error_t jerr;
		toggle = json_loads(toggle_json, 0, &jerr);
		if (!toggle) {
			snprintf(err, errlen, "%s: toggle is not JSON: %s", path, jerr.text);
			return -1;
		}
	}
	json_t *doc = json_pack("{s:i,s:o}", "format", 1, "toggle", toggle);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!text) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}

	size_t tmplen = strlen(path) + 32;
	char *tmp = malloc(tmplen);
	if (!tmp) {
		free(text);
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
	size_t n = strlen(text);
	bool ok = fwrite(text, 1, n, f) == n && fputc('\n', f) != EOF && fflush(f) == 0 &&
	          fsync(fileno(f)) == 0;
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
	free(text);
	return rc;
}

int unleash_backup_read(const char *path, char **toggle_json, char *err, size_t errlen)
{
	*toggle_json = NULL;
	FILE *f = fopen(path, "r");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	json_error_t jerr;
	json_t *doc = json_loadf(f, 0, &jerr);
	fclose(f);
	if (!doc) {
		snprintf(err, errlen, "%s: line %d: %s", path, jerr.line, jerr.text);
		return -1;
	}
	json_t *format = json_object_get(doc, "format");
	json_t *toggle = json_object_get(doc, "toggle");
	int rc = -1;
	if (!json_is_integer(format) || json_integer_value(format) != 1) {
		snprintf(err, errlen, "%s: not a gcs Unleash backup (format 1)", path);
	} else if (json_is_null(toggle)) {
		rc = 1;
	} else if (!json_is_object(toggle)) {
		snprintf(err, errlen, "%s: \"toggle\" is neither an object nor null", path);
	} else if (!(*toggle_json = json_dumps(toggle, JSON_COMPACT))) {
		snprintf(err, errlen, "%s: out of memory", path);
	} else {
		rc = 1;
	}
	json_decref(doc);
	return rc;
}

/* ---- the polling thread ---- */

struct body {
	char *data;
	size_t len;
	bool too_large;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;
	if (b->len + n > MAX_BODY_BYTES) {
		b->too_large = true;
		return 0;
	}
	char *grown = realloc(b->data, b->len + n + 1);
	if (!grown)
		return 0;
	memcpy(grown + b->len, ptr, n);
	b->data = grown;
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* Keeps the ETag of the answer, for the next If-None-Match. */
static size_t on_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
	char **etag = userdata;
	size_t n = size * nitems;
	if (n > 5 && strncasecmp(buffer, "etag:", 5) == 0) {
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

static struct curl_slist *request_headers(const struct unleash *u)
{
	const struct gcs_config *cfg = u->cfg;
	char line[1024];
	struct curl_slist *h = NULL, *next;
	const char *values[4][2] = {
	    {"Authorization", cfg->unleash_token},
	    {"UNLEASH-APPNAME", cfg->unleash_app_name},
	    {"UNLEASH-INSTANCEID", u->instance_id},
	    {"If-None-Match", u->etag},
	};
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

/* A state learned from Unleash: publish it if it differs from the current. */
static void adopt(struct unleash *u, char *toggle)
{
	bool same = u->known && ((!toggle && !u->toggle) ||
	                         (toggle && u->toggle && strcmp(toggle, u->toggle) == 0));
	if (same) {
		free(toggle);
		return;
	}
	free(u->toggle);
	u->toggle = toggle;
	u->known = true;
	routing_set_unleash(u->routing, toggle);
	double pct = unleash_rollout_percent(toggle);
	metrics_unleash_rollout(pct);
	char pct_text[32];
	snprintf(pct_text, sizeof(pct_text), "%g", pct);
	log_msg(LOGL_INFO, toggle ? "Unleash toggle updated" : "Unleash toggle absent", "toggle",
	        u->cfg->unleash_toggle, "rollout", pct >= 0 ? pct_text : NULL, NULL);

	if (u->cfg->unleash_backup) {
		char err[512];
		if (unleash_backup_write(u->cfg->unleash_backup, toggle, err, sizeof(err)) < 0)
			log_msg(LOGL_WARN, "Unleash backup not written", "error", err, NULL);
	}
}

/* One GET /client/features. Returns true when Unleash answered usefully. */
static bool poll_once(struct unleash *u)
{
	char err[512] = "";
	struct body body = {0};
	struct curl_slist *headers = request_headers(u);
	if (!headers) {
		log_msg(LOGL_ERROR, "Unleash poll skipped: out of memory", NULL);
		metrics_unleash_fetch("error");
		return false;
	}
	CURL *c = u->curl;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &u->etag);
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(headers);

	bool ok = false;
	if (rc != CURLE_OK) {
		snprintf(err, sizeof(err), "%s: %s", u->features_url,
		         body.too_large ? "answer larger than the limit" : curl_easy_strerror(rc));
	} else if (status == 304) {
		metrics_unleash_fetch("not_modified");
		ok = true;
	} else if (status != 200) {
		snprintf(err, sizeof(err), "%s: HTTP %ld", u->features_url, status);
	} else {
		char *toggle;
		if (unleash_extract_toggle(body.data ? body.data : "", body.len,
		                           u->cfg->unleash_toggle, &toggle, err,
		                           sizeof(err)) == 0) {
			metrics_unleash_fetch("ok");
			adopt(u, toggle);
			ok = true;
		} else {
			/* A state we cannot read is not a state: ask again in full. */
			free(u->etag);
			u->etag = NULL;
		}
	}
	free(body.data);

	if (ok) {
		metrics_unleash_success((double)time(NULL));
		if (u->failures > 0)
			log_msg(LOGL_INFO, "Unleash reachable again", NULL);
		u->failures = 0;
		return true;
	}
	metrics_unleash_fetch("error");
	/* Log the first failure of a run and then every tenth, not every poll. */
	if (u->failures % 10 == 0)
		log_msg(LOGL_WARN, "Unleash poll failed; keeping the last known state", "error",
		        err, "state", u->known ? "known" : "none", NULL);
	u->failures++;
	return false;
}

static double next_delay(const struct unleash *u)
{
	double refresh = u->cfg->unleash_refresh > 0 ? u->cfg->unleash_refresh : 15;
	double delay = refresh;
	for (int i = 0; i < u->failures && delay < MAX_BACKOFF_S; i++)
		delay *= 2;
	if (u->failures > 0 && delay > MAX_BACKOFF_S)
		delay = refresh > MAX_BACKOFF_S ? refresh : MAX_BACKOFF_S;
	return delay;
}

static struct timespec deadline_after(double seconds)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long ns = ts.tv_nsec + (long long)((seconds - (long long)seconds) * 1e9);
	ts.tv_sec += (time_t)seconds + (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	return ts;
}

static void *poll_loop(void *arg)
{
	struct unleash *u = arg;
	for (;;) {
		poll_once(u);
		pthread_mutex_lock(&u->mu);
		u->answered = true;
		pthread_cond_broadcast(&u->cond);
		struct timespec until = deadline_after(next_delay(u));
		while (!u->stop) {
			if (pthread_cond_timedwait(&u->cond, &u->mu, &until) == ETIMEDOUT)
				break;
		}
		bool stop = u->stop;
		pthread_mutex_unlock(&u->mu);
		if (stop)
			return NULL;
	}
}

/* ---- start and stop ---- */

static void load_backup(struct unleash *u)
{
	const char *path = u->cfg->unleash_backup;
	if (!path)
		return;
	char err[512];
	char *toggle;
	int rc = unleash_backup_read(path, &toggle, err, sizeof(err));
	if (rc < 0) {
		log_msg(LOGL_WARN, "Unleash backup ignored", "error", err, NULL);
		return;
	}
	if (rc == 0)
		return;
	u->toggle = toggle;
	u->known = true;
	routing_set_unleash(u->routing, toggle);
	metrics_unleash_rollout(unleash_rollout_percent(toggle));
	log_msg(LOGL_INFO, "Unleash state restored from the backup", "file", path, NULL);
}

static int setup_curl(struct unleash *u)
{
	u->curl = curl_easy_init();
	if (!u->curl)
		return -1;
	CURL *c = u->curl;
	bool ok = curl_easy_setopt(c, CURLOPT_URL, u->features_url) == CURLE_OK &&
	          curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	          curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS) == CURLE_OK &&
	          curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, TRANSFER_TIMEOUT_MS) == CURLE_OK &&
	          curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
	          curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "") == CURLE_OK &&
	          curl_easy_setopt(c, CURLOPT_USERAGENT, "gcs/" GCS_VERSION) == CURLE_OK &&
	          curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
	          curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) == CURLE_OK &&
	          curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress) == CURLE_OK &&
	          curl_easy_setopt(c, CURLOPT_XFERINFODATA, u) == CURLE_OK &&
	          curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) == CURLE_OK;
	return ok ? 0 : -1;
}

/* {url}/client/features?namePrefix={toggle}: the server filters, so a big
 * Unleash instance does not send every toggle it has. */
static char *features_url(CURL *c, const struct gcs_config *cfg)
{
	const char *base = cfg->unleash_url;
	size_t blen = strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	char *name = curl_easy_escape(c, cfg->unleash_toggle, 0);
	if (!name)
		return NULL;
	size_t len = blen + strlen(name) + 64;
	char *url = malloc(len);
	if (url)
		snprintf(url, len, "%.*s/client/features?namePrefix=%s", (int)blen, base, name);
	curl_free(name);
	return url;
}

static void unleash_free(struct unleash *u)
{
	if (u->curl)
		curl_easy_cleanup(u->curl);
	free(u->features_url);
	free(u->etag);
	free(u->toggle);
	free(u);
}

struct unleash *unleash_start(const struct gcs_config *cfg, struct routing *routing)
{
	if (!cfg->unleash_url)
		return NULL;
	struct unleash *u = calloc(1, sizeof(*u));
	if (!u) {
		log_msg(LOGL_ERROR, "Unleash disabled: out of memory", NULL);
		return NULL;
	}
	u->cfg = cfg;
	u->routing = routing;
	metrics_unleash_interval(cfg->unleash_refresh);
	char host[256] = "unknown";
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	snprintf(u->instance_id, sizeof(u->instance_id), "%s-%ld", host, (long)getpid());

	load_backup(u);
	if (setup_curl(u) < 0 || !(u->features_url = features_url(u->curl, cfg)) ||
	    curl_easy_setopt(u->curl, CURLOPT_URL, u->features_url) != CURLE_OK) {
		log_msg(LOGL_ERROR, "Unleash disabled: cannot set up libcurl", NULL);
		unleash_free(u);
		return NULL;
	}

	pthread_condattr_t attr;
	if (pthread_condattr_init(&attr) != 0 ||
	    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&u->cond, &attr) != 0) {
		log_msg(LOGL_ERROR, "Unleash disabled: cannot create a condition variable", NULL);
		unleash_free(u);
		return NULL;
	}
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&u->mu, NULL);
	int err = pthread_create(&u->thread, NULL, poll_loop, u);
	if (err != 0) {
		log_msg(LOGL_ERROR, "Unleash disabled: cannot start the polling thread", "error",
		        strerror(err), NULL);
		pthread_cond_destroy(&u->cond);
		pthread_mutex_destroy(&u->mu);
		unleash_free(u);
		return NULL;
	}

	pthread_mutex_lock(&u->mu);
	struct timespec until = deadline_after(FIRST_ANSWER_WAIT_MS / 1000.0);
	while (!u->answered) {
		if (pthread_cond_timedwait(&u->cond, &u->mu, &until) == ETIMEDOUT)
			break;
	}
	bool answered = u->answered;
	pthread_mutex_unlock(&u->mu);
	if (!answered)
		log_msg(LOGL_WARN, "Unleash has not answered yet; serving without waiting", "url",
		        cfg->unleash_url, NULL);
	return u;
}

void unleash_stop(struct unleash *u)
{
	if (!u)
		return;
	atomic_store(&u->stopping, true);
	pthread_mutex_lock(&u->mu);
	u->stop = true;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->mu);
	pthread_join(u->thread, NULL);
	pthread_cond_destroy(&u->cond);
	pthread_mutex_destroy(&u->mu);
	unleash_free(u);
}
