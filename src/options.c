#include "options.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "version.h"

void options_usage(FILE *out)
{
	fprintf(out,
	        "usage: gcs [--check | --check-config | --route CLUSTER_ID [--ocp-version V] |\n"
	        "            --route - | --diff [OLD NEW] [--format text|markdown|json] |\n"
	        "            --version | --help]\n"
	        "\n"
	        "  (no flag)      download and validate both versions, then serve HTTP\n"
	        "  --check        download and validate everything, print a summary, exit\n"
	        "  --check-config validate the environment only (no download), exit 0 or 2\n"
	        "  --route ID     print the channel, version and file cluster ID would get\n"
	        "  --ocp-version  with --route: the cluster's OpenShift version (v2 API)\n"
	        "  --route -      the same for each line \"ID [OCP_VERSION]\" of standard input:\n"
	        "                 ID, channel, version, file, reason, tab-separated\n"
	        "  --diff         what clusters would receive differently from OLD to NEW\n"
	        "                 (default: STABLE_VERSION to CANARY_VERSION); exit 0 identical,\n"
	        "                 1 different, 2 trouble\n"
	        "  --format       with --diff: text (default), markdown or json\n"
	        "  --version      print the build version\n"
	        "  --help         this text\n"
	        "\n"
	        "Exit status: 0 ok, 1 invalid conditions or runtime failure, 2 usage.\n\n");
	config_print_help(out);
}

int options_parse(int argc, char **argv, struct options *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			options_usage(stdout);
			exit(0);
		} else if (strcmp(a, "--version") == 0) {
			printf("gcs %s\n", gcs_version);
			exit(0);
		} else if (strcmp(a, "--check") == 0) {
			o->check = true;
		} else if (strcmp(a, "--check-config") == 0) {
			o->check_config = true;
		} else if (strcmp(a, "--route") == 0 && i + 1 < argc) {
			o->route_cluster = argv[++i];
		} else if (strcmp(a, "--ocp-version") == 0 && i + 1 < argc) {
			o->route_ocp = argv[++i];
		} else if (strcmp(a, "--diff") == 0) {
			o->diff = true;
		} else if (strcmp(a, "--format") == 0 && i + 1 < argc) {
			if (!diff_parse_format(argv[++i], &o->diff_format)) {
				fprintf(stderr, "gcs: --format \"%s\": text, markdown or json\n",
				        argv[i]);
				return -1;
			}
			o->format_given = true;
		} else if (o->diff && a[0] != '-' && !o->diff_versions[1]) {
			o->diff_versions[o->diff_versions[0] ? 1 : 0] = a;
		} else {
			fprintf(stderr, "gcs: unknown or incomplete argument \"%s\"\n", a);
			return -1;
		}
	}
	if (o->route_ocp && !o->route_cluster) {
		fprintf(stderr, "gcs: --ocp-version goes with --route\n");
		return -1;
	}
	if (o->check + o->check_config + !!o->route_cluster + o->diff > 1) {
		fprintf(stderr,
		        "gcs: --check, --check-config, --route and --diff are separate commands\n");
		return -1;
	}
	if (o->route_ocp && strcmp(o->route_cluster, "-") == 0) {
		fprintf(stderr, "gcs: with --route -, each line of standard input carries its "
		                "OCP version\n");
		return -1;
	}
	if (o->format_given && !o->diff) {
		fprintf(stderr, "gcs: --format goes with --diff\n");
		return -1;
	}
	if (o->diff_versions[0] && !o->diff_versions[1]) {
		fprintf(stderr, "gcs: --diff takes two versions (OLD NEW) or none\n");
		return -1;
	}
	return 0;
}
