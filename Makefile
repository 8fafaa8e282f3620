# meshward: the two commands of the README.
#   make test   install what is missing, build, run every check
#   make demo   install what is missing, build, run the demo
# Other targets: build, unit, sanitize, fuzz, integration, check-style, format, clean.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 10

.PHONY: all deps build test unit sanitize fuzz integration check-style format demo clean

all: build

deps:
	@bash scripts/deps.sh --quiet

build: deps
	cmake -S . -B $(BUILD) -DMW_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

# Unit and integration tests on the plain build.
unit: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# Unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
# The integration tests of the long-running processes (control plane, sidecars) also run on
# the sanitizer build; every report goes to a file, and any file fails the target.
SAN_INTEGRATION ?= integration/test_control$$|integration/test_sidecar_pool|integration/test_sidecar_resume|integration/test_sidecar_join_renew
SAN_REPORTS = $(CURDIR)/$(BUILD_ASAN)/sanitizer-reports

sanitize: deps
	cmake -S . -B $(BUILD_ASAN) -DMW_SANITIZE=ON -DMW_WERROR=ON -DCMAKE_BUILD_TYPE=Debug
	cmake --build $(BUILD_ASAN) -j$(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j$(JOBS) -L unit
	rm -rf $(SAN_REPORTS) && mkdir -p $(SAN_REPORTS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:log_path=$(SAN_REPORTS)/asan \
	  UBSAN_OPTIONS=print_stacktrace=1:log_path=$(SAN_REPORTS)/ubsan \
	  ctest --output-on-failure -R '$(SAN_INTEGRATION)'
	@if [ -n "$$(ls -A $(SAN_REPORTS))" ]; then \
	  echo "sanitize: reports from the integration tests:"; cat $(SAN_REPORTS)/*; exit 1; fi

# Replay every corpus and fuzz each harness for FUZZ_SECONDS (libFuzzer, clang).
fuzz: deps
	CC=clang cmake -S . -B $(BUILD_FUZZ) -DMW_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD_FUZZ) -j$(JOBS)
	bash scripts/fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

check-style: deps
	bash scripts/check-style.sh

format:
	git ls-files -co --exclude-standard -- '*.c' '*.h' | xargs clang-format -i

test: check-style unit sanitize fuzz
	@echo "make test: style, unit + integration, sanitizers and fuzzing all passed"

demo: build
	bash scripts/demo.sh $(BUILD)/meshward

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
