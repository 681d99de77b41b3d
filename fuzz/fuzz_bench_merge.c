/* Fuzz target: bench merge's reader of bench's JSON (src/bench_json.c,
 * src/bench_merge.c). Whatever the input, parsing is bounded and either
 * fails with a one-line reason or yields a result that bench writes out
 * again; that output reads back to the same output (a fixed point), and
 * merges with itself. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_merge.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *write_out(const struct merge_result *m, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        abort();
    bench_report_json(f, &m->o, &m->r);
    if (fclose(f) != 0)
        abort();
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct merge_result a = {0}, b = {0}, acc = {0};
    if (merge_parse((const char *)data, size, &a, err, sizeof err) < 0) {
        if (!err[0] || strchr(err, '\n'))
            abort(); /* a reason, on one line */
        merge_result_free(&a);
        return 0;
    }
    size_t n1 = 0, n2 = 0;
    char *t1 = write_out(&a, &n1);
    if (merge_parse(t1, n1, &b, err, sizeof err) < 0)
        abort(); /* bench's own output must read back */
    char *t2 = write_out(&b, &n2);
    size_t n3 = 0;
    struct merge_result c = {0};
    if (merge_parse(t2, n2, &c, err, sizeof err) < 0)
        abort();
    char *t3 = write_out(&c, &n3);
    if (n2 != n3 || memcmp(t2, t3, n2) != 0)
        abort(); /* written, read, written: the same */
    if (merge_add(&acc, &b, err, sizeof err) < 0)
        abort();
    if (merge_add(&acc, &b, err, sizeof err) == 0 &&
        (acc.r.lat.total != 2 * b.r.lat.total || acc.r.st.replies != 2 * b.r.st.replies))
        abort();
    free(t1);
    free(t2);
    free(t3);
    merge_result_free(&a);
    merge_result_free(&b);
    merge_result_free(&c);
    merge_result_free(&acc);
    return 0;
}
