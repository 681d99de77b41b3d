/* The run's names (lib/fetch_resolve.c): each host and port looked up once,
 * at most 64 kept, failures asked again, lookups of names on a thread whose
 * result comes through the loop, and a run that ends before its thread. */
#include <criterion/criterion.h>
#include <netdb.h>
#include <stdio.h>

#include "fetch_int.h"

static int result_of(struct sk__fetch_dns_entry *e, const struct addrinfo **ai)
{
    int rc = 1;
    cr_assert(sk__fetch_dns_result(e, &rc, ai));
    return rc;
}

Test(fetch_dns, same_host_and_port_looked_up_once)
{
    struct sk__fetch_dns *d = sk__fetch_dns_new(NULL);
    cr_assert_not_null(d);
    const struct addrinfo *a = NULL, *b = NULL;
    struct sk__fetch_dns_entry *e = sk__fetch_dns_get(d, "127.0.0.1", 80);
    cr_assert_not_null(e);
    cr_assert_eq(result_of(e, &a), 0);
    cr_assert_not_null(a);
    cr_assert_eq(sk__fetch_dns_get(d, "127.0.0.1", 80), e);
    cr_assert_eq(result_of(e, &b), 0);
    cr_assert_eq(a, b, "the same addresses");
    cr_assert_eq(sk__fetch_dns_lookups(d), 1);
    struct sk__fetch_dns_entry *other = sk__fetch_dns_get(d, "127.0.0.1", 81);
    cr_assert_neq(other, e, "another port: another entry");
    cr_assert_eq(sk__fetch_dns_lookups(d), 2);
    sk__fetch_dns_free(d);
}

Test(fetch_dns, bounded_least_recently_used_goes)
{
    struct sk__fetch_dns *d = sk__fetch_dns_new(NULL);
    char host[32];
    for (int i = 1; i <= 70; i++) {
        snprintf(host, sizeof host, "127.0.0.%d", i);
        cr_assert_not_null(sk__fetch_dns_get(d, host, 80));
        (void)sk__fetch_dns_get(d, "127.0.0.1", 80); /* kept fresh */
    }
    cr_assert_eq(sk__fetch_dns_lookups(d), 70);
    (void)sk__fetch_dns_get(d, "127.0.0.1", 80);
    cr_assert_eq(sk__fetch_dns_lookups(d), 70, "the one used most recently stayed");
    (void)sk__fetch_dns_get(d, "127.0.0.2", 80);
    cr_assert_eq(sk__fetch_dns_lookups(d), 71, "the oldest went");
    sk__fetch_dns_free(d);
}

Test(fetch_dns, failure_is_asked_again)
{
    struct sk__fetch_dns *d = sk__fetch_dns_new(NULL);
    const struct addrinfo *ai = NULL;
    struct sk__fetch_dns_entry *e = sk__fetch_dns_get(d, "nonexistent.invalid", 80);
    cr_assert_eq(result_of(e, &ai), SK_ERESOLVE);
    cr_assert_null(ai);
    e = sk__fetch_dns_get(d, "nonexistent.invalid", 80);
    cr_assert_eq(result_of(e, &ai), SK_ERESOLVE);
    cr_assert_eq(sk__fetch_dns_lookups(d), 2);
    sk__fetch_dns_free(d);
}

static void on_stop(struct sk_loop *loop, struct sk_timer *t)
{
    (void)t;
    sk_loop_stop(loop);
}

Test(fetch_dns, a_name_on_a_thread_its_result_through_the_loop)
{
    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    cr_assert_not_null(loop);
    struct sk__fetch_dns *d = sk__fetch_dns_new(loop);
    const struct addrinfo *ai = NULL;
    int rc = 1;
    struct sk__fetch_dns_entry *e = sk__fetch_dns_get(d, "localhost", 80);
    cr_assert_not(sk__fetch_dns_result(e, &rc, &ai), "not before the loop ran");
    cr_assert_eq(sk__fetch_dns_get(d, "localhost", 80), e, "one lookup for both askers");
    struct sk_timer t = {0};
    sk_timer_start_at(loop, &t, sk_loop_now(loop) + 10000, on_stop);
    while (!sk__fetch_dns_result(e, &rc, &ai) && sk_timer_armed(&t))
        cr_assert_geq(sk_loop_run(loop), 0);
    sk_timer_stop(loop, &t);
    cr_assert_eq(rc, 0);
    cr_assert_not_null(ai);
    cr_assert_eq(sk__fetch_dns_lookups(d), 1);
    /* an address literal: no thread, the result at once */
    e = sk__fetch_dns_get(d, "::1", 80);
    cr_assert_eq(result_of(e, &ai), 0);
    sk__fetch_dns_free(d);
    cr_assert_eq(sk_loop_free(loop), 0);
}

Test(fetch_dns, run_gone_before_its_lookup)
{
    int err = 0;
    struct sk_loop *loop = sk_loop_new(&err);
    struct sk__fetch_dns *d = sk__fetch_dns_new(loop);
    for (int port = 1; port <= 8; port++)
        cr_assert_not_null(sk__fetch_dns_get(d, "localhost", (unsigned)port));
    sk__fetch_dns_free(d); /* the threads free their own part */
    cr_assert_eq(sk_loop_free(loop), 0);
}
