/* sockit serve under systemd: the sockets it passes (socket activation)
 * become the server's inherited sockets, and the service manager hears when
 * serve is ready and when it stops (Type=notify). */
#ifndef SOCKIT_SERVE_SD_H
#define SOCKIT_SERVE_SD_H

#include <stdbool.h>
#include <stddef.h>

#include "sockit.h"

struct serve_sd {
    struct sk_sd_socket socks[SK_SERVER_MAX_LISTEN];
    size_t n;           /* sockets passed (0: not socket-activated) */
    bool notify_failed; /* a notification failed (logged once) */
};

/* Without --listen: takes the sockets passed to this process, if any, as
 * cfg->inherited. Returns 0 (also when none were passed), or, after one
 * error line, EXIT_FAIL (a malformed LISTEN_* environment, a passed fd
 * serve cannot use) or EXIT_USAGE (--udp or --reuseport with them). Call it
 * before any thread starts (it unsets LISTEN_*). */
int serve_sd_listen(struct sk_server_config *cfg, struct serve_sd *sd);

/* The fields the listening line of server socket i gains when it was
 * passed (" fd=3 name=greet"); "" otherwise. */
void serve_sd_fields(const struct serve_sd *sd, size_t i, char *buf, size_t len);

/* Sends state ("READY=1", "STOPPING=1") to NOTIFY_SOCKET, if set; the first
 * failure is logged, serving goes on. */
void serve_sd_notify(struct serve_sd *sd, struct sk_log *log, const char *state);

#endif
