/* clowder: the configuration Clowder writes for a pod (the file ACG_CONFIG
 * names, /cdapp/cdappconfig.json), checked against Clowder's own schema
 * (src/clowder.schema.json, embedded) and reduced to what gcs takes from it:
 * its ports, its metrics path and its Unleash connection. */
#ifndef GCS_CLOWDER_H
#define GCS_CLOWDER_H

#include <stdbool.h>
#include <stddef.h>

struct clowder {
	unsigned public_port;   /* publicPort, else webPort; 0: neither given */
	unsigned metrics_port;  /* metricsPort */
	char metrics_path[256]; /* metricsPath */
	bool feature_flags;     /* a featureFlags object is present */
	char unleash_url[512];  /* featureFlags: scheme://hostname:port/api */
	bool has_token;         /* featureFlags.clientAccessToken is present */
	char unleash_token[4096];
	char logging_type[64]; /* logging.type */
	bool cloudwatch;       /* logging.cloudwatch is present */
};

/* Reads and checks path. Returns 0, or -1 with one line in err naming the
 * file, the JSON pointer and the rule broken ("/cdapp/cdappconfig.json:
 * /publicPort: 70000 is not a port (1 to 65535)"). */
int clowder_read(const char *path, struct clowder *out, char *err, size_t errlen);

#endif
