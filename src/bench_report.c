/* sockit bench: the final report, as text or as one JSON object. The JSON
 * carries each latency histogram itself (its non-empty buckets) and the
 * measured window on the wall clock, so that bench_merge.c can combine
 * results from several generators exactly. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "hist_int.h" /* lib/'s bucket arithmetic: the CLI links the static archive */

const char *const bench_err_names[BERR__COUNT] = {
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

const char *bench_mode_name(enum bench_mode m)
{
    switch (m) {
    case BENCH_CONNECT: return "connect";
    case BENCH_IDLE: return "idle";
    case BENCH_UDP: return "udp";
    default: return "request";
    }
}

static double union_rate(const struct bench_result *r)
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
                printf("%s%s %llu", sep, bench_err_names[i], (unsigned long long)st->errors[i]);
                sep = ", ";
            }
        printf(")");
    }
    printf("\n");
}

/* Merged results: how their windows line up, and what the throughput means. */
static void text_sources(const char *unit, const struct bench_result *r)
{
    double common = r->common_end_us > r->common_start_us
                        ? (double)(r->common_end_us - r->common_start_us) / 1e6 : 0;
    printf("  merged        %" PRIu64 " results; windows: union %.3f s, common %.3f s%s\n",
           r->sources, r->elapsed_s, common,
           common < 0.5 * r->elapsed_s ? " (little overlap: the summed throughput overstates "
                                         "the load at any one time)" : "");
    printf("  throughput    %.1f %s/s (the sum of each result's; %.1f/s over the union)\n",
           r->throughput, unit, union_rate(r));
}

void bench_report_text(const struct bench_opts *o, const struct bench_result *r)
{
    if (r->sources > 1)
        printf("sockit bench merge of %" PRIu64 " results, ", r->sources);
    else
        printf("sockit bench ");
    printf("%s: %s mode, %s, %u connection%s, %u thread%s",
           o->target ? o->target : "several targets", bench_mode_name(o->mode),
           o->raw ? "raw" : sk_framing_name(o->framing), o->conns, o->conns == 1 ? "" : "s",
           o->threads, o->threads == 1 ? "" : "s");
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
    if (r->st.sessions_failed)
        printf("  sessions      %" PRIu64 " failed of %" PRIu64 " opened (reconnected)\n",
               r->st.sessions_failed, r->st.connects);
    if (r->st.reconnects)
        printf("  reconnects    %" PRIu64 " (sessions a draining server ended; their unanswered "
               "requests sent again)\n",
               r->st.reconnects);
    if (o->tls.on)
        printf("  tls           %" PRIu64 " handshakes, %" PRIu64 " resumed%s\n", r->st.connects,
               r->st.resumed, o->tls_resume ? "" : " (no --tls-resume)");
    if (r->sources > 1)
        text_sources(unit, r);
    else
        printf("  throughput    %.1f %s/s\n", r->throughput, unit);
    text_latency(o->mode == BENCH_CONNECT ? "connect+greet" : "latency", &r->lat);
    if (o->rate > 0) {
        text_latency("service time", &r->svc);
        if (r->throughput < 0.97 * o->rate)
            printf("  WARNING: target rate %.1f/s not achieved (%.1f/s): the server (or the "
                   "generator) is saturated; latency above includes the queueing\n",
                   o->rate, r->throughput);
    }
}

/* ---- JSON ---- */

