build-clang/pic/lib/buf.o: lib/buf.c lib/alloc_int.h include/sockit/buf.h \
  include/sockit/err.h

lib/alloc_int.h:

include/sockit/buf.h:

include/sockit/err.h:
