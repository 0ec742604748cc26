# The README's commands. Each installs what is missing, configures, builds and runs.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build test asan-test demo bench bench-smoke format format-check tidy clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 300

asan-test: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSSX_SANITIZE=ON -DSSX_BUILD_BENCH=OFF
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 600

demo: build
	@if [ -x $(BUILD)/tools/ssx/ssx ]; then $(BUILD)/tools/ssx/ssx demo; \
	else scripts/example-demo $(BUILD); fi

# Benchmarks (docs/benchmarks.md). Both build only what the suite needs. bench measures (6-9 minutes
# on 2 shared cores) and rewrites bench/results/ and docs/benchmarks.md; bench-smoke runs every
# workload briefly into a temporary directory and checks the harness, not the timings (for CI).
bench: deps $(BUILD)/CMakeCache.txt
	cmake -S . -B $(BUILD) -DSSX_BUILD_BENCH=ON > /dev/null
	cmake --build $(BUILD) -j $(JOBS) --target ssx_bench
	python3 bench/run.py --build $(BUILD)

bench-smoke: deps $(BUILD)/CMakeCache.txt
	cmake -S . -B $(BUILD) -DSSX_BUILD_BENCH=ON > /dev/null
	cmake --build $(BUILD) -j $(JOBS) --target ssx_bench
	python3 bench/run.py --build $(BUILD) --smoke

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp' '*.h' '*.c')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.cpp' '*.hpp' '*.h' '*.c')

tidy: build
	run-clang-tidy -quiet -p $(BUILD) "$(CURDIR)/(src|tools)/.*\.cpp" > $(BUILD)/tidy.log 2>&1 \
	  || { grep -E 'error:|warning:' $(BUILD)/tidy.log | sort -u | head -50; exit 1; }

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
