build-clang/obj/lib/hist.o: lib/hist.c lib/alloc_int.h lib/hist_int.h \
  include/sockit/err.h include/sockit/hist.h

lib/alloc_int.h:

lib/hist_int.h:

include/sockit/err.h:

include/sockit/hist.h:
