/* jsontext: strict decoding (RFC 8259, duplicate keys, NUL bytes, bounded depth)
 * and encoding byte-compatible with Go's encoding/json, which the service in
 * the field used to render every body clusters receive. */
#ifndef GCS_JSONTEXT_H
#define GCS_JSONTEXT_H

#include "buf.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Parses exactly one JSON text. On error returns NULL and err gets one line
 * such as "line 3, column 5: duplicate object key" or "NUL byte at offset 12". */
json_t *jsontext_parse(const char *buf, size_t len, char *err, size_t errlen);

/* Appends v as Go's json.Marshal would encode the value decoded into an
 * interface{}: object keys sorted, numbers as float64, HTML-safe escaping. */
void jsontext_encode(struct buf *b, const json_t *v);
void jsontext_string(struct buf *b, const char *s, size_t len);

#endif
