build-clang/obj/lib/fetch_decode.o: lib/fetch_decode.c lib/alloc_int.h \
  lib/decode_int.h lib/fetch_int.h include/sockit.h \
  include/sockit/version.h include/sockit/addr.h include/sockit/buf.h \
  include/sockit/err.h include/sockit/framing.h include/sockit/log.h \
  include/sockit/loop.h include/sockit/scope.h include/sockit/sd.h \
  include/sockit/proxy.h include/sockit/server.h include/sockit/stream.h \
  include/sockit/transport.h include/sockit/fetch.h \
  include/sockit/http.h include/sockit/netrc.h include/sockit/outfile.h \
  include/sockit/url.h include/sockit/hist.h lib/stream_int.h \
  lib/counter_int.h

lib/alloc_int.h:

lib/decode_int.h:

lib/fetch_int.h:

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

lib/stream_int.h:

lib/counter_int.h:
