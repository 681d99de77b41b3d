build-clang/obj/src/client_udp.o: src/client_udp.c src/greeting.h \
  include/sockit/framing.h src/cli.h src/i18n.h src/client.h \
  src/cli_tls.h include/sockit.h include/sockit/version.h \
  include/sockit/addr.h include/sockit/buf.h include/sockit/err.h \
  include/sockit/log.h include/sockit/loop.h include/sockit/scope.h \
  include/sockit/sd.h include/sockit/proxy.h include/sockit/server.h \
  include/sockit/stream.h include/sockit/transport.h \
  include/sockit/fetch.h include/sockit/http.h include/sockit/netrc.h \
  include/sockit/outfile.h include/sockit/url.h include/sockit/hist.h \
  src/reply.h

src/greeting.h:

include/sockit/framing.h:

src/cli.h:

src/i18n.h:

src/client.h:

src/cli_tls.h:

include/sockit.h:

include/sockit/version.h:

include/sockit/addr.h:

include/sockit/buf.h:

include/sockit/err.h:

include/sockit/log.h:

include/sockit/loop.h:

include/sockit/scope.h:

include/sockit/sd.h:

include/sockit/proxy.h:

include/sockit/server.h:

include/sockit/stream.h:

include/sockit/transport.h:

include/sockit/fetch.h:

include/sockit/http.h:

include/sockit/netrc.h:

include/sockit/outfile.h:

include/sockit/url.h:

include/sockit/hist.h:

src/reply.h:
