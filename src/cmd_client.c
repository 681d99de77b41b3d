/* sockit client: talk to a greeting server (the seed's test program). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "reply.h"
#include "sockit.h"

static const char client_help[] =
    "usage: sockit client HOST:PORT [--udp] [--framing chunk|line] [--timeout DURATION]\n"
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
    "                         awaited, and re-sent twice within --timeout)\n"
    "  -f, --framing MODE     chunk (default) or line: must match the server\n"
    "  -t, --timeout DURATION deadline for the connect, for sending each message and\n"
    "                         for each whole reply (UDP: for each message, all its\n"
    "                         attempts); default 10 s; 500ms, 2m, 0.5 (seconds)\n"
    "  -h, --help             this help\n"
    "  -V, --version          print the version\n"
    "\n"
    "The greeting must be exactly \"Welcome!\" and each reply exactly \"Hello, MSG!\"\n"
    "(line framing: then \"\\n\"; a MSG ending in \"\\r\" is answered without it).\n"
    "\n"
    "A greeting in the other framing (\"Welcome!\\n\" from a line server, or\n"
    "\"Welcome!\" and no newline within 200 ms from a chunk server) is reported\n"
    "at once, not after --timeout.\n"
    "\n"
    "Exit status (the table of 'sockit --help'): 0 every message was answered;\n"
    "1 reset, closed early, or the server refused (\"Error: ...\"); 2 bad command\n"
    "line; 3 the host name did not resolve; 4 connection refused or unreachable;\n"
    "7 the server speaks another framing or protocol; 9 timeout.\n";

/* A connection plus the bytes received but not consumed yet. The socket is
 * non-blocking: every wait is a poll() up to a deadline. */
struct conn {
    int fd;
    int timeout_ms;
    struct sk_buf in;
};

/* Waits until fd is ready for events or the deadline passes. */
static int wait_until(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = sk_now_ms();
        if (now >= deadline)
            return SK_ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n < 0 && errno != EINTR)
            return SK_ERR(errno);
        if (n > 0)
            return 0;
    }
}

/* Receives more bytes into c->in before the deadline. Returns the number of
 * bytes, 0 at end of stream, or a negative code. */
static int recv_more(struct conn *c, uint64_t deadline)
{
    for (;;) {
        int rc = wait_until(c->fd, POLLIN, deadline);
        if (rc < 0)
            return rc;
        char *dst = sk_buf_reserve(&c->in, 65536);
        if (!dst)
            return SK_ERR(ENOMEM);
        ssize_t k = recv(c->fd, dst, 65536, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (k < 0)
            return SK_ERR(errno);
        sk_buf_commit(&c->in, (size_t)k);
        return (int)k;
    }
}

/* Reads one reply (see reply_scan) within --timeout: one deadline for the
 * whole reply, so a server that drips bytes cannot hold us for ever.
 * Returns SK_EPROTO when, in line framing, a chunk server's greeting came
 * and its "\n" does not (see reply_greeting_framing). */
static int read_reply(struct conn *c, enum sk_framing f, const char *expect, size_t elen,
                      bool greeting, struct reply_scan *r, enum reply_status *st)
{
    uint64_t deadline = sk_now_ms() + (uint64_t)c->timeout_ms;
    for (;;) {
        size_t have = sk_buf_size(&c->in);
        *st = reply_scan(f, expect, elen, sk_buf_head(&c->in), have, r);
        if (*st != REPLY_MORE)
            return 0;
        uint64_t until = deadline;
        if (greeting && f == SK_FRAMING_LINE &&
            reply_greeting_framing(sk_buf_head(&c->in), have) == SK_FRAMING_CHUNK) {
            uint64_t grace = sk_now_ms() + REPLY_FRAMING_GRACE_MS;
            until = grace < deadline ? grace : deadline;
        }
        if (have > elen + 2) {
            /* Longer than the reply and its "\r\n", still no end: it is
             * wrong already, so we hold no more than this of it. */
            *st = REPLY_BAD;
            r->len = r->body = have;
            return 0;
        }
        int rc = recv_more(c, until);
        if (rc == SK_ETIMEDOUT && until < deadline)
            return SK_EPROTO;
        if (rc < 0)
            return rc;
        if (rc == 0)
            return SK_ECLOSED;
    }
}

static const char *why(int rc)
{
    if (rc == SK_ECLOSED)
        return "connection closed by server";
    if (rc == SK_ERR(ECONNRESET))
        return "connection reset by server";
    return sk_strerror(rc);
}

const char *client_quote(const char *p, size_t n, char buf[CLIENT_QUOTE_CAP])
{
    reply_show(p, n <= CLIENT_QUOTE_MAX ? n : CLIENT_QUOTE_MAX + 1, buf, CLIENT_QUOTE_CAP);
    return buf;
}

/* Reports a reply (or greeting) that is not the expected one. Returns the
 * exit status: an "Error: ..." line is the server refusing (1); anything
 * else is another protocol speaking (7). */
static int report_wrong(const char *what, const char *p, size_t n)
{
    char q[CLIENT_QUOTE_CAP];
    cli_error("unexpected %s: \"%s\"", what, client_quote(p, n, q));
    return n >= 6 && memcmp(p, "Error:", 6) == 0 ? EXIT_FAIL : EXIT_PROTO;
}

/* Sends p[0..n) before the deadline. */
static int send_all(int fd, const char *p, size_t n, int flags, uint64_t deadline)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL | flags);
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_until(fd, POLLOUT, deadline); /* the server stopped reading */
            if (rc < 0)
                return rc;
            continue;
        }
        if (k < 0 && errno == EINTR)
            continue;
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
    uint64_t deadline = sk_now_ms() + (uint64_t)o->timeout_ms; /* one for the whole message */
    int rc = send_all(c->fd, msg, n, line ? MSG_MORE : 0, deadline);
    if (rc == 0 && line)
        rc = send_all(c->fd, "\n", 1, 0, deadline);
    if (rc < 0) {
        cli_error("sending message %lu: %s", idx, why(rc));
        return cli_exit_status(rc);
    }
    size_t m = reply_message_len(o->framing, msg, n);
    SK_AUTO_FREE char *expect = malloc(sk_reply_len(SK_FRAMING_CHUNK, m));
    if (!expect) {
        cli_error("out of memory");
        return EXIT_FAIL;
    }
    size_t elen = sk_reply_write(SK_FRAMING_CHUNK, msg, m, expect);
    struct reply_scan r;
    enum reply_status st;
    rc = read_reply(c, o->framing, expect, elen, false, &r, &st);
    if (rc < 0) {
        cli_error("no reply to message %lu: %s", idx, why(rc));
        return cli_exit_status(rc);
    }
    /* Anything but "Hello, M!" (e.g. "Error: message too long" from a server
     * at its --max-line, just before it closes) is a failure, not a reply. */
    if (st != REPLY_OK) {
        char what[64];
        snprintf(what, sizeof what, "reply to message %lu", idx);
        return report_wrong(what, sk_buf_head(&c->in), r.body);
    }
    if (!client_print(sk_buf_head(&c->in), r.body))
        return EXIT_FAIL;
    sk_buf_consume(&c->in, r.len);
    return EXIT_OK;
}

bool client_stdin_ok(void)
{
    if (!ferror(stdin))
        return true;
    cli_error("reading standard input: %s", strerror(errno));
    return false;
}

bool client_print(const char *p, size_t n)
{
    if (fwrite(p, 1, n, stdout) == n && fputc('\n', stdout) != EOF && fflush(stdout) == 0)
        return true;
    return cli_stdout_ok(); /* false (ferror is set), with the message */
}

static void conn_release(struct conn *c)
{
    sk_closep(&c->fd);
    sk_buf_free(&c->in);
}

static int run_tcp(const struct client_opts *o)
{
    SK_AUTO(conn_release) struct conn c = {.fd = -1, .timeout_ms = o->timeout_ms};
    c.fd = sk_connect_until(&o->ep, SOCK_STREAM, sk_now_ms() + (uint64_t)o->timeout_ms, true);
    if (c.fd == SK_ERR(ECONNRESET)) {
        /* The handshake completed: the server accepted, then reset. */
        cli_error("%s:%u accepted the connection, then reset it", o->ep.host,
                  o->ep.port);
        return EXIT_FAIL;
    }
    if (c.fd < 0) {
        cli_error("cannot connect to %s:%u: %s", o->ep.host, o->ep.port,
                  sk_strerror(c.fd));
        return cli_exit_status(c.fd);
    }
    size_t glen;
    const char *greeting = sk_greeting(SK_FRAMING_CHUNK, &glen);
    struct reply_scan r;
    enum reply_status st;
    int rc = read_reply(&c, o->framing, greeting, glen, true, &r, &st);
    int theirs = rc == SK_EPROTO ? SK_FRAMING_CHUNK
               : rc == 0 && st != REPLY_OK ? reply_greeting_framing(sk_buf_head(&c.in), r.len)
               : -1;
    if (theirs >= 0) {
        cli_error("%s:%u: %s", o->ep.host, o->ep.port,
                  reply_framing_advice((enum sk_framing)theirs));
        return EXIT_PROTO;
    }
    if (rc < 0) {
        cli_error("no greeting from server: %s", why(rc));
        return cli_exit_status(rc);
    }
    if (st != REPLY_OK) /* e.g. "Error: server busy" */
        return report_wrong("greeting", sk_buf_head(&c.in), r.body);
    if (!client_print(sk_buf_head(&c.in), r.body))
        return EXIT_FAIL;
    sk_buf_consume(&c.in, r.len);

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
        if (!client_stdin_ok())
            return EXIT_FAIL;
    }
    const char *bye = o->framing == SK_FRAMING_LINE ? "exit\n" : "exit";
    /* The server may already be gone: fine. */
    send_all(c.fd, bye, strlen(bye), 0, sk_now_ms() + (uint64_t)o->timeout_ms);
    return cli_stdout_ok() ? EXIT_OK : EXIT_FAIL;
}

static const struct option client_options[] = {
    {"udp", no_argument, NULL, 'u'},
    {"framing", required_argument, NULL, 'f'},
    {"timeout", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Returns 0, CLI_DONE (--help, --version) or EXIT_USAGE. */
static int client_parse(int argc, char **argv, struct client_opts *out)
{
    struct client_opts o = {.framing = SK_FRAMING_CHUNK, .timeout_ms = 10000};
    int c;
    optind = 1;
    opterr = 0; /* cli_bad_option says it, in one line */
    /* GNU getopt permutes: options may come before or after HOST:PORT and the
     * messages; a message that starts with '-' goes after "--". */
    while ((c = getopt_long(argc, argv, ":uf:t:h", client_options, NULL)) != -1) {
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
        case 'h': return cli_print_help(client_help);
        default: return cli_bad_option("client", c, argv);
        }
    }
    if (optind >= argc) {
        cli_error("missing HOST:PORT (try 'sockit client --help')");
        return EXIT_USAGE;
    }
    if (sk_endpoint_parse(argv[optind], &o.ep) < 0 || o.ep.port == 0) {
        cli_error("expected HOST:PORT or [IPv6]:PORT: %s", argv[optind]);
        return EXIT_USAGE;
    }
    o.msgs = argv + optind + 1;
    o.nmsgs = argc - optind - 1;
    /* In chunk framing a message is what one write carries, and an empty
     * write carries nothing: the server would never see it, and we would
     * wait for a reply that cannot come. */
    for (int i = 0; i < o.nmsgs && !o.udp; i++) {
        if (o.msgs[i][0] == '\0' && o.framing == SK_FRAMING_CHUNK) {
            cli_error("message %d is empty: chunk framing cannot carry an empty "
                      "message (use --framing line)", i + 1);
            return EXIT_USAGE;
        }
        /* In line framing a newline ends a message: it cannot be inside one. */
        if (o.framing == SK_FRAMING_LINE && strchr(o.msgs[i], '\n')) {
            cli_error("message %d contains a newline, which line framing cannot "
                      "carry", i + 1);
            return EXIT_USAGE;
        }
    }
    *out = o;
    return 0;
}

int cmd_client(int argc, char **argv)
{
    cli_reserve_stdio();
    struct client_opts o = {0}; /* set by client_parse only when it returns 0 */
    int rc = client_parse(argc, argv, &o);
    if (rc != 0)
        return rc == CLI_DONE ? EXIT_OK : rc;
    return o.udp ? client_udp(&o) : run_tcp(&o);
}
