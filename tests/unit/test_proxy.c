/* Unit tests: the PROXY protocol header parser (sk_proxy_parse). Every
 * header is also fed at every split point: each shorter prefix must say
 * "need more" (or, for a bad header, the same error), the whole the same
 * result, whatever follows it. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "sockit.h"

/* An exact-size heap copy, so a read past the bytes given is seen by ASan. */
static int parse_exact(const void *data, size_t n, struct sk_proxy_header *h,
                       enum sk_proxy_error *err)
{
    unsigned char *copy = malloc(n ? n : 1);
    cr_assert_not_null(copy);
    memcpy(copy, data, n);
    int rc = sk_proxy_parse(copy, n, h, err);
    free(copy);
    return rc;
}

/* A valid header of len bytes: every prefix needs more, the whole (and the
 * whole with bytes after it) gives len and the same addresses. */
static struct sk_proxy_header parse_ok(const void *hdr, size_t len)
{
    struct sk_proxy_header h, again;
    enum sk_proxy_error err;
    for (size_t k = 0; k < len; k++) {
        int rc = parse_exact(hdr, k, &h, &err);
        cr_assert_eq(rc, 0, "prefix %zu of %zu: rc %d (%s)", k, len, rc,
                     sk_proxy_error_name(err));
    }
    memset(&h, 0, sizeof h);
    int rc = parse_exact(hdr, len, &h, &err);
    cr_assert_eq(rc, (int)len, "whole: rc %d (%s)", rc, sk_proxy_error_name(err));
    cr_assert_eq(err, SK_PROXY_OK);
    unsigned char more[SK_PROXY_HEADER_MAX + 8];
    cr_assert_leq(len + 8, sizeof more);
    memcpy(more, hdr, len);
    memcpy(more + len, "hello\r\n\n", 8);
    memset(&again, 0, sizeof again);
    cr_assert_eq(parse_exact(more, len + 8, &again, &err), (int)len);
    cr_assert_eq(again.version, h.version);
    cr_assert_eq(again.local, h.local);
    cr_assert_eq(memcmp(&again.src, &h.src, sizeof h.src), 0);
    cr_assert_eq(memcmp(&again.dst, &h.dst, sizeof h.dst), 0);
    return h;
}

/* A bad input: the whole gives `want`; every prefix needs more or gives
 * the same error (an error, once seen, stays). */
static void parse_bad(const void *data, size_t len, enum sk_proxy_error want)
{
    struct sk_proxy_header h;
    enum sk_proxy_error err;
    bool seen = false;
    for (size_t k = 1; k <= len; k++) {
        int rc = parse_exact(data, k, &h, &err);
        if (rc == 0) {
            cr_assert_not(seen, "prefix %zu: need more after an error", k);
            continue;
        }
        cr_assert_eq(rc, SK_EPARSE, "prefix %zu: rc %d", k, rc);
        cr_assert_eq(err, want, "prefix %zu of %zu: %s, want %s", k, len,
                     sk_proxy_error_name(err), sk_proxy_error_name(want));
        seen = true;
    }
    cr_assert(seen, "no error for the whole input (want %s)", sk_proxy_error_name(want));
}

static void parse_bad_str(const char *s, enum sk_proxy_error want)
{
    parse_bad(s, strlen(s), want);
}

static void assert_addr(const struct sockaddr_storage *ss, const char *want)
{
    char buf[SK_ADDRSTR_MAX];
    sk_addr_format((const struct sockaddr *)ss, buf, sizeof buf);
    cr_assert_str_eq(buf, want);
}

/* ---- version 1 ---- */

Test(proxy_v1, tcp4)
{
    const char *s = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n";
    struct sk_proxy_header h = parse_ok(s, strlen(s));
    cr_assert_eq(h.version, 1);
    cr_assert_not(h.local);
    assert_addr(&h.src, "192.0.2.10:56324");
    assert_addr(&h.dst, "198.51.100.1:443");
}

Test(proxy_v1, tcp6)
{
    const char *s = "PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 0 65535\r\n";
    struct sk_proxy_header h = parse_ok(s, strlen(s));
    cr_assert_not(h.local);
    assert_addr(&h.src, "[2001:db8::1]:0");
    assert_addr(&h.dst, "[::ffff:192.0.2.1]:65535");
}

Test(proxy_v1, unknown_is_local)
{
    const char *forms[] = {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN \r\n",
                           "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
                           "PROXY UNKNOWN anything at all, even \x01\x7f\r\n"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        struct sk_proxy_header h = parse_ok(forms[i], strlen(forms[i]));
        cr_assert(h.local);
        cr_assert_eq(h.version, 1);
    }
}

Test(proxy_v1, longest_is_107_bytes)
{
    const char *s = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
                    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    cr_assert_eq(strlen(s), 104);
    parse_ok(s, strlen(s));
    char u[SK_PROXY_V1_MAX + 1];
    memset(u, 'x', sizeof u);
    memcpy(u, "PROXY UNKNOWN ", 14);
    memcpy(u + SK_PROXY_V1_MAX - 2, "\r\n", 2);
    parse_ok(u, SK_PROXY_V1_MAX);
    memcpy(u + SK_PROXY_V1_MAX - 2, "x\r\n", 3); /* one byte more */
    parse_bad(u, sizeof u, SK_PROXY_TOO_LONG);
}

Test(proxy_v1, over_long_lines)
{
    char s[400];
    memset(s, 'x', sizeof s);
    memcpy(s, "PROXY UNKNOWN ", 14);
    parse_bad(s, sizeof s, SK_PROXY_TOO_LONG);
    /* A TCP4 line cannot reach the bound without a bad character first. */
    memset(s, '1', sizeof s);
    memcpy(s, "PROXY TCP4 ", 11);
    parse_bad(s, sizeof s, SK_PROXY_MALFORMED);
}

