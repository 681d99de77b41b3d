build-clang/obj/tests/unit/test_bench_merge.o: \
  tests/unit/test_bench_merge.c tests/unit/../../src/bench_json.c \
  tests/unit/../../src/bench_json.h tests/unit/../../src/bench_merge.c \
  tests/unit/../../src/bench_merge.h tests/unit/../../src/bench.h \
  tests/unit/../../src/cli_tls.h include/sockit.h \
  include/sockit/version.h include/sockit/addr.h include/sockit/buf.h \
  include/sockit/err.h include/sockit/framing.h include/sockit/log.h \
  include/sockit/loop.h include/sockit/scope.h include/sockit/sd.h \
  include/sockit/proxy.h include/sockit/server.h include/sockit/stream.h \
  include/sockit/transport.h include/sockit/fetch.h \
  include/sockit/http.h include/sockit/netrc.h include/sockit/outfile.h \
  include/sockit/url.h include/sockit/hist.h tests/unit/../../src/cli.h \
  tests/unit/../../src/i18n.h lib/hist_int.h \
  tests/unit/../../src/bench_report.c tests/unit/../../src/cli.c

tests/unit/../../src/bench_json.c:

tests/unit/../../src/bench_json.h:

tests/unit/../../src/bench_merge.c:

tests/unit/../../src/bench_merge.h:

tests/unit/../../src/bench.h:

tests/unit/../../src/cli_tls.h:

include/sockit.h:

include/sockit/version.h:

include/sockit/addr.h:

include/sockit/buf.h:

include/sockit/err.h:

include/sockit/framing.h:

include/sockit/log.h:

include/sockit/loop.h:

include/sockit/scope.h:

include/sockit/sd.h:

include/sockit/proxy.h:

include/sockit/server.h:

include/sockit/stream.h:

include/sockit/transport.h:

include/sockit/fetch.h:

include/sockit/http.h:

include/sockit/netrc.h:

include/sockit/outfile.h:

include/sockit/url.h:

include/sockit/hist.h:

tests/unit/../../src/cli.h:

tests/unit/../../src/i18n.h:

lib/hist_int.h:

tests/unit/../../src/bench_report.c:

tests/unit/../../src/cli.c:
