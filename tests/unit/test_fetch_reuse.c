/* The pure parts of the fetch client's connection reuse: the Connection
 * header's "close" token, and sk_fetch_set_opts's checks. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

#include "fetch_int.h"

static bool says_close(const char *head)
{
    struct sk_http_resp r;
    struct sk_http_header h[16];
    int rc = sk_http_resp_parse(head, strlen(head), &r, h, 16);
    cr_assert_gt(rc, 0, "%s", head);
    return sk__fetch_conn_close(&r);
}

Test(fetch_reuse, connection_close_token)
{
    cr_assert(says_close("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"));
    cr_assert(says_close("HTTP/1.1 200 OK\r\nconnection: Keep-Alive, CLOSE\r\n\r\n"));
    cr_assert(says_close("HTTP/1.1 200 OK\r\nConnection: x\r\nConnection: close\r\n\r\n"));
    cr_assert(says_close("HTTP/1.1 200 OK\r\nConnection: ,close ,\r\n\r\n"));
    cr_assert_not(says_close("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n"));
    cr_assert_not(says_close("HTTP/1.1 200 OK\r\nConnection: closed\r\n\r\n"));
    cr_assert_not(says_close("HTTP/1.1 200 OK\r\nConnection: xclose\r\n\r\n"));
    cr_assert_not(says_close("HTTP/1.1 200 OK\r\nX-Connection: close\r\n\r\n"));
    cr_assert_not(says_close("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
}

Test(fetch_reuse, set_opts_checks_like_new_and_changes_nothing_on_refusal)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.user_agent = "first";
    struct sk_fetch *f;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    struct sk_fetch_opts bad = o;
    bad.size = sizeof bad - 1;
    bad.user_agent = "bad";
    cr_assert_eq(sk_fetch_set_opts(f, &bad), SK_EUSAGE);
    bad = o;
    bad.flags = SK_FETCH_COMPRESSED | SK_FETCH_RESUME;
    bad.user_agent = "bad";
    cr_assert_eq(sk_fetch_set_opts(f, &bad), SK_EUSAGE);
    cr_assert_eq(sk_fetch_set_opts(f, NULL), SK_EUSAGE);
    cr_assert_eq(sk_fetch_set_opts(NULL, &o), SK_EUSAGE);
    cr_assert_str_eq(f->o.user_agent, "first");
    /* an older layout: the appended fields read as 0 */
    struct sk_fetch_opts old = o;
    old.size = SK__FETCH_OPTS_SIZE_0;
    old.max_filesize = 5;
    old.user_agent = "second";
    cr_assert_eq(sk_fetch_set_opts(f, &old), 0);
    cr_assert_str_eq(f->o.user_agent, "second");
    cr_assert_eq(f->o.max_filesize, 0);
    cr_assert_eq(f->o.size, sizeof f->o);
    sk_fetch_free(f);
}

/* The TLS context (and a kept connection) are what the old cacert and
 * insecure settings verified with: kept only while they stay the same. */
Test(fetch_reuse, set_opts_with_other_tls_settings_drops_the_context)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.flags = SK_FETCH_INSECURE;
    struct sk_fetch *f;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    struct sk_tls_config cfg = {.insecure = true};
    char err[256];
    cr_assert_eq(sk_tls_ctx_new(&cfg, &f->tls, err, sizeof err), 0, "%s", err);
    struct sk_tls_ctx *ctx = f->tls;
    o.user_agent = "same TLS settings";
    cr_assert_eq(sk_fetch_set_opts(f, &o), 0);
    cr_assert_eq(f->tls, ctx);
    o.flags = 0; /* verification on */
    cr_assert_eq(sk_fetch_set_opts(f, &o), 0);
    cr_assert_null(f->tls);
    sk_fetch_free(f);
}