static void json_str(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(f, "\\u%04x", c); /* bytes, not text: each byte as one code point */
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* The histogram itself: its layout, exact extremes and sum, and each
 * non-empty bucket as [lowest value in ns, count]. */
static void json_buckets(FILE *f, const struct sk_hist *h)
{
    fprintf(f, ",\"histogram\":{\"unit\":\"ns\",\"sub_bits\":%u,\"max_bits\":%u,"
            "\"min_ns\":%" PRIu64 ",\"max_ns\":%" PRIu64 ",\"sum_ns\":%.0Lf,"
            "\"saturated\":%" PRIu64 ",\"buckets\":[",
            SK_HIST_SUB_BITS, SK_HIST_MAX_BITS, h->total ? h->min : 0, h->max, h->sum,
            h->saturated);
    const char *sep = "";
    for (size_t i = 0; h->total && i < h->nbuckets; i++)
        if (h->counts[i]) {
            fprintf(f, "%s[%" PRIu64 ",%" PRIu64 "]", sep, sk__hist_bucket_low(i), h->counts[i]);
            sep = ",";
        }
    fprintf(f, "]}");
}

static void json_hist(FILE *f, const char *name, const struct sk_hist *h)
{
    fprintf(f, ",\"%s\":{\"count\":%" PRIu64 ",\"min\":%.3f,\"mean\":%.3f", name, h->total,
            h->total ? (double)h->min / 1e3 : 0.0, sk_hist_mean(h) / 1e3);
    for (size_t i = 0; i < sizeof pcts / sizeof pcts[0]; i++)
        fprintf(f, ",\"%s\":%.3f", pcts[i].json, (double)sk_hist_percentile(h, pcts[i].p) / 1e3);
    fprintf(f, ",\"max\":%.3f", (double)h->max / 1e3);
    json_buckets(f, h);
    fputc('}', f);
}

static void json_settings(FILE *f, const struct bench_opts *o)
{
    fprintf(f, "\"settings\":{\"target\":");
    if (o->target)
        json_str(f, o->target, strlen(o->target));
    else
        fprintf(f, "null");
    fprintf(f, ",\"mode\":\"%s\",\"protocol\":\"%s\",\"framing\":\"%s\",\"connections\":%u,"
            "\"threads\":%u,\"pipeline\":%u,\"loop\":\"%s\"",
            bench_mode_name(o->mode), o->raw ? "raw" : "greeting", sk_framing_name(o->framing), o->conns,
            o->threads, o->depth, o->rate > 0 ? "open" : "closed");
    if (o->requests)
        fprintf(f, ",\"requests\":%" PRIu64 ",\"duration_s\":null", o->requests);
    else
        fprintf(f, ",\"requests\":null,\"duration_s\":%.3f",
                o->mode == BENCH_IDLE ? o->idle_s : o->duration_s);
    fprintf(f, ",\"warmup_s\":%.3f,\"timeout_s\":%.3f", o->warmup_s, o->timeout_s);
    if (o->rate > 0)
        fprintf(f, ",\"rate\":%.3f", o->rate);
    else
        fprintf(f, ",\"rate\":null");
    fprintf(f, ",\"message\":");
    if (o->raw)
        fprintf(f, "null");
    else
        json_str(f, o->message, strlen(o->message));
    fprintf(f, ",\"request\":");
    json_str(f, o->req, o->req_len);
    if (o->tls.on)
        fprintf(f, ",\"tls\":{\"verify\":%s,\"resume\":%s}",
                o->tls.cfg.insecure ? "false" : "true", o->tls_resume ? "true" : "false");
    else
        fprintf(f, ",\"tls\":null");
    fputc('}', f);
}

void bench_report_json(FILE *f, const struct bench_opts *o, const struct bench_result *r)
{
    fprintf(f, "{\"tool\":\"sockit bench\",\"version\":1,");
    json_settings(f, o);
    fprintf(f, ",\"sources\":%" PRIu64 ",\"interrupted\":%s,\"gave_up\":%s,\"elapsed_s\":%.6f,"
            "\"start_unix_us\":%" PRId64 ",\"end_unix_us\":%" PRId64
            ",\"common_start_unix_us\":%" PRId64 ",\"common_end_unix_us\":%" PRId64
            ",\"sent\":%" PRIu64 ",\"replies\":%" PRIu64 ",\"errors\":%" PRIu64
            ",\"error_classes\":{",
            r->sources, r->interrupted ? "true" : "false", r->gave_up ? "true" : "false",
            r->elapsed_s, r->start_us, r->end_us, r->common_start_us, r->common_end_us,
            r->st.sent, r->st.replies, bench_errors_total(&r->st));
    for (int i = 0; i < BERR__COUNT; i++)
        fprintf(f, "%s\"%s\":%" PRIu64, i ? "," : "", bench_err_names[i], r->st.errors[i]);
    fprintf(f, "},\"sessions_failed\":%" PRIu64 ",\"reconnects\":%" PRIu64
            ",\"throughput\":%.3f,\"throughput_union\":%.3f,"
            "\"connects\":%" PRIu64 ",\"resumed\":%" PRIu64 ",\"bytes_sent\":%" PRIu64
            ",\"bytes_received\":%" PRIu64,
            r->st.sessions_failed, r->st.reconnects, r->throughput, union_rate(r), r->st.connects,
            r->st.resumed, r->st.bytes_out, r->st.bytes_in);
    json_hist(f, "latency_us", &r->lat);
    if (o->rate > 0) {
        json_hist(f, "service_time_us", &r->svc);
        fprintf(f, ",\"rate_achieved\":%s", r->throughput >= 0.97 * o->rate ? "true" : "false");
    }
    if (o->mode == BENCH_IDLE)
        fprintf(f, ",\"idle\":{\"open\":%" PRIu64 ",\"open_s\":%.6f,\"held_s\":%.6f}",
                r->st.open, r->open_s, r->hold_s);
    fprintf(f, "}\n");
}
