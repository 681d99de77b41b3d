/* Counters that one thread writes and any thread may read while it does
 * (the server's per-worker statistics, read by a metrics scrape).
 *
 * Each counter has a single writer: the thread that owns it (a worker, for
 * its own block). An increment is therefore a relaxed load and a relaxed
 * store, not a read-modify-write: on x86-64 that compiles to the same
 * plain add as a non-atomic counter, where atomic_fetch_add would be a
 * locked instruction (about 20 cycles, several times per message). The
 * atomic type still makes a concurrent read well defined: a reader sees
 * some recent value, never a torn one. Two threads must never count into
 * the same counter. */
#ifndef SOCKIT_COUNTER_INT_H
#define SOCKIT_COUNTER_INT_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t sk__counter;

/* Adds n (the owner's thread only). */
static inline void sk__count(sk__counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* Subtracts n (a gauge going down; the owner's thread only). */
static inline void sk__uncount(sk__counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n,
                          memory_order_relaxed);
}

/* The current value, from any thread. */
static inline uint64_t sk__counter_get(sk__counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Bytes a stream group read and wrote (its owner may point it elsewhere:
 * the server counts into its worker's block). */
struct sk__byte_count {
    sk__counter in, out;
};

#endif
