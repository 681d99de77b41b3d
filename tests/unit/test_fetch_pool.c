/* lib/fetch_pool.c, a parallel run's HTTP/2 connections: holders in and
 * out of the pool, which one a transfer may join, a holder leaving its
 * slot while another stream is on its connection (kept, closing, swept
 * once it left), a connection of no more use swept. The sessions are
 * nghttp2's without a socket (as fuzz/fuzz_h2.c runs them). */
#include <criterion/criterion.h>

#include "fetch_int.h"

static struct sk_fetch *new_fetch(void)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    struct sk_fetch *f = NULL;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    return f;
}

/* f holds an h2 session for route "k", idle between its exchanges. */
static void hold(struct sk__fetch_pool *p, struct sk_fetch *f)
{
    cr_assert_eq(sk__fetch_h2_begin(f), 0);
    cr_assert_eq(sk__fetch_pool_add(p, f), 0);
    snprintf(f->w.key, sizeof f->w.key, "k");
}

Test(fetch_pool, holders_in_and_out)
{
    struct sk__fetch_pool *p = sk__fetch_pool_new();
    cr_assert_not_null(p);
    struct sk_fetch *f[20];
    for (int i = 0; i < 20; i++) { /* past its first capacity */
        f[i] = new_fetch();
        cr_assert_eq(sk__fetch_pool_add(p, f[i]), 0);
        cr_assert_eq(sk__fetch_pool_add(p, f[i]), 0); /* once only */
        cr_assert_eq(f[i]->w.pool, p);
    }
    /* none has a live connection: nothing to join */
    cr_assert_null(sk__fetch_pool_find(p, f[0], "k"));
    for (int i = 0; i < 20; i += 2)
        sk__fetch_pool_drop(f[i]);
    cr_assert_null(f[0]->w.pool);
    sk__fetch_pool_drop(f[0]); /* out already: nothing */
    cr_assert_eq(f[1]->w.pool, p);
    sk__fetch_pool_free(p); /* the holders left in it forget it */
    for (int i = 0; i < 20; i++) {
        cr_assert_null(f[i]->w.pool);
        sk_fetch_free(f[i]);
    }
}

Test(fetch_pool, a_detached_holder_stays_until_the_other_stream_left)
{
    struct sk__fetch_pool *p = sk__fetch_pool_new();
    struct sk_fetch *a = new_fetch(), *b = new_fetch(), *u[4];
    hold(p, a);
    cr_assert(!sk__fetch_pool_detach(p, b)); /* not a holder: closed by the caller */
    cr_assert(!sk__fetch_pool_detach(p, a)); /* alone on it: closed by the caller */
    cr_assert(sk__fetch_h2_can_join(a));
    sk__fetch_h2_join(b, a);
    cr_assert_eq(sk__fetch_h2_users(a, u, 4), 2);
    cr_assert(sk__fetch_pool_detach(p, a)); /* b's stream on it: kept */
    cr_assert(!sk__fetch_h2_can_join(a), "a closing connection takes no one");
    cr_assert(!sk__fetch_h2_alive(a));
    sk__fetch_pool_sweep(p, false);
    cr_assert_not_null(a->w.h2, "kept while b is on it");
    sk__fetch_h2_free(b); /* b leaves */
    cr_assert_null(b->w.h2);
    sk__fetch_pool_sweep(p, false);
    cr_assert_null(a->w.h2, "closed once alone");
    cr_assert_null(a->w.pool);
    sk__fetch_pool_free(p);
    sk_fetch_free(a);
    sk_fetch_free(b);
}

Test(fetch_pool, an_idle_connection_of_no_more_use_is_swept)
{
    struct sk__fetch_pool *p = sk__fetch_pool_new();
    struct sk_fetch *a = new_fetch(), *c = new_fetch();
    hold(p, a);
    hold(p, c);
    a->w.idle = c->w.idle = true;
    sk__fetch_h2_dead(a, SK_ERR(ECONNRESET)); /* a's connection ended */
    sk__fetch_pool_sweep(p, false);
    cr_assert_null(a->w.h2);
    cr_assert_null(a->w.pool);
    cr_assert(!a->w.idle);
    /* c's session can serve on (nghttp2 wants to read): it stays */
    cr_assert_not_null(c->w.h2);
    cr_assert_eq(c->w.pool, p);
    sk__fetch_pool_sweep(p, true); /* the run's end: only detached ones go */
    cr_assert_not_null(c->w.h2);
    sk__fetch_pool_free(p);
    sk_fetch_free(a);
    sk_fetch_free(c); /* its session goes with it */
}
