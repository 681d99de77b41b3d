/* A TCP session of the greeting protocol: read, frame, reply, flush.
 *
 * Replies to one read are built in the worker's scratch buffer and written
 * with one send(); only what the socket does not take is copied into the
 * session's own buffer. Reading pauses while a session's pending output is
 * over cfg.out_pause (a peer that sends but never reads cannot grow our
 * memory), and the session is closed if it still grows past cfg.out_limit. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_int.h"
#include "sockit/err.h"

/* Reads per readiness event before yielding to other sessions. */
#define READS_PER_EVENT 4

static const char *reason_name[] = {
    [SK__CLOSE_EXIT] = "exit",         [SK__CLOSE_EOF] = "eof",
    [SK__CLOSE_RESET] = "reset",       [SK__CLOSE_IDLE] = "idle-timeout",
    [SK__CLOSE_OVERFLOW] = "output-limit", [SK__CLOSE_TOOLONG] = "message-too-long",
    [SK__CLOSE_SHUTDOWN] = "shutdown", [SK__CLOSE_ERROR] = "error",
};

static const char too_long_line[] = "Error: message too long\n";

static void session_cb(struct sk_loop *loop, struct sk_io *io, unsigned events);

/* ---- the worker's session list (least recently active first) ---- */

static void list_unlink(struct sk__worker *w, struct sk__session *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        w->s_head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        w->s_tail = s->prev;
    s->prev = s->next = NULL;
}

static void list_append(struct sk__worker *w, struct sk__session *s)
{
    s->prev = w->s_tail;
    s->next = NULL;
    if (w->s_tail)
        w->s_tail->next = s;
    else
        w->s_head = s;
    w->s_tail = s;
}

static void touch(struct sk__session *s)
{
    struct sk__worker *w = s->w;
    s->last_active_ms = sk_loop_now(w->loop);
    if (w->srv->cfg.idle_timeout_s && w->s_tail != s) {
        list_unlink(w, s);
        list_append(w, s);
    }
}

static void arm_idle(struct sk__worker *w)
{
    unsigned idle = w->srv->cfg.idle_timeout_s;
    if (idle && w->s_head && !w->stopping)
        sk_timer_start_at(w->loop, &w->idle_timer, w->s_head->last_active_ms + idle * 1000ull,
                          sk__worker_idle_cb);
}

void sk__worker_idle_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk__worker *w = SK_CONTAINER_OF(t, struct sk__worker, idle_timer);
    uint64_t limit = w->srv->cfg.idle_timeout_s * 1000ull;
    while (w->s_head && w->s_head->last_active_ms + limit <= sk_loop_now(loop))
        sk__session_close(w->s_head, SK__CLOSE_IDLE);
    arm_idle(w);
}

/* ---- closing ---- */

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

void sk__session_close(struct sk__session *s, enum sk__close_reason why)
{
    struct sk__worker *w = s->w;
    char addr[SK_ADDRSTR_MAX];
    sk_log_printf(w->srv->cfg.log, "close %s reason=%s messages=%llu",
                  sk_addr_format((struct sockaddr *)&s->peer, addr, sizeof addr),
                  reason_name[why], (unsigned long long)s->msgs);
    sk_io_stop(w->loop, &s->io);
    close(s->io.fd);
    list_unlink(w, s);
    for (struct sk__delayed *d = s->dq_head, *next; d; d = next) {
        next = d->cnext;
        dq_unlink(w, d);
        free(d);
    }
    sk_buf_free(&s->in);
    sk_buf_free(&s->out);
    free(s);
    w->nsessions--;
    atomic_fetch_sub(&w->srv->open_sessions, 1);
    if (w->stopping && !w->s_head) {
        /* Last session of a draining worker: let the loop end now. */
        sk_timer_stop(w->loop, &w->grace_timer);
        sk_timer_stop(w->loop, &w->delay_timer);
    }
}

/* ---- output ---- */

static size_t pending(const struct sk__session *s)
{
    return sk_buf_size(&s->out) + s->dq_bytes;
}

static void update_interest(struct sk__session *s)
{
    const struct sk_server_config *cfg = &s->w->srv->cfg;
    s->paused = pending(s) > cfg->out_pause;
    unsigned mask = 0;
    if (!s->read_closed && !s->exiting && !s->paused)
        mask |= SK_READ;
    if (sk_buf_size(&s->out))
        mask |= SK_WRITE;
    sk_io_set(s->w->loop, &s->io, mask);
}

