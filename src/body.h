/* body: bytes served as a response body, ready in each form a request can
 * ask for (plain, gzip), each with a strong ETag. Built once, when the
 * bytes are loaded; read-only afterwards. */
#ifndef GCS_BODY_H
#define GCS_BODY_H

#include <stddef.h>

struct body {
	char *data, *gz;
	size_t len, gz_len;
	char etag[24];    /* "%016llx" quoted */
	char etag_gz[32]; /* "%016llx-gz" quoted */
};

/* Fills body from len bytes at data (the body takes ownership of data):
 * gzip form and ETags. Returns -1 when out of memory (data is freed). */
int body_init(struct body *body, char *data, size_t len);
void body_free(struct body *body);

#endif
