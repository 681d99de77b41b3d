/* Fuzz target: the TCP session state machine of `sockit serve` (lib/session.c
 * on lib/stream.c, with src/greet.c's protocol), in process. One worker is built by hand around a real sk_loop; each session
 * is the server's end of a loopback TCP connection or of an AF_UNIX
 * socketpair, whose other end the fuzzer plays. TCP has the real semantics;
 * the AF_UNIX pair reaches what TCP reaches only by a race: after the peer's
 * SHUT_RD the server's send fails (EPIPE) while its input is still readable,
 * as when a reset lands between the server's recv and its send. The input
 * is a configuration, then a list of operations: accept a session (with a
 * small SO_SNDBUF or not), write bytes (the input's own, or a line just
 * under, at or far over --max-line), read k bytes, FIN, SHUT_RD, reset
 * (SO_LINGER 0), close (a reset when input is unread), run the loop once,
 * advance its clock (idle, delay and linger timers fire), stop the server
 * (drain, grace). A configuration bit turns on --proxy-protocol: each
 * accept then may send a PROXY header first (v1, v2, LOCAL, one cut short)
 * and the session waits for it in lib/session_proxy.c, holding its
 * --max-conns slot. The loop's clock is virtual (lib/internal.h gives the
 * loop's fields; lib/server_int.h the worker's): a timer fires when the
 * input says so, not when the machine is slow. No test hook in the library.
 *
 * Checks: the sanitizers; the worker's counts match its lists and the
 * --max-conns counter; output stays within its limit; a session with output
 * queued waits for POLLOUT; in line framing every line a peer
 * receives is the greeting, a reply or the error line; once every peer has
 * read everything and sent its FIN, every session ends without a server stop;
 * at the end no handle is left in the loop. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "greet.h"
#include "internal.h"
#include "server_int.h"

#define MAX_PEERS 4
#define SCRATCH (64 * 1024) /* the worker's read buffer, as in server.c */

/* Replies waiting for --delay are not held to out_limit: the pause check
 * runs after each read, so one event (4 reads) may add this much past
 * out_pause: 4 KiB reads of empty lines, or 64 KiB chunks. */
#define OUT_SLACK (64 * 1024 + 64) /* session.c's REPLY_STEP, reply framing */
#define DQ_SLACK (4 * (4096 * (sizeof(struct sk__delayed) + 10) + SCRATCH + 64))

struct peer {
    int fd;          /* -1: closed (or never opened) */
    bool fin;        /* shutdown(SHUT_WR) done */
    bool shut_rd;    /* shutdown(SHUT_RD) done: it reads nothing more */
    size_t lines;    /* lines received */
    size_t col;      /* bytes of the current line */
    char head[24];   /* its first bytes */
    char last;       /* its last byte */
};

struct fz {
    struct sk_server srv;
    struct sk__worker w;
    struct sk__counters ctr; /* the worker's block (sk_server_new allocates them) */
    struct peer peers[MAX_PEERS];
    uint64_t now;
    unsigned real_waits; /* wait_tcp() calls */
    const uint8_t *p;
    size_t n;
};

static char big[256 * 1024]; /* synthetic writes */
static char sink[256 * 1024];

static unsigned take(struct fz *f, unsigned bound)
{
    if (f->n == 0 || bound == 0)
        return 0;
    f->n--;
    return *f->p++ % bound;
}

/* A failed check names itself, so a crash input explains what broke. */
#define check(c) ((c) ? (void)0 : fail(__LINE__, #c))
static void fail(int line, const char *what)
{
    fprintf(stderr, "fuzz_session.c:%d: check failed: %s\n", line, what);
    abort();
}

/* ---- the loop, one iteration at a time on the virtual clock ---- */

/* Returns the number of io events dispatched. */
static int step(struct fz *f)
{
    struct sk_loop *loop = f->w.loop;
    check(sk__backend_wait(loop, 0) >= 0);
    loop->now_ms = f->now;
    int n = loop->npending;
    for (int i = 0; i < loop->npending; i++) {
        struct sk_io *io = loop->pending[i].io;
        if (io)
            io->cb(loop, io, loop->pending[i].events);
    }
    loop->npending = 0;
    while (loop->timers && loop->timers->due_ms <= f->now) {
        struct sk_timer *t = loop->timers;
        sk_timer_stop(loop, t);
        t->cb(loop, t);
    }
    return n;
}

