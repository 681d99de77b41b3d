/* sockit client: options shared by the TCP (cmd_client.c) and UDP
 * (client_udp.c) halves. */
#ifndef SOCKIT_CLIENT_H
#define SOCKIT_CLIENT_H

#include <stdbool.h>

#include "sockit.h"

struct client_opts {
    struct sk_endpoint ep;
    enum sk_framing framing;
    int timeout_ms;
    bool udp;
    char **msgs;
    int nmsgs;
};

/* Prints one reply (or greeting) and a newline on stdout. */
void client_print(const char *p, size_t n);

/* Sends each message as a datagram and prints each reply. */
int client_udp(const struct client_opts *o);

#endif
