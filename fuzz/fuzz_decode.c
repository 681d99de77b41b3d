/* Fuzz target: the Content-Encoding decoders of fetch --compressed. The
 * first byte picks the coding (gzip, deflate, br), an output limit and a
 * piece size; the rest is decoded twice, in one piece and in pieces. The
 * verdict must not depend on where the input was split: when both succeed
 * their outputs are equal; when one fails, both fail, and the output each
 * produced is a prefix of the other's. Output is bounded (a bomb ends at
 * the limit) and handed over in pieces of at most SK__DECODE_OUT_SIZE. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode_int.h"
#include "sockit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_MAX (1u << 20) /* at most this much output is kept */

struct out {
    char *p;
    size_t n, limit;
};

static int take(void *arg, const char *p, size_t n)
{
    struct out *o = arg;
    if (n == 0 || n > SK__DECODE_OUT_SIZE)
        __builtin_trap();
    if (n > o->limit - o->n)
        return SK_ETOOBIG;
    memcpy(o->p + o->n, p, n);
    o->n += n;
    return 0;
}

/* 0 (the stream ended), or the failure. */
static int decode(enum sk__coding c, const uint8_t *s, size_t n, size_t step, struct out *o)
{
    struct sk__decoder *d;
    if (sk__decoder_new(c, take, o, &d) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i += step) {
        size_t piece = n - i < step ? n - i : step;
        rc = sk__decoder_feed(d, s + i, piece);
    }
    if (rc == 0)
        rc = sk__decoder_finish(d);
    sk__decoder_free(d);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const enum sk__coding cs[] = {SK__CODING_GZIP, SK__CODING_DEFLATE, SK__CODING_BR};
    enum sk__coding c = cs[data[0] % 3];
    size_t limit = data[0] & 0x80 ? 4096 : OUT_MAX;
    size_t step = (size_t)(data[0] >> 2 & 0x1f) + 1;
    const uint8_t *s = data + 1;
    size_t n = size - 1;
    struct out a = {malloc(OUT_MAX), 0, limit}, b = {malloc(OUT_MAX), 0, limit};
    int ra = decode(c, s, n, n ? n : 1, &a);
    int rb = decode(c, s, n, step, &b);
    size_t common = a.n < b.n ? a.n : b.n;
    if ((ra == 0) != (rb == 0))
        __builtin_trap(); /* the split changed the verdict */
    if (ra == 0 && (a.n != b.n || memcmp(a.p, b.p, a.n) != 0))
        __builtin_trap(); /* or the output */
    if (memcmp(a.p, b.p, common) != 0)
        __builtin_trap(); /* what came before a failure differs */
    free(a.p);
    free(b.p);
    return 0;
}
