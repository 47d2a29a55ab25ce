# gcs: gathering conditions service.
#
#   make run    install what is missing, build, serve the embedded default in rules/
#   make test   install what is missing, build, run every suite
#   make bench  HTTP benchmark per core against nginx (see tests/bench)
#   make bench-abuse  a good client beside abusive ones, gcs and nginx

# Debian 12 packages. Build: what compiles and links build/gcs. Test: what the
# suites and their real peers (download server, Unleash, PostgreSQL) need.
DEPS_BUILD := build-essential pkg-config liblua5.4-dev lua5.4 libmicrohttpd-dev \
              libcurl4-openssl-dev libjansson-dev libpcre2-dev libre2-dev zlib1g-dev \
              lua-cjson lua-cjson-dev ca-certificates
DEPS_TEST  := libcmocka-dev lua-busted lua-check python3 python3-pytest curl \
              nginx-light wrk postgresql-15 nodejs python3-jsonschema python3-prometheus-client time \
              libdigest-murmurhash3-pureperl-perl prometheus python3-yaml \
              clang valgrind iproute2 nftables

PKGS    := lua5.4 libmicrohttpd libcurl jansson libpcre2-8 re2 zlib lua5.4-cjson
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -pthread -fPIC \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lstdc++ -lm -pthread
# src/pattern.cc, the one C++ file: RE2 has no C API.
CXX      ?= c++
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -Wall -Wextra -Werror -pthread -fPIC $(shell pkg-config --cflags re2 2>/dev/null)

SRC      := $(wildcard src/*.c)
SRC_CXX  := $(wildcard src/*.cc)
OBJ      := $(SRC:src/%.c=build/obj/%.o) $(SRC_CXX:src/%.cc=build/obj/%.o)
LIB_OBJ  := $(filter-out build/obj/main.o,$(OBJ))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/tests/%)

.PHONY: gcs all deps deps-build run test check-rules unit clean bench bench-load bench-routing fmt asan

# `make` builds the server (and its Lua module); `make all` adds the unit
# tests, which need cmocka from the test dependencies.
gcs: build/gcs build/lua/gcs.so

all: gcs $(UNIT_BIN)

build/obj/%.o: src/%.c $(wildcard src/*.h) | build/obj
	$(CC) $(CFLAGS) -c -o $@ $<
build/obj/%.o: src/%.cc $(wildcard src/*.h) | build/obj
	$(CXX) $(CXXFLAGS) -c -o $@ $<

# The build version is compiled into version.o alone, which is rebuilt
# whenever git describe changes (build/version holds the last one), so no
# two objects of a build can carry different versions.
VERSION_DEF := -DGCS_VERSION='"$(VERSION)"'
.PHONY: version-check
build/version: version-check
	@mkdir -p build
	@echo '$(VERSION)' | cmp -s - $@ 2>/dev/null || echo '$(VERSION)' >$@
build/obj/version.o build/asan/obj/version.o build/fuzz/obj/version.o: build/version
build/obj/version.o: CFLAGS += $(VERSION_DEF)
build/asan/obj/version.o: ASAN_CFLAGS += $(VERSION_DEF)
build/fuzz/obj/version.o: FUZZ_CFLAGS += $(VERSION_DEF)

# the OpenAPI document and Clowder's schema are embedded with .incbin
build/obj/handlers.o: src/openapi.json
build/obj/clowder.o: src/clowder.schema.json

build/gcs: $(OBJ)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The host's `gcs` and `unleash` Lua modules, built also as one Lua C module
# so that busted tests load exactly the code the server runs;
# build/lua/unleash.so is the same file under the name require looks for.
LUA_MODULE_SRC := src/luagcs.c src/unleash_lua.c src/unleash_eval.c src/unleash_usage.c \
                  src/unleash_features.c src/unleash_regex.c src/jsvalue.c src/semver.c src/regex.c \
                  src/jsontext.c src/buf.c src/murmur3.c
build/lua/gcs.so: $(LUA_MODULE_SRC) build/obj/pattern.o $(wildcard src/*.h) | build/lua
	$(CC) $(CFLAGS) -shared -DGCS_LUA_MODULE -o $@ $(LUA_MODULE_SRC) build/obj/pattern.o \
	  $(shell pkg-config --libs jansson libpcre2-8 re2 2>/dev/null) -lstdc++
	ln -sf gcs.so build/lua/unleash.so

build/tests/%: tests/unit/%.c $(LIB_OBJ) | build/tests
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(LIB_OBJ) $(LDLIBS) -lcmocka

build/obj build/tests build/lua build/asan/obj build/asan/tests:
	mkdir -p $@

# The same sources with AddressSanitizer and UndefinedBehaviorSanitizer, for
# the unit tests and the black-box suites that feed gcs broken input.
ASAN_CFLAGS := $(CFLAGS) -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
ASAN_CXXFLAGS := $(CXXFLAGS) -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                 -fno-omit-frame-pointer
ASAN_OBJ     := $(SRC:src/%.c=build/asan/obj/%.o) $(SRC_CXX:src/%.cc=build/asan/obj/%.o)
ASAN_LIB_OBJ := $(filter-out build/asan/obj/main.o,$(ASAN_OBJ))
ASAN_UNIT    := $(UNIT_SRC:tests/unit/%.c=build/asan/tests/%)

build/asan/obj/%.o: src/%.c $(wildcard src/*.h) | build/asan/obj
	$(CC) $(ASAN_CFLAGS) -c -o $@ $<
build/asan/obj/%.o: src/%.cc $(wildcard src/*.h) | build/asan/obj
	$(CXX) $(ASAN_CXXFLAGS) -c -o $@ $<
build/asan/obj/handlers.o: src/openapi.json
build/asan/obj/clowder.o: src/clowder.schema.json
build/asan/gcs: $(ASAN_OBJ)
	$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LDLIBS)
build/asan/tests/%: tests/unit/%.c $(ASAN_LIB_OBJ) | build/asan/tests
	$(CC) $(ASAN_CFLAGS) -Isrc -o $@ $< $(ASAN_LIB_OBJ) $(LDLIBS) -lcmocka

asan: build/asan/gcs $(ASAN_UNIT)

# libFuzzer harnesses (tests/fuzz), one per parser that takes outside bytes:
# clang, the library sources instrumented for coverage, ASan and UBSan.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -pthread -fno-omit-frame-pointer \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_OBJ    := $(LIB_OBJ:build/obj/%=build/fuzz/obj/%)
FUZZ_BIN    := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

# make would delete the objects as intermediate files and rebuild them all
# for each harness changed.
.SECONDARY: $(FUZZ_OBJ)
build/fuzz/obj:
	mkdir -p $@
build/fuzz/obj/%.o: src/%.c $(wildcard src/*.h) | build/fuzz/obj
	clang $(FUZZ_CFLAGS) -c -o $@ $<
build/fuzz/obj/%.o: src/%.cc $(wildcard src/*.h) | build/fuzz/obj
	clang++ $(subst -std=c11,-std=c++17,$(FUZZ_CFLAGS)) -fno-sanitize=function,vptr \
	  $(shell pkg-config --cflags re2 2>/dev/null) \
	  -c -o $@ $<
build/fuzz/obj/handlers.o: src/openapi.json
build/fuzz/obj/clowder.o: src/clowder.schema.json
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_OBJ)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -Isrc -o $@ $< $(FUZZ_OBJ) $(LDLIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BIN)

# The unit tests and a short black-box run under valgrind memcheck: no
# memory error, no definite leak.
.PHONY: valgrind
valgrind: deps
	$(MAKE) all
	tests/valgrind/run

# Every harness for FUZZ_SECONDS each, from the kept corpus.
fuzz: deps
	$(MAKE) fuzz-build
	nice tests/fuzz/run $(FUZZ_SECONDS)

# Rebuilds the kept corpora minimized (-merge=1 into fresh directories) from
# themselves, the seeds and FUZZ_FOUND (directories of fuzz_NAME corpora
# from a longer campaign).
.PHONY: fuzz-corpus
fuzz-corpus: deps
	$(MAKE) fuzz-build
	tests/fuzz/merge-corpus $(FUZZ_FOUND)

# Install only what is missing; a no-op when everything is present.
define apt_missing
	@missing=$$(for p in $(1); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps-build:
	$(call apt_missing,$(DEPS_BUILD))

deps: deps-build
	$(call apt_missing,$(DEPS_TEST))
	@# Debian ships npm apart from nodejs; some Node.js builds include it.
	@command -v npm >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || \
	  echo "warning: Node.js $$(node --version) is older than 20, which unleash-server 7.5.1 requires"

run: deps-build
	$(MAKE) build/gcs
	STABLE_VERSION=$${STABLE_VERSION-1.1.3} CANARY_VERSION=$${CANARY_VERSION-1.2.0} ./build/gcs

test: deps
	$(MAKE) all asan fuzz-build
	tests/run-all

check-rules: build/gcs
	STABLE_VERSION=1.1.3 CANARY_VERSION=1.2.0 ./build/gcs --check

bench-load: deps
	$(MAKE) build/gcs
	tests/bench/load.sh

# What the benchmarks need beyond the build and the tests: callgrind, for
# instruction counts that a loaded machine does not move.
DEPS_BENCH := valgrind

bench: deps
	$(call apt_missing,$(DEPS_BENCH))
	$(MAKE) build/gcs
	tests/bench/http.sh
	tests/bench/memory.sh

# RSS after 1,000,000 decisions and 100 script reloads against the first 10,000.
.PHONY: bench-memory
bench-memory: deps
	$(MAKE) build/gcs
	tests/bench/memory.sh

# A good client's answers beside slow headers, slow bodies and aborted
# requests, gcs and nginx in the same run (tests/bench/abuse.py).
.PHONY: bench-abuse
bench-abuse: deps
	$(MAKE) build/gcs
	tests/bench/abuse.py

# gcs --route - over 100,000 cluster IDs, against 2 s.
.PHONY: bench-route-batch
bench-route-batch: deps-build
	$(MAKE) build/gcs
	tests/bench/route_batch.sh

build/bench/routing: tests/bench/routing_bench.c $(LIB_OBJ)
	mkdir -p build/bench
	$(CC) $(CFLAGS) -Isrc -o $@ $< $(LIB_OBJ) $(LDLIBS)

bench-routing: deps-build
	$(call apt_missing,$(DEPS_BENCH))
	$(MAKE) build/bench/routing
	tests/bench/routing.sh

fmt:
	clang-format -i src/*.c src/*.h tests/unit/*.c tests/fuzz/*.c tests/fuzz/*.h

clean:
	rm -rf build

# The Dockerfile's steps without a container engine: debootstrap, chroot,
# then the image's entrypoint with --check against a local download server.
# Slow (minutes on the first run, which bootstraps Debian): not part of test.
.PHONY: docker-check
docker-check:
	tests/support/docker-check.sh

# deploy/ carries copies of scripts/*.lua (kustomize reads no file outside
# its directory; the Template embeds them): refresh them after an edit.
DEPLOY_NPM := tests/.cache/deploy-npm
.PHONY: deploy-sync
deploy-sync:
	@cmp -s tests/deploy/package-lock.json $(DEPLOY_NPM)/package-lock.json || { \
	  mkdir -p $(DEPLOY_NPM) && cp tests/deploy/package.json tests/deploy/package-lock.json $(DEPLOY_NPM)/ && \
	  npm ci --omit=peer --ignore-scripts --no-audit --no-fund --prefix $(DEPLOY_NPM); }
	node tests/deploy/sync-scripts.mjs $(DEPLOY_NPM)
