/* Event loop: handle registry, a pairing heap of timers, the run loop. */
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
    loop->now_ns = sk_now_ns();
    loop->now_ms = loop->now_ns / 1000000u;
    return loop;
}

size_t sk_loop_handles(const struct sk_loop *loop)
{
    return loop->io_count + loop->ntimers;
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

/* ---- timers: an intrusive pairing heap ordered by due_ms ----
 * The links live in the timers themselves, so arming a timer allocates
 * nothing and cannot fail: a loop never has to drop (or abort on) a timer
 * because memory ran out. Insert is O(1), removal O(log n) amortised. */

/* Joins two heaps whose roots have no siblings; returns the new root. */
static struct sk_timer *heap_meld(struct sk_timer *a, struct sk_timer *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (b->due_ms < a->due_ms) {
        struct sk_timer *x = a;
        a = b;
        b = x;
    }
    b->prev = a;
    b->next = a->child;
    if (a->child)
        a->child->prev = b;
    a->child = b;
    return a;
}

/* The children of a removed node, melded in pairs left to right, then the
 * pairs from right to left (the two passes that bound the amortised cost). */
static struct sk_timer *heap_merge_pairs(struct sk_timer *first)
{
    struct sk_timer *pairs = NULL; /* linked through next, last pair first */
    while (first) {
        struct sk_timer *a = first, *b = a->next;
        first = b ? b->next : NULL;
        a->prev = a->next = NULL;
        if (b)
            b->prev = b->next = NULL;
        struct sk_timer *m = heap_meld(a, b);
        m->next = pairs;
        pairs = m;
    }
    struct sk_timer *root = NULL;
    while (pairs) {
        struct sk_timer *n = pairs->next;
        pairs->next = NULL;
        root = heap_meld(root, pairs);
        pairs = n;
    }
    return root;
}

void sk_timer_stop(struct sk_loop *loop, struct sk_timer *t)
{
    if (!t->armed)
        return;
    t->armed = 0;
    loop->ntimers--;
    struct sk_timer *sub = heap_merge_pairs(t->child);
    if (t == loop->timers) {
        loop->timers = sub;
    } else {
        /* prev is the parent when t is its first child, else the left sibling. */
        if (t->prev->child == t)
            t->prev->child = t->next;
        else
            t->prev->next = t->next;
        if (t->next)
            t->next->prev = t->prev;
        loop->timers = heap_meld(loop->timers, sub);
    }
    t->child = t->next = t->prev = NULL;
}

void sk_timer_start_at(struct sk_loop *loop, struct sk_timer *t, uint64_t due_ms, sk_timer_cb cb)
{
    sk_timer_stop(loop, t);
    t->due_ms = due_ms;
    t->cb = cb;
    t->child = t->next = t->prev = NULL;
    t->armed = 1;
    loop->ntimers++;
    loop->timers = heap_meld(loop->timers, t);
}

void sk_timer_start(struct sk_loop *loop, struct sk_timer *t, uint64_t delay_ms, sk_timer_cb cb)
{
    sk_timer_start_at(loop, t, loop->now_ms + delay_ms, cb);
}

static void run_timers(struct sk_loop *loop)
{
    while (loop->timers && loop->timers->due_ms <= loop->now_ms) {
        struct sk_timer *t = loop->timers;
        sk_timer_stop(loop, t);
        t->cb(loop, t);
    }
}

static int next_timeout(const struct sk_loop *loop)
{
    if (!loop->timers)
        return -1;
    uint64_t due = loop->timers->due_ms;
    if (due <= loop->now_ms)
        return 0;
    uint64_t d = due - loop->now_ms;
    return d > 60000 ? 60000 : (int)d;
}

int sk__eventfd_post(int fd)
{
    uint64_t one = 1;
    for (int tries = 0; tries < 100; tries++) {
        if (write(fd, &one, sizeof one) == (ssize_t)sizeof one)
            return 0;
        if (errno == EAGAIN)
            return 0; /* the counter is full: the reader is due a wake-up anyway */
        if (errno != EINTR)
            return SK_ERR(errno);
    }
    return SK_ERR(EINTR);
}

void sk_loop_stop(struct sk_loop *loop)
{
    int saved = errno; /* a signal handler may call this */
    atomic_store(&loop->stop, 1);
    /* From a callback (a transfer of a parallel run ends: once or twice
     * per file) the loop looks at stop before it waits again: no wake-up
     * to write and read back. Both sides store, then load (seq_cst), so
     * one of them always sees the other's: the loop stops, or it is woken. */
    if (!atomic_load(&loop->dispatching))
        sk__eventfd_post(loop->wake_fd);
    errno = saved;
}

int sk_loop_run(struct sk_loop *loop)
{
    for (;;) {
        /* not dispatching from here to the wait (a run nested in a
         * callback too): a stop now must wake the wait */
        atomic_store(&loop->dispatching, 0);
        if (atomic_load(&loop->stop) || sk_loop_handles(loop) == 0)
            break;
        int rc = sk__backend_wait(loop, next_timeout(loop));
        if (rc < 0)
            return rc;
        loop->now_ns = sk_now_ns();
        loop->now_ms = loop->now_ns / 1000000u;
        atomic_store(&loop->dispatching, 1);
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
