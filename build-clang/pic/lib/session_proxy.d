build-clang/pic/lib/session_proxy.o: lib/session_proxy.c lib/server_int.h \
  lib/counter_int.h include/sockit/buf.h include/sockit/loop.h \
  include/sockit/server.h include/sockit/addr.h include/sockit/framing.h \
  include/sockit/proxy.h include/sockit/stream.h \
  include/sockit/transport.h lib/stream_int.h

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
