/* sockit client over TCP, on the library's stream: the greeting, then each
 * message and its reply, then "exit". With --tls the stream speaks TLS from
 * the connect on (the handshake is part of the connect step, within the same
 * --timeout), and a clean end sends close_notify.
 *
 * The run is a sequence of steps on the loop (client_wait): the connect,
 * the greeting, and per message a send (one --timeout for the whole
 * message) and its reply (one --timeout for the whole reply). The stream
 * reads all along, into `in`, holding no more than one reply can take plus
 * one read: past that the reply is wrong already, and reading pauses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netdb.h>
#include <sys/socket.h>

#include "greeting.h"
#include "cli.h"
#include "client.h"
#include "reply.h"

/* A message goes out in writes of at most SLICE while the stream is under
 * its high water mark: a huge one is never copied into its queue whole. */
#define SLICE (64 * 1024)
/* The end of a message and its "\n" leave in one write: in two, Nagle
 * would hold the "\n" for the server's delayed ACK. */
#define TAIL 1024

enum step { STEP_NONE, STEP_SEND, STEP_REPLY, STEP_CLOSE };

struct tcp_client {
    struct client_wait w;
    struct sk_stream_group *g;
    struct sk_stream s;
    int fd; /* the stream's socket while it is open; -1 */
    enum sk_framing framing;
    int timeout_ms;
    struct sk_buf in; /* received, not consumed yet */
    bool eof;         /* the server's FIN came */
    int err;          /* why the stream closed (a negative code); 0 while open */
    struct sk_tls_ctx *tls; /* --tls; NULL: plain */
    /* The stream's one-line account of a TLS failure (its own text is gone
     * once it is released). */
    char tls_err[320];
    enum step step;
    /* The reply awaited; elen also bounds `in` while a message is sent. */
    const char *expect;
    size_t elen;
    bool greeting;
    struct reply_scan r;
    enum reply_status st;
    /* What is left to hand to the stream (STEP_SEND): the message, then
     * its terminator. */
    const char *out;
    size_t out_left;
    const char *term;
    size_t term_left;
    char tail[TAIL];
};

static struct tcp_client *of(struct sk_stream *s)
{
    return SK_CONTAINER_OF(s, struct tcp_client, s);
}

/* More than a reply and its "\r\n", with no end yet: wrong already. */
static bool too_long(const struct tcp_client *c)
{
    return sk_buf_size(&c->in) > c->elen + 2;
}

/* Ends the reply step when the bytes decide it, the stream closed or the
 * server's FIN came; else, for a chunk server's greeting in line framing,
 * starts the framing grace (see reply_greeting_framing). */
static void check_reply(struct tcp_client *c)
{
    if (c->w.done)
        return; /* decided: what comes after is the next reply's */
    const char *p = sk_buf_head(&c->in);
    size_t have = sk_buf_size(&c->in);
    c->st = reply_scan(c->framing, c->expect, c->elen, p, have, &c->r);
    if (c->st == REPLY_MORE && too_long(c)) {
        c->st = REPLY_BAD;
        c->r.len = c->r.body = have;
    }
    if (c->st != REPLY_MORE)
        client_wait_done(&c->w, 0);
    else if (c->err)
        client_wait_done(&c->w, c->err);
    else if (c->eof)
        client_wait_done(&c->w, SK_ECLOSED);
    else if (c->greeting && c->framing == SK_FRAMING_LINE &&
             reply_greeting_framing(p, have) == SK_FRAMING_CHUNK)
        client_wait_early(&c->w, sk_now_ms() + REPLY_FRAMING_GRACE_MS, SK_EPROTO);
    else
        client_wait_early(&c->w, 0, 0);
}

/* Hands the stream what it takes of the message, under its high water mark. */
static void send_more(struct tcp_client *c)
{
    while (!c->err && c->out_left + c->term_left > 0 && !sk_stream_over_high_water(&c->s)) {
        const char *p = c->out;
        size_t k;
        if (c->out_left + c->term_left <= TAIL) {
            memcpy(c->tail, c->out, c->out_left);
            memcpy(c->tail + c->out_left, c->term, c->term_left);
            p = c->tail;
            k = c->out_left + c->term_left;
            c->out_left = c->term_left = 0;
        } else {
            /* Leave the end for the tail, with its terminator. */
            k = c->out_left + c->term_left - TAIL;
            k = k < SLICE ? k : SLICE;
            c->out += k;
            c->out_left -= k;
        }
        sk_stream_write(&c->s, p, k); /* a failure closes: the close callback says why */
    }
}

static void check_send(struct tcp_client *c)
{
    if (c->err)
        client_wait_done(&c->w, c->err);
    else if (c->out_left + c->term_left == 0 && sk_stream_queued(&c->s) == 0)
        client_wait_done(&c->w, 0);
}

static void check_step(struct tcp_client *c)
{
    if (c->step == STEP_SEND)
        check_send(c);
    else if (c->step == STEP_REPLY)
        check_reply(c);
}

/* Reads while `in` can still be the reply (and writes while output is queued). */
static void settle(struct tcp_client *c)
{
    sk_stream_update(&c->s, !too_long(c));
}

static bool on_read(struct sk_stream *s, const char *data, size_t n)
{
    struct tcp_client *c = of(s);
    if (n == 0) {
        c->eof = true;
    } else if (sk_buf_append(&c->in, data, n) < 0) {
        c->err = SK_ERR(ENOMEM);
        sk_stream_close(s, SK_CLOSE_ERROR);
        return false;
    }
    if (c->step != STEP_REPLY)
        return n > 0 && !too_long(c);
    check_reply(c);
    return n > 0 && !c->w.done; /* the rest waits for the next step */
}

static void on_flushed(struct sk_stream *s)
{
    struct tcp_client *c = of(s);
    if (c->step == STEP_SEND) {
        send_more(c);
        check_send(c);
    }
    settle(c);
}

/* Keeps the stream's account of what failed, the first one. */
static void keep_error(struct tcp_client *c, const struct sk_stream *s)
{
    if (!c->tls_err[0] && *sk_stream_error(s))
        snprintf(c->tls_err, sizeof c->tls_err, "%s", sk_stream_error(s));
}

/* The stream says how it ended, not with which error: the failed call's
 * errno is still set when the stream closes on one, and a socket error
 * that no call returned yet is in SO_ERROR. */
static void on_close(struct sk_stream *s, enum sk_close_reason why)
{
    struct tcp_client *c = of(s);
    int e = errno;
    keep_error(c, s);
    if (c->step == STEP_CLOSE)
        client_wait_done(&c->w, 0); /* our close_notify and FIN are out */
    if (!c->err) {
        int so = 0;
        socklen_t len = sizeof so;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so, &len) == 0 && so)
            e = so;
        else if (e == 0 || e == EAGAIN || e == EINTR)
            e = ECONNRESET;
        c->err = why == SK_CLOSE_RESET ? SK_ERR(e)
               : why == SK_CLOSE_SHUTDOWN ? SK_ECLOSED
               : why == SK_CLOSE_TLS ? SK_ETLS /* a bad record, the server's alert */
               : SK_ERR(ENOMEM);
    }
    c->fd = -1;
    check_step(c);
}

static void on_release(struct sk_stream *s)
{
    (void)s; /* embedded in the client */
}

/* The connect's outcome (its error is the one to tell, not the close's). */
static void on_connected(struct sk_stream *s, int err)
{
    struct tcp_client *c = of(s);
    keep_error(c, s);
    if (err)
        c->err = err;
    else
        c->fd = s->io.fd;
    client_wait_done(&c->w, err);
}

static const struct sk_stream_cbs tcp_cbs = {
    .read = on_read,
    .flushed = on_flushed,
    .close = on_close,
    .release = on_release,
    .connected = on_connected,
};

/* The connection: resolve, then connect on the loop (Happy Eyeballs), and
 * with --tls the handshake, all within --timeout (the group's connect
 * deadline bounds the connect; the step's, the rest). 0 or a negative code;
 * *handshake says a timeout came in the TLS handshake. */
static int tcp_connect(struct tcp_client *c, const struct client_opts *o, bool *handshake)
{
    uint64_t deadline = sk_now_ms() + (uint64_t)o->timeout_ms;
    struct addrinfo *ai = NULL;
    int rc = sk_endpoint_resolve(&o->ep, SOCK_STREAM, 0, &ai);
    if (rc < 0)
        return rc;
    rc = sk_stream_connect_list(c->g, &c->s, ai);
    freeaddrinfo(ai);
    if (rc < 0)
        return rc == SK_EUSAGE ? SK_ERESOLVE : rc; /* no IPv4/IPv6 address */
    if (c->tls && (rc = sk_stream_start_tls(&c->s, c->tls, cli_tls_name(&o->tls, o->ep.host))) < 0)
        return rc; /* closed: the close callback kept why */
    client_wait_begin(&c->w, deadline);
    rc = client_wait_run(&c->w);
    *handshake = rc == SK_ETIMEDOUT && sk_stream_tls_handshaking(&c->s);
    return rc;
}

/* Sends msg[0..n) and its terminator within --timeout. */
static int send_msg(struct tcp_client *c, const char *msg, size_t n)
{
    bool line = c->framing == SK_FRAMING_LINE;
    client_wait_begin(&c->w, sk_now_ms() + (uint64_t)c->timeout_ms);
    c->step = STEP_SEND;
    c->out = msg;
    c->out_left = n;
    c->term = "\n";
    c->term_left = line ? 1 : 0;
    send_more(c);
    check_send(c);
    settle(c);
    int rc = client_wait_run(&c->w);
    c->step = STEP_NONE;
    c->out_left = c->term_left = 0; /* after a timeout: the rest is not sent */
    return rc;
}

/* Awaits the reply c->expect[0..c->elen) (see reply_scan) within --timeout:
 * one deadline for the whole reply, so a server that drips bytes cannot
 * hold us for ever. 0 (c->st and c->r say what came), SK_EPROTO when, in
 * line framing, a chunk server's greeting came and its "\n" did not, or a
 * negative code. */
static int await_reply(struct tcp_client *c, bool greeting)
{
    client_wait_begin(&c->w, sk_now_ms() + (uint64_t)c->timeout_ms);
    c->greeting = greeting;
    c->step = STEP_REPLY;
    check_reply(c);
    settle(c);
    int rc = client_wait_run(&c->w);
    c->step = STEP_NONE;
    return rc;
}

static const char *why(const struct tcp_client *c, int rc)
{
    if ((rc == SK_ETLS || rc == SK_ETLSVERIFY) && c->tls_err[0])
        return c->tls_err;
    if (rc == SK_ECLOSED)
        return "connection closed by server";
    if (rc == SK_ERR(ECONNRESET))
        return "connection reset by server";
    return cli_strerror(rc);
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

/* Prints the reply that came and consumes it. */
static bool print_reply(struct tcp_client *c)
{
    if (!client_print(sk_buf_head(&c->in), c->r.body))
        return false;
    sk_buf_consume(&c->in, c->r.len);
    return true;
}

static int exchange(struct tcp_client *c, const char *msg, size_t n, unsigned long idx)
{
    size_t m = reply_message_len(c->framing, msg, n);
    c->elen = greeting_reply_len(SK_FRAMING_CHUNK, m); /* bounds what is read meanwhile */
    int rc = send_msg(c, msg, n);
    if (rc < 0) {
        cli_error("sending message %lu: %s", idx, why(c, rc));
        return cli_exit_status(rc);
    }
    SK_AUTO_FREE char *expect = malloc(c->elen);
    if (!expect) {
        cli_error("out of memory");
        return EXIT_FAIL;
    }
    greeting_reply_write(SK_FRAMING_CHUNK, msg, m, expect);
    c->expect = expect;
    rc = await_reply(c, false);
    c->expect = NULL;
    if (rc < 0) {
        cli_error("no reply to message %lu: %s", idx, why(c, rc));
        return cli_exit_status(rc);
    }
    /* Anything but "Hello, M!" (e.g. "Error: message too long" from a server
     * at its --max-line, just before it closes) is a failure, not a reply. */
    if (c->st != REPLY_OK && c->r.len == GREETING_SHUTDOWN_LEN &&
        memcmp(sk_buf_head(&c->in), GREETING_SHUTDOWN, GREETING_SHUTDOWN_LEN) == 0) {
        /* A drain: this message and the rest were not read; sending them
         * again (to this address once it is back, or behind a balancer at
         * once) is safe. */
        cli_error("message %lu not answered: the server is shutting down", idx);
        return EXIT_FAIL;
    }
    if (c->st != REPLY_OK) {
        char what[64];
        snprintf(what, sizeof what, "reply to message %lu", idx);
        return report_wrong(what, sk_buf_head(&c->in), c->r.body);
    }
    return print_reply(c) ? EXIT_OK : EXIT_FAIL;
}

static int greeting(struct tcp_client *c, const struct client_opts *o)
{
    c->expect = greeting_text(SK_FRAMING_CHUNK, &c->elen);
    int rc = await_reply(c, true);
    int theirs = rc == SK_EPROTO ? SK_FRAMING_CHUNK
               : rc == 0 && c->st != REPLY_OK ? reply_greeting_framing(sk_buf_head(&c->in), c->r.len)
               : -1;
    if (theirs >= 0) {
        cli_error("%s:%u: %s", o->ep.host, o->ep.port,
                  reply_framing_advice((enum sk_framing)theirs));
        return EXIT_PROTO;
    }
    if (rc < 0) {
        cli_error("no greeting from server: %s", why(c, rc));
        return cli_exit_status(rc);
    }
    if (c->st != REPLY_OK) /* e.g. "Error: server busy" */
        return report_wrong("greeting", sk_buf_head(&c->in), c->r.body);
    return print_reply(c) ? EXIT_OK : EXIT_FAIL;
}

/* Each message in turn, up to "exit" (which ends the session: no reply
 * comes, so we stop there). */
static int messages(struct tcp_client *c, const struct client_opts *o)
{
    SK_AUTO(client_input_free) struct client_input in;
    client_input_init(&in, o);
    bool line = o->framing == SK_FRAMING_LINE;
    unsigned long idx = 0;
    const char *msg;
    size_t n;
    int more;
    while ((more = client_input_next(&in, &msg, &n)) > 0) {
        if (client_input_is_stdin(&in)) {
            /* In line framing "\r\n" ends a message: the server drops the
             * "\r", and so must the reply we expect. */
            if (n > 0 && msg[n - 1] == '\r' && line)
                n--;
            if (n == 0 && !line)
                continue; /* nothing to send: see the check in cmd_client */
        }
        if (greeting_is_exit(msg, reply_message_len(o->framing, msg, n)))
            break; /* "exit\r" too in line framing: the server drops the "\r" */
        int rc = exchange(c, msg, n, ++idx);
        if (rc != EXIT_OK)
            return rc;
    }
    return more < 0 ? EXIT_FAIL : EXIT_OK;
}

/* TLS's clean end: close_notify after "exit", then the FIN, within
 * --timeout (the stream's linger ends with the server's FIN, or in 2 s). */
static void close_tls(struct tcp_client *c)
{
    if (c->fd < 0)
        return; /* the stream closed already */
    client_wait_begin(&c->w, sk_now_ms() + (uint64_t)c->timeout_ms);
    c->step = STEP_CLOSE;
    if (sk_stream_shutdown(&c->s, SK_CLOSE_END, NULL, 0) == 0)
        client_wait_run(&c->w); /* the close callback ends it: nothing to report */
    c->step = STEP_NONE;
}

static void tcp_release(struct tcp_client *c)
{
    sk_stream_group_free(c->g); /* closes the stream, and its socket */
    sk_tls_ctx_free(c->tls);    /* after the stream's reference */
    client_wait_fini(&c->w);
    sk_buf_free(&c->in);
}

/* Reports a connection that could not be made; returns the exit status. */
static int report_connect(const struct tcp_client *c, const struct client_opts *o, int rc,
                          bool handshake)
{
    if (rc == SK_ERR(ECONNRESET)) {
        /* The handshake completed: the server accepted, then reset. */
        cli_error("%s:%u accepted the connection, then reset it", o->ep.host, o->ep.port);
        return EXIT_FAIL;
    }
    if (handshake)
        cli_error("TLS handshake with %s:%u: %s", o->ep.host, o->ep.port, cli_strerror(rc));
    else if (rc == SK_ETLS || rc == SK_ETLSVERIFY)
        cli_error("%s:%u: %s", o->ep.host, o->ep.port, why(c, rc));
    else
        cli_error("cannot connect to %s:%u: %s", o->ep.host, o->ep.port, cli_strerror(rc));
    return cli_exit_status(rc);
}

int client_tcp(const struct client_opts *o)
{
    SK_AUTO(tcp_release) struct tcp_client c = {
        .fd = -1, .framing = o->framing, .timeout_ms = o->timeout_ms};
    if (o->tls.on) {
        int st = cli_tls_ctx_new(&o->tls, false, &c.tls);
        if (st != 0)
            return st;
    }
    int rc = client_wait_init(&c.w);
    /* The connect step's own deadline bounds the handshake. */
    struct sk_stream_limits lim = {.connect_ms = (uint64_t)o->timeout_ms,
                                   .handshake_ms = UINT64_MAX};
    if (rc == 0 && !(c.g = sk_stream_group_new(c.w.loop, &tcp_cbs, &lim, &rc)))
        rc = rc < 0 ? rc : SK_ERR(ENOMEM);
    if (rc < 0) {
        cli_error("cannot start the event loop: %s", cli_strerror(rc));
        return EXIT_FAIL;
    }
    bool handshake = false;
    rc = tcp_connect(&c, o, &handshake);
    if (rc < 0)
        return report_connect(&c, o, rc, handshake);
    if ((rc = greeting(&c, o)) != EXIT_OK || (rc = messages(&c, o)) != EXIT_OK)
        return rc;
    send_msg(&c, "exit", 4); /* the server may already be gone: fine */
    if (c.tls)
        close_tls(&c);
    return cli_stdout_ok() ? EXIT_OK : EXIT_FAIL;
}
