/* Unit tests: the log-linear histogram behind sockit bench's percentiles. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "hist_int.h"
#include "sockit.h"

/* Relative error the histogram promises: one bucket width, under 1/1024. */
#define REL_ERR (1.0 / 1024.0)

static void assert_close(uint64_t got, double want, const char *what)
{
    double err = __builtin_fabs((double)got - want) / want;
    cr_assert(err <= REL_ERR + 1e-9, "%s: got %llu, want %.1f (rel. error %.6f)", what,
              (unsigned long long)got, want, err);
}

Test(hist, empty)
{
    struct sk_hist h;
    cr_assert_eq(sk_hist_init(&h), 0);
    cr_assert_eq(sk_hist_percentile(&h, 50), 0);
    cr_assert_eq(sk_hist_mean(&h), 0.0);
    cr_assert_eq(h.total, 0);
    sk_hist_free(&h);
    sk_hist_free(&h); /* twice is harmless */
}

Test(hist, small_values_exact)
{
    struct sk_hist h;
    cr_assert_eq(sk_hist_init(&h), 0);
    for (uint64_t v = 1; v <= 100; v++)
        sk_hist_record(&h, v);
    cr_assert_eq(sk_hist_percentile(&h, 50), 50);
    cr_assert_eq(sk_hist_percentile(&h, 90), 90);
    cr_assert_eq(sk_hist_percentile(&h, 99), 99);
    cr_assert_eq(sk_hist_percentile(&h, 99.5), 100);
    cr_assert_eq(sk_hist_percentile(&h, 0), 1);
    cr_assert_eq(sk_hist_percentile(&h, 100), 100);
    cr_assert_eq(h.min, 1);
    cr_assert_eq(h.max, 100);
    cr_assert_float_eq(sk_hist_mean(&h), 50.5, 1e-9);
    sk_hist_free(&h);
}

Test(hist, buckets_cover_every_value_once)
{
    /* Consecutive buckets tile the value range with no gap or overlap,
     * and every bucket's width stays within the promised error. */
    for (size_t i = 1; i < sk__hist_index(SK_HIST_MAX); i++) {
        cr_assert_eq(sk__hist_bucket_low(i), sk__hist_bucket_high(i - 1) + 1, "bucket %zu", i);
        uint64_t lo = sk__hist_bucket_low(i), hi = sk__hist_bucket_high(i);
        cr_assert((double)(hi - lo) <= (double)lo * REL_ERR, "bucket %zu too wide", i);
        cr_assert_eq(sk__hist_index(lo), i);
        cr_assert_eq(sk__hist_index(hi), i);
    }
    cr_assert_eq(sk__hist_index(SK_HIST_MAX + 1), sk__hist_index(SK_HIST_MAX));
}

Test(hist, uniform_distribution_percentiles)
{
    /* 1..1,000,000 ns, each once: percentile p is p * 10,000 ns. */
    struct sk_hist h;
    cr_assert_eq(sk_hist_init(&h), 0);
    for (uint64_t v = 1; v <= 1000000; v++)
        sk_hist_record(&h, v * 1000);
    const double ps[] = {10, 50, 90, 99, 99.9, 99.99};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        char what[32];
        snprintf(what, sizeof what, "p%g", ps[i]);
        assert_close(sk_hist_percentile(&h, ps[i]), ps[i] * 10000.0 * 1000.0, what);
    }
    cr_assert_eq(sk_hist_percentile(&h, 100), 1000000000ull);
    cr_assert_float_eq(sk_hist_mean(&h), 500000500.0, 1.0);
    sk_hist_free(&h);
}

Test(hist, bimodal_latency_percentiles)
{
    /* A latency-like mix: 990,000 fast replies spread evenly over
     * [100 us, 200 us) and 10,000 slow ones over [10 ms, 20 ms). The value of
     * rank r (1-based) is then known exactly: fast(r) below, slow(r) above. */
    struct sk_hist h;
    cr_assert_eq(sk_hist_init(&h), 0);
    for (uint64_t k = 0; k < 990000; k++)
        sk_hist_record(&h, 100000 + k * 100000 / 990000);
    for (uint64_t k = 0; k < 10000; k++)
        sk_hist_record(&h, 10000000 + k * 10000000 / 10000);
#define FAST(r) (100000.0 + (double)(((r)-1) * 100000ull / 990000))
#define SLOW(r) (10000000.0 + (double)(((r)-990001) * 1000ull))
    assert_close(sk_hist_percentile(&h, 50), FAST(500000ull), "p50");     /* ~150.5 us */
    assert_close(sk_hist_percentile(&h, 90), FAST(900000ull), "p90");     /* ~190.9 us */
    assert_close(sk_hist_percentile(&h, 99), FAST(990000ull), "p99");     /* ~200 us */
    assert_close(sk_hist_percentile(&h, 99.5), SLOW(995000ull), "p99.5"); /* ~15 ms */
    assert_close(sk_hist_percentile(&h, 99.99), SLOW(999900ull), "p99.99");
    cr_assert_eq(sk_hist_percentile(&h, 100), 19999000); /* max is exact */
#undef FAST
#undef SLOW
    cr_assert_eq(h.min, 100000);
    sk_hist_free(&h);
}

Test(hist, merge_equals_recording_together)
{
    struct sk_hist a, b, all;
    cr_assert_eq(sk_hist_init(&a), 0);
    cr_assert_eq(sk_hist_init(&b), 0);
    cr_assert_eq(sk_hist_init(&all), 0);
    srand(42);
    for (int i = 0; i < 50000; i++) {
        uint64_t v = (uint64_t)rand() % 10000000;
        sk_hist_record(i % 3 ? &a : &b, v);
        sk_hist_record(&all, v);
    }
    sk_hist_merge(&a, &b);
    cr_assert_eq(a.total, all.total);
    cr_assert_eq(a.min, all.min);
    cr_assert_eq(a.max, all.max);
    for (double p = 1; p < 100; p += 7.5)
        cr_assert_eq(sk_hist_percentile(&a, p), sk_hist_percentile(&all, p), "p%g", p);
    sk_hist_reset(&a);
    cr_assert_eq(a.total, 0);
    cr_assert_eq(sk_hist_percentile(&a, 50), 0);
    sk_hist_free(&a);
    sk_hist_free(&b);
    sk_hist_free(&all);
}

Test(hist, saturates_above_max)
{
    struct sk_hist h;
    cr_assert_eq(sk_hist_init(&h), 0);
    sk_hist_record(&h, UINT64_MAX);
    sk_hist_record_n(&h, 5, 3);
    cr_assert_eq(h.total, 4);
    cr_assert_eq(h.saturated, 1);
    cr_assert_eq(h.max, SK_HIST_MAX);
    cr_assert_eq(sk_hist_percentile(&h, 75), 5);
    cr_assert_eq(sk_hist_percentile(&h, 99), SK_HIST_MAX);
    sk_hist_free(&h);
}
