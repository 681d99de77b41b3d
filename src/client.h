/* sockit client: what the command (cmd_client.c), its TCP half on the
 * library's stream (client_tcp.c) and its UDP half (client_udp.c) share:
 * the options, the messages in and the replies out (client_io.c), and the
 * one wait on the event loop (client_wait.c). */
#ifndef SOCKIT_CLIENT_H
#define SOCKIT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli_tls.h"
#include "sockit.h"

struct client_opts {
    struct sk_endpoint ep;
    struct cli_tls tls; /* --tls and its options (TCP only) */
    enum sk_framing framing;
    int timeout_ms;
    bool udp;
    char **msgs;
    int nmsgs;
};

/* ---- messages in, replies out (client_io.c) ---- */

/* The messages to send: the command line's, or else stdin's lines. */
struct client_input {
    char **msgs;
    int nmsgs, next;
    char *line; /* getline's */
    size_t cap;
};
void client_input_init(struct client_input *in, const struct client_opts *o);
static inline bool client_input_is_stdin(const struct client_input *in)
{
    return in->nmsgs == 0;
}
/* The next message into *msg, *n (a line of stdin without its "\n";
 * valid until the next call): 1; 0 at the end; -1 when reading stdin
 * failed, after saying so. */
int client_input_next(struct client_input *in, const char **msg, size_t *n);
void client_input_free(struct client_input *in);

/* Quotes the first bytes of p[0..n) for a one-line error message (see
 * reply_show); returns buf. */
#define CLIENT_QUOTE_MAX 200
#define CLIENT_QUOTE_CAP (4 * CLIENT_QUOTE_MAX + 4)
const char *client_quote(const char *p, size_t n, char buf[CLIENT_QUOTE_CAP]);

/* Prints one reply (or greeting) and a newline on stdout; false, with the
 * message, when standard output fails (the run stops: replies would be lost). */
bool client_print(const char *p, size_t n);

/* ---- the wait (client_wait.c) ---- */

/* The event loop both halves run on, with the one timer that bounds each
 * step: client_wait_begin(deadline), start the step (its callbacks may end
 * it at once), client_wait_run. Deadlines are on the sk_now_ms() clock. */
struct client_wait {
    struct sk_loop *loop;
    struct sk_timer timer;
    uint64_t deadline, early; /* early: 0, or when the step ends with early_rc */
    int early_rc;
    int rc;
    bool done, running;
};
/* Creates the loop: 0 or a negative code. */
int client_wait_init(struct client_wait *w);
/* Frees the loop (every handle on it stopped first). */
void client_wait_fini(struct client_wait *w);
void client_wait_begin(struct client_wait *w, uint64_t deadline);
/* Ends the step with rc (the first call counts). Any time, also before
 * client_wait_run. */
void client_wait_done(struct client_wait *w, int rc);
/* Ends the step with rc at `until` unless it ended before (nothing when
 * the deadline comes first, or an earlier end is set); until 0 takes
 * that back. */
void client_wait_early(struct client_wait *w, uint64_t until, int rc);
/* Runs the loop until the step ends: its rc, SK_ETIMEDOUT at the
 * deadline, or the loop's error. */
int client_wait_run(struct client_wait *w);

/* ---- the halves ---- */

/* Greeting, then each message and its reply over TCP; returns the exit status. */
int client_tcp(const struct client_opts *o);
/* Sends each message as a datagram and prints each reply. */
int client_udp(const struct client_opts *o);

#endif
