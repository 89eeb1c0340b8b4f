# mpool - developer entry points (GNU make).  CMake does the real work.
#
#   make [build]            configure and build into build/
#   make test               install-deps, then plain, ASan+UBSan and TSan test runs, clang build
#   make test-plain | test-asan | test-tsan | test-clang   one of those runs
#   make demo               build and run every example
#   make lint               cppcheck + clang-tidy (.clang-tidy)
#   make fastpath           instructions per alloc+free pair (callgrind)
#   make fuzz               the libFuzzer target tests/fuzz for FUZZ_TIME seconds (default 600; clang)
#   make bench              mpool vs glibc, mimalloc, jemalloc, tcmalloc (~5 min; BENCHMARKS.md)
#   make bench-full         the same with more threads, sizes and repetitions
#   make install PREFIX=/some/where
#   make clean
#
# Knobs: CC / CXX (compiler of a fresh build tree: CC=clang make BUILD=build-clang),
# BUILD (plain build dir), JOBS, CMAKE_ARGS (extra -D options), CRITERION_JOBS,
# ASAN_OPTS / UBSAN_OPTS / TSAN_OPTS, TSAN_TESTS (regex of the TSan run),
# MPOOL_TEST_SCALE (passed through to the tests untouched), BENCH_BUILD (Release
# tree of the benchmarks, default build-bench), BENCH_ARGS (extra bench/run.py options).

CMAKE       ?= cmake
CTEST       ?= ctest
JOBS        ?= 2
BUILD       ?= build
BUILD_ASAN  ?= build-asan
BUILD_TSAN  ?= build-tsan
PREFIX      ?= /usr/local
CMAKE_ARGS  ?=
TSAN_TESTS  ?= threads|stress|heap|stats|fixed|arena

# ctest already runs $(JOBS) test programs at once; one Criterion worker per
# program keeps the machine from being oversubscribed.  Override freely.
CRITERION_JOBS ?= 1

# Sanitizer settings of the asan and tsan runs.  TSan's lock-order checker can
# follow at most 64 mutexes held at once by one thread; past that it dies with
# "CHECK failed: sanitizer_deadlock_detector.h:67".  Should the library ever
# need that, run with TSAN_OPTS=halt_on_error=1:detect_deadlocks=0 (races are
# still reported, lock-order inversions no longer).
ASAN_OPTS  ?= detect_leaks=1:abort_on_error=1
UBSAN_OPTS ?= print_stacktrace=1:halt_on_error=1
TSAN_OPTS  ?= halt_on_error=1

SAN_ENV = ASAN_OPTIONS=$(ASAN_OPTS) UBSAN_OPTIONS=$(UBSAN_OPTS) TSAN_OPTIONS=$(TSAN_OPTS) \
          CRITERION_JOBS=$(CRITERION_JOBS)

# Pass the compiler to CMake only when the user chose one.
COMPILER_ARGS :=
ifneq ($(filter environment command line,$(origin CC)),)
  COMPILER_ARGS += -DCMAKE_C_COMPILER=$(CC)
  ifeq ($(filter environment command line,$(origin CXX)),)
    ifneq ($(findstring clang,$(notdir $(CC))),)
      COMPILER_ARGS += -DCMAKE_CXX_COMPILER=$(subst clang,clang++,$(CC))
    endif
  endif
endif
ifneq ($(filter environment command line,$(origin CXX)),)
  COMPILER_ARGS += -DCMAKE_CXX_COMPILER=$(CXX)
endif

CONFIGURE = $(CMAKE) -S . $(COMPILER_ARGS) $(CMAKE_ARGS) -B

LINT_SOURCES = $(wildcard src/*.c src/prim/*.c)

.PHONY: all build deps test test-plain test-asan test-tsan test-clang demo fastpath fuzz lint cppcheck clang-tidy \
        install clean help bench bench-full bench-build

all: build

help:
	@sed -n '2,18p' Makefile

build:
	$(CONFIGURE) $(BUILD)
	$(CMAKE) --build $(BUILD) -j$(JOBS)

deps:
	scripts/install-deps.sh

# All three runs happen even when one fails; the target fails if any did.
test: deps
	@failed=""; \
	for run in plain asan tsan clang; do \
	    $(MAKE) --no-print-directory test-$$run || failed="$$failed $$run"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test: FAILED runs:$$failed"; exit 1; fi; \
	echo "make test: plain, asan and tsan runs and the clang build passed"

test-plain:
	@echo "==> tests: plain build ($(BUILD))"
	$(CONFIGURE) $(BUILD)
	$(CMAKE) --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && CRITERION_JOBS=$(CRITERION_JOBS) \
	    $(CTEST) --output-on-failure --no-tests=error -j$(JOBS)

test-asan:
	@echo "==> tests: AddressSanitizer + UndefinedBehaviorSanitizer ($(BUILD_ASAN))"
	$(CONFIGURE) $(BUILD_ASAN) -DMPOOL_SANITIZE=address
	$(CMAKE) --build $(BUILD_ASAN) -j$(JOBS)
	cd $(BUILD_ASAN) && $(SAN_ENV) $(CTEST) --output-on-failure --no-tests=error -j$(JOBS)

# Criterion cannot run under TSan, so this tree builds only the selected tests
# and runs them with tools/criterion-shim (MPOOL_TEST_RUNNER=auto).
test-tsan:
	@echo "==> tests: ThreadSanitizer ($(BUILD_TSAN)), tests matching '$(TSAN_TESTS)'"
	$(CONFIGURE) $(BUILD_TSAN) -DMPOOL_SANITIZE=thread '-DMPOOL_TEST_FILTER=$(TSAN_TESTS)'
	$(CMAKE) --build $(BUILD_TSAN) -j$(JOBS)
	cd $(BUILD_TSAN) && $(SAN_ENV) \
	    $(CTEST) --output-on-failure --no-tests=error -j$(JOBS) -R '$(TSAN_TESTS)'

# The whole tree built with clang, warnings as errors (the runs above use gcc),
# and a few fast unit tests run as a smoke check of the clang build.
BUILD_CLANG ?= build-clang
test-clang:
	@echo "==> clang build ($(BUILD_CLANG)), -Wall -Wextra -Werror"
	$(CMAKE) -S . -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ $(CMAKE_ARGS) -B $(BUILD_CLANG)
	$(CMAKE) --build $(BUILD_CLANG) -j$(JOBS)
	cd $(BUILD_CLANG) && $(CTEST) --output-on-failure --no-tests=error -j$(JOBS) -R 'test_sizeclass|test_slab|test_cpp|fuzz_api'

# The libFuzzer target (tests/fuzz/fuzz_api.c) in the clang tree: the
# committed corpus, then new inputs for FUZZ_TIME seconds, kept in
# $(BUILD_CLANG)/fuzz/corpus; a failing input is written to
# $(BUILD_CLANG)/fuzz/ (crash-*).  FUZZ_ARGS: more libFuzzer flags.
FUZZ_TIME ?= 600
FUZZ_ARGS ?=
fuzz:
	$(CMAKE) -S . -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ $(CMAKE_ARGS) -B $(BUILD_CLANG)
	$(CMAKE) --build $(BUILD_CLANG) -j$(JOBS) --target fuzz_api
	mkdir -p $(BUILD_CLANG)/fuzz/corpus
	$(BUILD_CLANG)/tests/fuzz_api -max_total_time=$(FUZZ_TIME) -detect_leaks=0 -print_final_stats=1 \
	    -artifact_prefix=$(BUILD_CLANG)/fuzz/ $(FUZZ_ARGS) $(BUILD_CLANG)/fuzz/corpus tests/fuzz/corpus

demo: build
	@set -e; for ex in $(BUILD)/examples/example_*; do \
	    [ -x "$$ex" ] || continue; \
	    echo "==> $$ex"; "$$ex"; echo; \
	done

# Instructions per 16 B (and 128 B, 1 KiB) alloc+free pair on a pool that is
# not thread safe, counted by callgrind.
fastpath: build
	@echo "==> calls into libmpool.a"
	scripts/instr-per-pair.sh $(BUILD)/bench/mpool_pair 16 128 1024
	@echo "==> libmpool.a linked with -flto (fast paths inlined into the caller)"
	$(CONFIGURE) build-lto -DMPOOL_LTO=ON -DBUILD_TESTING=OFF -DMPOOL_BUILD_EXAMPLES=OFF > /dev/null
	$(CMAKE) --build build-lto -j$(JOBS) --target mpool_pair > /dev/null
	scripts/instr-per-pair.sh build-lto/bench/mpool_pair 16 128 1024

# Benchmarks: a Release tree of their own (no tests, no examples), then
# bench/run.py prints the tables and writes bench/results/latest.{md,json,png}.
BENCH_BUILD ?= build-bench
BENCH_ARGS  ?=
PYTHON      ?= python3

bench-build:
	scripts/install-deps.sh --bench
	$(CONFIGURE) $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DMPOOL_BUILD_EXAMPLES=OFF
	$(CMAKE) --build $(BENCH_BUILD) -j$(JOBS) --target mpool_bench mpool_bench_api mpool_malloc mpool_pair mpool_bench_fixed mpool_bench_arena

bench: bench-build
	$(PYTHON) bench/run.py --profile quick --build $(BENCH_BUILD) $(BENCH_ARGS)

bench-full: bench-build
	$(PYTHON) bench/run.py --profile full --build $(BENCH_BUILD) $(BENCH_ARGS)

lint: cppcheck clang-tidy

cppcheck:
	cppcheck --enable=warning,performance,portability --inline-suppr --error-exitcode=1 \
	    --std=c11 --quiet -I include -I src src include

# clang-tidy reads the flags of each file from $(BUILD)/compile_commands.json,
# which configuring alone writes.  One process per file: clang-tidy 14 given
# several files in one run reports analyzer paths that do not exist (seen:
# valist.Uninitialized on a va_start'ed list in error.c).
clang-tidy:
	$(CONFIGURE) $(BUILD) > /dev/null
	@if [ -z "$(LINT_SOURCES)" ]; then echo "clang-tidy: no sources"; exit 1; fi
	@echo "clang-tidy -p $(BUILD) --quiet <file>   for each of: $(LINT_SOURCES)"
	@printf '%s\n' $(LINT_SOURCES) | xargs -n 1 -P $(JOBS) clang-tidy -p $(BUILD) --quiet

install: build
	$(CMAKE) --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf build build-* $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN)
