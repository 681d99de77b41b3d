build-clang/obj/tests/unit/test_server_start.o: \
  tests/unit/test_server_start.c lib/alloc_int.h lib/server_int.h \
  lib/counter_int.h include/sockit/buf.h include/sockit/loop.h \
  include/sockit/server.h include/sockit/addr.h include/sockit/framing.h \
  include/sockit/proxy.h include/sockit/stream.h \
  include/sockit/transport.h lib/stream_int.h include/sockit.h \
  include/sockit/version.h include/sockit/err.h include/sockit/log.h \
  include/sockit/scope.h include/sockit/sd.h include/sockit/fetch.h \
  include/sockit/http.h include/sockit/netrc.h include/sockit/outfile.h \
  include/sockit/url.h include/sockit/hist.h

lib/alloc_int.h:

lib/server_int.h:

lib/counter_int.h:

include/sockit/buf.h:

include/sockit/loop.h:

include/sockit/server.h:

include/sockit/addr.h:

include/sockit/framing.h:

include/sockit/proxy.h:

include/sockit/stream.h:

include/sockit/transport.h:

lib/stream_int.h:

include/sockit.h:

include/sockit/version.h:

include/sockit/err.h:

include/sockit/log.h:

include/sockit/scope.h:

include/sockit/sd.h:

include/sockit/fetch.h:

include/sockit/http.h:

include/sockit/netrc.h:

include/sockit/outfile.h:

include/sockit/url.h:

include/sockit/hist.h:
