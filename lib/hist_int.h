/* The histogram's bucket arithmetic, for lib/hist.c and its unit test;
 * never installed, not exported from the shared library. */
#ifndef SOCKIT_HIST_INT_H
#define SOCKIT_HIST_INT_H

#include <stddef.h>
#include <stdint.h>

/* The bucket of v, and the lowest and highest value a bucket stands for. */
size_t sk__hist_index(uint64_t v);
uint64_t sk__hist_bucket_low(size_t idx);
uint64_t sk__hist_bucket_high(size_t idx);

#endif
