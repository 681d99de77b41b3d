/* Unit tests: the Content-Encoding decoders of fetch --compressed
 * (lib/fetch_decode.c). Every sample is fed whole, in two pieces at every
 * cut, and byte by byte: the outcome and the output must not depend on
 * where the input was split. The samples are made here with zlib and
 * libbrotlienc. */
#include <brotli/encode.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "alloc_int.h"
#include "decode_int.h"
#include "sockit.h"

/* ---- samples ---- */

struct blob {
    unsigned char *p;
    size_t n;
};

static struct blob text(size_t lines)
{
    struct blob b = {malloc(lines * 64 + 1), 0};
    for (size_t i = 0; i < lines; i++)
        b.n += (size_t)sprintf((char *)b.p + b.n, "line %zu of the sample, some text to squeeze\n", i);
    return b;
}

static struct blob zeros(size_t n)
{
    struct blob b = {calloc(1, n), n};
    return b;
}

/* window_bits: 15 zlib, -15 raw deflate, 16 + 15 gzip. */
static struct blob zip(struct blob in, int window_bits)
{
    z_stream z = {0};
    cr_assert_eq(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, in.n) + 64;
    struct blob b = {malloc(cap), 0};
    z.next_in = in.p;
    z.avail_in = (uInt)in.n;
    z.next_out = b.p;
    z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    b.n = cap - z.avail_out;
    deflateEnd(&z);
    return b;
}

static struct blob brotli(struct blob in)
{
    size_t cap = BrotliEncoderMaxCompressedSize(in.n) + 64;
    struct blob b = {malloc(cap), cap};
    cr_assert(BrotliEncoderCompress(5, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, in.n, in.p, &b.n,
                                    b.p));
    return b;
}

static struct blob encode(enum sk__coding c, struct blob in, bool raw)
{
    if (c == SK__CODING_BR)
        return brotli(in);
    return zip(in, c == SK__CODING_GZIP ? 16 + MAX_WBITS : raw ? -MAX_WBITS : MAX_WBITS);
}

/* ---- feeding ---- */

struct sink {
    unsigned char *p;
    size_t n, cap;
    size_t limit;    /* fail past this many bytes; 0: none */
    size_t max_call; /* the largest piece handed over */
    unsigned calls;
};

static int collect(void *arg, const char *p, size_t n)
{
    struct sink *s = arg;
    cr_assert_gt(n, 0);
    s->calls++;
    if (n > s->max_call)
        s->max_call = n;
    if (s->limit && s->n + n > s->limit)
        return SK_ETOOBIG;
    if (s->n + n > s->cap) {
        s->cap = (s->n + n) * 2;
        s->p = realloc(s->p, s->cap);
    }
    memcpy(s->p + s->n, p, n);
    s->n += n;
    return 0;
}

/* Feeds in[0..n) in pieces: cut[0..ncuts) are the offsets where a piece
 * ends (increasing); step > 0 feeds step bytes at a time instead. Each piece is an exact-size heap copy (ASan sees over-reads).
 * Returns the first failure, else finish's verdict. */
static int run(enum sk__coding c, const unsigned char *in, size_t n, const size_t *cut,
               size_t ncuts, size_t step, struct sink *s)
{
    struct sk__decoder *d;
    cr_assert_eq(sk__decoder_new(c, collect, s, &d), 0);
    int rc = 0;
    size_t at = 0, k = 0;
    while (rc == 0 && at < n) {
        size_t end = step ? (n - at < step ? n : at + step) : k < ncuts ? cut[k++] : n;
        unsigned char *piece = malloc(end - at + 1);
        memcpy(piece, in + at, end - at);
        rc = sk__decoder_feed(d, piece, end - at);
        free(piece);
        at = end;
    }
    if (rc == 0)
        rc = sk__decoder_finish(d);
    else
        cr_assert_eq(sk__decoder_finish(d), rc, "a failure stays");
    if (rc == SK_EPROTO || rc == SK_ETRUNCATED)
        cr_assert_neq(sk__decoder_error(d)[0], '\0');
    sk__decoder_free(d);
    return rc;
}

static void reset(struct sink *s)
{
    s->n = 0;
    s->calls = 0;
}

/* The sink holds exactly want. */
static bool holds(const struct sink *s, struct blob want)
{
    return s->n == want.n && (want.n == 0 || memcmp(s->p, want.p, want.n) == 0);
}

/* The encoded e decodes to want whole, at every cut into 2, byte by byte. */
static void decodes_everywhere(enum sk__coding c, struct blob e, struct blob want)
{
    struct sink s = {0};
    cr_assert_eq(run(c, e.p, e.n, NULL, 0, 0, &s), 0);
    cr_assert(holds(&s, want));
    for (size_t cut = 0; cut <= e.n; cut++) {
        reset(&s);
        cr_assert_eq(run(c, e.p, e.n, &cut, 1, 0, &s), 0, "cut at %zu", cut);
        cr_assert(holds(&s, want), "cut at %zu", cut);
    }
    reset(&s);
    cr_assert_eq(run(c, e.p, e.n, NULL, 0, 1, &s), 0);
    cr_assert(holds(&s, want));
    free(s.p);
}

/* The outcome of e is rc whole, at every cut into 2 and byte by byte; the
 * output before a failure is a prefix of want (when want is given). */
static void fails_everywhere(enum sk__coding c, struct blob e, int rc, struct blob want)
{
    struct sink s = {0};
    for (size_t cut = 0; cut <= e.n + 1; cut++) {
        reset(&s);
        int got = cut == e.n + 1 ? run(c, e.p, e.n, NULL, 0, 1, &s)
                                 : run(c, e.p, e.n, &cut, 1, 0, &s);
        cr_assert_eq(got, rc, "cut at %zu: %d", cut, got);
        if (want.p) {
            cr_assert_leq(s.n, want.n);
            cr_assert(s.n == 0 || memcmp(s.p, want.p, s.n) == 0, "cut at %zu", cut);
        }
    }
    free(s.p);
}

static void one_coding(enum sk__coding c, bool raw)
{
    struct blob t = text(40), e = encode(c, t, raw);
    decodes_everywhere(c, e, t);
    free(e.p);
    /* An empty body is a stream too. */
    struct blob none = {(unsigned char *)"", 0};
    e = encode(c, none, raw);
    decodes_everywhere(c, e, none);
    free(e.p);
    free(t.p);
}

Test(decode, gzip_at_every_cut)
{
    one_coding(SK__CODING_GZIP, false);
}

Test(decode, zlib_deflate_at_every_cut)
{
    one_coding(SK__CODING_DEFLATE, false);
}

Test(decode, raw_deflate_at_every_cut)
{
    one_coding(SK__CODING_DEFLATE, true);
}

Test(decode, br_at_every_cut)
{
    one_coding(SK__CODING_BR, false);
}

/* Larger than the output buffer: handed over in bounded pieces. */
Test(decode, large_output_comes_in_bounded_pieces)
{
    struct blob t = text(8000);
    const enum sk__coding cs[] = {SK__CODING_GZIP, SK__CODING_DEFLATE, SK__CODING_BR};
    for (size_t i = 0; i < 3; i++) {
        struct blob e = encode(cs[i], t, false);
        struct sink s = {0};
        cr_assert_eq(run(cs[i], e.p, e.n, NULL, 0, 0, &s), 0);
        cr_assert(holds(&s, t));
        cr_assert_leq(s.max_call, SK__DECODE_OUT_SIZE);
        cr_assert_gt(s.calls, t.n / SK__DECODE_OUT_SIZE);
        reset(&s);
        cr_assert_eq(run(cs[i], e.p, e.n, NULL, 0, 1, &s), 0);
        cr_assert(holds(&s, t));
        free(s.p);
        free(e.p);
    }
    free(t.p);
}

/* Every proper prefix: no error while feeding, truncated at the end. */
static void truncated_everywhere(enum sk__coding c, bool raw)
{
    struct blob t = text(40), e = encode(c, t, raw);
    struct sink s = {0};
    for (size_t len = 0; len < e.n; len++) {
        reset(&s);
        cr_assert_eq(run(c, e.p, len, NULL, 0, 0, &s), SK_ETRUNCATED, "prefix %zu", len);
        cr_assert(s.n <= t.n && (s.n == 0 || memcmp(s.p, t.p, s.n) == 0));
        reset(&s);
        size_t cut = len / 2;
        cr_assert_eq(run(c, e.p, len, &cut, 1, 0, &s), SK_ETRUNCATED, "prefix %zu", len);
    }
    free(s.p);
    free(e.p);
    free(t.p);
}

Test(decode, truncated_gzip)
{
    truncated_everywhere(SK__CODING_GZIP, false);
}

Test(decode, truncated_zlib)
{
    truncated_everywhere(SK__CODING_DEFLATE, false);
}

Test(decode, truncated_raw_deflate)
{
    truncated_everywhere(SK__CODING_DEFLATE, true);
}

Test(decode, truncated_br)
{
    truncated_everywhere(SK__CODING_BR, false);
}

/* Bytes after the end marker (a second gzip member too): corrupt. */
static void trailing_garbage(enum sk__coding c, bool raw, const char *tail, size_t tail_n)
{
    struct blob t = text(40), e = encode(c, t, raw);
    e.p = realloc(e.p, e.n + tail_n);
    memcpy(e.p + e.n, tail, tail_n);
    e.n += tail_n;
    fails_everywhere(c, e, SK_EPROTO, t);
    free(e.p);
    free(t.p);
}

Test(decode, trailing_garbage_is_corrupt)
{
    trailing_garbage(SK__CODING_GZIP, false, "x", 1);
    trailing_garbage(SK__CODING_GZIP, false, "\0\0\0\0", 4);
    trailing_garbage(SK__CODING_DEFLATE, false, "junk", 4);
    trailing_garbage(SK__CODING_DEFLATE, true, "junk", 4);
    trailing_garbage(SK__CODING_BR, false, "junk", 4);
}

Test(decode, a_second_gzip_member_is_refused)
{
    struct blob t = text(5), e = encode(SK__CODING_GZIP, t, false);
    struct blob two = {malloc(2 * e.n), 2 * e.n};
    memcpy(two.p, e.p, e.n);
    memcpy(two.p + e.n, e.p, e.n);
    fails_everywhere(SK__CODING_GZIP, two, SK_EPROTO, t);
    free(two.p);
    free(e.p);
    free(t.p);
}

/* A flipped byte: gzip's CRC-32 and zlib's Adler-32 catch it wherever it is. */
Test(decode, corrupt_gzip_and_zlib_at_every_byte)
{
    struct blob t = text(10);
    const int bits[] = {16 + MAX_WBITS, MAX_WBITS};
    for (size_t b = 0; b < 2; b++) {
        enum sk__coding c = b == 0 ? SK__CODING_GZIP : SK__CODING_DEFLATE;
        struct blob e = zip(t, bits[b]);
        for (size_t i = 0; i < e.n; i++) {
            if (c == SK__CODING_GZIP && (i == 3 || (i >= 4 && i < 10)))
                continue; /* FLG, MTIME, XFL, OS: a change may still be valid */
            e.p[i] ^= 0x55;
            struct sink s = {0};
            int rc = run(c, e.p, e.n, NULL, 0, 0, &s);
            cr_assert(rc == SK_EPROTO || rc == SK_ETRUNCATED, "byte %zu: %d", i, rc);
            reset(&s);
            cr_assert_eq(run(c, e.p, e.n, NULL, 0, 1, &s), rc, "byte %zu, byte by byte", i);
            free(s.p);
            e.p[i] ^= 0x55;
        }
        free(e.p);
    }
    free(t.p);
}

Test(decode, garbage_is_corrupt)
{
    static const char junk[] = "this is not compressed at all, not even a little";
    struct blob g = {(unsigned char *)junk, sizeof junk - 1};
    struct blob none = {0};
    fails_everywhere(SK__CODING_GZIP, g, SK_EPROTO, none);
    fails_everywhere(SK__CODING_DEFLATE, g, SK_EPROTO, none);
    static const unsigned char brjunk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    struct blob b = {(unsigned char *)brjunk, sizeof brjunk};
    fails_everywhere(SK__CODING_BR, b, SK_EPROTO, none);
}

/* 10 MiB of zeros, a few KiB coded: the output callback's limit stops it
 * at once, with no more than the limit and one buffer handed over. */
Test(decode, bombs_stop_at_the_limit)
{
    struct blob z = zeros(10u << 20);
    const enum sk__coding cs[] = {SK__CODING_GZIP, SK__CODING_DEFLATE, SK__CODING_BR};
    for (size_t i = 0; i < 3; i++) {
        struct blob e = encode(cs[i], z, false);
        cr_assert_lt(e.n, 64 * 1024, "a bomb: %zu bytes", e.n);
        for (size_t step = 0; step <= 1; step++) {
            struct sink s = {.limit = 1u << 20};
            cr_assert_eq(run(cs[i], e.p, e.n, NULL, 0, step, &s), SK_ETOOBIG);
            cr_assert_leq(s.n, 1u << 20);
            cr_assert_leq(s.max_call, SK__DECODE_OUT_SIZE);
            free(s.p);
        }
        /* Under the limit it decodes. */
        struct sink s = {.limit = 11u << 20};
        cr_assert_eq(run(cs[i], e.p, e.n, NULL, 0, 0, &s), 0);
        cr_assert_eq(s.n, z.n);
        free(s.p);
        free(e.p);
    }
    free(z.p);
}

Test(decode, content_encoding_values)
{
    enum sk__coding c = SK__CODING_BR;
    cr_assert_eq(sk__coding_parse("gzip", 4, &c), 0);
    cr_assert_eq(c, SK__CODING_GZIP);
    cr_assert_eq(sk__coding_parse(" X-GZip\t", 8, &c), 0);
    cr_assert_eq(c, SK__CODING_GZIP);
    cr_assert_eq(sk__coding_parse("Deflate", 7, &c), 0);
    cr_assert_eq(c, SK__CODING_DEFLATE);
    cr_assert_eq(sk__coding_parse("br", 2, &c), 0);
    cr_assert_eq(c, SK__CODING_BR);
    cr_assert_eq(sk__coding_parse("identity", 8, &c), 0);
    cr_assert_eq(c, SK__CODING_IDENTITY);
    cr_assert_eq(sk__coding_parse("  ", 2, &c), 0);
    cr_assert_eq(c, SK__CODING_IDENTITY);
    cr_assert_eq(sk__coding_parse("gzip, br", 8, &c), SK_EPARSE);
    cr_assert_eq(sk__coding_parse("gzip,", 5, &c), SK_EPARSE);
    cr_assert_eq(sk__coding_parse("zstd", 4, &c), SK_EUNSUPPORTED);
    cr_assert_eq(sk__coding_parse("gzipx", 5, &c), SK_EUNSUPPORTED);
    cr_assert_eq(sk__coding_parse("compress", 8, &c), SK_EUNSUPPORTED);
    cr_assert_str_eq(sk__coding_name(SK__CODING_DEFLATE), "deflate");
    struct sk__decoder *d = (struct sk__decoder *)&c;
    cr_assert_eq(sk__decoder_new(SK__CODING_IDENTITY, collect, NULL, &d), SK_EUSAGE);
    cr_assert_null(d);
    sk__decoder_free(NULL);
}

/* Every allocation (the decoder's, zlib's, brotli's) failing in turn: a
 * clean -ENOMEM, or the right output; nothing leaks (ASan). */
Test(decode, out_of_memory_at_every_allocation)
{
    struct blob t = text(2000);
    const enum sk__coding cs[] = {SK__CODING_GZIP, SK__CODING_DEFLATE, SK__CODING_BR};
    for (size_t i = 0; i < 3; i++) {
        struct blob e = encode(cs[i], t, false);
        bool passed = false;
        for (unsigned long k = 1; k < 64 && !passed; k++) {
            struct sink s = {0};
            struct sk__decoder *d = NULL;
            sk__alloc_fail_at(k);
            int rc = sk__decoder_new(cs[i], collect, &s, &d);
            if (rc == 0) {
                rc = sk__decoder_feed(d, e.p, e.n);
                if (rc == 0)
                    rc = sk__decoder_finish(d);
            }
            sk__alloc_fail_at(0);
            cr_assert(rc == 0 || rc == SK_ERR(ENOMEM), "k %lu: %d", k, rc);
            if (rc == 0) {
                cr_assert(holds(&s, t));
                passed = true;
            }
            sk__decoder_free(d);
            free(s.p);
        }
        cr_assert(passed);
        free(e.p);
    }
    free(t.p);
}
