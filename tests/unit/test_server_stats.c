/* Unit tests: sk_server_stats_read on a running server, from another
 * thread, and sk_server_wait's summary from the same counters. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sockit.h"

static int echo(void *user, struct sk_server_conn *c, const char *msg, size_t n)
{
    (void)user;
    return sk_server_conn_write(c, msg, n);
}

static int connect_to(struct sk_server *srv)
{
    char addr[SK_ADDRSTR_MAX];
    cr_assert_eq(sk_server_socket_addr(srv, 0, addr, sizeof addr, NULL), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)atoi(strrchr(addr, ':') + 1))};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

static uint64_t latency_count(const struct sk_server_stats *st)
{
    uint64_t n = 0;
    for (size_t i = 0; i <= SK_SERVER_LATENCY_BUCKETS; i++)
        n += st->latency[i];
    return n;
}

/* Reads the stats until pred holds (5 s at most): the workers count on
 * their own threads, a little after the bytes the test sees. */
static void read_until(struct sk_server *srv, struct sk_server_stats *st,
                       bool (*pred)(const struct sk_server_stats *))
{
    uint64_t deadline = sk_now_ms() + 5000;
    for (;;) {
        cr_assert_eq(sk_server_stats_read(srv, st), 0);
        if (pred(st))
            return;
        cr_assert_lt(sk_now_ms(), deadline, "timed out waiting for the counters");
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
}

static bool answered(const struct sk_server_stats *st)
{
    return latency_count(st) == 1;
}

static bool all_closed(const struct sk_server_stats *st)
{
    return st->open == 0 && st->closed[SK_CLOSE_EOF] == 1;
}

Test(server_stats, read_while_running_and_summary_agree)
{
    struct sk_server_config cfg = {.nlisten = 1, .workers = 2, .proto = {.message = echo}};
    cr_assert_eq(sk_endpoint_parse("127.0.0.1:0", &cfg.listen[0]), 0);
    struct sk_server *srv = NULL;
    cr_assert_eq(sk_server_new(&cfg, &srv, NULL), 0);
    struct sk_server_stats st;
    cr_assert_eq(sk_server_stats_read(srv, &st), 0); /* before start: zeros */
    cr_assert_eq(st.conns + st.open + st.msgs + latency_count(&st), 0);
    cr_assert_eq(sk_server_start(srv), 0);

    int fd = connect_to(srv);
    cr_assert_eq(send(fd, "abc", 3, 0), 3);
    char buf[8];
    cr_assert_eq(recv(fd, buf, 3, MSG_WAITALL), 3);
    read_until(srv, &st, answered);
    cr_assert_eq(st.conns, 1);
    cr_assert_eq(st.open, 1);
    cr_assert_eq(st.msgs, 1);
    cr_assert_eq(st.bytes_in, 3);
    cr_assert_eq(st.bytes_out, 3);
    cr_assert_gt(st.latency_sum_ns, 0);

    close(fd);
    read_until(srv, &st, all_closed);
    sk_server_stop(srv);
    struct sk_server_stats end;
    cr_assert_eq(sk_server_wait(srv, &end), 0);
    cr_assert_eq(memcmp(&st, &end, sizeof st), 0, "the summary is the same counters");
    cr_assert_eq(sk_server_stats_read(srv, &st), 0); /* after wait, until free */
    cr_assert_eq(st.conns, 1);
    sk_server_free(srv);
}
