/* epoll back-end of the event loop. */
#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"
#include "sockit/err.h"

static uint32_t to_epoll(unsigned mask)
{
    uint32_t ev = 0;
    if (mask & SK_READ)
        ev |= EPOLLIN | EPOLLRDHUP;
    if (mask & SK_WRITE)
        ev |= EPOLLOUT;
    return ev;
}

int sk__backend_init(struct sk_loop *loop)
{
    loop->backend_fd = epoll_create1(EPOLL_CLOEXEC);
    return loop->backend_fd < 0 ? SK_ERR(errno) : 0;
}

void sk__backend_free(struct sk_loop *loop)
{
    if (loop->backend_fd >= 0)
        close(loop->backend_fd);
    loop->backend_fd = -1;
}

int sk__backend_add(struct sk_loop *loop, struct sk_io *io, unsigned mask, int exclusive)
{
    struct epoll_event ev = {.events = to_epoll(mask), .data.ptr = io};
    if (exclusive)
        ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    return epoll_ctl(loop->backend_fd, EPOLL_CTL_ADD, io->fd, &ev) < 0 ? SK_ERR(errno) : 0;
}

int sk__backend_mod(struct sk_loop *loop, struct sk_io *io, unsigned mask)
{
    struct epoll_event ev = {.events = to_epoll(mask), .data.ptr = io};
    return epoll_ctl(loop->backend_fd, EPOLL_CTL_MOD, io->fd, &ev) < 0 ? SK_ERR(errno) : 0;
}

void sk__backend_del(struct sk_loop *loop, struct sk_io *io)
{
    /* Fails harmlessly when the fd was already closed (and so removed). */
    epoll_ctl(loop->backend_fd, EPOLL_CTL_DEL, io->fd, NULL);
}

int sk__backend_wait(struct sk_loop *loop, int timeout_ms)
{
    struct epoll_event evs[SK__MAX_EVENTS];
    int n = epoll_wait(loop->backend_fd, evs, SK__MAX_EVENTS, timeout_ms);
    if (n < 0) {
        loop->npending = 0;
        return errno == EINTR ? 0 : SK_ERR(errno);
    }
    for (int i = 0; i < n; i++) {
        unsigned e = 0;
        if (evs[i].events & (EPOLLIN | EPOLLRDHUP))
            e |= SK_READ;
        if (evs[i].events & EPOLLOUT)
            e |= SK_WRITE;
        if (evs[i].events & EPOLLHUP)
            e |= SK_HUP | SK_READ;
        if (evs[i].events & EPOLLERR)
            e |= SK_ERROR | SK_READ;
        loop->pending[i].io = evs[i].data.ptr;
        loop->pending[i].events = e;
    }
    loop->npending = n;
    return 0;
}
