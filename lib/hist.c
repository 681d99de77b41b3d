/* Log-linear histogram (see include/sockit/hist.h).
 *
 * Layout of the bucket index for SUB = 2048, HALF = 1024:
 *   v < SUB:      idx = v                          (exact)
 *   v >= SUB:     e = floor(log2 v) >= 11, shift = e - 10,
 *                 idx = shift * HALF + (v >> shift)
 * (v >> shift) lies in [HALF, SUB), so each power of two above SUB gets
 * HALF consecutive buckets of width 2^shift, and width / value < 1 / HALF. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "hist_int.h"
#include "sockit/err.h"
#include "sockit/hist.h"

#define HALF (SK_HIST_SUB / 2)
#define HALF_BITS (SK_HIST_SUB_BITS - 1)
#define NBUCKETS ((size_t)(SK_HIST_MAX_BITS - HALF_BITS) * HALF + SK_HIST_SUB)

size_t sk__hist_index(uint64_t v)
{
    if (v > SK_HIST_MAX)
        v = SK_HIST_MAX;
    if (v < SK_HIST_SUB)
        return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - HALF_BITS;
    return (size_t)shift * HALF + (size_t)(v >> shift);
}

uint64_t sk__hist_bucket_low(size_t idx)
{
    if (idx < SK_HIST_SUB)
        return idx;
    size_t shift = idx / HALF - 1;
    uint64_t sub = idx - shift * HALF; /* in [HALF, SUB) */
    return sub << shift;
}

uint64_t sk__hist_bucket_high(size_t idx)
{
    if (idx < SK_HIST_SUB)
        return idx;
    size_t shift = idx / HALF - 1;
    return sk__hist_bucket_low(idx) + ((UINT64_C(1) << shift) - 1);
}

int sk_hist_init(struct sk_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
    h->counts = sk__calloc(NBUCKETS, sizeof *h->counts);
    if (!h->counts)
        return SK_ERR(ENOMEM);
    h->nbuckets = NBUCKETS;
    return 0;
}

void sk_hist_free(struct sk_hist *h)
{
    free(h->counts);
    h->counts = NULL;
    h->nbuckets = 0;
}

void sk_hist_reset(struct sk_hist *h)
{
    if (h->counts)
        memset(h->counts, 0, h->nbuckets * sizeof *h->counts);
    h->total = h->max = h->saturated = 0;
    h->min = UINT64_MAX;
    h->sum = 0;
}

void sk_hist_record_n(struct sk_hist *h, uint64_t v, uint64_t n)
{
    if (n == 0)
        return;
    if (v > SK_HIST_MAX) {
        h->saturated += n;
        v = SK_HIST_MAX;
    }
    h->counts[sk__hist_index(v)] += n;
    h->total += n;
    h->sum += (long double)v * (long double)n;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void sk_hist_record(struct sk_hist *h, uint64_t v)
{
    sk_hist_record_n(h, v, 1);
}

void sk_hist_merge(struct sk_hist *dst, const struct sk_hist *src)
{
    if (src->total == 0)
        return;
    for (size_t i = 0; i < src->nbuckets; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->saturated += src->saturated;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t sk_hist_percentile(const struct sk_hist *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p <= 0)
        return h->min;
    if (p >= 100)
        return h->max;
    /* rank: how many values must be <= the answer (at least one). */
    long double want = (long double)p / 100.0L * (long double)h->total;
    uint64_t rank = (uint64_t)want;
    if ((long double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    size_t top = sk__hist_index(h->max);
    for (size_t i = sk__hist_index(h->min); i <= top; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = sk__hist_bucket_high(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double sk_hist_mean(const struct sk_hist *h)
{
    return h->total ? (double)(h->sum / (long double)h->total) : 0.0;
}
