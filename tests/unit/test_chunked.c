/* Unit tests: the chunked transfer-coding decoder. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

/* Feeds s[0..len) in pieces of at most `step` bytes (the first piece is
 * `first` bytes when non-zero). Collects the data into out. Returns the
 * decoder's last result: 0 when it is done, else the error or INCOMPLETE. */
static int decode(const char *s, size_t len, size_t first, size_t step, char *out,
                  size_t *out_len, size_t *used)
{
    struct sk_chunked d = {0};
    size_t i = 0, o = 0;
    while (i < len && !sk_chunked_done(&d)) {
        size_t n = first && i == 0 ? first : step;
        if (n > len - i)
            n = len - i;
        char *piece = malloc(n); /* exact-size: ASan catches over-reads */
        memcpy(piece, s + i, n);
        size_t off = 0;
        while (off < n && !sk_chunked_done(&d)) {
            const char *data;
            size_t dl;
            int rc = sk_chunked_feed(&d, piece + off, n - off, &data, &dl);
            if (rc < 0) {
                free(piece);
                return rc;
            }
            if (dl) {
                cr_assert(data >= piece + off && data + dl <= piece + n);
                memcpy(out + o, data, dl);
                o += dl;
            }
            if (rc == 0)
                break;
            off += (size_t)rc;
        }
        free(piece);
        i += off;
    }
    *out_len = o;
    *used = i;
    return sk_chunked_done(&d) ? 0 : SK_HTTP_INCOMPLETE;
}

static const char body[] = "5\r\nhello\r\n"
                           "7;name=val; x\r\n, world\r\n"
                           "000A  ;ext\r\n0123456789\r\n"
                           "0\r\n"
                           "Trailer-A: 1\r\n"
                           "Trailer-B: two\r\n"
                           "\r\n"
                           "NEXT";

Test(chunked, whole_and_every_split_point)
{
    char out[64];
    size_t ol, used, len = sizeof body - 1;
    cr_assert_eq(decode(body, len, 0, len, out, &ol, &used), 0);
    cr_assert_eq(ol, 22);
    cr_assert_eq(memcmp(out, "hello, world0123456789", 22), 0);
    cr_assert_eq(used, len - 4, "stops right after the body");
    for (size_t split = 1; split < len; split++) {
        cr_assert_eq(decode(body, len, split, len, out, &ol, &used), 0, "split %zu", split);
        cr_assert_eq(ol, 22);
        cr_assert_eq(memcmp(out, "hello, world0123456789", 22), 0, "split %zu", split);
    }
    cr_assert_eq(decode(body, len, 0, 1, out, &ol, &used), 0);
    cr_assert_eq(memcmp(out, "hello, world0123456789", 22), 0);
    for (size_t n = 0; n < len - 4; n++)
        cr_assert_eq(decode(body, n, 0, 3, out, &ol, &used), SK_HTTP_INCOMPLETE, "prefix %zu", n);
}

static int decode_str(const char *s)
{
    char out[256];
    size_t ol, used;
    return decode(s, strlen(s), 0, 7, out, &ol, &used);
}

Test(chunked, rejects_bad_framing)
{
    const char *bad[] = {
        "x\r\n",             "\r\n",               ";ext\r\n",          "5 x\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n", "5\r\nhelloX\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello\r\n0\r\nNoColon\r\n\r\n", "5\r\nhello\r\n0\r\n\r\r",
        "5\r\nhello\r\n0\r\n folded: x\r\n\r\n", "-5\r\nhello\r\n",
        "0x5\r\nhello\r\n", "5;\x01\r\nhello\r\n", "5\r\nhello\r\n0\r\nA: b\nB: c\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(decode_str(bad[i]), SK_EPARSE, "accepted #%zu", i);
}

Test(chunked, size_bounds_and_overflow)
{
    cr_assert_eq(decode_str("FFFFFFFFFFFFFFF\r\n"), SK_HTTP_INCOMPLETE); /* 15 digits: allowed */
    cr_assert_eq(decode_str("1000000000000000\r\n"), SK_ETOOBIG);       /* 16 digits */
    cr_assert_eq(decode_str("FFFFFFFFFFFFFFFFFFFFFFFF\r\n"), SK_ETOOBIG); /* overflow */
    cr_assert_eq(decode_str("0000000000000000000000005\r\nhello\r\n0\r\n\r\n"), 0);
    char line[SK_CHUNK_LINE_MAX + 32] = "5;";
    memset(line + 2, 'a', SK_CHUNK_LINE_MAX);
    strcpy(line + 2 + SK_CHUNK_LINE_MAX, "\r\n");
    cr_assert_eq(decode_str(line), SK_ETOOBIG);
}

Test(chunked, trailer_bounds)
{
    size_t n = SK_CHUNK_TRAILER_MAX + 64;
    char *s = malloc(n + 1);
    memcpy(s, "0\r\nX: ", 6);
    for (size_t i = 6; i < n; i++)
        s[i] = (i % 100 == 0) ? '\r' : (i % 100 == 1) ? '\n' : (i % 100 == 2) ? 'Y' :
               (i % 100 == 3) ? ':' : 'v';
    s[n] = '\0';
    cr_assert_eq(decode_str(s), SK_ETOOBIG);
    free(s);
    char many[SK_CHUNK_TRAILERS_MAX * 8 + 16];
    strcpy(many, "0\r\n");
    for (int i = 0; i <= SK_CHUNK_TRAILERS_MAX; i++)
        strcat(many, "A: b\r\n");
    cr_assert_eq(decode_str(many), SK_ETOOBIG);
}

Test(chunked, overhead_bound)
{
    /* 1-byte chunks: 6 framing bytes per data byte. */
    size_t count = 30000;
    char *s = malloc(count * 6 + 8);
    for (size_t i = 0; i < count; i++)
        memcpy(s + i * 6, "1\r\nx\r\n", 6);
    strcpy(s + count * 6, "0\r\n\r\n");
    char *out = malloc(count);
    size_t ol, used;
    cr_assert_eq(decode(s, strlen(s), 0, 4096, out, &ol, &used), SK_ETOOBIG);
    free(s);
    free(out);
}

Test(chunked, sticky_failure)
{
    struct sk_chunked d = {0};
    const char *data;
    size_t dl;
    cr_assert_eq(sk_chunked_feed(&d, "zz", 2, &data, &dl), SK_EPARSE);
    cr_assert_eq(sk_chunked_feed(&d, "5\r\nhello\r\n", 10, &data, &dl), SK_EPARSE);
    cr_assert_eq(dl, 0);
    cr_assert_not(sk_chunked_done(&d));
}

Test(chunked, done_uses_nothing_more)
{
    struct sk_chunked d = {0};
    const char *data;
    size_t dl;
    cr_assert_eq(sk_chunked_feed(&d, "0\r\n\r\nabc", 8, &data, &dl), 5);
    cr_assert(sk_chunked_done(&d));
    cr_assert_eq(sk_chunked_feed(&d, "abc", 3, &data, &dl), 0);
}

/* A whole chunked response (head and body) arriving in two pieces, split
 * at every byte: the head parser and the decoder together always give the
 * same head and the same body. */
Test(chunked, whole_response_every_split_point)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\n"
                               "Transfer-Encoding: chunked\r\n"
                               "\r\n"
                               "4\r\nWiki\r\n"
                               "6;x=1\r\npedia \r\n"
                               "E\r\nin \r\n\r\nchunks.\r\n"
                               "0\r\n\r\n";
    const char *want = "Wikipedia in \r\n\r\nchunks.";
    size_t len = sizeof resp - 1;
    for (size_t split = 0; split <= len; split++) {
        char *buf = malloc(len); /* the receive buffer: bytes arrive into it */
        size_t have = split, head = 0;
        memcpy(buf, resp, split);
        struct sk_http_resp r;
        struct sk_http_header h[8];
        int rc = sk_http_resp_parse(buf, have, &r, h, 8);
        if (rc == SK_HTTP_INCOMPLETE) {
            memcpy(buf + have, resp + have, len - have);
            have = len;
            rc = sk_http_resp_parse(buf, have, &r, h, 8);
        }
        cr_assert_gt(rc, 0, "split %zu", split);
        head = (size_t)rc;
        struct sk_http_framing f;
        cr_assert_eq(sk_http_framing(&r, false, &f), 0);
        cr_assert_eq(f.kind, SK_HTTP_BODY_CHUNKED);
        struct sk_chunked d = {0};
        char out[64];
        size_t o = 0, pos = head;
        for (int round = 0; round < 2; round++) {
            while (pos < have && !sk_chunked_done(&d)) {
                const char *data;
                size_t dl;
                int used = sk_chunked_feed(&d, buf + pos, have - pos, &data, &dl);
                cr_assert_geq(used, 0, "split %zu", split);
                if (dl) {
                    memcpy(out + o, data, dl);
                    o += dl;
                }
                pos += (size_t)used;
            }
            if (have < len) { /* the second piece arrives */
                memcpy(buf + have, resp + have, len - have);
                have = len;
            }
        }
        cr_assert(sk_chunked_done(&d), "split %zu", split);
        cr_assert_eq(o, strlen(want));
        cr_assert_eq(memcmp(out, want, o), 0, "split %zu", split);
        free(buf);
    }
}
