#include "conns.h"

#include <netinet/in.h>
#include <linux/tcp.h> /* tcp_info with tcpi_bytes_received: glibc's lacks it */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deadline.h"
#include "log.h"
#include "metrics.h"

/* Descriptors beside the connections': the listening socket, each
 * worker's epoll set and wake-up, the log, downloads and Unleash. */
#define FD_RESERVE 256

/* Seconds between two looks at the deadlines: a deadline is kept to
 * within this. */
#define SCAN_PERIOD 0.25

/* A connection's phase, in the low bits of conn.state; the bits above
 * count its answers, so that the watcher tells one idle spell from the
 * next. */
enum { READING, ANSWERING, IDLE };
#define PHASE(state) ((state)&3u)

struct conn {
	struct conn *prev, *next; /* in the open list, or (next only) the freed list */
	int fd;
	_Atomic uint32_t state;
	_Atomic double since; /* when the phase began */
	/* the watcher's alone, under the lock: */
	uint32_t idle_seen;   /* the idle spell rx counts from */
	uint64_t rx;          /* bytes received when that spell was first seen */
	double reading_since; /* a later request's first byte was seen; 0: not yet */
	bool peer_gone;       /* the peer closed: see peer_closed */
	bool cut;             /* shut down for a missed deadline */
	bool done;            /* closed: nothing more to do */
};

struct conns {
	struct conns_limits limits;
	_Atomic unsigned open;
	pthread_mutex_t lock;
	struct conn list; /* head of the open connections */
	/* Closed connections, freed by the watcher once no event it has yet
	 * to read can name them. */
	struct conn *freed;
	int epfd, stopfd;
	pthread_t watcher;
	bool watching;
};

/* Workers accepting at the same moment may each admit one connection past
 * the limit: it is counted when libmicrohttpd has set the connection up,
 * so that one it fails to set up takes no slot. */
bool conns_admit(struct conns *cs)
{
	if (atomic_load_explicit(&cs->open, memory_order_relaxed) < cs->limits.limit)
		return true;
	metrics_connection_refused();
	return false;
}

struct conn *conns_open(struct conns *cs, int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	atomic_init(&c->state, READING);
	atomic_init(&c->since, deadline_now());
	/* Only the peer's close wakes the watcher: EPOLLRDHUP, not EPOLLIN. */
	struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET, .data.ptr = c};
	pthread_mutex_lock(&cs->lock);
	c->next = cs->list.next;
	c->prev = &cs->list;
	cs->list.next->prev = c;
	cs->list.next = c;
	/* Without it (out of memory) the connection still has its deadlines. */
	(void)epoll_ctl(cs->epfd, EPOLL_CTL_ADD, fd, &ev);
	pthread_mutex_unlock(&cs->lock);
	atomic_fetch_add_explicit(&cs->open, 1, memory_order_relaxed);
	metrics_connections(1);
	return c;
}

void conns_close(struct conns *cs, struct conn *c)
{
	pthread_mutex_lock(&cs->lock);
	c->prev->next = c->next;
	c->next->prev = c->prev;
	(void)epoll_ctl(cs->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->done = true;
	c->next = cs->freed;
	cs->freed = c;
	pthread_mutex_unlock(&cs->lock);
	atomic_fetch_sub_explicit(&cs->open, 1, memory_order_relaxed);
	metrics_connections(-1);
}

void conns_answering(struct conn *c)
{
	uint32_t s = atomic_load_explicit(&c->state, memory_order_relaxed);
	atomic_store_explicit(&c->state, (s & ~3u) | ANSWERING, memory_order_release);
}

void conns_idle(struct conn *c)
{
	uint32_t s = atomic_load_explicit(&c->state, memory_order_relaxed);
	atomic_store_explicit(&c->since, deadline_now(), memory_order_relaxed);
	atomic_store_explicit(&c->state, ((s >> 2) + 1) << 2 | IDLE, memory_order_release);
}

/* Bytes the kernel has received on fd since its accept. */
static uint64_t received(int fd)
{
	struct tcp_info ti = {0};
	socklen_t len = sizeof(ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
		return 0;
	return ti.tcpi_bytes_received;
}

/* libmicrohttpd sees the end of the stream and closes the connection;
 * repeated until it has, as for a peer's close (see peer_closed). */
static void cut(struct conn *c, enum metrics_cut why)
{
	shutdown(c->fd, SHUT_RDWR);
	c->cut = true;
	metrics_connection_cut(why);
}

/* An idle connection: its next request begins when bytes arrive, and is
 * then held to the request deadline. */
static void check_idle(const struct conns *cs, struct conn *c, uint32_t state, double since,
                       double now)
{
	const struct conns_limits *l = &cs->limits;
	if (c->idle_seen != state) {
		c->idle_seen = state;
		c->rx = received(c->fd);
		c->reading_since = 0;
		return;
	}
	if (c->reading_since == 0 && received(c->fd) != c->rx)
		c->reading_since = now;
	if (c->reading_since == 0) {
		if (l->keepalive_timeout > 0 && now - since > l->keepalive_timeout)
			cut(c, METRICS_CUT_KEEPALIVE);
	} else if (l->request_timeout > 0 && now - c->reading_since > l->request_timeout) {
		cut(c, METRICS_CUT_REQUEST);
	}
}

static void check_deadlines(struct conns *cs, double now)
{
	for (struct conn *c = cs->list.next; c != &cs->list; c = c->next) {
		if (c->cut || c->peer_gone) {
			/* again, see peer_closed */
			shutdown(c->fd, c->cut ? SHUT_RDWR : SHUT_RD);
			continue;
		}
		uint32_t state = atomic_load_explicit(&c->state, memory_order_acquire);
		double since = atomic_load_explicit(&c->since, memory_order_relaxed);
		if (PHASE(state) == READING) {
			if (cs->limits.request_timeout > 0 &&
			    now - since > cs->limits.request_timeout)
				cut(c, METRICS_CUT_REQUEST);
		} else if (PHASE(state) == IDLE) {
			check_idle(cs, c, state, since, now);
		}
	}
}

/* The peer closed. libmicrohttpd 0.9.75 watches its sockets edge-triggered
 * and takes a read shorter than its buffer to mean the socket is drained:
 * when the last bytes and the FIN arrive in one segment, the end of the
 * stream is never read and the socket sits in CLOSE-WAIT until the
 * connection timeout. Shutting down our reading side (the peer can send
 * nothing more anyway) is a new edge: libmicrohttpd reads what is queued,
 * then the end, and closes; a complete request is still answered. The
 * edge is lost when it comes before libmicrohttpd has read the segment's
 * own, so every look at the deadlines repeats it until the connection is
 * closed. */
static void peer_closed(struct conn *c)
{
	if (c->done || c->cut || c->peer_gone)
		return;
	shutdown(c->fd, SHUT_RD);
	c->peer_gone = true;
}

static void free_list(struct conn *c)
{
	while (c) {
		struct conn *next = c->next;
		free(c);
		c = next;
	}
}

static void *watch(void *arg)
{
	struct conns *cs = arg;
	struct epoll_event ev[64];
	double next_scan = deadline_now() + SCAN_PERIOD;
	bool stop = false;
	while (!stop) {
		/* Closed before this wait: no event of it can be returned. */
		pthread_mutex_lock(&cs->lock);
		struct conn *freed = cs->freed;
		cs->freed = NULL;
		pthread_mutex_unlock(&cs->lock);
		double wait = next_scan - deadline_now();
		int n = epoll_wait(cs->epfd, ev, 64, wait > 0 ? (int)(wait * 1000) + 1 : 0);
		pthread_mutex_lock(&cs->lock);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr)
				peer_closed(ev[i].data.ptr);
			else
				stop = true;
		}
		double now = deadline_now();
		if (now >= next_scan) {
			check_deadlines(cs, now);
			next_scan = now + SCAN_PERIOD;
		}
		pthread_mutex_unlock(&cs->lock);
		free_list(freed);
	}
	return NULL;
}

/* The descriptor limit raised as far as the hard limit allows: past it,
 * accept fails and libmicrohttpd stops accepting until a connection closes,
 * leaving clients in the backlog, which the connection limit is meant to
 * prevent. */
static void raise_nofile(unsigned limit)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0)
			return;
	}
	rlim_t need = (rlim_t)limit + FD_RESERVE;
	if (rl.rlim_cur < need) {
		char have[32], want[32];
		snprintf(have, sizeof(have), "%llu", (unsigned long long)rl.rlim_cur);
		snprintf(want, sizeof(want), "%llu", (unsigned long long)need);
		log_msg(LOGL_WARN,
		        "descriptor limit (hard) below what GCS_CONNECTION_LIMIT needs: "
		        "connections beyond it wait in the listen backlog; raise the hard "
		        "limit (ulimit -Hn) or lower GCS_CONNECTION_LIMIT",
		        "nofile", have, "needed", want, NULL);
	}
}

struct conns *conns_new(const struct conns_limits *limits, char *err, size_t errlen)
{
	struct conns *cs = calloc(1, sizeof(*cs));
	if (!cs) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	cs->limits = *limits;
	raise_nofile(limits->limit);
	cs->list.next = cs->list.prev = &cs->list;
	pthread_mutex_init(&cs->lock, NULL);
	cs->epfd = epoll_create1(EPOLL_CLOEXEC);
	cs->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (cs->epfd < 0 || cs->stopfd < 0 ||
	    epoll_ctl(cs->epfd, EPOLL_CTL_ADD, cs->stopfd, &ev) != 0) {
		snprintf(err, errlen, "cannot watch connections (epoll): out of descriptors");
		conns_free(cs);
		return NULL;
	}
	if (pthread_create(&cs->watcher, NULL, watch, cs) != 0) {
		snprintf(err, errlen, "cannot start the connection watcher thread");
		conns_free(cs);
		return NULL;
	}
	cs->watching = true;
	metrics_connection_limit(limits->limit);
	return cs;
}

void conns_free(struct conns *cs)
{
	if (!cs)
		return;
	if (cs->watching) {
		uint64_t one = 1;
		if (write(cs->stopfd, &one, sizeof(one)) != sizeof(one))
			abort(); /* an eventfd below its maximum always takes 1 */
		pthread_join(cs->watcher, NULL);
	}
	free_list(cs->freed);
	for (struct conn *c = cs->list.next, *next; c != &cs->list; c = next) {
		next = c->next;
		free(c);
	}
	if (cs->epfd >= 0)
		close(cs->epfd);
	if (cs->stopfd >= 0)
		close(cs->stopfd);
	pthread_mutex_destroy(&cs->lock);
	free(cs);
}
