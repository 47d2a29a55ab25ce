/* The configuration of the unit tests that load versions: the repository's
 * own rules/ tree (the tests run from the repository root), one download try
 * so that a missing version fails at once. */
#ifndef GCS_TEST_RULES_CONFIG_H
#define GCS_TEST_RULES_CONFIG_H

#include <stdlib.h>

#include "config.h"

static inline void rules_config(struct gcs_config *cfg)
{
	char err[256];
	setenv("STABLE_VERSION", "1.1.3", 1);
	setenv("GCS_CONDITIONS_URL", "rules/{version}", 1);
	if (config_from_env(cfg, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	cfg->fetch.max_tries = 1;
}

#endif
