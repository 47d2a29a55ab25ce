#include "http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conns.h"
#include "deadline.h"
#include "handlers.h"
#include "log.h"

/* Per-connection memory: bounds the request line and headers (larger gets
 * 414 or 431) and is cleared for every request, so keep it small. */
#define CONNECTION_MEMORY 8192

struct http_server {
	struct MHD_Daemon *daemon;
	struct MHD_Daemon *metrics_daemon; /* NULL: metrics on the public listener */
	char address[128];
	char metrics_address[128];
	struct handlers *handlers;
	/* libmicrohttpd's timeout is an idle one, which a client sending one
	 * byte a second never hits: conns keeps a deadline per phase. */
	struct conns *conns;
};

/* MHD would decode the whole URL before routing; we keep it raw so that
 * only the ocpVersion segment is decoded, and strictly. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

static void connection_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
	struct http_server *srv = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		*socket_context = ci ? conns_open(srv->conns, ci->connect_fd) : NULL;
	} else if (*socket_context) {
		conns_close(srv->conns, *socket_context);
		*socket_context = NULL;
	}
}

/* Beyond the limit a connection is closed at once, so that its client
 * fails fast and retries elsewhere instead of waiting in the backlog. */
static enum MHD_Result admit(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	(void)addr;
	(void)addrlen;
	struct http_server *srv = cls;
	return conns_admit(srv->conns) ? MHD_YES : MHD_NO;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '.'))
		buf[--n] = '\0';
	log_msg(LOGL_DEBUG, "libmicrohttpd", "detail", buf, NULL);
}

/* "host:port" or "[v6]:port" → sockaddr; name is the variable it came from. */
static int parse_listen(const char *name, const char *listen, struct sockaddr_storage *ss,
                        socklen_t *len, char *err, size_t errlen)
{
	const char *whole = listen;
	char host[128];
	const char *colon = strrchr(listen, ':');
	if (!colon || colon == listen || strlen(colon + 1) == 0) {
		snprintf(err, errlen, "%s=\"%s\": expected host:port", name, listen);
		return -1;
	}
	size_t hl = (size_t)(colon - listen);
	if (listen[0] == '[' && hl >= 2 && listen[hl - 1] == ']') {
		listen++;
		hl -= 2;
	}
	if (hl >= sizeof(host)) {
		snprintf(err, errlen, "%s: host too long", name);
		return -1;
	}
	memcpy(host, listen, hl);
	host[hl] = '\0';
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	                         .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai;
	int rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "%s=\"%s\": %s (numeric address and port expected)", name,
		         whole, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

int http_check(const struct gcs_config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (parse_listen("GCS_LISTEN", cfg->listen, &ss, &sl, err, errlen) < 0)
		return -1;
	if (cfg->metrics_listen)
		return parse_listen("GCS_METRICS_LISTEN", cfg->metrics_listen, &ss, &sl, err,
		                    errlen);
	/* On the public listener the metrics path comes first: it must not
	 * hide a path clusters or probes use. */
	if (handlers_is_api_path(cfg->metrics_path)) {
		snprintf(err, errlen,
		         "GCS_METRICS_PATH=\"%s\": is a path of the API; choose another, or "
		         "serve the metrics on a port of their own (GCS_METRICS_LISTEN)",
		         cfg->metrics_path);
		return -1;
	}
	return 0;
}

static unsigned cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static struct MHD_Daemon *daemon_start(struct http_server *srv, const struct gcs_config *cfg,
                                       const struct sockaddr_storage *ss)
{
	unsigned threads = cfg->threads ? cfg->threads : cpu_count();
	unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (ss->ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* One worker is libmicrohttpd's internal thread: it refuses a pool of
	 * one (or none) with a warning. */
	struct MHD_OptionItem pool[] = {
	    {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
	    {MHD_OPTION_END, 0, NULL},
	};
	/* libmicrohttpd splits its limit between the workers and stops
	 * accepting on a worker at its share, leaving clients in the backlog:
	 * each worker may take the whole limit (and one more, to refuse it),
	 * and admit holds the real one. */
	unsigned mhd_limit = (cfg->connection_limit + 1) * threads;
	/* The logger first: what the options below complain about is logged. */
	return MHD_start_daemon(
	    flags, 0, admit, srv, handlers_public, srv->handlers, MHD_OPTION_EXTERNAL_LOGGER,
	    mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss, MHD_OPTION_ARRAY,
	    pool, MHD_OPTION_CONNECTION_LIMIT, mhd_limit, MHD_OPTION_CONNECTION_TIMEOUT,
	    cfg->connection_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, handlers_completed, srv->handlers,
	    MHD_OPTION_NOTIFY_CONNECTION, connection_notify, srv, MHD_OPTION_UNESCAPE_CALLBACK,
	    no_unescape, NULL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, MHD_OPTION_END);
}

/* The metrics listener: one thread, a few connections (a scraper or two
 * and a person with curl), the same per-connection memory. */
static struct MHD_Daemon *metrics_daemon_start(struct http_server *srv,
                                               const struct sockaddr_storage *ss)
{
	unsigned flags =
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	if (ss->ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	return MHD_start_daemon(flags, 0, NULL, NULL, handlers_metrics, srv->handlers,
	                        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
	                        (const struct sockaddr *)ss, MHD_OPTION_CONNECTION_LIMIT,
	                        (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
	                        MHD_OPTION_NOTIFY_COMPLETED, handlers_completed, srv->handlers,
	                        MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_END);
}

/* "host:port" as bound, the port read back from the daemon (port 0). */
static void note_address(struct MHD_Daemon *d, const struct sockaddr_storage *ss, char *out,
                         size_t size)
{
	char host[INET6_ADDRSTRLEN] = "";
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned port = di ? di->port : 0;
	if (ss->ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host,
		          sizeof(host));
		snprintf(out, size, "[%s]:%u", host, port);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof(host));
		snprintf(out, size, "%s:%u", host, port);
	}
}

/* Metrics on a port of their own, when GCS_METRICS_LISTEN is set. */
static int metrics_listen(struct http_server *srv, const struct gcs_config *cfg, char *err,
                          size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	if (!cfg->metrics_listen)
		return 0;
	if (parse_listen("GCS_METRICS_LISTEN", cfg->metrics_listen, &ss, &sl, err, errlen) < 0)
		return -1;
	srv->metrics_daemon = metrics_daemon_start(srv, &ss);
	if (!srv->metrics_daemon) {
		snprintf(err, errlen,
		         "cannot listen on %s for metrics (address in use or not available)",
		         cfg->metrics_listen);
		return -1;
	}
	note_address(srv->metrics_daemon, &ss, srv->metrics_address, sizeof(srv->metrics_address));
	return 0;
}

struct http_server *http_start(const struct gcs_config *cfg, const struct cond_set *stable,
                               const struct cond_set *canary, struct routing *routing, char *err,
                               size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct http_server *srv = calloc(1, sizeof(*srv));
	if (!srv) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	const struct conns_limits limits = {.limit = cfg->connection_limit,
	                                    .request_timeout = cfg->request_timeout,
	                                    .keepalive_timeout = cfg->keepalive_timeout};
	srv->conns = conns_new(&limits, err, errlen);
	if (!srv->conns)
		goto fail;
	srv->handlers = handlers_new(stable, canary, routing, cfg->metrics_path,
	                             cfg->metrics_listen != NULL, err, errlen);
	if (!srv->handlers)
		goto fail;
	if (metrics_listen(srv, cfg, err, errlen) < 0 ||
	    parse_listen("GCS_LISTEN", cfg->listen, &ss, &sl, err, errlen) < 0)
		goto fail;
	srv->daemon = daemon_start(srv, cfg, &ss);
	if (!srv->daemon) {
		snprintf(err, errlen,
		         "cannot listen on %s (address in use or not available, or too "
		         "many threads for this machine)",
		         cfg->listen);
		goto fail;
	}
	note_address(srv->daemon, &ss, srv->address, sizeof(srv->address));
	return srv;
fail:
	http_stop(srv);
	return NULL;
}

const char *http_address(const struct http_server *srv)
{
	return srv->address;
}

const char *http_metrics_address(const struct http_server *srv)
{
	return srv->metrics_daemon ? srv->metrics_address : NULL;
}

void http_drain(struct http_server *srv, double grace)
{
	handlers_drain(srv->handlers);
	/* Stop accepting: clients reconnect to a ready pod. */
	MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	double deadline = deadline_now() + grace;
	/* In-flight requests finish; idle keep-alive connections are closed
	 * by MHD_stop_daemon afterwards, as Go's Shutdown does. */
	int quiet = 0;
	while (deadline_now() < deadline) {
		if (handlers_in_flight(srv->handlers) == 0) {
			if (++quiet >= 5)
				break;
		} else {
			quiet = 0;
		}
		usleep(20000);
	}
}

void http_stop(struct http_server *srv)
{
	if (!srv)
		return;
	if (srv->daemon)
		MHD_stop_daemon(srv->daemon);
	if (srv->metrics_daemon)
		MHD_stop_daemon(srv->metrics_daemon);
	conns_free(srv->conns);
	handlers_free(srv->handlers);
	free(srv);
}
