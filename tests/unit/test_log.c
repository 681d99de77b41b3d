/* Unit tests: the non-blocking logger. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "sockit.h"

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t k;
    while (n < cap && (k = read(fd, buf + n, cap - n)) > 0)
        n += (size_t)k;
    return n;
}

Test(log, lines_are_timestamped_and_complete)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int err = 0;
    struct sk_log *log = sk_log_new(p[1], 1 << 16, &err);
    cr_assert_not_null(log);
    sk_log_printf(log, "open %s", "127.0.0.1:1");
    sk_log_printf(log, "close %d", 7);
    sk_log_printf(NULL, "quiet: goes nowhere");
    sk_log_free(log); /* flushes */
    close(p[1]);
    char buf[512] = {0};
    size_t n = read_all(p[0], buf, sizeof buf - 1);
    close(p[0]);
    cr_assert_gt(n, 0);
    /* 2026-11-27T06:00:00.000Z open 127.0.0.1:1 */
    cr_assert_eq(buf[4], '-');
    cr_assert_eq(buf[10], 'T');
    cr_assert_eq(buf[23], 'Z');
    cr_assert_not_null(strstr(buf, "Z open 127.0.0.1:1\n"));
    cr_assert_not_null(strstr(buf, "Z close 7\n"));
    cr_assert_null(strstr(buf, "quiet"));
}

static void *drain_later(void *arg)
{
    int fd = *(int *)arg;
    usleep(200000);
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    return NULL;
}

Test(log, full_ring_drops_and_counts_instead_of_blocking)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int err = 0;
    struct sk_log *log = sk_log_new(p[1], 4096, &err);
    cr_assert_not_null(log);
    /* Nobody reads the pipe yet: once it (64 KiB) and the ring (4 KiB) are
     * full, lines are dropped; the callers never block. */
    char line[200];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    uint64_t t0 = sk_now_ms();
    for (int i = 0; i < 2000; i++)
        sk_log_printf(log, "%s", line);
    cr_assert_lt(sk_now_ms() - t0, 2000, "logging must not block on a full pipe");
    cr_assert_gt(sk_log_dropped(log), 0);
    pthread_t th;
    pthread_create(&th, NULL, drain_later, &p[0]);
    sk_log_free(log);
    close(p[1]);
    pthread_join(th, NULL);
    close(p[0]);
}

Test(log, free_returns_when_nobody_ever_reads, .timeout = 20)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int err = 0;
    struct sk_log *log = sk_log_new(p[1], 1 << 20, &err);
    cr_assert_not_null(log);
    char line[512];
    memset(line, 'y', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    for (int i = 0; i < 1000; i++) /* 512 KB: far more than the pipe holds */
        sk_log_printf(log, "%s", line);
    uint64_t t0 = sk_now_ms();
    sk_log_free(log); /* must give up on the stuck pipe, not hang */
    cr_assert_lt(sk_now_ms() - t0, 10000);
    close(p[0]);
    close(p[1]);
}
