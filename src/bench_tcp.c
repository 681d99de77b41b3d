/* sockit bench: one worker's TCP connections.
 *
 * Each connection runs through
 *   IDLE -> CONNECTING -> GREETING -> READY -> (closed: BACKOFF or DONE)
 * on the worker's event loop. READY connections carry requests: closed loop
 * (a reply lets the connection send again, up to -P in flight) or open loop
 * (--rate: the worker owns a schedule of intended send times and hands due
 * requests to connections with room; latency counts from the intended time).
 * --connect closes a connection as soon as it is READY and starts it again;
 * --idle keeps every connection READY without sending anything; --probe
 * then sends one request on a sample of them (on SIGUSR1, or when the hold
 * ends) and checks the replies.
 *
 * The bytes go through the library's stream (sockit/stream.h): one group
 * per worker, one stream per connection attempt, allocated apart from its
 * connection (struct bench_link) because a closed stream is released only
 * at the end of the loop callback that closed it, while its connection may
 * start again at once (--connect). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "sockit/stream.h"

#include "bench.h"
#include "reply.h"

#define RETRY_MS 100
/* Failures in a row (no reply, no connect in between) that end the run. */
#define GIVE_UP_AFTER(w) (3 * (w)->nconns + 3)

enum conn_state { C_IDLE, C_CONNECTING, C_GREETING, C_READY, C_BACKOFF, C_DONE };

/* One connection attempt's stream; c is NULL once its connection let go
 * of it (then only the release frees it). */
struct bench_link {
    struct sk_stream st;
    struct bench_conn *c;
};

struct bench_conn {
    struct bench_link *link; /* NULL while no socket is open */
    struct bench_worker *w;
    enum conn_state state;
    bool settled;           /* counted in w->settled already */
    struct sk_timer retry;
    uint64_t started_ns;    /* connect began */
    struct bench_req *ring; /* depth slots, oldest at head */
    unsigned head, count;
    struct match_state ms;
    size_t greet_pos;
    uint64_t greet_ns;      /* the last greeting bytes came */
    struct sk_tls_session *session; /* --tls-resume: offered on the next connect */
};

static void conn_start(struct bench_conn *c);
static void finish(struct bench_worker *w);
static void probe_check(struct bench_worker *w);
static void end_cb(struct sk_loop *loop, struct sk_timer *t);

static bool open_loop(const struct bench_worker *w)
{
    return w->o->rate > 0;
}

static void pace_stop(struct bench_worker *w)
{
    if (w->pace_on) {
        sk_io_stop(w->loop, &w->pace);
        w->pace_on = false;
    }
}

/* ---- bookkeeping ---- */


static void settle(struct bench_worker *w, struct bench_conn *c);

/* Finished when nothing more is to be sent (-n used up, or -d over) and
 * nothing is in flight any more: every measured request gets its reply or
 * its timeout, so "replies" and "sent" agree unless errors say why. */
static void maybe_done(struct bench_worker *w)
{
    if (w->o->mode == BENCH_IDLE) {
        probe_check(w); /* the hold's end, not the replies, ends idle mode */
        return;
    }
    bool no_more = w->gave_up || (w->has_quota ? w->quota == 0 : w->draining);
    if (w->finishing || !no_more || w->inflight > 0)
        return;
    if (w->o->mode == BENCH_CONNECT && (w->connecting > 0 || w->greeting > 0))
        return;
    finish(w);
}

static void record(struct bench_worker *w, const struct bench_req *r, uint64_t now)
{
    w->failures = 0;
    if (!bench_measured(w->sh, r->intended))
        return;
    w->st.replies++;
    sk_hist_record(&w->lat, now - r->intended);
    if (open_loop(w))
        sk_hist_record(&w->svc, now - r->sent);
    w->last_ns = now;
}

static void note_first(struct bench_worker *w, uint64_t t)
{
    if (bench_measured(w->sh, t) && (w->first_ns == 0 || t < w->first_ns))
        w->first_ns = t;
}

/* ---- closing ---- */

/* Lets go of c's stream (its close is then no news to c); returns it. */
static struct sk_stream *detach(struct bench_conn *c)
{
    struct bench_link *l = c->link;
    c->link = NULL;
    l->c = NULL;
    c->w->st.bytes_out -= sk_stream_queued(&l->st); /* counted when written */
    return &l->st;
}

/* --tls-resume: keeps the session of c's stream for its next connect, the
 * latest one (TLS 1.3 tickets are meant for one use; a resumed handshake
 * brings a new one). Asked at the close: by then the server's first bytes,
 * and the tickets before them, have come. */
static void keep_session(struct bench_conn *c, const struct sk_stream *s)
{
    struct sk_tls_session *sess = c->w->o->tls_resume ? sk_stream_tls_session(s) : NULL;
    if (sess) {
        sk_tls_session_free(c->session);
        c->session = sess;
    }
}

/* Closes c's socket; its requests in flight stay in its ring. */
static void conn_hang_up(struct bench_conn *c, bool reset)
{
    if (c->link) {
        keep_session(c, &c->link->st);
        struct sk_stream *s = detach(c);
        if (reset) {
            /* Connect mode: an RST leaves no TIME_WAIT behind on our side,
             * so the run is not bounded by the ephemeral port range. */
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt(s->io.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        sk_stream_close(s, SK_CLOSE_END);
    }
    if (c->state == C_CONNECTING)
        c->w->connecting--;
    else if (c->state == C_GREETING)
        c->w->greeting--;
    c->ms = (struct match_state){0};
    c->greet_pos = 0;
    c->state = C_IDLE; /* closed; the caller says what comes next */
}

static void drop_requests(struct bench_conn *c)
{
    c->w->inflight -= c->count;
    c->head = c->count = 0;
}

static void conn_close(struct bench_conn *c, bool reset)
{
    conn_hang_up(c, reset);
    drop_requests(c);
}

/* Counts c's requests in flight as errors of class cls (measured ones). */
static uint64_t count_lost(struct bench_conn *c, enum bench_err cls)
{
    struct bench_worker *w = c->w;
    uint64_t lost = 0;
    for (unsigned i = 0; i < c->count; i++)
        lost += bench_measured(w->sh, c->ring[(c->head + i) % w->o->depth].intended);
    w->st.errors[cls] += lost;
    return lost;
}

static void retry_cb(struct sk_loop *loop, struct sk_timer *t)
{
    (void)loop;
    struct bench_conn *c = SK_CONTAINER_OF(t, struct bench_conn, retry);
    conn_start(c);
}

static void pump_connects(struct bench_worker *w);

/* Counts an error (each request in flight is one; a failed connect is one),
 * closes the connection and schedules a new one. */
static void conn_fail(struct bench_conn *c, enum bench_err cls, int rc)
{
    struct bench_worker *w = c->w;
    uint64_t lost = count_lost(c, cls);
    bool measured_attempt = c->count == 0 && bench_measured(w->sh, c->started_ns);
    if (!lost && (measured_attempt || w->o->mode == BENCH_IDLE))
        w->st.errors[cls]++;
    /* A session that was up and failed (a server killed mid-run): counted
     * apart from its requests, then reconnected below. */
    if ((c->state == C_GREETING || c->state == C_READY) && !w->finishing)
        w->st.sessions_failed++;
    bool first = !w->ever_connected && c->state == C_CONNECTING;
    conn_close(c, false);
    if (first) {
        /* Nothing ever connected: the target is not there. Stop the run
         * instead of retrying against it until the deadline. */
        w->fatal = rc;
        snprintf(w->fatal_what, sizeof w->fatal_what,
                 rc == SK_ETLS || rc == SK_ETLSVERIFY ? "TLS handshake with %s" : "connect to %s",
                 w->o->target);
        atomic_store(&w->sh->stop, true);
        c->state = C_DONE;
        finish(w);
        return;
    }
    settle(w, c);
    if (w->o->mode != BENCH_IDLE && !w->gave_up && ++w->failures > GIVE_UP_AFTER(w)) {
        /* Every connection keeps failing: retrying would never end with -n.
         * Nothing more is sent; what is in flight elsewhere still gets its
         * reply or its error (each up to --timeout), so the counts add up. */
        w->gave_up = true;
    }
    if (w->finishing || w->gave_up || w->o->mode == BENCH_IDLE) {
        c->state = C_DONE; /* idle mode counts failures; it does not retry */
        pump_connects(w);
        maybe_done(w);
        return;
    }
    c->state = C_BACKOFF;
    bench_timer_start(w, &c->retry, RETRY_MS, retry_cb);
    pump_connects(w);
    maybe_done(w);
}

/* ---- sending ---- */

/* Sends (or queues) p[0..n) on c's stream. A stream that fails the write
 * has closed, and its close callback failed c. */
static void send_bytes(struct bench_conn *c, const char *p, size_t n)
{
    struct sk_stream *s = &c->link->st;
    c->w->st.bytes_out += n;
    if (sk_stream_write(s, p, n) == 0 && sk_stream_queued(s) > 0)
        sk_stream_update(s, true); /* wait for room */
}

/* Puts k requests in flight, the i-th intended at intended(i). */
static void push(struct bench_conn *c, unsigned k, uint64_t intended0, double step, uint64_t now)
{
    struct bench_worker *w = c->w;
    unsigned depth = w->o->depth;
    for (unsigned i = 0; i < k; i++) {
        struct bench_req *r = &c->ring[(c->head + c->count + i) % depth];
        r->intended = step > 0 ? intended0 + (uint64_t)(step * i) : now;
        r->sent = now;
        if (bench_measured(w->sh, r->intended) && w->o->mode != BENCH_CONNECT)
            w->st.sent++; /* connect mode counts connects, in conn_start() */
    }
    note_first(w, step > 0 ? intended0 : now);
    c->count += k;
    w->inflight += k;
    send_bytes(c, w->reqs, (size_t)k * w->o->req_len);
}

/* Closed loop: fills the connection up to -P in flight. */
static void fill(struct bench_conn *c)
{
    struct bench_worker *w = c->w;
    unsigned room = w->o->depth - c->count;
    if (room == 0 || w->finishing || w->gave_up || w->draining)
        return;
    uint64_t now = sk_now_ns();
    if (w->sh->end_ns && now >= w->sh->end_ns)
        return;
    if (w->has_quota && now >= w->sh->measure_ns) {
        if (w->quota < room)
            room = (unsigned)w->quota;
        w->quota -= room;
    }
    if (room)
        push(c, room, 0, 0, now);
}

static uint64_t intended_at(const struct bench_worker *w, uint64_t k)
{
    return w->sched_start + (uint64_t)(w->interval_ns * (double)k);
}

/* Open loop: hands due requests to c while it has room. */
static void dispatch_on(struct bench_conn *c, uint64_t now)
{
    struct bench_worker *w = c->w;
    uint64_t backlog = w->scheduled - w->dispatched;
    unsigned room = w->o->depth - c->count;
    unsigned k = backlog < room ? (unsigned)backlog : room;
    if (k == 0 || c->state != C_READY || w->draining || w->gave_up)
        return;
    uint64_t first = intended_at(w, w->dispatched);
    w->dispatched += k;
    push(c, k, first, w->interval_ns, now);
}

static void dispatch(struct bench_worker *w, uint64_t now)
{
    for (unsigned n = 0; n < w->nconns && w->scheduled > w->dispatched; n++) {
        struct bench_conn *c = &w->conns[w->rr];
        w->rr = (w->rr + 1) % w->nconns;
        dispatch_on(c, now);
    }
}

/* Arms the pacing timerfd for the absolute time at_ns. */
static void pace_arm(struct bench_worker *w, uint64_t at_ns)
{
    struct itimerspec its = {.it_value = {.tv_sec = (time_t)(at_ns / 1000000000u),
                                          .tv_nsec = (long)(at_ns % 1000000000u)}};
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1; /* all zero would disarm it */
    timerfd_settime(w->pace.fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* The number of schedule slots intended before t: the k with
 * intended_at(k) < t. O(1): a division, corrected for its rounding. */
static uint64_t slots_before(const struct bench_worker *w, uint64_t t)
{
    if (t <= w->sched_start)
        return 0;
    double q = (double)(t - w->sched_start) / w->interval_ns;
    uint64_t k = q >= 1.8e19 ? UINT64_MAX / 2 : (uint64_t)q;
    while (k > 0 && intended_at(w, k - 1) >= t)
        k--;
    while (intended_at(w, k) < t)
        k++;
    return k;
}

/* Open loop: every slot whose time has come is scheduled at once, however
 * many (a high --rate or a late wake-up must not cost one step per slot). */
static void pace_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    struct bench_worker *w = SK_CONTAINER_OF(io, struct bench_worker, pace);
    uint64_t expirations;
    while (read(io->fd, &expirations, sizeof expirations) < 0 && errno == EINTR)
        ;
    uint64_t now = sk_now_ns();
    uint64_t due = slots_before(w, now + 1);
    bool more = true;
    if (w->sh->end_ns) {
        uint64_t last = slots_before(w, w->sh->end_ns); /* -d: none at or after the end */
        if (due >= last) {
            due = last;
            more = false;
        }
    }
    if (w->has_quota && due > w->scheduled) {
        /* -n: slots from the end of the warm-up on use up the quota. */
        uint64_t from = slots_before(w, w->sh->measure_ns);
        if (from < w->scheduled)
            from = w->scheduled;
        uint64_t need = due > from ? due - from : 0;
        if (need >= w->quota) {
            due = from + w->quota;
            need = w->quota;
            more = false;
        }
        w->quota -= need;
    }
    if (due > w->scheduled)
        w->scheduled = due;
    dispatch(w, now);
    if (w->finishing)
        return;
    if (more)
        pace_arm(w, intended_at(w, w->scheduled));
    else
        pace_stop(w);
    maybe_done(w);
}

static void start_schedule(struct bench_worker *w)
{
    w->sched_start = sk_now_ns();
    if (sk_io_start(w->loop, &w->pace, w->pace.fd, SK_READ, pace_cb) < 0) {
        w->fatal = SK_ERR(ENOMEM);
        snprintf(w->fatal_what, sizeof w->fatal_what, "pacing timer");
        atomic_store(&w->sh->stop, true);
        finish(w);
        return;
    }
    w->pace_on = true;
    pace_arm(w, w->sched_start);
}

/* ---- connection states ---- */

static void settle(struct bench_worker *w, struct bench_conn *c)
{
    if (c->settled)
        return;
    c->settled = true;
    if (++w->settled < w->nconns)
        return;
    if (w->o->mode == BENCH_IDLE) {
        uint64_t now = sk_now_ns();
        w->hold_start_ns = now;
        atomic_store(&w->pub_settled, true);
        bench_timer_start(w, &w->end, (uint64_t)(w->o->idle_s * 1000), end_cb);
    } else if (open_loop(w) && !w->sched_start) {
        start_schedule(w);
    }
}

/* Connect mode: one connection's cycle is complete; close and go again. */
static void connect_done(struct bench_conn *c, uint64_t now)
{
    struct bench_req r = {.intended = c->started_ns, .sent = c->started_ns};
    record(c->w, &r, now);
    conn_close(c, true);
    c->state = C_IDLE;
    conn_start(c);
}

/* Sends again the requests a draining server left unread (said_bye), their
 * intended times kept: the reconnect counts in their latency. */
static void resend(struct bench_conn *c)
{
    struct bench_worker *w = c->w;
    uint64_t now = sk_now_ns();
    for (unsigned i = 0; i < c->count; i++)
        c->ring[(c->head + i) % w->o->depth].sent = now;
    send_bytes(c, w->reqs, (size_t)c->count * w->o->req_len);
}

static void on_ready(struct bench_conn *c)
{
    struct bench_worker *w = c->w;
    if (c->state == C_GREETING)
        w->greeting--;
    c->state = C_READY;
    switch (w->o->mode) {
    case BENCH_CONNECT:
        settle(w, c);
        if (w->o->raw && !w->o->greeting) {
            /* No greeting to wait for: one request and its reply stand in
             * for it (redis: PING, +PONG), so the server has to accept. */
            push(c, 1, c->started_ns, 1, sk_now_ns());
            return;
        }
        connect_done(c, sk_now_ns());
        return;
    case BENCH_IDLE:
        settle(w, c);
        pump_connects(w);
        return;
    default:
        settle(w, c);
        pump_connects(w);
        if (c->count)
            resend(c);
        if (c->state != C_READY)
            return; /* the write failed: closed */
        if (open_loop(w))
            dispatch_on(c, sk_now_ns());
        else
            fill(c);
        return;
    }
}

static void on_connected(struct bench_conn *c)
{
    struct bench_worker *w = c->w;
    w->connecting--;
    w->ever_connected = true;
    w->st.connects++;
    w->st.resumed += sk_stream_tls_resumed(&c->link->st);
    if (w->o->greeting) {
        c->state = C_GREETING;
        w->greeting++;
    } else {
        on_ready(c);
    }
}

/* The connect (its outcome comes to on_stream_connected). */
static void dial(struct bench_conn *c)
{
    struct bench_worker *w = c->w;
    struct bench_link *l = malloc(sizeof *l);
    if (!l) {
        conn_fail(c, BERR_CONNECT, SK_ERR(ENOMEM));
        return;
    }
    l->c = c;
    int rc = sk_stream_connect(w->streams, &l->st, (const struct sockaddr *)&w->sh->addr,
                               w->sh->addrlen);
    if (rc < 0) {
        free(l);
        conn_fail(c, BERR_CONNECT, rc);
        return;
    }
    c->link = l;
    int one = 1;
    setsockopt(l->st.io.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!w->sh->tls)
        return;
    if (sk_stream_start_tls(&l->st, w->sh->tls, w->sh->tls_name) < 0)
        return; /* closed: its close callback failed c */
    if (c->session && sk_stream_tls_set_session(&l->st, c->session) < 0) {
        sk_tls_session_free(c->session); /* a full handshake, then */
        c->session = NULL;
    }
}

static void conn_start(struct bench_conn *c)
{
    struct bench_worker *w = c->w;
    if (w->finishing || w->gave_up || atomic_load_explicit(&w->sh->stop, memory_order_relaxed)) {
        if (c->count) { /* kept after a bye: never answered now */
            if (!w->finishing)
                count_lost(c, BERR_RESET);
            drop_requests(c);
        }
        c->state = C_DONE;
        maybe_done(w);
        return;
    }
    uint64_t now = sk_now_ns();
    if (w->o->mode == BENCH_CONNECT) {
        if (w->sh->end_ns && now >= w->sh->end_ns) {
            c->state = C_DONE;
            return;
        }
        if (w->has_quota && now >= w->sh->measure_ns) {
            if (w->quota == 0) {
                c->state = C_DONE;
                maybe_done(w);
                return;
            }
            w->quota--;
        }
        if (bench_measured(w->sh, now))
            w->st.sent++;
        note_first(w, now);
    }
    c->started_ns = now;
    c->state = C_CONNECTING;
    w->connecting++;
    dial(c);
}

static void pump_connects(struct bench_worker *w)
{
    while (w->next_connect < w->nconns && w->connecting < w->o->connect_concurrency &&
           !w->finishing && !w->gave_up)
        conn_start(&w->conns[w->next_connect++]);
}

/* ---- reading ---- */

/* The framing the greeting so far (what matched of it, then data[0..n))
 * shows the server uses, when it is not ours (see reply_greeting_framing);
 * else -1. */
static int other_framing(const struct bench_conn *c, const char *data, size_t n)
{
    const struct bench_opts *o = c->w->o;
    char seen[16];
    if (o->raw || c->greet_pos + n > sizeof seen)
        return -1; /* longer than any greeting */
    memcpy(seen, o->greeting, c->greet_pos);
    if (n)
        memcpy(seen + c->greet_pos, data, n);
    int f = reply_greeting_framing(seen, c->greet_pos + n);
    return f >= 0 && f != (int)o->framing ? f : -1;
}

/* The server speaks the other framing: every connection would fail alike,
 * so the run ends here, saying so (cmd_bench.c prints the advice). */
static void framing_mismatch(struct bench_worker *w, int theirs)
{
    w->framing_seen = theirs;
    w->fatal = SK_EPROTO;
    snprintf(w->fatal_what, sizeof w->fatal_what, "greeting from %s", w->o->target);
    atomic_store(&w->sh->stop, true);
    finish(w);
}

/* The server is draining and said so (GREETING_SHUTDOWN): it answered
 * what it read and read nothing after, so the requests still in flight are
 * sent again on a new connection (to the same address: behind a balancer,
 * another server) instead of counting as errors, and the session did not
 * fail. Other modes have no request to carry over: the session failed.
 * Returns false (the connection was closed). */
static bool said_bye(struct bench_conn *c)
{
    struct bench_worker *w = c->w;
    if (w->o->mode != BENCH_REQUEST) {
        conn_fail(c, BERR_RESET, SK_ECLOSED);
        return false;
    }
    w->st.reconnects++;
    /* A server that only ever says bye would be reconnected to forever:
     * a bye counts toward giving up as a failure does, until a reply. */
    if (++w->failures > GIVE_UP_AFTER(w))
        w->gave_up = true;
    conn_hang_up(c, false);
    conn_start(c);
    return false;
}

/* Consumes the greeting from data; returns how many bytes it took, or -1
 * after failing the connection. */
static long eat_greeting(struct bench_conn *c, const char *data, size_t n)
{
    const struct bench_opts *o = c->w->o;
    if (c->greet_pos == 0 && match_bye_starts(&o->reply, &c->ms, data, n)) {
        /* A server that began draining as it accepted us. */
        if (match_bye(&o->reply, &c->ms, data, n) < 0)
            conn_fail(c, BERR_PROTOCOL, SK_EPROTO);
        else if (!c->ms.said_bye)
            return (long)n;
        else
            said_bye(c);
        return -1;
    }
    size_t want = o->greeting_len - c->greet_pos;
    size_t k = n < want ? n : want;
    int theirs = other_framing(c, data, n);
    if (theirs >= 0 && (k < n || memcmp(data, o->greeting + c->greet_pos, k) != 0)) {
        framing_mismatch(c->w, theirs);
        return -1;
    }
    if (memcmp(data, o->greeting + c->greet_pos, k) != 0) {
        conn_fail(c, BERR_PROTOCOL, SK_EPROTO);
        return -1;
    }
    c->greet_pos += k;
    c->greet_ns = sk_now_ns();
    if (c->greet_pos == o->greeting_len) {
        if (k < n && !match_bye_starts(&o->reply, &c->ms, data + k, n - k)) {
            /* More than the greeting, before we sent anything: "Welcome!"
             * is only its start, or a "reply" came before its request
             * (the server sends nothing unasked but its bye line). */
            conn_fail(c, BERR_PROTOCOL, SK_EPROTO);
            return -1;
        }
        on_ready(c);
        if (c->state != C_READY)
            return -1; /* connect mode closed it */
    }
    return (long)k;
}

/* Handles bytes received on a GREETING or READY connection. Returns false
 * when the connection was closed. */
static bool on_data(struct bench_conn *c, const char *data, size_t n)
{
    struct bench_worker *w = c->w;
    if (c->state == C_GREETING) {
        long k = eat_greeting(c, data, n);
        if (k < 0 || (size_t)k == n)
            return k >= 0;
        data += k; /* only the start of a bye line follows a greeting */
        n -= (size_t)k;
    }
    long done = match_feed(&w->o->reply, &c->ms, data, n);
    if (done < 0 || (unsigned long)done > c->count) {
        /* A wrong reply, or a reply nobody asked for (idle mode included). */
        conn_fail(c, BERR_PROTOCOL, SK_EPROTO);
        return false;
    }
    if (done == 0)
        return c->ms.said_bye ? said_bye(c) : true;
    uint64_t now = sk_now_ns();
    if (w->o->mode == BENCH_CONNECT) {
        connect_done(c, now);
        return false; /* the bytes of this read belonged to the old socket */
    }
    for (long i = 0; i < done; i++) {
        record(w, &c->ring[c->head], now);
        c->head = (c->head + 1) % w->o->depth;
    }
    c->count -= (unsigned)done;
    w->inflight -= (uint64_t)done;
    if (c->ms.said_bye)
        return said_bye(c);
    if (open_loop(w))
        dispatch_on(c, now);
    else
        fill(c);
    maybe_done(w);
    return c->link != NULL;
}

/* ---- the stream's callbacks ---- */

static struct bench_conn *conn_of(struct sk_stream *s)
{
    return SK_CONTAINER_OF(s, struct bench_link, st)->c;
}

static bool on_stream_read(struct sk_stream *s, const char *data, size_t n)
{
    struct bench_conn *c = conn_of(s);
    if (!c)
        return false;
    if (n == 0) {
        conn_fail(c, BERR_RESET, SK_ECLOSED);
        return false;
    }
    c->w->st.bytes_in += n;
    return on_data(c, data, n) && conn_of(s) == c; /* not closed (nor started again) */
}

static void on_stream_flushed(struct sk_stream *s)
{
    if (conn_of(s))
        sk_stream_update(s, true); /* writable interest while output waits */
}

/* A reset that came after the server's bye line: a request of ours that
 * crossed its close on the wire makes its kernel answer with a reset, and
 * our next write fails before we have read the line. The line (and the
 * replies before it) is still in the socket: true when they are all it
 * holds, after handling them. Plain TCP only (TLS records would need the
 * session, which is being torn down). */
static bool heard_bye_before_reset(struct bench_conn *c, struct sk_stream *s)
{
    const struct match_spec *m = &c->w->o->reply;
    char buf[4096];
    if (!m->bye || sk_stream_is_tls(s) || (c->state != C_READY && c->greet_pos > 0))
        return false;
    ssize_t n = recv(s->io.fd, buf, sizeof buf, MSG_DONTWAIT | MSG_PEEK);
    if (n <= 0)
        return false;
    struct match_state ms = c->ms;
    bool ok = c->state == C_READY
                  ? match_feed(m, &ms, buf, (size_t)n) >= 0
                  : match_bye_starts(m, &ms, buf, (size_t)n) &&
                        match_bye(m, &ms, buf, (size_t)n) == 0;
    if (!ok || !ms.said_bye)
        return false;
    c->w->st.bytes_in += (uint64_t)n;
    if (c->state == C_GREETING)
        return !said_bye(c); /* always: said_bye returns false */
    on_data(c, buf, (size_t)n); /* the replies, then said_bye */
    return true;
}

/* The stream closed by itself (a reset, a write that failed). */
static void on_stream_close(struct sk_stream *s, enum sk_close_reason why)
{
    struct bench_conn *c = conn_of(s);
    if (!c)
        return; /* we closed it */
    detach(c);
    if (why == SK_CLOSE_RESET && heard_bye_before_reset(c, s))
        return;
    conn_fail(c, BERR_RESET, SK_ECLOSED);
}

static void on_stream_release(struct sk_stream *s)
{
    free(SK_CONTAINER_OF(s, struct bench_link, st));
}

static void on_stream_connected(struct sk_stream *s, int err)
{
    struct bench_conn *c = conn_of(s);
    if (!c)
        return;
    if (err == SK_ERR(ECONNRESET) || err == SK_ERR(EPIPE)) {
        /* Only an accepted connection can be reset: the server is there
         * and reset it before we looked, a reset, not a failed connect
         * (which would end the run as "target not there"). */
        c->w->connecting--;
        c->w->ever_connected = true;
        c->w->st.connects++;
        c->state = C_READY;
        conn_fail(c, BERR_RESET, err);
    } else if (err) {
        if (err == SK_ETLS || err == SK_ETLSVERIFY)
            snprintf(c->w->tls_err, sizeof c->w->tls_err, "%s", sk_stream_error(s));
        conn_fail(c, BERR_CONNECT, err);
    } else {
        on_connected(c);
    }
}

static const struct sk_stream_cbs stream_cbs = {
    .read = on_stream_read,
    .flushed = on_stream_flushed,
    .close = on_stream_close,
    .release = on_stream_release,
    .connected = on_stream_connected,
};

/* ---- idle mode's probe ---- */

/* One request on each of w->nprobe held connections, spread evenly over
 * the worker's share; a connection that failed is an error already. */
static void probe_start(struct bench_worker *w)
{
    w->probed = true;
    w->draining = true; /* fill(): no request follows a probe's reply */
    for (unsigned k = 0; k < w->nprobe && !w->finishing; k++) {
        struct bench_conn *c = &w->conns[(uint64_t)k * w->nconns / w->nprobe];
        /* Each one timed from its own send, not from the burst's start. A
         * write that fails fails c, counted. */
        if (c->state == C_READY)
            push(c, 1, 0, 0, sk_now_ns());
    }
    w->probing = true; /* only now: a failure above must not end the probe */
    probe_check(w);
}

/* The probe is over once every reply came or its connection failed (each
 * up to --timeout); then the hold goes on, or, its end having come, the
 * run ends. */
static void probe_check(struct bench_worker *w)
{
    if (!w->probing || w->inflight > 0 || w->finishing)
        return;
    w->probing = false;
    bench_publish(w);
    atomic_store(&w->pub_probed, true);
    if (w->hold_over)
        finish(w);
}

/* ---- timers ---- */

void bench_tcp_tick(struct bench_worker *w, bool stop, uint64_t now, uint64_t limit)
{
    if (stop) {
        finish(w);
        return;
    }
    for (unsigned i = 0; i < w->nconns && !w->finishing; i++) {
        struct bench_conn *c = &w->conns[i];
        bool late = false;
        if (c->state == C_GREETING && c->greet_pos && other_framing(c, NULL, 0) >= 0 &&
            now - c->greet_ns > (uint64_t)REPLY_FRAMING_GRACE_MS * 1000000u) {
            framing_mismatch(w, other_framing(c, NULL, 0)); /* "Welcome!", no "\n" */
            return;
        }
        if (c->state == C_CONNECTING || c->state == C_GREETING)
            late = now - c->started_ns > limit;
        else if (c->state == C_READY && c->count > 0)
            late = now - c->ring[c->head].sent > limit;
        if (late)
            conn_fail(c, BERR_TIMEOUT, SK_ETIMEDOUT);
    }
    /* After the timeouts: a probe sent now is later than `now`. */
    if (w->nprobe && !w->probed && w->hold_start_ns && !w->finishing &&
        atomic_load_explicit(&w->sh->probe_now, memory_order_relaxed))
        probe_start(w); /* SIGUSR1 during the hold (or before it began) */
    maybe_done(w);
}

/* -d is over (nothing new is sent from now on: fill and dispatch check
 * end_ns): wait for the replies still in flight, each up to --timeout.
 * --idle: the hold is over. */
static void end_cb(struct sk_loop *loop, struct sk_timer *t)
{
    (void)loop;
    struct bench_worker *w = SK_CONTAINER_OF(t, struct bench_worker, end);
    if (w->o->mode == BENCH_IDLE) {
        w->hold_over = true;
        if (w->nprobe && !w->probed)
            probe_start(w); /* finishes once the replies are in */
        if (!w->probing)
            finish(w);
        return;
    }
    w->draining = true;
    pace_stop(w);
    maybe_done(w);
}

/* Closes everything; the loop then has nothing left and returns. */
static void finish(struct bench_worker *w)
{
    if (w->finishing)
        return;
    w->finishing = true;
    if (w->o->mode == BENCH_IDLE) {
        w->hold_end_ns = sk_now_ns();
        for (unsigned i = 0; i < w->nconns; i++)
            w->st.open += w->conns[i].state == C_READY;
    }
    sk_timer_stop(w->loop, &w->tick);
    pace_stop(w);
    sk_timer_stop(w->loop, &w->end);
    for (unsigned i = 0; i < w->nconns; i++) {
        struct bench_conn *c = &w->conns[i];
        sk_timer_stop(w->loop, &c->retry);
        conn_close(c, false);
        c->state = C_DONE;
    }
    if ((w->inflight || w->greeting || w->connecting) && !w->fatal) {
        /* The counters behind maybe_done() went wrong: say so, loudly. */
        w->fatal = SK_EPROTO;
        snprintf(w->fatal_what, sizeof w->fatal_what,
                 "internal error: bench accounting (%llu/%u/%u)",
                 (unsigned long long)w->inflight, w->greeting, w->connecting);
    }
    bench_publish(w);
}

/* ---- life cycle ---- */

int bench_tcp_init(struct bench_worker *w)
{
    const struct bench_opts *o = w->o;
    w->conns = calloc(w->nconns, sizeof *w->conns);
    w->slots = calloc((size_t)w->nconns * o->depth, sizeof *w->slots);
    w->reqs = malloc(o->req_len * o->depth);
    if (!w->conns || !w->slots || !w->reqs)
        return SK_ERR(ENOMEM);
    /* The run's own --timeout bounds connects, handshakes and replies; a
     * generator sheds nothing. */
    struct sk_stream_limits lim = {.out_limit = SIZE_MAX, .max_memory = SIZE_MAX,
                                   .handshake_ms = UINT64_MAX};
    int rc = 0;
    w->streams = sk_stream_group_new(w->loop, &stream_cbs, &lim, &rc);
    if (!w->streams)
        return rc;
    for (unsigned i = 0; i < o->depth; i++)
        memcpy(w->reqs + (size_t)i * o->req_len, o->req, o->req_len);
    for (unsigned i = 0; i < w->nconns; i++) {
        struct bench_conn *c = &w->conns[i];
        c->w = w;
        c->ring = w->slots + (size_t)i * o->depth;
    }
    if (o->rate > 0) {
        w->interval_ns = 1e9 / w->rate;
        w->pace.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (w->pace.fd < 0)
            return SK_ERR(errno);
    }
    return 0;
}

void bench_tcp_run(struct bench_worker *w)
{
    if (w->has_quota && w->quota == 0 && w->o->mode != BENCH_IDLE)
        return; /* -n smaller than --threads: nothing for this worker to do */
    bench_tick_start(w);
    if (w->sh->end_ns && w->o->mode != BENCH_IDLE) {
        uint64_t now = sk_now_ns();
        uint64_t left = w->sh->end_ns > now ? w->sh->end_ns - now : 0;
        bench_timer_start(w, &w->end, (left + 999999) / 1000000, end_cb);
    }
    pump_connects(w); /* idle mode arms w->end once every connection is open */
    int rc = sk_loop_run(w->loop);
    if (rc < 0 && !w->fatal) {
        w->fatal = rc;
        snprintf(w->fatal_what, sizeof w->fatal_what, "event loop");
    }
    finish(w);
}

void bench_tcp_free(struct bench_worker *w)
{
    sk_stream_group_free(w->streams); /* releases the streams closed last */
    w->streams = NULL;
    for (unsigned i = 0; w->conns && i < w->nconns; i++)
        sk_tls_session_free(w->conns[i].session);
    if (w->pace.fd >= 0)
        close(w->pace.fd);
    free(w->conns);
    free(w->slots);
    free(w->reqs);
    w->conns = NULL;
    w->slots = NULL;
    w->reqs = NULL;
}
