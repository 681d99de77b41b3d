build-clang/pic/lib/tls_openssl.o: lib/tls_openssl.c lib/alloc_int.h \
  include/sockit/err.h lib/tls_int.h include/sockit/buf.h \
  include/sockit/transport.h lib/transport_int.h

lib/alloc_int.h:

include/sockit/err.h:

lib/tls_int.h:

include/sockit/buf.h:

include/sockit/transport.h:

lib/transport_int.h:
