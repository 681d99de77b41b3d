build-clang/pic/lib/loop_epoll.o: lib/loop_epoll.c lib/internal.h \
  include/sockit/loop.h include/sockit/err.h

lib/internal.h:

include/sockit/loop.h:

include/sockit/err.h:
