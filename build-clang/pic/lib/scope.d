build-clang/pic/lib/scope.o: lib/scope.c include/sockit/scope.h \
  include/sockit/err.h

include/sockit/scope.h:

include/sockit/err.h:
