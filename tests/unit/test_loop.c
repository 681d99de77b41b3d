/* Unit tests: the event loop (fd readiness, timers, stop, close checks). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "sockit.h"

struct pipe_probe {
    struct sk_io io;
    int calls;
    char got[16];
};

static void on_pipe(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    struct pipe_probe *p = SK_CONTAINER_OF(io, struct pipe_probe, io);
    cr_assert(events & SK_READ);
    ssize_t n = read(io->fd, p->got, sizeof p->got);
    cr_assert_gt(n, 0);
    p->calls++;
    sk_io_stop(loop, io); /* last handle gone: the loop returns */
}

Test(loop, io_readiness_and_clean_close)
{
    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    cr_assert_not_null(loop);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    struct pipe_probe p = {0};
    cr_assert_eq(sk_io_start(loop, &p.io, fds[0], SK_READ, on_pipe), 0);
    cr_assert_eq(sk_loop_free(loop), SK_EBUSY, "free must refuse while handles exist");
    cr_assert_eq(write(fds[1], "hi", 2), 2);
    cr_assert_eq(sk_loop_run(loop), 0);
    cr_assert_eq(p.calls, 1);
    cr_assert_eq(memcmp(p.got, "hi", 2), 0);
    cr_assert_eq(sk_loop_handles(loop), 0);
    cr_assert_eq(sk_loop_free(loop), 0);
    close(fds[0]);
    close(fds[1]);
}

struct tprobe {
    struct sk_timer t;
    int id;
};

static int order[8], norder;

static void on_timer(struct sk_loop *loop, struct sk_timer *t)
{
    (void)loop;
    order[norder++] = SK_CONTAINER_OF(t, struct tprobe, t)->id;
}

Test(loop, timers_fire_in_due_order_and_stop_cancels)
{
    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    struct tprobe t[5] = {{.id = 0}, {.id = 1}, {.id = 2}, {.id = 3}, {.id = 4}};
    norder = 0;
    uint64_t delays[5] = {40, 10, 30, 20, 25};
    for (int i = 0; i < 5; i++)
        sk_timer_start(loop, &t[i].t, delays[i], on_timer);
    sk_timer_stop(loop, &t[4].t);
    cr_assert_not(sk_timer_armed(&t[4].t));
    uint64_t t0 = sk_now_ms();
    cr_assert_eq(sk_loop_run(loop), 0);
    cr_assert_geq(sk_now_ms() - t0, 40);
    cr_assert_eq(norder, 4);
    int want[4] = {1, 3, 2, 0};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(order[i], want[i], "position %d", i);
    cr_assert_eq(sk_loop_free(loop), 0);
}

static void *stopper(void *arg)
{
    usleep(20000);
    sk_loop_stop(arg);
    return NULL;
}

static void never(struct sk_loop *loop, struct sk_timer *t)
{
    (void)loop;
    (void)t;
    cr_assert_fail("timer should not fire");
}

Test(loop, stop_from_another_thread)
{
    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    struct sk_timer t = {0};
    sk_timer_start(loop, &t, 60000, never);
    pthread_t th;
    pthread_create(&th, NULL, stopper, loop);
    cr_assert_eq(sk_loop_run(loop), 0);
    pthread_join(th, NULL);
    cr_assert_eq(sk_loop_free(loop), SK_EBUSY);
    sk_timer_stop(loop, &t);
    cr_assert_eq(sk_loop_free(loop), 0);
}

/* Two handles ready in the same wake-up; whichever callback runs first
 * stops (as if freeing) both: the other callback must not run. */
struct pair {
    struct sk_io a, b;
    int calls;
};

static struct pair *the_pair;

static void on_either(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)io;
    (void)events;
    the_pair->calls++;
    sk_io_stop(loop, &the_pair->a);
    sk_io_stop(loop, &the_pair->b);
}

Test(loop, handle_stopped_by_earlier_callback_is_skipped)
{
    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    int f1[2], f2[2];
    cr_assert_eq(pipe(f1), 0);
    cr_assert_eq(pipe(f2), 0);
    cr_assert_eq(write(f1[1], "x", 1), 1);
    cr_assert_eq(write(f2[1], "x", 1), 1);
    struct pair p = {0};
    the_pair = &p;
    sk_io_start(loop, &p.a, f1[0], SK_READ, on_either);
    sk_io_start(loop, &p.b, f2[0], SK_READ, on_either);
    cr_assert_eq(sk_loop_run(loop), 0);
    cr_assert_eq(p.calls, 1);
    cr_assert_eq(sk_loop_handles(loop), 0);
    cr_assert_eq(sk_loop_free(loop), 0);
    close(f1[0]);
    close(f1[1]);
    close(f2[0]);
    close(f2[1]);
}

Test(loop, io_close_unregisters_and_closes)
{
    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    int f[2];
    cr_assert_eq(pipe(f), 0);
    struct sk_io io = {0};
    cr_assert_eq(sk_io_start(loop, &io, f[0], SK_READ, on_either), 0);
    cr_assert_eq(sk_loop_handles(loop), 1);
    int fd = f[0];
    sk_io_close(loop, &io);
    cr_assert_eq(sk_loop_handles(loop), 0);
    cr_assert_eq(io.fd, -1);
    cr_assert_lt(fcntl(fd, F_GETFD), 0, "the fd is closed");
    sk_io_close(loop, &io); /* a second close is harmless */
    cr_assert_eq(sk_loop_free(loop), 0);
    close(f[1]);
}
