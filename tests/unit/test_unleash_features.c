/* Unit tests for toggles: a client API answer parsed once, validated and
 * prepared for the evaluation in unleash_eval.c. The answers are written
 * with single quotes for readability; parse() turns them into JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <time.h>

#include "unleash_features.h"

static char err[640];

/* The answer q with ' replaced by ", parsed keeping the toggle name (NULL:
 * every toggle). */
static struct unleash_features *parse(const char *q, const char *name)
{
	char *json = strdup(q);
	assert_non_null(json);
	for (char *c = json; *c; c++)
		if (*c == '\'')
			*c = '"';
	err[0] = '\0';
	struct unleash_features *f =
	    unleash_features_parse(json, strlen(json), name, err, sizeof(err));
	free(json);
	return f;
}

/* The answer must be refused with exactly this line. */
static void refused(const char *q, const char *name, const char *line)
{
	struct unleash_features *f = parse(q, name);
	if (f) {
		unleash_features_unref(f);
		fail_msg("accepted: %s", q);
	}
	assert_string_equal(err, line);
}

/* One toggle "t" whose first strategy carries the given constraints. */
static struct unleash_features *with_constraints(const char *constraints)
{
	char q[4096];
	snprintf(q, sizeof(q),
	         "{'features':[{'name':'t','enabled':true,'strategies':[{'name':'default',"
	         "'constraints':[%s]}]}]}",
	         constraints);
	struct unleash_features *f = parse(q, "t");
	assert_non_null(f);
	assert_int_equal(f->nfeatures, 1);
	return f;
}

static const struct unleash_constraint *constraint(const struct unleash_features *f, size_t i)
{
	const struct unleash_strategy *s = &f->features[0].strategies[0];
	assert_true(i < s->nconstraints);
	return &s->constraints[i];
}

static void test_refuses_what_is_not_a_client_api_answer(void **state)
{
	(void)state;
	struct unleash_features *f = parse("{'features':", NULL);
	assert_null(f);
	assert_true(strncmp(err, "client API answer is not JSON: ", 31) == 0);
	refused("[]", NULL, "client API answer: /: must be an object with a \"features\" array");
	refused("{}", NULL, "client API answer: /features: must be an array");
	refused("{'features':{'t':{}}}", NULL, "client API answer: /features: must be an array");
	refused("{'features':[],'segments':5}", NULL,
	        "client API answer: /segments: must be an array");
	refused("{'features':[1]}", NULL,
	        "client API answer: /features/0: a feature must be an object");
	refused("{'features':[{'name':'t','enabled':'yes'}]}", "t",
	        "client API answer: /features/0/enabled: must be a boolean");
	refused("{'features':[{'name':'a'},{'name':7}]}", NULL,
	        "client API answer: /features/1/name: must be a string");
	refused("{'features':[{'name':'t','strategies':[3]}]}", "t",
	        "client API answer: /features/0/strategies/0: a strategy must be an object");
	refused("{'features':[{'name':'t','strategies':[{'name':'x','parameters':[]}]}]}", "t",
	        "client API answer: /features/0/strategies/0/parameters: must be an object");
	/* the lists of objects read through one skeleton: each its own message,
	 * at the element's pointer, after elements already read */
	refused("{'features':[{'name':'t','variants':[{'name':'v','weight':1},2]}]}", "t",
	        "client API answer: /features/0/variants/1: a variant must be an object");
	refused("{'features':[{'name':'t','strategies':[{'name':'x','variants':['v']}]}]}", "t",
	        "client API answer: /features/0/strategies/0/variants/0: a variant must be an "
	        "object");
	refused("{'features':[{'name':'t','dependencies':[{'feature':'p'},[]]}]}", "t",
	        "client API answer: /features/0/dependencies/1: a dependency must be an object");
	refused("{'features':[{'name':'t','dependencies':[{'enabled':true}]}]}", "t",
	        "client API answer: /features/0/dependencies/0: a dependency must name its parent "
	        "\"feature\"");
	refused("{'features':[{'name':'t','strategies':[{'name':'x','constraints':[{},'c']}]}]}",
	        "t",
	        "client API answer: /features/0/strategies/0/constraints/1: a constraint must be "
	        "an object");
	refused("{'features':[{'name':'t','strategies':[{'name':'x','constraints':"
	        "[{'contextName':'userId','operator':'IN','inverted':1}]}]}]}",
	        "t",
	        "client API answer: /features/0/strategies/0/constraints/0/inverted: must be a "
	        "boolean");
	refused(
	    "{'features':[{'name':'t','strategies':[{'name':'x','constraints':"
	    "[{'contextName':'userId','operator':'IN','values':'a,b'}]}]}]}",
	    "t",
	    "client API answer: /features/0/strategies/0/constraints/0/values: must be an array");
	refused(
	    "{'features':[{'name':'t','strategies':[{'name':'x','variants':[1]}]}]}", "t",
	    "client API answer: /features/0/strategies/0/variants/0: a variant must be an object");
	refused("{'features':[{'name':'t','dependencies':[{'enabled':false}]}]}", "t",
	        "client API answer: /features/0/dependencies/0: a dependency must name its parent "
	        "\"feature\"");
	/* A segment's constraint is pointed at where it is written. */
	refused("{'features':[{'name':'t','strategies':[{'name':'x','segments':[4]}]}],"
	        "'segments':[{'id':4,'constraints':[{'contextName':'a','operator':'IN',"
	        "'caseInsensitive':'no'}]}]}",
	        "t",
	        "client API answer: /segments/0/constraints/0/caseInsensitive: must be a boolean");
}

