#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One table drives reading and --help, so the documented defaults are the
 * ones used. Its rows are alike by design: one per variable. */
enum kind { K_STR, K_OPT_STR, K_UINT, K_SIZE, K_MS, K_SECONDS, K_LEVEL, K_VERSION };

struct var {
	const char *name;
	enum kind kind;
	const char *def; /* NULL: unset */
	size_t offset;
	const char *help;
};

#define OFF(field) offsetof(struct gcs_config, field)

static const struct var vars[] = {
    {"STABLE_VERSION", K_VERSION, NULL, OFF(stable_version),
     "conditions version most clusters get (required)"},
    {"CANARY_VERSION", K_VERSION, "none", OFF(canary_version),
     "conditions version tried on the canary population; unset, empty or none: no canary"},
    {"GCS_CONDITIONS_URL", K_STR, "rules/{version}", OFF(conditions_url),
     "root of one version's tree: file://, http://, https:// or a path, with {version}"},
    {"GCS_SCHEMA_DIR", K_STR, "rules/schemas", OFF(schema_dir), "contract JSON Schemas"},
    {"GCS_MAX_FILE_BYTES", K_SIZE, "8388608", OFF(max_file_bytes), "size cap per downloaded file"},
    {"GCS_FETCH_CONNECT_TIMEOUT_MS", K_MS, "2000", OFF(fetch.connect_timeout_ms),
     "connect timeout per download try"},
    {"GCS_FETCH_TIMEOUT_MS", K_MS, "10000", OFF(fetch.timeout_ms),
     "total timeout per download try"},
    {"GCS_FETCH_TRIES", K_UINT, "4", OFF(fetch.max_tries),
     "tries for transient download failures (refused, reset, timeout, 5xx, 429)"},
    {"GCS_FETCH_BACKOFF_MS", K_MS, "500", OFF(fetch.backoff_ms),
     "wait before the first retry of a download; doubles each retry"},
    {"GCS_FETCH_BUDGET_MS", K_MS, "20000", OFF(fetch.budget_ms),
     "time per file after which no new download try starts"},
    {"GCS_LISTEN", K_STR, "0.0.0.0:8000", OFF(listen), "HTTP listen address host:port"},
    {"GCS_THREADS", K_UINT, "0", OFF(threads), "HTTP worker threads; 0: one per CPU"},
    {"GCS_CONNECTION_LIMIT", K_UINT, "12288", OFF(connection_limit),
     "open connections; beyond it a new one is closed at once"},
    {"GCS_CONNECTION_TIMEOUT", K_UINT, "30", OFF(connection_timeout),
     "seconds a connection may go without a byte sent or received"},
    {"GCS_REQUEST_TIMEOUT", K_SECONDS, "10", OFF(request_timeout),
     "seconds a client has to deliver a whole request, headers and body; 0: no limit"},
    {"GCS_KEEPALIVE_TIMEOUT", K_SECONDS, "30", OFF(keepalive_timeout),
     "seconds a connection may idle between two requests; 0: no limit"},
    {"GCS_SHUTDOWN_GRACE", K_SECONDS, "5", OFF(shutdown_grace),
     "seconds in-flight requests get after SIGTERM"},
    {"GCS_METRICS_LISTEN", K_OPT_STR, NULL, OFF(metrics_listen),
     "metrics listen address host:port; unset: metrics on the API port"},
    {"GCS_METRICS_PATH", K_STR, "/metrics", OFF(metrics_path), "path of the metrics"},
    {"GCS_ROUTING_SCRIPT", K_STR, "scripts/routing.lua", OFF(routing_script),
     "Lua script deciding stable or canary per request"},
    {"GCS_ROUTING_BUDGET_MS", K_MS, "50", OFF(routing_budget_ms),
     "CPU milliseconds one call of the routing script may use"},
    {"GCS_RELOAD_INTERVAL", K_SECONDS, "2", OFF(reload_interval),
     "seconds between checks of the routing script for changes"},
    {"GCS_UNLEASH_URL", K_OPT_STR, NULL, OFF(unleash_url),
     "Unleash API root, e.g. https://unleash.example.com/api; unset: no Unleash"},
    {"GCS_UNLEASH_TOKEN", K_OPT_STR, NULL, OFF(unleash_token),
     "Unleash client token, sent as Authorization"},
    {"GCS_UNLEASH_TOGGLE", K_STR, "insights-operator-gathering-conditions-service",
     OFF(unleash_toggle), "feature toggle holding the canary population"},
    {"GCS_UNLEASH_APP_NAME", K_STR, "gcs", OFF(unleash_app_name), "appName sent to Unleash"},
    {"GCS_UNLEASH_ENVIRONMENT", K_STR, "default", OFF(unleash_environment),
     "environment in the Unleash context"},
    {"GCS_UNLEASH_REFRESH", K_SECONDS, "15", OFF(unleash_refresh), "seconds between Unleash polls"},
    {"GCS_UNLEASH_BACKUP", K_OPT_STR, NULL, OFF(unleash_backup),
     "file keeping the last Unleash state across restarts (client API format)"},
    {"GCS_UNLEASH_BOOTSTRAP", K_OPT_STR, NULL, OFF(unleash_bootstrap),
     "client API answer used until the first poll; without GCS_UNLEASH_URL, the whole state"},
    {"GCS_UNLEASH_METRICS_INTERVAL", K_SECONDS, "60", OFF(unleash_metrics_interval),
     "seconds between usage metrics sent to Unleash; 0: no registration, no metrics"},
    {"GCS_LOG_LEVEL", K_LEVEL, "info", OFF(log_level), "debug, info, warn or error"},
    {"ACG_CONFIG", K_OPT_STR, NULL, OFF(acg_config),
     "Clowder's configuration file (ports, metrics, Unleash); a GCS_* variable set wins"},
};

static int fail(char *err, size_t errlen, const char *name, const char *value, const char *why)
{
	snprintf(err, errlen, "%s=\"%s\": %s", name, value, why);
	return -1;
}

/* Versions end up in URLs and metric labels: keep them to SemVer's
 * alphabet so neither can be broken by a typo in a deployment. */
static bool version_text_ok(const char *v)
{
	if (!*v || strlen(v) > 128)
		return false;
	for (const char *p = v; *p; p++) {
		char c = *p;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '.' || c == '-' || c == '+' || c == '_'))
			return false;
	}
	return true;
}

/* K_UINT, K_SIZE and K_MS: decimal digits, then each kind's range. */
static int set_whole(struct gcs_config *cfg, const struct var *v, const char *text, char *err,
                     size_t errlen)
{
	char *field = (char *)cfg + v->offset;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(text, &end, 10);
	/* strtoull also takes leading blanks, '+' and '-' (negated): a whole
	 * number here is decimal digits only */
	if (errno || end == text || *end || !(text[0] >= '0' && text[0] <= '9'))
		return fail(err, errlen, v->name, text, "not a whole number");
	if (v->kind == K_UINT) {
		if (n > 1000000)
			return fail(err, errlen, v->name, text, "too large");
		if (v->offset == OFF(fetch.max_tries)) {
			if (n < 1)
				return fail(err, errlen, v->name, text, "must be at least 1");
			*(int *)field = (int)n;
		} else {
			*(unsigned *)field = (unsigned)n;
		}
	} else if (v->kind == K_SIZE) {
		if (n < 1024)
			return fail(err, errlen, v->name, text, "must be at least 1024");
		*(size_t *)field = (size_t)n;
	} else {
		if (n < 1 || n > 3600000)
			return fail(err, errlen, v->name, text, "must be 1 to 3600000 ms");
		*(long *)field = (long)n;
	}
	return 0;
}

static int set_var(struct gcs_config *cfg, const struct var *v, const char *text, char *err,
                   size_t errlen)
{
	char *field = (char *)cfg + v->offset;
	char *end;
	switch (v->kind) {
	case K_STR:
		if (!*text)
			return fail(err, errlen, v->name, text, "must not be empty");
		*(const char **)field = text;
		return 0;
	case K_OPT_STR:
		*(const char **)field = *text ? text : NULL;
		return 0;
	case K_VERSION:
		if (v->offset == OFF(canary_version) && (!*text || strcmp(text, "none") == 0)) {
			*(const char **)field = NULL;
			return 0;
		}
		if (!version_text_ok(text))
			return fail(err, errlen, v->name, text,
			            "not a version (letters, digits, '.', '-', '+', '_')");
		*(const char **)field = text;
		return 0;
	case K_UINT:
	case K_SIZE:
	case K_MS:
		return set_whole(cfg, v, text, err, errlen);
	case K_SECONDS: {
		errno = 0;
		double d = strtod(text, &end);
		if (errno || end == text || *end || !isfinite(d) || d < 0 || d > 86400)
			return fail(err, errlen, v->name, text,
			            "not a number of seconds (0 to 86400)");
		*(double *)field = d;
		return 0;
	}
	case K_LEVEL:
		if (!log_parse_level(text, (enum log_level *)field))
			return fail(err, errlen, v->name, text,
			            "not one of debug, info, warn, error");
		return 0;
	}
	return -1;
}

/* A variable set to something: an empty one counts as unset, so that a
 * Template may pass an empty parameter through without hiding the file. */
static bool given(const char *name)
{
	const char *v = getenv(name);
	return v && *v;
}

