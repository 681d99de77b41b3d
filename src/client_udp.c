/* sockit client --udp: send each message as one datagram and wait for its
 * reply, re-sending a bounded number of times (UDP may lose datagrams)
 * within one deadline per message. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "reply.h"

#define UDP_ATTEMPTS 3
#define UDP_REPLY_MAX 65536

/* Waits for a datagram until the deadline; returns its length,
 * SK_ETIMEDOUT or a negative code. */
static ssize_t recv_until(int fd, char *buf, size_t cap, uint64_t deadline)
{
    for (;;) {
        uint64_t now = sk_now_ms();
        if (now >= deadline)
            return SK_ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n < 0 && errno != EINTR)
            return SK_ERR(errno);
        if (n <= 0)
            continue;
        ssize_t k = recv(fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return k < 0 ? SK_ERR(errno) : k;
    }
}

/* --timeout bounds the whole exchange, every attempt included: a server
 * that keeps sending datagrams that are not the reply cannot hold us. */
static int exchange_udp(int fd, const struct client_opts *o, const char *msg, size_t n,
                        unsigned long idx, char *reply)
{
    SK_AUTO_FREE char *expect = malloc(sk_reply_len(SK_FRAMING_CHUNK, n));
    if (!expect) {
        cli_error("out of memory");
        return EXIT_FAIL;
    }
    size_t elen = sk_reply_write(SK_FRAMING_CHUNK, msg, n, expect);
    uint64_t start = sk_now_ms();
    unsigned long wrong = 0;
    char last_wrong[CLIENT_QUOTE_CAP];
    for (int attempt = 1; attempt <= UDP_ATTEMPTS; attempt++) {
        if (send(fd, msg, n, 0) < 0) {
            int e = errno; /* ECONNREFUSED: an earlier datagram's ICMP came back */
            cli_error("sending message %lu: %s", idx, strerror(e));
            return cli_exit_status(SK_ERR(e));
        }
        uint64_t deadline = start + (uint64_t)o->timeout_ms * (unsigned)attempt / UDP_ATTEMPTS;
        for (;;) {
            ssize_t k = recv_until(fd, reply, UDP_REPLY_MAX, deadline);
            if (k == SK_ETIMEDOUT)
                break;
            if (k < 0) { /* e.g. ECONNREFUSED: an ICMP port unreachable came back */
                cli_error("message %lu: %s", idx, sk_strerror((int)k));
                return cli_exit_status((int)k);
            }
            size_t len = (size_t)k > UDP_REPLY_MAX ? UDP_REPLY_MAX : (size_t)k;
            struct reply_scan r;
            if ((size_t)k <= UDP_REPLY_MAX &&
                reply_scan(SK_FRAMING_CHUNK, expect, elen, reply, len, &r) == REPLY_OK) {
                return client_print(reply, len) ? EXIT_OK : EXIT_FAIL;
            }
            if (len >= 6 && memcmp(reply, "Error:", 6) == 0) {
                cli_error("message %lu: server answered: \"%s\"", idx,
                          client_quote(reply, len, last_wrong));
                return EXIT_FAIL;
            }
            /* Maybe a late reply to an earlier message: keep waiting. */
            wrong++;
            client_quote(reply, len, last_wrong);
        }
        if (attempt < UDP_ATTEMPTS)
            cli_error("no reply to message %lu yet, resending "
                      "(UDP may lose datagrams; attempt %d of %d)",
                      idx, attempt + 1, UDP_ATTEMPTS);
    }
    if (wrong) { /* wrong replies only: as over TCP, another protocol speaks */
        cli_error("no reply to message %lu within %d ms: %lu datagram%s that were not "
                  "its reply (last: \"%s\")", idx, o->timeout_ms, wrong,
                  wrong == 1 ? " came" : "s came", last_wrong);
        return EXIT_PROTO;
    }
    cli_error("no reply to message %lu after %d attempts in %d ms (UDP may lose "
              "datagrams)", idx, UDP_ATTEMPTS, o->timeout_ms);
    return EXIT_TIMEOUT;
}

int client_udp(const struct client_opts *o)
{
    SK_AUTO_CLOSE int fd = sk_connect(&o->ep, SOCK_DGRAM, o->timeout_ms, false);
    if (fd < 0) {
        cli_error("cannot reach %s:%u: %s", o->ep.host, o->ep.port, sk_strerror(fd));
        return cli_exit_status(fd);
    }
    static char reply[UDP_REPLY_MAX]; /* one client per process */
    int rc = EXIT_OK;
    unsigned long idx = 0;
    if (o->nmsgs > 0) {
        for (int i = 0; i < o->nmsgs && rc == EXIT_OK; i++)
            rc = exchange_udp(fd, o, o->msgs[i], strlen(o->msgs[i]), ++idx, reply);
    } else {
        SK_AUTO_FREE char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (rc == EXIT_OK && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n')
                n--;
            rc = exchange_udp(fd, o, line, (size_t)n, ++idx, reply);
        }
        if (rc == EXIT_OK && !client_stdin_ok())
            rc = EXIT_FAIL;
    }
    if (rc == EXIT_OK && !cli_stdout_ok())
        rc = EXIT_FAIL;
    return rc;
}