/* Parameters that are neither strings nor numbers: what the refusal says. */
static void test_parameter_of_the_wrong_type(void **state)
{
	(void)state;
	struct unleash_features *f =
	    parse("{'features':[{'name':'t','strategies':[{'name':'x','parameters':{'a/b':[1],"
	          "'n':25,'r':0.5,'b':true,'s':'v'}}]}]}",
	          "t");
	/* An array parameter is dropped, the others read as the SDKs read them. */
	assert_non_null(f);
	const struct unleash_strategy *s = &f->features[0].strategies[0];
	assert_int_equal(s->nparams, 4);
	const char *want[][2] = {{"n", "25"}, {"r", "0.5"}, {"b", "true"}, {"s", "v"}};
	for (size_t i = 0; i < 4; i++) {
		bool found = false;
		for (size_t k = 0; k < s->nparams; k++)
			if (strcmp(s->param_keys[k], want[i][0]) == 0) {
				assert_string_equal(s->param_values[k], want[i][1]);
				found = true;
			}
		assert_true(found);
	}
	unleash_features_unref(f);
}

/* With a name, only that toggle and its parents are read: a malformed
 * toggle elsewhere in the answer does not refuse the state. */
static void test_only_the_kept_toggles_are_validated(void **state)
{
	(void)state;
	const char *q = "{'features':[{'name':'other','enabled':'x'},"
	                "{'name':'t','enabled':true,'strategies':[]}]}";
	struct unleash_features *f = parse(q, "t");
	assert_non_null(f);
	assert_int_equal(f->nfeatures, 1);
	assert_string_equal(f->features[0].name, "t");
	assert_true(f->features[0].enabled);
	unleash_features_unref(f);
	refused(q, NULL, "client API answer: /features/0/enabled: must be a boolean");
	/* The toggle absent: a valid state without it. */
	f = parse(q, "absent");
	assert_non_null(f);
	assert_int_equal(f->nfeatures, 0);
	assert_null(unleash_features_find(f, "absent"));
	unleash_features_unref(f);
}

static void assert_same_constraint(const struct unleash_constraint *a,
                                   const struct unleash_constraint *b)
{
	assert_string_equal(a->context, b->context);
	assert_int_equal(a->op, b->op);
	assert_int_equal(a->inverted, b->inverted);
	assert_int_equal(a->case_insensitive, b->case_insensitive);
	assert_int_equal(a->nvalues, b->nvalues);
	for (size_t i = 0; i < a->nvalues; i++)
		assert_string_equal(a->values[i], b->values[i]);
	assert_int_equal(a->has_number, b->has_number);
	assert_true(a->number == b->number);
	assert_int_equal(a->ncidrs, b->ncidrs);
	assert_int_equal(a->semver != NULL, b->semver != NULL);
	if (a->semver)
		assert_string_equal(a->semver->text, b->semver->text);
	assert_int_equal(a->regex != NULL, b->regex != NULL);
}

#define C_IN   "{'contextName':'userId','operator':'IN','values':[' a ','b','']}"
#define C_SEM  "{'contextName':'ocpVersion','operator':'SEMVER_GT','value':'4.16.0'}"
#define C_NUM  "{'contextName':'n','operator':'NUM_LT','value':'10','inverted':true}"
#define C_CIDR "{'contextName':'remoteAddress','operator':'IN_CIDR','values':['10.0.0.0/8']}"

/* Unleash serves segments apart when the SDK sends Unleash-Client-Spec and
 * inlines their constraints otherwise: both give the same constraints, the
 * strategy's own first. */
static void test_segments_inline_and_apart_are_the_same(void **state)
{
	(void)state;
	struct unleash_features *apart = parse(
	    "{'version':2,'features':[{'name':'t','enabled':true,'strategies':[{'name':"
	    "'flexibleRollout','parameters':{'rollout':'50'},'constraints':[" C_IN "],"
	    "'segments':[7,3]}]}],'segments':[{'id':3,'name':'s3','constraints':[" C_CIDR "]},"
	    "{'id':7,'name':'s7','constraints':[" C_SEM "," C_NUM "]}]}",
	    "t");
	assert_non_null(apart);
	struct unleash_features *inline_ =
	    parse("{'version':2,'features':[{'name':'t','enabled':true,'strategies':[{'name':"
	          "'flexibleRollout','parameters':{'rollout':'50'},'constraints':[" C_IN "," C_SEM
	          "," C_NUM "," C_CIDR "]}]}]}",
	          "t");
	assert_non_null(inline_);
	const struct unleash_strategy *a = &apart->features[0].strategies[0];
	const struct unleash_strategy *b = &inline_->features[0].strategies[0];
	assert_int_equal(a->nconstraints, 4);
	assert_int_equal(b->nconstraints, 4);
	assert_false(a->segment_missing);
	for (size_t i = 0; i < 4; i++)
		assert_same_constraint(&a->constraints[i], &b->constraints[i]);
	assert_int_equal(a->constraints[1].op, UNLEASH_OP_SEMVER_GT);
	assert_int_equal(a->constraints[3].op, UNLEASH_OP_IN_CIDR);
	unleash_features_unref(apart);
	unleash_features_unref(inline_);
}

/* A strategy naming a segment the answer lacks is off, as in the SDKs;
 * the other strategies are unaffected. */
static void test_missing_segment_marks_the_strategy_off(void **state)
{
	(void)state;
	struct unleash_features *f =
	    parse("{'features':[{'name':'t','enabled':true,'strategies':[{'name':'default',"
	          "'segments':[1,2]},{'name':'default','segments':[1]}]}],"
	          "'segments':[{'id':1,'constraints':[" C_IN "]}]}",
	          "t");
	assert_non_null(f);
	assert_true(f->features[0].strategies[0].segment_missing);
	assert_false(f->features[0].strategies[1].segment_missing);
	assert_int_equal(f->features[0].strategies[1].nconstraints, 1);
	unleash_features_unref(f);
	/* No top-level list at all. */
	f = parse("{'features':[{'name':'t','strategies':[{'name':'default','segments':[1]}]}]}",
	          "t");
	assert_non_null(f);
	assert_true(f->features[0].strategies[0].segment_missing);
	unleash_features_unref(f);
}

static void test_parents_kept_and_linked(void **state)
{
	(void)state;
	const char *q = "{'features':[{'name':'grand','enabled':true},"
	                "{'name':'parent','enabled':false,'dependencies':[{'feature':'grand'}]},"
	                "{'name':'unrelated','enabled':true},"
	                "{'name':'child','enabled':true,'dependencies':[{'feature':'parent',"
	                "'enabled':false},{'feature':'other','variants':['v1',' ']}]},"
	                "{'name':'other','enabled':true}]}";
	struct unleash_features *f = parse(q, "child");
	assert_non_null(f);
	/* The child, then its parents; not the parents' parents, not others. */
	assert_int_equal(f->nfeatures, 3);
	assert_string_equal(f->features[0].name, "child");
	const struct unleash_feature *child = unleash_features_find(f, "child");
	assert_int_equal(child->ndeps, 2);
	assert_string_equal(child->deps[0].feature, "parent");
	assert_false(child->deps[0].enabled);
	assert_ptr_equal(child->deps[0].parent, unleash_features_find(f, "parent"));
	assert_true(child->deps[1].enabled); /* the default */
	assert_ptr_equal(child->deps[1].parent, unleash_features_find(f, "other"));
	/* As the SDKs' cleanValues: empty strings dropped, then trimmed. */
	assert_int_equal(child->deps[1].nvariants, 2);
	assert_string_equal(child->deps[1].variants[0], "v1");
	assert_string_equal(child->deps[1].variants[1], "");
	assert_null(unleash_features_find(f, "unrelated"));
	assert_null(unleash_features_find(f, "grand"));
	/* The parent's own parent is not there: a parent with parents makes the
	 * child off whatever the grandparent is, so it is not fetched and not
	 * counted as missing (the poller stays on the filtered list). */
	assert_null(unleash_features_find(f, "parent")->deps[0].parent);
	assert_false(f->missing_parent);
	unleash_features_unref(f);

	/* Every parent present: nothing missing. */
	f = parse("{'features':[{'name':'c','dependencies':[{'feature':'p'}]},{'name':'p'}]}", "c");
	assert_non_null(f);
	assert_int_equal(f->nfeatures, 2);
	assert_ptr_equal(f->features[0].deps[0].parent, unleash_features_find(f, "p"));
	assert_false(f->missing_parent);
	unleash_features_unref(f);

	/* The answer filtered by namePrefix lacks the parent: flagged, unlinked. */
	f = parse("{'features':[{'name':'c','dependencies':[{'feature':'p'}]}]}", "c");
	assert_non_null(f);
	assert_int_equal(f->nfeatures, 1);
	assert_null(f->features[0].deps[0].parent);
	assert_true(f->missing_parent);
	unleash_features_unref(f);

	/* A parent shared by two kept toggles is kept once (every toggle). */
	f = parse("{'features':[{'name':'a','dependencies':[{'feature':'p'}]},"
	          "{'name':'b','dependencies':[{'feature':'p'}]},{'name':'p'}]}",
	          NULL);
	assert_non_null(f);
	assert_int_equal(f->nfeatures, 3);
	assert_ptr_equal(unleash_features_find(f, "a")->deps[0].parent,
	                 unleash_features_find(f, "b")->deps[0].parent);
	unleash_features_unref(f);
}

static void test_sets_and_strings_prepared(void **state)
{
	(void)state;
	struct unleash_features *f = with_constraints(
	    "{'contextName':'userId','operator':'NOT_IN','values':[' a ','\\tb\\n','',' ',5]},"
	    "{'contextName':'x','operator':'STR_STARTS_WITH','values':[' AbC '],"
	    "'caseInsensitive':true},"
	    "{'contextName':'x','operator':'STR_ENDS_WITH','values':[' AbC ']},"
	    "{'contextName':'x','operator':'IN','values':['AbC'],'caseInsensitive':true}");
	const struct unleash_constraint *c = constraint(f, 0);
	assert_int_equal(c->op, UNLEASH_OP_NOT_IN);
	assert_string_equal(c->context, "userId");
	/* Empty strings and non-strings dropped, the rest trimmed; a value
	 * that is only white space is trimmed to an empty one, as in JS.
	 * Sorted, for the evaluation's binary search. */
	assert_int_equal(c->nvalues, 3);
	assert_string_equal(c->values[0], "");
	assert_string_equal(c->values[1], "a");
	assert_string_equal(c->values[2], "b");
	assert_string_equal(constraint(f, 1)->values[0], "abc");
	assert_true(constraint(f, 1)->case_insensitive);
	assert_string_equal(constraint(f, 2)->values[0], "AbC");
	/* IN compares exactly whatever caseInsensitive says. */
	assert_string_equal(constraint(f, 3)->values[0], "AbC");
	for (size_t i = 0; i < 4; i++)
		assert_null(constraint(f, i)->unusable);
	assert_int_equal(f->nproblems, 0);
	unleash_features_unref(f);
}

/* (Each test below parses one answer and checks what was prepared: alike in
 * shape, one case each.) */
/* NUM_* values are prepared once, as JavaScript's Number: a JSON number, a
 * string, a value that is NaN. */
static void test_numbers_prepared(void **state)
{
	(void)state;
	struct unleash_features *f =
	    with_constraints("{'contextName':'n','operator':'NUM_GTE','value':5},"
	                     "{'contextName':'n','operator':'NUM_EQ','value':' 0x10 '},"
	                     "{'contextName':'n','operator':'NUM_LT','value':'ten'},"
	                     "{'contextName':'n','operator':'NUM_GT'}");
	assert_true(constraint(f, 0)->has_number);
	assert_true(constraint(f, 0)->number == 5);
	assert_true(constraint(f, 1)->has_number);
	assert_true(constraint(f, 1)->number == 16);
	assert_false(constraint(f, 2)->has_number);
	assert_false(constraint(f, 3)->has_number);
	unleash_features_unref(f);
}

static void test_dates_with_offsets(void **state)
{
	(void)state;
	const double noon = 1643457600; /* 2022-01-29T12:00:00Z */
	struct {
		const char *text;
		bool ok;
		double value;
	} cases[] = {
	    {"2022-01-29T12:00:00Z", true, noon},
	    {"2022-01-29T12:00:00.000Z", true, noon},
	    {"2022-01-29T12:00:00.250z", true, noon + 0.25},
	    {"2022-01-29T14:00:00+02:00", true, noon},
	    {"2022-01-29T06:30:00-05:30", true, noon},
	    {"2022-01-29T14:00:00+0200", true, noon},
	    {"2022-01-29T12:00:00", true, noon},
	    {"2022-01-29T12:00Z", true, noon},
	    {"2022-01-29", true, noon - 12 * 3600},
	    {"2024-02-29T00:00:00Z", true, 1709164800},
	    {"1969-12-31T23:59:59Z", true, -1},
	    {"2022-13-01", false, 0},
	    {"2022-01-32", false, 0},
	    {"2022-01-29T25:00:00Z", false, 0},
	    {"2022-01-29T12:60:00Z", false, 0},
	    {"2022-01-29T12:00:00+2", false, 0},
	    {"2022-01-29T12:00:00Zjunk", false, 0},
	    {"2022-1-29", false, 0},
	    {"yesterday", false, 0},
	    {"", false, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double v = 0;
		bool ok = jsvalue_date(cases[i].text, &v);
		if (ok != cases[i].ok)
			fail_msg("\"%s\": %s expected", cases[i].text,
			         cases[i].ok ? "a date" : "no date");
		if (ok && fabs(v - cases[i].value) > 1e-6)
			fail_msg("\"%s\" = %.3f, expected %.3f", cases[i].text, v, cases[i].value);
	}
	struct unleash_features *f = with_constraints(
	    "{'contextName':'currentTime','operator':'DATE_AFTER','value':'2022-01-29T14:00:00+02:"
	    "00'},"
	    "{'contextName':'currentTime','operator':'DATE_BEFORE','value':'soon'},"
	    "{'contextName':'currentTime','operator':'DATE_BEFORE','value':1643457600}");
	assert_true(constraint(f, 0)->has_date);
	assert_true(constraint(f, 0)->date == noon);
	assert_false(constraint(f, 1)->has_date);
	assert_false(constraint(f, 2)->has_date);
	unleash_features_unref(f);
}

/* A strict SemVer text against a prepared version, as the evaluation
 * compares: false when text is no version. */
static bool semver_against(const char *text, const struct unleash_version *v, int *order)
{
	struct semver s;
	if (!semver_parse(text, strlen(text), &s))
		return false;
	*order = semver_cmp(&s, &v->ver);
	return true;
}

static void test_semver_prepared(void **state)
{
	(void)state;
	struct unleash_features *f =
	    with_constraints("{'contextName':'v','operator':'SEMVER_EQ','value':'v1.2.3'},"
	                     "{'contextName':'v','operator':'SEMVER_GT','value':'=1.2.3-rc.1'},"
	                     "{'contextName':'v','operator':'SEMVER_LT','value':'4.16.0'},"
	                     "{'contextName':'v','operator':'SEMVER_GTE','value':'vv1.2.3'},"
	                     "{'contextName':'v','operator':'SEMVER_LTE','value':'1.2'},"
	                     "{'contextName':'v','operator':'SEMVER_EQ','value':' 1.2.3'},"
	                     "{'contextName':'v','operator':'SEMVER_EQ','value':123}");
	assert_non_null(constraint(f, 0)->semver);
	assert_string_equal(constraint(f, 0)->semver->text, "1.2.3");
	assert_non_null(constraint(f, 1)->semver);
	assert_string_equal(constraint(f, 1)->semver->text, "1.2.3-rc.1");
	assert_non_null(constraint(f, 2)->semver);
	/* One leading v or = only; no partial versions, no spaces, no numbers. */
	for (size_t i = 3; i < 7; i++)
		assert_null(constraint(f, i)->semver);

	int order = 99;
	assert_true(semver_against("1.2.3", constraint(f, 0)->semver, &order));
	assert_int_equal(order, 0);
	assert_true(semver_against("1.2.3+build.5", constraint(f, 0)->semver, &order));
	assert_int_equal(order, 0);
	assert_true(semver_against("1.2.3", constraint(f, 1)->semver, &order));
	assert_true(order > 0); /* a release is above its pre-releases */
	assert_true(semver_against("4.16.0-rc.0", constraint(f, 2)->semver, &order));
	assert_true(order < 0);
	assert_true(semver_against("4.17.3", constraint(f, 2)->semver, &order));
	assert_true(order > 0);
	/* The context value is strict: no v there. */
	assert_false(semver_against("v1.2.3", constraint(f, 0)->semver, &order));
	assert_false(semver_against("4.17", constraint(f, 2)->semver, &order));
	unleash_features_unref(f);
}

static void test_cidr_v4_and_v6_with_prefixes(void **state)
{
	(void)state;
	struct unleash_features *f = with_constraints(
	    "{'contextName':'remoteAddress','operator':'IN_CIDR','values':['10.0.0.0/8',"
	    "' 172.16.0.0/12 ','192.168.1.7','2001:db8::/32','::1','0.0.0.0/0x','10.0.0.0/33',"
	    "'2001:db8::/129','300.1.1.1','bad','1.2.3.4/','::ffff:1.2.3.0/120']}");
	const struct unleash_constraint *c = constraint(f, 0);
	assert_int_equal(c->nvalues, 12);
	/* The valid ranges, in order; the others are dropped. */
	assert_int_equal(c->ncidrs, 6);
	assert_int_equal(c->cidrs[0].family, AF_INET);
	assert_int_equal(c->cidrs[0].prefix, 8);
	assert_int_equal(c->cidrs[1].prefix, 12);
	assert_int_equal(c->cidrs[2].prefix, 32);
	assert_int_equal(c->cidrs[3].family, AF_INET6);
	assert_int_equal(c->cidrs[3].prefix, 32);
	assert_int_equal(c->cidrs[4].prefix, 128);
	assert_int_equal(c->cidrs[5].prefix, 120);
	const char *in[] = {"10.0.0.0",       "10.255.255.255", "172.16.0.1",      "172.31.255.255",
	                    "192.168.1.7",    "2001:db8::1",    "2001:db8:ffff::", "::1",
	                    "::ffff:1.2.3.77"};
	const char *out[] = {"11.0.0.1",    "172.32.0.0",    "172.15.255.255", "192.168.1.8",
	                     "2001:db9::1", "::2",           "not an address", "",
	                     "10.0.0.0/8",  "::ffff:1.2.4.1"};
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		if (!jsvalue_cidr_match(c->cidrs, c->ncidrs, in[i]))
			fail_msg("%s should be in the ranges", in[i]);
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
		if (jsvalue_cidr_match(c->cidrs, c->ncidrs, out[i]))
			fail_msg("%s should not be in the ranges", out[i]);
	unleash_features_unref(f);

	/* remoteAddress: IPs split on commas and trimmed, IPv4 ranges only. */
	f = parse("{'features':[{'name':'t','enabled':true,'strategies':[{'name':'remoteAddress',"
	          "'parameters':{'IPs':'10.0.0.0/8 , 1.2.3.4,::1,bogus'}}]}]}",
	          "t");
	assert_non_null(f);
	const struct unleash_strategy *s = &f->features[0].strategies[0];
	assert_int_equal(s->nids, 4);
	assert_string_equal(s->ids[0], "10.0.0.0/8");
	assert_string_equal(s->ids[1], "1.2.3.4");
	assert_string_equal(s->ids[2], "::1");
	assert_int_equal(s->ncidrs, 2);
	assert_true(jsvalue_cidr_match(s->cidrs, s->ncidrs, "10.9.9.9"));
	assert_false(jsvalue_cidr_match(s->cidrs, s->ncidrs, "::1"));
	unleash_features_unref(f);
}

/* A pattern outside RE2's syntax is not an error of the answer: the
 * constraint never holds and the problem names its pointer. */
static void test_unusable_pattern_listed_and_never_matches(void **state)
{
	(void)state;
	struct unleash_features *f =
	    parse("{'features':[{'name':'t','enabled':true,'strategies':[{'name':'default',"
	          "'constraints':[{'contextName':'userId','operator':'REGEX','value':'^ab'},"
	          "{'contextName':'userId','operator':'REGEX','value':'(?=a)b'},"
	          "{'contextName':'userId','operator':'REGEX','value':'(a'},"
	          "{'contextName':'userId','operator':'REGEX','value':7},"
	          "{'contextName':'userId','operator':'MATCHES','value':'x'}],'segments':[1]}]}],"
	          "'segments':[{'id':1,'constraints':[{'contextName':'userId','operator':'REGEX',"
	          "'value':'(a)\\\\1'}]}]}",
	          "t");
	assert_non_null(f);
	assert_null(constraint(f, 0)->unusable);
	assert_non_null(constraint(f, 0)->regex);
	assert_true(unleash_regex_match(constraint(f, 0)->regex, "abc", 3));
	assert_false(unleash_regex_match(constraint(f, 0)->regex, "cab", 3));
	for (size_t i = 1; i < 6; i++) {
		assert_non_null(constraint(f, i)->unusable);
		assert_null(constraint(f, i)->regex);
		assert_false(unleash_regex_match(constraint(f, i)->regex, "ab", 2));
	}
	assert_int_equal(constraint(f, 4)->op, UNLEASH_OP_UNKNOWN);
	assert_int_equal(f->nproblems, 5);
	const char *base = "/features/0/strategies/0/constraints/";
	char want[256];
	snprintf(want, sizeof(want), "%s1/value: lookahead", base);
	assert_true(strncmp(f->problems[0], want, strlen(want)) == 0);
	assert_non_null(strstr(f->problems[0], "RE2"));
	snprintf(want, sizeof(want), "%s2/value: ", base);
	assert_true(strncmp(f->problems[1], want, strlen(want)) == 0);
	snprintf(want, sizeof(want), "%s3/value: value is not a string", base);
	assert_string_equal(f->problems[2], want);
	snprintf(want, sizeof(want), "%s4/operator: unknown operator", base);
	assert_string_equal(f->problems[3], want);
	assert_true(strncmp(f->problems[4], "/segments/0/constraints/0/value: backreference", 46) ==
	            0);
	unleash_features_unref(f);

	/* Too long to bound: unusable too. */
	char q[3000] = "{'features':[{'name':'t','strategies':[{'name':'default','constraints':"
	               "[{'contextName':'userId','operator':'REGEX','value':'";
	size_t n = strlen(q);
	memset(q + n, 'a', 1100);
	strcpy(q + n + 1100, "'}]}]}]}");
	f = parse(q, "t");
	assert_non_null(f);
	assert_int_equal(f->nproblems, 1);
	assert_non_null(strstr(f->problems[0], "longer than 1024 bytes"));
	unleash_features_unref(f);
}

/* A backtracking matcher needs about 2^1024 steps on these; RE2 needs
 * microseconds, also under valgrind. Not a timing bound (make bench-routing
 * measures the cost): only what turns a hang into a failure. */
static void backtracked(int sig)
{
	(void)sig;
	static const char msg[] =
	    "a REGEX designed to backtrack ran for 60 s: the matcher backtracks\n";
	(void)!write(2, msg, sizeof(msg) - 1);
	_exit(1);
}

/* Patterns a backtracking matcher takes exponential time on, against a
 * run of a's as long as the matcher accepts, ending in a non-match: RE2,
 * linear in the subject, answers them. */
static void test_regex_designed_to_backtrack_returns(void **state)
{
	(void)state;
	struct unleash_features *f = with_constraints(
	    "{'contextName':'userId','operator':'REGEX','value':'(a+)+$'},"
	    "{'contextName':'userId','operator':'REGEX','value':'(a|aa)+$'},"
	    "{'contextName':'userId','operator':'REGEX','value':'^(a|a?)+$'},"
	    "{'contextName':'userId','operator':'REGEX','value':'([0-9a-f-]+)+[g-z]'}");
	assert_int_equal(f->nproblems, 0);
	static const char uuid[] = "9abc1e7a-d834-4c6d-99b1-826399958d1c";
	char subject[1024];
	memset(subject, 'a', sizeof(subject));
	subject[sizeof(subject) - 1] = '!';
	signal(SIGALRM, backtracked);
	alarm(60);
	for (size_t i = 0; i < 4; i++) {
		const struct unleash_regex *re = constraint(f, i)->regex;
		assert_non_null(re);
		const char *s = i == 3 ? uuid : subject;
		size_t len = i == 3 ? strlen(uuid) : sizeof(subject);
		assert_false(unleash_regex_match(re, s, len));
	}
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	/* A subject longer than the bound never matches. */
	char longer[1025];
	memset(longer, 'a', sizeof(longer));
	assert_false(unleash_regex_match(constraint(f, 0)->regex, longer, sizeof(longer)));
	/* Not UTF-8: as in Go's regexp, a byte that is not UTF-8 is one
	 * character of its own, so the last 'a' still matches (a|aa)+$, and
	 * an 'a' before the invalid byte does not reach the end. */
	static const char not_utf8[] = {'a', (char)0xff, 'a'};
	assert_true(unleash_regex_match(constraint(f, 1)->regex, not_utf8, sizeof(not_utf8)));
	static const char not_utf8_end[] = {'a', 'a', (char)0xff};
	assert_false(
	    unleash_regex_match(constraint(f, 1)->regex, not_utf8_end, sizeof(not_utf8_end)));
	unleash_features_unref(f);
}

/* Bounded must not mean wrong: a subject within the limit that matches
 * is a match, however many paths the pattern has through it. */
static void test_regex_matches_what_it_should(void **state)
{
	(void)state;
	struct unleash_features *f =
	    with_constraints("{'contextName':'userId','operator':'REGEX','value':'(a+)+$'},"
	                     "{'contextName':'userId','operator':'REGEX','value':'(a|aa)+$'},"
	                     "{'contextName':'userId','operator':'REGEX','value':'^[0-9a-f]{8}-'},"
	                     "{'contextName':'userId','operator':'REGEX','value':'(x+x+)+y','"
	                     "caseInsensitive':true}");
	assert_true(unleash_regex_match(constraint(f, 0)->regex, "baaa", 4));
	assert_true(unleash_regex_match(constraint(f, 1)->regex, "aaaa", 4));
	assert_true(unleash_regex_match(constraint(f, 2)->regex, "9abc1e7a-d834", 13));
	assert_false(unleash_regex_match(constraint(f, 2)->regex, "x9abc1e7a-d834", 14));
	assert_true(unleash_regex_match(constraint(f, 3)->regex, "xXY", 3));
	char run[1024];
	memset(run, 'a', sizeof(run));
	for (size_t len = 64; len <= sizeof(run); len *= 2)
		for (size_t i = 0; i < 2; i++)
			if (!unleash_regex_match(constraint(f, i)->regex, run, len))
				fail_msg("pattern %zu does not match %zu a's", i, len);
	unleash_features_unref(f);
}

static void test_rollout_percent(void **state)
{
	(void)state;
	struct unleash_features *f =
	    parse("{'features':["
	          "{'name':'r30','enabled':true,'strategies':[{'name':'flexibleRollout',"
	          "'parameters':{'rollout':'30','stickiness':'default','groupId':'g'}}]},"
	          "{'name':'num','enabled':true,'strategies':[{'name':'flexibleRollout',"
	          "'parameters':{'rollout':12.5}}]},"
	          "{'name':'off','enabled':false,'strategies':[{'name':'flexibleRollout',"
	          "'parameters':{'rollout':'80'}}]},"
	          "{'name':'two','enabled':true,'strategies':[{'name':'flexibleRollout',"
	          "'parameters':{'rollout':'10'}},{'name':'default'}]},"
	          "{'name':'dflt','enabled':true,'strategies':[{'name':'default'}]},"
	          "{'name':'none','enabled':true,'strategies':[{'name':'flexibleRollout'}]},"
	          "{'name':'word','enabled':true,'strategies':[{'name':'flexibleRollout',"
	          "'parameters':{'rollout':'most'}}]},"
	          "{'name':'over','enabled':true,'strategies':[{'name':'flexibleRollout',"
	          "'parameters':{'rollout':'101'}}]},"
	          "{'name':'empty','enabled':true,'strategies':[]},"
	          "{'name':'nolist','enabled':true,'strategies':'x'}]}",
	          NULL);
	assert_non_null(f);
	struct {
		const char *name;
		double pct;
	} want[] = {{"r30", 30},   {"num", 12.5}, {"off", 0},    {"two", -1},
	            {"dflt", -1},  {"none", -1},  {"word", -1},  {"over", -1},
	            {"empty", -1}, {"nolist", 0}, {"absent", -1}};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (unleash_features_rollout(f, want[i].name) != want[i].pct)
			fail_msg("%s: %g, expected %g", want[i].name,
			         unleash_features_rollout(f, want[i].name), want[i].pct);
	/* flexibleRollout's groupId defaults to the toggle's name. */
	assert_string_equal(unleash_features_find(f, "num")->strategies[0].group_id, "num");
	assert_string_equal(unleash_features_find(f, "num")->strategies[0].stickiness, "default");
	assert_string_equal(unleash_features_find(f, "r30")->strategies[0].group_id, "g");
	/* The rollout of a state with no such toggle, and of no state. */
	assert_true(unleash_features_rollout(NULL, "r30") == -1);
	unleash_features_unref(f);
}

/* The state is shared by threads: the last unref frees it. */
static void test_reference_counted(void **state)
{
	(void)state;
	struct unleash_features *f = parse("{'features':[{'name':'t'}]}", "t");
	assert_non_null(f);
	assert_ptr_equal(unleash_features_ref(f), f);
	unleash_features_unref(f);
	assert_string_equal(unleash_features_find(f, "t")->name, "t");
	unleash_features_unref(f); /* freed: the sanitizer build checks no leak remains */
	assert_null(unleash_features_ref(NULL));
	unleash_features_unref(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refuses_what_is_not_a_client_api_answer),
	    cmocka_unit_test(test_parameter_of_the_wrong_type),
	    cmocka_unit_test(test_only_the_kept_toggles_are_validated),
	    cmocka_unit_test(test_segments_inline_and_apart_are_the_same),
	    cmocka_unit_test(test_missing_segment_marks_the_strategy_off),
	    cmocka_unit_test(test_parents_kept_and_linked),
	    cmocka_unit_test(test_sets_and_strings_prepared),
	    cmocka_unit_test(test_numbers_prepared),
	    cmocka_unit_test(test_dates_with_offsets),
	    cmocka_unit_test(test_semver_prepared),
	    cmocka_unit_test(test_cidr_v4_and_v6_with_prefixes),
	    cmocka_unit_test(test_unusable_pattern_listed_and_never_matches),
	    cmocka_unit_test(test_regex_designed_to_backtrack_returns),
	    cmocka_unit_test(test_regex_matches_what_it_should),
	    cmocka_unit_test(test_rollout_percent),
	    cmocka_unit_test(test_reference_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
