/* Unit tests: sk_stream on a real loop, over an AF_UNIX socketpair whose
 * other end the test plays. */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

struct echo {
    struct sk_stream st;
    struct sk_loop *loop;
    int closed_why;
    int released;
    size_t got;
    bool echo; /* write back what is read */
    int connect_err;
    int connected;
    bool end_on_read; /* half-close at the first data, and read no more */
    bool pause_at_end; /* the read of the FIN returns false */
    bool close_on_read; /* close at the first data, and say "read more" */
    int closes;
};

static bool t_read(struct sk_stream *s, const char *data, size_t n)
{
    struct echo *e = SK_CONTAINER_OF(s, struct echo, st);
    e->got += n;
    if (n && e->close_on_read) {
        sk_stream_close(s, SK_CLOSE_SHUTDOWN);
        return true; /* against the header's advice: the stream must cope */
    }
    if (n && e->end_on_read) {
        sk_stream_shutdown(s, SK_CLOSE_END, "bye\n", 4);
        return false;
    }
    if (n && e->echo && sk_stream_write(s, data, n) < 0)
        return false;
    if (n == 0) /* the peer's FIN: answer with ours */
        sk_stream_shutdown(s, SK_CLOSE_EOF, "bye\n", 4);
    return n || !e->pause_at_end;
}

static void t_flushed(struct sk_stream *s)
{
    sk_stream_update(s, !sk_stream_over_high_water(s));
}

static void t_close(struct sk_stream *s, enum sk_close_reason why)
{
    SK_CONTAINER_OF(s, struct echo, st)->closed_why = (int)why;
    SK_CONTAINER_OF(s, struct echo, st)->closes++;
}

static void t_release(struct sk_stream *s)
{
    SK_CONTAINER_OF(s, struct echo, st)->released++;
}

static void t_connected(struct sk_stream *s, int err)
{
    struct echo *e = SK_CONTAINER_OF(s, struct echo, st);
    e->connected++;
    e->connect_err = err;
    if (err == 0) { /* say hello, then end: the peer's FIN closes us */
        sk_stream_write(s, "hi\n", 3);
        sk_stream_shutdown(s, SK_CLOSE_END, NULL, 0);
    }
}

static const struct sk_stream_cbs cbs = {.read = t_read, .flushed = t_flushed, .close = t_close,
                                         .release = t_release, .connected = t_connected};

/* A loop, a group with lim, and a stream on one end of a socketpair; the
 * other end is returned. */
static int start(struct echo *e, struct sk_stream_group **g, const struct sk_stream_limits *lim)
{
    int err = 0, sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    memset(e, 0, sizeof *e);
    e->closed_why = -1;
    e->loop = sk_loop_new(&err);
    cr_assert_not_null(e->loop);
    *g = sk_stream_group_new(e->loop, &cbs, lim, &err);
    cr_assert_not_null(*g);
    cr_assert_eq(sk_stream_open(*g, &e->st, sv[0]), 0);
    return sv[1];
}

static void finish(struct echo *e, struct sk_stream_group *g)
{
    sk_stream_group_free(g);
    cr_assert_eq(sk_loop_free(e->loop), 0, "a handle was left behind");
}

Test(stream, echoes_then_half_closes_after_the_peers_fin)
{
    struct echo e;
    struct sk_stream_group *g;
    int peer = start(&e, &g, NULL);
    e.echo = true;
    cr_assert_eq(write(peer, "ping\n", 5), 5);
    shutdown(peer, SHUT_WR);
    /* The loop ends by itself once the stream has closed. */
    cr_assert_eq(sk_loop_run(e.loop), 0);
    char buf[64];
    ssize_t n = read(peer, buf, sizeof buf);
    cr_assert_eq(n, 9);
    cr_assert_eq(memcmp(buf, "ping\nbye\n", 9), 0);
    cr_assert_eq(read(peer, buf, sizeof buf), 0, "the stream's FIN follows its last line");
    cr_assert_eq(e.closed_why, SK_CLOSE_EOF);
    cr_assert_eq(e.released, 1);
    close(peer);
    finish(&e, g);
}

/* A half-close in the read of the FIN ends at once, also when the read
 * says "no more" (returns false): the linger has nothing to wait for. */
Test(stream, a_half_close_at_the_peers_fin_ends_at_once_when_reading_stops)
{
    struct echo e;
    struct sk_stream_group *g;
    int peer = start(&e, &g, NULL);
    e.pause_at_end = true;
    cr_assert_eq(write(peer, "ping\n", 5), 5);
    shutdown(peer, SHUT_WR);
    uint64_t t0 = sk_now_ms();
    cr_assert_eq(sk_loop_run(e.loop), 0);
    cr_assert_lt(sk_now_ms() - t0, 1500, "the linger ended at the peer's FIN, not at 2 s");
    char buf[64];
    cr_assert_eq(read(peer, buf, sizeof buf), 4);
    cr_assert_eq(memcmp(buf, "bye\n", 4), 0);
    cr_assert_eq(read(peer, buf, sizeof buf), 0);
    cr_assert_eq(e.closed_why, SK_CLOSE_EOF);
    close(peer);
    finish(&e, g);
}

struct fin_probe {
    struct sk_timer t;
    int peer;
    bool fin; /* the peer had our last line and FIN when the timer ran */
};

static void probe_cb(struct sk_loop *loop, struct sk_timer *t)
{
    (void)loop;
    struct fin_probe *p = SK_CONTAINER_OF(t, struct fin_probe, t);
    char buf[64];
    p->fin = read(p->peer, buf, sizeof buf) == 4 && read(p->peer, buf, sizeof buf) == 0;
    shutdown(p->peer, SHUT_WR); /* the stream's linger ends with this */
}

/* Half-closed in a read of data that returns false: the last line and the
 * FIN go out now, not when the peer happens to send more. */
Test(stream, a_half_close_in_a_read_sends_the_fin_at_once)
{
    struct echo e;
    struct sk_stream_group *g;
    int peer = start(&e, &g, NULL);
    e.end_on_read = true;
    cr_assert_eq(write(peer, "ping\n", 5), 5);
    struct fin_probe p = {.peer = peer};
    sk_timer_start(e.loop, &p.t, 200, probe_cb);
    uint64_t t0 = sk_now_ms();
    cr_assert_eq(sk_loop_run(e.loop), 0);
    cr_assert(p.fin, "the FIN followed the last line while the peer was silent");
    cr_assert_lt(sk_now_ms() - t0, 1500);
    cr_assert_eq(e.closed_why, SK_CLOSE_END);
    close(peer);
    finish(&e, g);
}

/* A read callback that closes the stream and still returns true: the
 * stream is not touched again (it would rejoin the idle list after its
 * release, and the idle timer would close it a second time). */
Test(stream, a_close_in_a_read_that_returns_true_ends_the_stream_once, .timeout = 10)
{
    struct echo e;
    struct sk_stream_group *g;
    struct sk_stream_limits lim = {.idle_ms = 20};
    int peer = start(&e, &g, &lim);
    e.close_on_read = true;
    cr_assert_eq(write(peer, "ping\n", 5), 5);
    cr_assert_eq(sk_loop_run(e.loop), 0, "the loop ends: nothing is left armed");
    cr_assert_eq(e.closed_why, SK_CLOSE_SHUTDOWN);
    cr_assert_eq(e.closes, 1);
    cr_assert_eq(e.released, 1);
    close(peer);
    finish(&e, g);
}

Test(stream, queues_past_the_high_water_mark_and_reports_it)
{
    struct echo e;
    struct sk_stream_group *g;
    struct sk_stream_limits lim = {.high_water = 64 * 1024};
    int peer = start(&e, &g, &lim);
    static char big[1 << 20];
    memset(big, 'x', sizeof big);
    cr_assert_eq(sk_stream_write(&e.st, big, sizeof big), 0);
    cr_assert_gt(sk_stream_queued(&e.st), 0, "a socketpair does not take 1 MiB at once");
    cr_assert(sk_stream_over_high_water(&e.st));
    sk_stream_close(&e.st, SK_CLOSE_SHUTDOWN);
    cr_assert_eq(e.closed_why, SK_CLOSE_SHUTDOWN);
    close(peer);
    finish(&e, g);
    cr_assert_eq(e.released, 1, "a closed stream is released by the group at the latest");
}

Test(stream, an_idle_stream_closes_with_reason_idle)
{
    struct echo e;
    struct sk_stream_group *g;
    struct sk_stream_limits lim = {.idle_ms = 30};
    int peer = start(&e, &g, &lim);
    uint64_t t0 = sk_now_ms();
    cr_assert_eq(sk_loop_run(e.loop), 0);
    cr_assert_eq(e.closed_why, SK_CLOSE_IDLE);
    cr_assert_geq(sk_now_ms() - t0, 30);
    char c;
    cr_assert_eq(read(peer, &c, 1), 0, "closed: the peer sees the end");
    close(peer);
    finish(&e, g);
}

Test(stream, reason_names)
{
    cr_assert_str_eq(sk_close_reason_name(SK_CLOSE_TOO_LONG), "message-too-long");
    cr_assert_str_eq(sk_close_reason_name(SK_CLOSE_IDLE), "idle-timeout");
    cr_assert_str_eq(sk_close_reason_name((enum sk_close_reason)99), "?");
}

/* A loopback listener on a free port; its address in *sa. */
static int listener(struct sockaddr_in *sa)
{
    socklen_t len = sizeof *sa;
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)sa, sizeof *sa), 0);
    cr_assert_eq(listen(fd, 4), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    return fd;
}

Test(stream, connects_without_blocking_and_says_so)
{
    struct sockaddr_in sa;
    int lfd = listener(&sa);
    int err = 0;
    struct echo e = {.closed_why = -1};
    e.loop = sk_loop_new(&err);
    struct sk_stream_limits lim = {.idle_ms = 5000}; /* bounds the connect too */
    struct sk_stream_group *g = sk_stream_group_new(e.loop, &cbs, &lim, &err);
    cr_assert_not_null(g);
    cr_assert_eq(sk_stream_connect(g, &e.st, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(e.connected, 0, "the outcome comes from the loop");
    int peer = accept(lfd, NULL, NULL); /* the handshake is done by the kernel */
    cr_assert_geq(peer, 0);
    shutdown(peer, SHUT_WR);
    cr_assert_eq(sk_loop_run(e.loop), 0);
    cr_assert_eq(e.connected, 1);
    cr_assert_eq(e.connect_err, 0);
    cr_assert_eq(e.closed_why, SK_CLOSE_END);
    char buf[8];
    cr_assert_eq(read(peer, buf, sizeof buf), 3);
    cr_assert_eq(memcmp(buf, "hi\n", 3), 0);
    close(peer);
    close(lfd);
    finish(&e, g);
}

Test(stream, a_refused_connect_is_reported_then_closed)
{
    struct sockaddr_in sa;
    close(listener(&sa)); /* a port nobody listens on any more */
    int err = 0;
    struct echo e = {.closed_why = -1};
    e.loop = sk_loop_new(&err);
    struct sk_stream_group *g = sk_stream_group_new(e.loop, &cbs, NULL, &err);
    cr_assert_eq(sk_stream_connect(g, &e.st, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(sk_loop_run(e.loop), 0);
    cr_assert_eq(e.connected, 1);
    cr_assert_eq(e.connect_err, SK_ERR(ECONNREFUSED));
    cr_assert_eq(e.closed_why, SK_CLOSE_RESET);
    cr_assert_eq(e.released, 1);
    finish(&e, g);
}
