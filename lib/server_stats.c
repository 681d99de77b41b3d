/* The server's statistics: per-worker counter blocks (server_int.h), the
 * reply-latency buckets, and their sum on read (sk_server_stats_read, the
 * summary of sk_server_wait). One way to count: the summary and a metrics
 * scrape read the same counters. */
#include <string.h>

#include "server_int.h"
#include "sockit/err.h"

/* Prometheus' usual latency buckets from 50 us to 1 s, in nanoseconds
 * (the unit recorded: no conversion per reply). */
#define US 1000u
static const uint64_t bounds_ns[SK_SERVER_LATENCY_BUCKETS] = {
    50 * US,     100 * US,    250 * US,    500 * US,     1000 * US,    2500 * US,    5000 * US,
    10000 * US,  25000 * US,  50000 * US,  100000 * US,  250000 * US,  500000 * US,  1000000 * US,
};

unsigned sk_server_latency_bound_us(size_t i)
{
    return i < SK_SERVER_LATENCY_BUCKETS ? (unsigned)(bounds_ns[i] / US) : 0;
}

void sk__latency_record(struct sk__counters *c, uint64_t latency_ns, uint64_t n)
{
    /* Most replies fall in the first buckets: a linear scan ends early. */
    size_t i = 0;
    while (i < SK_SERVER_LATENCY_BUCKETS && latency_ns > bounds_ns[i])
        i++;
    sk__count(&c->latency[i], n);
    sk__count(&c->latency_sum_ns, latency_ns * n);
}

static void add_block(struct sk_server_stats *st, struct sk__counters *c)
{
    st->conns += sk__counter_get(&c->conns);
    st->refused += sk__counter_get(&c->refused);
    st->msgs += sk__counter_get(&c->msgs);
    st->bytes_in += sk__counter_get(&c->bytes.in);
    st->bytes_out += sk__counter_get(&c->bytes.out);
    st->datagrams += sk__counter_get(&c->datagrams);
    st->proxy_errors += sk__counter_get(&c->proxy_errors);
    st->open += sk__counter_get(&c->open);
    st->tls_ok += sk__counter_get(&c->tls_ok);
    st->tls_failed += sk__counter_get(&c->tls_failed);
    for (size_t r = 0; r < SK_SERVER_CLOSE_REASONS; r++)
        st->closed[r] += sk__counter_get(&c->closed[r]);
    for (size_t b = 0; b <= SK_SERVER_LATENCY_BUCKETS; b++)
        st->latency[b] += sk__counter_get(&c->latency[b]);
    st->latency_sum_ns += sk__counter_get(&c->latency_sum_ns);
}

int sk_server_stats_read(struct sk_server *srv, struct sk_server_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    for (unsigned i = 0; i < srv->cfg.workers; i++)
        add_block(stats, &srv->counters[i]);
    return 0;
}
