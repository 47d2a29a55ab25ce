/* murmur3: MurmurHash3 x86 32-bit, as the Unleash SDKs use it. */
#ifndef GCS_MURMUR3_H
#define GCS_MURMUR3_H

#include <stddef.h>
#include <stdint.h>

uint32_t murmur3_32(const void *data, size_t len, uint32_t seed);

#endif
