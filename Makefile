# sockit — build, test and run.
#   make            build/sockit, build/libsockit.a, build/libsockit.so*, examples, sockit.pc
#   make install    PREFIX=/usr/local DESTDIR= BINDIR LIBDIR INCLUDEDIR MANDIR SYSTEMDUNITDIR; make uninstall
#   make test-progs build/unit_tests and the fuzz replays (need Criterion)
#   make test       unit + integration tests, normal build then ASan+UBSan build
#   make test-fast  the same, normal build only
#   make run        install missing build deps, build, start `sockit serve`
#   make lint       clang-tidy, cppcheck and scan-build; a summary per tool
#   make soak MINUTES=N   N minutes of mixed load on one server; RSS and fds must stay flat
#   make test-cluster     three servers behind HAProxy/nginx in network namespaces (root)
#   make SANITIZE=1 ...   use the sanitizer build (output in build/san/)
#   make CC=clang ...     build with clang
#   make FAULT=1 [SANITIZE=1]  fault-injection build/fault[-san]/sockit (docs/testing.md)
#   make torture          every k of every fault scenario (tests/torture/)
#   make package-test     Debian packages: build, lintian, install, examples (as root)
#   make symbols          rewrite debian/libsockit0.symbols from build/libsockit.so
#   make pot              po/sockit.pot from the sources; po/*.po merged with it
# CFLAGS, CPPFLAGS, LDFLAGS and LDLIBS are the user's (dpkg-buildflags passes
# them); the project's own flags are SK_*. WERROR=1 adds -Werror; the test
# targets turn it on.
CC ?= cc
SANITIZE ?=
FAULT ?=
WERROR ?=
TEST_GOALS := test test-fast test-unit test-integration test-fuzz-replay test-progs test-torture \
	torture fault-san test-install
ifneq ($(filter $(TEST_GOALS),$(MAKECMDGOALS)),)
WERROR := 1
endif
export WERROR

ifeq ($(SANITIZE),1)
BUILD := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CFLAGS ?= -O1 -g
else
BUILD := build
SANFLAGS :=
CFLAGS ?= -O2 -g
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

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes $(if $(filter 1,$(WERROR)),-Werror)
SK_CPPFLAGS := -D_GNU_SOURCE -Iinclude -Ilib -I$(BUILD)/gen $(NGHTTP2_CFLAGS)
SK_CFLAGS := -std=c11 $(WARN) -pthread -MMD -MP $(SANFLAGS)
SK_LDFLAGS := -pthread $(SANFLAGS) $(LDFLAGS_FAULT)
# nghttp2 (HTTP/2 in fetch): its flags from pkg-config, as Debian's libnghttp2-dev installs them.
NGHTTP2_CFLAGS := $(shell pkg-config --cflags libnghttp2 2>/dev/null)
NGHTTP2_LIBS := $(or $(shell pkg-config --libs libnghttp2 2>/dev/null),-lnghttp2)
SK_LDLIBS := -lssl -lcrypto -lz -lbrotlidec $(NGHTTP2_LIBS)
# The user's flags come last, so their -O or -g wins; EXTRA_CFLAGS is an older spelling.
COMPILE = $(CC) $(SK_CPPFLAGS) $(CPPFLAGS) $(SK_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
LINK = $(CC) $(SK_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS) $(SK_LDFLAGS) $(LDFLAGS)
LIBS = $(SK_LDLIBS) $(LDLIBS)

# The version (include/sockit/version.h is its one source) names the shared library.
version_part = $(shell sed -n 's/^\#define SOCKIT_VERSION_$(1) \([0-9]*\)$$/\1/p' include/sockit/version.h)
VERSION := $(call version_part,MAJOR).$(call version_part,MINOR).$(call version_part,PATCH)
SONAME := libsockit.so.$(call version_part,MAJOR)
SO_FILE := libsockit.so.$(VERSION)

# Installation (GNU names, upper case). The .pc file records LIBDIR and INCLUDEDIR.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
LOCALEDIR ?= $(PREFIX)/share/locale
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# contrib/sockit.{service,socket}; Debian's are in /lib/systemd/system (debian/rules).
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL ?= install

# Objects are rebuilt when the compiler or the flags change (not for WERROR,
# which changes no output): $(BUILD)/.flags holds the last set used.
FLAGS_NOW := $(CC) $(SK_CPPFLAGS) $(CPPFLAGS) $(filter-out -Werror,$(SK_CFLAGS)) $(CFLAGS) $(EXTRA_CFLAGS)
FLAGS_STAMP := $(BUILD)/.flags
ifneq ($(FLAGS_NOW),$(file <$(FLAGS_STAMP)))
$(shell mkdir -p $(BUILD))
$(file >$(FLAGS_STAMP),$(FLAGS_NOW))
endif

LIB_SRC := $(sort $(wildcard lib/*.c lib/util/*.c))
CLI_SRC := $(sort $(wildcard src/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
EX_SRC := $(sort $(wildcard examples/*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(FAULT_OBJ)
# The shared library's objects: position-independent, in their own tree.
PIC_OBJ := $(LIB_SRC:%.c=$(BUILD)/pic/%.o)
SHLIB := $(BUILD)/$(SO_FILE) $(BUILD)/$(SONAME) $(BUILD)/libsockit.so
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
# The program's parsers that stand alone (no other part of src/), unit-tested too.
UNIT_CLI_OBJ := $(BUILD)/obj/src/fetch_cdisp.o
EX_BIN := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)
FUZZ_REPLAY := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%_replay)
# Fuzz targets may exercise the program's own parsers too: everything but main().
FUZZ_CLI_SRC := $(filter-out src/main.c,$(CLI_SRC))
FUZZ_CLI_OBJ := $(FUZZ_CLI_SRC:%.c=$(BUILD)/obj/%.o)
# The program's message catalogues: po/LANG.po -> LANG/LC_MESSAGES/sockit.mo.
PO_LANGS := $(sort $(basename $(notdir $(wildcard po/*.po))))
MO_FILES := $(PO_LANGS:%=$(BUILD)/locale/%/LC_MESSAGES/sockit.mo)
# The systemd units (contrib/), as installed.
UNITS := $(BUILD)/contrib/sockit.service $(BUILD)/contrib/sockit.socket

PYTEST ?= /usr/bin/python3 -m pytest

.PHONY: all test test-fast test-unit test-integration test-fuzz-replay test-progs run deps \
	test-deps fuzz clean lint soak test-torture torture fault-san install uninstall test-install \
	package-test symbols pot FORCE

# The fault build is the program alone; the shared library has no place in it.
all: $(BUILD)/sockit $(BUILD)/libsockit.a $(if $(filter 1,$(FAULT)),,$(SHLIB)) $(EX_BIN) $(BUILD)/sockit.pc \
	$(MO_FILES) $(UNITS)

# What only the tests need: the Criterion runner and the fuzz corpus replays.
test-progs: $(BUILD)/unit_tests $(FUZZ_REPLAY)

$(BUILD)/libsockit.a: $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

# Exports: the version script lib/libsockit.map (public sk_* names, no sk__*).
# --no-undefined records libssl/libcrypto as needed; the sanitizer build
# leaves the runtime's symbols to the program, so it goes without.
$(BUILD)/$(SO_FILE): $(PIC_OBJ) lib/libsockit.map
	$(LINK) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=lib/libsockit.map \
	    $(if $(SANITIZE),,-Wl,--no-undefined) -Wl,--as-needed -o $@ $(PIC_OBJ) $(LIBS)

$(BUILD)/$(SONAME) $(BUILD)/libsockit.so: $(BUILD)/$(SO_FILE)
	ln -sf $(if $(filter %.so,$@),$(SONAME),$(SO_FILE)) $@

# The program links the static archive: the fault build wraps the library's
# own calls with --wrap (which a shared library would not see), and the
# program runs from the build tree without a library path.
$(BUILD)/sockit: $(CLI_OBJ) $(BUILD)/libsockit.a
	$(LINK) -o $@ $(CLI_OBJ) $(BUILD)/libsockit.a $(LIBS)

# libbrotlienc: tests/unit/test_decode.c makes its br samples (zlib makes the others).
$(BUILD)/unit_tests: $(UNIT_OBJ) $(UNIT_CLI_OBJ) $(BUILD)/libsockit.a
	$(LINK) -o $@ $(UNIT_OBJ) $(UNIT_CLI_OBJ) $(BUILD)/libsockit.a -lcriterion -lbrotlienc $(LIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libsockit.a $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(COMPILE) $(SK_LDFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libsockit.a $(LIBS)

# Each fuzz target also builds as a plain program that replays fuzz/corpus/<target>/,
# so `make test` runs the corpus without libFuzzer.
$(BUILD)/fuzz/%_replay: fuzz/%.c fuzz/replay_main.c $(FUZZ_CLI_OBJ) $(BUILD)/libsockit.a $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(COMPILE) -Isrc $(SK_LDFLAGS) $(LDFLAGS) -o $@ $< fuzz/replay_main.c $(FUZZ_CLI_OBJ) $(BUILD)/libsockit.a $(LIBS)

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(COMPILE) -c -o $@ $<

$(BUILD)/pic/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(COMPILE) -fPIC -c -o $@ $<

# Rewritten only when its text changes (PREFIX or LIBDIR given at install time).
$(BUILD)/sockit.pc: sockit.pc.in include/sockit/version.h FORCE
	@mkdir -p $(@D)
	@sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' sockit.pc.in > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

# The systemd units with ExecStart= naming the installed program (BINDIR);
# rewritten only when their text changes.
$(UNITS): $(BUILD)/contrib/%: contrib/% FORCE
	@mkdir -p $(@D)
	@sed -e 's|/usr/bin/sockit|$(BINDIR)/sockit|g' $< > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

# Where the program looks for its catalogues (SOCKIT_LOCALEDIR overrides it at
# run time); rewritten only when LOCALEDIR changes, so only i18n.o follows.
$(BUILD)/gen/localedir.h: FORCE
	@mkdir -p $(@D)
	@printf '#define SOCKIT_LOCALEDIR "%s"\n' '$(LOCALEDIR)' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/src/i18n.o: $(BUILD)/gen/localedir.h

# --check: a translation must keep its message's printf conversions.
$(BUILD)/locale/%/LC_MESSAGES/sockit.mo: po/%.po
	@mkdir -p $(@D)
	msgfmt --check -o $@ $<

# Strings are marked with _() and N_() (src/i18n.h); the .po files keep their
# translations, new or changed messages come in untranslated (or fuzzy).
pot:
	xgettext --no-wrap --from-code=UTF-8 --language=C -k_ -kN_ -kcli_error -kngettext:1,2 --flag=cli_error:1:c-format \
	    --add-comments=TRANSLATORS \
	    --package-name=sockit --package-version=$(VERSION) -o po/sockit.pot $(CLI_SRC)
	xgettext --no-wrap --language=C --extract-all --join-existing -o po/sockit.pot lib/err.c
	$(foreach p,$(wildcard po/*.po),msgmerge --quiet --no-wrap --update --backup=none $(p) po/sockit.pot &&) true

# Every man/NAME.N there is (sockit.1, libsockit.3) goes to MANDIR/manN/NAME.N.
MAN_PAGES := $(sort $(wildcard man/*.[1-8]))
man_dest = $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(1)))/$(notdir $(1))
HEADERS := $(sort $(wildcard include/sockit/*.h))

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(INCLUDEDIR)/sockit $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
	    $(sort $(foreach m,$(MAN_PAGES),$(dir $(call man_dest,$(m))))) $(DESTDIR)$(SYSTEMDUNITDIR)
	$(INSTALL) -m 755 $(BUILD)/sockit $(DESTDIR)$(BINDIR)/sockit
	$(INSTALL) -m 644 $(BUILD)/$(SO_FILE) $(DESTDIR)$(LIBDIR)/$(SO_FILE)
	ln -sf $(SO_FILE) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libsockit.so
	$(INSTALL) -m 644 $(BUILD)/libsockit.a $(DESTDIR)$(LIBDIR)/libsockit.a
	$(INSTALL) -m 644 $(BUILD)/sockit.pc $(DESTDIR)$(PKGCONFIGDIR)/sockit.pc
	$(INSTALL) -m 644 include/sockit.h $(DESTDIR)$(INCLUDEDIR)/sockit.h
	$(INSTALL) -m 644 $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/sockit/
	$(foreach m,$(MAN_PAGES),$(INSTALL) -m 644 $(m) $(call man_dest,$(m)) &&) true
	$(INSTALL) -m 644 $(UNITS) $(DESTDIR)$(SYSTEMDUNITDIR)/
	$(foreach l,$(PO_LANGS),$(INSTALL) -d $(DESTDIR)$(LOCALEDIR)/$(l)/LC_MESSAGES && \
	    $(INSTALL) -m 644 $(BUILD)/locale/$(l)/LC_MESSAGES/sockit.mo $(DESTDIR)$(LOCALEDIR)/$(l)/LC_MESSAGES/ &&) true

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sockit $(addprefix $(DESTDIR)$(LIBDIR)/,$(SO_FILE) $(SONAME) libsockit.so libsockit.a) \
	    $(DESTDIR)$(PKGCONFIGDIR)/sockit.pc $(DESTDIR)$(INCLUDEDIR)/sockit.h \
	    $(addprefix $(DESTDIR)$(INCLUDEDIR)/sockit/,$(notdir $(HEADERS))) \
	    $(foreach m,$(MAN_PAGES),$(call man_dest,$(m))) \
	    $(PO_LANGS:%=$(DESTDIR)$(LOCALEDIR)/%/LC_MESSAGES/sockit.mo) \
	    $(addprefix $(DESTDIR)$(SYSTEMDUNITDIR)/,$(notdir $(UNITS)))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/sockit

test-unit: $(BUILD)/unit_tests
	LSAN_OPTIONS=suppressions=$(abspath tests/unit/lsan.supp) $(BUILD)/unit_tests --jobs 2 --timeout 60

test-integration: all
	SOCKIT_BIN=$(abspath $(BUILD)/sockit) SOCKIT_BUILD=$(abspath $(BUILD)) \
	    $(PYTEST) -q -p no:cacheprovider tests/integration --ignore=tests/integration/test_torture.py

test-fuzz-replay: $(FUZZ_REPLAY)
	@for t in $(FUZZ_REPLAY); do n=$$(basename $$t _replay); \
	    $$t fuzz/corpus/$$n || exit 1; done

test-fast: all test-progs
	$(MAKE) test-unit test-fuzz-replay test-install test-integration

# `make install` into a scratch DESTDIR, then tests/install checks the file
# list, the .pc file and a program built against the installed library;
# `make uninstall` must leave no file behind. No root needed.
INSTALL_TEST_DIR := $(abspath $(BUILD)/destdir)
test-install: all
	rm -rf $(INSTALL_TEST_DIR)
	$(MAKE) -s install DESTDIR=$(INSTALL_TEST_DIR) PREFIX=/usr
	SOCKIT_DESTDIR=$(INSTALL_TEST_DIR) SOCKIT_PREFIX=/usr SOCKIT_BUILD=$(abspath $(BUILD)) \
	    SOCKIT_CC='$(CC)' SOCKIT_SANFLAGS='$(SANFLAGS)' $(PYTEST) -q -p no:cacheprovider tests/install
	$(MAKE) -s uninstall DESTDIR=$(INSTALL_TEST_DIR) PREFIX=/usr
	@left=$$(find $(INSTALL_TEST_DIR) ! -type d); [ -z "$$left" ] || \
	    { echo "make uninstall left: $$left" >&2; exit 1; }
	rm -rf $(INSTALL_TEST_DIR)

# The Debian packages end to end (scripts/package-test.sh; root, or sudo for dpkg).
package-test:
	scripts/deps.sh package
	scripts/package-test.sh

# debian/libsockit0.symbols from the shared library's exports: symbols already
# listed keep their version, new ones get VERSION; prints the difference.
# A symbol that disappears breaks the ABI: bump SOCKIT_VERSION_MAJOR instead.
symbols: $(BUILD)/$(SO_FILE)
	dpkg-gensymbols -plibsockit0 -v$(VERSION) -e$(BUILD)/$(SO_FILE) -c0 -Odebian/libsockit0.symbols

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
fuzz: $(BUILD)/gen/localedir.h
	@mkdir -p build/fuzz-lf
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	    clang -std=c11 -D_GNU_SOURCE -g -O1 -Iinclude -Ilib -Isrc -I$(BUILD)/gen $(NGHTTP2_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	        -o build/fuzz-lf/$$n $$f $(LIB_SRC) $(FUZZ_CLI_SRC) -pthread $(LIBS) || exit 1; \
	    mkdir -p build/fuzz-lf/corpus-$$n; \
	    build/fuzz-lf/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	        build/fuzz-lf/corpus-$$n fuzz/corpus/$$n || exit 1; done

# Static analysis with the build's own flags (docs/testing.md, "Static analysis").
lint: $(BUILD)/gen/localedir.h
	scripts/deps.sh lint
	LINT_FLAGS='$(filter-out -MMD -MP -Werror,$(SK_CPPFLAGS) $(CPPFLAGS) $(SK_CFLAGS) $(CFLAGS))' scripts/lint.sh

# N minutes of mixed load on one server (docs/testing.md, "Soak"); not part of `make test`.
soak: MINUTES ?= 2
soak:
	scripts/deps.sh soak
	$(MAKE) all
	SOCKIT_BIN=$(abspath $(BUILD)/sockit) /usr/bin/python3 tests/soak/soak.py --minutes $(MINUTES)

# Several hosts behind HAProxy and nginx, as network namespaces (tests/cluster,
# docs/deploy.md; root). About 35 s; not part of `make test`. SOCKIT_CLUSTER_OUT=FILE
# also writes the figures there.
.PHONY: test-cluster
test-cluster: all
	SOCKIT_BIN=$(abspath $(BUILD)/sockit) $(PYTEST) -s -q -p no:cacheprovider tests/cluster

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

-include $(LIB_OBJ:.o=.d) $(PIC_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)
