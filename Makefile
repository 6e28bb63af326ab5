# Thin wrapper over CMake: every everyday action has a target here.
#   make            build build/weft (+ library, tests, benches)
#   make test       unit + integration tests, then the sanitizer build's tests, then bounded fuzzing
#   make check      only the normal build's tests
#   make san        only the ASan+UBSan build's tests
#   make fuzz       only the fuzzers (FUZZ_SECONDS each)
#   make bench      the core benchmark (writes bench/results/)
#   make format     clang-format every source
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 30
SHARED ?= $(abspath ../shared)

.PHONY: all build test check san fuzz bench format clean demo

all: build

build:
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DWEFT_SHARED_DIR=$(SHARED) >/dev/null
	@cmake --build build -j $(JOBS) -- --no-print-directory

check: build
	cd build && ctest --output-on-failure -j $(JOBS)

san:
	@cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Release -DWEFT_SANITIZE=ON -DWEFT_SHARED_DIR=$(SHARED) >/dev/null
	@cmake --build build-san -j $(JOBS)
	cd build-san && WEFT_SANITIZED=1 ctest --output-on-failure -j $(JOBS)

fuzz:
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Release -DWEFT_FUZZ=ON -DWEFT_TESTS=OFF >/dev/null
	@cmake --build build-fuzz -j $(JOBS)
	bash fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(SHARED)

# The full suite: what README's test command and CI run.
test:
	@JOBS=$(JOBS) FUZZ_SECONDS=$(FUZZ_SECONDS) SHARED=$(SHARED) bash scripts/test.sh

bench: build
	build/bench_core --out bench/results/core.md

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san build-fuzz
