build-clang/obj/lib/url.o: lib/url.c lib/chars_int.h include/sockit/err.h \
  include/sockit/url.h include/sockit/addr.h

lib/chars_int.h:

include/sockit/err.h:

include/sockit/url.h:

include/sockit/addr.h:
