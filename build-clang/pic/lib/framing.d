build-clang/pic/lib/framing.o: lib/framing.c include/sockit/err.h \
  include/sockit/framing.h

include/sockit/err.h:

include/sockit/framing.h:
