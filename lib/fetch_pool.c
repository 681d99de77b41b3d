/* A parallel run's HTTP/2 connections (docs/fetch.md, "HTTP/2",
 * "Multiplexing"): every connection of the run whose TLS handshake picked
 * h2, or that speaks h2c (prior knowledge), is in its pool, keyed by
 * route, from its handshake (or connect) to its close. A connection is
 * the stream of the transfer object that made it (its holder: the stream
 * cannot move), but it is the run's: a transfer of the
 * run to the same route, at its start or on a redirect, opens its stream
 * on it whatever the holder does meanwhile (connecting, in its exchange,
 * finished, on its next URL to the same route), as long as it is usable
 * (open, no GOAWAY, room under SETTINGS_MAX_CONCURRENT_STREAMS). The
 * holder's exchange ends without waiting for the other streams
 * (sk__fetch_h2_park); the connection's reads are its stream's callbacks
 * on the run's loop, which feed every stream on it, whichever transfer
 * waits. It closes when its holder needs its stream for another route,
 * when the holder leaves its slot and the last stream ended (a detached
 * holder, swept here), once a GOAWAY or its end left it of no use and
 * no stream is on it (swept too), or at the run's end. */
#include <stdlib.h>

#include "fetch_int.h"

struct sk__fetch_pool {
    struct sk__fetch_pool_entry {
        struct sk_fetch *f; /* the holder */
        bool detached;      /* left its slot: closed once no other stream is on it */
    } *e;
    unsigned n, cap;
};

struct sk__fetch_pool *sk__fetch_pool_new(void)
{
    return calloc(1, sizeof(struct sk__fetch_pool));
}

static int find(const struct sk__fetch_pool *p, const struct sk_fetch *f)
{
    for (unsigned i = 0; p && i < p->n; i++)
        if (p->e[i].f == f)
            return (int)i;
    return -1;
}

int sk__fetch_pool_add(struct sk__fetch_pool *p, struct sk_fetch *f)
{
    if (find(p, f) >= 0)
        return 0;
    if (p->n == p->cap) {
        unsigned cap = p->cap ? 2 * p->cap : 8;
        struct sk__fetch_pool_entry *e = realloc(p->e, cap * sizeof *e);
        if (!e)
            return SK_ERR(ENOMEM);
        p->e = e;
        p->cap = cap;
    }
    p->e[p->n++] = (struct sk__fetch_pool_entry){.f = f};
    f->w.pool = p;
    return 0;
}

void sk__fetch_pool_drop(struct sk_fetch *f)
{
    struct sk__fetch_pool *p = f->w.pool;
    int i = find(p, f);
    f->w.pool = NULL;
    if (i >= 0)
        p->e[i] = p->e[--p->n];
}

struct sk_fetch *sk__fetch_pool_find(const struct sk__fetch_pool *p, const struct sk_fetch *f,
                                     const char *key)
{
    for (unsigned i = 0; p && i < p->n; i++)
        if (p->e[i].f != f && sk__fetch_h2_shareable(p->e[i].f, f, key))
            return p->e[i].f;
    return NULL;
}

bool sk__fetch_pool_detach(struct sk__fetch_pool *p, struct sk_fetch *f)
{
    int i = find(p, f);
    struct sk_fetch *u[2];
    if (i < 0 || sk__fetch_h2_users(f, u, 2) < 2)
        return false;
    sk__fetch_h2_closing(f); /* no one joins it any more */
    p->e[i].detached = true;
    return true;
}

void sk__fetch_pool_sweep(struct sk__fetch_pool *p, bool all)
{
    for (unsigned i = p ? p->n : 0; i-- > 0;) {
        struct sk_fetch *f = p->e[i].f, *u[2];
        if (f->co) /* given to a slot again: its own once more */
            p->e[i].detached = false;
        bool alone = sk__fetch_h2_users(f, u, 2) < 2;
        if (p->e[i].detached && (all || alone))
            sk__fetch_wire_end(f); /* drops it from the pool (sk__fetch_h2_free) */
        else if (alone && !f->co && f->w.idle &&
                 !(sk__fetch_h2_alive(f) && sk__fetch_h2_keep(f)))
            /* GOAWAY or dead: of no more use; its object between transfers
             * (one under way may be closing it itself) */
            sk__fetch_close(f, sk__fetch_h2_alive(f));
    }
}

void sk__fetch_pool_free(struct sk__fetch_pool *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->n; i++)
        p->e[i].f->w.pool = NULL;
    free(p->e);
    free(p);
}
