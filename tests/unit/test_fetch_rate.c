/* The rate controls of sk_fetch_opts (max_recv_speed, low_speed_limit,
 * low_speed_time_ms) against a small server thread on the loopback: paced
 * transfers alone and in a parallel run end whole, a stalled one fails
 * as the speed limit, and no descriptor stays (the pace and tick timers,
 * the paused connection). The command's tests: test_fetch_rate.py. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fetch_int.h"

#define BODY 300000 /* over one read (256 KiB): the rest comes after a pause */

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

struct srv {
    int lfd, port, conns;
    bool stall; /* send the head and 10 bytes, then wait for the client's close */
    pthread_t th;
};

static void *serve(void *arg)
{
    struct srv *s = arg;
    static char body[BODY];
    memset(body, 'r', sizeof body);
    for (int i = 0; i < s->conns; i++) {
        int c = accept(s->lfd, NULL, NULL);
        if (c < 0)
            break;
        char req[4096];
        size_t have = 0;
        while (have < sizeof req - 1 && !memmem(req, have, "\r\n\r\n", 4)) {
            ssize_t k = recv(c, req + have, sizeof req - 1 - have, 0);
            if (k <= 0)
                break;
            have += (size_t)k;
        }
        char head[128];
        int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", BODY);
        (void)send(c, head, (size_t)n, MSG_NOSIGNAL);
        if (s->stall) {
            (void)send(c, body, 10, MSG_NOSIGNAL);
            while (recv(c, req, sizeof req, 0) > 0) /* until the client gives up */
                ;
        } else {
            (void)send(c, body, sizeof body, MSG_NOSIGNAL);
        }
        close(c);
    }
    return NULL;
}

static void srv_start(struct srv *s, int conns, bool stall)
{
    s->conns = conns;
    s->stall = stall;
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(s->lfd, 8), 0);
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&s->th, NULL, serve, s), 0);
}

static void srv_stop(struct srv *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static int count(void *arg, const void *data, size_t n)
{
    (void)data;
    *(size_t *)arg += n;
    return 0;
}

struct job {
    struct sk_fetch *f[2];
    size_t got[2];
    char url[64];
    int started, rc[2];
};

static int next(void *arg, unsigned slot, struct sk_fetch **f, const char **url)
{
    struct job *j = arg;
    if (j->started == 2)
        return 0;
    j->started++;
    *f = j->f[slot];
    *url = j->url;
    return 1;
}

static void done(void *arg, unsigned slot, struct sk_fetch *f, int rc)
{
    (void)f;
    ((struct job *)arg)->rc[slot] = rc;
}

Test(fetch_rate, paced_alone_and_in_parallel_whole_and_no_descriptor_stays)
{
    int before = fd_count();
    struct srv s;
    srv_start(&s, 3, false);
    struct job j = {0};
    struct sk_fetch_opts o[2];
    for (int i = 0; i < 2; i++) {
        sk_fetch_opts_init(&o[i]);
        o[i].max_recv_speed = 2 << 20; /* the pause after the first read: ~20 ms */
        o[i].low_speed_limit = 1;
        o[i].write = count;
        o[i].write_arg = &j.got[i];
        cr_assert_eq(sk_fetch_new(&o[i], &j.f[i]), 0);
    }
    snprintf(j.url, sizeof j.url, "http://127.0.0.1:%d/x", s.port);
    cr_assert_eq(sk_fetch_run(j.f[0], j.url), 0, "%s", sk_fetch_error(j.f[0]));
    cr_assert_eq(j.got[0], BODY);
    j.got[0] = 0;
    cr_assert_eq(sk_fetch_run_parallel(2, NULL, next, done, &j), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(j.rc[i], 0, "%d: %s", i, sk_fetch_error(j.f[i]));
        cr_assert_eq(j.got[i], BODY);
        sk_fetch_free(j.f[i]);
    }
    srv_stop(&s);
    cr_assert_eq(fd_count(), before);
}

Test(fetch_rate, a_stall_fails_as_the_speed_limit)
{
    int before = fd_count();
    struct srv s;
    srv_start(&s, 1, true);
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.max_recv_speed = 1 << 20;
    o.low_speed_limit = 100;
    o.low_speed_time_ms = 1000;
    struct sk_fetch *f;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", s.port);
    cr_assert_eq(sk_fetch_run(f, url), SK_ETIMEDOUT);
    cr_assert_eq(sk_fetch_cause(f), SK_FETCH_CAUSE_SPEED_LIMIT);
    cr_assert(strstr(sk_fetch_error(f),
                     "reading the body: transfer slower than 100 bytes/s for 1 s"),
              "%s", sk_fetch_error(f));
    sk_fetch_free(f);
    srv_stop(&s);
    cr_assert_eq(fd_count(), before);
}
