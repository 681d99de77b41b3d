/* Fuzz target: the reply readers of client and bench.
 *  - reply_scan (client, TCP and UDP): a verdict on a prefix that is
 *    complete stays the same when more bytes follow (line framing); an OK
 *    reply is exactly the expected one; lengths stay within the input.
 *  - match_feed (bench's streaming matcher): fed in two pieces split
 *    anywhere, it finds the same replies as fed whole.
 *  - reply_show: always a bounded, NUL-terminated, printable line.
 * Input: [flags][expect length][expect bytes][data bytes]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_scan(enum sk_framing f, const char *exp, size_t elen, const char *d,
                       size_t n, size_t split)
{
    struct reply_scan r = {0}, rp = {0};
    enum reply_status st = reply_scan(f, exp, elen, d, n, &r);
    if (st != REPLY_MORE) {
        if (r.len > n || r.body > r.len || r.len - r.body > 2)
            abort();
        if (st == REPLY_OK && (r.body != elen || memcmp(d, exp, elen) != 0))
            abort();
        if (f == SK_FRAMING_LINE &&
            (r.len == 0 || d[r.len - 1] != '\n' || memchr(d, '\n', r.len - 1)))
            abort();
        if (f == SK_FRAMING_CHUNK && r.len != n)
            abort();
    }
    enum reply_status sp = reply_scan(f, exp, elen, d, split, &rp);
    if (f == SK_FRAMING_LINE && sp != REPLY_MORE && (sp != st || rp.len != r.len))
        abort(); /* a complete line does not change with what follows */
    if (st == REPLY_MORE && sp != REPLY_MORE)
        abort(); /* a prefix of an incomplete reply is incomplete */
}

static void check_match(enum match_kind kind, const char *exp, size_t elen, const char *d,
                        size_t n, size_t split)
{
    struct match_spec m = {.kind = kind, .bytes = exp, .len = elen};
    if (match_prepare(&m) < 0)
        abort();
    struct match_state whole = {0}, parts = {0};
    long a = match_feed(&m, &whole, d, n);
    long b1 = match_feed(&m, &parts, d, split);
    long b2 = b1 < 0 ? b1 : match_feed(&m, &parts, d + split, n - split);
    if (a < 0) {
        if (b1 >= 0 && b2 >= 0)
            abort();
    } else if (b1 < 0 || b2 < 0 || a != b1 + b2 || whole.pos != parts.pos) {
        abort();
    }
    if (a > 0 && (size_t)a > n / elen)
        abort();
    free(m.fail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0];
    size_t elen = data[1];
    if (elen == 0 || size - 2 < elen)
        return 0;
    /* Exact-size heap copies: the sanitizers see any read past the end. No
     * data is NULL, as the head of an empty sk_buf is. */
    size_t n = size - 2 - elen;
    char *exp = malloc(elen), *d = n ? malloc(n) : NULL;
    if (!exp || (n && !d))
        abort();
    memcpy(exp, data + 2, elen);
    if (n)
        memcpy(d, data + 2 + elen, n);
    size_t split = n ? (flags >> 2) % (n + 1) : 0;

    enum sk_framing f = (flags & 1) ? SK_FRAMING_LINE : SK_FRAMING_CHUNK;
    check_scan(f, exp, elen, d, n, split);
    static const enum match_kind kinds[] = {MATCH_EXACT, MATCH_LEN, MATCH_UNTIL};
    check_match(kinds[(flags >> 1) % 3], exp, elen, d, n, split);

    char shown[64];
    size_t cap = 1 + flags % sizeof shown;
    size_t k = reply_show(d, n, shown, cap);
    if (k >= cap || shown[k] != '\0' || strlen(shown) != k)
        abort();
    for (size_t i = 0; i < k; i++)
        if (shown[i] < 0x20 || shown[i] > 0x7e)
            abort();
    size_t m = reply_message_len(f, d, n);
    if (m > n || n - m > 1)
        abort();
    free(exp);
    free(d);
    return 0;
}
