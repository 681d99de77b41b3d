build-clang/pic/lib/err.o: lib/err.c include/sockit/err.h

include/sockit/err.h:
