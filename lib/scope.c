/* Release helpers behind SK_AUTO and the sk_with context manager. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "sockit/scope.h"

void sk_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno; /* a cleanup must not clobber the error being reported */
        close(*fd);
        errno = saved;
        *fd = -1;
    }
}

void sk_freep(void *pp)
{
    void **p = (void **)pp;
    free(*p);
    *p = NULL;
}

struct sk_with sk_with_enter(const struct sk_with_ops *ops, void *self)
{
    struct sk_with w = {.ops = ops, .self = self};
    w.value = ops->enter ? ops->enter(self) : self;
    return w;
}

int sk_with_exit(struct sk_with *w)
{
    if (w->exited)
        return w->err;
    w->exited = true;
    if (w->ops->exit)
        w->err = w->ops->exit(w->self, w->err);
    return w->err;
}

void sk_with_release(struct sk_with *w)
{
    if (!w->exited && w->err == 0)
        w->err = SK_WITH_UNFINISHED; /* no verdict: the scope did not succeed */
    (void)sk_with_exit(w);
}
