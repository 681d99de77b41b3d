build-clang/pic/lib/http_resp.o: lib/http_resp.c lib/chars_int.h \
  include/sockit/http.h include/sockit/err.h

lib/chars_int.h:

include/sockit/http.h:

include/sockit/err.h:
