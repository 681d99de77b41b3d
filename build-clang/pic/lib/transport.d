build-clang/pic/lib/transport.o: lib/transport.c lib/alloc_int.h \
  include/sockit/err.h include/sockit/loop.h include/sockit/scope.h \
  lib/transport_int.h include/sockit/transport.h

lib/alloc_int.h:

include/sockit/err.h:

include/sockit/loop.h:

include/sockit/scope.h:

lib/transport_int.h:

include/sockit/transport.h:
