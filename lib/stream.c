/* A non-blocking byte stream on the loop: reads, queued writes with back-
 * pressure, half-close with linger, idle deadline, memory accounting.
 *
 * Extracted from the server's session code, which is now its main user.
 * Memory is counted as malloc really holds it (capacities, block overhead,
 * plus what the owner reports in out_extra). Peers that do not read are
 * closed: with more than out_limit pending and nothing read for
 * OUT_STALL_MS (output-limit), or, the heaviest first, when all streams
 * sharing the account hold more than max_memory (memory): streams of
 * SHED_MIN or more, and smaller ones too from a group holding more than
 * its share of the budget. */
#include <errno.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr_int.h"
#include "alloc_int.h"
#include "sockit/err.h"
#include "stream_int.h"

/* Reads per readiness event before yielding to other streams. */
#define READS_PER_EVENT 4
/* A half-closed stream goes on reading and discarding what the peer still
 * sends for at most this long: closing with unread input would make the
 * kernel send a reset, which can destroy the last line before the peer
 * reads it. */
#define LINGER_MS 2000
/* A drain's half-closed streams: how often to look whether the peer has
 * acknowledged our last bytes. */
#define ACK_POLL_MS 5
/* A peer with more than out_limit pending that reads nothing for this long
 * is closed (reason output-limit). */
#define OUT_STALL_MS 5000
#define STALL_SCAN_MS 1000
/* Over the memory budget: reading pauses at this much output, and streams
 * holding at least SHED_MIN are closed, the heaviest first. */
#define PRESSURE_PAUSE (16 * 1024)
#define SHED_MIN (16 * 1024)
#define SHED_PER_TICK 16
/* The output-limit and budget checks run this often while the group's
 * streams hold SHED_MIN or more. */
#define MEM_CHECK_MS 100
/* A group adds its memory changes to the shared total in steps of at
 * least this (one atomic add per step, not per change). */
#define MEM_PUBLISH (256 * 1024)

#define DEFAULT_HIGH (256 * 1024)
#define DEFAULT_LIMIT (4 * 1024 * 1024)
#define DEFAULT_BUDGET ((size_t)256 << 20)
#define DEFAULT_READ (64 * 1024)
#define DEFAULT_SETUP_MS 10000


const char *sk_close_reason_name(enum sk_close_reason why)
{
    static const char *const names[] = {
        [SK_CLOSE_END] = "end",          [SK_CLOSE_EOF] = "eof",
        [SK_CLOSE_RESET] = "reset",       [SK_CLOSE_IDLE] = "idle-timeout",
        [SK_CLOSE_OUTPUT_LIMIT] = "output-limit", [SK_CLOSE_TOO_LONG] = "message-too-long",
        [SK_CLOSE_SHUTDOWN] = "shutdown", [SK_CLOSE_ERROR] = "error",
        [SK_CLOSE_MEMORY] = "memory",    [SK_CLOSE_HANDSHAKE_TIMEOUT] = "handshake-timeout",
        [SK_CLOSE_TLS] = "tls-error",     [SK_CLOSE_CONNECT_TIMEOUT] = "connect-timeout",
    };
    return (unsigned)why < sizeof names / sizeof names[0] ? names[why] : "?";
}

/* ---- the group's lists (least recently active first) ---- */

static void list_unlink(struct sk_stream **head, struct sk_stream **tail, struct sk_stream *s)
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

static void list_append(struct sk_stream **head, struct sk_stream **tail, struct sk_stream *s)
{
    s->prev = *tail;
    s->next = NULL;
    if (*tail)
        (*tail)->next = s;
    else
        *head = s;
    *tail = s;
}

void sk_stream_touch(struct sk_stream *s)
{
    struct sk_stream_group *g = s->g;
    if (s->lingering || s->setup)
        return; /* last_active_ms is its linger or set-up deadline */
    s->last_active_ms = sk_loop_now(g->loop);
    if (g->lim.idle_ms && g->s_tail != s) {
        list_unlink(&g->s_head, &g->s_tail, s);
        list_append(&g->s_head, &g->s_tail, s);
    }
}

static void idle_cb(struct sk_loop *loop, struct sk_timer *t);

static void arm_idle(struct sk_stream_group *g)
{
    if (g->lim.idle_ms && g->s_head && !g->stopping)
        sk_timer_start_at(g->loop, &g->idle_timer, g->s_head->last_active_ms + g->lim.idle_ms,
                          idle_cb);
}

/* True (and the stream touched) when the peer took some of what the
 * socket's send buffer held since the last look: progress we do not see as
 * a write event while the buffer stays over its wake-up mark. */
static bool draining(struct sk_stream *s)
{
    int q = 0;
    if (ioctl(s->io.fd, SIOCOUTQ, &q) < 0 || q == s->outq)
        return false;
    s->outq = q;
    sk_stream_touch(s);
    return true;
}

static void idle_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk_stream_group *g = SK_CONTAINER_OF(t, struct sk_stream_group, idle_timer);
    uint64_t limit = g->lim.idle_ms;
    while (g->s_head && g->s_head->last_active_ms + limit <= sk_loop_now(loop)) {
        struct sk_stream *s = g->s_head;
        if (s->g->cb->idle && s->g->cb->idle(s))
            sk_stream_touch(s); /* the owner is the idle one (a reply waits) */
        else if (!draining(s)) {
            /* A clean end for TLS: close_notify, unless a record is half
             * out (the alert would land inside it) or the socket is full. */
            if (s->x && s->x->ssl && !s->setup && sk_buf_size(&s->out) == 0)
                (void)sk__tls_stream_notify(s);
            sk_stream_close(s, SK_CLOSE_IDLE);
        }
    }
    arm_idle(g);
    sk__stream_group_reap(g);
}

/* ---- closing ---- */

void sk_stream_close(struct sk_stream *s, enum sk_close_reason why)
{
    struct sk_stream_group *g = s->g;
    if (s->closed)
        return;
    if (s->lingering)
        why = (enum sk_close_reason)s->linger_why; /* what really ended it */
    s->g->cb->close(s, why);
    /* The fd is never duplicated: close() alone leaves epoll. */
    sk_io_close(g->loop, &s->io);
    if (s->x)
        sk__stream_he_free(s);
    if (s->lingering) {
        list_unlink(&g->l_head, &g->l_tail, s);
        if (!g->l_head)
            sk_timer_stop(g->loop, &g->linger_timer);
    } else if (s->setup) {
        sk__stream_setup_leave(s);
        list_unlink(&g->s_head, &g->s_tail, s);
    } else {
        list_unlink(&g->s_head, &g->s_tail, s);
    }
    sk_buf_free(&s->in);
    sk_buf_free(&s->out);
    s->out_extra = 0;
    s->closed = true;
    sk__stream_account(s);
    s->next = g->dead;
    g->dead = s;
    g->n--;
    if (!sk__stream_group_busy(g)) {
        sk_timer_stop(g->loop, &g->mem_timer);
        if (g->stopping && g->emptied)
            g->emptied(g); /* the last stream of a draining group */
    }
}

void sk__stream_group_reap(struct sk_stream_group *g)
{
    while (g->dead) {
        struct sk_stream *s = g->dead;
        g->dead = s->next;
        if (s->x) {
            sk__tls_stream_free(s);
            free(s->x->err);
            free(s->x);
            s->x = NULL;
        }
        s->g->cb->release(s);
    }
}

/* ---- memory ---- */

/* Memory held for output: queued bytes and what the owner holds for it. */
static size_t out_held(const struct sk_stream *s)
{
    return sk_buf_held(&s->out) + s->out_extra;
}

static size_t held(const struct sk_stream *s)
{
    return out_held(s) + sk_buf_held(&s->in);
}

static bool over_budget(const struct sk_stream_group *g)
{
    return atomic_load_explicit(g->total, memory_order_relaxed) > g->lim.max_memory;
}

bool sk_stream_over_high_water(struct sk_stream *s)
{
    size_t out = out_held(s);
    size_t mark = s->paused ? s->g->lim.low_water : s->g->lim.high_water;
    return out > mark || (out > PRESSURE_PAUSE && over_budget(s->g));
}

static void mem_cb(struct sk_loop *loop, struct sk_timer *t);

static void publish(struct sk_stream_group *g)
{
    if (g->mem_unpub > 0)
        atomic_fetch_add_explicit(g->total, (size_t)g->mem_unpub, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(g->total, (size_t)-g->mem_unpub, memory_order_relaxed);
    g->mem_unpub = 0;
}

void sk__stream_account(struct sk_stream *s)
{
    struct sk_stream_group *g = s->g;
    size_t h = s->closed ? 0 : held(s);
    if (h == s->acct)
        return;
    g->mem += h - s->acct;
    g->mem_unpub += (long long)h - (long long)s->acct;
    s->acct = h;
    if (g->mem_unpub < MEM_PUBLISH && g->mem_unpub > -MEM_PUBLISH)
        return;
    publish(g);
    if (g->stopping || g->mem < SHED_MIN)
        return;
    if (over_budget(g)) /* shed now, from an entry point of its own */
        sk_timer_start_at(g->loop, &g->mem_timer, sk_loop_now(g->loop), mem_cb);
    else if (!sk_timer_armed(&g->mem_timer))
        sk_timer_start_at(g->loop, &g->mem_timer, sk_loop_now(g->loop) + MEM_CHECK_MS, mem_cb);
}

/* Closes peers that do not read: those over out_limit with nothing read
 * for OUT_STALL_MS, then, while the account is over its budget, the
 * heaviest streams of this group. */
static void mem_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk_stream_group *g = SK_CONTAINER_OF(t, struct sk_stream_group, mem_timer);
    uint64_t now = sk_loop_now(loop);
    size_t limit = g->lim.out_limit;
    if (g->mem > limit && now >= g->stall_scan_ms) {
        g->stall_scan_ms = now + STALL_SCAN_MS; /* a walk over every stream: not too often */
        for (struct sk_stream *s = g->s_head, *next; s; s = next) {
            next = s->next;
            if (out_held(s) > limit && s->last_active_ms + OUT_STALL_MS <= now && !draining(s))
                sk_stream_close(s, SK_CLOSE_OUTPUT_LIMIT);
        }
    }
    publish(g);
    /* Streams under SHED_MIN are spared while this group holds no more
     * than its share of the budget (the excess is another group's to
     * shed); past its share, many small streams are no less a hog than a
     * few big ones, and the heaviest go too. */
    size_t floor = g->mem > g->lim.max_memory / g->nshare ? 0 : SHED_MIN - 1;
    int shed = 0;
    for (; shed < SHED_PER_TICK && over_budget(g); shed++) {
        struct sk_stream *heaviest = NULL;
        size_t most = floor;
        struct sk_stream *lists[2] = {g->s_head, g->l_head};
        for (int i = 0; i < 2; i++)
            for (struct sk_stream *s = lists[i]; s; s = s->next)
                if (held(s) > most) {
                    most = held(s);
                    heaviest = s;
                }
        if (!heaviest)
            break;
        sk_stream_close(heaviest, SK_CLOSE_MEMORY);
        publish(g);
    }
    if (g->mem >= SHED_MIN && !g->stopping)
        sk_timer_start_at(loop, t, now + (shed == SHED_PER_TICK ? 1 : MEM_CHECK_MS), mem_cb);
    sk__stream_group_reap(g);
}

/* ---- output ---- */

void sk_stream_update(struct sk_stream *s, bool want_read)
{
    if (s->closed)
        return;
    sk__stream_account(s);
    s->reading = want_read;
    unsigned mask = 0;
    if (s->x && s->x->ssl && !s->x->broken) {
        mask = sk__tls_stream_mask(s, want_read);
    } else { /* plain, or TLS lingering past a failed session (see stream_tls.c) */
        if (s->lingering ? !s->read_closed : want_read && !s->read_closed && !s->g->stopping)
            mask |= SK_READ;
        if (sk_buf_size(&s->out) || s->connecting)
            mask |= SK_WRITE;
    }
    /* An interest the kernel would not take (epoll_ctl: out of memory)
     * would leave the stream waiting for an event that never comes. */
    if (s->io.active && sk_io_set(s->g->loop, &s->io, mask) < 0)
        sk_stream_close(s, SK_CLOSE_ERROR);
}

int sk_stream_write(struct sk_stream *s, const void *data, size_t n)
{
    const char *p = data;
    if (s->setup) /* not connected, or in the TLS handshake: queued */
        goto queue;
    if (s->x && s->x->ssl)
        return sk__tls_stream_write(s, p, n);
    if (sk_buf_size(&s->out) == 0 && n > 0) {
        ssize_t k = send(s->io.fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno != EAGAIN && errno != EINTR) {
            sk_stream_close(s, SK_CLOSE_RESET);
            return SK_ERR(EPIPE);
        }
        if (k > 0) {
            sk__stream_count_out(s, (size_t)k);
            p += k;
            n -= (size_t)k;
        }
    }
queue:
    if (n > 0 && sk_buf_append(&s->out, p, n) < 0) {
        sk_stream_close(s, SK_CLOSE_ERROR);
        return SK_ERR(ENOMEM);
    }
    return 0;
}

static void linger_cb(struct sk_loop *loop, struct sk_timer *t);

/* True while the peer has not acknowledged all we sent (our FIN included).
 * A drain closes a half-closed stream only then: closing with input unread
 * sends a reset, and a reset destroys what is still in flight (the last
 * line); waiting for the peer's FIN would hold the exit for its linger. */
static bool unacked(const struct sk_stream *s)
{
    int q = 0;
    return ioctl(s->io.fd, SIOCOUTQ, &q) == 0 && q > 0;
}

/* Half-closed: once the output is out, our FIN; the close comes with the
 * peer's FIN (or, in a drain, its acknowledgement of ours). Returns false
 * when the stream was closed. */
static bool linger_finish(struct sk_stream *s)
{
    if (sk_buf_size(&s->out) > 0)
        return true;
    if (s->x && s->x->ssl && !sk__tls_stream_notify(s))
        return true; /* close_notify waits for writability */
    if (!s->wr_shut) {
        shutdown(s->io.fd, SHUT_WR); /* the last line is out: our FIN follows */
        s->wr_shut = true;
    }
    if (s->read_closed || (s->g->stopping && !unacked(s))) {
        sk_stream_close(s, SK_CLOSE_ERROR); /* logged as linger_why */
        return false;
    }
    if (s->g->stopping) /* look again soon (no event says "acknowledged") */
        sk_timer_start(s->g->loop, &s->g->linger_timer, ACK_POLL_MS, linger_cb);
    return true;
}

/* What follows output progress: the owner's decision, or the linger's. */
void sk__stream_settle(struct sk_stream *s)
{
    if (!s->lingering)
        s->g->cb->flushed(s);
    else if (linger_finish(s))
        sk_stream_update(s, false);
}

void sk_stream_flush(struct sk_stream *s)
{
    if (s->closed || s->setup)
        return;
    if (s->x && s->x->ssl) {
        sk__tls_stream_flush(s);
        return;
    }
    bool progress = false;
    while (sk_buf_size(&s->out) > 0) {
        ssize_t k = send(s->io.fd, sk_buf_head(&s->out), sk_buf_size(&s->out), MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            sk_stream_close(s, SK_CLOSE_RESET);
            return;
        }
        sk__stream_count_out(s, (size_t)k);
        sk_buf_consume(&s->out, (size_t)k);
        progress = true;
    }
    if (progress)
        sk_stream_touch(s); /* a peer reading its replies is not idle */
    sk__stream_settle(s);
}

