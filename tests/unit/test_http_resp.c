/* Unit tests: response head parser and body framing. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

static int parse(const char *s, size_t len, struct sk_http_resp *r, struct sk_http_header *h,
                 size_t max)
{
    /* Copy into an exact-size heap block: ASan flags any read past the end. */
    char *b = malloc(len ? len : 1);
    memcpy(b, s, len);
    int rc = sk_http_resp_parse(b, len, r, h, max);
    if (rc > 0) { /* re-point into s so the caller can inspect after free */
        r->reason = s + (r->reason - b);
        for (size_t i = 0; i < r->num_headers; i++) {
            h[i].name = s + (h[i].name - b);
            h[i].value = s + (h[i].value - b);
        }
    }
    free(b);
    return rc;
}

static const char good[] = "HTTP/1.1 200 OK\r\n"
                           "Content-Type: text/plain\r\n"
                           "Content-Length:  12 \r\n"
                           "X-Empty:\r\n"
                           "X-Obs: caf\xc3\xa9\tx\r\n"
                           "\r\n"
                           "hello, world";

Test(http_resp, parses_full_head)
{
    struct sk_http_resp r;
    struct sk_http_header h[8];
    size_t head = sizeof good - 1 - 12;
    cr_assert_eq(parse(good, sizeof good - 1, &r, h, 8), (int)head);
    cr_assert_eq(r.version_minor, 1);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.reason_len, 2);
    cr_assert_eq(memcmp(r.reason, "OK", 2), 0);
    cr_assert_eq(r.num_headers, 4);
    cr_assert_eq(h[1].name_len, 14);
    cr_assert_eq(h[1].value_len, 2);
    cr_assert_eq(memcmp(h[1].value, "12", 2), 0);
    cr_assert_eq(h[2].value_len, 0);
    cr_assert_eq(h[3].value_len, 7); /* "caf\xc3\xa9\tx" */
    const struct sk_http_header *f = sk_http_header_find(&r, "content-TYPE");
    cr_assert_not_null(f);
    cr_assert_eq(memcmp(f->value, "text/plain", 10), 0);
    cr_assert_null(sk_http_header_find(&r, "Location"));
    struct sk_http_framing fr;
    cr_assert_eq(sk_http_framing(&r, false, &fr), 0);
    cr_assert_eq(fr.kind, SK_HTTP_BODY_LENGTH);
    cr_assert_eq(fr.length, 12);
}

/* Every prefix of a valid head is INCOMPLETE; the whole is accepted. */
Test(http_resp, every_split_point)
{
    struct sk_http_resp r;
    struct sk_http_header h[8];
    size_t head = sizeof good - 1 - 12;
    for (size_t n = 0; n < head; n++)
        cr_assert_eq(parse(good, n, &r, h, 8), SK_HTTP_INCOMPLETE, "prefix %zu", n);
    for (size_t n = head; n <= sizeof good - 1; n++)
        cr_assert_eq(parse(good, n, &r, h, 8), (int)head, "prefix %zu", n);
}

