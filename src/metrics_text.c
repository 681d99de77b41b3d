/* The Prometheus text exposition of the server's statistics.
 *
 * Format 0.0.4: for each metric family "# HELP name text" and "# TYPE name
 * counter|gauge|histogram", then one line per sample, "name{labels} value".
 * Counters end in _total. The histogram has cumulative _bucket{le="..."}
 * samples ending with le="+Inf", then _sum and _count (= the +Inf bucket).
 * Every value is an integer, or seconds written from integers: printf's
 * %f would follow LC_NUMERIC, and the program sets the locale. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "greet.h"
#include "metrics_text.h"

/* The longest line written: a name, a label and a 20-digit value. */
#define TEXT_LINE_MAX 256

static int put(struct sk_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int put(struct sk_buf *out, const char *fmt, ...)
{
    char *p = sk_buf_reserve(out, TEXT_LINE_MAX);
    if (!p)
        return SK_ERR(ENOMEM);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p, TEXT_LINE_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= TEXT_LINE_MAX) /* the names are ours: cannot happen */
        n = 0;
    sk_buf_commit(out, (size_t)n);
    return 0;
}

static int family(struct sk_buf *out, const char *name, const char *type, const char *help)
{
    return put(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int one(struct sk_buf *out, const char *name, const char *type, const char *help,
               uint64_t v)
{
    int rc = family(out, name, type, help);
    return rc < 0 ? rc : put(out, "%s %llu\n", name, (unsigned long long)v);
}

/* us microseconds as seconds, shortest form: 50 -> "0.00005", 1000000 -> "1". */
static void seconds_us(unsigned us, char *buf, size_t len)
{
    if (us % 1000000 == 0) {
        snprintf(buf, len, "%u", us / 1000000);
        return;
    }
    int n = snprintf(buf, len, "%u.%06u", us / 1000000, us % 1000000);
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
}

static int closed(struct sk_buf *out, const struct sk_server_stats *st)
{
    static const char name[] = "sockit_sessions_closed_total";
    int rc = family(out, name, "counter", "Sessions closed, by the reason of their close log line.");
    for (size_t r = 0; rc == 0 && r < SK_SERVER_CLOSE_REASONS; r++)
        rc = put(out, "%s{reason=\"%s\"} %llu\n", name,
                 greet_close_reason((enum sk_close_reason)r), (unsigned long long)st->closed[r]);
    return rc;
}

static int latency(struct sk_buf *out, const struct sk_server_stats *st)
{
    static const char name[] = "sockit_reply_latency_seconds";
    int rc = family(out, name, "histogram",
                    "Time from the read of a message to the write of its reply.");
    uint64_t cum = 0;
    for (size_t i = 0; rc == 0 && i < SK_SERVER_LATENCY_BUCKETS; i++) {
        char le[32];
        seconds_us(sk_server_latency_bound_us(i), le, sizeof le);
        cum += st->latency[i];
        rc = put(out, "%s_bucket{le=\"%s\"} %llu\n", name, le, (unsigned long long)cum);
    }
    cum += st->latency[SK_SERVER_LATENCY_BUCKETS];
    if (rc == 0)
        rc = put(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %llu.%09llu\n%s_count %llu\n", name,
                 (unsigned long long)cum, name,
                 (unsigned long long)(st->latency_sum_ns / 1000000000u),
                 (unsigned long long)(st->latency_sum_ns % 1000000000u), name,
                 (unsigned long long)cum);
    return rc;
}

static int tls(struct sk_buf *out, const struct sk_server_stats *st)
{
    static const char name[] = "sockit_tls_handshakes_total";
    int rc = family(out, name, "counter", "TLS handshakes, by result (failed: closed before done).");
    if (rc == 0)
        rc = put(out, "%s{result=\"ok\"} %llu\n%s{result=\"failed\"} %llu\n", name,
                 (unsigned long long)st->tls_ok, name, (unsigned long long)st->tls_failed);
    return rc;
}

int metrics_text(struct sk_buf *out, const struct sk_server_stats *st)
{
    const struct {
        const char *name, *type, *help;
        uint64_t v;
    } plain[] = {
        {"sockit_connections_open", "gauge", "Sessions open now (opened, not yet closed).",
         st->open},
        {"sockit_connections_total", "counter",
         "Sessions opened (after their PROXY header and TLS handshake, if any).",
         st->conns},
        {"sockit_connections_refused_total", "counter", "Connections refused over --max-conns.",
         st->refused},
        {"sockit_messages_total", "counter", "Messages handled.",
         st->msgs},
        {"sockit_datagrams_total", "counter", "UDP datagrams answered.",
         st->datagrams},
        {"sockit_bytes_received_total", "counter",
         "Bytes received: TCP (decrypted, with TLS) and UDP payload.",
         st->bytes_in},
        {"sockit_bytes_sent_total", "counter", "Bytes sent: TCP (before TLS) and UDP payload.",
         st->bytes_out},
        {"sockit_proxy_header_errors_total", "counter",
         "Connections closed without a valid PROXY protocol header.",
         st->proxy_errors},
    };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof plain / sizeof plain[0]; i++) {
        rc = one(out, plain[i].name, plain[i].type, plain[i].help, plain[i].v);
    }
    if (rc == 0)
        rc = closed(out, st);
    if (rc == 0)
        rc = latency(out, st);
    if (rc == 0)
        rc = tls(out, st);
    return rc;
}
