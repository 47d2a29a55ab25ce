/* config: every setting, read once from the environment. The variable
 * names are a contract with deploy/, the tests and the README. */
#ifndef GCS_CONFIG_H
#define GCS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "clowder.h"
#include "fetch.h"
#include "log.h"

struct gcs_config {
	/* conditions */
	const char *stable_version; /* STABLE_VERSION, required */
	const char *canary_version; /* CANARY_VERSION; NULL when unset, empty or "none" */
	const char *conditions_url; /* GCS_CONDITIONS_URL, template with {version} */
	const char *schema_dir;     /* GCS_SCHEMA_DIR */
	size_t max_file_bytes;      /* GCS_MAX_FILE_BYTES */
	/* GCS_FETCH_CONNECT_TIMEOUT_MS, GCS_FETCH_TIMEOUT_MS, GCS_FETCH_TRIES,
	 * GCS_FETCH_BACKOFF_MS, GCS_FETCH_BUDGET_MS */
	struct fetch_opts fetch;

	/* HTTP */
	const char *listen;          /* GCS_LISTEN, host:port */
	unsigned threads;            /* GCS_THREADS, 0 = number of CPUs */
	unsigned connection_limit;   /* GCS_CONNECTION_LIMIT */
	unsigned connection_timeout; /* GCS_CONNECTION_TIMEOUT, seconds */
	double request_timeout;      /* GCS_REQUEST_TIMEOUT, seconds; 0: none */
	double keepalive_timeout;    /* GCS_KEEPALIVE_TIMEOUT, seconds; 0: none */
	double shutdown_grace;       /* GCS_SHUTDOWN_GRACE, seconds */
	const char *metrics_listen;  /* GCS_METRICS_LISTEN; NULL: metrics on the API port */
	const char *metrics_path;    /* GCS_METRICS_PATH */

	/* routing */
	const char *routing_script; /* GCS_ROUTING_SCRIPT */
	double reload_interval;     /* GCS_RELOAD_INTERVAL, seconds */
	long routing_budget_ms;     /* GCS_ROUTING_BUDGET_MS, CPU time per call */

	/* Unleash; url NULL = not configured */
	const char *unleash_url;         /* GCS_UNLEASH_URL */
	const char *unleash_token;       /* GCS_UNLEASH_TOKEN */
	const char *unleash_toggle;      /* GCS_UNLEASH_TOGGLE */
	const char *unleash_app_name;    /* GCS_UNLEASH_APP_NAME */
	const char *unleash_environment; /* GCS_UNLEASH_ENVIRONMENT */
	double unleash_refresh;          /* GCS_UNLEASH_REFRESH, seconds */
	const char *unleash_backup;      /* GCS_UNLEASH_BACKUP, file path or NULL */
	const char *unleash_bootstrap;   /* GCS_UNLEASH_BOOTSTRAP, file path or NULL */
	double unleash_metrics_interval; /* GCS_UNLEASH_METRICS_INTERVAL, seconds; 0: off */

	enum log_level log_level; /* GCS_LOG_LEVEL */

	/* Clowder: ACG_CONFIG names its file (NULL: none). What the file gives
	 * fills the settings above whose GCS_* variable is not set. */
	const char *acg_config;
	struct clowder clowder;
	char clowder_listen[2][24]; /* "0.0.0.0:port" of publicPort, metricsPort */
};

/* Fills cfg from the environment (strings point into environ or into cfg)
 * and from Clowder's file when ACG_CONFIG names one. Returns 0, or -1 with
 * one line in err naming the variable (or the file and the JSON pointer)
 * and what is wrong. */
int config_from_env(struct gcs_config *cfg, char *err, size_t errlen);

/* Versions that stand in for STABLE_VERSION and CANARY_VERSION where not
 * NULL (gcs --diff OLD NEW), read and checked as the variables are. */
struct config_versions {
	const char *stable, *canary;
};
int config_read(struct gcs_config *cfg, const struct config_versions *versions, char *err,
                size_t errlen);

/* For --help: the variables, defaults and meanings. */
void config_print_help(FILE *out);

#endif
