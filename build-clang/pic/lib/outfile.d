build-clang/pic/lib/outfile.o: lib/outfile.c include/sockit/err.h \
  include/sockit/outfile.h include/sockit/scope.h

include/sockit/err.h:

include/sockit/outfile.h:

include/sockit/scope.h:
