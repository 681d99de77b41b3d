/* libsockit: the public API, one include for all of it.
 *
 * Conventions (see docs/library.md): functions return 0 or a positive count
 * on success and a negative code (include/sockit/err.h) on failure; the
 * library never prints or exits; every object has one owner and one release
 * function that accepts NULL. Every header has its own extern "C" guard, so
 * C++ includes this one as it is. */
#ifndef SOCKIT_H
#define SOCKIT_H

#include "sockit/version.h"

#include "sockit/addr.h"
#include "sockit/buf.h"
#include "sockit/err.h"
#include "sockit/framing.h"
#include "sockit/log.h"
#include "sockit/loop.h"
#include "sockit/scope.h"
#include "sockit/sd.h"
#include "sockit/proxy.h"
#include "sockit/server.h"
#include "sockit/stream.h"
/* fetch: */
#include "sockit/fetch.h"
#include "sockit/http.h"
#include "sockit/netrc.h"
#include "sockit/outfile.h"
#include "sockit/transport.h"
#include "sockit/url.h"
/* bench: */
#include "sockit/hist.h"

#endif
