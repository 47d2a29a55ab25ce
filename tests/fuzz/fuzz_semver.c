/* SemVer: up to three versions, one per line. Properties: a text parses
 * exactly when semver.org's own regular expression matches it (within 64-bit
 * numbers); precedence is reflexive, antisymmetric and transitive on the
 * inputs, and ignores build metadata. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "fuzz.h"
#include "semver.h"

/* https://semver.org/#is-there-a-suggested-regular-expression-regex-to-check-a-semver-string */
static const char official[] = "^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)"
                               "(?:-((?:0|[1-9]\\d*|\\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\\.(?:0|[1-9]\\d*"
                               "|\\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                               "(?:\\+([0-9a-zA-Z-]+(?:\\.[0-9a-zA-Z-]+)*))?$";

static pcre2_code *re;
static pcre2_match_data *md;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	int code;
	PCRE2_SIZE off;
	re = pcre2_compile((PCRE2_SPTR)official, PCRE2_ZERO_TERMINATED, PCRE2_DOLLAR_ENDONLY, &code,
	                   &off, NULL);
	md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
	if (!md)
		abort();
	return 0;
}

/* A core number the regex allows but uint64_t cannot hold. */
static int core_overflows(const char *s, size_t len)
{
	for (int part = 1; part <= 3; part++) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		size_t n = ov[2 * part + 1] - ov[2 * part];
		const char *p = s + ov[2 * part];
		(void)len;
		if (n > 20 || (n == 20 && memcmp(p, "18446744073709551615", 20) > 0))
			return 1;
	}
	return 0;
}

static int sign(int x)
{
	return (x > 0) - (x < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct semver v[3];
	size_t nv = 0;
	const uint8_t *rest = data;
	size_t left = size;
	while (nv < 3 && (left > 0 || rest == data)) {
		const uint8_t *next;
		size_t next_size;
		size_t n = fuzz_split(rest, left, '\n', &next, &next_size);
		const char *s = (const char *)rest;
		bool ok = semver_parse(s, n, &v[nv]);
		int m = pcre2_match(re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
		bool matches = m > 0 && !core_overflows(s, n);
		FUZZ_CHECK(ok == matches,
		           "semver_parse says %s, semver.org's regex says %s: \"%.*s\"",
		           ok ? "valid" : "invalid", matches ? "valid" : "invalid", (int)n, s);
		if (ok) {
			FUZZ_CHECK(semver_cmp(&v[nv], &v[nv]) == 0,
			           "\"%.*s\" is not equal to itself", (int)n, s);
			/* build metadata never changes precedence */
			const char *plus = memchr(s, '+', n);
			struct semver bare;
			if (plus) {
				FUZZ_CHECK(semver_parse(s, (size_t)(plus - s), &bare) &&
				               semver_cmp(&bare, &v[nv]) == 0,
				           "build metadata changes the precedence of \"%.*s\"",
				           (int)n, s);
			}
			nv++;
		}
		if (next_size == 0)
			break;
		rest = next;
		left = next_size;
	}
	for (size_t a = 0; a < nv; a++)
		for (size_t b = 0; b < nv; b++) {
			int ab = sign(semver_cmp(&v[a], &v[b])),
			    ba = sign(semver_cmp(&v[b], &v[a]));
			FUZZ_CHECK(ab == -ba, "not antisymmetric: inputs %zu and %zu", a, b);
			for (size_t c = 0; c < nv; c++) {
				int bc = sign(semver_cmp(&v[b], &v[c])),
				    ac = sign(semver_cmp(&v[a], &v[c]));
				if (ab <= 0 && bc <= 0)
					FUZZ_CHECK(
					    ac <= 0,
					    "not transitive: %zu <= %zu <= %zu but not %zu <= %zu",
					    a, b, c, a, c);
				if (ab == 0 && bc == 0)
					FUZZ_CHECK(ac == 0,
					           "equality not transitive: %zu, %zu, %zu", a, b,
					           c);
			}
		}
	return 0;
}
