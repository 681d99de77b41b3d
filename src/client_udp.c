/* sockit client --udp: send each message as one datagram and wait for its
 * reply, re-sending a bounded number of times (UDP may lose datagrams). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"

#define UDP_ATTEMPTS 3
#define UDP_REPLY_MAX 65536

/* Waits up to ms for a datagram; returns its length, SK_ETIMEDOUT or -errno. */
static ssize_t recv_within(int fd, char *buf, size_t cap, int ms)
{
    uint64_t deadline = sk_now_ms() + (uint64_t)ms;
    for (;;) {
        uint64_t now = sk_now_ms();
        if (now >= deadline)
            return SK_ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return SK_ERR(errno);
        if (n == 0)
            return SK_ETIMEDOUT;
        ssize_t k = recv(fd, buf, cap, MSG_DONTWAIT);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return k < 0 ? SK_ERR(errno) : k;
    }
}

static int exchange_udp(int fd, const struct client_opts *o, const char *msg, size_t n,
                        unsigned long idx, char *reply)
{
    SK_AUTO_FREE char *expect = malloc(sk_reply_len(SK_FRAMING_CHUNK, n));
    if (!expect) {
        cli_error("client: out of memory");
        return EXIT_FAIL;
    }
    size_t elen = sk_reply_write(SK_FRAMING_CHUNK, msg, n, expect);
    int per_try = o->timeout_ms / UDP_ATTEMPTS > 0 ? o->timeout_ms / UDP_ATTEMPTS : 1;
    for (int attempt = 1; attempt <= UDP_ATTEMPTS; attempt++) {
        if (send(fd, msg, n, 0) < 0) {
            cli_error("client: sending message %lu: %s", idx, strerror(errno));
            return EXIT_FAIL;
        }
        for (;;) {
            ssize_t k = recv_within(fd, reply, UDP_REPLY_MAX, per_try);
            if (k == SK_ETIMEDOUT)
                break;
            if (k < 0) { /* e.g. ECONNREFUSED: an ICMP port unreachable came back */
                cli_error("client: message %lu: %s", idx, sk_strerror((int)k));
                return EXIT_FAIL;
            }
            if ((size_t)k == elen && memcmp(reply, expect, elen) == 0) {
                fwrite(reply, 1, (size_t)k, stdout);
                fputc('\n', stdout);
                fflush(stdout);
                return EXIT_OK;
            }
            if (k >= 6 && memcmp(reply, "Error:", 6) == 0) {
                cli_error("client: message %lu: server answered: %.*s", idx,
                          (int)(k > 200 ? 200 : k), reply);
                return EXIT_FAIL;
            }
            /* A late reply to an earlier message: not ours, keep waiting. */
        }
        if (attempt < UDP_ATTEMPTS)
            cli_error("client: no reply to message %lu within %d ms, resending "
                      "(UDP may lose datagrams; attempt %d of %d)",
                      idx, per_try, attempt + 1, UDP_ATTEMPTS);
    }
    cli_error("client: no reply to message %lu after %d attempts (UDP may lose datagrams)",
              idx, UDP_ATTEMPTS);
    return EXIT_FAIL;
}

int client_udp(const struct client_opts *o)
{
    SK_AUTO_CLOSE int fd = sk_connect(&o->ep, SOCK_DGRAM, o->timeout_ms, false);
    if (fd < 0) {
        cli_error("client: cannot reach %s:%u: %s", o->ep.host, o->ep.port, sk_strerror(fd));
        return EXIT_FAIL;
    }
    SK_AUTO_FREE char *reply = malloc(UDP_REPLY_MAX);
    if (!reply) {
        cli_error("client: out of memory");
        return EXIT_FAIL;
    }
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
    }
    if (rc == EXIT_OK && !cli_stdout_ok())
        rc = EXIT_FAIL;
    return rc;
}
