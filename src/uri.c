#include "uri.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool uri_decode(const char *s, size_t n, char *out, size_t cap, size_t *len)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%') {
			int hi = i + 2 < n ? hex_value(s[i + 1]) : -1;
			int lo = hi < 0 ? -1 : hex_value(s[i + 2]);
			if (lo < 0)
				return false;
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = c;
	}
	if (cap == 0)
		return false;
	out[o] = '\0';
	*len = o;
	return true;
}

static size_t uri_scheme_len(const char *s)
{
	/* scheme ":" where scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
		return 0;
	size_t i = 1;
	while (s[i] && (strchr("+-.", s[i]) || (s[i] >= 'a' && s[i] <= 'z') ||
	                (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
		i++;
	return s[i] == ':' ? i + 1 : 0;
}

/* Removes "." and ".." segments from path, in place (RFC 3986 5.2.4). */
static bool uri_remove_dots(char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return false;
	char *in = copy, *out = path;
	while (*in) {
		if (strncmp(in, "../", 3) == 0) {
			in += 3;
		} else if (strncmp(in, "./", 2) == 0 || strncmp(in, "/./", 3) == 0) {
			in += 2;
		} else if (strcmp(in, "/.") == 0) {
			in[1] = '\0';
		} else if (strncmp(in, "/../", 4) == 0 || strcmp(in, "/..") == 0) {
			/* "/../x" becomes "/x", "/.." becomes "/"; either drops
			 * the last segment written. */
			if (in[3] == '/') {
				in += 3;
			} else {
				in += 2;
				*in = '/';
			}
			while (out > path && *--out != '/')
				;
		} else if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0) {
			break;
		} else {
			do
				*out++ = *in++;
			while (*in && *in != '/');
		}
	}
	*out = '\0';
	free(copy);
	return true;
}

char *uri_resolve(const char *base, const char *ref)
{
	size_t bl = strlen(base), rl = strlen(ref);
	char *out = malloc(bl + rl + 2);
	if (!out)
		return NULL;
	size_t scheme = uri_scheme_len(base);
	size_t auth_end = scheme;
	if (strncmp(base + scheme, "//", 2) == 0)
		auth_end = scheme + 2 + strcspn(base + scheme + 2, "/?#");
	size_t path_end = auth_end + strcspn(base + auth_end, "?#");
	size_t nofrag = strcspn(base, "#");

	if (uri_scheme_len(ref) > 0) {
		strcpy(out, ref);
	} else if (strncmp(ref, "//", 2) == 0) {
		snprintf(out, bl + rl + 2, "%.*s%s", (int)scheme, base, ref);
	} else if (ref[0] == '#' || ref[0] == '\0') {
		snprintf(out, bl + rl + 2, "%.*s%s", (int)nofrag, base, ref);
	} else if (ref[0] == '?') {
		snprintf(out, bl + rl + 2, "%.*s%s", (int)path_end, base, ref);
	} else if (ref[0] == '/') {
		snprintf(out, bl + rl + 2, "%.*s%s", (int)auth_end, base, ref);
	} else {
		size_t dir = path_end;
		while (dir > auth_end && base[dir - 1] != '/')
			dir--;
		if (dir == auth_end && auth_end > scheme)
			snprintf(out, bl + rl + 2, "%.*s/%s", (int)auth_end, base, ref);
		else
			snprintf(out, bl + rl + 2, "%.*s%s", (int)dir, base, ref);
	}
	/* Dot segments live in the path: after the authority, before ?/#. */
	size_t os = uri_scheme_len(out);
	size_t start = os;
	if (strncmp(out + os, "//", 2) == 0)
		start = os + 2 + strcspn(out + os + 2, "/?#");
	size_t end = start + strcspn(out + start, "?#");
	char *tail = strdup(out + end);
	if (!tail)
		goto fail;
	out[end] = '\0';
	if (!uri_remove_dots(out + start))
		goto fail;
	strcat(out, tail);
	free(tail);
	return out;
fail:
	free(out);
	free(tail);
	return NULL;
}
