/* Unit tests: a stream whose TCP peer sent data and then reset the
 * connection hands the data to its reader before it closes (a client's
 * response that ends with a reset must not be lost). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

struct reader {
    struct sk_stream st;
    size_t got;
    int closed_why;
};

static bool r_read(struct sk_stream *s, const char *data, size_t n)
{
    (void)data;
    SK_CONTAINER_OF(s, struct reader, st)->got += n;
    return true;
}

static void r_flushed(struct sk_stream *s)
{
    sk_stream_update(s, true);
}

static void r_close(struct sk_stream *s, enum sk_close_reason why)
{
    SK_CONTAINER_OF(s, struct reader, st)->closed_why = (int)why;
}

static void r_release(struct sk_stream *s)
{
    (void)s;
}

static const struct sk_stream_cbs r_cbs = {
    .read = r_read, .flushed = r_flushed, .close = r_close, .release = r_release};

Test(stream_reset, data_before_a_reset_is_read_first)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    cr_assert(bind(lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(lfd, 1) == 0);
    cr_assert(getsockname(lfd, (struct sockaddr *)&a, &alen) == 0);
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(connect(cfd, (struct sockaddr *)&a, sizeof a) == 0);
    int sfd = accept(lfd, NULL, NULL);
    cr_assert(sfd >= 0);
    static char data[5000];
    cr_assert(write(sfd, data, sizeof data) == (ssize_t)sizeof data);
    struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* close() sends a reset */
    setsockopt(sfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(sfd);
    close(lfd);
    /* The reset is in before the stream starts: the order is fixed. */
    struct pollfd p = {.fd = cfd, .events = POLLIN};
    for (int i = 0; i < 100 && !(p.revents & POLLERR); i++)
        poll(&p, 1, 50);
    cr_assert(p.revents & POLLERR, "the reset did not arrive");
    cr_assert(fcntl(cfd, F_SETFL, fcntl(cfd, F_GETFL) | O_NONBLOCK) == 0);

    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    cr_assert(loop);
    struct sk_stream_group *g = sk_stream_group_new(loop, &r_cbs, NULL, &err);
    cr_assert(g);
    struct reader r = {0};
    cr_assert(sk_stream_open(g, &r.st, cfd) == 0);
    cr_assert(sk_loop_run(loop) == 0);
    cr_expect_eq(r.got, sizeof data);
    cr_expect_eq(r.closed_why, SK_CLOSE_RESET);
    sk_stream_group_free(g);
    cr_expect_eq(sk_loop_free(loop), 0);
}
