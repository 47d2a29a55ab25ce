/* The backup and the bootstrap file (GCS_UNLEASH_BACKUP,
 * GCS_UNLEASH_BOOTSTRAP) as startup reads them: the input is written to a
 * file and read back with unleash_file_read, for the default toggle and
 * for the first toggle the answer holds. An input starting with a space is
 * padded with 64 KiB more spaces first, past the reader's first buffer.
 *
 * Properties: a refused file says why, returns neither state nor bytes, and
 * unleash_features_parse refuses the same bytes with the same reason; an accepted
 * one returns the file's bytes and the same toggles as unleash_features_parse of
 * them; the backup written from an accepted state (unleash_file_write)
 * leaves no temporary file and reads back to an equal state. */
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <unistd.h>

#include "fuzz.h"
#include "unleash_features.h"
#include "unleash.h"

#define DEFAULT_TOGGLE "insights-operator-gathering-conditions-service"
#define PAD            65536

static char dir[64], file_path[128], backup_path[128];

static void remove_dir(void)
{
	unlink(file_path);
	unlink(backup_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	/* the backup is written with fsync: on tmpfs that costs nothing */
	fuzz_tmpdir(dir, sizeof(dir), "fuzz-unleash");
	snprintf(file_path, sizeof(file_path), "%s/bootstrap.json", dir);
	snprintf(backup_path, sizeof(backup_path), "%s/backup.json", dir);
	atexit(remove_dir);
	return 0;
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_num(double a, double b)
{
	return a == b || (isnan(a) && isnan(b));
}

static bool same_strs(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!same_str(a[i], b[i]))
			return false;
	return true;
}

static bool same_cidrs(const struct jsvalue_cidr *a, size_t na, const struct jsvalue_cidr *b,
                       size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (a[i].family != b[i].family || a[i].prefix != b[i].prefix ||
		    memcmp(a[i].addr, b[i].addr, sizeof(a[i].addr)) != 0)
			return false;
	return true;
}

static bool same_constraint(const struct unleash_constraint *a, const struct unleash_constraint *b)
{
	return same_str(a->context, b->context) && a->op == b->op && a->inverted == b->inverted &&
	       a->case_insensitive == b->case_insensitive &&
	       same_strs(a->values, a->nvalues, b->values, b->nvalues) &&
	       a->has_number == b->has_number &&
	       (!a->has_number || same_num(a->number, b->number)) && a->has_date == b->has_date &&
	       (!a->has_date || same_num(a->date, b->date)) && !a->semver == !b->semver &&
	       (!a->semver || same_str(a->semver->text, b->semver->text)) &&
	       same_cidrs(a->cidrs, a->ncidrs, b->cidrs, b->ncidrs) && !a->regex == !b->regex &&
	       same_str(a->unusable, b->unusable);
}

static bool same_variants(const struct unleash_variant *a, size_t na,
                          const struct unleash_variant *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (!same_str(a[i].name, b[i].name) || !same_num(a[i].weight, b[i].weight) ||
		    !same_str(a[i].stickiness, b[i].stickiness) ||
		    !same_str(a[i].payload_type, b[i].payload_type) ||
		    !same_str(a[i].payload_value, b[i].payload_value) ||
		    a[i].noverrides != b[i].noverrides)
			return false;
		for (size_t j = 0; j < a[i].noverrides; j++) {
			const struct unleash_override *x = &a[i].overrides[j],
			                              *y = &b[i].overrides[j];
			if (!same_str(x->context, y->context) ||
			    !same_strs(x->values, x->nvalues, y->values, y->nvalues))
				return false;
		}
	}
	return true;
}

/* Field by field, as the structures are: the comparisons are alike in shape
 * because the prepared records are. */
static bool same_strategy(const struct unleash_strategy *a, const struct unleash_strategy *b)
{
	if (!same_str(a->name, b->name) ||
	    !same_strs(a->param_keys, a->nparams, b->param_keys, b->nparams) ||
	    !same_strs(a->param_values, a->nparams, b->param_values, b->nparams) ||
	    a->nconstraints != b->nconstraints || a->segment_missing != b->segment_missing ||
	    a->has_rollout != b->has_rollout ||
	    (a->has_rollout && !same_num(a->rollout, b->rollout)) ||
	    !same_str(a->group_id, b->group_id) || !same_str(a->stickiness, b->stickiness) ||
	    !same_strs(a->ids, a->nids, b->ids, b->nids) ||
	    !same_cidrs(a->cidrs, a->ncidrs, b->cidrs, b->ncidrs) ||
	    !same_variants(a->variants, a->nvariants, b->variants, b->nvariants))
		return false;
	for (size_t i = 0; i < a->nconstraints; i++)
		if (!same_constraint(&a->constraints[i], &b->constraints[i]))
			return false;
	return true;
}

static bool same_toggle(const struct unleash_feature *a, const struct unleash_feature *b)
{
	if (!same_str(a->name, b->name) || a->enabled != b->enabled ||
	    a->nstrategies != b->nstrategies || a->ndeps != b->ndeps ||
	    !same_variants(a->variants, a->nvariants, b->variants, b->nvariants))
		return false;
	for (size_t i = 0; i < a->nstrategies; i++)
		if (!same_strategy(&a->strategies[i], &b->strategies[i]))
			return false;
	for (size_t i = 0; i < a->ndeps; i++) {
		const struct unleash_dependency *x = &a->deps[i], *y = &b->deps[i];
		if (!same_str(x->feature, y->feature) || x->enabled != y->enabled ||
		    !same_strs(x->variants, x->nvariants, y->variants, y->nvariants) ||
		    !x->parent != !y->parent ||
		    (x->parent && !same_str(x->parent->name, y->parent->name)))
			return false;
	}
	return true;
}

static bool same_state(const struct unleash_features *a, const struct unleash_features *b)
{
	if (a->nfeatures != b->nfeatures || a->missing_parent != b->missing_parent ||
	    !same_strs(a->problems, a->nproblems, b->problems, b->nproblems))
		return false;
	for (size_t i = 0; i < a->nfeatures; i++)
		if (!same_toggle(&a->features[i], &b->features[i]))
			return false;
	return true;
}

static void write_file(const char *path, const uint8_t *data, size_t size)
{
	FILE *f = fopen(path, "wb");
	FUZZ_CHECK(f && fwrite(data, 1, size, f) == size && fclose(f) == 0, "cannot write %s",
	           path);
}

/* The directory holds exactly the files named. */
static void only_files(const char *a, const char *b)
{
	DIR *d = opendir(dir);
	FUZZ_CHECK(d, "cannot list %s", dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		FUZZ_CHECK(strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || same_str(n, a) ||
		               same_str(n, b),
		           "a file was left behind: %s", n);
	}
	closedir(d);
}

/* Loads the file for the toggle name as startup does; returns the state
 * (NULL when refused). */
static struct unleash_features *check_file(const uint8_t *data, size_t size, const char *name)
{
	char err[640] = "", want_err[640] = "", *body;
	size_t len;
	struct unleash_features *f;
	int rc = unleash_file_read(file_path, name, &f, &body, &len, err, sizeof(err));
	struct unleash_features *want =
	    unleash_features_parse((const char *)data, size, name, want_err, sizeof(want_err));
	FUZZ_CHECK(rc == 1 || rc == -2, "an existing file read as %d: %s", rc, err);
	if (rc == -2) {
		FUZZ_CHECK(err[0], "a refused file does not say why");
		FUZZ_CHECK(!f && !body, "a refused file left a state");
		FUZZ_CHECK(!want,
		           "the file is refused but unleash_features_parse accepts its bytes: %s",
		           err);
		FUZZ_CHECK(strcmp(err, want_err) == 0, "refused for another reason: %s, not %s",
		           err, want_err);
		only_files("bootstrap.json", NULL);
		return NULL;
	}
	FUZZ_CHECK(f && body, "an accepted file returned no state");
	FUZZ_CHECK(want, "the file is accepted but unleash_features_parse refuses its bytes: %s",
	           want_err);
	FUZZ_CHECK(len == size && memcmp(body, data, size) == 0, "the file read as other bytes");
	FUZZ_CHECK(same_state(f, want), "the file gives other toggles than unleash_features_parse");
	unleash_features_unref(want);

	FUZZ_CHECK(unleash_file_write(backup_path, body, len, err, sizeof(err)) == 0,
	           "the backup was not written: %s", err);
	only_files("bootstrap.json", "backup.json");
	char *back_body;
	size_t back_len;
	struct unleash_features *back;
	rc = unleash_file_read(backup_path, name, &back, &back_body, &back_len, err, sizeof(err));
	FUZZ_CHECK(rc == 1, "the backup of an accepted state reads as %d: %s", rc, err);
	FUZZ_CHECK(back_len == len && memcmp(back_body, body, len) == 0,
	           "the backup holds other bytes");
	FUZZ_CHECK(same_state(back, f), "the backup reads back to another state");
	unleash_features_unref(back);
	free(back_body);
	free(body);
	unlink(backup_path);
	return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *padded = NULL;
	if (size > 0 && data[0] == ' ') {
		padded = malloc(size + PAD);
		if (!padded)
			abort();
		memset(padded, ' ', PAD);
		memcpy(padded + PAD, data, size);
		data = padded;
		size += PAD;
	}
	write_file(file_path, data, size);
	struct unleash_features *f = check_file(data, size, DEFAULT_TOGGLE);
	unleash_features_unref(f);
	char err[640];
	struct unleash_features *all =
	    unleash_features_parse((const char *)data, size, NULL, err, sizeof(err));
	if (all && all->nfeatures > 0 && strcmp(all->features[0].name, DEFAULT_TOGGLE) != 0)
		unleash_features_unref(check_file(data, size, all->features[0].name));
	unleash_features_unref(all);
	unlink(file_path);
	free(padded);
	return 0;
}
