/* A TCP connection of the server engine (a session): a stream (stream.c)
 * that frames its input, hands each message to the protocol's callback and
 * sends the replies.
 *
 * Replies to one read are built in the worker's scratch buffer and written
 * with one send(); only what the socket does not take is copied into the
 * stream's queue. Input is answered only as fast as the peer reads: once a
 * session's output reaches cfg.out_pause (the stream's high water mark),
 * reading, and parsing what was read, stop until it drains; a reply is
 * never cut. The stream closes the peers that do not read (output-limit,
 * memory); the replies waiting for --delay count as its output. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr_int.h"
#include "alloc_int.h"
#include "internal.h"
#include "server_int.h"
#include "sockit/err.h"

/* Line framing with --delay: each message costs an allocation of its own
 * until its reply is due. Parsing stops at the pause mark and the rest of
 * the read waits in the stream's input buffer (a backlog): small reads
 * keep that rest small. */
#define DELAY_LINE_READ 4096
/* Line framing: replies of one read are sent in steps of this size, so the
 * pause mark is checked while a read of small lines is answered. */
#define REPLY_STEP (64 * 1024)
/* The worker's reply scratch keeps its memory up to this size. */
#define WBUF_KEEP (256 * 1024)
/* The read scratch of a worker's streams. */
#define READ_SCRATCH (64 * 1024)

static bool parse_backlog(struct sk_server_conn *s);

static bool stream_write(struct sk_server_conn *s, const char *p, size_t n)
{
    return sk_stream_write(&s->st, p, n) == 0;
}

static bool over_mark(struct sk_server_conn *s)
{
    return sk_stream_over_high_water(&s->st);
}

/* Forgets the replies built in the worker's scratch buffer (their session
 * is gone or failed): they must not go to the next session it serves, nor
 * count as answered. */
static void drop_replies(struct sk__worker *w)
{
    w->wbuf.off = w->wbuf.len = 0;
    w->lat_pending = 0;
}

/* A --delay reply is out: its latency from the read of its message, which
 * was due_ms - delay_ms on the loop's ms clock (so to within 1 ms). */
static void delayed_written(struct sk__worker *w, const struct sk__delayed *d)
{
    uint64_t read_ns = (d->due_ms - w->srv->cfg.delay_ms) * UINT64_C(1000000);
    uint64_t now = sk__loop_now_ns(w->loop);
    sk__latency_record(w->ctr, now > read_ns ? now - read_ns : 0, 1);
}

/* ---- delayed replies: bookkeeping ---- */

static size_t dq_cost(const struct sk__delayed *d)
{
    return sk_alloc_cost(sizeof *d + d->len);
}

static void dq_unlink(struct sk__worker *w, struct sk__delayed *d)
{
    if (d->wprev)
        d->wprev->wnext = d->wnext;
    else
        w->d_head = d->wnext;
    if (d->wnext)
        d->wnext->wprev = d->wprev;
    else
        w->d_tail = d->wprev;
}

/* A session's --delay replies are a ring through cnext held by its newest
 * entry, whose cnext is the oldest: one pointer in every session. */
static void dq_append(struct sk_server_conn *s, struct sk__delayed *d)
{
    d->cnext = s->dq_last ? s->dq_last->cnext : d;
    if (s->dq_last)
        s->dq_last->cnext = d;
    s->dq_last = d;
}

/* Takes the session's oldest entry off its ring (NULL: none). */
static struct sk__delayed *dq_pop(struct sk_server_conn *s)
{
    struct sk__delayed *d = s->dq_last ? s->dq_last->cnext : NULL;
    if (d == s->dq_last)
        s->dq_last = NULL;
    else
        s->dq_last->cnext = d->cnext;
    return d;
}

/* Drops the replies still waiting for their --delay. */
static void dq_drop(struct sk_server_conn *s)
{
    for (struct sk__delayed *d; (d = dq_pop(s));) {
        dq_unlink(sk__conn_worker(s), d);
        free(d);
    }
    s->st.out_extra = 0;
    /* No reply left to wait for: a timer left armed would keep the loop
     * (and a shutdown) waiting for up to --delay for nothing. */
    if (!sk__conn_worker(s)->d_head)
        sk_timer_stop(sk__conn_worker(s)->loop, &sk__conn_worker(s)->delay_timer);
}

/* ---- the stream's callbacks ---- */

static void update_interest(struct sk_server_conn *s)
{
    if (s->st.closed)
        return;
    if (s->st.lingering) {
        sk_stream_update(&s->st, false);
        return;
    }
    sk__stream_account(&s->st); /* the budget check below sees it */
    bool over = over_mark(s);
    s->st.paused = over;
    sk_stream_update(&s->st, !s->exiting && !s->backlog && !over);
}

/* Sends `line` (if any) after the replies already queued, then our FIN,
 * then the stream closes once the peer's FIN arrives or its linger time
 * has passed (reason `why`). Replies still waiting for their --delay go
 * out at once, before the line: the session is ending, and order is kept.
 * Returns false when the session was closed; otherwise the caller flushes. */
static bool linger_start(struct sk_server_conn *s, enum sk_close_reason why, const char *line,
                         size_t len)
{
    struct sk__worker *w = sk__conn_worker(s);
    for (struct sk__delayed *d; (d = dq_pop(s));) {
        s->st.out_extra -= dq_cost(d);
        dq_unlink(w, d);
        bool alive = stream_write(s, d->data, d->len);
        if (alive)
            delayed_written(w, d);
        free(d);
        if (!alive)
            return false; /* closed: its other entries were dropped with it */
    }
    if (!w->d_head)
        sk_timer_stop(w->loop, &w->delay_timer);
    s->backlog = false;
    return sk_stream_shutdown(&s->st, why, line, len) == 0;
}

/* Closes the session if it has said goodbye and everything is sent.
 * Returns false when it was closed or ended (no interest to update). */
static bool maybe_finish(struct sk_server_conn *s)
{
    if (sk_stream_queued(&s->st) > 0 || s->dq_last || s->backlog)
        return true;
    if (s->exiting) {
        /* Not a plain close: input the peer sent after the end may still
         * be unread, and a close with unread input resets the connection,
         * destroying replies not yet delivered. FIN, then linger. */
        if (linger_start(s, SK_CLOSE_END, NULL, 0))
            sk_stream_flush(&s->st);
        return false;
    }
    struct sk__worker *w = sk__conn_worker(s);
    if (s->st.read_closed || w->g.stopping) {
        enum sk_close_reason why = w->g.stopping ? SK_CLOSE_SHUTDOWN : SK_CLOSE_EOF;
        /* A drain says so to a peer that may still be sending: what it
         * sends after the line is not read, and it knows to send it again
         * elsewhere. FIN, then linger, so the line is not lost to a reset. */
        const char *bye = w->g.stopping && !s->st.read_closed ? w->srv->shutdown_reply : NULL;
        if (bye || sk_stream_is_tls(&s->st)) { /* TLS: close_notify, then the FIN */
            if (linger_start(s, why, bye, bye ? strlen(bye) : 0))
                sk_stream_flush(&s->st);
            return false;
        }
        sk_stream_close(&s->st, why);
        return false;
    }
    return true;
}

static void session_flushed(struct sk_stream *st)
{
    struct sk_server_conn *s = SK_CONTAINER_OF(st, struct sk_server_conn, st);
    /* Input read while the output was over the mark is answered now. */
    if (s->backlog && !over_mark(s) && !parse_backlog(s))
        return;
    if (maybe_finish(s))
        update_interest(s);
}

static void session_stop(struct sk_stream *st)
{
    struct sk_server_conn *s = SK_CONTAINER_OF(st, struct sk_server_conn, st);
    if (maybe_finish(s))
        update_interest(s);
}

static bool session_idle(struct sk_stream *st)
{
    struct sk_server_conn *s = SK_CONTAINER_OF(st, struct sk_server_conn, st);
    /* Waiting for our delayed reply: we are the idle one. Without an idle
     * timeout the deadline is only the PROXY header's (worker streams init). */
    return !s->proxy && (s->dq_last || !sk__conn_worker(s)->srv->cfg.idle_timeout_s);
}

static void session_closing(struct sk_stream *st, enum sk_close_reason why)
{
    struct sk_server_conn *s = SK_CONTAINER_OF(st, struct sk_server_conn, st);
    struct sk__worker *w = sk__conn_worker(s);
    /* Free the --max-conns slot before the close is reported: whoever
     * reads the log line may connect again at once. */
    atomic_fetch_sub(&w->srv->open_sessions, 1);
    if (s->proxy) { /* never open: no close event, no close callback */
        sk__proxy_closing(s, why);
        return;
    }
    if ((unsigned)why < SK_SERVER_CLOSE_REASONS)
        sk__count(&w->ctr->closed[why], 1);
    if (s->tls_wait)
        sk__count(&w->ctr->tls_failed, 1); /* never open */
    else
        sk__uncount(&w->ctr->open, 1);
    struct sk_server_event ev = {
        .kind = SK_SERVER_CLOSE, .peer = (struct sockaddr *)&s->peer, .reason = why,
        .messages = s->msgs, .duration_ms = sk_loop_now(w->loop) - s->accepted_ms,
        .worker = (unsigned)(w - w->srv->workers)};
    if (w->srv->cfg.on_event) /* asked only when someone listens: a syscall */
        sk__tcp_bytes(s->st.io.fd, s->st.read_closed, &ev.bytes_in, &ev.bytes_out);
    if (sk_stream_is_tls(&s->st))
        sk__tls_close_event(s, why, &ev);
    sk__server_event(w->srv, &ev);
    if (s->tls_wait)
        return; /* never open: no close callback */
    const struct sk_server_proto *proto = &w->srv->cfg.proto;
    if (proto->close) {
        size_t mark = w->wbuf.len;
        proto->close(proto->user, s, why);
        w->wbuf.len = mark; /* written to a closing connection: dropped */
    }
    dq_drop(s);
}

static void session_release(struct sk_stream *st)
{
    free(SK_CONTAINER_OF(st, struct sk_server_conn, st));
}

static bool session_read(struct sk_stream *st, const char *data, size_t n);
static void session_tls_ready(struct sk_stream *st, int err);

static const struct sk_stream_cbs session_cbs = {
    .read = session_read,
    .flushed = session_flushed,
    .stop = session_stop,
    .idle = session_idle,
    .close = session_closing,
    .release = session_release,
    .connected = session_tls_ready,
};

static void worker_emptied(struct sk_stream_group *g)
{
    /* Last session of a draining worker: let the loop end now. */
    struct sk__worker *w = SK_CONTAINER_OF(g, struct sk__worker, g);
    sk_timer_stop(w->loop, &w->grace_timer);
    sk_timer_stop(w->loop, &w->delay_timer);
}

int sk__worker_streams_init(struct sk__worker *w)
{
    const struct sk_server_config *cfg = &w->srv->cfg;
    uint64_t idle_ms = cfg->idle_timeout_s * 1000ull;
    if (!idle_ms && cfg->proxy_protocol) /* the PROXY header's deadline */
        idle_ms = cfg->proxy_timeout_ms ? cfg->proxy_timeout_ms : 10000;
    struct sk_stream_limits lim = {
        .idle_ms = idle_ms,
        .high_water = cfg->out_pause,
        .out_limit = cfg->out_limit,
        .max_memory = cfg->max_memory ? cfg->max_memory : SK_SERVER_MAX_MEMORY,
        .read_size = READ_SCRATCH,
        .handshake_ms = cfg->handshake_timeout_ms,
    };
    int rc = sk__stream_group_init(&w->g, w->loop, &session_cbs, &lim, &w->srv->mem_held,
                                   cfg->workers);
    w->g.emptied = worker_emptied;
    w->g.bytes = &w->ctr->bytes; /* read by sk_server_stats_read */
    return rc;
}

/* ---- delayed replies (--delay) ---- */


static bool delay_push(struct sk_server_conn *s, const char *reply, size_t len)
{
    struct sk__worker *w = sk__conn_worker(s);
    struct sk__delayed *d = sk__malloc(sizeof *d + len);
    if (!d) {
        sk_stream_close(&s->st, SK_CLOSE_ERROR);
        return false;
    }
    d->s = s;
    d->due_ms = sk_loop_now(w->loop) + w->srv->cfg.delay_ms;
    d->len = (uint32_t)len;
    memcpy(d->data, reply, len);
    dq_append(s, d);
    s->st.out_extra += dq_cost(d); /* what it really costs */
    d->wnext = NULL;
    d->wprev = w->d_tail;
    if (w->d_tail)
        w->d_tail->wnext = d;
    else
        w->d_head = d;
    w->d_tail = d;
    if (!sk_timer_armed(&w->delay_timer))
        sk_timer_start_at(w->loop, &w->delay_timer, d->due_ms, sk__worker_delay_cb);
    return true;
}

void sk__worker_delay_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk__worker *w = SK_CONTAINER_OF(t, struct sk__worker, delay_timer);
    while (w->d_head && w->d_head->due_ms <= sk_loop_now(loop)) {
        struct sk__delayed *d = w->d_head;
        assert(!d->wprev); /* the head: dq_unlink moves w->d_head past it */
        struct sk_server_conn *s = d->s;
        dq_unlink(w, d);
        struct sk__delayed *oldest = dq_pop(s);
        assert(oldest == d); /* the delay is constant: the worker's oldest is its session's */
        (void)oldest;
        s->st.out_extra -= dq_cost(d);
        bool alive = stream_write(s, d->data, d->len);
        if (alive)
            delayed_written(w, d);
        free(d);
        if (alive) {
            sk_stream_touch(&s->st); /* the peer's idle time starts when it has its reply */
            sk_stream_flush(&s->st);
        }
    }
    if (w->d_head)
        sk_timer_start_at(loop, t, w->d_head->due_ms, sk__worker_delay_cb);
    sk__stream_group_reap(&w->g);
}

/* ---- the protocol's side ---- */

int sk_server_conn_write(struct sk_server_conn *c, const void *p, size_t n)
{
    if (sk_buf_append(&sk__conn_worker(c)->wbuf, p, n) < 0) {
        c->oom = true;
        return SK_ERR(ENOMEM);
    }
    return 0;
}

char *sk_server_conn_reserve(struct sk_server_conn *c, size_t n)
{
    char *p = sk_buf_reserve(&sk__conn_worker(c)->wbuf, n);
    if (!p)
        c->oom = true;
    return p;
}

void sk_server_conn_commit(struct sk_server_conn *c, size_t k)
{
    sk_buf_commit(&sk__conn_worker(c)->wbuf, k);
}

void sk_server_conn_end(struct sk_server_conn *c)
{
    /* Replies still queued (or delayed) go out first; then we close. */
    c->exiting = true;
}

const struct sockaddr *sk_server_conn_peer(const struct sk_server_conn *c)
{
    return (const struct sockaddr *)&c->peer;
}

void sk_server_conn_set_data(struct sk_server_conn *c, void *data)
{
    c->data = data;
}

void *sk_server_conn_data(const struct sk_server_conn *c)
{
    return c->data;
}

/* Hands one message to the protocol; its replies go to the worker's scratch
 * buffer (with --delay: on to the delay queue). Returns false when the
 * session was closed. */
static bool on_message(struct sk_server_conn *s, const char *msg, size_t n)
{
    struct sk__worker *w = sk__conn_worker(s);
    const struct sk_server_proto *proto = &w->srv->cfg.proto;
    size_t mark = w->wbuf.len;
    if (proto->message(proto->user, s, msg, n) < 0 || s->oom) {
        sk_stream_close(&s->st, SK_CLOSE_ERROR);
        return false;
    }
    if (s->exiting)
        return true; /* the message that ended it is not counted */
    s->msgs++;
    sk__count(&w->ctr->msgs, 1);
    if (w->srv->cfg.delay_ms && w->wbuf.len > mark) {
        bool alive = delay_push(s, w->wbuf.data + mark, w->wbuf.len - mark);
        w->wbuf.len = mark;
        return alive;
    }
    if (w->wbuf.len > mark)
        w->lat_pending++; /* its reply goes out with the read's (send_replies) */
    return true;
}

/* Sends the replies built in the worker's scratch buffer; what the socket
 * does not take stays with the session. Returns false when it was closed. */
static bool send_replies(struct sk_server_conn *s)
{
    struct sk__worker *w = sk__conn_worker(s);
    bool alive = stream_write(s, sk_buf_head(&w->wbuf), sk_buf_size(&w->wbuf));
    if (alive && w->lat_pending) {
        /* From the loop's wake-up that read them: one clock read per write,
         * none per message. */
        uint64_t now = sk_now_ns(), read_ns = sk__loop_now_ns(w->loop);
        sk__latency_record(w->ctr, now > read_ns ? now - read_ns : 0, w->lat_pending);
    }
    w->lat_pending = 0;
    w->wbuf.off = w->wbuf.len = 0; /* keep the memory for the next read */
    if (w->wbuf.cap > WBUF_KEEP)
        sk_buf_free(&w->wbuf); /* but not a huge reply's */
    return alive;
}

/* The message was too long: answer what came before, then the error line,
 * then close. Returns false (closed, or lingering: no more input). */
static bool too_long(struct sk_server_conn *s)
{
    const char *line = sk__conn_worker(s)->srv->cfg.proto.too_long_reply;
    if (send_replies(s) && linger_start(s, SK_CLOSE_TOO_LONG, line, line ? strlen(line) : 0))
        sk_stream_flush(&s->st);
    return false;
}

/* Line framing: answers the complete lines of data[0..n) (NULL: of what
 * the stream's input buffer holds), keeping a partial line there. Parsing
 * stops at the pause mark, the rest kept there as a backlog answered once the output
 * drains. After the peer's FIN, a last line without "\n" is a message too.
 * Returns false when the session was closed or ended. */
static bool on_line_data(struct sk_server_conn *s, const char *data, size_t n)
{
    struct sk__worker *w = sk__conn_worker(s);
    size_t max = w->srv->cfg.max_msg;
    bool delay = w->srv->cfg.delay_ms != 0;
    if (data && sk_buf_size(&s->st.in) > 0 && !s->backlog && !memchr(data, '\n', n)) {
        /* The partial line in st.in (it holds no "\n") goes on: scanning it
         * again from its start on every read made a long line quadratic (a
         * 16 MiB line read 4 KiB at a time: 4.6 s of CPU). */
        if (sk_buf_size(&s->st.in) + n > max + 1)
            return too_long(s);
        if (sk_buf_append(&s->st.in, data, n) < 0) {
            sk_stream_close(&s->st, SK_CLOSE_ERROR);
            return false;
        }
        return true;
    }
    if (!data || sk_buf_size(&s->st.in) > 0) {
        if (data && sk_buf_append(&s->st.in, data, n) < 0) {
            sk_stream_close(&s->st, SK_CLOSE_ERROR);
            return false;
        }
        data = sk_buf_head(&s->st.in);
        n = sk_buf_size(&s->st.in);
    }
    s->backlog = false;
    size_t used = 0;
    while (used < n && !s->exiting) {
        size_t mlen, consumed;
        int rc = sk_line_next(data + used, n - used, max, &mlen, &consumed);
        if (rc == SK_ETOOBIG)
            return too_long(s);
        if (rc == 0) {
            if (!s->st.read_closed)
                break;
            /* End of stream: the unterminated rest is the last message. */
            mlen = consumed = n - used;
            if (mlen > max)
                return too_long(s);
        }
        if (!on_message(s, data + used, mlen))
            return false;
        used += consumed;
        if (w->wbuf.len >= REPLY_STEP || delay) {
            if (w->wbuf.len && !send_replies(s))
                return false;
            if (over_mark(s) && used < n && !s->exiting) {
                s->backlog = true;
                break;
            }
        }
    }
    if (data == sk_buf_head(&s->st.in)) {
        sk_buf_consume(&s->st.in, used);
        /* The buffer grew to hold the whole read; a short partial line left
         * over must not keep it (64 KiB held for a byte, per connection). */
        size_t left = sk_buf_size(&s->st.in);
        if (left > 0 && s->st.in.cap > 4 * left + 256) {
            struct sk_buf small = {0};
            if (sk_buf_append(&small, sk_buf_head(&s->st.in), left) == 0) {
                sk_buf_free(&s->st.in);
                s->st.in = small;
            }
        }
    } else if (used < n && !s->exiting && sk_buf_append(&s->st.in, data + used, n - used) < 0) {
        sk_stream_close(&s->st, SK_CLOSE_ERROR);
        return false;
    }
    if (s->exiting) {
        sk_buf_free(&s->st.in); /* bytes after "exit" are ignored */
        s->backlog = false;
    }
    return true;
}

/* Answers the backlog (see on_line_data). Returns false when the session
 * was closed or ended. */
static bool parse_backlog(struct sk_server_conn *s)
{
    if (!on_line_data(s, NULL, 0)) {
        drop_replies(sk__conn_worker(s));
        return false;
    }
    return send_replies(s);
}

/* ---- input ---- */

/* The session is open: the open event, the open callback (its greeting in
 * the worker's scratch). via: the balancer's address (--proxy-protocol).
 * Returns false when it was closed. */
static bool session_open(struct sk_server_conn *s, const struct sockaddr *via)
{
    struct sk__worker *w = sk__conn_worker(s);
    sk__count(&w->ctr->conns, 1);
    sk__count(&w->ctr->open, 1);
    sk__server_event(w->srv, &(struct sk_server_event){
        .kind = SK_SERVER_OPEN, .peer = (struct sockaddr *)&s->peer, .proxied_from = via,
        .worker = (unsigned)(w - w->srv->workers), .tls_version = sk_stream_tls_version(&s->st),
        .tls_cipher = sk_stream_tls_cipher(&s->st)});
    const struct sk_server_proto *proto = &w->srv->cfg.proto;
    if (proto->open && (proto->open(proto->user, s) < 0 || s->oom)) {
        drop_replies(w);
        sk_stream_close(&s->st, SK_CLOSE_ERROR);
        return false;
    }
    return true;
}

/* Bytes that came with a PROXY header read in pieces, left in st.in: the
 * first message (chunk), or the first lines. Returns as session_read. */
static bool proxy_rest(struct sk_server_conn *s, bool line)
{
    bool alive;
    if (line) {
        alive = on_line_data(s, NULL, 0);
    } else {
        alive = sk_buf_size(&s->st.in) == 0 ||
                on_message(s, sk_buf_head(&s->st.in), sk_buf_size(&s->st.in));
        sk_buf_free(&s->st.in);
    }
    if (!alive) {
        drop_replies(sk__conn_worker(s));
        return false;
    }
    return send_replies(s) && !s->exiting && !s->backlog && !over_mark(s);
}

/* One read of the stream (n == 0: the peer's FIN). Returns false to read
 * no more in this event. */
static bool session_read(struct sk_stream *st, const char *data, size_t n)
{
    struct sk_server_conn *s = SK_CONTAINER_OF(st, struct sk_server_conn, st);
    struct sk__worker *w = sk__conn_worker(s);
    bool line = w->srv->cfg.framing == SK_FRAMING_LINE;
    if (s->proxy) { /* --proxy-protocol: the header first */
        struct sockaddr_in6 via;
        int r = sk__proxy_read(s, &data, &n, &via);
        if (r <= 0)
            return r == 0;
        if (w->srv->cfg.tls) { /* the header in clear, then TLS: the rest is its start */
            sk__tls_session_start_after(s, data, n);
            return false; /* the stream reads TLS from here */
        }
        if (!session_open(s, via.sin6_family ? (struct sockaddr *)&via : NULL))
            return false;
        if (!data) /* the rest of the read is in st.in */
            return proxy_rest(s, line);
        if (n == 0)
            return send_replies(s) && !s->exiting;
    } else if (n == 0) { /* a last line without "\n" is answered */
        return !(line && sk_buf_size(&st->in) > 0) || parse_backlog(s);
    }
    bool alive = line ? on_line_data(s, data, n) : on_message(s, data, n);
    if (!alive) {
        drop_replies(w); /* not for the next session of this worker */
        return false;
    }
    /* One send() for all the replies of this read. */
    if (!send_replies(s))
        return false;
    return !s->exiting && !s->backlog && !over_mark(s);
}

/* The TLS handshake is done (err 0: the session opens, its greeting goes
 * out) or failed (the stream closes it next: see session_closing). */
static void session_tls_ready(struct sk_stream *st, int err)
{
    struct sk_server_conn *s = SK_CONTAINER_OF(st, struct sk_server_conn, st);
    if (err < 0)
        return; /* counted as failed at its close */
    s->tls_wait = 0;
    sk__count(&sk__conn_worker(s)->ctr->tls_ok, 1);
    struct sockaddr_in6 via;
    if (session_open(s, sk__tls_proxied_from(s, &via)) && send_replies(s))
        update_interest(s);
}

void sk__session_accepted(struct sk__worker *w, int fd, const struct sockaddr *peer)
{
    struct sk_server_conn *s = sk__calloc(1, sizeof *s);
    if (!s || sk_stream_open(&w->g, &s->st, fd) < 0) {
        if (!s)
            close(fd);
        free(s);
        atomic_fetch_sub(&w->srv->open_sessions, 1);
        return;
    }
    s->accepted_ms = sk_loop_now(w->loop);
    if (w->srv->cfg.framing == SK_FRAMING_LINE && w->srv->cfg.delay_ms)
        s->st.read_max = DELAY_LINE_READ;
    size_t plen = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    memcpy(&s->peer, peer, plen);
    if (w->srv->cfg.proxy_protocol) /* opens once its header is read */
        s->proxy = SK__PROXY_WAITING;
    if (w->srv->cfg.tls && !s->proxy) { /* opens once its handshake is done */
        if (sk__tls_session_start(s))
            update_interest(s);
    } else if (s->proxy || (session_open(s, NULL) && send_replies(s))) { /* the greeting, not delayed */
        update_interest(s);
    }
    sk__stream_group_reap(&w->g);
}