Test(proxy_v1, malformed)
{
    const char *bad[] = {
        "PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",     /* two spaces */
        "PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1  2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",     /* trailing space */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",        /* LF alone */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\r",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX",
        "PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n",     /* leading zero */
        "PROXY TCP4 192.0.2.1 192.0.2.2 1 00\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n",  /* port range */
        "PROXY TCP4 192.0.2.1 192.0.2.2 123456 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 -1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n",
        "PROXY TCP4 192.0.2.01 192.0.2.2 1 2\r\n",     /* octal-looking octet */
        "PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192.0.2.1. 192.0.2.2 1 2\r\n",
        "PROXY TCP4 192..2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP4 1.2.3.4.5 192.0.2.2 1 2\r\n",
        "PROXY TCP4 ::1 ::1 1 2\r\n",                  /* family mismatch */
        "PROXY TCP6 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY TCP6 2001:db8:::1 ::1 1 2\r\n",
        "PROXY TCP6 2001:db8::g ::1 1 2\r\n",
        "PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",        /* a field missing */
        "PROXY TCP4 192.0.2.1 192.0.2.2\r\n",
        "PROXY TCP4\r\n",
        "PROXY tcp4 192.0.2.1 192.0.2.2 1 2\r\n",      /* lower case */
        "PROXY \r\n",
        "PROXY  TCP4 192.0.2.1 192.0.2.2 1 2\r\n",
        "PROXY UNKNOWN\n",
        "PROXY UNKNOWN x\ny\r\n",
        "PROXY UNKNOWNX\r\n",                          /* 8 characters */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        parse_bad_str(bad[i], SK_PROXY_MALFORMED);
    const char nul[] = "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\0\r\n";
    parse_bad(nul, sizeof nul - 1, SK_PROXY_MALFORMED);
}

Test(proxy_v1, unsupported_protocol)
{
    parse_bad_str("PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n", SK_PROXY_UNSUPPORTED_FAMILY);
    parse_bad_str("PROXY TCP5 x\r\n", SK_PROXY_UNSUPPORTED_FAMILY);
    parse_bad_str("PROXY UNKNOW\r\n", SK_PROXY_UNSUPPORTED_FAMILY);
}

Test(proxy_v1, signature)
{
    parse_bad_str("PROXZ TCP4", SK_PROXY_BAD_SIGNATURE);
    parse_bad_str("PROXY\tTCP4", SK_PROXY_BAD_SIGNATURE);
    parse_bad_str("POST / HTTP/1.1\r\n", SK_PROXY_BAD_SIGNATURE);
    parse_bad_str("hello\n", SK_PROXY_MISSING);
    parse_bad_str("proxy TCP4", SK_PROXY_MISSING);
    parse_bad("\0", 1, SK_PROXY_MISSING);
    struct sk_proxy_header h;
    enum sk_proxy_error err;
    cr_assert_eq(sk_proxy_parse("", 0, &h, &err), 0);
}

/* ---- version 2 ---- */

static const unsigned char sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

struct v2 {
    unsigned char b[SK_PROXY_HEADER_MAX + 64];
    size_t len;
};

/* A v2 header: fixed part with ver_cmd and fam, then body (its length in
 * the length field unless len_field >= 0 says otherwise). */
static struct v2 v2_make(unsigned char ver_cmd, unsigned char fam, const void *body, size_t n,
                         long len_field)
{
    struct v2 v;
    memset(&v, 0, sizeof v);
    cr_assert_leq(16 + n, sizeof v.b);
    memcpy(v.b, sig, 12);
    v.b[12] = ver_cmd;
    v.b[13] = fam;
    size_t lf = len_field >= 0 ? (size_t)len_field : n;
    v.b[14] = (unsigned char)(lf >> 8);
    v.b[15] = (unsigned char)lf;
    if (n)
        memcpy(v.b + 16, body, n);
    v.len = 16 + n;
    return v;
}

static const unsigned char inet_body[12] = {192, 0, 2, 10, 198, 51, 100, 1, 0xDC, 0x04, 0x01, 0xBB};

Test(proxy_v2, inet)
{
    struct v2 v = v2_make(0x21, 0x11, inet_body, sizeof inet_body, -1);
    struct sk_proxy_header h = parse_ok(v.b, v.len);
    cr_assert_eq(h.version, 2);
    cr_assert_not(h.local);
    assert_addr(&h.src, "192.0.2.10:56324");
    assert_addr(&h.dst, "198.51.100.1:443");
}

Test(proxy_v2, inet6)
{
    unsigned char body[36] = {0};
    inet_pton(AF_INET6, "2001:db8::7", body);
    inet_pton(AF_INET6, "::1", body + 16);
    body[32] = 0x12, body[33] = 0x34, body[34] = 0, body[35] = 80;
    struct v2 v = v2_make(0x21, 0x21, body, sizeof body, -1);
    struct sk_proxy_header h = parse_ok(v.b, v.len);
    assert_addr(&h.src, "[2001:db8::7]:4660");
    assert_addr(&h.dst, "[::1]:80");
}

Test(proxy_v2, unix)
{
    unsigned char body[216] = {0};
    strcpy((char *)body, "/run/client.sock");
    strcpy((char *)body + 108, "/run/haproxy.sock");
    struct v2 v = v2_make(0x21, 0x31, body, sizeof body, -1);
    struct sk_proxy_header h = parse_ok(v.b, v.len);
    cr_assert_not(h.local);
    cr_assert_eq(h.src.ss_family, AF_UNIX);
    cr_assert_str_eq(((struct sockaddr_un *)&h.src)->sun_path, "/run/client.sock");
    cr_assert_str_eq(((struct sockaddr_un *)&h.dst)->sun_path, "/run/haproxy.sock");
}

Test(proxy_v2, local_and_unspec)
{
    struct v2 v = v2_make(0x20, 0x00, NULL, 0, -1); /* HAProxy's health check */
    struct sk_proxy_header h = parse_ok(v.b, v.len);
    cr_assert(h.local);
    cr_assert_eq(h.version, 2);
    /* LOCAL ignores the family: addresses are there but not used. */
    v = v2_make(0x20, 0x11, inet_body, sizeof inet_body, -1);
    cr_assert(parse_ok(v.b, v.len).local);
    v = v2_make(0x20, 0x12, inet_body, sizeof inet_body, -1); /* even DGRAM */
    cr_assert(parse_ok(v.b, v.len).local);
    v = v2_make(0x20, 0xF7, "xyz", 3, -1); /* an unknown family: opaque */
    cr_assert(parse_ok(v.b, v.len).local);
    /* PROXY over UNSPEC: no addresses, the connection's own are used. */
    v = v2_make(0x21, 0x00, NULL, 0, -1);
    cr_assert(parse_ok(v.b, v.len).local);
}

/* TLVs as HAProxy sends them: ALPN, authority, unique id, SSL with sub-TLVs, NOOP. */
static size_t tlv(unsigned char *p, unsigned char type, const void *v, size_t n)
{
    p[0] = type;
    p[1] = (unsigned char)(n >> 8);
    p[2] = (unsigned char)n;
    if (n)
        memcpy(p + 3, v, n);
    return 3 + n;
}

static size_t haproxy_tlvs(unsigned char *p)
{
    size_t k = 0;
    k += tlv(p + k, 0x01, "h2", 2);
    k += tlv(p + k, 0x02, "example.com", 11);
    k += tlv(p + k, 0x05, "4f2a9c6e-unique", 15);
    unsigned char ssl[64];
    ssl[0] = 0x07; /* client: SSL, cert conn, cert sess */
    memset(ssl + 1, 0, 4);
    size_t s = 5;
    s += tlv(ssl + s, 0x21, "TLSv1.3", 7);
    s += tlv(ssl + s, 0x22, "client-cn", 9);
    k += tlv(p + k, 0x20, ssl, s);
    k += tlv(p + k, 0x04, "", 0);
    return k;
}

Test(proxy_v2, tlvs_skipped)
{
    unsigned char body[256];
    memcpy(body, inet_body, 12);
    size_t n = 12 + haproxy_tlvs(body + 12);
    struct v2 v = v2_make(0x21, 0x11, body, n, -1);
    struct sk_proxy_header h = parse_ok(v.b, v.len);
    assert_addr(&h.src, "192.0.2.10:56324");
    /* LOCAL with TLVs and no addresses. */
    v = v2_make(0x20, 0x00, body + 12, n - 12, -1);
    cr_assert(parse_ok(v.b, v.len).local);
}

Test(proxy_v2, tlvs_malformed)
{
    unsigned char body[64];
    memcpy(body, inet_body, 12);
    size_t n = 12 + tlv(body + 12, 0x02, "abc", 3);
    /* Declared length one past the block; one and two bytes of a TLV header. */
    body[14] = 4;
    struct v2 v = v2_make(0x21, 0x11, body, n, -1);
    parse_bad(v.b, v.len, SK_PROXY_MALFORMED);
    body[14] = 3;
    for (size_t extra = 1; extra <= 2; extra++) {
        v = v2_make(0x21, 0x11, body, n + extra, -1);
        parse_bad(v.b, v.len, SK_PROXY_MALFORMED);
    }
    /* A length field shorter than the INET address block. */
    v = v2_make(0x21, 0x11, inet_body, 11, -1);
    parse_bad(v.b, v.len, SK_PROXY_MALFORMED);
    v = v2_make(0x21, 0x21, inet_body, 12, -1);
    parse_bad(v.b, v.len, SK_PROXY_MALFORMED);
    v = v2_make(0x20, 0x31, inet_body, 12, -1); /* LOCAL with a short UNIX block */
    parse_bad(v.b, v.len, SK_PROXY_MALFORMED);
}

static uint32_t test_crc32c(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
}

Test(proxy_v2, crc32c)
{
    cr_assert_eq(test_crc32c((const unsigned char *)"123456789", 9), 0xE3069283u);
    unsigned char body[64];
    memcpy(body, inet_body, 12);
    size_t n = 12 + tlv(body + 12, 0x03, "\0\0\0\0", 4);
    n += tlv(body + n, 0x02, "example.com", 11);
    struct v2 v = v2_make(0x21, 0x11, body, n, -1);
    uint32_t c = test_crc32c(v.b, v.len);
    unsigned char *field = v.b + 16 + 12 + 3;
    field[0] = (unsigned char)(c >> 24), field[1] = (unsigned char)(c >> 16);
    field[2] = (unsigned char)(c >> 8), field[3] = (unsigned char)c;
    parse_ok(v.b, v.len);
    field[3] ^= 1;
    parse_bad(v.b, v.len, SK_PROXY_BAD_CHECKSUM);
    field[3] ^= 1;
    v.b[16] ^= 1; /* an address byte changed in transit */
    parse_bad(v.b, v.len, SK_PROXY_BAD_CHECKSUM);
    /* A CRC32C TLV of the wrong size. */
    n = 12 + tlv(body + 12, 0x03, "\0\0\0", 3);
    v = v2_make(0x21, 0x11, body, n, -1);
    parse_bad(v.b, v.len, SK_PROXY_MALFORMED);
}

Test(proxy_v2, length_bound)
{
    static unsigned char body[SK_PROXY_V2_MAX];
    memcpy(body, inet_body, 12);
    /* The largest accepted: addresses and one NOOP TLV filling the rest. */
    size_t pad = SK_PROXY_V2_MAX - 12 - 3;
    body[12] = 0x04, body[13] = (unsigned char)(pad >> 8), body[14] = (unsigned char)pad;
    struct v2 v = v2_make(0x21, 0x11, body, SK_PROXY_V2_MAX, -1);
    parse_ok(v.b, v.len);
    /* One more is refused as soon as the length field is there. */
    v = v2_make(0x21, 0x11, body, 0, SK_PROXY_V2_MAX + 1);
    parse_bad(v.b, 16, SK_PROXY_TOO_LONG);
    v = v2_make(0x21, 0x11, body, 0, 65535);
    parse_bad(v.b, 16, SK_PROXY_TOO_LONG);
}

Test(proxy_v2, fixed_fields)
{
    struct v2 v = v2_make(0x11, 0x11, inet_body, 12, -1);
    parse_bad(v.b, v.len, SK_PROXY_UNSUPPORTED_VERSION);
    v = v2_make(0x31, 0x11, inet_body, 12, -1);
    parse_bad(v.b, v.len, SK_PROXY_UNSUPPORTED_VERSION);
    v = v2_make(0x22, 0x11, inet_body, 12, -1);
    parse_bad(v.b, v.len, SK_PROXY_UNSUPPORTED_COMMAND);
    v = v2_make(0x2F, 0x11, inet_body, 12, -1);
    parse_bad(v.b, v.len, SK_PROXY_UNSUPPORTED_COMMAND);
    const unsigned char fams[] = {0x12, 0x22, 0x32, 0x02, 0x10, 0x20, 0x30, 0x41, 0x13, 0xF1};
    for (size_t i = 0; i < sizeof fams; i++) {
        v = v2_make(0x21, fams[i], inet_body, 12, -1);
        parse_bad(v.b, v.len, SK_PROXY_UNSUPPORTED_FAMILY);
    }
}

Test(proxy_v2, signature)
{
    for (size_t i = 1; i < 12; i++) {
        struct v2 v = v2_make(0x21, 0x11, inet_body, 12, -1);
        v.b[i] ^= 0x20;
        parse_bad(v.b, v.len, SK_PROXY_BAD_SIGNATURE);
    }
    parse_bad("\r\nX", 3, SK_PROXY_BAD_SIGNATURE);
}

/* Truncated headers only need more: the reader decides (end of stream,
 * deadline). */
Test(proxy_v2, truncated_needs_more)
{
    unsigned char body[256];
    memcpy(body, inet_body, 12);
    size_t n = 12 + haproxy_tlvs(body + 12);
    struct v2 v = v2_make(0x21, 0x11, body, n, -1);
    struct sk_proxy_header h;
    enum sk_proxy_error err;
    for (size_t k = 0; k < v.len; k++)
        cr_assert_eq(parse_exact(v.b, k, &h, &err), 0);
}

Test(proxy, error_names)
{
    cr_assert_str_eq(sk_proxy_error_name(SK_PROXY_MISSING), "missing");
    cr_assert_str_eq(sk_proxy_error_name(SK_PROXY_TOO_LONG), "too-long");
    cr_assert_str_eq(sk_proxy_error_name(SK_PROXY_BAD_SIGNATURE), "bad-signature");
    cr_assert_str_eq(sk_proxy_error_name(SK_PROXY_UNSUPPORTED_FAMILY), "unsupported-family");
    cr_assert_str_eq(sk_proxy_error_name(SK_PROXY_TIMEOUT), "timeout");
    cr_assert_str_eq(sk_proxy_error_name(SK_PROXY_FAILED), "error");
    cr_assert_str_eq(sk_proxy_error_name((enum sk_proxy_error)999), "?");
}
