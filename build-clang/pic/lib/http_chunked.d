build-clang/pic/lib/http_chunked.o: lib/http_chunked.c lib/chars_int.h \
  include/sockit/http.h include/sockit/err.h

lib/chars_int.h:

include/sockit/http.h:

include/sockit/err.h:
