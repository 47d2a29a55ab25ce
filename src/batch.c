#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "unleash.h"

/* The server keeps at most this many bytes of a cluster ID (http.c). */
#define ID_MAX 255

static size_t token(const char *s, size_t *len)
{
	size_t start = strspn(s, " \t");
	*len = strcspn(s + start, " \t");
	return start;
}

/* What the server would see: an ID is the User-Agent's text after
 * "cluster/" up to a space or comma, so neither can be part of one. */
static const char *id_problem(const char *id, size_t len)
{
	if (len > ID_MAX)
		return "longer than 255 bytes, which the server cuts";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)id[i];
		if (c < 0x21 || c == 0x7f)
			return "control character in the cluster ID";
		if (c == ',')
			return "comma in the cluster ID (the server cuts the ID there)";
	}
	return NULL;
}

/* The script's reason goes into one tab-separated field. */
static void put_field(const char *s, FILE *out)
{
	for (; *s; s++)
		fputc(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s, out);
}

int batch_route(const struct gcs_config *cfg, const struct answerer *answerer, FILE *in, FILE *out)
{
	struct unleash *u = unleash_start(cfg, answerer->routing, false);
	char *line = NULL;
	size_t cap = 0, lineno = 0, skipped = 0;
	ssize_t got;
	while ((got = getline(&line, &cap, in)) >= 0) {
		lineno++;
		size_t n = (size_t)got;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		size_t id_len, ocp_len, rest_len;
		char *id = line + token(line, &id_len);
		if (id_len == 0)
			continue; /* blank line */
		char *ocp = id + id_len;
		ocp += token(ocp, &ocp_len);
		char *rest = ocp + ocp_len;
		rest += token(rest, &rest_len);
		const char *why = strlen(line) != n ? "NUL byte in the line"
		                  : rest_len        ? "more than a cluster ID and an OCP version"
		                                    : id_problem(id, id_len);
		struct semver v;
		if (!why && ocp_len && !semver_parse(ocp, ocp_len, &v))
			why = "the OCP version is not a SemVer 2.0.0 version";
		if (why) {
			fprintf(stderr, "gcs: standard input, line %zu: %s; skipped\n", lineno,
			        why);
			skipped++;
			continue;
		}
		id[id_len] = '\0';
		ocp[ocp_len] = '\0';
		struct route_request req = {
		    .cluster_id = id,
		    .api = ocp_len ? "v2" : "v1",
		    .ocp_version = ocp_len ? ocp : NULL,
		};
		char reason[256];
		struct answer a;
		answer_cluster(answerer, &req, ocp_len ? &v : NULL, reason, sizeof(reason), &a);
		fprintf(out, "%s\t%s\t%s\t", id, route_channel_name(a.channel), a.set->version);
		if (!ocp_len)
			fputs("v1/rules.json", out);
		else
			fprintf(out, "%s%s", a.file ? "v2/" : "none", a.file ? a.file->path : "");
		fputc('\t', out);
		put_field(a.reason, out);
		fputc('\n', out);
	}
	int rc = skipped ? 2 : 0;
	if (ferror(in)) {
		fprintf(stderr, "gcs: cannot read standard input\n");
		rc = 1;
	}
	if (fflush(out) != 0 || ferror(out)) {
		fprintf(stderr, "gcs: cannot write the answers\n");
		rc = 1;
	}
	free(line);
	unleash_stop(u);
	return rc;
}
