/* Unit tests: fetch's HTTP/2 adapter without a connection (what it would
 * send is dropped): the request's translation refuses what HTTP/2 cannot
 * carry; the response side is tested against nginx and a hostile server
 * (tests/integration/test_fetch_h2.py) and fuzzed (fuzz/fuzz_h2.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "fetch_int.h"
#include "sockit.h"

static struct sk_fetch *new_fetch(struct sk_url *u)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    struct sk_fetch *f = NULL;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    cr_assert_eq(sk_url_parse("https://example.org/x", 21, u), 0);
    cr_assert_eq(sk__fetch_h2_begin(f), 0);
    return f;
}

Test(fetch_h2, a_request_within_bounds_opens_a_stream)
{
    struct sk_url u;
    struct sk_fetch *f = new_fetch(&u);
    static const char req[] = "GET /x HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n"
                              "X-Mixed-Case: v\r\n\r\n";
    memcpy(f->buf, req, sizeof req - 1);
    cr_assert_eq(sk__fetch_h2_request(f, &u, sizeof req - 1), 0, "%s", sk_fetch_error(f));
    cr_assert(memmem(f->buf, sizeof req - 1, "x-mixed-case: v", 15), "lower-cased in place");
    sk__fetch_h2_free(f);
    cr_assert_null(f->w.h2);
    sk_fetch_free(f);
}

Test(fetch_h2, more_fields_than_a_head_may_hold_are_refused)
{
    struct sk_url u;
    struct sk_fetch *f = new_fetch(&u);
    size_t n = (size_t)snprintf(f->buf, SK__FETCH_BUF_SIZE, "GET /x HTTP/1.1\r\n");
    for (int i = 0; i < SK_HTTP_HEADERS_MAX + 10; i++)
        n += (size_t)snprintf(f->buf + n, SK__FETCH_BUF_SIZE - n, "X-%d: v\r\n", i);
    n += (size_t)snprintf(f->buf + n, SK__FETCH_BUF_SIZE - n, "\r\n");
    cr_assert_eq(sk__fetch_h2_request(f, &u, n), SK_EUSAGE);
    cr_assert(strstr(sk_fetch_error(f), "request too large"), "%s", sk_fetch_error(f));
    sk_fetch_free(f); /* the session goes with the object */
}

Test(fetch_h2, a_malformed_request_line_is_refused)
{
    struct sk_url u;
    struct sk_fetch *f = new_fetch(&u);
    memcpy(f->buf, "GET\r\n\r\n", 7);
    cr_assert_eq(sk__fetch_h2_request(f, &u, 7), SK_EUSAGE);
    sk_fetch_free(f);
}
