build-clang/pic/lib/sd.o: lib/sd.c lib/sd_int.h include/sockit/sd.h \
  include/sockit/err.h include/sockit/scope.h

lib/sd_int.h:

include/sockit/sd.h:

include/sockit/err.h:

include/sockit/scope.h:
