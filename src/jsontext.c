#include "jsontext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *jsontext_parse(const char *buf, size_t len, char *err, size_t errlen)
{
	/* jansson would stop at a NUL inside a string's raw bytes with a vaguer
	 * message; name the offset instead. */
	const char *nul = memchr(buf, '\0', len);
	if (nul) {
		snprintf(err, errlen, "NUL byte at offset %zu", (size_t)(nul - buf));
		return NULL;
	}
	if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
		snprintf(err, errlen, "byte order mark is not allowed (RFC 8259 section 8.1)");
		return NULL;
	}
	json_error_t je;
	/* Depth is bounded by jansson itself (JSON_PARSER_MAX_DEPTH, 2048):
	 * deeper input is an error, not a stack overflow. \u0000 in strings is
	 * refused because JSON_ALLOW_NUL is not set. */
	json_t *v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!v) {
		snprintf(err, errlen, "line %d, column %d: %s", je.line, je.column, je.text);
		return NULL;
	}
	return v;
}

/* The two-character escapes Go writes; other control characters, "<", ">"
 * and "&" are \u00XX. */
static const char *const short_escapes[0x80] = {
    ['"'] = "\\\"", ['\\'] = "\\\\", ['\n'] = "\\n", ['\r'] = "\\r",
    ['\t'] = "\\t", ['\b'] = "\\b",  ['\f'] = "\\f",
};

void jsontext_string(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
	buf_put(b, "\"", 1);
	while (p < end) {
		unsigned char c = *p;
		const char *esc = NULL;
		char u[7];
		size_t skip = 1;
		if (c < 0x80 && short_escapes[c])
			esc = short_escapes[c];
		else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
			snprintf(u, sizeof(u), "\\u00%c%c", hex[c >> 4], hex[c & 15]);
			esc = u;
		} else if (c == 0xE2 && end - p >= 3 && p[1] == 0x80 &&
		           (p[2] == 0xA8 || p[2] == 0xA9)) {
			/* U+2028 and U+2029 break JavaScript: Go escapes them */
			esc = p[2] == 0xA8 ? "\\u2028" : "\\u2029";
			skip = 3;
		}
		if (esc) {
			buf_put(b, (const char *)run, (size_t)(p - run));
			buf_puts(b, esc);
			p += skip;
			run = p;
		} else {
			p++;
		}
	}
	buf_put(b, (const char *)run, (size_t)(p - run));
	buf_put(b, "\"", 1);
}

/* Go formats a float64 with the shortest digits that round-trip, in %f
 * style unless the exponent is out of [1e-6, 1e21), and writes e-07 as e-7. */
static void go_float(struct buf *b, double f)
{
	char sci[40], out[400];
	if (f == 0) {
		buf_puts(b, signbit(f) ? "-0" : "0");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(sci, sizeof(sci), "%.*e", prec - 1, f);
		if (strtod(sci, NULL) == f)
			break;
	}
	/* sci is [-]d[.ddd]e[+-]XX: split into digits and decimal exponent */
	const char *p = sci;
	bool neg = *p == '-';
	if (neg)
		p++;
	char digits[24];
	size_t nd = 0;
	for (; *p && *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	int exp = atoi(p + 1);
	double a = fabs(f);
	size_t o = 0;
	if (neg)
		out[o++] = '-';
	if (a < 1e-6 || a >= 1e21) {
		out[o++] = digits[0];
		if (nd > 1) {
			out[o++] = '.';
			memcpy(out + o, digits + 1, nd - 1);
			o += nd - 1;
		}
		o += (size_t)snprintf(out + o, sizeof(out) - o, "e%c%02d", exp < 0 ? '-' : '+',
		                      abs(exp));
		out[o] = '\0';
		size_t n = strlen(out);
		if (n >= 4 && out[n - 4] == 'e' && out[n - 3] == '-' && out[n - 2] == '0') {
			out[n - 2] = out[n - 1];
			out[n - 1] = '\0';
		}
		buf_puts(b, out);
		return;
	}
	if (exp < 0) {
		o += (size_t)snprintf(out + o, sizeof(out) - o, "0.");
		for (int i = -1; i > exp; i--)
			out[o++] = '0';
		memcpy(out + o, digits, nd);
		o += nd;
	} else {
		for (int i = 0; i <= exp || (size_t)i < nd; i++) {
			if (i == exp + 1)
				out[o++] = '.';
			out[o++] = (size_t)i < nd ? digits[i] : '0';
		}
	}
	out[o] = '\0';
	buf_puts(b, out);
}

static int cmp_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void jsontext_encode(struct buf *b, const json_t *v)
{
	char num[32];
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		size_t n = json_object_size(v), i = 0;
		const char **keys = malloc((n ? n : 1) * sizeof(*keys));
		if (!keys) {
			b->oom = true;
			return;
		}
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)v, key, val) keys[i++] = key;
		qsort(keys, n, sizeof(*keys), cmp_keys);
		buf_put(b, "{", 1);
		for (i = 0; i < n; i++) {
			if (i)
				buf_put(b, ",", 1);
			jsontext_string(b, keys[i], strlen(keys[i]));
			buf_put(b, ":", 1);
			jsontext_encode(b, json_object_get(v, keys[i]));
		}
		buf_put(b, "}", 1);
		free(keys);
		return;
	}
	case JSON_ARRAY:
		buf_put(b, "[", 1);
		for (size_t i = 0; i < json_array_size(v); i++) {
			if (i)
				buf_put(b, ",", 1);
			jsontext_encode(b, json_array_get(v, i));
		}
		buf_put(b, "]", 1);
		return;
	case JSON_STRING:
		jsontext_string(b, json_string_value(v), json_string_length(v));
		return;
	case JSON_INTEGER: {
		json_int_t i = json_integer_value(v);
		/* Go decoded numbers into float64: beyond 2^53 they lose digits */
		if (i > (1LL << 53) || i < -(1LL << 53)) {
			go_float(b, (double)i);
			return;
		}
		snprintf(num, sizeof(num), "%lld", (long long)i);
		buf_puts(b, num);
		return;
	}
	case JSON_REAL:
		go_float(b, json_real_value(v));
		return;
	case JSON_TRUE:
		buf_puts(b, "true");
		return;
	case JSON_FALSE:
		buf_puts(b, "false");
		return;
	case JSON_NULL:
		buf_puts(b, "null");
		return;
	}
}
