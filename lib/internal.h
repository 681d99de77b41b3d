/* Declarations shared inside lib/ only; never installed. */
#ifndef SOCKIT_INTERNAL_H
#define SOCKIT_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "sockit/loop.h"

#define SK__MAX_EVENTS 256

/* The readiness back-end behind the loop (loop_epoll.c). */
struct sk__backend_event {
    struct sk_io *io; /* NULL once stopped during the current dispatch */
    unsigned events;
};

struct sk_loop {
    int backend_fd;
    int wake_fd;
    struct sk_io wake_io;
    atomic_int stop;
    atomic_int dispatching; /* in the callbacks: stop is looked at before the next wait */
    uint64_t now_ms;
    uint64_t now_ns; /* the same instant in ns (sk__loop_now_ns) */
    size_t io_count; /* registered handles, wake_io excluded */
    struct sk_timer *timers; /* root of the pairing heap of armed timers */
    size_t ntimers;
    /* Events of the current dispatch; sk_io_stop() clears matching slots so
     * a handle freed by an earlier callback is never touched. */
    struct sk__backend_event pending[SK__MAX_EVENTS];
    int npending;
};

/* The loop's cached monotonic time in ns: when its current iteration woke
 * up (the server's reply latency starts there, at no clock read). */
static inline uint64_t sk__loop_now_ns(const struct sk_loop *loop)
{
    return loop->now_ns;
}

/* Adds 1 to an eventfd (a wake-up), retrying on EINTR; 0 or -errno. */
int sk__eventfd_post(int fd);

int sk__backend_init(struct sk_loop *loop);
void sk__backend_free(struct sk_loop *loop);
int sk__backend_add(struct sk_loop *loop, struct sk_io *io, unsigned mask, int exclusive);
int sk__backend_mod(struct sk_loop *loop, struct sk_io *io, unsigned mask);
void sk__backend_del(struct sk_loop *loop, struct sk_io *io);
/* Waits up to timeout_ms (-1: forever) and fills loop->pending. */
int sk__backend_wait(struct sk_loop *loop, int timeout_ms);

#endif
