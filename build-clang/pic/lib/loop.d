build-clang/pic/lib/loop.o: lib/loop.c lib/alloc_int.h lib/internal.h \
  include/sockit/loop.h include/sockit/err.h

lib/alloc_int.h:

lib/internal.h:

include/sockit/loop.h:

include/sockit/err.h:
