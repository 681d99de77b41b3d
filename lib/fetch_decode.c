/* Content-Encoding decoders for the HTTP client's --compressed (see
 * decode_int.h): gzip and deflate with zlib, br with libbrotlidec. Each
 * call decodes what it is given into one bounded output buffer and hands
 * every full (or last) buffer to the callback at once, so memory stays
 * that buffer plus the codec's window however large the body grows; a
 * decompression bomb is stopped by the callback (max_filesize). */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <brotli/decode.h>
#include <zlib.h>

#include "alloc_int.h"
#include "decode_int.h"
#include "fetch_int.h"
#include "sockit.h"

struct sk__decoder {
    enum sk__coding coding;
    sk__decode_out_fn out;
    void *arg;
    bool started;  /* the codec is set up (deflate waits for its first two bytes) */
    bool ended;    /* the stream's end marker was decoded */
    int failed;    /* the first failure, returned from then on */
    z_stream z;
    BrotliDecoderState *br;
    unsigned char head[2]; /* deflate: the first bytes, to tell zlib from raw */
    size_t nhead;
    char why[128];
    char buf[SK__DECODE_OUT_SIZE];
};

/* ---- Content-Encoding ---- */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int sk__coding_parse(const char *v, size_t n, enum sk__coding *c)
{
    while (n > 0 && is_ows(v[0]))
        v++, n--;
    while (n > 0 && is_ows(v[n - 1]))
        n--;
    if (n == 0) { /* an empty list: no coding */
        *c = SK__CODING_IDENTITY;
        return 0;
    }
    if (memchr(v, ',', n))
        return SK_EPARSE; /* gzip, br: a chain is not decoded */
    static const struct {
        const char *name;
        enum sk__coding c;
    } names[] = {{"identity", SK__CODING_IDENTITY},
                 {"gzip", SK__CODING_GZIP},
                 {"x-gzip", SK__CODING_GZIP},
                 {"deflate", SK__CODING_DEFLATE},
                 {"br", SK__CODING_BR}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == n && strncasecmp(v, names[i].name, n) == 0) {
            *c = names[i].c;
            return 0;
        }
    return SK_EUNSUPPORTED;
}

const char *sk__coding_name(enum sk__coding c)
{
    switch (c) {
    case SK__CODING_GZIP: return "gzip";
    case SK__CODING_DEFLATE: return "deflate";
    case SK__CODING_BR: return "br";
    default: return "identity";
    }
}

/* ---- the codecs' allocations: through sk__malloc (the OOM tests) ---- */

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return sk__calloc(items, size);
}

static void z_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    free(p);
}

static void *br_alloc(void *opaque, size_t size)
{
    (void)opaque;
    return sk__malloc(size);
}

static void br_free(void *opaque, void *p)
{
    (void)opaque;
    free(p);
}

int sk__decoder_new(enum sk__coding c, sk__decode_out_fn out, void *arg, struct sk__decoder **d)
{
    *d = NULL;
    if (c != SK__CODING_GZIP && c != SK__CODING_DEFLATE && c != SK__CODING_BR)
        return SK_EUSAGE;
    struct sk__decoder *k = sk__malloc(sizeof *k);
    if (!k)
        return SK_ERR(ENOMEM);
    memset(k, 0, offsetof(struct sk__decoder, buf));
    k->coding = c;
    k->out = out;
    k->arg = arg;
    k->z.zalloc = z_alloc;
    k->z.zfree = z_free;
    int rc = 0;
    if (c == SK__CODING_BR) {
        if (!(k->br = BrotliDecoderCreateInstance(br_alloc, br_free, NULL)))
            rc = SK_ERR(ENOMEM);
        k->started = true;
    } else if (c == SK__CODING_GZIP) {
        if (inflateInit2(&k->z, 16 + MAX_WBITS) != Z_OK) /* a gzip header only */
            rc = SK_ERR(ENOMEM);
        k->started = rc == 0;
    } /* deflate: set up on its first two bytes */
    if (rc < 0) {
        free(k);
        return rc;
    }
    *d = k;
    return 0;
}

static int fail(struct sk__decoder *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct sk__decoder *d, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->why, sizeof d->why, fmt, ap);
    va_end(ap);
    return d->failed = code;
}

/* The output buffer's first n bytes go to the callback. */
static int emit(struct sk__decoder *d, size_t n)
{
    if (n == 0)
        return 0;
    int rc = d->out(d->arg, d->buf, n);
    return rc < 0 ? (d->failed = rc) : 0;
}

/* deflate: zlib's two-byte header (CM 8, CINFO <= 7, FCHECK) or raw
 * deflate, which a raw stream's first bytes cannot pass for (RFC 1950's
 * check rules out every valid raw start that also has CM 8 and the sum). */
static bool zlib_header(const unsigned char h[2])
{
    return (h[0] & 0x0f) == 8 && (h[0] >> 4) <= 7 && ((h[0] << 8) | h[1]) % 31 == 0;
}

static int zlib_feed(struct sk__decoder *d, const unsigned char *p, size_t n)
{
    z_stream *z = &d->z;
    while (n > 0) {
        if (d->ended)
            return fail(d, SK_EPROTO, "data after the end of the %s stream",
                        sk__coding_name(d->coding));
        uInt take = n > UINT32_MAX ? UINT32_MAX : (uInt)n;
        z->next_in = (Bytef *)(uintptr_t)p; /* zlib does not write its input */
        z->avail_in = take;
        /* Until this input is used up and no output is held back. */
        do {
            z->next_out = (Bytef *)d->buf;
            z->avail_out = sizeof d->buf;
            int zr = inflate(z, Z_NO_FLUSH);
            if (zr == Z_MEM_ERROR)
                return fail(d, SK_ERR(ENOMEM), "%s", "out of memory");
            if (zr == Z_NEED_DICT || zr == Z_DATA_ERROR || zr == Z_STREAM_ERROR)
                return fail(d, SK_EPROTO, "%s", z->msg ? z->msg : "invalid data");
            int rc = emit(d, sizeof d->buf - z->avail_out);
            if (rc < 0)
                return rc;
            if (zr == Z_STREAM_END) {
                d->ended = true;
                break;
            }
        } while (z->avail_in > 0 || z->avail_out == 0);
        size_t used = take - z->avail_in;
        p += used;
        n -= used;
    }
    return 0;
}

/* deflate's first two bytes decide between zlib and raw. */
static int deflate_start(struct sk__decoder *d, const unsigned char **p, size_t *n)
{
    while (d->nhead < 2 && *n > 0) {
        d->head[d->nhead++] = **p;
        (*p)++;
        (*n)--;
    }
    if (d->nhead < 2)
        return 0;
    if (inflateInit2(&d->z, zlib_header(d->head) ? MAX_WBITS : -MAX_WBITS) != Z_OK)
        return fail(d, SK_ERR(ENOMEM), "%s", "out of memory");
    d->started = true;
    return zlib_feed(d, d->head, 2);
}

static int br_feed(struct sk__decoder *d, const unsigned char *p, size_t n)
{
    while (n > 0 || BrotliDecoderHasMoreOutput(d->br)) {
        if (d->ended)
            return fail(d, SK_EPROTO, "%s", "data after the end of the br stream");
        size_t avail_out = sizeof d->buf;
        uint8_t *next_out = (uint8_t *)d->buf;
        BrotliDecoderResult r =
            BrotliDecoderDecompressStream(d->br, &n, &p, &avail_out, &next_out, NULL);
        if (r == BROTLI_DECODER_RESULT_ERROR) {
            BrotliDecoderErrorCode e = BrotliDecoderGetErrorCode(d->br);
            /* the _ALLOC_ codes lie between these two */
            if (e <= BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES &&
                e >= BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES)
                return fail(d, SK_ERR(ENOMEM), "%s", "out of memory");
            return fail(d, SK_EPROTO, "%s", BrotliDecoderErrorString(e));
        }
        int rc = emit(d, sizeof d->buf - avail_out);
        if (rc < 0)
            return rc;
        if (r == BROTLI_DECODER_RESULT_SUCCESS)
            d->ended = true;
        else if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
            break; /* n is 0 */
    }
    return 0;
}

int sk__decoder_feed(struct sk__decoder *d, const void *data, size_t n)
{
    const unsigned char *p = data;
    if (d->failed)
        return d->failed;
    if (n == 0)
        return 0;
    if (d->coding == SK__CODING_BR)
        return br_feed(d, p, n);
    if (!d->started) {
        int rc = deflate_start(d, &p, &n);
        if (rc < 0 || !d->started)
            return rc;
    }
    return zlib_feed(d, p, n);
}

int sk__decoder_finish(struct sk__decoder *d)
{
    if (d->failed)
        return d->failed;
    if (!d->ended)
        return fail(d, SK_ETRUNCATED, "the %s stream ends before its end marker",
                    sk__coding_name(d->coding));
    return 0;
}

const char *sk__decoder_error(const struct sk__decoder *d)
{
    return d->why;
}

void sk__decoder_free(struct sk__decoder *d)
{
    if (!d)
        return;
    if (d->br)
        BrotliDecoderDestroyInstance(d->br);
    if (d->coding != SK__CODING_BR && d->started)
        inflateEnd(&d->z);
    free(d);
}

/* ---- the HTTP client's side (fetch_int.h) ---- */

/* The decoder's output: the body as saved. */
static int decoded(void *arg, const char *p, size_t n)
{
    struct sk_fetch *f = arg;
    return sk__fetch_sink_out(f, f->w.sink, p, n);
}

int sk__fetch_decode_begin(struct sk_fetch *f, struct sk__fetch_sink *sink,
                           const struct sk__fetch_resp *rp, uint64_t already)
{
    sink->dec = NULL;
    bool asked = f->o.flags & SK_FETCH_COMPRESSED;
    if (asked && rp->coding_rc == SK_EPARSE)
        return sk_fetch_set_error(f, SK_EPROTO,
                                  "several Content-Encodings (%s): not decoded (body not saved)",
                                  rp->coding_text);
    if (asked && rp->coding_rc < 0)
        return sk_fetch_set_error(f, SK_EPROTO, "unsupported Content-Encoding: %s (body not saved)",
                                  rp->coding_text);
    uint64_t max = f->o.max_filesize;
    if (asked && rp->coding != SK__CODING_IDENTITY) {
        int rc = sk__decoder_new(rp->coding, decoded, f, &sink->dec);
        return rc < 0 ? sk_fetch_fail_as(f, rc, "setting up the decoder") : 0;
    }
    /* As is: the length says the size before a byte is read. */
    if (max && rp->framing.kind == SK_HTTP_BODY_LENGTH &&
        (already > max || rp->framing.length > max - already)) {
        uint64_t size = rp->framing.length > UINT64_MAX - already ? UINT64_MAX
                                                                   : rp->framing.length + already;
        f->cause = SK_FETCH_CAUSE_MAX_FILESIZE;
        return sk_fetch_set_error(f, SK_ETOOBIG,
                                  "the body is %llu bytes, over the size limit of %llu bytes "
                                  "(body not saved)",
                                  (unsigned long long)size, (unsigned long long)max);
    }
    return 0;
}

int sk__fetch_decode_put(struct sk_fetch *f, struct sk__fetch_sink *sink, const char *p, size_t n)
{
    int rc = sk__decoder_feed(sink->dec, p, n);
    if (rc >= 0 || f->msg[0]) /* the output's own failures are recorded */
        return rc;
    if (rc != SK_EPROTO)
        return sk_fetch_fail_as(f, rc, "decoding the body");
    return sk_fetch_set_error(f, rc, "corrupt %s body: %s (body not saved)",
                              sk__coding_name(sink->dec->coding), sk__decoder_error(sink->dec));
}

int sk__fetch_decode_end(struct sk_fetch *f, struct sk__fetch_sink *sink)
{
    if (!sink->dec)
        return 0;
    int rc = sk__decoder_finish(sink->dec);
    if (rc >= 0 || f->msg[0])
        return rc;
    return sk_fetch_set_error(f, rc, "truncated %s body: %s (body not saved)",
                              sk__coding_name(sink->dec->coding), sk__decoder_error(sink->dec));
}

void sk__fetch_decode_free(struct sk__fetch_sink *sink)
{
    sk__decoder_free(sink->dec);
    sink->dec = NULL;
}
