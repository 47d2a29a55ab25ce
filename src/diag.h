/* diag: a list of problem lines, collected so every problem is reported. */
#ifndef GCS_DIAG_H
#define GCS_DIAG_H

#include <stddef.h>

struct diag {
	char **lines;
	size_t n, cap;
	size_t count;       /* problems added, even those whose line could not be stored */
	const char *prefix; /* prepended to each line, e.g. "canary 1.2.0: " */
};

void diag_add(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_free(struct diag *d);

#endif
