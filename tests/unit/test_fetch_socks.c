/* Unit tests: the SOCKS5 and SOCKS4 clients' pure parts (lib/fetch_socks.c): the
 * reader of the proxy's replies fed every exchange at every split point
 * (and byte by byte), each failure at the byte that makes it, and the
 * requests as bytes. Transfers through SOCKS5 proxies (microsocks, hostile
 * ones) are in tests/integration/test_fetch_socks.py. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

#include "fetch_int.h"

/* Feeds msg[0..n) split at cut (two calls): the steps seen, in order,
 * into steps (at most 2); returns how many. */
static int feed_split(struct sk__socks5 *s, const unsigned char *msg, size_t n, size_t cut,
                      int steps[2])
{
    int k = 0;
    int rc = sk__socks5_feed(s, msg, cut);
    if (rc != SK__SOCKS_MORE)
        steps[k++] = rc;
    if (rc >= 0) {
        rc = sk__socks5_feed(s, msg + cut, n - cut);
        if (rc != SK__SOCKS_MORE)
            steps[k++] = rc;
    }
    return k;
}

/* A reader awaiting the reply wait (W_CONNECT4: SOCKS4's). */
static void start(struct sk__socks5 *s, bool auth, int wait)
{
    if (wait == SK__SOCKS_W_CONNECT4) {
        sk__socks4_init(s);
        return;
    }
    sk__socks5_init(s, auth);
    s->wait = (unsigned char)wait;
}

/* One reply, split at every point: the step it ends in, and only at its end. */
static void reply_at_every_split(bool auth, int wait, const unsigned char *msg, size_t n,
                                 int want)
{
    for (size_t cut = 0; cut <= n; cut++) {
        struct sk__socks5 s;
        start(&s, auth, wait);
        int steps[2];
        int k = feed_split(&s, msg, n, cut, steps);
        cr_assert_eq(k, 1, "cut %zu: %d steps", cut, k);
        cr_assert_eq(steps[0], want, "cut %zu: step %d, want %d", cut, steps[0], want);
    }
    /* byte by byte: MORE until the last */
    struct sk__socks5 s;
    start(&s, auth, wait);
    for (size_t i = 0; i + 1 < n; i++)
        cr_assert_eq(sk__socks5_feed(&s, msg + i, 1), SK__SOCKS_MORE, "byte %zu", i);
    cr_assert_eq(sk__socks5_feed(&s, msg + n - 1, 1), want);
}

Test(fetch_socks, method_replies)
{
    reply_at_every_split(false, SK__SOCKS_W_METHOD, (const unsigned char *)"\x05\x00", 2,
                         SK__SOCKS_SEND_CONNECT);
    reply_at_every_split(true, SK__SOCKS_W_METHOD, (const unsigned char *)"\x05\x00", 2,
                         SK__SOCKS_SEND_CONNECT);
    reply_at_every_split(true, SK__SOCKS_W_METHOD, (const unsigned char *)"\x05\x02", 2,
                         SK__SOCKS_SEND_AUTH);
}

Test(fetch_socks, auth_replies)
{
    reply_at_every_split(true, SK__SOCKS_W_AUTH, (const unsigned char *)"\x01\x00", 2,
                         SK__SOCKS_SEND_CONNECT);
}

Test(fetch_socks, connect_replies_of_each_address_type)
{
    static const unsigned char v4[] = {5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90};
    static const unsigned char v6[] = {5, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0, 0, 0, 0, 0, 0, 0, 1, 0, 80};
    static const unsigned char name[] = {5, 0, 0, 3, 5, 'a', '.', 't', 's', 't', 1, 187};
    reply_at_every_split(false, SK__SOCKS_W_CONNECT, v4, sizeof v4, SK__SOCKS_UP);
    reply_at_every_split(false, SK__SOCKS_W_CONNECT, v6, sizeof v6, SK__SOCKS_UP);
    reply_at_every_split(false, SK__SOCKS_W_CONNECT, name, sizeof name, SK__SOCKS_UP);
    /* the longest: a 255-byte name */
    unsigned char big[4 + 1 + 255 + 2] = {5, 0, 0, 3, 255};
    memset(big + 5, 'n', 255);
    reply_at_every_split(false, SK__SOCKS_W_CONNECT, big, sizeof big, SK__SOCKS_UP);
}

/* The whole exchange with credentials as one stream of replies, split at
 * every point in two: each step at its reply's end; a split inside the
 * stream (the proxy speaking ahead of the client) is EEXTRA. */
Test(fetch_socks, whole_exchange_every_split)
{
    static const unsigned char all[] = {5, 2, 1, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0, 80};
    static const int ends[] = {2, 4, 14}; /* where each reply ends */
    static const int step_at[] = {SK__SOCKS_SEND_AUTH, SK__SOCKS_SEND_CONNECT, SK__SOCKS_UP};
    for (size_t a = 0; a <= sizeof all; a++) {
        struct sk__socks5 s;
        sk__socks5_init(&s, true);
        size_t off = 0;
        /* the client feeds one read at a time: up to a, then the rest */
        size_t chunks[2] = {a, sizeof all - a};
        for (int c = 0; c < 2; c++) {
            int rc = sk__socks5_feed(&s, all + off, chunks[c]);
            size_t end = off + chunks[c];
            bool spans = false;
            for (int i = 0; i < 3; i++)
                if ((size_t)ends[i] > off && (size_t)ends[i] < end)
                    spans = true;
            if (spans) {
                cr_assert_eq(rc, SK__SOCKS_EEXTRA, "a=%zu chunk %d: %d", a, c, rc);
                break;
            }
            int want = SK__SOCKS_MORE;
            for (int i = 0; i < 3; i++)
                if ((size_t)ends[i] == end && chunks[c])
                    want = step_at[i];
            cr_assert_eq(rc, want, "a=%zu chunk %d: %d, want %d", a, c, rc, want);
            off = end;
        }
    }
    /* read by read as sent: each reply whole */
    struct sk__socks5 s;
    sk__socks5_init(&s, true);
    cr_assert_eq(sk__socks5_feed(&s, all, 2), SK__SOCKS_SEND_AUTH);
    cr_assert_eq(sk__socks5_feed(&s, all + 2, 2), SK__SOCKS_SEND_CONNECT);
    cr_assert_eq(sk__socks5_feed(&s, all + 4, 10), SK__SOCKS_UP);
}

/* A failure at byte `at` of msg: that code, `bad` recorded, whatever came
 * before it in any split. */
static void fails_at(bool auth, int wait, const unsigned char *msg, size_t n, int want,
                     unsigned bad)
{
    for (size_t cut = 0; cut <= n; cut++) {
        struct sk__socks5 s;
        start(&s, auth, wait);
        int steps[2];
        int k = feed_split(&s, msg, n, cut, steps);
        cr_assert_eq(k, 1, "cut %zu", cut);
        cr_assert_eq(steps[0], want, "cut %zu: %d, want %d", cut, steps[0], want);
        cr_assert_eq(s.bad, bad, "cut %zu: bad %u", cut, s.bad);
        /* a failure is final */
        cr_assert_lt(sk__socks5_feed(&s, msg, 1), 0);
    }
}

Test(fetch_socks, failures_each_at_its_byte)
{
    const int M = SK__SOCKS_W_METHOD, A = SK__SOCKS_W_AUTH, C = SK__SOCKS_W_CONNECT;
    fails_at(false, M, (const unsigned char *)"\x04\x00", 2, SK__SOCKS_EVERSION, 4);
    fails_at(false, M, (const unsigned char *)"HTTP/1.1", 1, SK__SOCKS_EVERSION, 'H');
    fails_at(false, M, (const unsigned char *)"\x05\xff", 2, SK__SOCKS_ENOMETHOD, 0xff);
    fails_at(false, M, (const unsigned char *)"\x05\x02", 2, SK__SOCKS_EMETHOD, 2); /* not offered */
    fails_at(true, M, (const unsigned char *)"\x05\x01", 2, SK__SOCKS_EMETHOD, 1); /* GSSAPI */
    fails_at(true, A, (const unsigned char *)"\x05\x00", 2, SK__SOCKS_EAUTHVER, 5);
    fails_at(true, A, (const unsigned char *)"\x01\x01", 2, SK__SOCKS_EAUTH, 1);
    for (unsigned rep = 1; rep <= 255; rep++) {
        unsigned char m[] = {5, (unsigned char)rep};
        fails_at(false, C, m, 2, SK__SOCKS_EREP, rep);
    }
    fails_at(false, C, (const unsigned char *)"\x06", 1, SK__SOCKS_EVERSION, 6);
    fails_at(false, C, (const unsigned char *)"\x05\x00\x01", 3, SK__SOCKS_EGARBAGE, 1);
    fails_at(false, C, (const unsigned char *)"\x05\x00\x00\x02", 4, SK__SOCKS_EGARBAGE, 2);
    fails_at(false, C, (const unsigned char *)"\x05\x00\x00\x05", 4, SK__SOCKS_EGARBAGE, 5);
    fails_at(false, C, (const unsigned char *)"\x05\x00\x00\x03\x00", 5, SK__SOCKS_EGARBAGE, 0);
}

