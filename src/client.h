/* sockit client: options shared by the TCP (cmd_client.c) and UDP
 * (client_udp.c) halves. */
#ifndef SOCKIT_CLIENT_H
#define SOCKIT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "sockit.h"

struct client_opts {
    struct sk_endpoint ep;
    enum sk_framing framing;
    int timeout_ms;
    bool udp;
    char **msgs;
    int nmsgs;
};

/* Quotes the first bytes of p[0..n) for a one-line error message (see
 * reply_show); returns buf. */
#define CLIENT_QUOTE_MAX 200
#define CLIENT_QUOTE_CAP (4 * CLIENT_QUOTE_MAX + 4)
const char *client_quote(const char *p, size_t n, char buf[CLIENT_QUOTE_CAP]);

/* Prints one reply (or greeting) and a newline on stdout; false, with the
 * message, when standard output fails (the run stops: replies would be lost). */
bool client_print(const char *p, size_t n);

/* After the messages were read from stdin: false, after saying why, when
 * reading failed (rather than ended). */
bool client_stdin_ok(void);

/* Sends each message as a datagram and prints each reply. */
int client_udp(const struct client_opts *o);

#endif
