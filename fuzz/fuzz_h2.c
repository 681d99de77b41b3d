/* Fuzz target: fetch's HTTP/2 adapter (lib/fetch_h2.c) on arbitrary server
 * bytes after the handshake. A request goes on a session with no
 * connection (what it sends is dropped); the input follows the server's
 * SETTINGS, in pieces whose sizes the first byte picks. Once the head is
 * in, it must lie in f->buf within SK_HTTP_HEAD_MAX and SK_HTTP_HEADERS_MAX,
 * and the body goes to a discarding sink: no crash, no leak, no read past
 * a piece, whatever the frames. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_int.h"
#include "sockit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The head the adapter made: in f->buf, bounded, each field inside it. */
static void check_head(const struct sk_fetch *f)
{
    const struct sk__fetch_wire *w = &f->w;
    if (w->head_len > SK_HTTP_HEAD_MAX || w->resp.num_headers > SK_HTTP_HEADERS_MAX ||
        w->have < w->head_len)
        __builtin_trap();
    for (size_t i = 0; i < w->resp.num_headers; i++) {
        const struct sk_http_header *h = &w->resp.headers[i];
        if (h->name < f->buf || h->value + h->value_len > f->buf + w->head_len)
            __builtin_trap();
    }
}

/* Feeds the pieces; returns at the exchange's end. */
static void exchange(struct sk_fetch *f, const uint8_t *data, size_t size, size_t step)
{
    struct sk__fetch_wire *w = &f->w;
    struct sk__fetch_sink sink = {.kind = SK__SINK_DISCARD};
    static const char settings[] = "\0\0\0\4\0\0\0\0\0"; /* the server's preface */
    if (sk__fetch_h2_feed(f, settings, sizeof settings - 1) != 0)
        return;
    for (size_t off = 0; off < size;) {
        size_t n = size - off < step ? size - off : step;
        char *piece = malloc(n); /* exact size: a read past it is seen */
        if (!piece)
            return;
        memcpy(piece, data + off, n);
        int rc = sk__fetch_h2_feed(f, piece, n);
        free(piece);
        off += n;
        if (rc < 0 || (rc > 0 && w->phase == SK__PH_BODY))
            return;
        if (rc > 0) { /* the head: the body starts as fetch_run.c would start it */
            check_head(f);
            if (sk_http_framing(&w->resp, false, &w->fr) < 0)
                return;
            w->sink = &sink;
            w->left = w->fr.kind == SK_HTTP_BODY_LENGTH ? w->fr.length : 0;
            w->phase = SK__PH_BODY;
            if (sk__fetch_h2_body(f) != 0)
                return;
        }
    }
    (void)sk__fetch_h2_end(f, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 64) * 97 + 1;
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    struct sk_fetch *f = NULL;
    struct sk_url u;
    static const char url[] = "https://example.org/x";
    if (sk_fetch_new(&o, &f) < 0 || sk_url_parse(url, sizeof url - 1, &u) < 0) {
        sk_fetch_free(f);
        return 0;
    }
    static const char req[] = "GET /x HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n\r\n";
    memcpy(f->buf, req, sizeof req - 1);
    f->w.phase = SK__PH_HEAD;
    if (sk__fetch_h2_begin(f) == 0 && sk__fetch_h2_request(f, &u, sizeof req - 1) == 0)
        exchange(f, data + 1, size - 1, step);
    sk__fetch_h2_free(f);
    sk_fetch_free(f);
    return 0;
}
