/* client: the one libcurl easy-handle setup of gcs's HTTP clients (the
 * download in fetch, the Unleash poller), each caller with its own
 * settings. */
#ifndef GCS_CLIENT_H
#define GCS_CLIENT_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* Zero or NULL leaves a setting at libcurl's default. */
struct client_opts {
	const char *protocols;       /* schemes allowed, e.g. "http,https" */
	const char *redir_protocols; /* set: redirects are followed to these */
	long max_redirects;
	long connect_timeout_ms;
	long timeout_ms;      /* the whole transfer */
	curl_off_t max_bytes; /* refused early when a larger Content-Length is announced */
	bool fail_on_error;   /* a 4xx/5xx ends the transfer before its body */
	const char *user_agent;
	const char *accept_encoding; /* "": every encoding libcurl decodes */
	char *errbuf;                /* CURL_ERROR_SIZE bytes for curl's reason */
	curl_write_callback on_body;
	void *body_data; /* NULL: set per transfer */
	curl_write_callback on_header;
	curl_xferinfo_callback on_progress; /* with progress_data; nonzero aborts */
	void *progress_data;
};

/* Sets opts on h, never signals (gcs is threaded; the resolver is too, so
 * timeouts hold). TLS stays at libcurl's defaults: peer and host verified
 * against the system's CAs. Returns the first failing option's code, or CURLE_OK. */
CURLcode client_setup(CURL *h, const struct client_opts *opts);

/* A body received into memory: a transfer that would take it past max_bytes
 * is aborted from the write callback, before the excess is stored. */
struct client_sink {
	struct buf bytes;
	size_t max_bytes;
	bool too_large;
};

/* The write callback of a client_sink: opts.on_body, the sink as its data. */
size_t client_sink_write(char *ptr, size_t size, size_t nmemb, void *sink);

#endif
