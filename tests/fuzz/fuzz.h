/* fuzz.h: what every libFuzzer harness shares. A broken property aborts with
 * one line saying which, so libFuzzer keeps the input as a crash. */
#ifndef GCS_FUZZ_H
#define GCS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "property broken (%s:%d): ", __FILE__, __LINE__);          \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* dir (len bytes) becomes a new directory "<tmp>/<prefix>-XXXXXX" for the
 * files a harness writes on every run: on tmpfs when there is one, where
 * writing (and fsync) costs nothing. */
static inline void fuzz_tmpdir(char *dir, size_t len, const char *prefix)
{
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, len, "%s/%s-XXXXXX", tmp, prefix);
	if (!mkdtemp(dir))
		abort();
}

/* The input as a NUL-terminated string, cut at its first NUL. The caller frees. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Splits the input at its first occurrence of sep: the part before, and
 * after (empty when sep is absent). */
static inline size_t fuzz_split(const uint8_t *data, size_t size, uint8_t sep, const uint8_t **rest,
                                size_t *rest_size)
{
	const uint8_t *p = memchr(data, sep, size);
	if (!p) {
		*rest = data + size;
		*rest_size = 0;
		return size;
	}
	*rest = p + 1;
	*rest_size = size - (size_t)(p - data) - 1;
	return (size_t)(p - data);
}

#endif
