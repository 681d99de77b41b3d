/* Content-Encoding decoders (gzip, deflate, br) for the HTTP client's
 * --compressed: streaming, the output in pieces of at most
 * SK__DECODE_OUT_SIZE bytes handed to a callback, never the whole body in
 * memory. Shared inside lib/ (and with the unit tests and the fuzz target). */
#ifndef SOCKIT_DECODE_INT_H
#define SOCKIT_DECODE_INT_H

#include <stdbool.h>
#include <stddef.h>

#define SK__DECODE_OUT_SIZE (64 * 1024) /* the decoder's output buffer */

enum sk__coding {
    SK__CODING_IDENTITY, /* absent or "identity": the body as is */
    SK__CODING_GZIP,     /* "gzip", "x-gzip": one gzip member (RFC 1952) */
    SK__CODING_DEFLATE,  /* "deflate": zlib (RFC 1950), or raw deflate (RFC 1951) as some send */
    SK__CODING_BR,       /* "br": brotli (RFC 7932) */
};

/* The coding named by one Content-Encoding field value v[0..n). Returns 0,
 * SK_EUNSUPPORTED (a coding this decoder does not know) or SK_EPARSE (a
 * list of several codings, or an empty value). */
int sk__coding_parse(const char *v, size_t n, enum sk__coding *c);
/* "gzip", "deflate", "br", "identity". */
const char *sk__coding_name(enum sk__coding c);

/* Takes n decoded bytes (n > 0). Returns 0, or a negative code that stops
 * the decoding (sk__decoder_feed returns it). */
typedef int (*sk__decode_out_fn)(void *arg, const char *p, size_t n);

struct sk__decoder;

/* A decoder for c (not IDENTITY). Returns 0, SK_EUSAGE, -ENOMEM. */
int sk__decoder_new(enum sk__coding c, sk__decode_out_fn out, void *arg, struct sk__decoder **d);
/* Decodes p[0..n), handing the output to out as it comes. Returns 0,
 * SK_EPROTO (corrupt data, or bytes after the end of the stream: see
 * sk__decoder_error), or out's code. After a failure every call fails. */
int sk__decoder_feed(struct sk__decoder *d, const void *p, size_t n);
/* The input is over: 0 if the stream reached its end marker, SK_ETRUNCATED
 * if it stopped before it, the earlier failure if there was one. */
int sk__decoder_finish(struct sk__decoder *d);
/* Why the last SK_EPROTO or SK_ETRUNCATED ("" if none). */
const char *sk__decoder_error(const struct sk__decoder *d);
void sk__decoder_free(struct sk__decoder *d);

#endif
