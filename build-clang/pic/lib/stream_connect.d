build-clang/pic/lib/stream_connect.o: lib/stream_connect.c lib/addr_int.h \
  lib/alloc_int.h include/sockit/err.h lib/stream_int.h \
  lib/counter_int.h include/sockit/stream.h include/sockit/buf.h \
  include/sockit/loop.h

lib/addr_int.h:

lib/alloc_int.h:

include/sockit/err.h:

lib/stream_int.h:

lib/counter_int.h:

include/sockit/stream.h:

include/sockit/buf.h:

include/sockit/loop.h:
