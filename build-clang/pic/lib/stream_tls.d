build-clang/pic/lib/stream_tls.o: lib/stream_tls.c lib/alloc_int.h \
  include/sockit/err.h include/sockit/transport.h lib/stream_int.h \
  lib/counter_int.h include/sockit/stream.h include/sockit/buf.h \
  include/sockit/loop.h lib/tls_int.h

lib/alloc_int.h:

include/sockit/err.h:

include/sockit/transport.h:

lib/stream_int.h:

lib/counter_int.h:

include/sockit/stream.h:

include/sockit/buf.h:

include/sockit/loop.h:

lib/tls_int.h:
