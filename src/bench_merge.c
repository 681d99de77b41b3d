/* sockit bench merge FILE... [--json]: see bench_merge.h and docs/bench.md
 * ("Merging results"). The reader takes bench's own --json output only,
 * through the bounded reader of bench_json.c; every count is checked for
 * overflow and every histogram for bench's bucket layout. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_json.h"
#include "bench_merge.h"
#include "cli.h"
#include "i18n.h"
#include "hist_int.h" /* lib/'s bucket arithmetic: the CLI links the static archive */

/* ---- reading one result ---- */

struct reader {
    const struct bj *j;
    char *err;
    size_t errlen;
};

static int bad(struct reader *rd, const char *what, const char *why)
{
    snprintf(rd->err, rd->errlen, "%s %s", what, why);
    return -1;
}

static int get_u64(struct reader *rd, long obj, const char *key, uint64_t *out)
{
    long t = bj_get(rd->j, obj, key);
    if (t < 0)
        return bad(rd, key, "is missing");
    if (!bj_u64(rd->j, t, out))
        return bad(rd, key, "is not a count (a whole number below 2^64)");
    return 0;
}

static int get_real(struct reader *rd, long obj, const char *key, double *out, bool nullable)
{
    long t = bj_get(rd->j, obj, key);
    if (t < 0)
        return bad(rd, key, "is missing");
    if (nullable && bj_is_null(rd->j, t)) {
        *out = 0;
        return 0;
    }
    if (!bj_real(rd->j, t, out) || *out < 0)
        return bad(rd, key, "is not a number >= 0");
    return 0;
}

static int get_bool(struct reader *rd, long obj, const char *key, bool *out)
{
    if (!bj_bool(rd->j, bj_get(rd->j, obj, key), out))
        return bad(rd, key, "is not true or false");
    return 0;
}

static int get_i64(struct reader *rd, long obj, const char *key, int64_t *out)
{
    if (!bj_i64(rd->j, bj_get(rd->j, obj, key), out))
        return bad(rd, key, "is not a time in microseconds");
    return 0;
}

static int get_uint(struct reader *rd, long obj, const char *key, unsigned *out)
{
    uint64_t v;
    if (get_u64(rd, obj, key, &v) < 0)
        return -1;
    if (v == 0 || v > 0xffffffffu)
        return bad(rd, key, "is out of range");
    *out = (unsigned)v;
    return 0;
}

/* A string setting, or NULL for null when nullable; *out is owned. */
static int get_str(struct reader *rd, long obj, const char *key, char **out, size_t *len,
                   bool nullable)
{
    long t = bj_get(rd->j, obj, key);
    size_t n = 0;
    if (nullable && bj_is_null(rd->j, t)) {
        *out = NULL;
        return 0;
    }
    *out = bj_str(rd->j, t, &n);
    if (!*out)
        return bad(rd, key, "is not a string of bytes");
    if (len)
        *len = n;
    return 0;
}

static int get_settings(struct reader *rd, long s, struct merge_result *m)
{
    struct bench_opts *o = &m->o;
    static const enum bench_mode modes[] = {BENCH_REQUEST, BENCH_CONNECT, BENCH_IDLE, BENCH_UDP};
    long mode = bj_get(rd->j, s, "mode");
    size_t k = 0;
    while (k < sizeof modes / sizeof modes[0] && !bj_str_eq(rd->j, mode, bench_mode_name(modes[k])))
        k++;
    if (k == sizeof modes / sizeof modes[0])
        return bad(rd, "settings.mode", "is not one of bench's modes");
    o->mode = modes[k];
    long proto = bj_get(rd->j, s, "protocol");
    if (!bj_str_eq(rd->j, proto, "raw") && !bj_str_eq(rd->j, proto, "greeting"))
        return bad(rd, "settings.protocol", "is not raw or greeting");
    o->raw = bj_str_eq(rd->j, proto, "raw");
    char *framing = NULL;
    if (get_str(rd, s, "framing", &framing, NULL, false) < 0)
        return -1;
    int frc = sk_framing_parse(framing, &o->framing);
    free(framing);
    if (frc < 0)
        return bad(rd, "settings.framing", "is not chunk or line");
    long loop = bj_get(rd->j, s, "loop");
    if (!bj_str_eq(rd->j, loop, "open") && !bj_str_eq(rd->j, loop, "closed"))
        return bad(rd, "settings.loop", "is not open or closed");
    if (get_str(rd, s, "target", &m->target, NULL, true) < 0 ||
        get_uint(rd, s, "connections", &o->conns) < 0 ||
        get_uint(rd, s, "threads", &o->threads) < 0 ||
        get_uint(rd, s, "pipeline", &o->depth) < 0 ||
        get_real(rd, s, "duration_s", &o->duration_s, true) < 0 ||
        get_real(rd, s, "warmup_s", &o->warmup_s, false) < 0 ||
        get_real(rd, s, "timeout_s", &o->timeout_s, false) < 0 ||
        get_real(rd, s, "rate", &o->rate, true) < 0 ||
        get_str(rd, s, "message", &m->message, NULL, true) < 0 ||
        get_str(rd, s, "request", &o->req, &o->req_len, false) < 0)
        return -1;
    if (bj_str_eq(rd->j, loop, "open") != (o->rate > 0))
        return bad(rd, "settings.rate", "does not match settings.loop");
    if (!o->raw && !m->message)
        return bad(rd, "settings.message", "is missing");
    long req = bj_get(rd->j, s, "requests");
    if (!bj_is_null(rd->j, req) && get_u64(rd, s, "requests", &o->requests) < 0)
        return -1;
    /* settings.tls: null, or {"verify":B,"resume":B}; absent in files of
     * versions before TLS (then plain). */
    long tls = bj_get(rd->j, s, "tls");
    if (tls >= 0 && !bj_is_null(rd->j, tls)) {
        bool verify = false;
        if (get_bool(rd, tls, "verify", &verify) < 0 ||
            get_bool(rd, tls, "resume", &o->tls_resume) < 0)
            return -1;
        o->tls.on = true;
        o->tls.cfg.insecure = !verify;
    }
    if (o->mode == BENCH_IDLE)
        o->idle_s = o->duration_s;
    o->target = m->target;
    o->message = m->message;
    return 0;
}

/* One histogram: bench's layout, buckets ascending, counts that add up. */
static int get_hist(struct reader *rd, long lat, const char *name, struct sk_hist *h)
{
    if (lat < 0)
        return bad(rd, name, "is missing");
    long hj = bj_get(rd->j, lat, "histogram");
    if (hj < 0)
        return bad(rd, name, "has no histogram (a result of an older sockit?)");
    uint64_t sub, maxb, count, sat;
    if (!bj_str_eq(rd->j, bj_get(rd->j, hj, "unit"), "ns") ||
        get_u64(rd, hj, "sub_bits", &sub) < 0 || get_u64(rd, hj, "max_bits", &maxb) < 0)
        return bad(rd, name, "histogram has no layout");
    if (sub != SK_HIST_SUB_BITS || maxb != SK_HIST_MAX_BITS) {
        snprintf(rd->err, rd->errlen, "%s histogram has another bucket layout (sub_bits %llu, "
                 "max_bits %llu; this sockit: %d, %d)", name, (unsigned long long)sub,
                 (unsigned long long)maxb, SK_HIST_SUB_BITS, SK_HIST_MAX_BITS);
        return -1;
    }
    if (get_u64(rd, lat, "count", &count) < 0 || get_u64(rd, hj, "min_ns", &h->min) < 0 ||
        get_u64(rd, hj, "max_ns", &h->max) < 0 || get_u64(rd, hj, "saturated", &sat) < 0)
        return -1;
    long sum = bj_get(rd->j, hj, "sum_ns");
    uint64_t isum;
    double dsum;
    if (bj_u64(rd->j, sum, &isum))
        h->sum = (long double)isum; /* exact while it fits */
    else if (bj_real(rd->j, sum, &dsum) && dsum >= 0)
        h->sum = (long double)dsum;
    else
        return bad(rd, name, "histogram sum_ns is not a number >= 0");
    long b = bj_get(rd->j, hj, "buckets");
    if (b < 0 || rd->j->t[b].type != BJ_ARRAY)
        return bad(rd, name, "histogram buckets is not an array");
    uint64_t total = 0;
    size_t first = 0, last = 0;
    long e = b + 1;
    for (uint32_t i = 0; i < rd->j->t[b].count; i++, e = rd->j->t[e].next) {
        uint64_t v, c;
        if (rd->j->t[e].type != BJ_ARRAY || rd->j->t[e].count != 2 ||
            !bj_u64(rd->j, e + 1, &v) || !bj_u64(rd->j, rd->j->t[e + 1].next, &c))
            return bad(rd, name, "histogram bucket is not [value, count] of whole numbers below 2^64");
        size_t idx = sk__hist_index(v);
        if (v > SK_HIST_MAX || sk__hist_bucket_low(idx) != v)
            return bad(rd, name, "histogram bucket does not start where bench's buckets do "
                       "(another bucket layout)");
        if (i > 0 && idx <= last)
            return bad(rd, name, "histogram buckets are not in ascending order");
        if (c > UINT64_MAX - total)
            return bad(rd, name, "histogram counts overflow");
        if (i == 0)
            first = idx;
        last = idx;
        h->counts[idx] = c;
        total += c;
    }
    if (total != count)
        return bad(rd, name, "count differs from the sum of its buckets");
    if (sat > total)
        return bad(rd, name, "histogram saturated exceeds its count");
    if (total && (h->min > h->max || sk__hist_index(h->min) != first ||
                  sk__hist_index(h->max) != last))
        return bad(rd, name, "histogram min_ns/max_ns do not fall in its first/last bucket");
    h->total = total;
    h->saturated = sat;
    if (!total) {
        h->min = UINT64_MAX;
        h->max = 0;
    }
    return 0;
}

static int get_result(struct reader *rd, long root, struct merge_result *m)
{
    struct bench_result *r = &m->r;
    struct bench_stats *st = &r->st;
    uint64_t errors = 0, sum = 0;
    if (get_u64(rd, root, "sources", &r->sources) < 0)
        return -1;
    if (r->sources == 0)
        return bad(rd, "sources", "is 0");
    if (get_bool(rd, root, "interrupted", &r->interrupted) < 0 ||
        get_bool(rd, root, "gave_up", &r->gave_up) < 0 ||
        get_real(rd, root, "elapsed_s", &r->elapsed_s, false) < 0 ||
        get_real(rd, root, "throughput", &r->throughput, false) < 0 ||
        get_i64(rd, root, "start_unix_us", &r->start_us) < 0 ||
        get_i64(rd, root, "end_unix_us", &r->end_us) < 0 ||
        get_i64(rd, root, "common_start_unix_us", &r->common_start_us) < 0 ||
        get_i64(rd, root, "common_end_unix_us", &r->common_end_us) < 0 ||
        get_u64(rd, root, "sent", &st->sent) < 0 || get_u64(rd, root, "replies", &st->replies) < 0 ||
        get_u64(rd, root, "errors", &errors) < 0 ||
        get_u64(rd, root, "sessions_failed", &st->sessions_failed) < 0 ||
        get_u64(rd, root, "connects", &st->connects) < 0 ||
        (bj_get(rd->j, root, "resumed") >= 0 && get_u64(rd, root, "resumed", &st->resumed) < 0) ||
        (bj_get(rd->j, root, "reconnects") >= 0 &&
         get_u64(rd, root, "reconnects", &st->reconnects) < 0) ||
        get_u64(rd, root, "bytes_sent", &st->bytes_out) < 0 ||
        get_u64(rd, root, "bytes_received", &st->bytes_in) < 0)
        return -1;
    if (r->end_us < r->start_us)
        return bad(rd, "end_unix_us", "is before start_unix_us");
    long cls = bj_get(rd->j, root, "error_classes");
    for (int i = 0; i < BERR__COUNT; i++) {
        if (get_u64(rd, cls, bench_err_names[i], &st->errors[i]) < 0)
            return -1;
        if (st->errors[i] > UINT64_MAX - sum)
            return bad(rd, "error_classes", "overflow");
        sum += st->errors[i];
    }
    if (sum != errors)
        return bad(rd, "errors", "differs from the sum of error_classes");
    if (get_hist(rd, bj_get(rd->j, root, "latency_us"), "latency_us", &r->lat) < 0)
        return -1;
    if (m->o.rate > 0 &&
        get_hist(rd, bj_get(rd->j, root, "service_time_us"), "service_time_us", &r->svc) < 0)
        return -1;
    if (m->o.mode == BENCH_IDLE) {
        long idle = bj_get(rd->j, root, "idle");
        if (get_u64(rd, idle, "open", &st->open) < 0 ||
            get_real(rd, idle, "open_s", &r->open_s, false) < 0 ||
            get_real(rd, idle, "held_s", &r->hold_s, false) < 0)
            return -1;
    }
    return 0;
}

int merge_parse(const char *text, size_t len, struct merge_result *m, char *err, size_t errlen)
{
    struct bj j;
    err[0] = 0;
    if (sk_hist_init(&m->r.lat) < 0 || sk_hist_init(&m->r.svc) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char why[160];
    if (bj_parse(&j, text, len, why, sizeof why) < 0) {
        snprintf(err, errlen, "not a sockit bench result: %s", len ? why : "empty file");
        return -1;
    }
    struct reader rd = {.j = &j, .err = err, .errlen = errlen};
    uint64_t version = 0;
    int rc = -1;
    if (j.t[0].type != BJ_OBJECT || !bj_str_eq(&j, bj_get(&j, 0, "tool"), "sockit bench"))
        snprintf(err, errlen, "not a sockit bench result (no \"tool\":\"sockit bench\")");
    else if (!bj_u64(&j, bj_get(&j, 0, "version"), &version) || version != 1)
        snprintf(err, errlen, "not version 1 of bench's JSON");
    else if (bj_get(&j, 0, "settings") < 0)
        snprintf(err, errlen, "settings is missing");
    else if (get_settings(&rd, bj_get(&j, 0, "settings"), m) == 0 && get_result(&rd, 0, m) == 0)
        rc = 0;
    bj_free(&j);
    return rc;
}

void merge_result_free(struct merge_result *m)
{
    sk_hist_free(&m->r.lat);
    sk_hist_free(&m->r.svc);
    free(m->target);
    free(m->message);
    free(m->o.req);
    m->target = m->message = m->o.req = NULL;
}

/* ---- merging ---- */

static bool add_ok(uint64_t a, uint64_t b)
{
    return a <= UINT64_MAX - b;
}

static bool same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* What must be the same for results to be one workload's. */
static const char *differs(const struct bench_opts *a, const struct bench_opts *b)
{
    if (a->mode != b->mode)
        return "mode";
    if (a->raw != b->raw)
        return "protocol";
    if (a->framing != b->framing)
        return "framing";
    if (a->depth != b->depth)
        return "pipeline";
    if ((a->rate > 0) != (b->rate > 0))
        return "loop";
    if (!same_bytes(a->req, a->req_len, b->req, b->req_len))
        return "request";
    if (a->tls.on != b->tls.on || a->tls_resume != b->tls_resume)
        return "tls";
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* acc is empty: it becomes a copy of src. */
static int copy_into(struct merge_result *acc, const struct merge_result *src, char *err,
                     size_t errlen)
{
    char *target = dup_or_null(src->target), *message = dup_or_null(src->message);
    char *req = malloc(src->o.req_len + 1);
    if ((!acc->r.lat.counts && sk_hist_init(&acc->r.lat) < 0) ||
        (!acc->r.svc.counts && sk_hist_init(&acc->r.svc) < 0) || (src->target && !target) ||
        (src->message && !message) || !req) {
        free(target);
        free(message);
        free(req);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(req, src->o.req, src->o.req_len);
    req[src->o.req_len] = 0;
    struct sk_hist lat = acc->r.lat, svc = acc->r.svc;
    acc->o = src->o;
    acc->r = src->r;
    acc->r.lat = lat;
    acc->r.svc = svc;
    sk_hist_reset(&acc->r.lat);
    sk_hist_reset(&acc->r.svc);
    sk_hist_merge(&acc->r.lat, &src->r.lat);
    sk_hist_merge(&acc->r.svc, &src->r.svc);
    acc->target = target;
    acc->o.target = target;
    acc->message = message;
    acc->o.message = message;
    acc->o.req = req;
    return 0;
}

int merge_add(struct merge_result *acc, const struct merge_result *src, char *err, size_t errlen)
{
    if (acc->r.sources == 0)
        return copy_into(acc, src, err, errlen);
    const char *d = differs(&acc->o, &src->o);
    if (d) {
        snprintf(err, errlen, "its settings differ from the others' (%s): not one workload", d);
        return -1;
    }
    const struct bench_stats *s = &src->r.st;
    struct bench_stats *t = &acc->r.st;
    bool ok = add_ok(t->sent, s->sent) && add_ok(t->replies, s->replies) &&
              add_ok(t->connects, s->connects) && add_ok(t->bytes_out, s->bytes_out) &&
              add_ok(t->bytes_in, s->bytes_in) && add_ok(t->open, s->open) &&
              add_ok(t->sessions_failed, s->sessions_failed) && add_ok(t->resumed, s->resumed) &&
              add_ok(t->reconnects, s->reconnects) &&
              add_ok(acc->r.lat.total, src->r.lat.total) &&
              add_ok(acc->r.svc.total, src->r.svc.total) &&
              add_ok(acc->r.sources, src->r.sources) &&
              add_ok(acc->o.requests, src->o.requests) &&
              (uint64_t)acc->o.conns + src->o.conns <= 0xffffffffu &&
              (uint64_t)acc->o.threads + src->o.threads <= 0xffffffffu;
    uint64_t errs = bench_errors_total(t);
    for (int i = 0; i < BERR__COUNT; i++) {
        ok = ok && add_ok(errs, s->errors[i]);
        errs += ok ? s->errors[i] : 0;
    }
    if (!ok) {
        snprintf(err, errlen, "the counts overflow when added to the others'");
        return -1;
    }
    t->sent += s->sent;
    t->replies += s->replies;
    t->connects += s->connects;
    t->bytes_out += s->bytes_out;
    t->bytes_in += s->bytes_in;
    t->open += s->open;
    t->sessions_failed += s->sessions_failed;
    t->resumed += s->resumed;
    t->reconnects += s->reconnects;
    for (int i = 0; i < BERR__COUNT; i++)
        t->errors[i] += s->errors[i];
    sk_hist_merge(&acc->r.lat, &src->r.lat);
    sk_hist_merge(&acc->r.svc, &src->r.svc);

    struct bench_opts *o = &acc->o;
    if (o->target && (!src->o.target || strcmp(o->target, src->o.target) != 0))
        o->target = NULL; /* several targets; acc->target stays owned */
    o->conns += src->o.conns;
    o->threads += src->o.threads;
    o->requests = o->requests && src->o.requests ? o->requests + src->o.requests : 0;
    if (src->o.duration_s > o->duration_s)
        o->duration_s = src->o.duration_s;
    o->idle_s = o->duration_s;
    if (src->o.warmup_s > o->warmup_s)
        o->warmup_s = src->o.warmup_s;
    if (src->o.timeout_s > o->timeout_s)
        o->timeout_s = src->o.timeout_s;
    o->rate += src->o.rate;

    struct bench_result *r = &acc->r;
    r->sources += src->r.sources;
    r->interrupted |= src->r.interrupted;
    r->gave_up |= src->r.gave_up;
    r->throughput += src->r.throughput;
    if (src->r.start_us < r->start_us)
        r->start_us = src->r.start_us;
    if (src->r.end_us > r->end_us)
        r->end_us = src->r.end_us;
    if (src->r.common_start_us > r->common_start_us)
        r->common_start_us = src->r.common_start_us;
    if (src->r.common_end_us < r->common_end_us)
        r->common_end_us = src->r.common_end_us;
    r->elapsed_s = (double)(r->end_us - r->start_us) / 1e6;
    if (src->r.open_s > r->open_s)
        r->open_s = src->r.open_s;
    if (src->r.hold_s > r->hold_s)
        r->hold_s = src->r.hold_s;
    return 0;
}

/* ---- the command ---- */

static const char merge_help[] = N_(
    "usage: sockit bench merge FILE... [--json]\n"
    "\n"
    "Combine the results of several 'sockit bench --json' runs (from one host or\n"
    "several) into one report, exactly: counts are summed, the latency histograms\n"
    "are added bucket by bucket, so the percentiles are those of all the samples\n"
    "together (never an average of percentiles). Throughput is the sum of each\n"
    "result's own (its replies over its measured window): the load while the\n"
    "windows overlap; the report also gives replies over the union of the windows\n"
    "(wall clock), and warns when the windows overlap by less than half. Every\n"
    "result must be of one workload: the same mode, protocol, framing, pipeline,\n"
    "loop and request bytes; the targets may differ. A merged result (--json) can\n"
    "be merged again.\n"
    "\n"
    "  -j, --json   the merged result as one JSON object (bench's format)\n"
    "  -h, --help   this help\n"
    "\n"
    "Exit status: 0 the report was printed; 1 a FILE could not be read, is not a\n"
    "bench result, or cannot be merged with the others (another bucket layout,\n"
    "another workload, counts that overflow); 2 bad command line.\n");

/* Reads a whole file of at most BJ_MAX_TEXT bytes. */
static char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        return NULL;
    }
    struct stat sb;
    char *buf = NULL;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        goto out;
    }
    if ((uint64_t)sb.st_size > BJ_MAX_TEXT) {
        snprintf(err, errlen, "larger than %u bytes: not a bench result", BJ_MAX_TEXT);
        goto out;
    }
    buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    size_t n = 0;
    while (n < (size_t)sb.st_size) {
        ssize_t k = read(fd, buf + n, (size_t)sb.st_size - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            snprintf(err, errlen, "%s", k < 0 ? strerror(errno) : "file shrank while read");
            free(buf);
            buf = NULL;
            goto out;
        }
        n += (size_t)k;
    }
    *len = n;
out:
    close(fd);
    return buf;
}

static int merge_file(struct merge_result *acc, const char *path)
{
    char err[256] = "";
    size_t len = 0;
    char *text = slurp(path, &len, err, sizeof err);
    if (!text) {
        cli_error("merge: %s: %s", path, err);
        return -1;
    }
    struct merge_result one = {0};
    int rc = merge_parse(text, len, &one, err, sizeof err);
    if (rc == 0)
        rc = merge_add(acc, &one, err, sizeof err);
    if (rc < 0)
        cli_error("merge: %s: %s", path, err);
    merge_result_free(&one);
    free(text);
    return rc;
}

int bench_merge_main(int argc, char **argv)
{
    bool json = false, opts = true;
    int files = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0))
            return cli_print_help(merge_help) == CLI_DONE ? EXIT_OK : EXIT_FAIL;
        if (opts && (strcmp(a, "-j") == 0 || strcmp(a, "--json") == 0))
            json = true;
        else if (opts && strcmp(a, "--") == 0)
            opts = false;
        else if (opts && a[0] == '-' && a[1]) {
            cli_error("merge: unknown option %s (try 'sockit bench merge --help')", a);
            return EXIT_USAGE;
        } else
            files++;
    }
    if (files == 0) {
        cli_error("merge: no FILE given (try 'sockit bench merge --help')");
        return EXIT_USAGE;
    }
    struct merge_result acc = {0};
    int rc = EXIT_OK;
    opts = true;
    for (int i = 1; i < argc && rc == EXIT_OK; i++) {
        const char *a = argv[i];
        if (opts && strcmp(a, "--") == 0)
            opts = false;
        else if (!opts || a[0] != '-' || !a[1])
            rc = merge_file(&acc, a) < 0 ? EXIT_FAIL : EXIT_OK;
    }
    if (rc == EXIT_OK) {
        if (json)
            bench_report_json(stdout, &acc.o, &acc.r);
        else
            bench_report_text(&acc.o, &acc.r);
        if (!cli_stdout_ok())
            rc = EXIT_FAIL;
    }
    merge_result_free(&acc);
    return rc;
}
