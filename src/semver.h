/* semver: strict Semantic Versioning 2.0.0 parsing and precedence. */
#ifndef GCS_SEMVER_H
#define GCS_SEMVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Does not own text: pre points into the parsed string. Build metadata is
 * validated and ignored, as precedence ignores it. */
struct semver {
	uint64_t major, minor, patch;
	const char *pre; /* pre-release identifiers, NULL when none */
	size_t pre_len;
};

/* Parses exactly one version spanning s[0..len). No leading 'v', no leading
 * zeros in numeric identifiers, no empty identifiers. */
bool semver_parse(const char *s, size_t len, struct semver *out);
/* <0, 0, >0 by SemVer precedence (build metadata ignored). */
int semver_cmp(const struct semver *a, const struct semver *b);

#endif
