/* The RE2 syntax check (container-log patterns, Unleash REGEX constraints):
 * it never accepts a pattern PCRE2 fails to compile, with the options the
 * service compiles with (UTF, and UTF caseless for a case-insensitive
 * constraint); a refusal always says why. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "fuzz.h"
#include "pattern.h"
#include "regex.h"

/* RE2's default program size limit */
#define RE2_MAX_MEM (8L << 20)

static void re2_must_compile(const char *pattern, bool caseless)
{
	char err[512] = "";
	struct pattern *p = pattern_compile(pattern, caseless, RE2_MAX_MEM, err, sizeof(err));
	FUZZ_CHECK(p, "accepted as RE2 but RE2%s refuses it: %s: \"%s\"",
	           caseless ? " (caseless)" : "", err, pattern);
	pattern_free(p);
}

static void must_compile(const char *pattern, uint32_t options)
{
	int code;
	PCRE2_SIZE off;
	pcre2_code *re =
	    pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, options, &code, &off, NULL);
	PCRE2_UCHAR msg[256] = "";
	if (!re)
		pcre2_get_error_message(code, msg, sizeof(msg));
	FUZZ_CHECK(re, "accepted as RE2 but PCRE2 (options 0x%x) refuses it: %s: \"%s\"",
	           (unsigned)options, (const char *)msg, pattern);
	pcre2_code_free(re);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *pattern = fuzz_cstring(data, size);
	char err[256] = "";
	if (regex_check_re2(pattern, err, sizeof(err))) {
		must_compile(pattern, PCRE2_UTF);
		must_compile(pattern, PCRE2_UTF | PCRE2_CASELESS);
		re2_must_compile(pattern, false);
		re2_must_compile(pattern, true);
	} else {
		FUZZ_CHECK(err[0], "refused without a reason: \"%s\"", pattern);
	}
	free(pattern);
	return 0;
}
