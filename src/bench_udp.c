/* sockit bench --udp: one worker's datagram sockets.
 *
 * Each socket is connect()ed to the target (so the kernel filters out
 * datagrams from anyone else) and keeps up to -P datagrams in flight,
 * sent with one sendmmsg() and received with recvmmsg(), so that the
 * generator spends few system calls per datagram and the server, not the
 * generator, is what gets measured. In the greeting protocol each datagram
 * carries a sequence number (M#SEQ, SEQ 16 hex digits) that its reply
 * "Hello, M#SEQ!" brings back, so a lost, duplicated or reordered datagram
 * cannot shift the replies of the others; --raw replies have no tag and are
 * matched in order. A datagram with no reply within --timeout counts as
 * lost and its slot is reused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "chars_int.h" /* lib/'s hex table: the CLI links the static archive */

#define BATCH 64
#define DGRAM_MAX 65536
#define TAG_LEN 17 /* "#" and 16 hex digits */

/* ring[(head + i) % depth] is the datagram of sequence number head_seq + i;
 * an answered one has sent == 0 and leaves the ring once it is at head. */
struct bench_udp_sock {
    struct sk_io io;
    struct bench_worker *w;
    struct bench_req *ring;
    unsigned head, count;
    uint64_t head_seq;
};

static const char hex_digits[] = "0123456789abcdef";

static bool tagged(const struct bench_opts *o)
{
    return !o->raw;
}

/* Writes "#" and seq as 16 hex digits (no snprintf: this is per datagram). */
static void put_tag(char out[TAG_LEN], uint64_t seq)
{
    out[0] = '#';
    for (int i = 16; i >= 1; i--, seq >>= 4)
        out[i] = hex_digits[seq & 15];
}

/* Per-worker receive batch (headers; the data goes to w->rbuf). */
struct udp_batch {
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
};

static void udp_finish(struct bench_worker *w);


static void maybe_done(struct bench_worker *w)
{
    bool no_more = w->has_quota ? w->quota == 0 : w->draining;
    if (w->finishing || !no_more)
        return;
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->socks[i].count > 0)
            return;
    udp_finish(w);
}

static void fatal(struct bench_worker *w, int rc)
{
    w->fatal = rc;
    snprintf(w->fatal_what, sizeof w->fatal_what, "UDP to %s", w->o->target);
    atomic_store(&w->sh->stop, true);
    udp_finish(w);
}

/* Sends as many datagrams as the socket has room for. */
static void fill(struct bench_udp_sock *s)
{
    struct bench_worker *w = s->w;
    unsigned depth = w->o->depth, room = depth - s->count;
    if (room == 0 || w->finishing)
        return;
    uint64_t now = sk_now_ns();
    if (w->sh->end_ns && now >= w->sh->end_ns)
        return;
    bool measured = bench_measured(w->sh, now);
    if (w->has_quota && now >= w->sh->measure_ns && w->quota < room)
        room = (unsigned)w->quota;
    if (room > BATCH)
        room = BATCH;
    if (room == 0)
        return;
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH][2];
    char tags[BATCH][TAG_LEN];
    bool tag = tagged(w->o);
    uint64_t seq = s->head_seq + s->count;
    for (unsigned i = 0; i < room; i++) {
        iov[i][0] = (struct iovec){.iov_base = w->o->req, .iov_len = w->o->req_len};
        if (tag) {
            put_tag(tags[i], seq + i);
            iov[i][1] = (struct iovec){.iov_base = tags[i], .iov_len = TAG_LEN};
        }
        msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = iov[i], .msg_iovlen = tag ? 2 : 1}};
    }
    int n = sendmmsg(s->io.fd, msgs, room, MSG_DONTWAIT);
    if (n < 0) {
        if ((errno == ECONNREFUSED && !w->ever_connected) ||
            (errno != EAGAIN && errno != EINTR && errno != ENOBUFS && errno != ECONNREFUSED))
            fatal(w, SK_ERR(errno));
        return; /* the tick tries again */
    }
    if (w->has_quota && now >= w->sh->measure_ns)
        w->quota -= (unsigned)n;
    for (int i = 0; i < n; i++) {
        struct bench_req *r = &s->ring[(s->head + s->count + (unsigned)i) % depth];
        r->intended = r->sent = now;
    }
    s->count += (unsigned)n;
    w->st.bytes_out += (uint64_t)n * (w->o->req_len + (tag ? TAG_LEN : 0));
    if (measured) {
        w->st.sent += (unsigned)n;
        if (w->first_ns == 0)
            w->first_ns = now;
    }
}

/* Drops the answered (or given up) datagrams at the head of the ring. */
static void advance(struct bench_udp_sock *s)
{
    unsigned depth = s->w->o->depth;
    while (s->count > 0 && s->ring[s->head].sent == 0) {
        s->head = (s->head + 1) % depth;
        s->head_seq++;
        s->count--;
    }
}

/* Settles the datagram in slot r: answered (a reply, or a wrong reply:
 * cls BERR_PROTOCOL) or not (cls BERR_LOST). */
static void settle_slot(struct bench_udp_sock *s, struct bench_req *r, uint64_t now, bool reply,
                        enum bench_err cls)
{
    struct bench_worker *w = s->w;
    if (bench_measured(w->sh, r->intended)) {
        if (reply) {
            w->st.replies++;
            sk_hist_record(&w->lat, now - r->intended);
            w->last_ns = now;
        } else {
            w->st.errors[cls]++;
        }
    }
    r->sent = 0;
    advance(s);
}

/* The sequence number in a reply "Hello, M#SEQ!", or false when the
 * datagram is not such a reply. */
static bool reply_seq(const struct bench_opts *o, const char *p, size_t n, uint64_t *seq)
{
    size_t mlen = o->req_len; /* the message: UDP requests carry no "\n" */
    if (n != 7 + mlen + TAG_LEN + 1 || memcmp(p, "Hello, ", 7) != 0 ||
        memcmp(p + 7, o->req, mlen) != 0 || p[7 + mlen] != '#' || p[n - 1] != '!')
        return false;
    unsigned char b[8];
    if (sk__hex_decode(p + 8 + mlen, b, sizeof b) < 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof b; i++)
        v = v << 8 | b[i];
    *seq = v;
    return true;
}

/* One datagram received on s. */
static void on_datagram(struct bench_udp_sock *s, const char *p, size_t len, bool trunc,
                        uint64_t now)
{
    struct bench_worker *w = s->w;
    const struct bench_opts *o = w->o;
    if (!tagged(o)) { /* raw: in order */
        struct match_state ms = {0};
        bool ok = !trunc && match_feed(&o->reply, &ms, p, len) == 1 && ms.pos == 0;
        if (s->count > 0) /* else a late reply to a datagram already counted lost */
            settle_slot(s, &s->ring[s->head], now, ok, BERR_PROTOCOL);
        return;
    }
    uint64_t seq;
    if (trunc || !reply_seq(o, p, len, &seq)) {
        /* Not a reply of ours at all: an error, though no request's. */
        if (bench_measured(w->sh, now))
            w->st.errors[BERR_PROTOCOL]++;
        return;
    }
    if (seq < s->head_seq || seq - s->head_seq >= s->count)
        return; /* late (counted lost already), or a duplicate */
    struct bench_req *r = &s->ring[(s->head + (unsigned)(seq - s->head_seq)) % o->depth];
    if (r->sent != 0)
        settle_slot(s, r, now, true, BERR_LOST);
}

static void sock_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    struct bench_udp_sock *s = SK_CONTAINER_OF(io, struct bench_udp_sock, io);
    struct bench_worker *w = s->w;
    struct udp_batch *b = w->batch;
    size_t each = w->rbuf_size / BATCH;
    for (int i = 0; i < BATCH; i++) {
        b->iov[i] = (struct iovec){.iov_base = w->rbuf + (size_t)i * each, .iov_len = each};
        b->msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &b->iov[i], .msg_iovlen = 1}};
    }
    int n = recvmmsg(io->fd, b->msgs, BATCH, MSG_DONTWAIT, NULL);
    if (n < 0) {
        if (errno == ECONNREFUSED) {
            /* ICMP port unreachable: nobody listens there. */
            if (!w->ever_connected)
                fatal(w, SK_ERR(errno));
            else
                w->st.errors[BERR_CONNECT]++;
        }
        return;
    }
    w->ever_connected = true;
    uint64_t now = sk_now_ns();
    for (int i = 0; i < n; i++) {
        size_t len = b->msgs[i].msg_len;
        w->st.bytes_in += len;
        on_datagram(s, b->iov[i].iov_base, len, b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC, now);
    }
    fill(s);
    maybe_done(w);
}

void bench_udp_tick(struct bench_worker *w, bool stop, uint64_t now, uint64_t limit)
{
    if (stop) {
        udp_finish(w);
        return;
    }
    for (unsigned i = 0; i < w->nconns && !w->finishing; i++) {
        struct bench_udp_sock *s = &w->socks[i];
        while (s->count > 0 && now - s->ring[s->head].sent > limit)
            settle_slot(s, &s->ring[s->head], now, false, BERR_LOST);
        fill(s);
    }
    if (!w->ever_connected && w->sh->t0_ns + limit < now && !w->finishing) {
        fatal(w, SK_ETIMEDOUT);
        return;
    }
    maybe_done(w);
}

/* -d is over (fill sends nothing more): wait for the datagrams in flight,
 * each up to --timeout. */
static void end_cb(struct sk_loop *loop, struct sk_timer *t)
{
    (void)loop;
    struct bench_worker *w = SK_CONTAINER_OF(t, struct bench_worker, end);
    w->draining = true;
    maybe_done(w);
}

static void udp_finish(struct bench_worker *w)
{
    if (w->finishing)
        return;
    w->finishing = true;
    sk_timer_stop(w->loop, &w->tick);
    sk_timer_stop(w->loop, &w->end);
    for (unsigned i = 0; i < w->nconns; i++) {
        struct bench_udp_sock *s = &w->socks[i];
        if (s->io.fd >= 0) {
            sk_io_stop(w->loop, &s->io);
            close(s->io.fd);
            s->io.fd = -1;
        }
    }
    bench_publish(w);
}

int bench_udp_init(struct bench_worker *w)
{
    const struct bench_opts *o = w->o;
    w->socks = calloc(w->nconns, sizeof *w->socks);
    for (unsigned i = 0; w->socks && i < w->nconns; i++)
        w->socks[i].io.fd = -1; /* before anything can fail: the release closes these */
    w->slots = calloc((size_t)w->nconns * o->depth, sizeof *w->slots);
    /* Room for the expected reply and more (a longer one must show as
     * MSG_TRUNC, not pass): .len is the reply, its length or the
     * terminator; --reply-until replies may be any size. */
    w->rbuf_size = (size_t)BATCH * 2048;
    if (o->reply.kind == MATCH_UNTIL || o->reply.len + TAG_LEN + 1 > 2048)
        w->rbuf_size = (size_t)BATCH * DGRAM_MAX;
    w->rbuf = malloc(w->rbuf_size);
    w->batch = malloc(sizeof *w->batch);
    if (!w->socks || !w->slots || !w->rbuf || !w->batch)
        return SK_ERR(ENOMEM);
    for (unsigned i = 0; i < w->nconns; i++) {
        w->socks[i].w = w;
        w->socks[i].ring = w->slots + (size_t)i * o->depth;
    }
    const struct sockaddr *sa = (const struct sockaddr *)&w->sh->addr;
    for (unsigned i = 0; i < w->nconns; i++) {
        int fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return SK_ERR(errno);
        w->socks[i].io.fd = fd;
        if (connect(fd, sa, w->sh->addrlen) < 0)
            return SK_ERR(errno);
    }
    return 0;
}

void bench_udp_run(struct bench_worker *w)
{
    if (w->has_quota && w->quota == 0)
        return; /* -n smaller than --threads: nothing for this worker to do */
    for (unsigned i = 0; i < w->nconns; i++) {
        struct bench_udp_sock *s = &w->socks[i];
        int rc = sk_io_start(w->loop, &s->io, s->io.fd, SK_READ, sock_cb);
        if (rc < 0) {
            close(s->io.fd);
            s->io.fd = -1;
            fatal(w, rc);
            break;
        }
    }
    if (!w->finishing) {
        bench_tick_start(w);
        if (w->sh->end_ns) {
            uint64_t now = sk_now_ns();
            uint64_t left = w->sh->end_ns > now ? w->sh->end_ns - now : 0;
            bench_timer_start(w, &w->end, (left + 999999) / 1000000, end_cb);
        }
        for (unsigned i = 0; i < w->nconns && !w->finishing; i++)
            fill(&w->socks[i]);
    }
    int rc = sk_loop_run(w->loop);
    if (rc < 0 && !w->fatal)
        fatal(w, rc);
    udp_finish(w);
}

void bench_udp_free(struct bench_worker *w)
{
    if (w->socks)
        for (unsigned i = 0; i < w->nconns; i++)
            if (w->socks[i].io.fd >= 0)
                close(w->socks[i].io.fd);
    free(w->socks);
    free(w->slots);
    free(w->rbuf);
    free(w->batch);
    w->socks = NULL;
    w->slots = NULL;
    w->rbuf = NULL;
    w->batch = NULL;
}
