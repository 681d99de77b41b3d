build-clang/obj/lib/proxy.o: lib/proxy.c include/sockit/err.h \
  include/sockit/proxy.h

include/sockit/err.h:

include/sockit/proxy.h:
