build-clang/pic/lib/log.o: lib/log.c lib/alloc_int.h include/sockit/err.h \
  include/sockit/log.h include/sockit/loop.h

lib/alloc_int.h:

include/sockit/err.h:

include/sockit/log.h:

include/sockit/loop.h:
