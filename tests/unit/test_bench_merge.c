/* Unit tests: bench's mergeable results (src/bench_merge.c) and the bounded
 * JSON reader behind them (src/bench_json.c). The program's files are
 * compiled in here: the unit tests link only the library. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/bench_json.c"
#include "../../src/bench_merge.c"
#include "../../src/bench_report.c"
#include "../../src/cli.c"

static const double PCTS[] = {0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};

static struct bench_opts test_opts(void)
{
    static char req[] = "bench";
    return (struct bench_opts){
        .target = "10.0.0.1:8888", .mode = BENCH_REQUEST, .framing = SK_FRAMING_CHUNK,
        .conns = 10, .threads = 1, .depth = 1, .requests = 0, .duration_s = 5,
        .timeout_s = 10, .message = "bench", .req = req, .req_len = 5};
}

/* bench --json of a run whose latencies are h (and throughput tput, window
 * [start, end) in µs); the caller frees the text. */
static char *result_json(const struct sk_hist *h, double tput, int64_t start, int64_t end)
{
    struct bench_opts o = test_opts();
    struct bench_result r = {.lat = *h, .throughput = tput, .start_us = start, .end_us = end,
                             .common_start_us = start, .common_end_us = end, .sources = 1};
    cr_assert_eq(sk_hist_init(&r.svc), 0);
    r.st.sent = r.st.replies = h->total;
    r.st.connects = 10;
    r.elapsed_s = (double)(end - start) / 1e6;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    bench_report_json(f, &o, &r);
    fclose(f);
    sk_hist_free(&r.svc);
    return text;
}

static char *merged_json(const struct merge_result *m)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    cr_assert_not_null(f);
    bench_report_json(f, &m->o, &m->r);
    fclose(f);
    return text;
}

static void add_text(struct merge_result *acc, const char *text)
{
    char err[256];
    struct merge_result one = {0};
    cr_assert_eq(merge_parse(text, strlen(text), &one, err, sizeof err), 0, "parse: %s", err);
    cr_assert_eq(merge_add(acc, &one, err, sizeof err), 0, "merge: %s", err);
    merge_result_free(&one);
}

/* The error merge_parse gives text (asserting it fails). */
static const char *parse_error(const char *text)
{
    static char err[256];
    struct merge_result m = {0};
    int rc = merge_parse(text, strlen(text), &m, err, sizeof err);
    merge_result_free(&m);
    cr_assert_eq(rc, -1, "accepted: %.200s", text);
    cr_assert(err[0], "no reason given");
    cr_assert_null(strchr(err, '\n'), "not one line: %s", err);
    return err;
}

/* xorshift: values spread over many powers of two, deterministic. */
static uint64_t next_value(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (*s % 40) < 30 ? 20000 + *s % 500000 : *s % 3000000000u; /* 20 µs .. 3 s */
}

Test(bench_merge, percentiles_are_those_of_the_union)
{
    struct sk_hist a, b, all;
    cr_assert_eq(sk_hist_init(&a), 0);
    cr_assert_eq(sk_hist_init(&b), 0);
    cr_assert_eq(sk_hist_init(&all), 0);
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < 100000; i++) {
        uint64_t v = next_value(&s);
        /* Unequal halves with different distributions: an average of the
         * two p99s would be far off the union's. */
        sk_hist_record(i % 3 ? &a : &b, i % 3 ? v : v * 7);
        sk_hist_record(&all, i % 3 ? v : v * 7);
    }
    char *ja = result_json(&a, 1000, 1000000, 6000000);
    char *jb = result_json(&b, 500, 2000000, 7000000);
    struct merge_result acc = {0};
    add_text(&acc, ja);
    add_text(&acc, jb);
    cr_assert_eq(acc.r.lat.total, all.total);
    cr_assert_eq(acc.r.lat.min, all.min);
    cr_assert_eq(acc.r.lat.max, all.max);
    cr_assert_eq(acc.r.lat.saturated, all.saturated);
    for (size_t i = 0; i < sizeof PCTS / sizeof PCTS[0]; i++)
        cr_assert_eq(sk_hist_percentile(&acc.r.lat, PCTS[i]), sk_hist_percentile(&all, PCTS[i]),
                     "p%g", PCTS[i]);
    for (size_t i = 0; i < all.nbuckets; i++)
        cr_assert_eq(acc.r.lat.counts[i], all.counts[i], "bucket %zu", i);
    double mean_rel = (sk_hist_mean(&acc.r.lat) - sk_hist_mean(&all)) / sk_hist_mean(&all);
    cr_assert(mean_rel < 1e-12 && mean_rel > -1e-12, "mean off by %g", mean_rel);
    /* Counts summed, windows lined up, throughput summed. */
    cr_assert_eq(acc.r.st.replies, 100000);
    cr_assert_eq(acc.r.sources, 2);
    cr_assert_eq(acc.o.conns, 20);
    cr_assert_eq(acc.r.start_us, 1000000);
    cr_assert_eq(acc.r.end_us, 7000000);
    cr_assert_eq(acc.r.common_start_us, 2000000);
    cr_assert_eq(acc.r.common_end_us, 6000000);
    cr_assert_float_eq(acc.r.throughput, 1500, 1e-9);
    cr_assert_float_eq(acc.r.elapsed_s, 6, 1e-9);
    merge_result_free(&acc);
    free(ja);
    free(jb);
    sk_hist_free(&a);
    sk_hist_free(&b);
    sk_hist_free(&all);
}

Test(bench_merge, a_merge_merges_again_as_if_all_at_once)
{
    struct sk_hist h[3];
    char *j[3];
    uint64_t s = 12345;
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(sk_hist_init(&h[k]), 0);
        for (int i = 0; i < 5000 * (k + 1); i++)
            sk_hist_record(&h[k], next_value(&s) << k);
        j[k] = result_json(&h[k], 250.25 * (k + 1), 1000000 + k * 500000, 9000000 - k * 250000);
    }
    struct merge_result ab = {0}, all = {0}, again = {0};
    add_text(&ab, j[0]);
    add_text(&ab, j[1]);
    char *jab = merged_json(&ab);
    add_text(&again, jab);
    add_text(&again, j[2]);
    for (int k = 0; k < 3; k++)
        add_text(&all, j[k]);
    char *x = merged_json(&again), *y = merged_json(&all);
    cr_assert_str_eq(x, y);
    cr_assert_eq(all.r.sources, 3);
    /* A merged result read back is the same result. */
    struct merge_result back = {0};
    add_text(&back, y);
    char *z = merged_json(&back);
    cr_assert_str_eq(z, y);
    free(x);
    free(y);
    free(z);
    free(jab);
    merge_result_free(&ab);
    merge_result_free(&all);
    merge_result_free(&again);
    merge_result_free(&back);
    for (int k = 0; k < 3; k++) {
        free(j[k]);
        sk_hist_free(&h[k]);
    }
}

/* A valid result with one substring replaced. */
static char *edited(const char *from, const char *to)
{
    struct sk_hist h;
    cr_assert_eq(sk_hist_init(&h), 0);
    sk_hist_record(&h, 30000);
    sk_hist_record(&h, 5000000);
    char *text = result_json(&h, 10, 0, 1000000);
    sk_hist_free(&h);
    char *at = strstr(text, from);
    cr_assert_not_null(at, "'%s' not in %s", from, text);
    char *out = malloc(strlen(text) - strlen(from) + strlen(to) + 1);
    cr_assert_not_null(out);
    size_t pre = (size_t)(at - text);
    memcpy(out, text, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    free(text);
    return out;
}

static void assert_refused(const char *from, const char *to, const char *why)
{
    char *t = edited(from, to);
    const char *err = parse_error(t);
    cr_assert_not_null(strstr(err, why), "'%s' -> '%s': got \"%s\", want \"%s\"", from, to, err,
                       why);
    free(t);
}

Test(bench_merge, hostile_input_is_refused_in_one_line)
{
    cr_assert_not_null(strstr(parse_error(""), "empty"));
    cr_assert_not_null(strstr(parse_error("hello"), "not a sockit bench result"));
    cr_assert_not_null(strstr(parse_error("{\"tool\":\"curl\"}"), "not a sockit bench result"));
    cr_assert_not_null(strstr(parse_error("[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]"),
                              "nested too deep"));
    cr_assert_not_null(strstr(parse_error("{\"tool\":\"sockit bench\",\"version\":1"), "unexpected end"));
    cr_assert_not_null(strstr(parse_error("{\"a\":\"\\q\"}"), "bad escape"));
    cr_assert_not_null(strstr(parse_error("{\"a\":01}"), "expected"));
    assert_refused("\"version\":1", "\"version\":2", "version 1");
    assert_refused("\"sub_bits\":11", "\"sub_bits\":10", "another bucket layout");
    assert_refused("\"max_bits\":44", "\"max_bits\":40", "another bucket layout");
    assert_refused("[[30000,1]", "[[30001,1]", "does not start where");
    assert_refused("[[30000,1],[4997120,1]]", "[[4997120,1],[30000,1]]", "ascending");
    assert_refused("[[30000,1]", "[[30000,2]", "count differs");
    assert_refused("[[30000,1]", "[[30000,18446744073709551615]", "overflow");
    assert_refused("[[30000,1]", "[[30000,99999999999999999999]", "whole numbers below 2^64");
    assert_refused("[[30000,1]", "[[30000,-1]", "whole numbers below 2^64");
    assert_refused("[[30000,1]", "[[30000,1.5]", "whole numbers below 2^64");
    assert_refused("\"min_ns\":30000", "\"min_ns\":60000", "first/last bucket");
    assert_refused(",\"histogram\":{", ",\"histogram_x\":{", "no histogram");
    assert_refused("\"mode\":\"request\"", "\"mode\":\"fast\"", "settings.mode");
    assert_refused("\"errors\":0", "\"errors\":3", "error_classes");
    assert_refused("\"sent\":2", "\"sent\":\"2\"", "sent is not a count");
    assert_refused("\"replies\":2,", "", "replies is missing");
    assert_refused("\"sources\":1", "\"sources\":0", "sources is 0");
    assert_refused("\"request\":\"bench\"", "\"request\":\"\\u0100\"", "request is not");
}

Test(bench_merge, different_workloads_and_overflowing_sums_are_refused)
{
    char *a = edited("\"sent\":2", "\"sent\":18446744073709551615");
    char *b = edited("\"framing\":\"chunk\"", "\"framing\":\"line\"");
    char *c = edited("\"target\":\"10.0.0.1:8888\"", "\"target\":\"10.0.0.2:8888\"");
    char *base = edited("\"sent\":2", "\"sent\":2");
    struct merge_result acc = {0}, one = {0};
    char err[256];
    add_text(&acc, base);
    cr_assert_eq(merge_parse(a, strlen(a), &one, err, sizeof err), 0, "%s", err);
    cr_assert_eq(merge_add(&acc, &one, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "overflow"), "%s", err);
    cr_assert_eq(acc.r.sources, 1, "a refused merge leaves the sum alone");
    merge_result_free(&one);
    cr_assert_eq(merge_parse(b, strlen(b), &one, err, sizeof err), 0, "%s", err);
    cr_assert_eq(merge_add(&acc, &one, err, sizeof err), -1);
    cr_assert_not_null(strstr(err, "framing"), "%s", err);
    merge_result_free(&one);
    /* Another target is fine: the merged target is then null. */
    add_text(&acc, c);
    cr_assert_null(acc.o.target);
    char *m = merged_json(&acc);
    cr_assert_not_null(strstr(m, "\"target\":null"), "%s", m);
    struct merge_result back = {0};
    add_text(&back, m);
    cr_assert_null(back.o.target);
    free(m);
    merge_result_free(&back);
    merge_result_free(&acc);
    free(a);
    free(b);
    free(c);
    free(base);
}

Test(bench_json, reader_basics)
{
    struct bj j;
    char err[128];
    const char *t = " {\"a\":[1,2,{\"b\":null}],\"s\":\"x\\u0041\\n\",\"t\":true,\"n\":-12} ";
    cr_assert_eq(bj_parse(&j, t, strlen(t), err, sizeof err), 0, "%s", err);
    long a = bj_get(&j, 0, "a");
    cr_assert_eq(j.t[a].type, BJ_ARRAY);
    cr_assert_eq(j.t[a].count, 3);
    long third = j.t[j.t[a + 1].next].next;
    cr_assert(bj_is_null(&j, bj_get(&j, third, "b")));
    size_t n;
    char *s = bj_str(&j, bj_get(&j, 0, "s"), &n);
    cr_assert_str_eq(s, "xA\n");
    free(s);
    bool b;
    cr_assert(bj_bool(&j, bj_get(&j, 0, "t"), &b) && b);
    int64_t i;
    uint64_t u;
    cr_assert(bj_i64(&j, bj_get(&j, 0, "n"), &i) && i == -12);
    cr_assert(!bj_u64(&j, bj_get(&j, 0, "n"), &u));
    cr_assert_eq(bj_get(&j, 0, "zz"), -1);
    cr_assert_eq(bj_get(&j, a, "a"), -1, "not an object");
    bj_free(&j);
    cr_assert_eq(bj_parse(&j, "1 2", 3, err, sizeof err), -1);
    cr_assert_eq(bj_parse(&j, "\"a", 2, err, sizeof err), -1);
    cr_assert_eq(bj_parse(&j, "{\"a\" 1}", 7, err, sizeof err), -1);
    cr_assert_eq(bj_parse(&j, "\"\x01\"", 3, err, sizeof err), -1);
    cr_assert_eq(bj_parse(&j, "1.", 2, err, sizeof err), -1);
    cr_assert_eq(bj_parse(&j, "1e", 2, err, sizeof err), -1);
    cr_assert_eq(bj_parse(&j, "tru", 3, err, sizeof err), -1);
}

/* Every prefix of a result is refused, and says why in terms of the cut:
 * "unexpected end" (or, inside a string, "unterminated string"), never
 * what token the reader would have liked next. */
Test(bench_json, every_cut_of_a_result_is_an_unexpected_end)
{
    struct sk_hist h;
    sk_hist_init(&h);
    for (int i = 1; i <= 100; i++)
        sk_hist_record(&h, (uint64_t)i * 1000);
    char *text = result_json(&h, 1234.5, 1000, 2000);
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == '\n')
        len--; /* the whole object, without the line's end */
    for (size_t cut = 0; cut < len; cut++) {
        struct bj j;
        char err[200];
        cr_assert_eq(bj_parse(&j, text, cut, err, sizeof err), -1, "cut at %zu", cut);
        cr_assert(strstr(err, "unexpected end") || strstr(err, "unterminated string") ||
                      (cut == 0 && strstr(err, "empty")),
                  "cut at %zu of %zu: %s", cut, len, err);
    }
    free(text);
    sk_hist_free(&h);
}
