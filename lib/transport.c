/* The transport: deadline-bounded reads and writes over a non-blocking
 * socket, shared by plain TCP (here) and TLS (tls_openssl.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alloc_int.h"
#include "sockit/err.h"
#include "sockit/loop.h"
#include "sockit/scope.h"
#include "transport_int.h"

static int plain_read(struct sk_conn *c, void *buf, size_t len)
{
    ssize_t n;
    while ((n = recv(c->fd, buf, len, 0)) < 0 && errno == EINTR)
        ;
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->want = POLLIN;
        return SK_EAGAIN_MORE;
    }
    return SK_ERR(errno);
}

static int plain_write(struct sk_conn *c, const void *buf, size_t len)
{
    ssize_t n;
    while ((n = send(c->fd, buf, len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        c->want = POLLOUT;
        return SK_EAGAIN_MORE;
    }
    return SK_ERR(errno);
}

static const struct sk__conn_ops plain_ops = {
    .read = plain_read,
    .write = plain_write,
};

int sk__conn_alloc(int fd, const struct sk__conn_ops *ops, struct sk_conn **out)
{
    SK_AUTO_CLOSE int owned = fd; /* ours from here on, whatever happens */
    *out = NULL;
    int fl = fcntl(owned, F_GETFL);
    if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(owned, F_SETFL, fl | O_NONBLOCK) < 0))
        return SK_ERR(errno);
    struct sk_conn *c = sk__calloc(1, sizeof *c);
    if (!c)
        return SK_ERR(ENOMEM);
    c->ops = ops;
    c->fd = SK_TAKE_FD(owned);
    *out = c;
    return 0;
}

int sk_conn_new_plain(int fd, struct sk_conn **out)
{
    return sk__conn_alloc(fd, &plain_ops, out);
}

void sk_conn_set_cancel(struct sk_conn *c, const volatile sig_atomic_t *cancel)
{
    c->cancel = cancel;
}

const char *sk_conn_error(const struct sk_conn *c)
{
    return c ? c->err : "";
}

/* A signal that set the cancel flag while data keeps flowing never makes
 * poll() fail with EINTR: the flag is looked at before every attempt. */
static bool cancelled(const struct sk_conn *c)
{
    return c->cancel && *c->cancel;
}

/* Waits until c->fd is ready for c->want, or the deadline. */
static int conn_wait(struct sk_conn *c, uint64_t deadline_ms)
{
    for (;;) {
        int timeout = -1;
        if (deadline_ms) {
            uint64_t now = sk_now_ms();
            if (now >= deadline_ms)
                return SK_ETIMEDOUT;
            uint64_t left = deadline_ms - now;
            timeout = left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd p = {.fd = c->fd, .events = c->want};
        int n = poll(&p, 1, timeout);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return SK_ERR(errno);
        if (n < 0 && cancelled(c))
            return SK_ERR(ECANCELED);
    }
}

int sk_conn_handshake(struct sk_conn *c, uint64_t deadline_ms)
{
    if (!c->ops->handshake)
        return 0;
    for (;;) {
        if (cancelled(c))
            return SK_ERR(ECANCELED);
        int rc = c->ops->handshake(c);
        if (rc != SK_EAGAIN_MORE)
            return rc;
        if ((rc = conn_wait(c, deadline_ms)) < 0)
            return rc;
    }
}

int sk_conn_read(struct sk_conn *c, void *buf, size_t len, uint64_t deadline_ms)
{
    if (c->has_pending) {
        c->has_pending = false;
        return c->pending;
    }
    if (len > INT_MAX)
        len = INT_MAX;
    size_t got = 0;
    for (;;) {
        if (got == 0 && cancelled(c))
            return SK_ERR(ECANCELED);
        int rc = c->ops->read(c, (char *)buf + got, len - got);
        if (rc > 0) {
            got += (size_t)rc;
            if (!c->ops->fill || got == len)
                return (int)got;
            continue;
        }
        if (got > 0) { /* deliver the data first; the rest waits for the next call */
            if (rc != SK_EAGAIN_MORE) {
                c->pending = rc;
                c->has_pending = true;
            }
            return (int)got;
        }
        if (rc != SK_EAGAIN_MORE)
            return rc;
        if ((rc = conn_wait(c, deadline_ms)) < 0)
            return rc;
    }
}

int sk_conn_write(struct sk_conn *c, const void *buf, size_t len, uint64_t deadline_ms)
{
    const char *p = buf;
    while (len > 0) {
        if (cancelled(c))
            return SK_ERR(ECANCELED);
        int rc = c->ops->write(c, p, len > INT_MAX ? INT_MAX : len);
        if (rc > 0) {
            p += rc;
            len -= (size_t)rc;
            continue;
        }
        if (rc == 0)
            rc = SK_ECLOSED;
        if (rc != SK_EAGAIN_MORE)
            return rc;
        if ((rc = conn_wait(c, deadline_ms)) < 0)
            return rc;
    }
    return 0;
}

void sk_conn_free(struct sk_conn *c, bool clean)
{
    if (!c)
        return;
    if (clean && !c->broken && c->ops->shutdown)
        c->ops->shutdown(c);
    if (c->ops->free)
        c->ops->free(c);
    sk_closep(&c->fd);
    free(c);
}

void sk_conn_freep(struct sk_conn **c)
{
    sk_conn_free(*c, false);
    *c = NULL;
}
