// pattern: RE2 behind a C interface.
#include "pattern.h"

#include <re2/re2.h>

#include <cstdio>
#include <new>

struct pattern {
	RE2 re;
	pattern(const char *text, const RE2::Options &opts) : re(text, opts) {}
};

extern "C" struct pattern *pattern_compile(const char *re, bool caseless, long max_mem,
                                           char *err, size_t errlen)
{
	RE2::Options opts;
	opts.set_log_errors(false);
	opts.set_case_sensitive(!caseless);
	opts.set_max_mem(max_mem);
	struct pattern *p = new (std::nothrow) pattern(re, opts);
	if (!p) {
		std::snprintf(err, errlen, "out of memory");
		return nullptr;
	}
	if (!p->re.ok()) {
		std::snprintf(err, errlen, "RE2 refuses it: %s", p->re.error().c_str());
		delete p;
		return nullptr;
	}
	return p;
}

extern "C" bool pattern_match(const struct pattern *p, const char *subject, size_t len)
{
	return RE2::PartialMatch(re2::StringPiece(subject, len), p->re);
}

extern "C" void pattern_free(struct pattern *p)
{
	delete p;
}
