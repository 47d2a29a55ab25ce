/* Strict JSON parse, then the Go-compatible encoder: whatever parses
 * encodes; the encoding parses back to an equal value (numbers as the
 * float64 Go decodes them into); encoding is a fixed point. */
#include <math.h>
#include <stdbool.h>

#include "fuzz.h"
#include "jsontext.h"

static double number(const json_t *v)
{
	return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

/* Equality after a round trip through Go's decoding: numbers compare as the
 * float64 they become. jsonschema_value.c's js_equal has the same skeleton
 * but compares numbers exactly, as JSON Schema requires, so the two stay
 * apart. */
static int same(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b))
		return number(a) == number(b);
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) ==
		           0;
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!same(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b))
			return 0;
		const char *key;
		json_t *va;
		json_object_foreach((json_t *)a, key, va)
		{
			json_t *vb = json_object_get(b, key);
			if (!vb || !same(va, vb))
				return 0;
		}
		return 1;
	}
	default: /* true, false, null */
		return 1;
	}
}

/* b with every number -0 written 0. */
static char *without_negative_zero(const struct buf *b)
{
	char *out = malloc(b->len + 1);
	size_t n = 0;
	if (!out)
		abort();
	for (size_t i = 0; i < b->len; i++) {
		bool token = b->data[i] == '-' && i + 1 < b->len && b->data[i + 1] == '0' &&
		             (i + 2 == b->len || strchr(",]}", b->data[i + 2])) &&
		             (i == 0 || strchr(",[:", b->data[i - 1]));
		if (!token)
			out[n++] = b->data[i];
	}
	out[n] = '\0';
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256] = "";
	json_t *v = jsontext_parse((const char *)data, size, err, sizeof(err));
	if (!v) {
		FUZZ_CHECK(err[0], "a refused document has no error message");
		return 0;
	}
	struct buf b = {0};
	jsontext_encode(&b, v);
	FUZZ_CHECK(!b.oom && b.len > 0, "a parsed document did not encode");
	char err2[256] = "";
	json_t *back = jsontext_parse(b.data, b.len, err2, sizeof(err2));
	if (!back && strstr(err2, "too big")) {
		/* A known limit, not a bug of the encoder: Go writes a float64
		 * between 2^63 and 1e21 as an integer literal (as the Go service
		 * did), and the strict parser, like jansson, refuses integers
		 * beyond 64 bits. Go would read it back: check that as Go does,
		 * every number a float64. */
		json_error_t je;
		back = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL, &je);
	}
	FUZZ_CHECK(back, "the encoding does not parse back: %s: %.*s", err2, (int)b.len, b.data);
	FUZZ_CHECK(same(v, back), "the encoding parses back to another value: %.*s", (int)b.len,
	           b.data);
	struct buf again = {0};
	jsontext_encode(&again, back);
	/* A known difference from Go: jansson reads the literal -0 as the
	 * integer 0, so gcs writes 0 where Go, reading a float64, writes -0
	 * (-0.0 and -0e0 are reals and come out as Go's -0). */
	char *first = without_negative_zero(&b), *second = without_negative_zero(&again);
	FUZZ_CHECK(strcmp(first, second) == 0, "encoding is not a fixed point: %.*s then %.*s",
	           (int)b.len, b.data, (int)again.len, again.data);
	free(first);
	free(second);
	buf_free(&again);
	buf_free(&b);
	json_decref(back);
	json_decref(v);
	return 0;
}
