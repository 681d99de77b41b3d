/* Inside the stream: the group's layout (embedded in the server's worker)
 * and what the server engine needs beyond the public API. */
#ifndef SOCKIT_STREAM_INT_H
#define SOCKIT_STREAM_INT_H

#include <stdatomic.h>

#include "sockit/stream.h"

struct sk_stream_group {
    struct sk_loop *loop;
    const struct sk_stream_cbs *cb;
    struct sk_stream_limits lim;
    struct sk_stream *s_head, *s_tail; /* open, least recently active first */
    struct sk_stream *l_head, *l_tail; /* lingering, deadline order */
    struct sk_stream *dead;            /* closed, not yet released (by next) */
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
    uint64_t bytes_in, bytes_out;
    void (*emptied)(struct sk_stream_group *g); /* stopping, last stream closed */
};

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
    return g->s_head || g->l_head;
}
#endif
