/* Scoped release: the C form of Python's `with`.
 *
 * Two tools, both used across libsockit:
 *
 * 1. SK_AUTO(fn) declares a variable whose release function `fn(&var)` runs
 *    on every path out of its scope: fall-through, return, goto. Release
 *    functions accept the "empty" value (-1, NULL) and do nothing with it, so
 *    ownership can be handed on with SK_TAKE_FD / SK_TAKE_PTR, which return
 *    the value and leave the variable empty.
 *
 *        SK_AUTO_CLOSE int fd = socket(...);
 *        if (fd < 0) return SK_ERR(errno);
 *        if (bind(fd, ...) < 0) return SK_ERR(errno);   // fd closed here
 *        return SK_TAKE_FD(fd);                          // caller owns fd
 *
 * 2. struct sk_with, a context manager with __enter__/__exit__: the exit
 *    function learns how the scope ended (0, or the error code stored in
 *    `err`) and decides whether the error propagates (returns it) or is
 *    suppressed (returns 0). sk_with_exit() is the body's verdict: it exits
 *    with `err` and returns what exit decided. Failure is the default: a
 *    scope left any other way (a plain return, a goto, falling off the end)
 *    exits automatically with `err`, or SK_WITH_UNFINISHED when `err` is
 *    0, so an output file, say, is discarded unless the body committed it
 *    explicitly (systemd's cleanup + TAKE pattern). */
#ifndef SOCKIT_SCOPE_H
#define SOCKIT_SCOPE_H

#include <errno.h>
#include <stdbool.h>

#include "sockit/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SK_AUTO(fn) __attribute__((cleanup(fn)))

/* Closes *fd if it is >= 0; errno is preserved. */
void sk_closep(int *fd);
/* free(*(void **)pp); accepts a pointer to NULL. */
void sk_freep(void *pp);

#define SK_AUTO_CLOSE SK_AUTO(sk_closep)
#define SK_AUTO_FREE SK_AUTO(sk_freep)

static inline int sk_take_fd(int *fd)
{
    int v = *fd;
    *fd = -1;
    return v;
}

static inline void *sk_take_ptr(void *pp)
{
    void **p = (void **)pp;
    void *v = *p;
    *p = 0;
    return v;
}

#define SK_TAKE_FD(fd) sk_take_fd(&(fd))
#define SK_TAKE_PTR(p) sk_take_ptr(&(p))

/* A context manager. `enter` returns the value bound by `as` (may be NULL);
 * `exit` gets the scope's outcome (0 or a negative code) and returns the
 * code that propagates: 0 suppresses the error. */
struct sk_with_ops {
    void *(*enter)(void *self);
    int (*exit)(void *self, int err);
};

struct sk_with {
    const struct sk_with_ops *ops;
    void *self;
    void *value; /* what enter() returned: the `as VAR` of Python */
    int err;     /* set by the body before leaving on an error path */
    bool exited;
};

/* The error an automatic exit reports when the body set none: the scope
 * ended without sk_with_exit(), so it did not succeed. */
#define SK_WITH_UNFINISHED SK_ERR(ECANCELED)

/* Calls ops->enter(self) and returns the live context. */
struct sk_with sk_with_enter(const struct sk_with_ops *ops, void *self);
/* Runs ops->exit(self, w->err) once; returns its verdict. Idempotent:
 * a second call returns w->err unchanged without calling exit again. */
int sk_with_exit(struct sk_with *w);
/* Cleanup handler behind SK_WITH: exits with w->err, SK_WITH_UNFINISHED
 * if that is 0, unless sk_with_exit() has run. */
void sk_with_release(struct sk_with *w);

/* SK_WITH(w, ops, self): `with ops(self) as w.value:` for the rest of the
 * enclosing block. */
#define SK_WITH(w, ops, self) \
    SK_AUTO(sk_with_release) struct sk_with w = sk_with_enter((ops), (self))

#ifdef __cplusplus
}
#endif

#endif
