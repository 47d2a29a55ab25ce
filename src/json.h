/* json: strict decoding (RFC 8259, duplicate keys, NUL bytes, bounded depth)
 * and encoding byte-compatible with Go's encoding/json, which the service in
 * the field used to render every body clusters receive. */
#ifndef GCS_JSON_H
#define GCS_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A growable byte buffer; oom is sticky so callers check once at the end. */
struct jbuf {
	char *data;
	size_t len, cap;
	bool oom;
};

void jbuf_put(struct jbuf *b, const char *s, size_t n);
void jbuf_puts(struct jbuf *b, const char *s);
void jbuf_free(struct jbuf *b);

/* Parses exactly one JSON text. On error returns NULL and err gets one line
 * such as "line 3, column 5: duplicate object key" or "NUL byte at offset 12". */
json_t *json_strict_parse(const char *buf, size_t len, char *err, size_t errlen);

/* Appends v as Go's json.Marshal would encode the value decoded into an
 * interface{}: object keys sorted, numbers as float64, HTML-safe escaping. */
void json_go_encode(struct jbuf *b, const json_t *v);
void json_go_string(struct jbuf *b, const char *s, size_t len);

/* Appends a JSON pointer token (RFC 6901: ~ and / escaped). */
void json_pointer_push(char *ptr, size_t cap, const char *token);

#endif