/* Sends what it can of p[0..n) (after anything already queued) and queues
 * the rest. Returns false when the session was closed. */
static bool send_or_queue(struct sk__session *s, const char *p, size_t n)
{
    struct sk__worker *w = s->w;
    if (sk_buf_size(&s->out) == 0 && n > 0) {
        ssize_t k = send(s->io.fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno != EAGAIN && errno != EINTR) {
            sk__session_close(s, SK__CLOSE_RESET);
            return false;
        }
        if (k > 0) {
            w->stats.bytes_out += (size_t)k;
            p += k;
            n -= (size_t)k;
        }
    }
    if (n > 0) {
        if (pending(s) + n > w->srv->cfg.out_limit) {
            sk__session_close(s, SK__CLOSE_OVERFLOW);
            return false;
        }
        if (sk_buf_append(&s->out, p, n) < 0) {
            sk__session_close(s, SK__CLOSE_ERROR);
            return false;
        }
    }
    return true;
}

/* Closes the session if it has said goodbye and everything is sent.
 * Returns false when it was closed. */
static bool maybe_finish(struct sk__session *s)
{
    if (pending(s) > 0 || s->dq_head)
        return true;
    if (s->exiting) {
        sk__session_close(s, SK__CLOSE_EXIT);
        return false;
    }
    if (s->read_closed || s->w->stopping) {
        sk__session_close(s, s->w->stopping ? SK__CLOSE_SHUTDOWN : SK__CLOSE_EOF);
        return false;
    }
    return true;
}

static void flush_out(struct sk__session *s)
{
    while (sk_buf_size(&s->out) > 0) {
        ssize_t k = send(s->io.fd, sk_buf_head(&s->out), sk_buf_size(&s->out), MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            sk__session_close(s, SK__CLOSE_RESET);
            return;
        }
        s->w->stats.bytes_out += (size_t)k;
        sk_buf_consume(&s->out, (size_t)k);
    }
    if (maybe_finish(s))
        update_interest(s);
}

/* ---- delayed replies (--delay) ---- */

static bool delay_push(struct sk__session *s, const char *msg, size_t n)
{
    struct sk__worker *w = s->w;
    enum sk_framing f = w->srv->cfg.framing;
    size_t len = sk_reply_len(f, n);
    struct sk__delayed *d = malloc(sizeof *d + len);
    if (!d) {
        sk__session_close(s, SK__CLOSE_ERROR);
        return false;
    }
    d->s = s;
    d->due_ms = sk_loop_now(w->loop) + w->srv->cfg.delay_ms;
    d->len = (uint32_t)len;
    sk_reply_write(f, msg, n, d->data);
    d->cnext = NULL;
    if (s->dq_tail)
        s->dq_tail->cnext = d;
    else
        s->dq_head = d;
    s->dq_tail = d;
    s->dq_bytes += (uint32_t)len;
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
        struct sk__session *s = d->s;
        dq_unlink(w, d);
        s->dq_head = d->cnext; /* d is always its session's oldest entry */
        if (!s->dq_head)
            s->dq_tail = NULL;
        s->dq_bytes -= d->len;
        bool alive = send_or_queue(s, d->data, d->len);
        free(d);
        if (alive)
            flush_out(s);
    }
    if (w->d_head)
        sk_timer_start_at(loop, t, w->d_head->due_ms, sk__worker_delay_cb);
}

/* ---- input ---- */

/* Handles one message; replies go to the worker's scratch buffer (or the
 * delay queue). Returns false when the session was closed. */
static bool on_message(struct sk__session *s, const char *msg, size_t n)
{
    struct sk__worker *w = s->w;
    if (sk_is_exit(msg, n)) {
        /* Replies still queued (or delayed) go out first; then we close. */
        s->exiting = true;
        return true;
    }
    s->msgs++;
    w->stats.msgs++;
    if (w->srv->cfg.delay_ms)
        return delay_push(s, msg, n);
    enum sk_framing f = w->srv->cfg.framing;
    char *dst = sk_buf_reserve(&w->wbuf, sk_reply_len(f, n));
    if (!dst) {
        sk__session_close(s, SK__CLOSE_ERROR);
        return false;
    }
    sk_buf_commit(&w->wbuf, sk_reply_write(f, msg, n, dst));
    return true;
}

/* Line framing: splits data into messages, keeping a partial line in s->in.
 * Returns false when the session was closed. */
static bool on_line_data(struct sk__session *s, const char *data, size_t n)
{
    size_t max = s->w->srv->cfg.max_msg;
    if (sk_buf_size(&s->in) > 0) {
        if (sk_buf_append(&s->in, data, n) < 0) {
            sk__session_close(s, SK__CLOSE_ERROR);
            return false;
        }
        data = sk_buf_head(&s->in);
        n = sk_buf_size(&s->in);
    }
    size_t used = 0;
    while (used < n && !s->exiting) {
        size_t mlen, consumed;
        int rc = sk_line_next(data + used, n - used, max, &mlen, &consumed);
        if (rc == SK_ETOOBIG) {
            /* Answer what came before, then the error line, then close. */
            struct sk__worker *w = s->w;
            bool alive = send_or_queue(s, sk_buf_head(&w->wbuf), sk_buf_size(&w->wbuf));
            w->wbuf.off = w->wbuf.len = 0;
            if (!alive)
                return false; /* s is gone */
            ssize_t k = send(s->io.fd, too_long_line, sizeof too_long_line - 1,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            (void)k;
            sk__session_close(s, SK__CLOSE_TOOLONG);
            return false;
        }
        if (rc == 0)
            break;
        if (!on_message(s, data + used, mlen))
            return false;
        used += consumed;
    }
    if (data == sk_buf_head(&s->in)) {
        sk_buf_consume(&s->in, used);
    } else if (used < n && !s->exiting && sk_buf_append(&s->in, data + used, n - used) < 0) {
        sk__session_close(s, SK__CLOSE_ERROR);
        return false;
    }
    if (s->exiting)
        sk_buf_free(&s->in); /* bytes after "exit" are ignored */
    return true;
}

static void on_readable(struct sk__session *s)
{
    struct sk__worker *w = s->w;
    bool line = w->srv->cfg.framing == SK_FRAMING_LINE;
    for (int i = 0; i < READS_PER_EVENT && !s->exiting && !s->read_closed; i++) {
        ssize_t n = recv(s->io.fd, w->rbuf, w->rbuf_size, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            sk__session_close(s, SK__CLOSE_RESET);
            return;
        }
        if (n == 0) {
            s->read_closed = true;
            break;
        }
        w->stats.bytes_in += (size_t)n;
        bool alive = line ? on_line_data(s, w->rbuf, (size_t)n)
                          : on_message(s, w->rbuf, (size_t)n);
        if (!alive)
            return;
        /* One send() for all the replies of this read. */
        alive = send_or_queue(s, sk_buf_head(&w->wbuf), sk_buf_size(&w->wbuf));
        w->wbuf.off = w->wbuf.len = 0; /* keep the memory for the next read */
        if (!alive)
            return;
        if (pending(s) > w->srv->cfg.out_pause)
            break;
        if ((size_t)n < w->rbuf_size)
            break; /* the socket is most likely drained */
    }
    touch(s);
    flush_out(s);
}

static void session_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)loop;
    struct sk__session *s = SK_CONTAINER_OF(io, struct sk__session, io);
    if ((events & SK_ERROR) && !(events & SK_WRITE) && sk_buf_size(&s->out)) {
        sk__session_close(s, SK__CLOSE_RESET);
        return;
    }
    if (events & SK_READ && !s->read_closed && !s->exiting && !s->paused) {
        on_readable(s);
        return; /* on_readable flushed already */
    }
    if (events & (SK_WRITE | SK_HUP | SK_ERROR))
        flush_out(s);
}

void sk__session_accepted(struct sk__worker *w, int fd, const struct sockaddr *peer)
{
    struct sk__session *s = calloc(1, sizeof *s);
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
    list_append(w, s);
    w->nsessions++;
    w->stats.conns++;
    char addr[SK_ADDRSTR_MAX];
    sk_log_printf(w->srv->cfg.log, "open %s",
                  sk_addr_format((struct sockaddr *)&s->peer, addr, sizeof addr));
    if (w->srv->cfg.idle_timeout_s && !sk_timer_armed(&w->idle_timer))
        arm_idle(w);
    size_t glen;
    const char *greeting = sk_greeting(w->srv->cfg.framing, &glen);
    if (send_or_queue(s, greeting, glen))
        update_interest(s);
}

void sk__worker_drain(struct sk__worker *w)
{
    for (struct sk__session *s = w->s_head, *next; s; s = next) {
        next = s->next;
        if (maybe_finish(s))
            update_interest(s);
    }
}
