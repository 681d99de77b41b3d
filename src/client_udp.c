/* sockit client --udp: send each message as one datagram and wait for its
 * reply, re-sending a bounded number of times (UDP may lose datagrams)
 * within one deadline per message. The socket is an sk_io on the client's
 * loop; each attempt is a step of client_wait. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "greeting.h"
#include "cli.h"
#include "i18n.h"
#include "client.h"
#include "reply.h"

#define UDP_ATTEMPTS 3
#define UDP_REPLY_MAX 65536
/* Datagrams read per readiness event: a flood of them cannot keep the
 * deadline's timer from its turn. */
#define DATAGRAMS_PER_EVENT 16

struct udp_client {
    struct client_wait w;
    struct sk_io io;
    int fd;
    /* The exchange under way. */
    const char *expect;
    size_t elen;
    unsigned long idx;
    unsigned long wrong; /* datagrams that were not its reply */
    char last_wrong[CLIENT_QUOTE_CAP];
    int status; /* its exit status, once it ended */
};

static char reply[UDP_REPLY_MAX]; /* one client per process */

static void finish(struct udp_client *u, int status)
{
    u->status = status;
    client_wait_done(&u->w, 0);
}

/* One datagram of k bytes (more than UDP_REPLY_MAX: cut) in reply. */
static void judge(struct udp_client *u, size_t k)
{
    size_t len = k > UDP_REPLY_MAX ? UDP_REPLY_MAX : k;
    struct reply_scan r;
    if (k <= UDP_REPLY_MAX &&
        reply_scan(SK_FRAMING_CHUNK, u->expect, u->elen, reply, len, &r) == REPLY_OK) {
        finish(u, client_print(reply, len) ? EXIT_OK : EXIT_FAIL);
        return;
    }
    if (len >= 6 && memcmp(reply, "Error:", 6) == 0) {
        cli_error("message %lu: server answered: \"%s\"", u->idx,
                  client_quote(reply, len, u->last_wrong));
        finish(u, EXIT_FAIL);
        return;
    }
    /* Maybe a late reply to an earlier message: keep waiting. */
    u->wrong++;
    client_quote(reply, len, u->last_wrong);
}

static void on_datagram(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    struct udp_client *u = SK_CONTAINER_OF(io, struct udp_client, io);
    for (int i = 0; i < DATAGRAMS_PER_EVENT && !u->w.done; i++) {
        ssize_t k = recv(io->fd, reply, UDP_REPLY_MAX, MSG_DONTWAIT | MSG_TRUNC);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k < 0) { /* e.g. ECONNREFUSED: an ICMP port unreachable came back */
            int rc = SK_ERR(errno);
            cli_error("message %lu: %s", u->idx, cli_strerror(rc));
            finish(u, cli_exit_status(rc));
            return;
        }
        judge(u, (size_t)k);
    }
}

/* --timeout bounds the whole exchange, every attempt included: a server
 * that keeps sending datagrams that are not the reply cannot hold us. */
static int exchange_attempts(struct udp_client *u, const struct client_opts *o, const char *msg,
                             size_t n)
{
    uint64_t start = sk_now_ms();
    for (int attempt = 1; attempt <= UDP_ATTEMPTS; attempt++) {
        if (send(u->fd, msg, n, 0) < 0) {
            int e = errno; /* ECONNREFUSED: an earlier datagram's ICMP came back */
            cli_error("sending message %lu: %s", u->idx, strerror(e));
            return cli_exit_status(SK_ERR(e));
        }
        client_wait_begin(&u->w, start + (uint64_t)o->timeout_ms * (unsigned)attempt / UDP_ATTEMPTS);
        int rc = client_wait_run(&u->w);
        if (rc == 0)
            return u->status;
        if (rc != SK_ETIMEDOUT) {
            cli_error("message %lu: %s", u->idx, cli_strerror(rc));
            return cli_exit_status(rc);
        }
        if (attempt < UDP_ATTEMPTS)
            cli_error("no reply to message %lu yet, resending "
                      "(UDP may lose datagrams; attempt %d of %d)",
                      u->idx, attempt + 1, UDP_ATTEMPTS);
    }
    if (u->wrong) { /* wrong replies only: as over TCP, another protocol speaks */
        cli_error(ngettext("no reply to message %lu within %d ms: %lu datagram came that was "
                           "not its reply (last: \"%s\")",
                           "no reply to message %lu within %d ms: %lu datagrams came that were "
                           "not its reply (last: \"%s\")", u->wrong),
                  u->idx, o->timeout_ms, u->wrong, u->last_wrong);
        return EXIT_PROTO;
    }
    cli_error("no reply to message %lu after %d attempts in %d ms (UDP may lose "
              "datagrams)", u->idx, UDP_ATTEMPTS, o->timeout_ms);
    return EXIT_TIMEOUT;
}

/* u->expect lives for one exchange: it is freed here, on every path. */
static int exchange_udp(struct udp_client *u, const struct client_opts *o, const char *msg,
                        size_t n)
{
    char *expect = malloc(greeting_reply_len(SK_FRAMING_CHUNK, n));
    if (!expect) {
        cli_error("out of memory");
        return EXIT_FAIL;
    }
    u->expect = expect;
    u->elen = greeting_reply_write(SK_FRAMING_CHUNK, msg, n, expect);
    u->wrong = 0;
    int rc = exchange_attempts(u, o, msg, n);
    u->expect = NULL;
    free(expect);
    return rc;
}

static void udp_release(struct udp_client *u)
{
    if (u->w.loop)
        sk_io_stop(u->w.loop, &u->io);
    sk_closep(&u->fd);
    client_wait_fini(&u->w);
}

int client_udp(const struct client_opts *o)
{
    SK_AUTO(udp_release) struct udp_client u = {.fd = -1};
    int rc = client_wait_init(&u.w);
    if (rc < 0) {
        cli_error("cannot start the event loop: %s", cli_strerror(rc));
        return EXIT_FAIL;
    }
    u.fd = sk_connect(&o->ep, SOCK_DGRAM, o->timeout_ms, false);
    rc = u.fd < 0 ? u.fd : sk_io_start(u.w.loop, &u.io, u.fd, SK_READ, on_datagram);
    if (rc < 0) {
        cli_error("cannot reach %s:%u: %s", o->ep.host, o->ep.port, cli_strerror(rc));
        return cli_exit_status(rc);
    }
    SK_AUTO(client_input_free) struct client_input in;
    client_input_init(&in, o);
    const char *msg;
    size_t n;
    int more;
    while ((more = client_input_next(&in, &msg, &n)) > 0) {
        u.idx++;
        if ((rc = exchange_udp(&u, o, msg, n)) != EXIT_OK)
            return rc;
    }
    if (more < 0 || !cli_stdout_ok())
        return EXIT_FAIL;
    return EXIT_OK;
}