/* What Clowder's file gives, for each setting whose variable is not given. */
static int apply_clowder(struct gcs_config *cfg, char *err, size_t errlen)
{
	struct clowder *c = &cfg->clowder;
	char why[1024];
	if (clowder_read(cfg->acg_config, c, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "ACG_CONFIG %s", why);
		return -1;
	}
	if (c->public_port && !given("GCS_LISTEN")) {
		snprintf(cfg->clowder_listen[0], sizeof(cfg->clowder_listen[0]), "0.0.0.0:%u",
		         c->public_port);
		cfg->listen = cfg->clowder_listen[0];
	}
	if (!given("GCS_METRICS_LISTEN")) {
		snprintf(cfg->clowder_listen[1], sizeof(cfg->clowder_listen[1]), "0.0.0.0:%u",
		         c->metrics_port);
		cfg->metrics_listen = cfg->clowder_listen[1];
	}
	if (!given("GCS_METRICS_PATH"))
		cfg->metrics_path = c->metrics_path;
	if (c->feature_flags && !given("GCS_UNLEASH_URL")) {
		if (!c->has_token && !given("GCS_UNLEASH_TOKEN")) {
			snprintf(err, errlen,
			         "ACG_CONFIG %s: /featureFlags/clientAccessToken: missing, and "
			         "GCS_UNLEASH_TOKEN is not set: Unleash refuses a client without a "
			         "token",
			         cfg->acg_config);
			return -1;
		}
		cfg->unleash_url = c->unleash_url;
	}
	if (c->has_token && !given("GCS_UNLEASH_TOKEN"))
		cfg->unleash_token = c->unleash_token;
	return 0;
}

/* A variable's text: the versions given in its place, else the environment. */
static const char *lookup(const struct var *v, const struct config_versions *given)
{
	if (given && v->offset == OFF(stable_version) && given->stable)
		return given->stable;
	if (given && v->offset == OFF(canary_version) && given->canary)
		return given->canary;
	return getenv(v->name);
}

int config_from_env(struct gcs_config *cfg, char *err, size_t errlen)
{
	return config_read(cfg, NULL, err, errlen);
}

int config_read(struct gcs_config *cfg, const struct config_versions *versions, char *err,
                size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const struct var *v = &vars[i];
		const char *text = lookup(v, versions);
		if (!text)
			text = v->def;
		if (!text) {
			if (v->kind == K_VERSION) {
				snprintf(err, errlen, "%s is required", v->name);
				return -1;
			}
			continue;
		}
		if (set_var(cfg, v, text, err, errlen) < 0)
			return -1;
	}
	if (!strstr(cfg->conditions_url, "{version}"))
		return fail(err, errlen, "GCS_CONDITIONS_URL", cfg->conditions_url,
		            "must contain {version}");
	if (cfg->threads > 1024)
		return fail(err, errlen, "GCS_THREADS", getenv("GCS_THREADS"),
		            "at most 1024 threads");
	if (cfg->connection_limit < 1)
		return fail(err, errlen, "GCS_CONNECTION_LIMIT", getenv("GCS_CONNECTION_LIMIT"),
		            "must be at least 1");
	if (cfg->reload_interval < 0.05)
		return fail(err, errlen, "GCS_RELOAD_INTERVAL", getenv("GCS_RELOAD_INTERVAL"),
		            "must be at least 0.05");
	if (cfg->unleash_refresh < 0.1)
		return fail(err, errlen, "GCS_UNLEASH_REFRESH", getenv("GCS_UNLEASH_REFRESH"),
		            "must be at least 0.1");
	if (cfg->unleash_metrics_interval > 0 && cfg->unleash_metrics_interval < 0.1)
		return fail(err, errlen, "GCS_UNLEASH_METRICS_INTERVAL",
		            getenv("GCS_UNLEASH_METRICS_INTERVAL"),
		            "must be 0 (off) or at least 0.1");
	const char *mp = cfg->metrics_path;
	if (mp[0] != '/' || mp[strcspn(mp, " ?#\t\r\n")])
		return fail(err, errlen, "GCS_METRICS_PATH", mp,
		            "a path starting with /, without spaces, ? or #");
	cfg->fetch.max_bytes = cfg->max_file_bytes;
	if (cfg->acg_config && apply_clowder(cfg, err, errlen) < 0)
		return -1;
	/* the same address twice cannot be bound, but for port 0 (any free one) */
	size_t n = cfg->metrics_listen ? strlen(cfg->metrics_listen) : 0;
	if (n > 2 && strcmp(cfg->metrics_listen, cfg->listen) == 0 &&
	    strcmp(cfg->metrics_listen + n - 2, ":0") != 0)
		return fail(err, errlen, "GCS_METRICS_LISTEN", cfg->metrics_listen,
		            "is also the API's address (GCS_LISTEN): metrics need a port of their "
		            "own");
	return 0;
}

void config_print_help(FILE *out)
{
	fprintf(out, "Environment:\n");
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		const struct var *v = &vars[i];
		fprintf(out, "  %-30s %s", v->name, v->help);
		if (v->def)
			fprintf(out, " (default: %s)", v->def);
		fputc('\n', out);
	}
}
