#include "request.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "uri.h"

bool request_match(const char *pattern, const char *path, const char **seg, size_t *seg_len)
{
	*seg = NULL;
	*seg_len = 0;
	const char *star = strchr(pattern, '*');
	if (!star)
		return strcmp(pattern, path) == 0;
	size_t head = (size_t)(star - pattern);
	if (strncmp(path, pattern, head) != 0)
		return false;
	const char *s = path + head;
	size_t n = strcspn(s, "/");
	if (n == 0 || strcmp(s + n, star + 1) != 0)
		return false;
	*seg = s;
	*seg_len = n;
	return true;
}

bool request_ocp_version(const char *seg, size_t seg_len, char *text, size_t cap, struct semver *v)
{
	size_t len;
	return uri_decode(seg, seg_len, text, cap, &len) && !memchr(text, '\0', len) &&
	       semver_parse(text, len, v);
}

const char *request_cluster_id(const char *ua, char *buf, size_t cap)
{
	if (!ua)
		return NULL;
	/* "cluster/" after the first 'c' that starts it: strchr is a vector
	 * scan, glibc's strstr a generic one, on every routed request. */
	const char *p = ua;
	while ((p = strchr(p, 'c')) && strncmp(p, "cluster/", strlen("cluster/")) != 0)
		p++;
	if (!p)
		return NULL;
	p += strlen("cluster/");
	size_t n = strcspn(p, " ,");
	if (n == 0)
		return NULL;
	if (n >= cap)
		n = cap - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	return buf;
}

bool request_accepts_gzip(const char *ae)
{
	if (!ae)
		return false;
	const char *p = ae;
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		const char *tok = p;
		while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
			p++;
		size_t n = (size_t)(p - tok);
		bool match = (n == 4 && strncasecmp(tok, "gzip", 4) == 0) ||
		             (n == 6 && strncasecmp(tok, "x-gzip", 6) == 0) ||
		             (n == 1 && *tok == '*');
		double q = 1.0;
		while (*p && *p != ',') {
			while (*p == ' ' || *p == '\t' || *p == ';')
				p++;
			if ((p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
				q = strtod(p + 2, NULL);
			}
			while (*p && *p != ',' && *p != ';')
				p++;
		}
		if (match && q > 0)
			return true;
	}
	return false;
}

bool request_etag_matches(const char *inm, const char *etag)
{
	if (!inm)
		return false;
	size_t elen = strlen(etag);
	const char *p = inm;
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '*')
			return true;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		const char *tag = p;
		if (*p == '"') {
			p++;
			while (*p && *p != '"')
				p++;
			if (*p == '"')
				p++;
		} else {
			while (*p && *p != ',')
				p++;
		}
		if ((size_t)(p - tag) == elen && memcmp(tag, etag, elen) == 0)
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}
