/* file: a whole file read through one descriptor, bounded: opened without
 * blocking (a FIFO or a device named by mistake cannot hold the caller),
 * read only when it is a regular file, and never more than a given size,
 * even if the file grows while it is read. */
#ifndef GCS_FILE_H
#define GCS_FILE_H

#include <stddef.h>
#include <sys/stat.h>

enum file_result {
	FILE_READ,   /* *out holds the bytes */
	FILE_ABSENT, /* no such file */
	FILE_FAILED, /* why says why */
};

/* Reads path whole, at most max bytes. On FILE_READ, *out (malloc'd,
 * NUL-terminated after its *len bytes) and, when st is not NULL, the
 * status of the descriptor read (its identity is the bytes'). On
 * FILE_FAILED, why gets a short phrase for after the path: "is a
 * directory", "not a regular file", "larger than N bytes", "out of memory"
 * or the system's reason. */
enum file_result file_read(const char *path, size_t max, char **out, size_t *len, struct stat *st,
                           char *why, size_t whylen);

#endif
