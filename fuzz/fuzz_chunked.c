/* Fuzz target: the chunked decoder. The input is decoded twice, whole and
 * in pieces whose sizes come from the input itself; both must agree on
 * the outcome and on every decoded byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Returns 1 done, 0 incomplete, <0 error; out receives the decoded data. */
static int decode(const char *s, size_t n, size_t step, char *out, size_t *olen)
{
    struct sk_chunked d = {0};
    size_t i = 0;
    *olen = 0;
    while (i < n && !sk_chunked_done(&d)) {
        size_t piece = n - i < step ? n - i : step;
        const char *data;
        size_t dl;
        int used = sk_chunked_feed(&d, s + i, piece, &data, &dl);
        if (used < 0)
            return used;
        if (dl) {
            if (data < s + i || data + dl > s + i + (size_t)used)
                __builtin_trap();
            memcpy(out + *olen, data, dl);
            *olen += dl;
        }
        if (used == 0 && !sk_chunked_done(&d))
            __builtin_trap(); /* no progress while bytes remain */
        i += (size_t)used;
    }
    return sk_chunked_done(&d) ? 1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] % 17 + 1;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    char *a = malloc(n + 1), *b = malloc(n + 1);
    size_t alen, blen;
    int ra = decode(s, n, n ? n : 1, a, &alen);
    int rb = decode(s, n, step, b, &blen);
    if ((ra < 0) != (rb < 0) || (ra >= 0 && (ra != rb || alen != blen || memcmp(a, b, alen) != 0)))
        __builtin_trap();
    free(a);
    free(b);
    return 0;
}
