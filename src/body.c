#include "body.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

static uint64_t fnv1a64(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int gzip_bytes(const char *in, size_t len, char **out, size_t *out_len)
{
	z_stream zs = {0};
	if (deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	size_t cap = deflateBound(&zs, len);
	char *buf = malloc(cap);
	if (!buf) {
		deflateEnd(&zs);
		return -1;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)len;
	zs.next_out = (Bytef *)buf;
	zs.avail_out = (uInt)cap;
	int rc = deflate(&zs, Z_FINISH);
	*out_len = zs.total_out;
	deflateEnd(&zs);
	if (rc != Z_STREAM_END) {
		free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

int body_init(struct body *body, char *data, size_t len)
{
	*body = (struct body){.data = data, .len = len};
	if (gzip_bytes(data, len, &body->gz, &body->gz_len) < 0) {
		free(data);
		body->data = NULL;
		return -1;
	}
	unsigned long long h = fnv1a64(data, len);
	snprintf(body->etag, sizeof(body->etag), "\"%016llx\"", h);
	snprintf(body->etag_gz, sizeof(body->etag_gz), "\"%016llx-gz\"", h);
	return 0;
}

void body_free(struct body *body)
{
	free(body->data);
	free(body->gz);
	*body = (struct body){0};
}
