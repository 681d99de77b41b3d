build-clang/pic/lib/version.o: lib/version.c include/sockit/version.h

include/sockit/version.h:
