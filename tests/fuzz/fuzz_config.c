/* The environment configuration. Input: lines NAME=VALUE, set as the whole
 * environment. Properties: a refusal names the variable first; reading is
 * deterministic; a whole number is accepted only when written in decimal
 * digits, and means what it says, within its range; a text setting is the
 * text set (an optional one unset when empty); what is required is there;
 * a listen address http accepts has a port. */
#include <ctype.h>

#include "config.h"
#include "fuzz.h"
#include "http.h"

extern char **environ;

static const char *const names[] = {
    "STABLE_VERSION",
    "CANARY_VERSION",
    "GCS_CONDITIONS_URL",
    "GCS_SCHEMA_DIR",
    "GCS_MAX_FILE_BYTES",
    "GCS_FETCH_CONNECT_TIMEOUT_MS",
    "GCS_FETCH_TIMEOUT_MS",
    "GCS_FETCH_TRIES",
    "GCS_LISTEN",
    "GCS_THREADS",
    "GCS_CONNECTION_LIMIT",
    "GCS_CONNECTION_TIMEOUT",
    "GCS_REQUEST_TIMEOUT",
    "GCS_KEEPALIVE_TIMEOUT",
    "GCS_SHUTDOWN_GRACE",
    "GCS_METRICS_LISTEN",
    "GCS_METRICS_PATH",
    "GCS_ROUTING_SCRIPT",
    "GCS_RELOAD_INTERVAL",
    "GCS_ROUTING_BUDGET_MS",
    "GCS_UNLEASH_URL",
    "GCS_UNLEASH_TOKEN",
    "GCS_UNLEASH_TOGGLE",
    "GCS_UNLEASH_APP_NAME",
    "GCS_UNLEASH_ENVIRONMENT",
    "GCS_UNLEASH_REFRESH",
    "GCS_UNLEASH_BACKUP",
    "GCS_UNLEASH_BOOTSTRAP",
    "GCS_UNLEASH_METRICS_INTERVAL",
    "GCS_LOG_LEVEL",
    "ACG_CONFIG",
};

/* A whole number as the user typed it, when it was set. */
static void check_whole(const char *name, unsigned long long got)
{
	const char *text = getenv(name);
	if (!text)
		return;
	for (const char *p = text; *p; p++)
		FUZZ_CHECK(isdigit((unsigned char)*p), "%s=\"%s\" accepted as a whole number", name,
		           text);
	FUZZ_CHECK(strtoull(text, NULL, 10) == got, "%s=\"%s\" read as %llu", name, text, got);
}

/* A text setting is what the environment says, or its default when unset. */
static void check_text(const char *name, const char *got, const char *def, bool optional)
{
	const char *text = getenv(name);
	if (!text)
		text = def;
	if (optional && text && !*text)
		text = NULL;
	FUZZ_CHECK(got == text || (got && text && strcmp(got, text) == 0), "%s read as \"%s\"",
	           name, got ? got : "(null)");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstring(data, size);
	/* The environment is an array of the input's own lines, the last of
	 * one name winning as with setenv: setenv keeps every value it was
	 * given, so it would grow without bound over a long run. */
	char **env = calloc(size / 2 + 2, sizeof(*env));
	if (!env)
		abort();
	size_t nenv = 0;
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *eq = strchr(line, '=');
		if (!eq || eq == line)
			continue;
		size_t n = (size_t)(eq - line) + 1, i = 0;
		while (i < nenv && strncmp(env[i], line, n) != 0)
			i++;
		env[i] = line;
		nenv += i == nenv;
	}
	environ = env;
	struct gcs_config cfg, again;
	char err[512] = "", err2[512] = "";
	int rc = config_from_env(&cfg, err, sizeof(err));
	FUZZ_CHECK(config_from_env(&again, err2, sizeof(err2)) == rc && strcmp(err, err2) == 0,
	           "two reads of one environment disagree");
	if (rc != 0) {
		FUZZ_CHECK(rc == -1, "config_from_env returned %d", rc);
		bool named = false;
		for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++) {
			size_t n = strlen(names[i]);
			if (strncmp(err, names[i], n) == 0 && (err[n] == '=' || err[n] == ' '))
				named = true;
		}
		FUZZ_CHECK(named, "the error names no variable: %s", err);
	} else {
		FUZZ_CHECK(cfg.stable_version && getenv("STABLE_VERSION") &&
		               strcmp(cfg.stable_version, getenv("STABLE_VERSION")) == 0,
		           "STABLE_VERSION is required");
		const char *canary = getenv("CANARY_VERSION");
		FUZZ_CHECK((cfg.canary_version == NULL) ==
		               (!canary || !*canary || strcmp(canary, "none") == 0),
		           "CANARY_VERSION=\"%s\" misread", canary ? canary : "(unset)");
		FUZZ_CHECK(strstr(cfg.conditions_url, "{version}"),
		           "a URL without {version} accepted");
		check_whole("GCS_MAX_FILE_BYTES", cfg.max_file_bytes);
		check_whole("GCS_FETCH_CONNECT_TIMEOUT_MS",
		            (unsigned long long)cfg.fetch.connect_timeout_ms);
		check_whole("GCS_FETCH_TIMEOUT_MS", (unsigned long long)cfg.fetch.timeout_ms);
		check_whole("GCS_FETCH_TRIES", (unsigned long long)cfg.fetch.max_tries);
		check_whole("GCS_THREADS", cfg.threads);
		check_whole("GCS_CONNECTION_LIMIT", cfg.connection_limit);
		check_whole("GCS_CONNECTION_TIMEOUT", cfg.connection_timeout);
		check_whole("GCS_ROUTING_BUDGET_MS", (unsigned long long)cfg.routing_budget_ms);
		FUZZ_CHECK(cfg.fetch.connect_timeout_ms >= 1 && cfg.fetch.timeout_ms >= 1 &&
		               cfg.routing_budget_ms >= 1 &&
		               cfg.fetch.connect_timeout_ms <= 3600000 &&
		               cfg.fetch.timeout_ms <= 3600000 && cfg.routing_budget_ms <= 3600000,
		           "milliseconds out of their range accepted");
		FUZZ_CHECK(cfg.max_file_bytes >= 1024 && cfg.fetch.max_tries >= 1,
		           "a size or a try count out of its range accepted");
		check_text("GCS_CONDITIONS_URL", cfg.conditions_url, "rules/{version}", false);
		check_text("GCS_SCHEMA_DIR", cfg.schema_dir, "rules/schemas", false);
		check_text("GCS_LISTEN", cfg.listen, "0.0.0.0:8000", false);
		check_text("GCS_ROUTING_SCRIPT", cfg.routing_script, "scripts/routing.lua", false);
		check_text("GCS_UNLEASH_URL", cfg.unleash_url, NULL, true);
		check_text("GCS_UNLEASH_TOKEN", cfg.unleash_token, NULL, true);
		check_text("GCS_UNLEASH_TOGGLE", cfg.unleash_toggle,
		           "insights-operator-gathering-conditions-service", false);
		check_text("GCS_UNLEASH_APP_NAME", cfg.unleash_app_name, "gcs", false);
		check_text("GCS_UNLEASH_ENVIRONMENT", cfg.unleash_environment, "default", false);
		check_text("GCS_UNLEASH_BACKUP", cfg.unleash_backup, NULL, true);
		check_text("GCS_UNLEASH_BOOTSTRAP", cfg.unleash_bootstrap, NULL, true);
		check_text("GCS_METRICS_LISTEN", cfg.metrics_listen, NULL, true);
		check_text("GCS_METRICS_PATH", cfg.metrics_path, "/metrics", false);
		FUZZ_CHECK(cfg.metrics_path[0] == '/', "GCS_METRICS_PATH=\"%s\" accepted",
		           cfg.metrics_path);
		/* the listen addresses are checked by http before anything loads */
		char lerr[256] = "";
		if (http_check(&cfg, lerr, sizeof(lerr)) == 0) {
			const char *colon = strrchr(cfg.listen, ':');
			FUZZ_CHECK(colon && colon[1] && strtoul(colon + 1, NULL, 10) <= 65535,
			           "GCS_LISTEN=\"%s\" accepted without a port", cfg.listen);
			colon = cfg.metrics_listen ? strrchr(cfg.metrics_listen, ':') : NULL;
			FUZZ_CHECK(!cfg.metrics_listen ||
			               (colon && colon[1] && strtoul(colon + 1, NULL, 10) <= 65535),
			           "GCS_METRICS_LISTEN=\"%s\" accepted without a port",
			           cfg.metrics_listen);
		} else {
			FUZZ_CHECK(lerr[0], "GCS_LISTEN=\"%s\" refused without a reason",
			           cfg.listen);
		}
		FUZZ_CHECK(cfg.unleash_refresh >= 0.1 && cfg.reload_interval >= 0.05 &&
		               cfg.shutdown_grace >= 0 && cfg.shutdown_grace <= 86400,
		           "a duration out of its range accepted");
	}
	environ = NULL;
	free(env);
	free(text);
	return 0;
}
