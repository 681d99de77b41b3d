/* Several transfers at once on one event loop, in the calling thread.
 *
 * Each transfer runs sk_fetch_run() unchanged, as a coroutine on a stack
 * of its own (ucontext): where the blocking call would run its private
 * loop (fetch_io.c's phases, the wait before a retry), sk__fetch_wait()
 * switches back to the run, which runs the one shared loop until some
 * event stops it and then resumes every transfer in turn; each looks at
 * what it waits for and either goes on or switches back. No threads: one
 * transfer's code runs at a time, between the loop's events. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "fetch_int.h"

#if defined(__SANITIZE_ADDRESS__)
#define SK__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SK__ASAN 1
#endif
#endif
#ifdef SK__ASAN
#include <dlfcn.h>
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);

/* The sanitizer's own swapcontext warns on standard error once per process
 * (a line in every parallel run's output) and unpoisons the whole stack it
 * switches to. The switches here tell it of each stack (the fiber calls)
 * and a stack is unpoisoned as a transfer starts on it (co_begin), so
 * libc's is called. */
static int co_swap(ucontext_t *from, const ucontext_t *to)
{
    static int (*real)(ucontext_t *, const ucontext_t *);
    if (!real) {
        void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
        void *sym = libc ? dlsym(libc, "swapcontext") : NULL;
        real = sym ? (int (*)(ucontext_t *, const ucontext_t *))sym : swapcontext;
    }
    return real(from, to);
}
#else
#define co_swap swapcontext
#endif

#define CO_STACK (1024 * 1024) /* getaddrinfo and OpenSSL need room; mapped lazily */
#define PAR_MAX 1024

struct sk__fetch_par;

struct sk__fetch_co {
    struct sk__fetch_par *par;
    ucontext_t ctx;
    char *stack; /* CO_STACK bytes above a guard page */
    struct sk_fetch *f;
    const char *url;
    int rc;
    bool busy, finished;
    struct sk_timer nap;
};

struct sk__fetch_par {
    struct sk_loop *loop;
    ucontext_t main;
    struct sk_fetch_cancel *cx;
    struct sk_io wake;
    int wake_fd;
    int loop_rc; /* the shared loop's last failure, given to each waiter */
    struct sk__outdir outdir; /* the output folder, one fd for every transfer */
    struct sk__fetch_dns *dns; /* the names the transfers resolved */
    struct sk__fetch_co *cos; /* the slots */
    struct sk__fetch_pool *pool; /* the HTTP/2 connections (fetch_pool.c) */
    unsigned n;
#ifdef SK__ASAN
    const void *main_bottom; /* the run's own stack, for the sanitizer's fiber switches */
    size_t main_size;
#endif
};

static _Thread_local struct sk__fetch_co *starting;

/* Switches from the stack of `from` (NULL: the run's) to that of `to`. */
static void co_switch(struct sk__fetch_par *p, struct sk__fetch_co *from, struct sk__fetch_co *to,
                      bool exiting)
{
#ifdef SK__ASAN
    void *fake = NULL;
    if (to)
        __sanitizer_start_switch_fiber(&fake, to->stack, CO_STACK);
    else
        __sanitizer_start_switch_fiber(exiting ? NULL : &fake, p->main_bottom, p->main_size);
#else
    (void)exiting;
#endif
    (void)co_swap(from ? &from->ctx : &p->main, to ? &to->ctx : &p->main);
#ifdef SK__ASAN
    if (from)
        __sanitizer_finish_switch_fiber(fake, NULL, NULL);
    else
        __sanitizer_finish_switch_fiber(fake, &p->main_bottom, &p->main_size);
#endif
}

static void co_main(void)
{
    struct sk__fetch_co *co = starting;
#ifdef SK__ASAN
    __sanitizer_finish_switch_fiber(NULL, &co->par->main_bottom, &co->par->main_size);
#endif
    co->rc = sk_fetch_run(co->f, co->url);
    co->finished = true;
    co_switch(co->par, co, NULL, true);
}

struct sk_fetch *sk__fetch_par_h2_owner(const struct sk_fetch *f, const char *key)
{
    return f->co ? sk__fetch_pool_find(f->co->par->pool, f, key) : NULL;
}

int sk__fetch_par_h2_add(struct sk_fetch *f)
{
    return f->co ? sk__fetch_pool_add(f->co->par->pool, f) : 0;
}

bool sk__fetch_par_h2_pending(const struct sk_fetch *f, const char *key)
{
    const struct sk__fetch_par *p = f->co ? f->co->par : NULL;
    for (unsigned i = 0; p && i < p->n; i++) {
        const struct sk__fetch_co *co = &p->cos[i];
        if (co->busy && !co->finished && co->f != f && sk__fetch_h2_pending(co->f, f, key))
            return true;
    }
    return false;
}

struct sk_loop *sk__fetch_par_loop(const struct sk_fetch *f)
{
    return f->co ? f->co->par->loop : NULL;
}

struct sk__outdir *sk__fetch_outdir(struct sk_fetch *f)
{
    return f->co ? &f->co->par->outdir : &f->outdir;
}

struct sk__fetch_dns **sk__fetch_dns_slot(struct sk_fetch *f)
{
    return f->co ? &f->co->par->dns : &f->dns;
}

int sk__fetch_wait(struct sk_fetch *f)
{
    if (!f->co)
        return sk_loop_run(f->w.loop);
    co_switch(f->co->par, f->co, NULL, false);
    return f->co->par->loop_rc;
}

static void on_nap(struct sk_loop *loop, struct sk_timer *t)
{
    (void)t;
    sk_loop_stop(loop);
}

bool sk__fetch_nap(struct sk_fetch *f, long ms)
{
    if (f->cx->flag)
        return false;
    if (f->co) {
        struct sk__fetch_co *co = f->co;
        struct sk_loop *loop = co->par->loop;
        sk_timer_start_at(loop, &co->nap, sk_loop_now(loop) + (uint64_t)ms, on_nap);
        while (sk_timer_armed(&co->nap) && !f->cx->flag)
            (void)sk__fetch_wait(f);
        sk_timer_stop(loop, &co->nap);
        return !f->cx->flag;
    }
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        if (f->cx->flag)
            return false;
    return !f->cx->flag;
}

/* The cancel's wake-up: every transfer looks at the flag when resumed. */
static void on_wake(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)io;
    (void)events;
    sk_loop_stop(loop);
}

/* Starts (or resumes) the transfer of co until it waits or ends. */
static void co_enter(struct sk__fetch_par *p, struct sk__fetch_co *co)
{
    co->f->co = co;
    co_switch(p, NULL, co, false);
}

static int co_begin(struct sk__fetch_par *p, struct sk__fetch_co *co)
{
    if (getcontext(&co->ctx) < 0)
        return SK_ERR(errno);
    co->ctx.uc_stack.ss_sp = co->stack;
    co->ctx.uc_stack.ss_size = CO_STACK;
    co->ctx.uc_link = NULL;
    makecontext(&co->ctx, co_main, 0);
#ifdef SK__ASAN
    __asan_unpoison_memory_region(co->stack, CO_STACK); /* what an earlier transfer left */
#endif
    co->busy = true;
    co->finished = false;
    starting = co;
    co_enter(p, co);
    return 0;
}

/* The transfer of co is over: it leaves the shared loop's group only
 * when another object takes the slot, or at the end of the run; an HTTP/2
 * connection that other streams use stays until they left. */
static void co_detach(struct sk__fetch_par *p, struct sk_fetch *f)
{
    if (!f)
        return;
    f->co = NULL;
    if (!sk__fetch_pool_detach(p->pool, f))
        sk__fetch_wire_end(f);
}

static int par_setup(struct sk__fetch_par *p, struct sk__fetch_co *cos, unsigned n)
{
    int err = 0;
    if (!(p->loop = sk_loop_new(&err)))
        return err;
    if (!(p->pool = sk__fetch_pool_new()))
        return -ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        cos[i].par = p;
        void *m = mmap(NULL, CO_STACK + 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
        if (m == MAP_FAILED)
            return SK_ERR(errno);
        cos[i].stack = (char *)m + 4096;
        if (mprotect(m, 4096, PROT_NONE) < 0) /* the guard page */
            return SK_ERR(errno);
    }
    if ((p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
        return SK_ERR(errno);
    if ((err = sk_io_start(p->loop, &p->wake, p->wake_fd, SK_READ, on_wake)) < 0)
        return err;
    if (p->cx) {
        p->cx->fd = p->wake_fd;
        if (p->cx->flag)
            sk_fetch_cancel_raise(p->cx, p->cx->flag);
    }
    return 0;
}

static void par_teardown(struct sk__fetch_par *p, struct sk__fetch_co *cos, unsigned n)
{
    if (p->cx)
        p->cx->fd = -1;
    sk__fetch_pool_sweep(p->pool, true); /* every transfer ended: no stream is left */
    for (unsigned i = 0; i < n; i++) {
        co_detach(p, cos[i].f);
        sk__fetch_pool_sweep(p->pool, true);
        if (cos[i].stack)
            (void)munmap(cos[i].stack - 4096, CO_STACK + 4096);
    }
    sk__fetch_dns_free(p->dns); /* lookups under way: their threads finish alone */
    if (p->wake.active)
        sk_io_stop(p->loop, &p->wake);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    sk__fetch_pool_free(p->pool);
    if (p->loop)
        (void)sk_loop_free(p->loop);
    sk__outdir_close(&p->outdir);
}

/* Fills the free slots; false when none is busy any more. */
static int fill(struct sk__fetch_par *p, struct sk__fetch_co *cos, unsigned n, bool *more,
                sk_fetch_next_fn next, sk_fetch_done_fn done, void *arg)
{
    bool again = true;
    while (again) {
        again = false;
        for (unsigned i = 0; i < n; i++) {
            struct sk__fetch_co *co = &cos[i];
            if (co->busy && co->finished) {
                co->busy = false;
                co->f->co = NULL;
                done(arg, i, co->f, co->rc);
            }
            if (co->busy || !*more || (p->cx && p->cx->flag))
                continue;
            struct sk_fetch *f = NULL;
            const char *url = NULL;
            int r = next(arg, i, &f, &url);
            if (r <= 0 || !f || !url) {
                *more = false;
                if (r < 0)
                    return r;
                continue;
            }
            if (co->f != f)
                co_detach(p, co->f);
            co->f = f;
            co->url = url;
            int rc = co_begin(p, co);
            if (rc < 0)
                return rc;
            again = again || co->finished;
        }
    }
    return 0;
}

int sk_fetch_run_parallel(unsigned n, struct sk_fetch_cancel *cancel, sk_fetch_next_fn next,
                          sk_fetch_done_fn done, void *arg)
{
    if (n == 0 || n > PAR_MAX || !next || !done)
        return SK_EUSAGE;
    struct sk__fetch_co *cos = calloc(n, sizeof *cos);
    if (!cos)
        return -ENOMEM;
    struct sk__fetch_par p = {.cx = cancel, .wake_fd = -1, .cos = cos, .n = n};
    sk__outdir_init(&p.outdir);
    bool more = true;
    int rc = par_setup(&p, cos, n);
    while (rc == 0) {
        if ((rc = fill(&p, cos, n, &more, next, done, arg)) < 0)
            break;
        bool busy = false;
        for (unsigned i = 0; i < n; i++)
            busy = busy || cos[i].busy;
        if (!busy)
            break;
        p.loop_rc = sk_loop_run(p.loop);
        for (unsigned i = 0; i < n; i++)
            if (cos[i].busy && !cos[i].finished)
                co_enter(&p, &cos[i]);
        sk__fetch_pool_sweep(p.pool, false);
    }
    /* A failure of the run itself: the transfers under way are cancelled. */
    for (unsigned i = 0; rc < 0 && i < n; i++) {
        struct sk_fetch_cancel stop = {.flag = SIGTERM, .fd = -1};
        struct sk__fetch_co *co = &cos[i];
        if (!co->busy)
            continue;
        struct sk_fetch_cancel *was = co->f->cx;
        co->f->cx = &stop;
        while (!co->finished)
            co_enter(&p, co);
        co->f->cx = was;
        co->busy = false;
        co->f->co = NULL;
        done(arg, i, co->f, co->rc);
    }
    par_teardown(&p, cos, n);
    free(cos);
    return rc;
}
