build-clang/obj/tests/unit/test_metrics_text.o: \
  tests/unit/test_metrics_text.c tests/unit/../../src/greet.c \
  tests/unit/../../src/greeting.h include/sockit/framing.h \
  tests/unit/../../src/greet.h include/sockit.h include/sockit/version.h \
  include/sockit/addr.h include/sockit/buf.h include/sockit/err.h \
  include/sockit/log.h include/sockit/loop.h include/sockit/scope.h \
  include/sockit/sd.h include/sockit/proxy.h include/sockit/server.h \
  include/sockit/stream.h include/sockit/transport.h \
  include/sockit/fetch.h include/sockit/http.h include/sockit/netrc.h \
  include/sockit/outfile.h include/sockit/url.h include/sockit/hist.h \
  tests/unit/../../src/metrics_text.c \
  tests/unit/../../src/metrics_text.h lib/alloc_int.h lib/server_int.h \
  lib/counter_int.h lib/stream_int.h

tests/unit/../../src/greet.c:

tests/unit/../../src/greeting.h:

include/sockit/framing.h:

tests/unit/../../src/greet.h:

include/sockit.h:

include/sockit/version.h:

include/sockit/addr.h:

include/sockit/buf.h:

include/sockit/err.h:

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

tests/unit/../../src/metrics_text.c:

tests/unit/../../src/metrics_text.h:

lib/alloc_int.h:

lib/server_int.h:

lib/counter_int.h:

lib/stream_int.h:
