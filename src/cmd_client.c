/* sockit client: talk to a greeting server (the seed's test program). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "sockit.h"

static const char client_help[] =
    "usage: sockit client HOST:PORT [--udp] [--framing chunk|line] [--timeout SEC]\n"
    "                     [MSG...]\n"
    "\n"
    "Connect to a greeting server, print its greeting, send each MSG and print\n"
    "each reply on its own line, then send \"exit\" and close. Without MSG, read\n"
    "messages from standard input, one per line, until end of input.\n"
    "In chunk framing an empty message cannot be sent: an empty MSG is an error\n"
    "and empty input lines are skipped. The message \"exit\" ends the session\n"
    "there: later messages are not sent.\n"
    "\n"
    "Options:\n"
    "  -u, --udp              send datagrams instead (no greeting; each reply is\n"
    "                         awaited, and re-sent for after a timeout)\n"
    "  -f, --framing MODE     chunk (default) or line: must match the server\n"
    "  -t, --timeout SEC      limit for the connect, for each reply, and for a send\n"
    "                         that makes no progress (default 10; fractions allowed)\n"
    "  -h, --help             this help\n"
    "\n"
    "Exit status: 0 when every message was answered; 1 when the connection failed\n"
    "(refused, timed out, closed early) or the server refused the session;\n"
    "2 on a bad command line.\n";

/* A connection plus the bytes received but not consumed yet. */
struct conn {
    int fd;
    int timeout_ms;
    struct sk_buf in;
};

#define REPLY_MAX (16u << 20) /* bound on one reply we are willing to hold */

/* Receives more bytes into c->in within the timeout. Returns the number of
 * bytes, 0 at end of stream, or a negative code. */
static int recv_more(struct conn *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n;
    while ((n = poll(&p, 1, c->timeout_ms)) < 0 && errno == EINTR)
        ;
    if (n < 0)
        return SK_ERR(errno);
    if (n == 0)
        return SK_ETIMEDOUT;
    char *dst = sk_buf_reserve(&c->in, 65536);
    if (!dst)
        return SK_ERR(ENOMEM);
    ssize_t k;
    while ((k = recv(c->fd, dst, 65536, 0)) < 0 && errno == EINTR)
        ;
    if (k < 0)
        return SK_ERR(errno);
    sk_buf_commit(&c->in, (size_t)k);
    return (int)k;
}

/* Reads one reply. Line framing: up to "\n". Chunk framing: what arrives,
 * continued while it is still a proper prefix of `expect` (TCP may split a
 * reply). On success *len is the reply's length at sk_buf_head(&c->in);
 * the caller consumes it. */
static int read_reply(struct conn *c, enum sk_framing f, const char *expect, size_t elen,
                      size_t *len)
{
    for (;;) {
        const char *h = sk_buf_head(&c->in);
        size_t have = sk_buf_size(&c->in);
        if (f == SK_FRAMING_LINE) {
            const char *nl = have ? memchr(h, '\n', have) : NULL;
            if (nl) {
                *len = (size_t)(nl - h) + 1;
                return 0;
            }
        } else if (have > 0 && (have >= elen || memcmp(h, expect, have) != 0)) {
            *len = have;
            return 0;
        }
        if (have > REPLY_MAX)
            return SK_ETOOBIG;
        int rc = recv_more(c);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return SK_ECLOSED;
    }
}

/* Prints one reply without its line terminator, then "\n". */
static void print_reply(const char *p, size_t n, enum sk_framing f)
{
    if (f == SK_FRAMING_LINE && n > 0 && p[n - 1] == '\n')
        n -= (n > 1 && p[n - 2] == '\r') ? 2 : 1;
    fwrite(p, 1, n, stdout);
    fputc('\n', stdout);
    fflush(stdout);
}

