/* Allocation inside libsockit: every lib/ allocation goes through these, so
 * a unit test can make the k-th one fail and walk every out-of-memory path.
 * Memory from them is released with plain free(). */
#ifndef SOCKIT_ALLOC_INT_H
#define SOCKIT_ALLOC_INT_H

#include <stddef.h>

void *sk__malloc(size_t n);
void *sk__calloc(size_t n, size_t size);
void *sk__realloc(void *p, size_t n);
char *sk__strdup(const char *s);

/* Test hook: from now on, the k-th allocation (k >= 1, counted across
 * threads) fails with ENOMEM, and that one only; k = 0 disarms it. Also
 * resets the count sk__alloc_count() returns: allocations made since. */
void sk__alloc_fail_at(unsigned long k);
unsigned long sk__alloc_count(void);

#endif
