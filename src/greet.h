/* The greeting protocol of `sockit serve` (docs/protocol.md), as a user of
 * the library's server engine: "Welcome!" on connect, "Hello, M!" for each
 * message M, "exit" ends the session; over UDP each datagram M gets
 * "Hello, M!". */
#ifndef SOCKIT_GREET_H
#define SOCKIT_GREET_H

#include "sockit.h"

/* Fills cfg->proto (and the datagram headroom) for the greeting protocol
 * in cfg->framing. */
void greet_setup(struct sk_server_config *cfg);
/* A close reason as serve names it (log lines, metrics): the engine's
 * names, but the protocol's own end is its "exit". */
const char *greet_close_reason(enum sk_close_reason why);

#endif
