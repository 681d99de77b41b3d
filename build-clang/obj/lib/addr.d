build-clang/obj/lib/addr.o: lib/addr.c lib/addr_int.h \
  include/sockit/addr.h include/sockit/err.h include/sockit/loop.h \
  include/sockit/scope.h

lib/addr_int.h:

include/sockit/addr.h:

include/sockit/err.h:

include/sockit/loop.h:

include/sockit/scope.h:
