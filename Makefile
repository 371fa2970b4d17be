# Thin wrapper over CMake for the README's commands.
#   make demo     install dependencies, build, train on a bundled real data set, print metrics
#   make test     install dependencies, build, run the whole suite (optimised, then ASan+UBSan,
#                 then libFuzzer on the codec and the CSV loader)
#   make test-fuzz the fuzz tests only (clang; tests/fuzz/README.md for longer sessions)
#   make check    the fast unit tests on the optimised build (edit-compile-test loop)
#   make format / format-check, make bench, make clean
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=
# Every build made here (make demo, check, test, and so CI through .ci/run) treats warnings as
# errors; a plain `cmake -S . -B dir` does not (FEDC_WERROR defaults to OFF for users).
WERROR     := -DFEDC_WERROR=ON

.PHONY: all deps deps-test build build-asan demo test test-release test-asan test-fuzz check format \
        format-check bench clean

all: build

deps:
	@scripts/install-deps.sh

# What only the tests run (promtool; the Python virtual environment with onnxruntime that
# tests/cli/test_onnx.sh checks fedc's ONNX export with, cached); installed for the test targets,
# not for a build.
deps-test:
	@scripts/install-deps.sh --test
	@scripts/python-venv.sh >/dev/null

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(WERROR) $(CMAKE_ARGS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFEDC_SANITIZE=ON \
	      -DFEDC_BUILD_BENCH=OFF $(WERROR) $(CMAKE_ARGS)

# libFuzzer needs clang; Debian's clang has no OpenMP runtime without libomp, and the fuzzed code
# does not use it.
$(FUZZ_BUILD)/CMakeCache.txt:
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	      -DFEDC_FUZZ=ON -DFEDC_OPENMP=OFF -DFEDC_BUILD_BENCH=OFF $(WERROR) $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# The demo needs only the three programs (the test suite and benchmarks build with `make build`).
demo: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS) --target fedc fedc-coordinator fedc-client
	@scripts/demo.sh $(BUILD)

test: format-check test-release test-asan test-fuzz

test-release: build deps-test
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The slow labels (docker, quality, slow) run only on the optimised build.
test-asan: build-asan deps-test
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    ctest --output-on-failure -j $(JOBS) -LE 'docker|quality|slow'

# Each fuzz target runs for FEDC_FUZZ_SECONDS (30) on a corpus kept in $(FUZZ_BUILD).
test-fuzz: deps $(FUZZ_BUILD)/CMakeCache.txt
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzz_envelope fuzz_csv
	cd $(FUZZ_BUILD) && ctest --output-on-failure -j $(JOBS) -L fuzz

check: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L unit

format: build
	cmake --build $(BUILD) --target format

format-check: build
	cmake --build $(BUILD) --target format-check

bench: build
	$(BUILD)/bench/bench_nn
	$(BUILD)/bench/bench_round $(BUILD)/coordinator/fedc-coordinator

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