static int send_all(int fd, const char *p, size_t n, int flags)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL | flags);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return SK_ETIMEDOUT; /* SO_SNDTIMEO: the server stopped reading */
        if (k < 0)
            return SK_ERR(errno);
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int exchange(struct conn *c, const struct client_opts *o, const char *msg, size_t n,
                    unsigned long idx)
{
    /* In line framing the message and its "\n" leave in one segment. */
    bool line = o->framing == SK_FRAMING_LINE;
    int rc = send_all(c->fd, msg, n, line ? MSG_MORE : 0);
    if (rc == 0 && line)
        rc = send_all(c->fd, "\n", 1, 0);
    if (rc < 0) {
        cli_error("client: sending message %lu: %s", idx, sk_strerror(rc));
        return EXIT_FAIL;
    }
    SK_AUTO_FREE char *expect = malloc(sk_reply_len(SK_FRAMING_CHUNK, n));
    if (!expect) {
        cli_error("client: out of memory");
        return EXIT_FAIL;
    }
    size_t elen = sk_reply_write(SK_FRAMING_CHUNK, msg, n, expect);
    size_t len = 0;
    rc = read_reply(c, o->framing, expect, elen, &len);
    if (rc < 0) {
        cli_error("client: no reply to message %lu: %s", idx,
                  rc == SK_ECLOSED ? "connection closed by server" : sk_strerror(rc));
        return EXIT_FAIL;
    }
    /* Anything but "Hello, M!" (e.g. "Error: message too long" from a server
     * at its --max-line, just before it closes) is a failure, not a reply. */
    const char *h = sk_buf_head(&c->in);
    size_t body = len;
    if (o->framing == SK_FRAMING_LINE && body > 0 && h[body - 1] == '\n')
        body -= (body > 1 && h[body - 2] == '\r') ? 2 : 1;
    if (body != elen || memcmp(h, expect, elen) != 0) {
        size_t show = 0;
        while (show < body && show < 200 && h[show] != '\n' && h[show] != '\r')
            show++;
        cli_error("client: unexpected reply to message %lu: %.*s", idx, (int)show, h);
        return EXIT_FAIL;
    }
    print_reply(h, len, o->framing);
    sk_buf_consume(&c->in, len);
    return EXIT_OK;
}

static void conn_release(struct conn *c)
{
    sk_closep(&c->fd);
    sk_buf_free(&c->in);
}

static int run_tcp(const struct client_opts *o)
{
    SK_AUTO(conn_release) struct conn c = {.fd = -1, .timeout_ms = o->timeout_ms};
    c.fd = sk_connect(&o->ep, SOCK_STREAM, o->timeout_ms, false);
    if (c.fd < 0) {
        cli_error("client: cannot connect to %s:%u: %s", o->ep.host, o->ep.port,
                  sk_strerror(c.fd));
        return EXIT_FAIL;
    }
    /* --timeout also bounds a send: a server that stops reading must not
     * leave us blocked in send() for ever. */
    struct timeval tv = {.tv_sec = o->timeout_ms / 1000, .tv_usec = (o->timeout_ms % 1000) * 1000};
    setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t glen, len = 0;
    const char *greeting = sk_greeting(SK_FRAMING_CHUNK, &glen);
    int rc = read_reply(&c, o->framing, greeting, glen, &len);
    if (rc < 0) {
        cli_error("client: no greeting from server: %s",
                  rc == SK_ECLOSED ? "connection closed by server" : sk_strerror(rc));
        return EXIT_FAIL;
    }
    if (len < glen || memcmp(sk_buf_head(&c.in), greeting, glen) != 0) {
        /* e.g. "Error: server busy" from a server at its --max-conns */
        size_t show = len;
        const char *h = sk_buf_head(&c.in);
        while (show > 0 && (h[show - 1] == '\n' || h[show - 1] == '\r'))
            show--;
        cli_error("client: unexpected greeting: %.*s", (int)(show > 200 ? 200 : show), h);
        return EXIT_FAIL;
    }
    print_reply(sk_buf_head(&c.in), len, o->framing);
    sk_buf_consume(&c.in, len);

    unsigned long idx = 0;
    if (o->nmsgs > 0) {
        for (int i = 0; i < o->nmsgs; i++) {
            size_t n = strlen(o->msgs[i]);
            if (sk_is_exit(o->msgs[i], n))
                break; /* ends the session: no reply comes, so stop here */
            if ((rc = exchange(&c, o, o->msgs[i], n, ++idx)) != EXIT_OK)
                return rc;
        }
    } else {
        SK_AUTO_FREE char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n')
                n--;
            /* In line framing "\r\n" ends a message: the server drops the
             * "\r", and so must the reply we expect. */
            if (n > 0 && line[n - 1] == '\r' && o->framing == SK_FRAMING_LINE)
                n--;
            if (n == 0 && o->framing == SK_FRAMING_CHUNK)
                continue; /* nothing to send: see the check in cmd_client */
            if (sk_is_exit(line, (size_t)n))
                break; /* ends the session: no reply comes, so stop here */
            if ((rc = exchange(&c, o, line, (size_t)n, ++idx)) != EXIT_OK)
                return rc;
        }
    }
    const char *bye = o->framing == SK_FRAMING_LINE ? "exit\n" : "exit";
    send_all(c.fd, bye, strlen(bye), 0); /* the server may already be gone: fine */
    return cli_stdout_ok() ? EXIT_OK : EXIT_FAIL;
}

static const struct option client_options[] = {
    {"udp", no_argument, NULL, 'u'},
    {"framing", required_argument, NULL, 'f'},
    {"timeout", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cmd_client(int argc, char **argv)
{
    struct client_opts o = {.framing = SK_FRAMING_CHUNK, .timeout_ms = 10000};
    int c;
    optind = 1;
    /* GNU getopt permutes: options may come before or after HOST:PORT and the
     * messages; a message that starts with '-' goes after "--". */
    while ((c = getopt_long(argc, argv, "uf:t:h", client_options, NULL)) != -1) {
        switch (c) {
        case 'u': o.udp = true; break;
        case 'f':
            if (sk_framing_parse(optarg, &o.framing) < 0) {
                cli_error("--framing must be chunk or line: %s", optarg);
                return EXIT_USAGE;
            }
            break;
        case 't':
            if (!cli_parse_ms("--timeout", optarg, 0.001, 86400, &o.timeout_ms))
                return EXIT_USAGE;
            break;
        case 'h':
            fputs(client_help, stdout);
            return cli_stdout_ok() ? EXIT_OK : EXIT_FAIL;
        default:
            fprintf(stderr, "Try 'sockit client --help'.\n");
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("client: missing HOST:PORT (try 'sockit client --help')");
        return EXIT_USAGE;
    }
    if (sk_endpoint_parse(argv[optind], &o.ep) < 0 || o.ep.port == 0) {
        cli_error("client: expected HOST:PORT or [IPv6]:PORT: %s", argv[optind]);
        return EXIT_USAGE;
    }
    o.msgs = argv + optind + 1;
    o.nmsgs = argc - optind - 1;
    /* In chunk framing a message is what one write carries, and an empty
     * write carries nothing: the server would never see it, and we would
     * wait for a reply that cannot come. */
    for (int i = 0; i < o.nmsgs && !o.udp; i++) {
        if (o.msgs[i][0] == '\0' && o.framing == SK_FRAMING_CHUNK) {
            cli_error("client: message %d is empty: chunk framing cannot carry an empty "
                      "message (use --framing line)", i + 1);
            return EXIT_USAGE;
        }
        /* In line framing a newline ends a message: it cannot be inside one. */
        if (o.framing == SK_FRAMING_LINE && strchr(o.msgs[i], '\n')) {
            cli_error("client: message %d contains a newline, which line framing cannot "
                      "carry", i + 1);
            return EXIT_USAGE;
        }
    }
    return o.udp ? client_udp(&o) : run_tcp(&o);
}
