#include "client.h"

/* The string options that are set, in one list. */
static CURLcode set_strings(CURL *h, const struct client_opts *o)
{
	const struct {
		CURLoption option;
		const char *value;
	} strings[] = {
	    {CURLOPT_PROTOCOLS_STR, o->protocols},
	    {CURLOPT_REDIR_PROTOCOLS_STR, o->redir_protocols},
	    {CURLOPT_USERAGENT, o->user_agent},
	    {CURLOPT_ACCEPT_ENCODING, o->accept_encoding},
	};
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		CURLcode rc = strings[i].value
		                  ? curl_easy_setopt(h, strings[i].option, strings[i].value)
		                  : CURLE_OK;
		if (rc != CURLE_OK)
			return rc;
	}
	return CURLE_OK;
}

static CURLcode set_callbacks(CURL *h, const struct client_opts *o)
{
	CURLcode rc = CURLE_OK;
	if (o->on_body)
		rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, o->on_body);
	if (rc == CURLE_OK && o->body_data)
		rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, o->body_data);
	if (rc == CURLE_OK && o->on_header)
		rc = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, o->on_header);
	if (rc == CURLE_OK && o->on_progress &&
	    (rc = curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, o->on_progress)) == CURLE_OK &&
	    (rc = curl_easy_setopt(h, CURLOPT_XFERINFODATA, o->progress_data)) == CURLE_OK)
		rc = curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	return rc;
}

CURLcode client_setup(CURL *h, const struct client_opts *o)
{
	CURLcode rc;
	if (o->errbuf && (rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, o->errbuf)) != CURLE_OK)
		return rc;
	if ((rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L)) != CURLE_OK)
		return rc;
	if ((rc = set_strings(h, o)) != CURLE_OK)
		return rc;
	if (o->redir_protocols &&
	    ((rc = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L)) != CURLE_OK ||
	     (rc = curl_easy_setopt(h, CURLOPT_MAXREDIRS, o->max_redirects)) != CURLE_OK))
		return rc;
	if (o->fail_on_error && (rc = curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L)) != CURLE_OK)
		return rc;
	if (o->connect_timeout_ms && (rc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
	                                                    o->connect_timeout_ms)) != CURLE_OK)
		return rc;
	if (o->timeout_ms &&
	    (rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->timeout_ms)) != CURLE_OK)
		return rc;
	if (o->max_bytes &&
	    (rc = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, o->max_bytes)) != CURLE_OK)
		return rc;
	return set_callbacks(h, o);
}

size_t client_sink_write(char *ptr, size_t size, size_t nmemb, void *sink)
{
	struct client_sink *s = sink;
	size_t n = size * nmemb;
	if (n > s->max_bytes - s->bytes.len) {
		s->too_large = true;
		return 0;
	}
	buf_put(&s->bytes, ptr, n);
	return s->bytes.oom ? 0 : n;
}
