/* A small event loop: fd readiness (epoll on Linux) and one-shot timers.
 *
 * One loop per thread. Handles (struct sk_io, struct sk_timer) are embedded
 * in the caller's objects, so the loop allocates nothing per connection;
 * a callback finds its object with SK_CONTAINER_OF. Every function here is
 * for the loop's own thread, except sk_loop_stop(), which any thread or a
 * signal handler may call. */
#ifndef SOCKIT_LOOP_H
#define SOCKIT_LOOP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SK_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

enum { SK_READ = 1, SK_WRITE = 2 };
/* Extra bits a callback can see in `events`. */
enum { SK_HUP = 4, SK_ERROR = 8 };

struct sk_loop;
struct sk_io;
struct sk_timer;

typedef void (*sk_io_cb)(struct sk_loop *loop, struct sk_io *io, unsigned events);
typedef void (*sk_timer_cb)(struct sk_loop *loop, struct sk_timer *t);

struct sk_io {
    int fd;
    uint16_t mask;   /* SK_READ | SK_WRITE currently watched */
    uint16_t active; /* registered with a loop (small: one per connection) */
    sk_io_cb cb;
};

struct sk_timer {
    uint64_t due_ms;  /* on the loop's monotonic clock */
    sk_timer_cb cb;
    /* The loop's heap links (the loop allocates nothing per timer). */
    struct sk_timer *child, *next, *prev;
    int armed;
};

/* Creates a loop. Returns NULL and sets *err on failure. */
struct sk_loop *sk_loop_new(int *err);
/* Frees the loop. Returns SK_EBUSY (and frees nothing) while any io or
 * timer is still registered; 0 otherwise. */
int sk_loop_free(struct sk_loop *loop);

/* Watches fd for `mask` (SK_READ|SK_WRITE; 0 registers with no interest).
 * With exclusive set, one waiter across loops is woken per event
 * (EPOLLEXCLUSIVE: many loops sharing one listening socket).
 * Returns 0 or -errno. */
int sk_io_start(struct sk_loop *loop, struct sk_io *io, int fd, unsigned mask, sk_io_cb cb);
int sk_io_start_exclusive(struct sk_loop *loop, struct sk_io *io, int fd, sk_io_cb cb);
/* Changes the watched mask; a no-op when it is unchanged. */
int sk_io_set(struct sk_loop *loop, struct sk_io *io, unsigned mask);
/* Stops watching; the fd is not closed. Safe from inside any callback, and
 * on a handle that is already stopped. */
void sk_io_stop(struct sk_loop *loop, struct sk_io *io);

/* Stops watching and closes the fd in one step. Saves the EPOLL_CTL_DEL:
 * closing the last descriptor of a file removes it from epoll anyway. Use
 * it only when no other descriptor (dup, fork) refers to the same socket. */
void sk_io_close(struct sk_loop *loop, struct sk_io *io);

/* Arms t to fire once after delay_ms (re-arming moves it). Never fails:
 * timers are linked through their own fields, nothing is allocated. */
void sk_timer_start(struct sk_loop *loop, struct sk_timer *t, uint64_t delay_ms, sk_timer_cb cb);
/* Arms t for an absolute time on the loop clock. */
void sk_timer_start_at(struct sk_loop *loop, struct sk_timer *t, uint64_t due_ms, sk_timer_cb cb);
void sk_timer_stop(struct sk_loop *loop, struct sk_timer *t);
static inline int sk_timer_armed(const struct sk_timer *t) { return t->armed; }

/* The loop's cached monotonic time in ms, refreshed once per iteration. */
uint64_t sk_loop_now(const struct sk_loop *loop);
/* Monotonic clock in ms / ns (not cached). */
uint64_t sk_now_ms(void);
uint64_t sk_now_ns(void);

/* Runs until sk_loop_stop() or until nothing is registered.
 * Returns 0, or -errno if waiting failed. */
int sk_loop_run(struct sk_loop *loop);
/* Asks the loop to return from sk_loop_run(); thread- and signal-safe. */
void sk_loop_stop(struct sk_loop *loop);
/* Number of registered io handles and armed timers (for leak checks). */
size_t sk_loop_handles(const struct sk_loop *loop);

#ifdef __cplusplus
}
#endif

#endif
