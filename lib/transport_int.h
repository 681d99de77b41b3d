/* Inside the transport: the ops table that plain TCP and TLS implement. */
#ifndef SOCKIT_TRANSPORT_INT_H
#define SOCKIT_TRANSPORT_INT_H

#include "sockit/transport.h"

/* Each op makes one attempt and never blocks. read/write return a count
 * (> 0), 0 (read: clean end of stream), SK_EAGAIN_MORE with c->want set to
 * POLLIN or POLLOUT, or a negative code with c->err filled in. */
struct sk__conn_ops {
    int (*read)(struct sk_conn *c, void *buf, size_t len);
    int (*write)(struct sk_conn *c, const void *buf, size_t len);
    int (*handshake)(struct sk_conn *c); /* NULL: nothing to do */
    void (*shutdown)(struct sk_conn *c); /* clean close: close_notify */
    void (*free)(struct sk_conn *c);     /* the transport's own state */
    bool fill; /* reads return little (one TLS record): keep reading while data is ready */
};

struct sk_conn {
    const struct sk__conn_ops *ops;
    int fd;
    short want;       /* poll events an op is waiting for */
    bool broken;      /* a fatal error happened: no clean shutdown */
    int pending;      /* a result (0 = EOF, or an error) held back behind data */
    bool has_pending;
    void *tls;        /* SSL * for TLS */
    const volatile sig_atomic_t *cancel;
    char err[400];
};

int sk__conn_alloc(int fd, const struct sk__conn_ops *ops, struct sk_conn **out);

#endif
