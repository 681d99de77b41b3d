/* sk_fetch_run_parallel: its argument checks, the callbacks' contract, a
 * failure of next, and no descriptor left behind (the transfers are to a
 * refused port: the machinery without a server; the command's tests in
 * tests/integration/test_fetch_parallel.py fetch for real). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fetch_int.h"

static int fd_count(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* A loopback port nothing listens on. */
static int refused_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

struct job {
    struct sk_fetch *f[4];
    char url[64];
    int urls, started, ended, fail_after;
    int rc[16];
    unsigned slot_of[16];
    bool swap; /* give a slot another object for its next URL (slot 0: 0, 2; 1: 1, 3) */
    unsigned turns[2];
};

static int next(void *arg, unsigned slot, struct sk_fetch **f, const char **url)
{
    struct job *j = arg;
    if (j->fail_after && j->started == j->fail_after)
        return SK_ERR(EIO);
    if (j->started == j->urls)
        return 0;
    j->slot_of[j->started++] = slot;
    *f = j->f[j->swap ? slot + 2 * (j->turns[slot]++ % 2) : slot];
    *url = j->url;
    return 1;
}

static void done(void *arg, unsigned slot, struct sk_fetch *f, int rc)
{
    (void)slot;
    (void)f;
    struct job *j = arg;
    j->rc[j->ended++] = rc;
}

static void setup(struct job *j, struct sk_fetch_opts *o)
{
    sk_fetch_opts_init(o);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(sk_fetch_new(o, &j->f[i]), 0);
    snprintf(j->url, sizeof j->url, "http://127.0.0.1:%d/x", refused_port());
}

static void teardown(struct job *j)
{
    for (int i = 0; i < 4; i++)
        sk_fetch_free(j->f[i]);
}

Test(fetch_par, checks_its_arguments)
{
    struct job j = {0};
    cr_assert_eq(sk_fetch_run_parallel(0, NULL, next, done, &j), SK_EUSAGE);
    cr_assert_eq(sk_fetch_run_parallel(1025, NULL, next, done, &j), SK_EUSAGE);
    cr_assert_eq(sk_fetch_run_parallel(2, NULL, NULL, done, &j), SK_EUSAGE);
    cr_assert_eq(sk_fetch_run_parallel(2, NULL, next, NULL, &j), SK_EUSAGE);
    cr_assert_eq(j.started, 0);
}

Test(fetch_par, every_url_ends_once_and_no_descriptor_stays)
{
    struct job j = {.urls = 12};
    struct sk_fetch_opts o;
    int before = fd_count();
    setup(&j, &o);
    cr_assert_eq(sk_fetch_run_parallel(3, NULL, next, done, &j), 0);
    cr_assert_eq(j.ended, 12);
    for (int i = 0; i < 12; i++) {
        cr_assert_eq(j.rc[i], SK_ECONNECT, "%d: %s", i, sk_strerror(j.rc[i]));
        cr_assert_lt(j.slot_of[i], 3);
    }
    cr_assert_eq(fd_count(), before);
    /* the objects run alone again afterwards (on a loop of their own) */
    cr_assert_eq(sk_fetch_run(j.f[0], j.url), SK_ECONNECT);
    teardown(&j);
    cr_assert_eq(fd_count(), before);
}

Test(fetch_par, another_object_for_a_slot_and_retry_waits)
{
    struct job j = {.urls = 8, .swap = true};
    struct sk_fetch_opts o;
    setup(&j, &o);
    o.retries = 1;
    o.retry_delay_ms = 20; /* the wait: a timer on the shared loop */
    for (int i = 0; i < 4; i++)
        cr_assert_eq(sk_fetch_set_opts(j.f[i], &o), 0);
    int before = fd_count();
    cr_assert_eq(sk_fetch_run_parallel(2, NULL, next, done, &j), 0);
    cr_assert_eq(j.ended, 8);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(j.rc[i], SK_ECONNECT);
    cr_assert_eq(fd_count(), before);
    teardown(&j);
}

Test(fetch_par, a_failing_next_stops_the_run_after_those_under_way)
{
    struct job j = {.urls = 10, .fail_after = 3};
    struct sk_fetch_opts o;
    setup(&j, &o);
    int before = fd_count();
    cr_assert_eq(sk_fetch_run_parallel(2, NULL, next, done, &j), SK_ERR(EIO));
    cr_assert_eq(j.ended, j.started, "each started transfer ended once");
    cr_assert_eq(fd_count(), before);
    teardown(&j);
}

static int raise_on_retry(void *arg, const struct sk_fetch_event *ev)
{
    if (ev->kind == SK_FETCH_EV_NOTICE && memmem(ev->data, ev->len, "retrying", 8))
        sk_fetch_cancel_raise(arg, SIGINT);
    return 0;
}

Test(fetch_par, a_raised_cancel_stops_them_all)
{
    struct job j = {.urls = 6};
    struct sk_fetch_cancel cx = SK_FETCH_CANCEL_INIT;
    struct sk_fetch_opts o;
    setup(&j, &o);
    o.cancel = &cx;
    o.retries = 5;
    o.retry_delay_ms = 60000; /* would wait a minute, but for the cancel */
    o.on_event = raise_on_retry;
    o.event_arg = &cx;
    for (int i = 0; i < 4; i++)
        cr_assert_eq(sk_fetch_set_opts(j.f[i], &o), 0);
    uint64_t t0 = sk_now_ms();
    cr_assert_eq(sk_fetch_run_parallel(2, &cx, next, done, &j), 0);
    cr_assert_lt(sk_now_ms() - t0, 30000);
    cr_assert_geq(j.started, 1);
    cr_assert_leq(j.started, 2, "nothing more starts once cancelled");
    cr_assert_eq(j.ended, j.started);
    /* the one waiting to retry is interrupted; one whose attempt had just
     * failed is not retried */
    int cancelled = 0;
    for (int i = 0; i < j.ended; i++) {
        cr_assert(j.rc[i] == SK_ERR(ECANCELED) || j.rc[i] == SK_ECONNECT, "%s",
                  sk_strerror(j.rc[i]));
        cancelled += j.rc[i] == SK_ERR(ECANCELED);
    }
    cr_assert_geq(cancelled, 1);
    cr_assert_eq(cx.fd, -1);
    teardown(&j);
}

Test(fetch_par, cancelled_before_the_start_starts_nothing)
{
    struct job j = {.urls = 6};
    struct sk_fetch_cancel cx = SK_FETCH_CANCEL_INIT;
    struct sk_fetch_opts o;
    setup(&j, &o);
    cx.flag = SIGINT;
    cr_assert_eq(sk_fetch_run_parallel(2, &cx, next, done, &j), 0);
    cr_assert_eq(j.started, 0);
    teardown(&j);
}
