/* lib/ allocations, with a test hook that fails the k-th one. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"

static atomic_ulong calls;   /* allocations since the hook was last set */
static atomic_ulong fail_at; /* 0: never fail */

/* One relaxed load on the normal path: the hook costs nothing measurable. */
static int injected_failure(void)
{
    unsigned long k = atomic_load_explicit(&fail_at, memory_order_relaxed);
    unsigned long n = atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed) + 1;
    if (k == 0 || n != k)
        return 0;
    errno = ENOMEM;
    return 1;
}

void *sk__malloc(size_t n)
{
    return injected_failure() ? NULL : malloc(n);
}

void *sk__calloc(size_t n, size_t size)
{
    return injected_failure() ? NULL : calloc(n, size);
}

void *sk__realloc(void *p, size_t n)
{
    return injected_failure() ? NULL : realloc(p, n);
}

char *sk__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = sk__malloc(n);
    return p ? memcpy(p, s, n) : NULL;
}

void sk__alloc_fail_at(unsigned long k)
{
    atomic_store(&fail_at, 0);
    atomic_store(&calls, 0);
    atomic_store(&fail_at, k);
}

unsigned long sk__alloc_count(void)
{
    return atomic_load(&calls);
}