Test(fetch_socks, bytes_after_a_reply_are_refused)
{
    static const unsigned char up[] = {5, 0, 0, 1, 1, 2, 3, 4, 0, 80, 'H', 'T'};
    struct sk__socks5 s;
    sk__socks5_init(&s, false);
    s.wait = SK__SOCKS_W_CONNECT;
    cr_assert_eq(sk__socks5_feed(&s, up, sizeof up), SK__SOCKS_EEXTRA);
    cr_assert_eq(s.extra, 2);
    /* after UP, any later byte too */
    sk__socks5_init(&s, false);
    s.wait = SK__SOCKS_W_CONNECT;
    cr_assert_eq(sk__socks5_feed(&s, up, 10), SK__SOCKS_UP);
    cr_assert_eq(sk__socks5_feed(&s, up + 10, 1), SK__SOCKS_EEXTRA);
    cr_assert_eq(s.extra, 1);
    /* the method reply and CONNECT's at once: the proxy did not wait */
    sk__socks5_init(&s, false);
    cr_assert_eq(sk__socks5_feed(&s, (const unsigned char *)"\x05\x00\x05", 3), SK__SOCKS_EEXTRA);
    /* an empty read changes nothing */
    sk__socks5_init(&s, false);
    cr_assert_eq(sk__socks5_feed(&s, up, 0), SK__SOCKS_MORE);
    cr_assert_eq(s.got, 0);
}

Test(fetch_socks, requests)
{
    unsigned char b[SK__SOCKS5_MSG_MAX];
    cr_assert_eq(sk__socks5_hello(b, false), 3);
    cr_assert_eq(memcmp(b, "\x05\x01\x00", 3), 0);
    cr_assert_eq(sk__socks5_hello(b, true), 4);
    cr_assert_eq(memcmp(b, "\x05\x02\x00\x02", 4), 0);
    cr_assert_eq(sk__socks5_auth(b, "al", "pw!"), 8);
    cr_assert_eq(memcmp(b, "\x01\x02" "al\x03" "pw!", 8), 0);
    cr_assert_eq(sk__socks5_auth(b, "al", ""), 5); /* an empty password is allowed */
    cr_assert_eq(sk__socks5_auth(b, "", "pw"), 0);
    char u[300];
    memset(u, 'u', 255);
    u[255] = '\0';
    cr_assert_eq(sk__socks5_auth(b, u, u), 1 + 256 + 256);
    u[255] = 'u';
    u[256] = '\0';
    cr_assert_eq(sk__socks5_auth(b, u, "p"), 0);
    cr_assert_eq(sk__socks5_auth(b, "u", u), 0);
    static const unsigned char ip[4] = {127, 0, 0, 1};
    cr_assert_eq(sk__socks5_connect(b, 1, ip, 8080), 10);
    cr_assert_eq(memcmp(b, "\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x90", 10), 0);
    unsigned char ip6[16] = {0};
    ip6[15] = 1;
    cr_assert_eq(sk__socks5_connect(b, 4, ip6, 443), 22);
    cr_assert_eq(b[3], 4);
    cr_assert_eq(b[20], 1);
    cr_assert_eq(b[21], 187);
    cr_assert_eq(sk__socks5_connect(b, 3, "origin.test", 80), 4 + 1 + 11 + 2);
    cr_assert_eq(memcmp(b, "\x05\x01\x00\x03\x0borigin.test\x00\x50", 18), 0);
    u[255] = '\0';
    cr_assert_eq(sk__socks5_connect(b, 3, u, 80), 4 + 256 + 2);
    u[255] = 'u';
    cr_assert_eq(sk__socks5_connect(b, 3, u, 80), 0); /* 256 bytes */
    cr_assert_eq(sk__socks5_connect(b, 3, "", 80), 0);
}

Test(fetch_socks, rep_texts)
{
    cr_assert_str_eq(sk__socks5_rep_text(1), "general SOCKS server failure");
    cr_assert_str_eq(sk__socks5_rep_text(2), "connection not allowed by ruleset");
    cr_assert_str_eq(sk__socks5_rep_text(3), "network unreachable");
    cr_assert_str_eq(sk__socks5_rep_text(4), "host unreachable");
    cr_assert_str_eq(sk__socks5_rep_text(5), "connection refused by the destination");
    cr_assert_str_eq(sk__socks5_rep_text(6), "TTL expired");
    cr_assert_str_eq(sk__socks5_rep_text(7), "command not supported");
    cr_assert_str_eq(sk__socks5_rep_text(8), "address type not supported");
    cr_assert_str_eq(sk__socks5_rep_text(9), "unknown reply code");
    cr_assert_str_eq(sk__socks5_rep_text(255), "unknown reply code");
}

/* ---- SOCKS4 and SOCKS4a ---- */

Test(fetch_socks4, the_reply_at_every_split)
{
    static const unsigned char granted[] = {0, 90, 0x1f, 0x90, 10, 0, 0, 1};
    reply_at_every_split(false, SK__SOCKS_W_CONNECT4, granted, sizeof granted, SK__SOCKS_UP);
    static const unsigned char zeros[] = {0, 90, 0, 0, 0, 0, 0, 0};
    reply_at_every_split(false, SK__SOCKS_W_CONNECT4, zeros, sizeof zeros, SK__SOCKS_UP);
}

Test(fetch_socks4, failures_each_at_its_byte)
{
    const int C4 = SK__SOCKS_W_CONNECT4;
    fails_at(false, C4, (const unsigned char *)"\x04\x5a", 2, SK__SOCKS_EVERSION, 4);
    fails_at(false, C4, (const unsigned char *)"\x05\x00", 1, SK__SOCKS_EVERSION, 5);
    fails_at(false, C4, (const unsigned char *)"HTTP/1.1", 1, SK__SOCKS_EVERSION, 'H');
    for (unsigned cd = 0; cd <= 255; cd++) {
        if (cd == 90)
            continue;
        unsigned char m[] = {0, (unsigned char)cd};
        fails_at(false, C4, m, 2, SK__SOCKS_EREP, cd);
    }
}

Test(fetch_socks4, bytes_after_the_reply_are_refused)
{
    static const unsigned char up[] = {0, 90, 0, 0, 0, 0, 0, 0, 'H', 'T', 'T'};
    for (size_t cut = 0; cut <= 8; cut++) { /* any split: the last read holds extra bytes */
        struct sk__socks5 s;
        sk__socks4_init(&s);
        cr_assert_eq(sk__socks5_feed(&s, up, cut), cut == 8 ? SK__SOCKS_UP : SK__SOCKS_MORE);
        if (cut < 8) {
            cr_assert_eq(sk__socks5_feed(&s, up + cut, sizeof up - cut), SK__SOCKS_EEXTRA);
            cr_assert_eq(s.extra, 3, "cut %zu", cut);
        } else {
            cr_assert_eq(sk__socks5_feed(&s, up + 8, 1), SK__SOCKS_EEXTRA);
            cr_assert_eq(s.extra, 1);
        }
    }
}

Test(fetch_socks4, requests)
{
    unsigned char b[SK__SOCKS5_MSG_MAX];
    static const unsigned char ip[4] = {127, 0, 0, 1};
    /* SOCKS4: the address, an empty user id */
    cr_assert_eq(sk__socks4_connect(b, ip, 8080, "", "ignored.test"), 9);
    cr_assert_eq(memcmp(b, "\x04\x01\x1f\x90\x7f\x00\x00\x01\x00", 9), 0);
    cr_assert_eq(sk__socks4_connect(b, ip, 80, "alice", "x"), 14);
    cr_assert_eq(memcmp(b, "\x04\x01\x00\x50\x7f\x00\x00\x01" "alice\x00", 14), 0);
    /* SOCKS4a: 0.0.0.1, the user id, then the name */
    cr_assert_eq(sk__socks4_connect(b, NULL, 443, "u", "origin.test"), 8 + 2 + 12);
    cr_assert_eq(memcmp(b, "\x04\x01\x01\xbb\x00\x00\x00\x01" "u\x00" "origin.test\x00", 22), 0);
    /* the longest: 255 each */
    char u[300];
    memset(u, 'u', 255);
    u[255] = '\0';
    cr_assert_eq(sk__socks4_connect(b, NULL, 80, u, u), 8 + 256 + 256);
    cr_assert_leq(8 + 256 + 256, SK__SOCKS5_MSG_MAX);
    u[255] = 'u';
    u[256] = '\0';
    cr_assert_eq(sk__socks4_connect(b, NULL, 80, u, "h"), 0);
    cr_assert_eq(sk__socks4_connect(b, ip, 80, u, "h"), 0);
    cr_assert_eq(sk__socks4_connect(b, NULL, 80, "", u), 0);
    cr_assert_eq(sk__socks4_connect(b, NULL, 80, "", ""), 0);
    cr_assert_eq(sk__socks4_connect(b, ip, 80, "", u), 9); /* SOCKS4: the name is not sent */
}

Test(fetch_socks4, cd_texts)
{
    cr_assert_str_eq(sk__socks4_cd_text(91), "request rejected or failed");
    cr_assert_str_eq(sk__socks4_cd_text(92), "identd not reachable");
    cr_assert_str_eq(sk__socks4_cd_text(93), "user id mismatch");
    cr_assert_str_eq(sk__socks4_cd_text(0), "unknown reply code");
    cr_assert_str_eq(sk__socks4_cd_text(94), "unknown reply code");
    cr_assert_str_eq(sk__proxy_socks_version(SK__PROXY_SOCKS4A), "SOCKS4");
    cr_assert_str_eq(sk__proxy_socks_version(SK__PROXY_SOCKS5H), "SOCKS5");
    cr_assert_str_eq(sk__proxy_socks_version(SK__PROXY_HTTP), "");
}