/* Moves the clock to the next timer (or by `ms` when none is armed). */
static void jump(struct fz *f, uint64_t ms)
{
    struct sk_loop *loop = f->w.loop;
    if (loop->timers && loop->timers->due_ms > f->now)
        f->now = loop->timers->due_ms;
    else
        f->now += ms;
}

/* ---- invariants ---- */

static size_t list_len(const struct sk_stream *s)
{
    size_t k = 0;
    for (; s; s = s->next)
        k++;
    return k;
}

static void check_worker(struct fz *f)
{
    struct sk__worker *w = &f->w;
    check(list_len(w->g.s_head) + list_len(w->g.l_head) == w->g.n);
    check(atomic_load(&f->srv.open_sessions) == w->g.n);
    const struct sk_stream *lists[2] = {w->g.s_head, w->g.l_head};
    for (int i = 0; i < 2; i++)
        for (const struct sk_stream *s = lists[i]; s; s = s->next) {
            check(s->lingering == (i == 1));
            /* Reading stops at the pause mark; what one read then adds is one
             * reply step plus one whole reply (a reply is never cut). */
            check(sk_buf_size(&s->out) <=
                  f->srv.cfg.out_pause + w->g.lim.read_size + f->srv.cfg.max_msg + OUT_SLACK);
            check(s->out_extra <= f->srv.cfg.out_pause + DQ_SLACK); /* delayed replies */
            if (sk_buf_size(&s->out) > 0)
                check(s->io.mask & SK_WRITE); /* else it would never be sent */
        }
}

/* Line framing: every line is "Welcome!" (first), "Hello, M!" or the error. */
static void check_bytes(struct fz *f, struct peer *p, const char *b, size_t n)
{
    static const char err[] = "Error: message too long";
    if (f->srv.cfg.framing != SK_FRAMING_LINE)
        return;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != '\n') {
            if (p->col < sizeof p->head)
                p->head[p->col] = b[i];
            p->col++;
            p->last = b[i];
            continue;
        }
        if (p->lines == 0)
            check(p->col == 8 && memcmp(p->head, "Welcome!", 8) == 0);
        else if (p->col == sizeof err - 1 && memcmp(p->head, err, sizeof err - 1) == 0)
            ;
        else
            check(p->col >= 8 && memcmp(p->head, "Hello, ", 7) == 0 && p->last == '!');
        p->lines++;
        p->col = 0;
    }
}

/* ---- the peers ---- */

/* The loopback listener the peers connect through (one per process). */
static int listener(struct sockaddr_in *addr)
{
    static int lfd = -1;
    static struct sockaddr_in sa;
    if (lfd < 0) {
        socklen_t len = sizeof sa;
        sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        check(lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
              listen(lfd, 16) == 0 && getsockname(lfd, (struct sockaddr *)&sa, &len) == 0);
    }
    *addr = sa;
    return lfd;
}

/* A new session: a loopback TCP connection (or an AF_UNIX pair), the
 * server's end handed to session.c as accept_some() does, with SO_SNDBUF sb. */
static void accept_peer(struct fz *f, struct peer *p, int sb, bool unix_pair)
{
    if (unix_pair) {
        int sv[2];
        check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        if (sb)
            setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
        memset(p, 0, sizeof *p);
        p->fd = sv[1];
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        atomic_fetch_add(&f->srv.open_sessions, 1);
        sk__session_accepted(&f->w, sv[0], (const struct sockaddr *)&sa);
        return;
    }
    struct sockaddr_in sa;
    int lfd = listener(&sa);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    check(c >= 0);
    if (connect(c, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(c);
        return;
    }
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    int fd = poll(&pfd, 1, 5000) == 1
                 ? accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC)
                 : -1;
    check(fd >= 0);
    if (sb)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    memset(p, 0, sizeof *p);
    p->fd = c;
    atomic_fetch_add(&f->srv.open_sessions, 1); /* as accept_some() does */
    sk__session_accepted(&f->w, fd, (const struct sockaddr *)&peer);
}

/* --proxy-protocol: what a new peer sends first (none, or a header). */
static const struct {
    const char *bytes;
    size_t len;
} proxy_headers[] = {
#define HEADER(s) {(s), sizeof(s) - 1}
    HEADER(""),
    HEADER("PROXY TCP4 192.0.2.1 192.0.2.100 1111 80\r\n"),
    HEADER("PROXY TCP6 2001:db8::1 2001:db8::2 2222 443\r\n"),
    HEADER("PROXY UNKNOWN\r\n"),
    /* v2: the signature, version and command, family, length, then PROXY
     * over INET (addresses and ports), or LOCAL */
    HEADER("\r\n\r\n\0\r\nQUIT\n\x21\x11\0\x0c\xc0\0\x02\x01\xc0\0\x02\x64\x04\x57\0\x50"),
    HEADER("\r\n\r\n\0\r\nQUIT\n\x20\0\0\0"),
    HEADER("PROXY TCP4 192.0.2.1 19"), /* the rest never comes */
#undef HEADER
};

/* A new session with a fuzzer-chosen SO_SNDBUF and transport; with
 * --proxy-protocol its peer's header first, if any. */
static void accept_one(struct fz *f)
{
    struct peer *p = NULL;
    for (int i = 0; i < MAX_PEERS && !p; i++)
        if (f->peers[i].fd < 0)
            p = &f->peers[i];
    static const int sndbuf[] = {0, 1, 4096, 32768};
    int sb = sndbuf[take(f, 4)];
    bool unix_pair = take(f, 2);
    unsigned hdr = f->srv.cfg.proxy_protocol
                       ? take(f, sizeof proxy_headers / sizeof proxy_headers[0]) : 0;
    if (!p || f->w.g.stopping)
        return;
    accept_peer(f, p, sb, unix_pair);
    if (p->fd >= 0 && proxy_headers[hdr].len)
        (void)!send(p->fd, proxy_headers[hdr].bytes, proxy_headers[hdr].len,
                    MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void peer_write(struct fz *f, struct peer *p)
{
    size_t max = f->srv.cfg.max_msg;
    unsigned k = take(f, 16);
    const char *data;
    size_t len;
    if (k < 10) { /* the input's own bytes */
        len = take(f, 256);
        if (len > f->n)
            len = f->n;
        data = (const char *)f->p;
        f->p += len;
        f->n -= len;
    } else { /* a message just under, at, just over or far over --max-line */
        static const size_t extra[] = {0, 1, 2, 3, 20000, 200000};
        size_t pre = (k & 1) ? 4 : 0; /* complete lines first, in the same write */
        len = pre + max - 1 + extra[k - 10] + (k < 14);
        if (len > sizeof big)
            len = sizeof big;
        memset(big, 'x', len);
        if (pre)
            memcpy(big, "a\nb\n", 4);
        if (k < 14)
            big[len - 1] = '\n';
        data = big;
    }
    if (len > 0)
        (void)!send(p->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Returns the number of bytes read. */
static size_t peer_read(struct fz *f, struct peer *p, size_t want)
{
    size_t got = 0;
    while (want > 0) {
        ssize_t k = recv(p->fd, sink, want < sizeof sink ? want : sizeof sink, MSG_DONTWAIT);
        if (k <= 0)
            break;
        check_bytes(f, p, sink, (size_t)k);
        want -= (size_t)k;
        got += (size_t)k;
    }
    return got;
}

/* A close: FIN, or a reset when input is unread; with rst, always a reset. */
static void peer_close(struct peer *p, bool rst)
{
    if (rst) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(p->fd);
    p->fd = -1;
}

/* ---- the server's side of a stop (server.c's stop_cb and grace_cb) ---- */

static void grace_cb(struct sk_loop *loop, struct sk_timer *t)
{
    (void)loop;
    sk__stream_group_close_all(&SK_CONTAINER_OF(t, struct sk__worker, grace_timer)->g,
                               SK_CLOSE_SHUTDOWN);
}

static void stop_server(struct fz *f)
{
    struct sk__worker *w = &f->w;
    if (w->g.stopping)
        return;
    sk__stream_group_drain(&w->g);
    if (!sk__worker_has_sessions(w))
        sk_timer_stop(w->loop, &w->delay_timer);
    else
        sk_timer_start(w->loop, &w->grace_timer, f->srv.cfg.grace_ms, grace_cb);
}

/* ---- set-up and the run ---- */

static void configure(struct fz *f)
{
    struct sk_server_config *c = &f->srv.cfg;
    static const size_t max_msg[] = {1, 8, 64, 1000, SK_MSG_MAX_DEFAULT};
    static const size_t pause[] = {64, 4096, 256 * 1024};
    unsigned b = take(f, 256);
    c->framing = (b & 1) ? SK_FRAMING_LINE : SK_FRAMING_CHUNK;
    c->proxy_protocol = (b & 16) != 0;
    c->delay_ms = (b & 2) ? 1 + take(f, 200) : 0;
    c->idle_timeout_s = (b & 4) ? 1 + take(f, 3) : 0;
    c->max_msg = max_msg[take(f, 5)];
    c->out_pause = pause[take(f, 3)];
    c->out_limit = c->out_pause * ((b & 8) ? 2 : 16);
    c->grace_ms = 2000;
    c->workers = 1;
    greet_setup(c); /* the protocol: src/greet.c, as `sockit serve` runs it */
}

static int setup(struct fz *f)
{
    int err = 0;
    f->w.srv = &f->srv;
    f->w.ctr = &f->ctr;
    f->srv.counters = &f->ctr;
    f->w.stop_fd = -1;
    f->w.loop = sk_loop_new(&err);
    if (!f->w.loop)
        return -1;
    f->srv.workers = &f->w;
    f->srv.nworkers = 1;
    if (sk__worker_streams_init(&f->w) < 0)
        return -1;
    check(f->w.g.lim.read_size == SCRATCH);
    f->now = f->w.loop->now_ms;
    for (int i = 0; i < MAX_PEERS; i++)
        f->peers[i].fd = -1;
    return 0;
}

/* Says what a session that did not end was waiting for. */
static void dump_sessions(const struct fz *f)
{
    const struct sk_server_config *c = &f->srv.cfg;
    fprintf(stderr, "config: framing=%s delay=%u idle=%u max_msg=%zu pause=%zu limit=%zu "
            "proxy=%d\n", c->framing == SK_FRAMING_LINE ? "line" : "chunk", c->delay_ms,
            c->idle_timeout_s, c->max_msg, c->out_pause, c->out_limit, c->proxy_protocol);
    const struct sk_stream *lists[2] = {f->w.g.s_head, f->w.g.l_head};
    for (int i = 0; i < 2; i++)
        for (const struct sk_stream *st = lists[i]; st; st = st->next) {
            const struct sk_server_conn *s = SK_CONTAINER_OF(st, struct sk_server_conn, st);
            fprintf(stderr, "session: lingering=%d read_closed=%d exiting=%d paused=%d "
                    "wr_shut=%d out=%zu in=%zu dq_bytes=%zu mask=%u msgs=%llu\n",
                    st->lingering, st->read_closed, s->exiting, st->paused, st->wr_shut,
                    sk_buf_size(&st->out), sk_buf_size(&st->in), st->out_extra, st->io.mask,
                    (unsigned long long)s->msgs);
        }
    fprintf(stderr, "timers: delay=%d idle=%d linger=%d grace=%d stopping=%d\n",
            sk_timer_armed(&f->w.delay_timer), sk_timer_armed(&f->w.g.idle_timer),
            sk_timer_armed(&f->w.g.linger_timer), sk_timer_armed(&f->w.grace_timer),
            f->w.g.stopping);
}

/* TCP's own timers (delayed ACKs, window probes) run on the real clock: a
 * session with output queued may have to wait for one before its socket
 * takes more. Waits (at most 50 ms, 5 s per input) until one of those
 * sockets is writable; false when none is, or none became so. */
static bool wait_tcp(struct fz *f)
{
    struct pollfd pfd[MAX_PEERS];
    nfds_t n = 0;
    const struct sk_stream *lists[2] = {f->w.g.s_head, f->w.g.l_head};
    for (int i = 0; i < 2; i++)
        for (const struct sk_stream *s = lists[i]; s && n < MAX_PEERS; s = s->next)
            if (sk_buf_size(&s->out) > 0)
                pfd[n++] = (struct pollfd){.fd = s->io.fd, .events = POLLOUT};
    if (n == 0 || f->real_waits >= 100)
        return false;
    f->real_waits++;
    return poll(pfd, n, 50) > 0;
}

/* Every peer reads all and sends its FIN: every session must end by itself.
 * The clock moves on whenever no reply arrived: an AF_UNIX pair whose peer
 * has gone reports a hang-up at every poll (TCP does not), so "no event" is
 * not a usable sign of rest. */
static void settle(struct fz *f)
{
    for (int round = 0; round < 5000 && sk__worker_has_sessions(&f->w); round++) {
        size_t got = 0;
        for (int i = 0; i < MAX_PEERS; i++) {
            struct peer *p = &f->peers[i];
            if (p->fd >= 0 && p->shut_rd)
                peer_close(p, false); /* it reads no more: its session waits for it */
            if (p->fd < 0)
                continue;
            got += peer_read(f, p, SIZE_MAX);
            if (!p->fin)
                shutdown(p->fd, SHUT_WR);
            p->fin = true;
        }
        step(f);
        check_worker(f);
        if (got == 0 && !wait_tcp(f))
            jump(f, 1000);
    }
    if (sk__worker_has_sessions(&f->w))
        dump_sessions(f);
    check(!sk__worker_has_sessions(&f->w));
}

static void teardown(struct fz *f)
{
    struct sk__worker *w = &f->w;
    if (w->loop) {
        sk__stream_group_fini(&w->g, SK_CLOSE_SHUTDOWN);
        sk_timer_stop(w->loop, &w->delay_timer);
        sk_timer_stop(w->loop, &w->grace_timer);
        check(sk_loop_free(w->loop) == 0); /* no handle left behind */
    }
    for (int i = 0; i < MAX_PEERS; i++)
        if (f->peers[i].fd >= 0)
            peer_close(&f->peers[i], false);
    sk_buf_free(&w->wbuf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz *f = calloc(1, sizeof *f);
    check(f != NULL);
    f->p = data;
    f->n = size;
    configure(f);
    if (setup(f) < 0) {
        teardown(f);
        free(f);
        return 0;
    }
    accept_one(f);
    while (f->n > 0) {
        unsigned op = take(f, 13);
        struct peer *p = &f->peers[take(f, MAX_PEERS)];
        bool open = p->fd >= 0;
        switch (op) {
        case 0: accept_one(f); break;
        case 1: case 2: if (open) peer_write(f, p); break;
        case 3: if (open) peer_read(f, p, 1 + take(f, 64) * (size_t)take(f, 64)); break;
        case 4: if (open && !p->fin) { shutdown(p->fd, SHUT_WR); p->fin = true; } break;
        case 5: if (open) peer_close(p, true); break;
        case 6: if (open) peer_close(p, false); break;
        case 7: case 8: step(f); break;
        case 9: f->now += take(f, 256); step(f); break;
        case 10: jump(f, 1 + take(f, 256) * 16ull); step(f); break;
        case 11: stop_server(f); break;
        case 12: if (open) { shutdown(p->fd, SHUT_RD); p->shut_rd = true; } break;
        }
        check_worker(f);
    }
    if (!f->w.g.stopping)
        settle(f);
    stop_server(f);
    /* Jumps go to the next timer: with --delay that is a few ms each, so
     * the bound is the grace period in the harness's time, not a count. */
    uint64_t give_up = f->now + f->srv.cfg.grace_ms + 1000;
    for (int i = 0; i < 100000 && f->now <= give_up && sk__worker_has_sessions(&f->w); i++) {
        jump(f, 1000);
        step(f);
        check_worker(f);
    }
    if (sk__worker_has_sessions(&f->w))
        dump_sessions(f);
    check(!sk__worker_has_sessions(&f->w)); /* the grace period bounds a stop */
    teardown(f);
    free(f);
    return 0;
}
