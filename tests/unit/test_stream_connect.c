/* Unit tests: sk_stream_connect_list (Happy Eyeballs on the loop) over
 * loopback: refused and black-holed addresses before a good one, all of
 * them failing, the connect deadline, TLS after the connect, and no fd
 * left behind. A black hole is a listener with a full accept queue: the
 * kernel drops further SYNs, so a connect to it stays pending. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

static int fd_count(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        n++;
    if (d)
        closedir(d);
    return n;
}

/* A loopback listener (backlog: listen's) and its address. */
static int listener(struct sockaddr_in *sa, int backlog)
{
    socklen_t len = sizeof *sa;
    *sa = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)sa, sizeof *sa), 0);
    cr_assert_eq(listen(fd, backlog), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)sa, &len), 0);
    return fd;
}

/* A port nobody listens on: connects are refused. */
static struct sockaddr_in refused_addr(void)
{
    struct sockaddr_in sa;
    close(listener(&sa, 1));
    return sa;
}

struct hole {
    int lfd, filler;
    struct sockaddr_in sa;
};

/* A listener whose queue (backlog 0: one connection) a filler has taken. */
static void hole_open(struct hole *h)
{
    h->lfd = listener(&h->sa, 0);
    h->filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(h->filler, (struct sockaddr *)&h->sa, sizeof h->sa), 0);
}

static void hole_close(struct hole *h)
{
    close(h->filler);
    close(h->lfd);
}

/* ai[0..n) chained, each on sa[i]. */
static void chain(struct addrinfo *ai, struct sockaddr_in *sa, int n)
{
    for (int i = 0; i < n; i++)
        ai[i] = (struct addrinfo){.ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
                                  .ai_addrlen = sizeof sa[i], .ai_addr = (struct sockaddr *)&sa[i],
                                  .ai_next = i + 1 < n ? &ai[i + 1] : NULL};
}

struct client {
    struct sk_stream st;
    int connected, connect_err, closed_why, released;
    uint64_t connected_at;
    char error[160];
    char version[32];
};

static bool c_read(struct sk_stream *s, const char *data, size_t n)
{
    (void)data;
    if (n == 0)
        sk_stream_close(s, SK_CLOSE_EOF);
    return true;
}

static void c_flushed(struct sk_stream *s)
{
    sk_stream_update(s, true);
}

static void c_close(struct sk_stream *s, enum sk_close_reason why)
{
    struct client *c = SK_CONTAINER_OF(s, struct client, st);
    c->closed_why = (int)why;
    snprintf(c->error, sizeof c->error, "%s", sk_stream_error(s));
}

static void c_release(struct sk_stream *s)
{
    SK_CONTAINER_OF(s, struct client, st)->released++;
}

static void c_connected(struct sk_stream *s, int err)
{
    struct client *c = SK_CONTAINER_OF(s, struct client, st);
    c->connected++;
    c->connect_err = err;
    c->connected_at = sk_now_ms();
    const char *v = sk_stream_tls_version(s);
    snprintf(c->version, sizeof c->version, "%s", v ? v : "");
    if (err == 0)
        sk_stream_close(s, SK_CLOSE_END); /* connected: that is all we wanted */
}

static const struct sk_stream_cbs cbs = {.read = c_read, .flushed = c_flushed, .close = c_close,
                                         .release = c_release, .connected = c_connected};

/* Runs one connect_list over ai on a loop of its own; returns when the
 * stream has closed, with the time it took in *took. */
static void run(struct client *c, const struct addrinfo *ai, const struct sk_stream_limits *lim,
                uint64_t *took)
{
    int err = 0;
    memset(c, 0, sizeof *c);
    c->closed_why = -1;
    struct sk_loop *loop = sk_loop_new(&err);
    cr_assert_not_null(loop);
    struct sk_stream_group *g = sk_stream_group_new(loop, &cbs, lim, &err);
    cr_assert_not_null(g);
    uint64_t t0 = sk_now_ms();
    cr_assert_eq(sk_stream_connect_list(g, &c->st, ai), 0);
    cr_assert_eq(c->connected, 0, "the outcome comes from the loop");
    cr_assert_eq(sk_loop_run(loop), 0);
    *took = c->connected_at - t0;
    sk_stream_group_free(g);
    cr_assert_eq(sk_loop_free(loop), 0, "a handle was left behind");
    cr_assert_eq(c->connected, 1);
    cr_assert_eq(c->released, 1);
}

TestSuite(stream_connect);

Test(stream_connect, a_refused_address_is_skipped_at_once)
{
    int fds = fd_count();
    struct sockaddr_in sa[2];
    sa[0] = refused_addr();
    int lfd = listener(&sa[1], 4);
    struct addrinfo ai[2];
    chain(ai, sa, 2);
    struct client c;
    uint64_t took;
    run(&c, ai, NULL, &took);
    cr_assert_eq(c.connect_err, 0, "%s", c.error);
    cr_assert_eq(c.closed_why, SK_CLOSE_END);
    cr_assert_lt(took, 200, "a refusal starts the next attempt without the 250 ms wait");
    int peer = accept(lfd, NULL, NULL);
    cr_assert_geq(peer, 0, "the second address got the connection");
    close(peer);
    close(lfd);
    cr_assert_eq(fd_count(), fds, "no fd left behind");
}

Test(stream_connect, a_black_holed_address_is_raced_after_250_ms)
{
    int fds = fd_count();
    struct hole h;
    hole_open(&h);
    struct sockaddr_in sa[2] = {h.sa};
    int lfd = listener(&sa[1], 4);
    struct addrinfo ai[2];
    chain(ai, sa, 2);
    struct client c;
    uint64_t took;
    struct sk_stream_limits lim = {.connect_ms = 5000};
    run(&c, ai, &lim, &took);
    cr_assert_eq(c.connect_err, 0, "%s", c.error);
    cr_assert_geq(took, 240, "the second attempt waits its turn: %llu ms",
                  (unsigned long long)took);
    cr_assert_lt(took, 2000, "and does not wait for the first to time out");
    int peer = accept(lfd, NULL, NULL);
    cr_assert_geq(peer, 0);
    close(peer);
    close(lfd);
    hole_close(&h);
    cr_assert_eq(fd_count(), fds, "the losing attempt was closed");
}

Test(stream_connect, when_all_fail_the_last_error_is_reported)
{
    int fds = fd_count();
    struct sockaddr_in sa[3] = {refused_addr(), refused_addr(), refused_addr()};
    struct addrinfo ai[3];
    chain(ai, sa, 3);
    struct client c;
    uint64_t took;
    run(&c, ai, NULL, &took);
    cr_assert_eq(c.connect_err, SK_ERR(ECONNREFUSED));
    cr_assert_eq(c.closed_why, SK_CLOSE_RESET);
    cr_assert_str_eq(c.error, "connect: Connection refused");
    cr_assert_lt(took, 200);
    cr_assert_eq(fd_count(), fds);
}

Test(stream_connect, the_connect_deadline_bounds_the_whole_set)
{
    int fds = fd_count();
    struct hole h1, h2;
    hole_open(&h1);
    hole_open(&h2);
    struct sockaddr_in sa[3] = {h1.sa, refused_addr(), h2.sa};
    struct addrinfo ai[3];
    chain(ai, sa, 3);
    struct client c;
    uint64_t took;
    struct sk_stream_limits lim = {.connect_ms = 400};
    run(&c, ai, &lim, &took);
    cr_assert_eq(c.connect_err, SK_ETIMEDOUT, "%d %s", c.connect_err, c.error);
    cr_assert_eq(c.closed_why, SK_CLOSE_CONNECT_TIMEOUT);
    cr_assert_str_eq(c.error, "connect timed out");
    cr_assert_geq(took, 390);
    cr_assert_lt(took, 2000);
    cr_assert_str_eq(sk_close_reason_name(SK_CLOSE_CONNECT_TIMEOUT), "connect-timeout");
    hole_close(&h1);
    hole_close(&h2);
    cr_assert_eq(fd_count(), fds, "every pending attempt was closed");
}

Test(stream_connect, an_empty_list_starts_nothing)
{
    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    struct sk_stream_group *g = sk_stream_group_new(loop, &cbs, NULL, &err);
    struct client c = {.closed_why = -1};
    struct addrinfo unix_only = {.ai_family = AF_UNIX, .ai_socktype = SOCK_STREAM};
    cr_assert_eq(sk_stream_connect_list(g, &c.st, &unix_only), SK_EUSAGE);
    cr_assert_eq(sk_loop_run(loop), 0);
    cr_assert_eq(c.connected + c.released, 0);
    sk_stream_group_free(g);
    cr_assert_eq(sk_loop_free(loop), 0);
}

static void stop_cb(struct sk_loop *loop, struct sk_timer *t)
{
    (void)t;
    sk_loop_stop(loop);
}

/* A group freed while the attempts are pending closes them all. */
Test(stream_connect, freeing_the_group_mid_connect_leaks_nothing)
{
    int fds = fd_count();
    struct hole h;
    hole_open(&h);
    struct sockaddr_in sa[2] = {h.sa, h.sa};
    struct addrinfo ai[2];
    chain(ai, sa, 2);
    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    struct sk_stream_group *g = sk_stream_group_new(loop, &cbs, NULL, &err);
    struct client c = {.closed_why = -1};
    int with_loop = fd_count();
    cr_assert_eq(sk_stream_connect_list(g, &c.st, ai), 0);
    struct sk_timer stop = {0};
    sk_timer_start(loop, &stop, 300, stop_cb); /* both attempts pending by then */
    cr_assert_eq(sk_loop_run(loop), 0);
    cr_assert_eq(c.connected, 0);
    cr_assert_eq(fd_count(), with_loop + 2, "two attempts pending");
    sk_stream_group_free(g);
    cr_assert_eq(c.closed_why, SK_CLOSE_SHUTDOWN);
    cr_assert_eq(c.released, 1);
    cr_assert_eq(sk_loop_free(loop), 0, "no attempt or timer left on the loop");
    hole_close(&h);
    cr_assert_eq(fd_count(), fds);
}
