/* Unit tests: the event loop (fd readiness, timers, stop, close checks). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "alloc_int.h"
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

/* The stopper waits until the loop has dispatched a callback (it is
 * running, and goes back to a 60 s wait), then stops it from its thread. */
struct stop_probe {
    struct sk_io io;
    struct sk_loop *loop;
    int fds[2];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int seen;
};

static void on_stop_probe(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)events;
    struct stop_probe *p = SK_CONTAINER_OF(io, struct stop_probe, io);
    char c;
    cr_assert_eq(read(io->fd, &c, 1), 1);
    sk_io_stop(loop, io);
    pthread_mutex_lock(&p->mu);
    p->seen = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static void *stopper(void *arg)
{
    struct stop_probe *p = arg;
    cr_assert_eq(write(p->fds[1], "x", 1), 1);
    pthread_mutex_lock(&p->mu);
    while (!p->seen)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    sk_loop_stop(p->loop);
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
    struct stop_probe p = {.loop = loop, .mu = PTHREAD_MUTEX_INITIALIZER,
                           .cv = PTHREAD_COND_INITIALIZER};
    cr_assert_eq(pipe(p.fds), 0);
    cr_assert_eq(sk_io_start(loop, &p.io, p.fds[0], SK_READ, on_stop_probe), 0);
    pthread_t th;
    pthread_create(&th, NULL, stopper, &p);
    uint64_t t0 = sk_now_ms();
    cr_assert_eq(sk_loop_run(loop), 0);
    cr_assert_lt(sk_now_ms() - t0, 30000, "woken by the stop, not by the timer");
    pthread_join(th, NULL);
    close(p.fds[0]);
    close(p.fds[1]);
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

/* ---- the timer heap under allocation failure and random operations ---- */

#define NT 300

static struct tprobe many[NT];
static uint64_t fired_due[NT];
static int nfired;
static struct sk_timer *victim; /* stopped by the next callback, if set */

static void on_many(struct sk_loop *loop, struct sk_timer *t)
{
    cr_assert_not(sk_timer_armed(t));
    fired_due[nfired++] = t->due_ms;
    if (victim) {
        sk_timer_stop(loop, victim);
        victim = NULL;
    }
}

/* Regression: the first timer of a loop allocated the heap, and a failed
 * allocation there called abort(). Arming a timer allocates nothing now. */
Test(loop, timers_start_while_allocations_fail)
{
    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    cr_assert_not_null(loop);
    nfired = 0;
    sk__alloc_fail_at(1);
    uint64_t now = sk_loop_now(loop);
    for (int i = 0; i < NT; i++)
        sk_timer_start_at(loop, &many[i].t, now - 1 - (uint64_t)((i * 7919) % NT), on_many);
    cr_assert_eq(sk__alloc_count(), 0, "arming timers allocated");
    sk__alloc_fail_at(0);
    cr_assert_eq(sk_loop_handles(loop), NT);
    cr_assert_eq(sk_loop_run(loop), 0);
    cr_assert_eq(nfired, NT);
    for (int i = 1; i < NT; i++)
        cr_assert_leq(fired_due[i - 1], fired_due[i], "fired out of order at %d", i);
    cr_assert_eq(sk_loop_free(loop), 0);
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* Random arms, re-arms and stops (also from callbacks) against a model:
 * exactly the armed timers fire, in due order. All are due already, so a
 * run fires them at once. */
Test(loop, timer_heap_matches_a_model_under_random_operations)
{
    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    uint32_t seed = 12345;
    for (int round = 0; round < 200; round++) {
        bool armed[NT] = {0};
        uint64_t base = sk_loop_now(loop) - 100000;
        for (int op = 0; op < 3 * NT; op++) {
            int i = (int)(rnd(&seed) % NT);
            if (rnd(&seed) % 3 == 0) {
                sk_timer_stop(loop, &many[i].t);
                armed[i] = false;
            } else {
                sk_timer_start_at(loop, &many[i].t, base + rnd(&seed) % 500, on_many);
                armed[i] = true;
            }
        }
        int want = 0, v = (int)(rnd(&seed) % NT);
        for (int i = 0; i < NT; i++)
            want += armed[i];
        cr_assert_eq(sk_loop_handles(loop), (size_t)want);
        /* The first callback stops timer v: it fires only if it came first. */
        victim = armed[v] ? &many[v].t : NULL;
        nfired = 0;
        cr_assert_eq(sk_loop_run(loop), 0);
        cr_assert(nfired == want || nfired == want - 1, "round %d: %d of %d", round, nfired, want);
        for (int i = 1; i < nfired; i++)
            cr_assert_leq(fired_due[i - 1], fired_due[i], "round %d: order at %d", round, i);
        cr_assert_eq(sk_loop_handles(loop), 0);
    }
    cr_assert_eq(sk_loop_free(loop), 0);
}
