build-clang/obj/lib/server.o: lib/server.c lib/alloc_int.h lib/internal.h \
  include/sockit/loop.h lib/server_int.h lib/counter_int.h \
  include/sockit/buf.h include/sockit/server.h include/sockit/addr.h \
  include/sockit/framing.h include/sockit/proxy.h \
  include/sockit/stream.h include/sockit/transport.h lib/stream_int.h \
  include/sockit/err.h lib/tls_int.h

lib/alloc_int.h:

lib/internal.h:

include/sockit/loop.h:

lib/server_int.h:

lib/counter_int.h:

include/sockit/buf.h:

include/sockit/server.h:

include/sockit/addr.h:

include/sockit/framing.h:

include/sockit/proxy.h:

include/sockit/stream.h:

include/sockit/transport.h:

lib/stream_int.h:

include/sockit/err.h:

lib/tls_int.h:
