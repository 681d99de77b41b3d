/* sockit bench merge: results of several bench runs (their --json), from
 * one or several hosts, combined exactly: counts summed, histograms added
 * bucket by bucket (so percentiles are those of the union of the samples),
 * windows lined up on the wall clock. */
#ifndef SOCKIT_BENCH_MERGE_H
#define SOCKIT_BENCH_MERGE_H

#include <stddef.h>

#include "bench.h"

/* One result read back, or the merge of several. Zero-fill to start; the
 * strings and histograms are owned (merge_result_free). */
struct merge_result {
    struct bench_opts o; /* the settings: o.target NULL when they differ */
    struct bench_result r;
    char *target, *message; /* o.target, o.message point here */
};

/* Reads one result from text[0..len) into a zero-filled m. Returns 0, or
 * -1 with a one-line reason in err (m is then freeable). */
int merge_parse(const char *text, size_t len, struct merge_result *m, char *err, size_t errlen);
/* Adds src to acc (acc zero-filled: becomes a copy). Returns 0, or -1 with
 * a reason in err (acc unchanged but for what it held before). */
int merge_add(struct merge_result *acc, const struct merge_result *src, char *err, size_t errlen);
void merge_result_free(struct merge_result *m);

#endif
