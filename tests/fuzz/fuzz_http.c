/* The request module (src/request.c) and the percent-decoder (src/uri.c):
 * what gcs reads from a cluster's request, as pure functions.
 *
 * Input: lines: the path, the User-Agent, Accept-Encoding, If-None-Match, an
 * entity tag, a path pattern.
 *
 * Properties: routing is deterministic and at most one of gcs's paths
 * matches; a pattern's "*" matches exactly one non-empty segment and the
 * path is the pattern with it filled in; a matched v2 path's decoded
 * ocpVersion has no NUL and no '/', is a SemVer version and survives
 * encoding again; decode(encode(x)) == x for any bytes, the decoded length
 * is at most the input's and cap bounds the output; the cluster ID is a
 * substring of the User-Agent after "cluster/" without ' ' or ',', cut to
 * the buffer; a list ending in gzip admits gzip; an entity tag matches
 * itself (and its weak form), and a match names it or "*". */
#include <ctype.h>

#include "fuzz.h"
#include "request.h"
#include "uri.h"

/* gcs's paths, as src/handlers.c's endpoints list them */
#define V2 "/api/gathering/v2/*/gathering_rules"
static const char *const paths[] = {
    "/api/gathering/gathering_rules",
    "/api/gathering/v1/gathering_rules",
    V2,
    "/api/gathering/openapi.json",
    "/api/gathering/v1/openapi.json",
    "/api/gathering/v2/openapi.json",
    "/metrics",
    "/healthz",
    "/readyz",
};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

/* Every byte but the unreserved ones as %XX, alternating the hex digits'
 * case. The caller frees. */
static char *encode(const char *s, size_t n, size_t *len)
{
	char *out = malloc(3 * n + 1), *o = out;
	if (!out)
		abort();
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
			*o++ = (char)c;
			continue;
		}
		const char *hex = i % 2 ? "0123456789abcdef" : "0123456789ABCDEF";
		*o++ = '%';
		*o++ = hex[c >> 4];
		*o++ = hex[c & 15];
	}
	*o = '\0';
	*len = (size_t)(o - out);
	return out;
}

/* The pattern with its "*" replaced by seg equals path. */
static void check_match(const char *pattern, const char *path)
{
	const char *seg, *seg2;
	size_t len, len2;
	bool m = request_match(pattern, path, &seg, &len);
	FUZZ_CHECK(m == request_match(pattern, path, &seg2, &len2) && seg == seg2 && len == len2,
	           "matching \"%s\" against \"%s\" is not deterministic", path, pattern);
	const char *star = strchr(pattern, '*');
	if (!star) {
		FUZZ_CHECK(m == (strcmp(pattern, path) == 0) && !seg && len == 0,
		           "literal \"%s\" and \"%s\": match %d", pattern, path, m);
		return;
	}
	if (!m)
		return;
	size_t head = (size_t)(star - pattern);
	FUZZ_CHECK(seg == path + head && len > 0 && !memchr(seg, '/', len),
	           "\"%s\" matched \"%s\" with a bad segment", path, pattern);
	FUZZ_CHECK(memcmp(path, pattern, head) == 0 && strcmp(seg + len, star + 1) == 0,
	           "\"%s\" is not \"%s\" filled in", path, pattern);
}

static void check_ocp_version(const char *seg, size_t len)
{
	char *text = malloc(256); /* exactly what src/http.c gives it, for ASan */
	struct semver v;
	if (!text)
		abort();
	if (request_ocp_version(seg, len, text, 256, &v)) {
		size_t n = strnlen(text, 256);
		FUZZ_CHECK(n < 256 && n <= len, "ocpVersion \"%.*s\" decodes past its bound",
		           (int)len, seg);
		FUZZ_CHECK(!strchr(text, '/'), "ocpVersion \"%s\" has a '/'", text);
		FUZZ_CHECK(semver_parse(text, n, &v), "ocpVersion \"%s\" is not SemVer", text);
		size_t elen;
		char *again = encode(text, n, &elen);
		char *text2 = malloc(256);
		FUZZ_CHECK(text2 && request_ocp_version(again, elen, text2, 256, &v) &&
		               strcmp(text, text2) == 0,
		           "ocpVersion \"%s\" encoded as \"%s\" decodes differently", text, again);
		free(again);
		free(text2);
	}
	free(text);
}

