#include "handlers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "answer.h"
#include "conns.h"
#include "deadline.h"
#include "jsontext.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "seen.h"
#include "semver.h"

/* The OpenAPI document, embedded at build time and served as is. */
__asm__(".section .rodata\n"
        ".global gcs_openapi_json\n"
        "gcs_openapi_json:\n"
        ".incbin \"src/openapi.json\"\n"
        "gcs_openapi_json_end:\n"
        ".balign 8\n"
        ".global gcs_openapi_json_len\n"
        "gcs_openapi_json_len:\n"
        ".quad gcs_openapi_json_end - gcs_openapi_json\n"
        ".previous\n");
extern const char gcs_openapi_json[];
extern const uint64_t gcs_openapi_json_len;

#define API "/api/gathering"
/* Distinct clusters logged as "canary served" per process (4 MiB of
 * hashes); past it, further clusters are served but not logged. */
#define CANARY_LOG_CLUSTERS 262144

/* One body ready to queue, in every form a request can ask for; [closing]
 * variants carry Connection: close for use while draining. */
struct served {
	struct MHD_Response *plain[2], *gz[2], *not_modified[2], *not_modified_gz[2];
	const struct body *body;
	int metric_id; /* v2 files: io_gathering_remote_configuration */
};

struct channel {
	const struct cond_set *set;
	struct served v1;
	struct served *v2; /* parallel to set->files */
	const char *name;
};

struct handlers {
	struct channel ch[2];
	struct answerer answerer;
	struct seen *canary_seen; /* clusters already logged as served the canary */
	_Atomic bool canary_log_full;
	struct served openapi;
	struct body openapi_body;
	const char *metrics_path;
	bool metrics_apart; /* on a listener of their own */
	_Atomic bool draining;
	_Atomic int in_flight;
};

/* Marks the first access-handler call of a request: libmicrohttpd closes
 * the connection if a response is queued on that call, so we queue on the
 * second. */
static int first_call_marker;

static struct MHD_Response *build(const char *data, size_t len, const char *etag,
                                  const char *channel, bool gzip, bool closing)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return NULL;
	bool ok = MHD_add_response_header(r, "Content-Type", "application/json") == MHD_YES;
	if (etag) {
		ok = ok && MHD_add_response_header(r, "ETag", etag) == MHD_YES;
		ok = ok &&
		     MHD_add_response_header(r, "Vary", "Accept-Encoding, User-Agent") == MHD_YES;
	}
	if (channel)
		ok = ok && MHD_add_response_header(r, "X-Gcs-Channel", channel) == MHD_YES;
	if (gzip)
		ok = ok && MHD_add_response_header(r, "Content-Encoding", "gzip") == MHD_YES;
	if (closing)
		ok = ok && MHD_add_response_header(r, "Connection", "close") == MHD_YES;
	if (!ok) {
		MHD_destroy_response(r);
		return NULL;
	}
	return r;
}

static bool served_init(struct served *s, const struct body *body, const char *channel)
{
	s->body = body;
	s->metric_id = -1;
	for (int c = 0; c < 2; c++) {
		s->plain[c] = build(body->data, body->len, body->etag, channel, false, c);
		s->gz[c] = build(body->gz, body->gz_len, body->etag_gz, channel, true, c);
		s->not_modified[c] = build("", 0, body->etag, channel, false, c);
		s->not_modified_gz[c] = build("", 0, body->etag_gz, channel, false, c);
		if (!s->plain[c] || !s->gz[c] || !s->not_modified[c] || !s->not_modified_gz[c])
			return false;
	}
	return true;
}

static void served_free(struct served *s)
{
	for (int c = 0; c < 2; c++) {
		struct MHD_Response *all[] = {s->plain[c], s->gz[c], s->not_modified[c],
		                              s->not_modified_gz[c]};
		for (size_t i = 0; i < 4; i++)
			if (all[i])
				MHD_destroy_response(all[i]);
	}
}

/* --- responses --- */

/* One request being answered: what its handler reads, and the status it
 * answered with (0 when nothing could be queued). */
struct call {
	struct handlers *h;
	struct MHD_Connection *conn;
	const char *seg; /* the path's "*" segment, raw */
	size_t seg_len;
	unsigned code;
};

/* Answers {"status": text} with the text formatted from fmt; a 405 says
 * which methods are allowed. */
__attribute__((format(printf, 3, 4))) static enum MHD_Result
queue_statusf(struct call *c, unsigned code, const char *fmt, ...)
{
	char text[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	c->code = code;
	struct buf b = {0};
	buf_puts(&b, "{\"status\":");
	jsontext_string(&b, text, strlen(text));
	buf_puts(&b, "}\n");
	if (b.oom)
		return MHD_NO;
	enum MHD_Result ret = MHD_NO;
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_COPY);
	if (r) {
		MHD_add_response_header(r, "Content-Type", "application/json");
		if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
			MHD_add_response_header(r, "Allow", "GET, HEAD");
		if (atomic_load(&c->h->draining))
			MHD_add_response_header(r, "Connection", "close");
		ret = MHD_queue_response(c->conn, code, r);
		MHD_destroy_response(r);
	}
	buf_free(&b);
	return ret;
}

static enum MHD_Result queue_served(struct call *c, const struct served *s)
{
	int closing = atomic_load_explicit(&c->h->draining, memory_order_relaxed);
	bool gz = request_accepts_gzip(
	    MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));
	const char *inm =
	    MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm && (request_etag_matches(inm, s->body->etag) ||
	            request_etag_matches(inm, s->body->etag_gz))) {
		c->code = MHD_HTTP_NOT_MODIFIED;
		return MHD_queue_response(
		    c->conn, c->code, gz ? s->not_modified_gz[closing] : s->not_modified[closing]);
	}
	c->code = MHD_HTTP_OK;
	return MHD_queue_response(c->conn, c->code, gz ? s->gz[closing] : s->plain[closing]);
}

/* inet_ntop goes through sprintf; this is on the request path. */
static void format_ipv4(const struct in_addr *a, char *out)
{
	const unsigned char *b = (const unsigned char *)&a->s_addr;
	char *p = out;
	for (int i = 0; i < 4; i++) {
		unsigned v = b[i];
		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
		*p++ = i < 3 ? '.' : '\0';
	}
}

/* One request's routing decision, kept for the "canary served" line.
 * Filled by choose; left uninitialised by callers, as clearing its buffers
 * would cost every request. */
struct choice {
	const char *cluster_id; /* into idbuf, NULL when the User-Agent names none */
	const char *api, *ocp_version;
	struct seen_key seen; /* a canary answer to a cluster ID to log: its key; else 0 */
	char idbuf[256];
	char addr[INET6_ADDRSTRLEN];
	char reason[128];
};

/* What the script is shown of a request besides its path: the cluster ID
 * (into c->idbuf), the User-Agent, the client's address (into c->addr). */
static void read_request(struct MHD_Connection *conn, struct route_request *req, struct choice *c)
{
	c->addr[0] = '\0';
	const char *ua =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_USER_AGENT);
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			format_ipv4(&((const struct sockaddr_in *)sa)->sin_addr, c->addr);
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->addr,
			          sizeof(c->addr));
	}
	req->cluster_id = request_cluster_id(ua, c->idbuf, sizeof(c->idbuf));
	req->user_agent = ua;
	req->remote_addr = c->addr[0] ? c->addr : NULL;
}

/* After the script answered: the debug line, and the prefetch of a canary
 * cluster's slot in the canary-served set. */
static void routed(struct handlers *h, const struct route_request *req, struct choice *c,
                   enum gcs_channel ch)
{
	if (log_enabled(LOGL_DEBUG))
		log_msg(LOGL_DEBUG, "routed", "cluster_id", req->cluster_id, "api", req->api,
		        "channel", route_channel_name(ch), "reason", c->reason, NULL);
	/* note_canary looks the cluster up once the answer is queued: that
	 * work hides the load of its slot, a cache miss otherwise. */
	if (ch == GCS_CANARY && req->cluster_id && h->canary_seen)
		c->seen = seen_prefetch(h->canary_seen, req->cluster_id);
}

/* The answer to this request (answer.h). The request's headers and address
 * are read only when the script is asked: a stable-only server skips them,
 * and inlined here it pays for nothing but the lookup. v is ocp_version
 * parsed, NULL for v1. */
static inline void choose(struct handlers *h, struct MHD_Connection *conn, const char *api,
                          const char *ocp_version, const struct semver *v, struct choice *c,
                          struct answer *a)
{
	struct route_request req = {.api = api, .ocp_version = ocp_version};
	bool asks = answer_asks(&h->answerer);
	if (asks)
		read_request(conn, &req, c);
	answer_cluster(&h->answerer, &req, v, c->reason, sizeof(c->reason), a);
	c->cluster_id = req.cluster_id;
	c->api = api;
	c->ocp_version = ocp_version;
	c->seen = (struct seen_key){0};
	if (asks)
		routed(h, &req, c, a->channel);
}

/* The first canary answer (200 or 304) to each cluster is logged, so that a
 * log search lists the canary population. The set is lock-free: a known
 * cluster costs one hash and a probe. Clusters without an ID cannot be told
 * apart and are not logged. */
static void note_canary(struct handlers *h, const struct choice *c, unsigned code)
{
	if (!c->seen.hash || (code != MHD_HTTP_OK && code != MHD_HTTP_NOT_MODIFIED))
		return;
	enum seen_result r = seen_add_key(h->canary_seen, c->seen);
	if (r == SEEN_NEW) {
		log_msg(LOGL_INFO, "canary served", "cluster_id", c->cluster_id, "version",
		        h->ch[GCS_CANARY].set->version, "api", c->api, "ocp_version",
		        c->ocp_version, "reason", c->reason, NULL);
	} else if (r == SEEN_FULL &&
	           !atomic_load_explicit(&h->canary_log_full, memory_order_relaxed) &&
	           !atomic_exchange(&h->canary_log_full, true)) {
		char limit[32];
		snprintf(limit, sizeof(limit), "%d", CANARY_LOG_CLUSTERS);
		log_msg(LOGL_WARN,
		        "canary served: limit of clusters logged reached; further clusters are "
		        "served the canary but not logged until restart",
		        "limit", limit, NULL);
	}
}

/* --- endpoints --- */

static enum MHD_Result handle_v1(struct call *c)
{
	struct choice choice;
	struct answer a;
	choose(c->h, c->conn, "v1", NULL, NULL, &choice, &a);
	enum MHD_Result ret = queue_served(c, &c->h->ch[a.channel].v1);
	if (c->code == MHD_HTTP_OK)
		metrics_served(false, a.channel == GCS_CANARY);
	note_canary(c->h, &choice, c->code);
	return ret;
}

static enum MHD_Result handle_v2(struct call *c)
{
	char text[256];
	struct semver v;
	if (!request_ocp_version(c->seg, c->seg_len, text, sizeof(text), &v)) {
		struct buf q = {0};
		jsontext_string(&q, c->seg, c->seg_len > 64 ? 64 : c->seg_len);
		enum MHD_Result ret = queue_statusf(
		    c, MHD_HTTP_BAD_REQUEST, "invalid ocpVersion %s%s: not a SemVer 2.0.0 version",
		    q.data ? q.data : "", c->seg_len > 64 ? "..." : "");
		buf_free(&q);
		return ret;
	}
	struct choice choice;
	struct answer a;
	choose(c->h, c->conn, "v2", text, &v, &choice, &a);
	if (!a.file)
		return queue_statusf(c, MHD_HTTP_NOT_FOUND,
		                     "no remote configuration for ocpVersion %s: the mapping "
		                     "starts at %s",
		                     text, a.mapping_start);
	const struct served *s = &c->h->ch[a.channel].v2[a.file - a.set->files];
	enum MHD_Result ret = queue_served(c, s);
	if (c->code == MHD_HTTP_OK) {
		metrics_config_served(s->metric_id);
		metrics_served(true, a.channel == GCS_CANARY);
	}
	note_canary(c->h, &choice, c->code);
	return ret;
}

static enum MHD_Result handle_openapi(struct call *c)
{
	return queue_served(c, &c->h->openapi);
}

static enum MHD_Result handle_metrics(struct call *c)
{
	struct buf b = {0};
	metrics_render(&b);
	struct MHD_Response *r =
	    b.oom ? NULL : MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		buf_free(&b);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	c->code = MHD_HTTP_OK;
	enum MHD_Result ret = MHD_queue_response(c->conn, c->code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle_healthz(struct call *c)
{
	return queue_statusf(c, MHD_HTTP_OK, "ok");
}

static enum MHD_Result handle_readyz(struct call *c)
{
	if (atomic_load(&c->h->draining))
		return queue_statusf(c, MHD_HTTP_SERVICE_UNAVAILABLE, "shutting down");
	return queue_statusf(c, MHD_HTTP_OK, "ready");
}

/* Every path gcs answers besides the metrics (GCS_METRICS_PATH, see
 * find_endpoint); request_match's "*" is one segment. Anything else is 404. */
static const struct endpoint {
	const char *pattern;
	enum metrics_endpoint metric;
	enum MHD_Result (*handler)(struct call *c);
} endpoints[] = {
    {API "/gathering_rules", EP_V1, handle_v1},
    {API "/v1/gathering_rules", EP_V1, handle_v1},
    {API "/v2/*/gathering_rules", EP_V2, handle_v2},
    {API "/openapi.json", EP_OPENAPI, handle_openapi},
    {API "/v1/openapi.json", EP_OPENAPI, handle_openapi},
    {API "/v2/openapi.json", EP_OPENAPI, handle_openapi},
    {"/healthz", EP_HEALTHZ, handle_healthz},
    {"/readyz", EP_READYZ, handle_readyz},
};

static const struct endpoint metrics_endpoint = {NULL, EP_METRICS, handle_metrics};

/* The metrics are answered at their path by the metrics listener, or by
 * the public one when there is none; never both. */
static inline const struct endpoint *find_endpoint(const struct handlers *h, bool metrics_only,
                                                   const char *url, struct call *c)
{
	if (metrics_only || !h->metrics_apart) {
		if (strcmp(url, h->metrics_path) == 0)
			return &metrics_endpoint;
		if (metrics_only)
			return NULL;
	}
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++)
		if (request_match(endpoints[i].pattern, url, &c->seg, &c->seg_len))
			return &endpoints[i];
	return NULL;
}

bool handlers_is_api_path(const char *path)
{
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
		const char *seg;
		size_t seg_len;
		if (request_match(endpoints[i].pattern, path, &seg, &seg_len))
			return true;
	}
	return false;
}

/* The connection's entry in conns, or NULL when it has none. */
static struct conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* RFC 9112 3.2: an HTTP/1.1 request without Host is refused; in the words
 * and with the close of Go's net/http, which the Go service answered. */
static enum MHD_Result refuse_without_host(struct call *c)
{
	static const char text[] = "400 Bad Request: missing required Host header";
	c->code = MHD_HTTP_BAD_REQUEST;
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(sizeof(text) - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	MHD_add_response_header(r, "Connection", "close");
	enum MHD_Result ret = MHD_queue_response(c->conn, c->code, r);
	MHD_destroy_response(r);
	return ret;
}

/* Both listeners' access handler; their entries below differ in
 * metrics_only alone. */
static inline enum MHD_Result handle(struct handlers *h, bool metrics_only,
                                     struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     size_t *upload_data_size, void **req_cls)
{
	if (*req_cls == NULL) {
		/* Nothing is queued on the first call (see first_call_marker);
		 * the request now counts as in flight. */
		*req_cls = &first_call_marker;
		atomic_fetch_add(&h->in_flight, 1);
		return MHD_YES;
	}
	if (*upload_data_size) {
		/* ignored, and read under the request deadline; answered below
		 * once complete */
		*upload_data_size = 0;
		return MHD_YES;
	}
	double start = deadline_now();
	struct conn *tracked = conn_of(conn);
	if (tracked)
		conns_answering(tracked);
	struct call c = {.h = h, .conn = conn};
	const struct endpoint *e = find_endpoint(h, metrics_only, url, &c);
	enum MHD_Result ret;
	if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
	    !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST))
		ret = refuse_without_host(&c);
	else if (!e)
		ret = queue_statusf(&c, MHD_HTTP_NOT_FOUND, "not found");
	else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		ret = queue_statusf(&c, MHD_HTTP_METHOD_NOT_ALLOWED, "method %.32s not allowed",
		                    method);
	else
		ret = e->handler(&c);
	metrics_request(e ? e->metric : EP_OTHER, c.code, deadline_now() - start);
	if (log_enabled(LOGL_DEBUG)) {
		char status[8];
		snprintf(status, sizeof(status), "%u", c.code);
		log_msg(LOGL_DEBUG, "request", "method", method, "path", url, "status", status,
		        NULL);
	}
	return ret;
}

enum MHD_Result handlers_public(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **req_cls)
{
	(void)upload_data;
	return handle(cls, false, conn, url, method, version, upload_data_size, req_cls);
}

enum MHD_Result handlers_metrics(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
	(void)upload_data;
	return handle(cls, true, conn, url, method, version, upload_data_size, req_cls);
}

void handlers_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                        enum MHD_RequestTerminationCode toe)
{
	(void)toe;
	struct handlers *h = cls;
	if (*req_cls == &first_call_marker) {
		atomic_fetch_sub(&h->in_flight, 1);
		struct conn *tracked = conn_of(conn);
		if (tracked)
			conns_idle(tracked);
	}
	*req_cls = NULL;
}

static bool channel_init(struct channel *c, const struct cond_set *set, const char *name)
{
	c->set = set;
	c->name = name;
	if (!set)
		return true;
	if (!served_init(&c->v1, &set->v1, name))
		return false;
	c->v2 = calloc(set->nfiles ? set->nfiles : 1, sizeof(*c->v2));
	if (!c->v2)
		return false;
	for (size_t i = 0; i < set->nfiles; i++) {
		if (!served_init(&c->v2[i], &set->files[i].body, name))
			return false;
		c->v2[i].metric_id =
		    metrics_register_config(set->files[i].path, set->files[i].version);
	}
	return true;
}

static void channel_free(struct channel *c)
{
	if (!c->set)
		return;
	served_free(&c->v1);
	if (c->v2)
		for (size_t i = 0; i < c->set->nfiles; i++)
			served_free(&c->v2[i]);
	free(c->v2);
}

/* The responses every request picks from, built once. NULL, or why not. */
static const char *responses_init(struct handlers *h, const struct cond_set *stable,
                                  const struct cond_set *canary)
{
	size_t openapi_len = (size_t)gcs_openapi_json_len;
	char *openapi = malloc(openapi_len + 1);
	if (openapi)
		memcpy(openapi, gcs_openapi_json, openapi_len);
	if (!openapi || body_init(&h->openapi_body, openapi, openapi_len) < 0)
		return "out of memory";
	if (!channel_init(&h->ch[GCS_STABLE], stable, ROUTE_STABLE) ||
	    !channel_init(&h->ch[GCS_CANARY], canary, ROUTE_CANARY) ||
	    (canary && !(h->canary_seen = seen_new(CANARY_LOG_CLUSTERS))) ||
	    !served_init(&h->openapi, &h->openapi_body, NULL))
		return "out of memory building responses";
	return NULL;
}

struct handlers *handlers_new(const struct cond_set *stable, const struct cond_set *canary,
                              struct routing *routing, const char *metrics_path, bool metrics_apart,
                              char *err, size_t errlen)
{
	struct handlers *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->answerer = (struct answerer){.routing = routing, .stable = stable, .canary = canary};
	h->metrics_path = metrics_path;
	h->metrics_apart = metrics_apart;
	const char *why = responses_init(h, stable, canary);
	if (why) {
		snprintf(err, errlen, "%s", why);
		handlers_free(h);
		return NULL;
	}
	return h;
}

void handlers_drain(struct handlers *h)
{
	atomic_store(&h->draining, true);
}

int handlers_in_flight(const struct handlers *h)
{
	return atomic_load(&h->in_flight);
}

void handlers_free(struct handlers *h)
{
	if (!h)
		return;
	channel_free(&h->ch[GCS_STABLE]);
	channel_free(&h->ch[GCS_CANARY]);
	served_free(&h->openapi);
	body_free(&h->openapi_body);
	seen_free(h->canary_seen);
	free(h);
}
