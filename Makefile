# sockit — build, test and run.
#   make            build/sockit, build/libsockit.a, build/unit_tests, examples
#   make test       unit + integration tests, normal build then ASan+UBSan build
#   make test-fast  the same, normal build only
#   make run        install missing build deps, build, start `sockit serve`
#   make lint       clang-tidy, cppcheck and scan-build; a summary per tool
#   make soak MINUTES=N   N minutes of mixed load on one server; RSS and fds must stay flat
#   make SANITIZE=1 ...   use the sanitizer build (output in build/san/)
#   make CC=clang ...     build with clang
#   make FAULT=1 [SANITIZE=1]  fault-injection build/fault[-san]/sockit (docs/testing.md)
#   make torture          every k of every fault scenario (tests/torture/)
CC ?= cc
SANITIZE ?=
FAULT ?=

ifeq ($(SANITIZE),1)
BUILD := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT := -O1
else
BUILD := build
SANFLAGS :=
OPT := -O2
endif

# Fault-injection build: every function named X(...) in tests/fault/fault.c
# is linked with --wrap, and the shim goes into libsockit.a.
comma := ,
ifeq ($(FAULT),1)
BUILD := $(BUILD:build%=build/fault%)
BUILD := $(subst fault/san,fault-san,$(BUILD))
LP := (
FAULT_FUNCS := $(patsubst X$(LP)%$(comma),%,$(filter X$(LP)%$(comma),$(file <tests/fault/fault.c)))
LDFLAGS_FAULT := $(foreach f,$(FAULT_FUNCS),-Wl,--wrap=$(f))
FAULT_OBJ := $(BUILD)/obj/tests/fault/fault.o
.DEFAULT_GOAL := $(BUILD)/sockit
endif

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) -Iinclude -Ilib -pthread -MMD -MP $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := -pthread $(SANFLAGS) $(LDFLAGS_FAULT)
LDLIBS := -lssl -lcrypto

LIB_SRC := $(sort $(wildcard lib/*.c lib/util/*.c))
CLI_SRC := $(sort $(wildcard src/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
EX_SRC := $(sort $(wildcard examples/*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(FAULT_OBJ)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
EX_BIN := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
FUZZ_REPLAY := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%_replay)
# Fuzz targets may exercise the program's own parsers too: everything but main().
FUZZ_CLI_SRC := $(filter-out src/main.c,$(CLI_SRC))
FUZZ_CLI_OBJ := $(FUZZ_CLI_SRC:%.c=$(BUILD)/obj/%.o)

PYTEST ?= /usr/bin/python3 -m pytest

.PHONY: all test test-fast test-unit test-integration run deps test-deps fuzz clean lint soak \
	test-torture torture fault-san

all: $(BUILD)/sockit $(BUILD)/libsockit.a $(BUILD)/unit_tests $(EX_BIN) $(FUZZ_REPLAY)

$(BUILD)/libsockit.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/sockit: $(CLI_OBJ) $(BUILD)/libsockit.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libsockit.a $(LDLIBS)

$(BUILD)/unit_tests: $(UNIT_OBJ) $(BUILD)/libsockit.a
	$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJ) $(BUILD)/libsockit.a -lcriterion $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libsockit.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libsockit.a $(LDLIBS)

# Each fuzz target also builds as a plain program that replays fuzz/corpus/<target>/,
# so `make test` runs the corpus without libFuzzer.
$(BUILD)/fuzz/%_replay: fuzz/%.c fuzz/replay_main.c $(FUZZ_CLI_OBJ) $(BUILD)/libsockit.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< fuzz/replay_main.c $(FUZZ_CLI_OBJ) $(BUILD)/libsockit.a $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

test-unit: $(BUILD)/unit_tests
	$(BUILD)/unit_tests --jobs 2 --timeout 60

test-integration: all
	SOCKIT_BIN=$(abspath $(BUILD)/sockit) SOCKIT_BUILD=$(abspath $(BUILD)) \
	    $(PYTEST) -q -p no:cacheprovider tests/integration --ignore=tests/integration/test_torture.py

test-fuzz-replay: $(FUZZ_REPLAY)
	@for t in $(FUZZ_REPLAY); do n=$$(basename $$t _replay); \
	    $$t fuzz/corpus/$$n || exit 1; done

test-fast: all
	$(MAKE) test-unit test-fuzz-replay test-integration

# `make test` sets up what it needs first (scripts/deps.sh: apt-get as root or
# through sudo; otherwise it prints the exact apt-get line and fails).
test: test-deps
	$(MAKE) test-fast
	$(MAKE) SANITIZE=1 test-fast
	$(MAKE) test-torture

# Fault injection (tests/torture, docs/testing.md) on the ASan+UBSan fault
# build: test-torture runs a sample of k per scenario, torture every k.
FAULT_BIN := build/fault-san/sockit
fault-san:
	$(MAKE) FAULT=1 SANITIZE=1 $(FAULT_BIN)

test-torture: fault-san
	SOCKIT_FAULT_BIN=$(abspath $(FAULT_BIN)) $(PYTEST) -q -p no:cacheprovider \
	    tests/integration/test_torture.py

torture: fault-san
	SOCKIT_FAULT_BIN=$(abspath $(FAULT_BIN)) /usr/bin/python3 tests/torture/torture.py --all --by-function

# libFuzzer targets (clang); each runs for FUZZ_SECONDS.
FUZZ_SECONDS ?= 30
fuzz:
	@mkdir -p build/fuzz-lf
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	    clang -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude -Ilib -Isrc -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	        -o build/fuzz-lf/$$n $$f $(LIB_SRC) $(FUZZ_CLI_SRC) -pthread $(LDLIBS) || exit 1; \
	    mkdir -p build/fuzz-lf/corpus-$$n; \
	    build/fuzz-lf/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	        build/fuzz-lf/corpus-$$n fuzz/corpus/$$n || exit 1; done

# Static analysis with the build's own flags (docs/testing.md, "Static analysis").
lint:
	scripts/deps.sh lint
	LINT_FLAGS='$(filter-out -MMD -MP -Werror,$(CFLAGS))' scripts/lint.sh

# N minutes of mixed load on one server (docs/testing.md, "Soak"); not part of `make test`.
soak: MINUTES ?= 2
soak:
	scripts/deps.sh soak
	$(MAKE) all
	SOCKIT_BIN=$(abspath $(BUILD)/sockit) /usr/bin/python3 tests/soak/soak.py --minutes $(MINUTES)

# Hostile peers against the sanitizer build for MINUTES (tests/hostile/peers.py;
# SEED=N replays one seed's scripts).
.PHONY: fuzz-net
fuzz-net: MINUTES ?= 10
fuzz-net:
	$(MAKE) SANITIZE=1 build/san/sockit
	/usr/bin/python3 tests/hostile/peers.py --sockit build/san/sockit --minutes $(MINUTES) \
	    --seconds 60 $(if $(SEED),--seed $(SEED))

deps:
	scripts/deps.sh build

test-deps:
	scripts/deps.sh test

run:
	scripts/deps.sh build
	$(MAKE) $(BUILD)/sockit
	$(BUILD)/sockit serve $(ARGS)

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)
