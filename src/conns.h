/* conns: the open HTTP connections, each in a phase with its own deadline.
 * A connection reads a request (headers and body within the request
 * deadline, counted from its accept for the first request and from the
 * first byte of a later one), is answered, then idles until the next
 * request (the keep-alive deadline). One watcher thread cuts a connection
 * that misses its deadline, wakes libmicrohttpd as soon as a peer closes,
 * and counts both; libmicrohttpd's threads only note phase changes. */
#ifndef GCS_CONNS_H
#define GCS_CONNS_H

#include <stdbool.h>
#include <stddef.h>

struct conns_limits {
	unsigned limit;           /* open connections; beyond it new ones are refused */
	double request_timeout;   /* seconds to deliver a whole request; 0: none */
	double keepalive_timeout; /* seconds idle between two requests; 0: none */
};

struct conns;
struct conn;

/* Starts the watcher thread; NULL with the reason in err. */
struct conns *conns_new(const struct conns_limits *limits, char *err, size_t errlen);
/* Stops the watcher; call once no connection is open (the server stopped). */
void conns_free(struct conns *cs);

/* Whether one more connection fits; false counts a refusal. */
bool conns_admit(struct conns *cs);
/* A connection accepted on fd, now reading its first request; NULL when out
 * of memory (the connection is then served without deadlines). */
struct conn *conns_open(struct conns *cs, int fd);
/* Before its socket is closed. */
void conns_close(struct conns *cs, struct conn *c);
/* The whole request has been received; it is being answered. */
void conns_answering(struct conn *c);
/* The answer is done; the connection idles until its next request. */
void conns_idle(struct conn *c);

#endif
