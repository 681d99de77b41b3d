/* sockit bench: the final report, as text or as one JSON object. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

static const char *const err_names[BERR__COUNT] = {
    [BERR_CONNECT] = "connect", [BERR_RESET] = "reset", [BERR_TIMEOUT] = "timeout",
    [BERR_PROTOCOL] = "protocol", [BERR_LOST] = "lost",
};

static const struct {
    double p;
    const char *text, *json;
} pcts[] = {
    {50, "p50", "p50"}, {90, "p90", "p90"}, {99, "p99", "p99"},
    {99.9, "p99.9", "p99_9"}, {99.99, "p99.99", "p99_99"},
};

uint64_t bench_errors_total(const struct bench_stats *st)
{
    uint64_t n = 0;
    for (int i = 0; i < BERR__COUNT; i++)
        n += st->errors[i];
    return n;
}

static const char *mode_name(const struct bench_opts *o)
{
    switch (o->mode) {
    case BENCH_CONNECT: return "connect";
    case BENCH_IDLE: return "idle";
    case BENCH_UDP: return "udp";
    default: return "request";
    }
}

static double throughput(const struct bench_result *r)
{
    return r->elapsed_s > 0 ? (double)r->st.replies / r->elapsed_s : 0;
}

/* ---- text ---- */

static void text_latency(const char *what, const struct sk_hist *h)
{
    if (h->total == 0)
        return;
    printf("  %-13s min %.1f  mean %.1f", what, (double)h->min / 1e3, sk_hist_mean(h) / 1e3);
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
        printf("  %s %.1f", pcts[i].text, (double)sk_hist_percentile(h, pcts[i].p) / 1e3);
    printf("  max %.1f  (us)\n", (double)h->max / 1e3);
}

static void text_errors(const struct bench_stats *st)
{
    uint64_t total = bench_errors_total(st);
    printf("  errors        %llu", (unsigned long long)total);
    if (total) {
        const char *sep = " (";
        for (int i = 0; i < BERR__COUNT; i++)
            if (st->errors[i]) {
                printf("%s%s %llu", sep, err_names[i], (unsigned long long)st->errors[i]);
                sep = ", ";
            }
        printf(")");
    }
    printf("\n");
}

void bench_report_text(const struct bench_opts *o, const struct bench_result *r)
{
    printf("sockit bench %s: %s mode, %s, %u connection%s, %u thread%s", o->target,
           mode_name(o), o->raw ? "raw" : sk_framing_name(o->framing), o->conns,
           o->conns == 1 ? "" : "s", o->threads, o->threads == 1 ? "" : "s");
    if (o->mode == BENCH_REQUEST || o->mode == BENCH_UDP)
        printf(", pipeline %u", o->depth);
    printf("\n");
    if (o->mode == BENCH_IDLE) {
        printf("  open          %llu of %u connections in %.3f s, held %.3f s\n",
               (unsigned long long)r->st.open, o->conns, r->open_s, r->hold_s);
        if (o->probe) /* --probe: the only requests of idle mode */
            printf("  probe         %llu of %u answered\n", (unsigned long long)r->st.replies,
                   o->probe);
        text_errors(&r->st);
        text_latency(o->probe ? "probe rtt" : "connect+greet", &r->lat);
        return;
    }
    if (o->rate > 0)
        printf("  open loop at %.1f req/s: latency counts from each request's intended "
               "send time\n", o->rate);
    else if (o->mode != BENCH_CONNECT)
        printf("  closed loop: a connection sends again only after a reply, so latency is "
               "service time\n  (a stalled server also stalls the load; use --rate for "
               "open-loop latency)\n");
    printf("  measured      %.3f s", r->elapsed_s);
    if (o->warmup_s > 0)
        printf(" (after %.3g s of warm-up, excluded)", o->warmup_s);
    if (r->interrupted)
        printf(" (interrupted)");
    printf("\n");
    const char *unit = o->mode == BENCH_CONNECT ? "connects" : "replies";
    printf("  %-13s %llu of %llu sent\n", unit, (unsigned long long)r->st.replies,
           (unsigned long long)r->st.sent);
    text_errors(&r->st);
    printf("  throughput    %.1f %s/s\n", throughput(r), unit);
    text_latency(o->mode == BENCH_CONNECT ? "connect+greet" : "latency", &r->lat);
    if (o->rate > 0) {
        text_latency("service time", &r->svc);
        if (throughput(r) < 0.97 * o->rate)
            printf("  WARNING: target rate %.1f/s not achieved (%.1f/s): the server (or the "
                   "generator) is saturated; latency above includes the queueing\n",
                   o->rate, throughput(r));
    }
}

/* ---- JSON ---- */

static void json_str(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c); /* bytes, not text: each byte as one code point */
        else
            putchar(c);
    }
    putchar('"');
}

static void json_hist(const char *name, const struct sk_hist *h)
{
    printf(",\"%s\":{\"count\":%llu,\"min\":%.3f,\"mean\":%.3f", name,
           (unsigned long long)h->total, h->total ? (double)h->min / 1e3 : 0.0,
           sk_hist_mean(h) / 1e3);
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
        printf(",\"%s\":%.3f", pcts[i].json, (double)sk_hist_percentile(h, pcts[i].p) / 1e3);
    printf(",\"max\":%.3f}", (double)h->max / 1e3);
}

static void json_settings(const struct bench_opts *o)
{
    printf("\"settings\":{\"target\":");
    json_str(o->target, strlen(o->target));
    printf(",\"mode\":\"%s\",\"protocol\":\"%s\",\"framing\":\"%s\",\"connections\":%u,"
           "\"threads\":%u,\"pipeline\":%u,\"loop\":\"%s\"",
           mode_name(o), o->raw ? "raw" : "greeting", sk_framing_name(o->framing), o->conns,
           o->threads, o->depth, o->rate > 0 ? "open" : "closed");
    if (o->requests)
        printf(",\"requests\":%llu,\"duration_s\":null", (unsigned long long)o->requests);
    else
        printf(",\"requests\":null,\"duration_s\":%.3f",
               o->mode == BENCH_IDLE ? o->idle_s : o->duration_s);
    printf(",\"warmup_s\":%.3f,\"timeout_s\":%.3f", o->warmup_s, o->timeout_s);
    if (o->rate > 0)
        printf(",\"rate\":%.3f", o->rate);
    else
        printf(",\"rate\":null");
    printf(",\"message\":");
    if (o->raw)
        printf("null");
    else
        json_str(o->message, strlen(o->message));
    printf(",\"request\":");
    json_str(o->req, o->req_len);
    printf("}");
}

void bench_report_json(const struct bench_opts *o, const struct bench_result *r)
{
    printf("{\"tool\":\"sockit bench\",\"version\":1,");
    json_settings(o);
    printf(",\"interrupted\":%s,\"gave_up\":%s,\"elapsed_s\":%.6f,\"sent\":%llu,\"replies\":%llu,"
           "\"errors\":%llu,\"error_classes\":{",
           r->interrupted ? "true" : "false", r->gave_up ? "true" : "false", r->elapsed_s, (unsigned long long)r->st.sent,
           (unsigned long long)r->st.replies, (unsigned long long)bench_errors_total(&r->st));
    for (int i = 0; i < BERR__COUNT; i++)
        printf("%s\"%s\":%llu", i ? "," : "", err_names[i], (unsigned long long)r->st.errors[i]);
    printf("},\"throughput\":%.3f,\"connects\":%llu,\"bytes_sent\":%llu,\"bytes_received\":%llu",
           throughput(r), (unsigned long long)r->st.connects, (unsigned long long)r->st.bytes_out,
           (unsigned long long)r->st.bytes_in);
    json_hist("latency_us", &r->lat);
    if (o->rate > 0) {
        json_hist("service_time_us", &r->svc);
        printf(",\"rate_achieved\":%s", throughput(r) >= 0.97 * o->rate ? "true" : "false");
    }
    if (o->mode == BENCH_IDLE)
        printf(",\"idle\":{\"open\":%llu,\"open_s\":%.6f,\"held_s\":%.6f}",
               (unsigned long long)r->st.open, r->open_s, r->hold_s);
    printf("}\n");
}