static void check_routing(const char *path)
{
	size_t matched = 0;
	for (size_t i = 0; i < NPATHS; i++) {
		const char *seg;
		size_t len;
		check_match(paths[i], path);
		if (!request_match(paths[i], path, &seg, &len))
			continue;
		matched++;
		if (strcmp(paths[i], V2) == 0)
			check_ocp_version(seg, len);
	}
	FUZZ_CHECK(matched <= 1, "\"%s\" matches %zu of gcs's paths", path, matched);
}

/* decode(encode(x)) == x, and the decoder keeps to its buffer. */
static void check_decoder(const char *x, size_t n)
{
	size_t elen, len;
	char *e = encode(x, n, &elen);
	char *out = malloc(n + 1);
	FUZZ_CHECK(out && uri_decode(e, elen, out, n + 1, &len) && len == n &&
	               memcmp(out, x, n) == 0 && out[n] == '\0',
	           "decode(encode(x)) != x for %zu bytes", n);
	FUZZ_CHECK(n == 0 || !uri_decode(e, elen, out, n, &len),
	           "%zu decoded bytes fit in a buffer of %zu", n, n);
	/* the raw bytes as an escaped text: never longer than the input */
	if (uri_decode(x, n, out, n + 1, &len))
		FUZZ_CHECK(len <= n && out[len] == '\0', "decoding %zu bytes gave %zu", n, len);
	free(out);
	free(e);
}

static void check_cluster_id(const char *ua)
{
	char *buf = malloc(64), *small = malloc(8);
	if (!buf || !small)
		abort();
	const char *id = request_cluster_id(ua, buf, 64);
	const char *at = strstr(ua, "cluster/");
	bool names = at && at[8] && at[8] != ' ' && at[8] != ',';
	FUZZ_CHECK(!id == !names, "User-Agent \"%s\": cluster ID %s", ua, id ? id : "none");
	if (id) {
		size_t n = strlen(id);
		FUZZ_CHECK(id == buf && n > 0 && n < 64 && strncmp(at + 8, id, n) == 0 &&
		               !strpbrk(id, " ,"),
		           "User-Agent \"%s\": bad cluster ID \"%s\"", ua, id);
		const char *cut = request_cluster_id(ua, small, 8);
		FUZZ_CHECK(cut && strlen(cut) == (n < 7 ? n : 7) &&
		               strncmp(cut, id, strlen(cut)) == 0,
		           "User-Agent \"%s\": the cut cluster ID is not a prefix", ua);
	}
	free(buf);
	free(small);
}

static void check_accept_encoding(const char *ae)
{
	bool once = request_accepts_gzip(ae);
	FUZZ_CHECK(once == request_accepts_gzip(ae), "Accept-Encoding \"%s\" flips", ae);
	size_t n = strlen(ae);
	char *more = malloc(n + 6);
	if (!more)
		abort();
	memcpy(more, ae, n);
	memcpy(more + n, ",gzip", 6);
	FUZZ_CHECK(request_accepts_gzip(more), "\"%s\" does not admit gzip", more);
	free(more);
}

static void check_etag(const char *inm, const char *raw)
{
	/* an entity tag as gcs makes them: quoted, no quote inside */
	size_t n = strcspn(raw, "\"");
	char *etag = malloc(n + 3), *weak = malloc(n + 5);
	if (!etag || !weak)
		abort();
	snprintf(etag, n + 3, "\"%.*s\"", (int)n, raw);
	snprintf(weak, n + 5, "W/%s", etag);
	FUZZ_CHECK(request_etag_matches(etag, etag) && request_etag_matches(weak, etag),
	           "%s does not match itself", etag);
	if (request_etag_matches(inm, etag))
		FUZZ_CHECK(strstr(inm, etag) || strchr(inm, '*'),
		           "If-None-Match '%s' matches %s without naming it", inm, etag);
	free(etag);
	free(weak);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *field[6];
	size_t len[6];
	const uint8_t *rest = data;
	size_t left = size;
	for (int i = 0; i < 6; i++) {
		field[i] = rest;
		len[i] = fuzz_split(rest, left, '\n', &rest, &left);
	}
	check_decoder((const char *)field[0], len[0]);
	char *s[6];
	for (int i = 0; i < 6; i++)
		s[i] = fuzz_cstring(field[i], len[i]);
	check_routing(s[0]);
	check_match(s[5], s[0]);
	check_cluster_id(s[1]);
	check_accept_encoding(s[2]);
	check_etag(s[3], s[4]);
	for (int i = 0; i < 6; i++)
		free(s[i]);
	return 0;
}