Test(http_resp, status_line_variants)
{
    struct sk_http_resp r;
    struct sk_http_header h[4];
    const char *ok[] = {"HTTP/1.0 404 Not Found\r\n\r\n", "HTTP/1.1 200 \r\n\r\n",
                        "HTTP/1.1 204\r\n\r\n", "HTTP/1.1 599 x y z\r\n\r\n"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert_gt(parse(ok[i], strlen(ok[i]), &r, h, 4), 0, "%s", ok[i]);
    const char *bad[] = {"HTTP/2.0 200 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n",
                         "HTTP/1.1 2000 OK\r\n\r\n", "HTTP/1.1 099 x\r\n\r\n",
                         "HTTP/1.1 abc OK\r\n\r\n", "HTTP/1.1  200 OK\r\n\r\n",
                         "http/1.1 200 OK\r\n\r\n", "HTTP/1.1 200 OK\n\r\n",
                         "HTTP/1.1 200 O\rK\r\n\r\n", "HTTP/1.1 200 \x01\r\n\r\n",
                         "ICY 200 OK\r\n\r\n", "HTTP/1.x 200 OK\r\n\r\n",
                         "\r\n", "<html>"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(parse(bad[i], strlen(bad[i]), &r, h, 4), SK_EPARSE, "accepted %s", bad[i]);
}

Test(http_resp, bad_field_lines_detected_early)
{
    struct sk_http_resp r;
    struct sk_http_header h[4];
    const char *bad[] = {
        "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",      "HTTP/1.1 200 OK\r\nName : v\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: v\r\n\r\n",           "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\nC: d\r\n\r\n",    "HTTP/1.1 200 OK\r\nA: b\x7f\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA\x01: b\r\n\r\n",      "HTTP/1.1 200 OK\r\nA: \0b\r\n\r\n",
        "HTTP/1.1 200 OK\r\n\rX",
    };
    size_t lens[] = {0, 0, 0, 0, 0, 0, 0, 27, 0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = lens[i] ? lens[i] : strlen(bad[i]);
        cr_assert_eq(parse(bad[i], n, &r, h, 4), SK_EPARSE, "accepted #%zu", i);
    }
    /* Without the rest of the head: the error is already certain. */
    cr_assert_eq(parse("HTTP/1.1 200 OK\r\nNoColon\r", 26, &r, h, 4), SK_EPARSE);
}

Test(http_resp, limits)
{
    struct sk_http_resp r;
    struct sk_http_header h[3];
    const char *four = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    cr_assert_eq(parse(four, strlen(four), &r, h, 3), SK_ETOOBIG);
    cr_assert_gt(parse(four, strlen(four), &r, (struct sk_http_header[4]){0}, 4), 0);
    /* A head that has not ended within SK_HTTP_HEAD_MAX bytes. */
    size_t n = SK_HTTP_HEAD_MAX + 100;
    char *big = malloc(n);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', n - 20);
    cr_assert_eq(sk_http_resp_parse(big, n, &r, h, 3), SK_ETOOBIG);
    cr_assert_eq(sk_http_resp_parse(big, SK_HTTP_HEAD_MAX, &r, h, 3), SK_ETOOBIG);
    cr_assert_eq(sk_http_resp_parse(big, SK_HTTP_HEAD_MAX - 1, &r, h, 3), SK_HTTP_INCOMPLETE);
    /* Exactly at the bound is fine. */
    memcpy(big + SK_HTTP_HEAD_MAX - 4, "\r\n\r\n", 4);
    cr_assert_eq(sk_http_resp_parse(big, n, &r, h, 3), SK_HTTP_HEAD_MAX);
    free(big);
}

static int framing_of(const char *head, bool head_req, struct sk_http_framing *f)
{
    struct sk_http_resp r;
    struct sk_http_header h[16];
    int rc = sk_http_resp_parse(head, strlen(head), &r, h, 16);
    cr_assert_gt(rc, 0, "%s", head);
    return sk_http_framing(&r, head_req, f);
}

Test(http_resp, framing_rules)
{
    struct sk_http_framing f;
    cr_assert_eq(framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n", false, &f), 0);
    cr_assert_eq(f.kind, SK_HTTP_BODY_CHUNKED);
    cr_assert_eq(framing_of("HTTP/1.1 200 OK\r\n\r\n", false, &f), 0);
    cr_assert_eq(f.kind, SK_HTTP_BODY_CLOSE);
    cr_assert_eq(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, &f), 0);
    cr_assert_eq(f.kind, SK_HTTP_BODY_NONE);
    cr_assert_eq(framing_of("HTTP/1.1 204 No\r\n\r\n", false, &f), 0);
    cr_assert_eq(f.kind, SK_HTTP_BODY_NONE);
    cr_assert_eq(framing_of("HTTP/1.1 304 NM\r\nContent-Length: 9\r\n\r\n", false, &f), 0);
    cr_assert_eq(f.kind, SK_HTTP_BODY_NONE);
    cr_assert_eq(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 7, 7\r\n"
                            "Content-Length: 7\r\n\r\n", false, &f), 0);
    cr_assert_eq(f.kind, SK_HTTP_BODY_LENGTH);
    cr_assert_eq(f.length, 7);
    cr_assert_eq(framing_of("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, &f), 0);
    cr_assert_eq(f.length, 0);
    const char *bad[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5,\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(framing_of(bad[i], false, &f), SK_EPARSE, "accepted %s", bad[i]);
    cr_assert_eq(framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                            false, &f), SK_EUNSUPPORTED);
    cr_assert_eq(framing_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                            "Transfer-Encoding: chunked\r\n\r\n", false, &f), SK_EUNSUPPORTED);
}
