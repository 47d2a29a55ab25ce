#include "murmur3.h"

static uint32_t rotl32(uint32_t x, int r)
{
	return (x << r) | (x >> (32 - r));
}

/* Blocks are read little-endian whatever the host, as the reference does on
 * x86, so that every platform agrees with the Unleash SDKs. */
static uint32_t read_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t fmix32(uint32_t h)
{
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h;
}

uint32_t murmur3_32(const void *data, size_t len, uint32_t seed)
{
	const uint32_t c1 = 0xcc9e2d51u;
	const uint32_t c2 = 0x1b873593u;
	const unsigned char *bytes = data;
	size_t nblocks = len / 4;
	uint32_t h = seed;

	for (size_t i = 0; i < nblocks; i++) {
		uint32_t k = read_le32(bytes + 4 * i);
		k *= c1;
		k = rotl32(k, 15);
		k *= c2;
		h ^= k;
		h = rotl32(h, 13);
		h = h * 5 + 0xe6546b64u;
	}

	const unsigned char *tail = bytes + 4 * nblocks;
	uint32_t k = 0;
	switch (len & 3) {
	case 3:
		k ^= (uint32_t)tail[2] << 16;
		/* fall through */
	case 2:
		k ^= (uint32_t)tail[1] << 8;
		/* fall through */
	case 1:
		k ^= tail[0];
		k *= c1;
		k = rotl32(k, 15);
		k *= c2;
		h ^= k;
	}

	/* The reference mixes in the length as a 32-bit int. */
	h ^= (uint32_t)len;
	return fmix32(h);
}