/* ---- half-close ---- */

static void linger_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk_stream_group *g = SK_CONTAINER_OF(t, struct sk_stream_group, linger_timer);
    if (g->stopping) {
        /* A drain: each closes once the peer has what we sent, or at its
         * linger's end (then the grace period's end closes the rest). */
        for (struct sk_stream *s = g->l_head, *next; s; s = next) {
            next = s->next;
            if (s->last_active_ms <= sk_loop_now(loop) ||
                (sk_buf_size(&s->out) == 0 && s->wr_shut && !unacked(s)))
                sk_stream_close(s, SK_CLOSE_ERROR);
        }
        if (g->l_head)
            sk_timer_start(loop, t, ACK_POLL_MS, linger_cb);
        sk__stream_group_reap(g);
        return;
    }
    while (g->l_head && g->l_head->last_active_ms <= sk_loop_now(loop))
        sk_stream_close(g->l_head, SK_CLOSE_ERROR);
    if (g->l_head)
        sk_timer_start_at(loop, t, g->l_head->last_active_ms, linger_cb);
    sk__stream_group_reap(g);
}

int sk_stream_shutdown(struct sk_stream *s, enum sk_close_reason why, const void *last,
                       size_t n)
{
    struct sk_stream_group *g = s->g;
    if (s->closed)
        return SK_ERR(EPIPE);
    if (s->lingering)
        return 0;
    if (s->setup) { /* nothing was said yet: nothing to finish */
        sk_stream_close(s, why);
        return SK_ERR(EPIPE);
    }
    sk_buf_free(&s->in);
    list_unlink(&g->s_head, &g->s_tail, s);
    s->lingering = true;
    s->linger_why = (uint8_t)why;
    s->last_active_ms = sk_loop_now(g->loop) + LINGER_MS;
    list_append(&g->l_head, &g->l_tail, s);
    if (!sk_timer_armed(&g->linger_timer))
        sk_timer_start_at(g->loop, &g->linger_timer, g->l_head->last_active_ms, linger_cb);
    return sk_stream_write(s, last, n);
}

/* One recv into the group's scratch: the count (0: the peer's FIN), or -1
 * when the socket is drained or the stream closed (a reset: s->closed). */
static ssize_t stream_recv(struct sk_stream *s, size_t want)
{
    for (;;) {
        ssize_t n = recv(s->io.fd, s->g->rbuf, want, 0);
        if (n >= 0) {
            sk__stream_count_in(s, (size_t)n);
            return n;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            sk_stream_close(s, SK_CLOSE_RESET);
        return -1;
    }
}

/* A half-closed stream is readable: discard. */
static void linger_read(struct sk_stream *s)
{
    struct sk_stream_group *g = s->g;
    for (int i = 0; i < READS_PER_EVENT && !s->read_closed; i++) {
        ssize_t n = stream_recv(s, g->lim.read_size);
        if (n < 0) {
            if (s->closed)
                return;
            break;
        }
        if (n == 0)
            s->read_closed = true;
    }
    sk_stream_flush(s);
}

/* ---- input ---- */

static void on_readable(struct sk_stream *s)
{
    struct sk_stream_group *g = s->g;
    if (s->lingering) {
        linger_read(s);
        return;
    }
    size_t want = s->read_max ? s->read_max : g->lim.read_size;
    for (int i = 0; i < READS_PER_EVENT && !s->read_closed; i++) {
        ssize_t n = stream_recv(s, want);
        if (n < 0) {
            if (s->closed)
                return;
            break;
        }
        if (n == 0) {
            s->read_closed = true;
            s->g->cb->read(s, NULL, 0);
            if (s->closed)
                return; /* whatever it returned: closed is closed */
            break; /* the flush below ends a linger the owner began here */
        }
        /* Half-closed in the callback: the flush below sends the FIN, and
         * the rest is discarded from the next event on. */
        bool more = s->g->cb->read(s, g->rbuf, (size_t)n);
        if (s->closed)
            return; /* even when it said "more": a closed stream is not touched */
        if (!more || s->lingering)
            break;
        if ((size_t)n < want)
            break; /* the socket is most likely drained */
    }
    sk_stream_touch(s);
    sk_stream_flush(s);
}

/* The connect's outcome: writable (or an error) ends it. */
static void connect_done(struct sk_stream *s)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->io.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    s->connecting = false;
    if (err) {
        char text[128];
        snprintf(text, sizeof text, "connect: %s", strerror(err));
        sk__stream_set_error(s, text);
        sk__stream_setup_fail(s, SK_ERR(err), SK_CLOSE_RESET);
    }
    else
        sk__stream_connect_ok(s);
}

void sk__stream_connect_ok(struct sk_stream *s)
{
    sk__stream_setup_leave(s);
    sk__nodelay(s->io.fd);
    if (s->x && s->x->ssl) {
        sk__tls_stream_begin(s);
        return;
    }
    if (s->g->cb->connected)
        s->g->cb->connected(s, 0);
    if (!s->closed) {
        sk_stream_touch(s);
        sk_stream_update(s, s->reading);
        if (sk_buf_size(&s->out))
            sk_stream_flush(s); /* written while connecting */
    }
}

void sk__stream_setup_fail(struct sk_stream *s, int err, enum sk_close_reason why)
{
    if (s->closed)
        return;
    s->connecting = false;
    if (s->g->cb->connected)
        s->g->cb->connected(s, err);
    sk_stream_close(s, why);
}

void sk__stream_io_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)loop;
    struct sk_stream *s = SK_CONTAINER_OF(io, struct sk_stream, io);
    struct sk_stream_group *g = s->g;
    if (s->connecting) {
        if (events & (SK_WRITE | SK_HUP | SK_ERROR))
            connect_done(s);
    } else if ((events & (SK_HUP | SK_ERROR)) && (s->read_closed || (events & SK_ERROR)) &&
               !sk__stream_reads_first(s, events)) {
        /* A socket error, or a hang-up after the peer's FIN was read: the
         * peer is gone, nothing more can be read or sent. epoll reports
         * these whatever the interest mask, so a stream waiting with no
         * interest (its owner waiting, or paused) must not wait here: it
         * would be woken again at once, for as long as it waited. */
        sk_stream_close(s, SK_CLOSE_RESET);
    } else if ((events & SK_READ) && !s->read_closed && (s->lingering || s->reading)) {
        on_readable(s); /* flushes too */
    } else if (events & (SK_WRITE | SK_HUP | SK_ERROR)) {
        sk_stream_flush(s);
    }
    sk__stream_group_reap(g);
}

void sk__stream_attach(struct sk_stream_group *g, struct sk_stream *s)
{
    s->g = g;
    s->reading = true;
    s->last_active_ms = sk_loop_now(g->loop);
    list_append(&g->s_head, &g->s_tail, s);
    g->n++;
    if (g->lim.idle_ms && !sk_timer_armed(&g->idle_timer))
        arm_idle(g);
}

int sk_stream_open(struct sk_stream_group *g, struct sk_stream *s, int fd)
{
    memset(s, 0, sizeof *s);
    int rc = sk_io_start(g->loop, &s->io, fd, SK_READ, sk__stream_io_cb);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    sk__stream_attach(g, s);
    return 0;
}

int sk_stream_connect(struct sk_stream_group *g, struct sk_stream *s, const struct sockaddr *sa,
                      socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SK_ERR(errno);
    if (connect(fd, sa, len) < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return SK_ERR(e);
    }
    int rc = sk_stream_open(g, s, fd);
    if (rc < 0)
        return rc;
    s->connecting = true;
    sk__stream_setup_enter(s, SK__SETUP_CONNECT);
    sk_io_set(g->loop, &s->io, SK_WRITE); /* writable: connected, or failed */
    return 0;
}

/* ---- set-up deadlines: a FIFO list per phase (one duration each), one timer ---- */

static void setup_cb(struct sk_loop *loop, struct sk_timer *t);

static void arm_setup(struct sk_stream_group *g)
{
    uint64_t due = UINT64_MAX;
    if (g->c_head)
        due = g->c_head->last_active_ms;
    if (g->h_head && g->h_head->last_active_ms < due)
        due = g->h_head->last_active_ms;
    if (due == UINT64_MAX)
        sk_timer_stop(g->loop, &g->setup_timer);
    else if (!sk_timer_armed(&g->setup_timer) || g->setup_timer.due_ms != due)
        sk_timer_start_at(g->loop, &g->setup_timer, due, setup_cb);
}

static void setup_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk_stream_group *g = SK_CONTAINER_OF(t, struct sk_stream_group, setup_timer);
    uint64_t now = sk_loop_now(loop);
    while (g->c_head && g->c_head->last_active_ms <= now) {
        sk__stream_set_error(g->c_head, "connect timed out");
        sk__stream_setup_fail(g->c_head, SK_ETIMEDOUT, SK_CLOSE_CONNECT_TIMEOUT);
    }
    while (g->h_head && g->h_head->last_active_ms <= now) {
        sk__stream_set_error(g->h_head, "TLS handshake timed out");
        sk__stream_setup_fail(g->h_head, SK_ETIMEDOUT, SK_CLOSE_HANDSHAKE_TIMEOUT);
    }
    arm_setup(g);
    sk__stream_group_reap(g);
}

void sk__stream_setup_enter(struct sk_stream *s, int phase)
{
    struct sk_stream_group *g = s->g;
    if (s->setup)
        sk__stream_setup_leave(s);
    list_unlink(&g->s_head, &g->s_tail, s);
    uint64_t ms = phase == SK__SETUP_CONNECT ? g->lim.connect_ms : g->lim.handshake_ms;
    /* The clock, not the loop's: that is stale when a stream is set up
     * before the loop runs (after a slow start, the deadline would be
     * short by that much). Same base; one call per set-up phase. */
    uint64_t now = sk_now_ms();
    s->last_active_ms = ms > UINT64_MAX - now ? UINT64_MAX - 1 : now + ms;
    s->setup = (uint8_t)phase;
    if (phase == SK__SETUP_CONNECT)
        list_append(&g->c_head, &g->c_tail, s);
    else
        list_append(&g->h_head, &g->h_tail, s);
    arm_setup(g);
}

/* Back on the idle list (the caller unlinks it again when closing). */
void sk__stream_setup_leave(struct sk_stream *s)
{
    struct sk_stream_group *g = s->g;
    if (!s->setup)
        return;
    if (s->setup == SK__SETUP_CONNECT)
        list_unlink(&g->c_head, &g->c_tail, s);
    else
        list_unlink(&g->h_head, &g->h_tail, s);
    s->setup = SK__SETUP_NONE;
    s->last_active_ms = sk_loop_now(g->loop);
    list_append(&g->s_head, &g->s_tail, s);
    arm_setup(g);
    if (g->lim.idle_ms && !sk_timer_armed(&g->idle_timer))
        arm_idle(g);
}

struct sk__stream_ext *sk__stream_ext(struct sk_stream *s)
{
    if (!s->x && (s->x = sk__calloc(1, sizeof *s->x)))
        s->x->verify = 0; /* X509_V_OK */
    return s->x;
}

void sk__stream_set_error(struct sk_stream *s, const char *text)
{
    struct sk__stream_ext *x = sk__stream_ext(s);
    if (!x || x->err)
        return; /* the first failure is the one to tell */
    x->err = sk__strdup(text);
}

const char *sk_stream_error(const struct sk_stream *s)
{
    return s->x && s->x->err ? s->x->err : "";
}

/* ---- the group ---- */

int sk__stream_group_init(struct sk_stream_group *g, struct sk_loop *loop,
                          const struct sk_stream_cbs *cb, const struct sk_stream_limits *lim,
                          atomic_size_t *total, unsigned nshare)
{
    memset(g, 0, sizeof *g);
    g->loop = loop;
    g->cb = cb;
    g->lim = *lim;
    if (!g->lim.high_water)
        g->lim.high_water = DEFAULT_HIGH;
    if (!g->lim.low_water || g->lim.low_water > g->lim.high_water)
        g->lim.low_water = g->lim.high_water;
    if (!g->lim.out_limit)
        g->lim.out_limit = DEFAULT_LIMIT;
    if (!g->lim.max_memory)
        g->lim.max_memory = DEFAULT_BUDGET;
    if (!g->lim.read_size)
        g->lim.read_size = DEFAULT_READ;
    if (!g->lim.connect_ms)
        g->lim.connect_ms = DEFAULT_SETUP_MS;
    if (!g->lim.handshake_ms)
        g->lim.handshake_ms = DEFAULT_SETUP_MS;
    g->total = total ? total : &g->own_total;
    g->nshare = nshare ? nshare : 1;
    g->bytes = &g->own_bytes;
    g->rbuf = sk__malloc(g->lim.read_size);
    return g->rbuf ? 0 : SK_ERR(ENOMEM);
}

void sk__stream_group_close_all(struct sk_stream_group *g, enum sk_close_reason why)
{
    while (g->c_head)
        sk_stream_close(g->c_head, why);
    while (g->h_head)
        sk_stream_close(g->h_head, why);
    while (g->s_head)
        sk_stream_close(g->s_head, why);
    while (g->l_head)
        sk_stream_close(g->l_head, why);
    sk__stream_group_reap(g);
}

void sk__stream_group_drain(struct sk_stream_group *g)
{
    g->stopping = true;
    sk_timer_stop(g->loop, &g->idle_timer);
    while (g->c_head) /* nothing said yet: nothing to finish */
        sk_stream_close(g->c_head, SK_CLOSE_SHUTDOWN);
    while (g->h_head)
        sk_stream_close(g->h_head, SK_CLOSE_SHUTDOWN);
    struct sk_stream *lists[2] = {g->s_head, g->l_head};
    for (int i = 0; i < 2; i++) {
        for (struct sk_stream *s = lists[i], *next; s; s = next) {
            next = s->next;
            if (!s->lingering && s->g->cb->stop)
                s->g->cb->stop(s);
            else
                sk__stream_settle(s);
        }
    }
    sk__stream_group_reap(g);
}

void sk__stream_group_fini(struct sk_stream_group *g, enum sk_close_reason why)
{
    if (g->loop) {
        sk__stream_group_close_all(g, why);
        sk_timer_stop(g->loop, &g->idle_timer);
        sk_timer_stop(g->loop, &g->linger_timer);
        sk_timer_stop(g->loop, &g->mem_timer);
        sk_timer_stop(g->loop, &g->setup_timer);
    }
    free(g->rbuf);
    g->rbuf = NULL;
    g->loop = NULL;
}

struct sk_stream_group *sk_stream_group_new(struct sk_loop *loop, const struct sk_stream_cbs *cb,
                                            const struct sk_stream_limits *lim, int *err)
{
    static const struct sk_stream_limits none = {0};
    struct sk_stream_group *g = sk__malloc(sizeof *g);
    int rc = g ? sk__stream_group_init(g, loop, cb, lim ? lim : &none, NULL, 1) : SK_ERR(ENOMEM);
    if (rc < 0) {
        if (g)
            sk__stream_group_fini(g, SK_CLOSE_SHUTDOWN);
        free(g);
        if (err)
            *err = rc;
        return NULL;
    }
    return g;
}

void sk_stream_group_free(struct sk_stream_group *g)
{
    if (!g)
        return;
    sk__stream_group_fini(g, SK_CLOSE_SHUTDOWN);
    free(g);
}
