/* Event loop: handle registry, a binary min-heap of timers, the run loop. */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "alloc_int.h"
#include "internal.h"
#include "sockit/err.h"

uint64_t sk_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t sk_now_ms(void)
{
    return sk_now_ns() / 1000000u;
}

uint64_t sk_loop_now(const struct sk_loop *loop)
{
    return loop->now_ms;
}

static void wake_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)events;
    uint64_t v;
    while (read(io->fd, &v, sizeof v) > 0)
        ;
    (void)loop;
}

struct sk_loop *sk_loop_new(int *err)
{
    struct sk_loop *loop = sk__calloc(1, sizeof *loop);
    if (!loop) {
        *err = SK_ERR(ENOMEM);
        return NULL;
    }
    loop->wake_fd = -1;
    int rc = sk__backend_init(loop);
    if (rc == 0) {
        loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        rc = loop->wake_fd < 0 ? SK_ERR(errno) : 0;
    }
    if (rc == 0)
        rc = sk_io_start(loop, &loop->wake_io, loop->wake_fd, SK_READ, wake_cb);
    if (rc < 0) {
        *err = rc;
        if (loop->wake_fd >= 0)
            close(loop->wake_fd);
        sk__backend_free(loop);
        free(loop);
        return NULL;
    }
    loop->io_count = 0; /* the wake handle is the loop's own */
    loop->now_ms = sk_now_ms();
    return loop;
}

size_t sk_loop_handles(const struct sk_loop *loop)
{
    return loop->io_count + loop->heap_len;
}

int sk_loop_free(struct sk_loop *loop)
{
    if (!loop)
        return 0;
    if (sk_loop_handles(loop) > 0)
        return SK_EBUSY;
    sk__backend_del(loop, &loop->wake_io);
    close(loop->wake_fd);
    sk__backend_free(loop);
    free(loop->heap);
    free(loop);
    return 0;
}

static int io_register(struct sk_loop *loop, struct sk_io *io, int fd, unsigned mask,
                       sk_io_cb cb, int exclusive)
{
    io->fd = fd;
    io->mask = exclusive ? SK_READ : mask;
    io->cb = cb;
    int rc = sk__backend_add(loop, io, mask, exclusive);
    if (rc == 0) {
        io->active = 1;
        loop->io_count++;
    }
    return rc;
}

int sk_io_start(struct sk_loop *loop, struct sk_io *io, int fd, unsigned mask, sk_io_cb cb)
{
    return io_register(loop, io, fd, mask, cb, 0);
}

int sk_io_start_exclusive(struct sk_loop *loop, struct sk_io *io, int fd, sk_io_cb cb)
{
    return io_register(loop, io, fd, SK_READ, cb, 1);
}

int sk_io_set(struct sk_loop *loop, struct sk_io *io, unsigned mask)
{
    if (io->mask == mask)
        return 0;
    int rc = sk__backend_mod(loop, io, mask);
    if (rc == 0)
        io->mask = mask;
    return rc;
}

static void io_forget(struct sk_loop *loop, struct sk_io *io)
{
    for (int i = 0; i < loop->npending; i++)
        if (loop->pending[i].io == io)
            loop->pending[i].io = NULL;
    loop->io_count--;
    io->mask = 0;
}

void sk_io_stop(struct sk_loop *loop, struct sk_io *io)
{
    if (!io->active)
        return;
    io->active = 0;
    sk__backend_del(loop, io);
    io_forget(loop, io);
}

void sk_io_close(struct sk_loop *loop, struct sk_io *io)
{
    if (io->active) {
        io->active = 0;
        io_forget(loop, io);
    }
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
}

/* ---- timers: a binary min-heap ordered by due_ms ---- */

static void heap_set(struct sk_loop *loop, size_t i, struct sk_timer *t)
{
    loop->heap[i] = t;
    t->heap_idx = i + 1;
}

static void heap_up(struct sk_loop *loop, size_t i)
{
    struct sk_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->due_ms <= t->due_ms)
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(struct sk_loop *loop, size_t i)
{
    struct sk_timer *t = loop->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        uint64_t best = t->due_ms;
        if (l < loop->heap_len && loop->heap[l]->due_ms < best) {
            m = l;
            best = loop->heap[l]->due_ms;
        }
        if (r < loop->heap_len && loop->heap[r]->due_ms < best)
            m = r;
        if (m == i)
            break;
        heap_set(loop, i, loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, t);
}

void sk_timer_stop(struct sk_loop *loop, struct sk_timer *t)
{
    if (!t->heap_idx)
        return;
    size_t i = t->heap_idx - 1;
    t->heap_idx = 0;
    struct sk_timer *last = loop->heap[--loop->heap_len];
    if (i == loop->heap_len)
        return;
    heap_set(loop, i, last);
    heap_up(loop, i);
    heap_down(loop, last->heap_idx - 1);
}

void sk_timer_start_at(struct sk_loop *loop, struct sk_timer *t, uint64_t due_ms, sk_timer_cb cb)
{
    sk_timer_stop(loop, t);
    if (loop->heap_len == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        struct sk_timer **h = sk__realloc(loop->heap, cap * sizeof *h);
        if (!h)
            abort(); /* a timer cannot be dropped silently; out of memory here is fatal */
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->due_ms = due_ms;
    t->cb = cb;
    heap_set(loop, loop->heap_len++, t);
    heap_up(loop, loop->heap_len - 1);
}

void sk_timer_start(struct sk_loop *loop, struct sk_timer *t, uint64_t delay_ms, sk_timer_cb cb)
{
    sk_timer_start_at(loop, t, loop->now_ms + delay_ms, cb);
}

static void run_timers(struct sk_loop *loop)
{
    while (loop->heap_len > 0 && loop->heap[0]->due_ms <= loop->now_ms) {
        struct sk_timer *t = loop->heap[0];
        sk_timer_stop(loop, t);
        t->cb(loop, t);
    }
}

static int next_timeout(const struct sk_loop *loop)
{
    if (loop->heap_len == 0)
        return -1;
    uint64_t due = loop->heap[0]->due_ms;
    if (due <= loop->now_ms)
        return 0;
    uint64_t d = due - loop->now_ms;
    return d > 60000 ? 60000 : (int)d;
}

void sk_loop_stop(struct sk_loop *loop)
{
    atomic_store(&loop->stop, 1);
    uint64_t one = 1;
    ssize_t w = write(loop->wake_fd, &one, sizeof one);
    (void)w; /* a full counter already guarantees a wake-up */
}

int sk_loop_run(struct sk_loop *loop)
{
    while (!atomic_load(&loop->stop) && sk_loop_handles(loop) > 0) {
        int rc = sk__backend_wait(loop, next_timeout(loop));
        if (rc < 0)
            return rc;
        loop->now_ms = sk_now_ms();
        for (int i = 0; i < loop->npending; i++) {
            struct sk_io *io = loop->pending[i].io;
            if (io)
                io->cb(loop, io, loop->pending[i].events);
        }
        loop->npending = 0;
        run_timers(loop);
    }
    atomic_store(&loop->stop, 0); /* the loop can be run again */
    return 0;
}
