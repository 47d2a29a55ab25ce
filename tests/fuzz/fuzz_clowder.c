/* The file ACG_CONFIG names, as startup reads it: the input is written to
 * a file and read with clowder_read.
 *
 * Properties: a refused file gets one line that starts with the file's
 * name, and leaves the result zeroed; an accepted one has ports in range,
 * a metrics port apart from the public one, a metrics path gcs can serve,
 * an Unleash URL of the file's scheme ending in /api only with featureFlags,
 * no control byte in anything that reaches a header; the same bytes read
 * twice give the same answer. */
#include <stdbool.h>
#include <unistd.h>

#include "clowder.h"
#include "fuzz.h"

static char dir[64], file_path[128];

/* The harness's file and its removal at exit, as fuzz_unleash_file has:
 * each harness is a program of its own. */
static void remove_dir(void)
{
	unlink(file_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_tmpdir(dir, sizeof(dir), "fuzz-clowder");
	snprintf(file_path, sizeof(file_path), "%s/cdappconfig.json", dir);
	atexit(remove_dir);
	return 0;
}

static bool clean(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void check_accepted(const struct clowder *c)
{
	FUZZ_CHECK(c->public_port <= 65535, "public port %u", c->public_port);
	FUZZ_CHECK(c->metrics_port >= 1 && c->metrics_port <= 65535, "metrics port %u",
	           c->metrics_port);
	FUZZ_CHECK(c->metrics_port != c->public_port, "metrics on the public port");
	FUZZ_CHECK(c->metrics_path[0] == '/' && clean(c->metrics_path) &&
	               !c->metrics_path[strcspn(c->metrics_path, " ?#")],
	           "metrics path \"%s\"", c->metrics_path);
	if (!c->feature_flags) {
		FUZZ_CHECK(!c->unleash_url[0] && !c->has_token, "Unleash without featureFlags");
		return;
	}
	size_t n = strlen(c->unleash_url);
	FUZZ_CHECK((starts(c->unleash_url, "http://") || starts(c->unleash_url, "https://")) &&
	               n > 4 && strcmp(c->unleash_url + n - 4, "/api") == 0 &&
	               clean(c->unleash_url),
	           "Unleash URL \"%s\"", c->unleash_url);
	FUZZ_CHECK(c->has_token == (c->unleash_token[0] != '\0') && clean(c->unleash_token),
	           "token");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fopen(file_path, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	static struct clowder a, b;
	static const struct clowder zero;
	char err[1024], again[1024];
	int rc = clowder_read(file_path, &a, err, sizeof(err));
	int rc2 = clowder_read(file_path, &b, again, sizeof(again));
	FUZZ_CHECK(rc == rc2, "read twice, answered %d then %d", rc, rc2);
	if (rc < 0) {
		FUZZ_CHECK(strcmp(err, again) == 0, "two reasons: %s / %s", err, again);
		FUZZ_CHECK(starts(err, file_path) && !strchr(err, '\n'), "reason: %s", err);
		FUZZ_CHECK(memcmp(&a, &zero, sizeof(a)) == 0, "a refused file left a result");
		return 0;
	}
	FUZZ_CHECK(memcmp(&a, &b, sizeof(a)) == 0, "read twice, two results");
	check_accepted(&a);
	return 0;
}
