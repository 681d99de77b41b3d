/* Inside the stream: the group's layout (embedded in the server's worker)
 * and what the server engine needs beyond the public API. */
#ifndef SOCKIT_STREAM_INT_H
#define SOCKIT_STREAM_INT_H

#include <stdatomic.h>

#include "counter_int.h"
#include "sockit/stream.h"

struct sk_stream_group {
    struct sk_loop *loop;
    const struct sk_stream_cbs *cb;
    struct sk_stream_limits lim;
    struct sk_stream *s_head, *s_tail; /* open, least recently active first */
    struct sk_stream *l_head, *l_tail; /* lingering, deadline order */
    struct sk_stream *dead;            /* closed, not yet released (by next) */
    struct sk_stream *c_head, *c_tail; /* connecting, deadline order */
    struct sk_stream *h_head, *h_tail; /* in the TLS handshake, deadline order */
    struct sk_timer setup_timer;       /* the connect and handshake deadlines */
    size_t n;                          /* streams on both lists */
    struct sk_timer idle_timer;
    struct sk_timer linger_timer;
    struct sk_timer mem_timer;         /* output-limit and memory-budget checks */
    size_t mem;                        /* memory this group's streams hold */
    long long mem_unpub;               /* change of mem not yet in *total */
    atomic_size_t *total;              /* the shared account (&own_total: none) */
    atomic_size_t own_total;
    unsigned nshare;                   /* groups sharing *total */
    uint64_t stall_scan_ms;            /* next output-limit scan */
    char *rbuf;                        /* read scratch, lim.read_size bytes */
    bool stopping;                     /* draining: no reading, no idle checks */
    struct sk__byte_count *bytes;      /* where reads and writes are counted */
    struct sk__byte_count own_bytes;   /* ...unless the owner points it elsewhere */
    void (*emptied)(struct sk_stream_group *g); /* stopping, last stream closed */
};

/* Bytes read or sent on s (TLS: the plaintext), counted in its group
 * (a connection's own count is the kernel's: sk__tcp_bytes). */
static inline void sk__stream_count_in(struct sk_stream *s, size_t n)
{
    sk__count(&s->g->bytes->in, (uint64_t)n);
}
static inline void sk__stream_count_out(struct sk_stream *s, size_t n)
{
    sk__count(&s->g->bytes->out, (uint64_t)n);
}

/* A stream's set-up phase (s->setup): on a deadline list, not on the idle
 * one; its deadline in last_active_ms. */
enum { SK__SETUP_NONE, SK__SETUP_CONNECT, SK__SETUP_HANDSHAKE };

struct ssl_st;
struct sk__he_run;

/* What a TLS stream, a Happy Eyeballs connect or a failure needs beyond
 * the plain stream (allocated only for those; freed before release). */
struct sk__stream_ext {
    struct ssl_st *ssl;      /* TLS: the session; NULL: plain */
    struct sk__he_run *he;   /* the attempts of sk_stream_connect_list */
    char *err;               /* sk_stream_error's text; NULL: none */
    long verify;             /* the certificate's rejection (X509_V_OK: none) */
    bool handshaking;        /* the TLS handshake has not ended */
    bool hs_want_write;      /* ...and it waits for writability */
    bool rd_want_write;      /* an SSL_read waits for writability */
    bool wr_want_read;       /* an SSL_write waits for readability */
    bool notify_pending;     /* our close_notify waits for writability */
    bool notify_sent;
    bool close_notify;       /* the peer's close_notify was read */
    bool broken;             /* a fatal TLS error: no close_notify */
    struct sk_buf *pre;      /* the peer's TLS bytes read before TLS began (after a
                                PROXY header), handed to OpenSSL first; NULL: none */
    int rd_held;             /* a read's end or error behind data the owner paused
                                on (SK__TLS_HELD_EOF: close_notify); 0: none */
};
#define SK__TLS_HELD_EOF 1

/* The stream's extension, allocated on first use; NULL when out of memory. */
struct sk__stream_ext *sk__stream_ext(struct sk_stream *s);
/* Records text as what failed (best effort: nothing when out of memory). */
void sk__stream_set_error(struct sk_stream *s, const char *text);
/* Set-up ended with err: the connected callback, then the close. */
void sk__stream_setup_fail(struct sk_stream *s, int err, enum sk_close_reason why);
void sk__stream_setup_enter(struct sk_stream *s, int phase);
void sk__stream_setup_leave(struct sk_stream *s);
/* The TCP connect succeeded on s->io: the handshake starts, or the stream
 * is ready (the connected callback). */
void sk__stream_connect_ok(struct sk_stream *s);
/* What follows output progress: the owner's flushed callback, or the
 * linger's next step. */
void sk__stream_settle(struct sk_stream *s);
void sk__stream_io_cb(struct sk_loop *loop, struct sk_io *io, unsigned events);
/* Puts a zeroed s on g's idle list (sk_stream_open without the fd). */
void sk__stream_attach(struct sk_stream_group *g, struct sk_stream *s);
/* stream_connect.c: the attempts' release (at close). */
void sk__stream_he_free(struct sk_stream *s);
/* stream_tls.c */
void sk__tls_stream_begin(struct sk_stream *s);
int sk__tls_stream_write(struct sk_stream *s, const char *p, size_t n);
void sk__tls_stream_flush(struct sk_stream *s);
unsigned sk__tls_stream_mask(struct sk_stream *s, bool want_read);
/* Lingering with the output out: our close_notify. False while it waits. */
bool sk__tls_stream_notify(struct sk_stream *s);
void sk__tls_stream_free(struct sk_stream *s);
/* sk_stream_start_tls (server role) on a stream that has already read
 * pre[0..n) of the peer's TLS bytes (copied; after a PROXY header in clear). */
int sk__stream_start_tls_after(struct sk_stream *s, struct sk_tls_ctx *ctx, const void *pre,
                               size_t n);

/* Fills in the defaults, allocates the scratch. total: a memory account
 * shared by nshare groups (NULL: the group's own). Returns 0 or -ENOMEM. */
int sk__stream_group_init(struct sk_stream_group *g, struct sk_loop *loop,
                          const struct sk_stream_cbs *cb, const struct sk_stream_limits *lim,
                          atomic_size_t *total, unsigned nshare);
/* Brings the group's memory total up to date with what s holds now. */
void sk__stream_account(struct sk_stream *s);
/* Closes every stream with why, stops the timers, frees the scratch. */
void sk__stream_group_fini(struct sk_stream_group *g, enum sk_close_reason why);
/* Releases the streams closed since the last call (every entry point of
 * the group's owner calls it on return). */
void sk__stream_group_reap(struct sk_stream_group *g);
/* Draining: reading stops, finished streams close (their flushed callback
 * decides), idle checks end. */
void sk__stream_group_drain(struct sk_stream_group *g);
void sk__stream_group_close_all(struct sk_stream_group *g, enum sk_close_reason why);
static inline bool sk__stream_group_busy(const struct sk_stream_group *g)
{
    return g->s_head || g->l_head || g->c_head || g->h_head;
}
/* A reset socket still holds what arrived before the reset: an owner that
 * reads gets it first (a client's response ends that way), and the error
 * with the read that comes after it. */
static inline bool sk__stream_reads_first(const struct sk_stream *s, unsigned events)
{
    return (events & SK_READ) && s->reading && !s->read_closed && !s->lingering;
}
#endif
