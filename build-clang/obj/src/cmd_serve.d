build-clang/obj/src/cmd_serve.o: src/cmd_serve.c src/cli.h src/greet.h \
  include/sockit.h include/sockit/version.h include/sockit/addr.h \
  include/sockit/buf.h include/sockit/err.h include/sockit/framing.h \
  include/sockit/log.h include/sockit/loop.h include/sockit/scope.h \
  include/sockit/sd.h include/sockit/proxy.h include/sockit/server.h \
  include/sockit/stream.h include/sockit/transport.h \
  include/sockit/fetch.h include/sockit/http.h include/sockit/netrc.h \
  include/sockit/outfile.h include/sockit/url.h include/sockit/hist.h \
  src/greeting.h src/i18n.h src/serve_log.h src/serve_sd.h \
  src/serve_metrics.h

src/cli.h:

src/greet.h:

include/sockit.h:

include/sockit/version.h:

include/sockit/addr.h:

include/sockit/buf.h:

include/sockit/err.h:

include/sockit/framing.h:

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

src/greeting.h:

src/i18n.h:

src/serve_log.h:

src/serve_sd.h:

src/serve_metrics.h:
