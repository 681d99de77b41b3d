/* A TCP connection of the server engine: read, frame, hand each message to
 * the protocol's callback, flush its replies.
 *
 * Replies to one read are built in the worker's scratch buffer and written
 * with one send(); only what the socket does not take is copied into the
 * session's own buffer. Memory is counted as malloc really holds it
 * (capacities, block overhead, delayed replies). Input is answered only as
 * fast as the peer reads: once a session's output reaches cfg.out_pause,
 * reading, and parsing what was read, stop until it drains; a reply is
 * never cut. Peers that do not read at all are closed: with more than
 * cfg.out_limit pending and nothing read for OUT_STALL_MS (output-limit),
 * or, the heaviest first, when all sessions together hold more than
 * cfg.max_memory (memory): sessions of SHED_MIN or more, and smaller ones
 * too from a worker holding more than its share of the budget. */
#include <assert.h>
#include <errno.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc_int.h"
#include "server_int.h"
#include "sockit/err.h"

/* Reads per readiness event before yielding to other sessions. */
#define READS_PER_EVENT 4
/* A session ended by an error (its error line sent, then our FIN) goes on
 * reading and discarding what the peer still sends for at most this long:
 * closing with unread input would make the kernel send a reset, which can
 * destroy the error line before the peer reads it. */
#define LINGER_MS 2000
/* Line framing with --delay: each message costs an allocation of its own
 * until its reply is due. Parsing stops at the pause mark and the rest of
 * the read waits in s->in (a backlog): small reads keep that rest small. */
#define DELAY_LINE_READ 4096
/* Line framing: replies of one read are sent in steps of this size, so the
 * pause mark is checked while a read of small lines is answered. */
#define REPLY_STEP (64 * 1024)
/* The worker's reply scratch keeps its memory up to this size. */
#define WBUF_KEEP (256 * 1024)
/* A peer with more than out_limit pending that reads nothing for this long
 * is closed (reason=output-limit). */
#define OUT_STALL_MS 5000
#define STALL_SCAN_MS 1000
/* Over the memory budget: reading pauses at this much output, and sessions
 * holding at least SHED_MIN are closed, the heaviest first. */
#define PRESSURE_PAUSE (16 * 1024)
#define SHED_MIN (16 * 1024)
#define SHED_PER_TICK 16
/* The output-limit and budget checks run this often while the worker's
 * sessions hold SHED_MIN or more. */
#define MEM_CHECK_MS 100
/* A worker adds its memory changes to the server-wide total in steps of at
 * least this (one atomic add per step, not per change). */
#define MEM_PUBLISH (256 * 1024)

static void session_cb(struct sk_loop *loop, struct sk_io *io, unsigned events);
static bool linger_start(struct sk_server_conn *s, enum sk_close_reason why, const char *line,
                         size_t len);
static void account(struct sk_server_conn *s);

/* ---- the worker's session list (least recently active first) ---- */

static void list_unlink(struct sk_server_conn **head, struct sk_server_conn **tail,
                        struct sk_server_conn *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        *tail = s->prev;
    s->prev = s->next = NULL;
}

static void list_append(struct sk_server_conn **head, struct sk_server_conn **tail,
                        struct sk_server_conn *s)
{
    s->prev = *tail;
    s->next = NULL;
    if (*tail)
        (*tail)->next = s;
    else
        *head = s;
    *tail = s;
}

static void touch(struct sk_server_conn *s)
{
    struct sk__worker *w = s->w;
    if (s->lingering)
        return; /* last_active_ms is its linger deadline */
    s->last_active_ms = sk_loop_now(w->loop);
    if (w->srv->cfg.idle_timeout_s && w->s_tail != s) {
        list_unlink(&w->s_head, &w->s_tail, s);
        list_append(&w->s_head, &w->s_tail, s);
    }
}

static void arm_idle(struct sk__worker *w)
{
    unsigned idle = w->srv->cfg.idle_timeout_s;
    if (idle && w->s_head && !w->stopping)
        sk_timer_start_at(w->loop, &w->idle_timer, w->s_head->last_active_ms + idle * 1000ull,
                          sk__worker_idle_cb);
}

/* True (and the session touched) when the peer took some of what the
 * socket's send buffer held since the last look: progress we do not see as
 * a write event while the buffer stays over its wake-up mark. */
static bool draining(struct sk_server_conn *s)
{
    int q = 0;
    if (ioctl(s->io.fd, SIOCOUTQ, &q) < 0 || q == s->outq)
        return false;
    s->outq = q;
    touch(s);
    return true;
}

void sk__worker_idle_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk__worker *w = SK_CONTAINER_OF(t, struct sk__worker, idle_timer);
    uint64_t limit = w->srv->cfg.idle_timeout_s * 1000ull;
    while (w->s_head && w->s_head->last_active_ms + limit <= sk_loop_now(loop)) {
        struct sk_server_conn *s = w->s_head;
        if (s->dq_head)
            touch(s); /* waiting for our delayed reply: we are the idle one */
        else if (!draining(s))
            sk__session_close(s, SK_CLOSE_IDLE);
    }
    arm_idle(w);
    sk__worker_reap(w);
}

/* ---- closing ---- */

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

/* Drops the replies still waiting for their --delay. */
static void dq_drop(struct sk_server_conn *s)
{
    for (struct sk__delayed *d = s->dq_head, *next; d; d = next) {
        next = d->cnext;
        dq_unlink(s->w, d);
        free(d);
    }
    s->dq_head = s->dq_tail = NULL;
    s->dq_bytes = 0;
    /* No reply left to wait for: a timer left armed would keep the loop
     * (and a shutdown) waiting for up to --delay for nothing. */
    if (!s->w->d_head)
        sk_timer_stop(s->w->loop, &s->w->delay_timer);
}

void sk__session_close(struct sk_server_conn *s, enum sk_close_reason why)
{
    struct sk__worker *w = s->w;
    if (s->closed)
        return;
    if (s->lingering)
        why = (enum sk_close_reason)s->linger_why; /* what really ended it */
    /* Free the --max-conns slot before the close is logged: whoever reads
     * the log line may connect again at once. */
    atomic_fetch_sub(&w->srv->open_sessions, 1);
    sk__server_event(w->srv, &(struct sk_server_event){
        .kind = SK_SERVER_CLOSE, .peer = (struct sockaddr *)&s->peer, .reason = why,
        .messages = s->msgs, .worker = (unsigned)(w - w->srv->workers)});
    const struct sk_server_proto *proto = &w->srv->cfg.proto;
    if (proto->close)
        proto->close(proto->user, s, why);
    /* The session's fd is never duplicated: close() alone leaves epoll. */
    sk_io_close(w->loop, &s->io);
    if (s->lingering) {
        list_unlink(&w->l_head, &w->l_tail, s);
        if (!w->l_head)
            sk_timer_stop(w->loop, &w->linger_timer);
    } else {
        list_unlink(&w->s_head, &w->s_tail, s);
    }
    dq_drop(s);
    sk_buf_free(&s->in);
    sk_buf_free(&s->out);
    s->closed = true;
    account(s);
    s->next = w->dead;
    w->dead = s;
    w->nsessions--;
    if (!sk__worker_has_sessions(w))
        sk_timer_stop(w->loop, &w->mem_timer);
    if (w->stopping && !sk__worker_has_sessions(w)) {
        /* Last session of a draining worker: let the loop end now. */
        sk_timer_stop(w->loop, &w->grace_timer);
        sk_timer_stop(w->loop, &w->delay_timer);
    }
}

void sk__worker_reap(struct sk__worker *w)
{
    while (w->dead) {
        struct sk_server_conn *s = w->dead;
        w->dead = s->next;
        free(s);
    }
}

/* ---- memory ---- */

/* Memory held for output: queued replies and replies waiting for --delay. */
static size_t out_held(const struct sk_server_conn *s)
{
    return sk_buf_held(&s->out) + s->dq_bytes;
}

static size_t held(const struct sk_server_conn *s)
{
    return out_held(s) + sk_buf_held(&s->in);
}

static size_t budget(const struct sk_server *srv)
{
    return srv->cfg.max_memory ? srv->cfg.max_memory : SK_SERVER_MAX_MEMORY;
}

static bool over_budget(const struct sk_server *srv)
{
    return atomic_load_explicit(&srv->mem_held, memory_order_relaxed) > budget(srv);
}

/* True when the session must not take (or parse) more input for now. */
static bool over_mark(const struct sk_server_conn *s)
{
    size_t out = out_held(s);
    return out > s->w->srv->cfg.out_pause || (out > PRESSURE_PAUSE && over_budget(s->w->srv));
}

static void mem_cb(struct sk_loop *loop, struct sk_timer *t);

static void publish(struct sk__worker *w)
{
    if (w->mem_unpub > 0)
        atomic_fetch_add_explicit(&w->srv->mem_held, (size_t)w->mem_unpub,
                                  memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&w->srv->mem_held, (size_t)-w->mem_unpub,
                                  memory_order_relaxed);
    w->mem_unpub = 0;
}

/* Brings the worker's total up to date with what s holds now. */
static void account(struct sk_server_conn *s)
{
    struct sk__worker *w = s->w;
    size_t h = s->closed ? 0 : held(s);
    if (h == s->acct)
        return;
    w->mem += h - s->acct;
    w->mem_unpub += (long long)h - (long long)s->acct;
    s->acct = h;
    if (w->mem_unpub < MEM_PUBLISH && w->mem_unpub > -MEM_PUBLISH)
        return;
    publish(w);
    if (w->stopping || w->mem < SHED_MIN)
        return;
    if (over_budget(w->srv)) /* shed now, from an entry point of its own */
        sk_timer_start_at(w->loop, &w->mem_timer, sk_loop_now(w->loop), mem_cb);
    else if (!sk_timer_armed(&w->mem_timer))
        sk_timer_start_at(w->loop, &w->mem_timer, sk_loop_now(w->loop) + MEM_CHECK_MS,
                          mem_cb);
}

/* Closes peers that do not read: those over out_limit with nothing read
 * for OUT_STALL_MS, then, while the server is over its budget, the
 * heaviest sessions of this worker. */
static void mem_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk__worker *w = SK_CONTAINER_OF(t, struct sk__worker, mem_timer);
    uint64_t now = sk_loop_now(loop);
    size_t limit = w->srv->cfg.out_limit;
    if (w->mem > limit && now >= w->stall_scan_ms) {
        w->stall_scan_ms = now + STALL_SCAN_MS; /* a walk over every session: not too often */
        for (struct sk_server_conn *s = w->s_head, *next; s; s = next) {
            next = s->next;
            if (out_held(s) > limit && s->last_active_ms + OUT_STALL_MS <= now &&
                !draining(s))
                sk__session_close(s, SK_CLOSE_OUTPUT_LIMIT);
        }
    }
    publish(w);
    /* Sessions under SHED_MIN are spared while this worker holds no more
     * than its share of the budget (the excess is another worker's to
     * shed); past its share, many small sessions are no less a hog than a
     * few big ones, and the heaviest go too. */
    size_t floor = w->mem > budget(w->srv) / w->srv->nworkers ? 0 : SHED_MIN - 1;
    int shed = 0;
    for (; shed < SHED_PER_TICK && over_budget(w->srv); shed++) {
        struct sk_server_conn *heaviest = NULL;
        size_t most = floor;
        struct sk_server_conn *lists[2] = {w->s_head, w->l_head};
        for (int i = 0; i < 2; i++)
            for (struct sk_server_conn *s = lists[i]; s; s = s->next)
                if (held(s) > most) {
                    most = held(s);
                    heaviest = s;
                }
        if (!heaviest)
            break;
        sk__session_close(heaviest, SK_CLOSE_MEMORY);
        publish(w);
    }
    if (w->mem >= SHED_MIN && !w->stopping)
        sk_timer_start_at(loop, t, now + (shed == SHED_PER_TICK ? 1 : MEM_CHECK_MS), mem_cb);
    sk__worker_reap(w);
}

/* ---- output ---- */

static void update_interest(struct sk_server_conn *s)
{
    if (s->closed)
        return;
    account(s);
    s->paused = !s->lingering && (s->backlog || over_mark(s));
    unsigned mask = 0;
    if (s->lingering ? !s->read_closed
                     : !s->read_closed && !s->exiting && !s->paused && !s->w->stopping)
        mask |= SK_READ;
    if (sk_buf_size(&s->out))
        mask |= SK_WRITE;
    sk_io_set(s->w->loop, &s->io, mask);
}

/* Sends what it can of p[0..n) (after anything already queued) and queues
 * the rest. Returns false when the session was closed. */
static bool send_or_queue(struct sk_server_conn *s, const char *p, size_t n)
{
    struct sk__worker *w = s->w;
    if (sk_buf_size(&s->out) == 0 && n > 0) {
        ssize_t k = send(s->io.fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno != EAGAIN && errno != EINTR) {
            sk__session_close(s, SK_CLOSE_RESET);
            return false;
        }
        if (k > 0) {
            w->stats.bytes_out += (size_t)k;
            p += k;
            n -= (size_t)k;
        }
    }
    if (n > 0) {
        if (sk_buf_append(&s->out, p, n) < 0) {
            sk__session_close(s, SK_CLOSE_ERROR);
            return false;
        }
    }
    return true;
}

/* Closes the session if it has said goodbye and everything is sent.
 * Returns false when it was closed. */
static bool maybe_finish(struct sk_server_conn *s)
{
    if (s->lingering) {
        if (sk_buf_size(&s->out) > 0)
            return true;
        if (!s->wr_shut) {
            shutdown(s->io.fd, SHUT_WR); /* the error line is out: our FIN follows */
            s->wr_shut = true;
        }
        if (s->read_closed || s->w->stopping) {
            sk__session_close(s, SK_CLOSE_ERROR);
            return false;
        }
        return true;
    }
    if (sk_buf_size(&s->out) > 0 || s->dq_head || s->backlog)
        return true;
    if (s->exiting) {
        /* Not a plain close: input the peer sent after "exit" may still be
         * unread, and a close with unread input resets the connection,
         * destroying replies not yet delivered. FIN, then linger. */
        if (!linger_start(s, SK_CLOSE_END, NULL, 0))
            return false;
        return maybe_finish(s);
    }
    if (s->read_closed || s->w->stopping) {
        sk__session_close(s, s->w->stopping ? SK_CLOSE_SHUTDOWN : SK_CLOSE_EOF);
        return false;
    }
    return true;
}

static bool parse_backlog(struct sk_server_conn *s);

static void flush_out(struct sk_server_conn *s)
{
    if (s->closed)
        return;
    bool progress = false;
    while (sk_buf_size(&s->out) > 0) {
        ssize_t k = send(s->io.fd, sk_buf_head(&s->out), sk_buf_size(&s->out), MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            sk__session_close(s, SK_CLOSE_RESET);
            return;
        }
        s->w->stats.bytes_out += (size_t)k;
        sk_buf_consume(&s->out, (size_t)k);
        progress = true;
    }
    if (progress)
        touch(s); /* a peer reading its replies is not idle */
    /* Input read while the output was over the mark is answered now. */
    if (s->backlog && !over_mark(s) && !parse_backlog(s))
        return;
    if (maybe_finish(s))
        update_interest(s);
}

/* ---- ending a session with an error line ---- */

static void linger_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk__worker *w = SK_CONTAINER_OF(t, struct sk__worker, linger_timer);
    while (w->l_head && w->l_head->last_active_ms <= sk_loop_now(loop))
        sk__session_close(w->l_head, SK_CLOSE_ERROR);
    if (w->l_head)
        sk_timer_start_at(loop, t, w->l_head->last_active_ms, linger_cb);
    sk__worker_reap(w);
}

/* Sends `line` (if any) after the replies already queued, then our FIN,
 * then closes once the peer's FIN arrives or LINGER_MS have passed,
 * whichever is first; input is discarded meanwhile. The close is logged
 * with reason `why`. Replies still waiting for their --delay go out at
 * once, before the line: the session is ending, and order is kept.
 * Returns false when the session was closed; otherwise the caller flushes. */
static bool linger_start(struct sk_server_conn *s, enum sk_close_reason why, const char *line,
                         size_t len)
{
    struct sk__worker *w = s->w;
    while (s->dq_head) {
        struct sk__delayed *d = s->dq_head;
        s->dq_head = d->cnext;
        if (!s->dq_head)
            s->dq_tail = NULL;
        s->dq_bytes -= dq_cost(d);
        dq_unlink(w, d);
        bool alive = send_or_queue(s, d->data, d->len);
        free(d);
        if (!alive)
            return false; /* closed: its other entries were dropped with it */
    }
    if (!w->d_head)
        sk_timer_stop(w->loop, &w->delay_timer);
    sk_buf_free(&s->in);
    s->backlog = false;
    list_unlink(&w->s_head, &w->s_tail, s);
    s->lingering = true;
    s->linger_why = (uint8_t)why;
    s->last_active_ms = sk_loop_now(w->loop) + LINGER_MS;
    list_append(&w->l_head, &w->l_tail, s);
    if (!sk_timer_armed(&w->linger_timer))
        sk_timer_start_at(w->loop, &w->linger_timer, w->l_head->last_active_ms, linger_cb);
    return send_or_queue(s, line, len);
}

/* A lingering session is readable: discard. */
static void linger_read(struct sk_server_conn *s)
{
    struct sk__worker *w = s->w;
    for (int i = 0; i < READS_PER_EVENT && !s->read_closed; i++) {
        ssize_t n = recv(s->io.fd, w->rbuf, w->rbuf_size, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            sk__session_close(s, SK_CLOSE_RESET);
            return;
        }
        if (n == 0)
            s->read_closed = true;
        w->stats.bytes_in += (size_t)n;
    }
    flush_out(s);
}

void sk__worker_close_all(struct sk__worker *w, enum sk_close_reason why)
{
    while (w->s_head)
        sk__session_close(w->s_head, why);
    while (w->l_head)
        sk__session_close(w->l_head, why);
    sk__worker_reap(w);
}

/* ---- delayed replies (--delay) ---- */

static bool delay_push(struct sk_server_conn *s, const char *reply, size_t len)
{
    struct sk__worker *w = s->w;
    struct sk__delayed *d = sk__malloc(sizeof *d + len);
    if (!d) {
        sk__session_close(s, SK_CLOSE_ERROR);
        return false;
    }
    d->s = s;
    d->due_ms = sk_loop_now(w->loop) + w->srv->cfg.delay_ms;
    d->len = (uint32_t)len;
    memcpy(d->data, reply, len);
    d->cnext = NULL;
    if (s->dq_tail)
        s->dq_tail->cnext = d;
    else
        s->dq_head = d;
    s->dq_tail = d;
    s->dq_bytes += dq_cost(d); /* what it really costs */
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
        s->dq_head = d->cnext; /* d is always its session's oldest entry */
        if (!s->dq_head)
            s->dq_tail = NULL;
        s->dq_bytes -= dq_cost(d);
        bool alive = send_or_queue(s, d->data, d->len);
        free(d);
        if (alive) {
            touch(s); /* the peer's idle time starts when it has its reply */
            flush_out(s);
        }
    }
    if (w->d_head)
        sk_timer_start_at(loop, t, w->d_head->due_ms, sk__worker_delay_cb);
    sk__worker_reap(w);
}

/* ---- input ---- */

/* ---- the protocol's side ---- */

int sk_server_conn_write(struct sk_server_conn *c, const void *p, size_t n)
{
    if (sk_buf_append(&c->w->wbuf, p, n) < 0) {
        c->oom = true;
        return SK_ERR(ENOMEM);
    }
    return 0;
}

char *sk_server_conn_reserve(struct sk_server_conn *c, size_t n)
{
    char *p = sk_buf_reserve(&c->w->wbuf, n);
    if (!p)
        c->oom = true;
    return p;
}

void sk_server_conn_commit(struct sk_server_conn *c, size_t k)
{
    sk_buf_commit(&c->w->wbuf, k);
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
    struct sk__worker *w = s->w;
    const struct sk_server_proto *proto = &w->srv->cfg.proto;
    size_t mark = w->wbuf.len;
    if (proto->message(proto->user, s, msg, n) < 0 || s->oom) {
        sk__session_close(s, SK_CLOSE_ERROR);
        return false;
    }
    if (s->exiting)
        return true; /* the message that ended it is not counted */
    s->msgs++;
    w->stats.msgs++;
    if (w->srv->cfg.delay_ms && w->wbuf.len > mark) {
        bool alive = delay_push(s, w->wbuf.data + mark, w->wbuf.len - mark);
        w->wbuf.len = mark;
        return alive;
    }
    return true;
}

/* Sends the replies built in the worker's scratch buffer; what the socket
 * does not take stays with the session. Returns false when it was closed. */
static bool send_replies(struct sk_server_conn *s)
{
    struct sk__worker *w = s->w;
    bool alive = send_or_queue(s, sk_buf_head(&w->wbuf), sk_buf_size(&w->wbuf));
    w->wbuf.off = w->wbuf.len = 0; /* keep the memory for the next read */
    if (w->wbuf.cap > WBUF_KEEP)
        sk_buf_free(&w->wbuf); /* but not a huge reply's */
    return alive;
}

/* The message was too long: answer what came before, then the error line,
 * then close. Returns false (closed, or lingering: no more input). */
static bool too_long(struct sk_server_conn *s)
{
    const char *line = s->w->srv->cfg.proto.too_long_reply;
    if (send_replies(s) && linger_start(s, SK_CLOSE_TOO_LONG, line, line ? strlen(line) : 0))
        flush_out(s);
    return false;
}

/* Line framing: answers the complete lines of data[0..n) (NULL: of what
 * s->in holds), keeping a partial line in s->in. Parsing stops at the pause
 * mark, the rest kept in s->in as a backlog answered once the output
 * drains. After the peer's FIN, a last line without "\n" is a message too.
 * Returns false when the session was closed or ended. */
static bool on_line_data(struct sk_server_conn *s, const char *data, size_t n)
{
    struct sk__worker *w = s->w;
    size_t max = w->srv->cfg.max_msg;
    bool delay = w->srv->cfg.delay_ms != 0;
    if (data && sk_buf_size(&s->in) > 0 && !s->backlog && !memchr(data, '\n', n)) {
        /* The partial line in s->in (it holds no "\n") goes on: scanning it
         * again from its start on every read made a long line quadratic (a
         * 16 MiB line read 4 KiB at a time: 4.6 s of CPU). */
        if (sk_buf_size(&s->in) + n > max + 1)
            return too_long(s);
        if (sk_buf_append(&s->in, data, n) < 0) {
            sk__session_close(s, SK_CLOSE_ERROR);
            return false;
        }
        return true;
    }
    if (!data || sk_buf_size(&s->in) > 0) {
        if (data && sk_buf_append(&s->in, data, n) < 0) {
            sk__session_close(s, SK_CLOSE_ERROR);
            return false;
        }
        data = sk_buf_head(&s->in);
        n = sk_buf_size(&s->in);
    }
    s->backlog = false;
    size_t used = 0;
    while (used < n && !s->exiting) {
        size_t mlen, consumed;
        int rc = sk_line_next(data + used, n - used, max, &mlen, &consumed);
        if (rc == SK_ETOOBIG)
            return too_long(s);
        if (rc == 0) {
            if (!s->read_closed)
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
    if (data == sk_buf_head(&s->in)) {
        sk_buf_consume(&s->in, used);
        /* The buffer grew to hold the whole read; a short partial line left
         * over must not keep it (64 KiB held for a byte, per connection). */
        size_t left = sk_buf_size(&s->in);
        if (left > 0 && s->in.cap > 4 * left + 256) {
            struct sk_buf small = {0};
            if (sk_buf_append(&small, sk_buf_head(&s->in), left) == 0) {
                sk_buf_free(&s->in);
                s->in = small;
            }
        }
    } else if (used < n && !s->exiting && sk_buf_append(&s->in, data + used, n - used) < 0) {
        sk__session_close(s, SK_CLOSE_ERROR);
        return false;
    }
    if (s->exiting) {
        sk_buf_free(&s->in); /* bytes after "exit" are ignored */
        s->backlog = false;
    }
    return true;
}

/* Answers the backlog (see on_line_data). Returns false when the session
 * was closed or ended. */
static bool parse_backlog(struct sk_server_conn *s)
{
    if (!on_line_data(s, NULL, 0)) {
        s->w->wbuf.off = s->w->wbuf.len = 0;
        return false;
    }
    return send_replies(s);
}

static void on_readable(struct sk_server_conn *s)
{
    struct sk__worker *w = s->w;
    bool line = w->srv->cfg.framing == SK_FRAMING_LINE;
    if (s->lingering) {
        linger_read(s);
        return;
    }
    size_t want = line && w->srv->cfg.delay_ms ? DELAY_LINE_READ : w->rbuf_size;
    for (int i = 0; i < READS_PER_EVENT && !s->exiting && !s->read_closed; i++) {
        ssize_t n = recv(s->io.fd, w->rbuf, want, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            sk__session_close(s, SK_CLOSE_RESET);
            return;
        }
        if (n == 0) {
            s->read_closed = true;
            /* A last line without "\n" is answered. */
            if (line && sk_buf_size(&s->in) > 0 && !parse_backlog(s))
                return;
            break;
        }
        w->stats.bytes_in += (size_t)n;
        bool alive = line ? on_line_data(s, w->rbuf, (size_t)n)
                          : on_message(s, w->rbuf, (size_t)n);
        if (!alive) {
            /* Replies built for a session that is gone must not go to the
             * next session served by this worker. */
            w->wbuf.off = w->wbuf.len = 0;
            return;
        }
        /* One send() for all the replies of this read. */
        if (!send_replies(s))
            return;
        if (s->backlog || over_mark(s))
            break;
        if ((size_t)n < want)
            break; /* the socket is most likely drained */
    }
    touch(s);
    flush_out(s);
}

static void session_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)loop;
    struct sk_server_conn *s = SK_CONTAINER_OF(io, struct sk_server_conn, io);
    struct sk__worker *w = s->w;
    if ((events & (SK_HUP | SK_ERROR)) && (s->read_closed || (events & SK_ERROR))) {
        /* A socket error, or a hang-up after the peer's FIN was read: the
         * peer is gone, nothing more can be read or sent. epoll reports
         * these whatever the interest mask, so a session waiting with no
         * interest (a delayed reply pending, or paused) must not wait here:
         * it would be woken again at once, for as long as it waited. */
        sk__session_close(s, SK_CLOSE_RESET);
    } else if ((events & SK_READ) && !s->read_closed &&
               (s->lingering || (!s->exiting && !s->paused))) {
        on_readable(s); /* flushes too */
    } else if (events & (SK_WRITE | SK_HUP | SK_ERROR)) {
        flush_out(s);
    }
    sk__worker_reap(w);
}

void sk__session_accepted(struct sk__worker *w, int fd, const struct sockaddr *peer)
{
    struct sk_server_conn *s = sk__calloc(1, sizeof *s);
    if (!s || sk_io_start(w->loop, &s->io, fd, SK_READ, session_cb) < 0) {
        free(s);
        close(fd);
        atomic_fetch_sub(&w->srv->open_sessions, 1);
        return;
    }
    s->w = w;
    size_t plen = peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    memcpy(&s->peer, peer, plen);
    s->last_active_ms = sk_loop_now(w->loop);
    list_append(&w->s_head, &w->s_tail, s);
    w->nsessions++;
    w->stats.conns++;
    sk__server_event(w->srv, &(struct sk_server_event){
        .kind = SK_SERVER_OPEN, .peer = (struct sockaddr *)&s->peer,
        .worker = (unsigned)(w - w->srv->workers)});
    if (w->srv->cfg.idle_timeout_s && !sk_timer_armed(&w->idle_timer))
        arm_idle(w);
    const struct sk_server_proto *proto = &w->srv->cfg.proto;
    if (proto->open && (proto->open(proto->user, s) < 0 || s->oom)) {
        w->wbuf.off = w->wbuf.len = 0;
        sk__session_close(s, SK_CLOSE_ERROR);
    } else if (send_replies(s)) { /* the greeting, not delayed */
        update_interest(s);
    }
    sk__worker_reap(w);
}

void sk__worker_drain(struct sk__worker *w)
{
    struct sk_server_conn *lists[2] = {w->s_head, w->l_head};
    for (int i = 0; i < 2; i++) {
        for (struct sk_server_conn *s = lists[i], *next; s; s = next) {
            next = s->next;
            if (maybe_finish(s))
                update_interest(s);
        }
    }
    sk__worker_reap(w);
}
