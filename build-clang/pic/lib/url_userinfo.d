build-clang/pic/lib/url_userinfo.o: lib/url_userinfo.c lib/chars_int.h \
  include/sockit/err.h include/sockit/url.h include/sockit/addr.h

lib/chars_int.h:

include/sockit/err.h:

include/sockit/url.h:

include/sockit/addr.h:
