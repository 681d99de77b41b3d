/* Unit tests: the plain transport over a socketpair: reads, writes, end of
 * stream, deadlines, ownership of the fd. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

static void pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

Test(transport, read_write_eof)
{
    int sv[2];
    pair(sv);
    struct sk_conn *c;
    cr_assert_eq(sk_conn_new_plain(sv[0], &c), 0);
    cr_assert_eq(sk_conn_handshake(c, 0), 0, "plain: nothing to do");
    cr_assert_eq(sk_conn_write(c, "ping", 4, sk_now_ms() + 1000), 0);
    char buf[16];
    cr_assert_eq(read(sv[1], buf, sizeof buf), 4);
    cr_assert_eq(memcmp(buf, "ping", 4), 0);
    cr_assert_eq(write(sv[1], "pong!", 5), 5);
    cr_assert_eq(sk_conn_read(c, buf, sizeof buf, sk_now_ms() + 1000), 5);
    cr_assert_eq(memcmp(buf, "pong!", 5), 0);
    close(sv[1]);
    cr_assert_eq(sk_conn_read(c, buf, sizeof buf, sk_now_ms() + 1000), 0, "end of stream");
    sk_conn_free(c, true);
    cr_assert_eq(fcntl(sv[0], F_GETFD), -1, "the conn owned and closed the fd");
}

Test(transport, read_deadline)
{
    int sv[2];
    pair(sv);
    struct sk_conn *c;
    cr_assert_eq(sk_conn_new_plain(sv[0], &c), 0);
    char buf[16];
    uint64_t start = sk_now_ms();
    cr_assert_eq(sk_conn_read(c, buf, sizeof buf, start + 100), SK_ETIMEDOUT);
    uint64_t took = sk_now_ms() - start;
    cr_assert(took >= 100 && took < 2000, "took %llu ms", (unsigned long long)took);
    cr_assert_eq(sk_conn_read(c, buf, sizeof buf, start), SK_ETIMEDOUT, "a past deadline");
    sk_conn_free(c, false);
    close(sv[1]);
}

Test(transport, write_deadline_when_peer_does_not_read)
{
    int sv[2];
    pair(sv);
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    struct sk_conn *c;
    cr_assert_eq(sk_conn_new_plain(sv[0], &c), 0);
    static char big[4 << 20];
    uint64_t start = sk_now_ms();
    cr_assert_eq(sk_conn_write(c, big, sizeof big, start + 100), SK_ETIMEDOUT);
    cr_assert_lt(sk_now_ms() - start, 2000);
    sk_conn_free(c, false);
    close(sv[1]);
}

Test(transport, closed_peer_write_error)
{
    int sv[2];
    pair(sv);
    struct sk_conn *c;
    cr_assert_eq(sk_conn_new_plain(sv[0], &c), 0);
    close(sv[1]);
    int rc = sk_conn_write(c, "x", 1, sk_now_ms() + 1000);
    cr_assert(rc == SK_ERR(EPIPE) || rc == SK_ERR(ECONNRESET), "rc %d", rc);
    sk_conn_free(c, false);
}
