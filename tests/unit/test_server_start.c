/* Unit tests: sk_server_new/start/stop/wait/free with the k-th allocation
 * failing, for every k the sequence makes: each failure is an error return,
 * never a crash, and releases everything (fds here, memory under LSan). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SK_TEST_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(SK_TEST_LSAN)
#include <sanitizer/lsan_interface.h>
/* Criterion ignores a leak report at exit: check here, and fail on it. */
#define assert_no_leaks() cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "leaks (above)")
#else
#define assert_no_leaks() ((void)0)
#endif

#include "alloc_int.h"
#include "server_int.h"
#include "sockit.h"

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Runs the server's whole life once; returns the first error, or 0. */
static int one_life(const struct sk_server_config *cfg)
{
    struct sk_server *srv = NULL;
    int rc = sk_server_new(cfg, &srv, NULL);
    if (rc < 0)
        return rc;
    rc = sk_server_start(srv);
    if (rc == 0) {
        sk_server_stop(srv);
        struct sk_server_stats st;
        cr_assert_eq(sk_server_wait(srv, &st), 0);
        cr_assert_eq(st.conns, 0);
    }
    sk_server_free(srv);
    return rc;
}

/* Fails allocation k = 1, 2, ... until a whole life needs fewer than k. */
static void every_allocation_fails_once(const struct sk_server_config *cfg)
{
    int base = open_fds();
    unsigned long k;
    for (k = 1; k < 10000; k++) {
        sk__alloc_fail_at(k);
        int rc = one_life(cfg);
        unsigned long made = sk__alloc_count();
        sk__alloc_fail_at(0);
        cr_assert_eq(open_fds(), base, "k=%lu: fds leaked", k);
        if (made < k) {
            cr_assert_eq(rc, 0, "k=%lu: failed with no allocation failing", k);
            break;
        }
        cr_assert_eq(rc, SK_ERR(ENOMEM), "k=%lu: rc %d (%s)", k, rc, sk_strerror(rc));
    }
    cr_assert_gt(k, 3, "the sequence allocates: the hook must see it");
    cr_assert_lt(k, 10000);
    assert_no_leaks();
}

static int no_reply(void *user, struct sk_server_conn *c, const char *msg, size_t n)
{
    (void)user, (void)c, (void)msg, (void)n;
    return 0;
}

static bool no_dgram_reply(void *user, struct sk_datagram *d)
{
    (void)user, (void)d;
    return false;
}

static struct sk_server_config base_config(void)
{
    struct sk_server_config cfg = {0};
    cfg.proto.message = no_reply;
    cfg.proto.datagram = no_dgram_reply;
    cr_assert_eq(sk_endpoint_parse("127.0.0.1:0", &cfg.listen[0]), 0);
    cfg.nlisten = 1;
    cfg.workers = 3;
    return cfg;
}

Test(server_start, every_allocation_failure_is_an_error_and_releases_all)
{
    struct sk_server_config cfg = base_config();
    every_allocation_fails_once(&cfg);
}

Test(server_start, with_udp_and_two_addresses)
{
    struct sk_server_config cfg = base_config();
    cr_assert_eq(sk_endpoint_parse("127.0.0.1:0", &cfg.listen[1]), 0);
    cfg.nlisten = 2;
    cfg.udp = true;
    every_allocation_fails_once(&cfg);
}

Test(server_start, with_reuseport)
{
    struct sk_server_config cfg = base_config();
    cfg.reuseport = true;
    cfg.udp = true;
    every_allocation_fails_once(&cfg);
}

/* (A hang here is caught by the runner's --timeout, as `make test-unit` runs it.)
 * Regression: the stop request is one eventfd write per worker, and a write
 * that failed was ignored: that worker ran for ever, sk_server_wait never
 * returned, and `sockit serve` logged "stopping" and never exited. Here the
 * first write goes to a descriptor that refuses it. */
Test(server_start, a_failed_stop_write_is_resent)
{
    struct sk_server_config cfg = base_config();
    cfg.workers = 2;
    struct sk_server *srv = NULL;
    cr_assert_eq(sk_server_new(&cfg, &srv, NULL), 0);
    cr_assert_eq(sk_server_start(srv), 0);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    struct sk__worker *w = &srv->workers[1];
    int real = w->stop_fd;
    w->stop_fd = p[0]; /* the read end: write() fails with EBADF */
    sk_server_stop(srv);
    w->stop_fd = real;
    struct sk_server_stats st;
    uint64_t t0 = sk_now_ms();
    cr_assert_eq(sk_server_wait(srv, &st), 0);
    cr_assert_lt(sk_now_ms() - t0, 5000);
    sk_server_free(srv);
    close(p[0]);
    close(p[1]);
}
