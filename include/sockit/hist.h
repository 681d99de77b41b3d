/* A log-linear latency histogram with bounded relative error, in the
 * manner of HdrHistogram.
 *
 * Values are unsigned 64-bit integers (sockit bench records nanoseconds).
 * Values below SK_HIST_SUB are counted exactly; above, each power-of-two
 * range [2^k, 2^(k+1)) is split into SK_HIST_SUB / 2 equal buckets, so a
 * recorded value is known to within 1 / (SK_HIST_SUB / 2) of itself:
 * 0.1 % (three significant digits). Values above SK_HIST_MAX are counted
 * at SK_HIST_MAX and reported in `saturated`.
 *
 * A histogram is owned by one thread; merge per-thread histograms with
 * sk_hist_merge() once the threads are done. */
#ifndef SOCKIT_HIST_H
#define SOCKIT_HIST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SK_HIST_SUB_BITS 11
#define SK_HIST_SUB (1u << SK_HIST_SUB_BITS) /* 2048 */
#define SK_HIST_MAX_BITS 44                   /* 2^44 ns: about 4.9 hours */
#define SK_HIST_MAX ((UINT64_C(1) << SK_HIST_MAX_BITS) - 1)

struct sk_hist {
    uint64_t *counts;   /* one per bucket; owned */
    size_t nbuckets;
    uint64_t total;     /* values recorded */
    uint64_t min, max;  /* exact extremes (min is UINT64_MAX when empty) */
    uint64_t saturated; /* values that were above SK_HIST_MAX */
    long double sum;    /* for the mean */
};

/* Allocates the buckets of an empty histogram. Returns 0 or SK_ERR(ENOMEM).
 * h is left empty and freeable either way. */
int sk_hist_init(struct sk_hist *h);
/* Releases the buckets; h may be zero-filled or already freed. */
void sk_hist_free(struct sk_hist *h);
/* Forgets every value, keeping the memory. */
void sk_hist_reset(struct sk_hist *h);

/* Records one value / n copies of one value. */
void sk_hist_record(struct sk_hist *h, uint64_t v);
void sk_hist_record_n(struct sk_hist *h, uint64_t v, uint64_t n);

/* Adds every value of src to dst. */
void sk_hist_merge(struct sk_hist *dst, const struct sk_hist *src);

/* The value at percentile p (0..100): the smallest recorded value v such
 * that at least p % of all values are <= v, reported as the highest value
 * its bucket stands for (never above the exact max). 0 when empty.
 * p <= 0 gives min, p >= 100 gives max. */
uint64_t sk_hist_percentile(const struct sk_hist *h, double p);
/* Arithmetic mean of the recorded values (0 when empty). */
double sk_hist_mean(const struct sk_hist *h);

#ifdef __cplusplus
}
#endif

#endif
