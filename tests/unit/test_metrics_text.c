/* Unit tests: the Prometheus exposition of the server's statistics
 * (src/metrics_text.c) and the latency buckets it reports
 * (lib/server_stats.c). The program's files are compiled in here: the unit
 * tests link only the library. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "../../src/greet.c"
#include "../../src/metrics_text.c"
#include "alloc_int.h"
#include "server_int.h"

/* The text for st, NUL-terminated (freed by the caller). */
static char *text_of(const struct sk_server_stats *st)
{
    struct sk_buf b = {0};
    cr_assert_eq(metrics_text(&b, st), 0);
    cr_assert_eq(sk_buf_append(&b, "", 1), 0);
    char *s = strdup(sk_buf_head(&b));
    sk_buf_free(&b);
    return s;
}

static void assert_has(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    cr_assert(strstr(text, want) != NULL, "missing line: %s\nin:\n%s", line, text);
}

Test(metrics_text, every_family_once_with_help_and_type_before_its_samples)
{
    struct sk_server_stats st = {0};
    char *t = text_of(&st);
    static const char *const fams[][2] = {
        {"sockit_connections_open", "gauge"},
        {"sockit_connections_total", "counter"},
        {"sockit_connections_refused_total", "counter"},
        {"sockit_messages_total", "counter"},
        {"sockit_datagrams_total", "counter"},
        {"sockit_bytes_received_total", "counter"},
        {"sockit_bytes_sent_total", "counter"},
        {"sockit_proxy_header_errors_total", "counter"},
        {"sockit_sessions_closed_total", "counter"},
        {"sockit_reply_latency_seconds", "histogram"},
        {"sockit_tls_handshakes_total", "counter"},
    };
    for (size_t i = 0; i < sizeof fams / sizeof fams[0]; i++) {
        char type[128], help[128];
        snprintf(type, sizeof type, "# TYPE %s %s\n", fams[i][0], fams[i][1]);
        snprintf(help, sizeof help, "# HELP %s ", fams[i][0]);
        const char *h = strstr(t, help), *ty = strstr(t, type);
        cr_assert(h && ty && h < ty, "%s: HELP then TYPE", fams[i][0]);
        cr_assert_null(strstr(ty + 1, type), "%s: one TYPE line", fams[i][0]);
        /* Its first sample follows its TYPE line at once. */
        const char *sample = ty + strlen(type);
        cr_assert_eq(strncmp(sample, fams[i][0], strlen(fams[i][0])), 0, "%s", fams[i][0]);
    }
    cr_assert_eq(t[strlen(t) - 1], '\n');
    free(t);
}

Test(metrics_text, plain_values)
{
    struct sk_server_stats st = {
        .open = 3, .conns = 10, .refused = 2, .msgs = 42, .datagrams = 7, .bytes_in = 1000,
        .bytes_out = UINT64_MAX, .proxy_errors = 5, .tls_ok = 8, .tls_failed = 1,
    };
    char *t = text_of(&st);
    assert_has(t, "sockit_connections_open 3");
    assert_has(t, "sockit_connections_total 10");
    assert_has(t, "sockit_connections_refused_total 2");
    assert_has(t, "sockit_messages_total 42");
    assert_has(t, "sockit_datagrams_total 7");
    assert_has(t, "sockit_bytes_received_total 1000");
    assert_has(t, "sockit_bytes_sent_total 18446744073709551615");
    assert_has(t, "sockit_proxy_header_errors_total 5");
    assert_has(t, "sockit_tls_handshakes_total{result=\"ok\"} 8");
    assert_has(t, "sockit_tls_handshakes_total{result=\"failed\"} 1");
    free(t);
}

Test(metrics_text, closes_by_the_log_reason_names)
{
    struct sk_server_stats st = {0};
    st.closed[SK_CLOSE_END] = 4;
    st.closed[SK_CLOSE_EOF] = 3;
    st.closed[SK_CLOSE_TLS] = 2;
    st.closed[SK_CLOSE_IDLE] = 1;
    char *t = text_of(&st);
    assert_has(t, "sockit_sessions_closed_total{reason=\"exit\"} 4");
    assert_has(t, "sockit_sessions_closed_total{reason=\"eof\"} 3");
    assert_has(t, "sockit_sessions_closed_total{reason=\"tls-error\"} 2");
    assert_has(t, "sockit_sessions_closed_total{reason=\"idle-timeout\"} 1");
    assert_has(t, "sockit_sessions_closed_total{reason=\"reset\"} 0");
    assert_has(t, "sockit_sessions_closed_total{reason=\"message-too-long\"} 0");
    assert_has(t, "sockit_sessions_closed_total{reason=\"handshake-timeout\"} 0");
    cr_assert_null(strstr(t, "reason=\"end\""));
    cr_assert_null(strstr(t, "connect-timeout"), "a client-side reason only");
    free(t);
}

Test(metrics_text, histogram_is_cumulative_and_ends_with_inf_sum_count)
{
    struct sk_server_stats st = {0};
    st.latency[0] = 1;                         /* <= 50 us */
    st.latency[3] = 2;                         /* <= 500 us */
    st.latency[SK_SERVER_LATENCY_BUCKETS] = 4; /* over 1 s */
    st.latency_sum_ns = 9 * UINT64_C(1000000000) + 5000; /* 9.000005 s */
    char *t = text_of(&st);
    const char *want =
        "# TYPE sockit_reply_latency_seconds histogram\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.00005\"} 1\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.0001\"} 1\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.00025\"} 1\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.0005\"} 3\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.001\"} 3\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.0025\"} 3\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.005\"} 3\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.01\"} 3\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.025\"} 3\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.05\"} 3\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.1\"} 3\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.25\"} 3\n"
        "sockit_reply_latency_seconds_bucket{le=\"0.5\"} 3\n"
        "sockit_reply_latency_seconds_bucket{le=\"1\"} 3\n"
        "sockit_reply_latency_seconds_bucket{le=\"+Inf\"} 7\n"
        "sockit_reply_latency_seconds_sum 9.000005000\n"
        "sockit_reply_latency_seconds_count 7\n";
    cr_assert(strstr(t, want) != NULL, "got:\n%s", t);
    free(t);
}

Test(metrics_text, numbers_ignore_the_locale)
{
    /* The program sets the locale: a decimal comma must never appear. */
    struct sk_server_stats st = {.latency_sum_ns = 1500000000};
    char *t = text_of(&st);
    assert_has(t, "sockit_reply_latency_seconds_sum 1.500000000");
    /* No sample line has a comma (its labels are one each, its value a number). */
    for (const char *line = t; *line; line = strchr(line, '\n') + 1) {
        size_t len = (size_t)(strchr(line, '\n') - line);
        if (*line != '#')
            cr_assert_null(memchr(line, ',', len), "%.*s", (int)len, line);
    }
    free(t);
}

Test(metrics_text, out_of_memory_is_an_error)
{
    struct sk_server_stats st = {0};
    for (unsigned long k = 1; k < 4; k++) {
        struct sk_buf b = {0};
        sk__alloc_fail_at(k);
        int rc = metrics_text(&b, &st);
        sk__alloc_fail_at(0);
        sk_buf_free(&b);
        if (rc == 0)
            break; /* fewer allocations than k: every failure was seen */
        cr_assert_eq(rc, SK_ERR(ENOMEM));
    }
}

Test(server_stats, latency_buckets_are_upper_inclusive)
{
    cr_assert_eq(sk_server_latency_bound_us(0), 50);
    cr_assert_eq(sk_server_latency_bound_us(SK_SERVER_LATENCY_BUCKETS - 1), 1000000);
    cr_assert_eq(sk_server_latency_bound_us(SK_SERVER_LATENCY_BUCKETS), 0);
    struct sk__counters c = {0};
    sk__latency_record(&c, 0, 1);
    sk__latency_record(&c, 50000, 2);   /* exactly 50 us: le="0.00005" */
    sk__latency_record(&c, 50001, 1);   /* just above */
    sk__latency_record(&c, 1000000000, 1);
    sk__latency_record(&c, 1000000001, 5);
    cr_assert_eq(sk__counter_get(&c.latency[0]), 3);
    cr_assert_eq(sk__counter_get(&c.latency[1]), 1);
    cr_assert_eq(sk__counter_get(&c.latency[SK_SERVER_LATENCY_BUCKETS - 1]), 1);
    cr_assert_eq(sk__counter_get(&c.latency[SK_SERVER_LATENCY_BUCKETS]), 5);
    cr_assert_eq(sk__counter_get(&c.latency_sum_ns),
                 100000 + 50001 + 1000000000 + UINT64_C(5) * 1000000001);
}
