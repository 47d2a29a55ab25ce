/* jsonschema_value: JSON values as the JSON Schema specification sees them:
 * numbers compared exactly (1 and 1.0 are equal, integers beyond 2^53 are
 * not rounded), equality, and values quoted in messages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonschema_tree.h"

/* How much of a value a message quotes before cutting it with "...". */
#define JS_QUOTE_CHARS 40

const struct js_type_name js_type_names[JS_N_TYPES] = {
    {"null", JS_NULL},     {"boolean", JS_BOOLEAN}, {"object", JS_OBJECT},   {"array", JS_ARRAY},
    {"number", JS_NUMBER}, {"string", JS_STRING},   {"integer", JS_INTEGER},
};

/* Byte offset of the first `chars` code points of s. */
static size_t utf8_prefix(const char *s, size_t bytes, size_t chars)
{
	size_t i = 0, n = 0;
	while (i < bytes) {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (n == chars)
				break;
			n++;
		}
		i++;
	}
	return i;
}

/* ---- numbers and JSON equality ---- */

bool js_is_integral(const json_t *x)
{
	if (json_is_integer(x))
		return true;
	if (!json_is_real(x))
		return false;
	double d = json_real_value(x);
	return isfinite(d) && d == trunc(d);
}

static int cmp_int_real(json_int_t i, double d)
{
	/* Exact: compare the integral parts as integers, then the fraction.
	 * Converting i to double would round above 2^53. */
	if (d >= 9223372036854775808.0)
		return -1;
	if (d < -9223372036854775808.0)
		return 1;
	double t = trunc(d);
	json_int_t ti = (json_int_t)t;
	if (i != ti)
		return i < ti ? -1 : 1;
	double frac = d - t;
	return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

int js_num_cmp(const json_t *a, const json_t *b)
{
	if (json_is_integer(a) && json_is_integer(b)) {
		json_int_t x = json_integer_value(a), y = json_integer_value(b);
		return x < y ? -1 : x > y;
	}
	if (json_is_real(a) && json_is_real(b)) {
		double x = json_real_value(a), y = json_real_value(b);
		return x < y ? -1 : x > y;
	}
	if (json_is_integer(a))
		return cmp_int_real(json_integer_value(a), json_real_value(b));
	return -cmp_int_real(json_integer_value(b), json_real_value(a));
}

bool js_equal(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return js_num_cmp(a, b) == 0;
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) ==
		           0;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!js_equal(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b))
			return false;
		const char *key;
		json_t *va;
		json_object_foreach((json_t *)a, key, va)
		{
			json_t *vb = json_object_get(b, key);
			if (!vb || !js_equal(va, vb))
				return false;
		}
		return true;
	}
	default:
		return true; /* null, true, false: same type is same value */
	}
}

/* ---- quoting values in messages ---- */

void js_fmt_number(const json_t *x, char *buf, size_t len)
{
	if (json_is_integer(x)) {
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(x));
		return;
	}
	/* The shortest form that reads back as the same double. */
	double d = json_real_value(x);
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return;
	}
}

/* Writes x as JSON on one line, cut after JS_QUOTE_CHARS code points. */
void js_fmt_value(const json_t *x, char *buf, size_t len)
{
	if (json_is_number(x)) {
		js_fmt_number(x, buf, len);
		return;
	}
	const char *s;
	size_t n;
	char *dumped = NULL;
	json_t *cut = NULL;
	if (json_is_string(x)) {
		s = json_string_value(x);
		n = json_string_length(x);
		size_t keep = utf8_prefix(s, n, JS_QUOTE_CHARS);
		cut = json_stringn(s, keep);
		dumped = cut ? json_dumps(cut, JSON_ENCODE_ANY) : NULL;
		json_decref(cut);
		snprintf(buf, len, "%s%s", dumped ? dumped : "\"?\"", keep < n ? "..." : "");
		free(dumped);
		return;
	}
	dumped = json_dumps(x, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!dumped) {
		snprintf(buf, len, "(value)");
		return;
	}
	n = strlen(dumped);
	size_t keep = utf8_prefix(dumped, n, JS_QUOTE_CHARS);
	snprintf(buf, len, "%.*s%s", (int)keep, dumped, keep < n ? "..." : "");
	free(dumped);
}
