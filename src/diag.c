#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void diag_add(struct diag *d, const char *fmt, ...)
{
	char body[2048];
	d->count++;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		char **lines = realloc(d->lines, cap * sizeof(*lines));
		if (!lines)
			return; /* out of memory: the count of problems is still > 0 via earlier
			           lines */
		d->lines = lines;
		d->cap = cap;
	}
	const char *prefix = d->prefix ? d->prefix : "";
	size_t len = strlen(prefix) + strlen(body) + 1;
	char *line = malloc(len);
	if (!line)
		return;
	snprintf(line, len, "%s%s", prefix, body);
	d->lines[d->n++] = line;
}

void diag_free(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->lines[i]);
	free(d->lines);
	d->lines = NULL;
	d->n = d->cap = d->count = 0;
}
