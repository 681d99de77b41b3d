/* sockit serve under systemd: the sockets it passes (socket activation)
 * become the server's inherited sockets, and the service manager hears when
 * serve is ready and when it stops (Type=notify). */
#ifndef SOCKIT_SERVE_SD_H
#define SOCKIT_SERVE_SD_H

#include <stdbool.h>
#include <stddef.h>

#include "serve_log.h"
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

/* The description of server socket i when it was passed (for its
 * listening line's fd= and name=); NULL when serve bound it. */
const struct sk_sd_socket *serve_sd_passed(const struct serve_sd *sd, size_t i);

/* Sends state ("READY=1", "STOPPING=1") and the operator's one-line status
 * text to NOTIFY_SOCKET, if set; the first failure is logged, serving goes on. */
void serve_sd_notify(struct serve_sd *sd, const struct serve_log *sl, const char *state,
                     const char *status);

#endif
