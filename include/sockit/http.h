/* HTTP/1.1 response parsing (RFC 9112): the head, the body's framing, and
 * the chunked transfer coding.
 *
 * Both parsers work on caller-owned buffers and allocate nothing. They
 * return the number of bytes they used, SK_HTTP_INCOMPLETE when they need
 * more input, or a negative error code (SK_EPARSE, SK_ETOOBIG,
 * SK_EUNSUPPORTED). */
#ifndef SOCKIT_HTTP_H
#define SOCKIT_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sockit/err.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SK_HTTP_INCOMPLETE SK_EAGAIN_MORE
#define SK_HTTP_HEAD_MAX (64 * 1024) /* bound on a response head (status line + fields) */
#define SK_HTTP_HEADERS_MAX 100      /* a sensible capacity for the header array */

/* One field line. name and value point into the parsed buffer; the value
 * has no leading or trailing whitespace. */
struct sk_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

struct sk_http_resp {
    int version_minor; /* HTTP/1.x */
    int status;        /* 100-999 */
    const char *reason;
    size_t reason_len;
    struct sk_http_header *headers; /* caller's array, filled in order */
    size_t num_headers;
};

/* Parses a response head at buf[0..len): the status line, the field lines
 * and the empty line. headers[0..max_headers) receives the fields. On entry
 * every output of r is reset. Returns the head's length (> 0; the body
 * starts there), SK_HTTP_INCOMPLETE, SK_EPARSE (malformed: an error is
 * reported as soon as the bytes seen prove it), or SK_ETOOBIG (head over
 * SK_HTTP_HEAD_MAX, or more than max_headers fields). Stateless: feed the
 * whole head received so far on every call. */
int sk_http_resp_parse(const char *buf, size_t len, struct sk_http_resp *r,
                       struct sk_http_header *headers, size_t max_headers);

/* The first field named `name` (case-insensitive), or NULL. */
const struct sk_http_header *sk_http_header_find(const struct sk_http_resp *r, const char *name);

enum sk_http_body {
    SK_HTTP_BODY_NONE,    /* no body: HEAD, 1xx, 204, 304 */
    SK_HTTP_BODY_LENGTH,  /* Content-Length bytes */
    SK_HTTP_BODY_CHUNKED, /* chunked transfer coding, decoded by sk_chunked */
    SK_HTTP_BODY_CLOSE,   /* until the server closes the connection */
};

struct sk_http_framing {
    enum sk_http_body kind;
    uint64_t length; /* for SK_HTTP_BODY_LENGTH */
};

/* Decides how the body of r is delimited (RFC 9112 6.3). head_request: r
 * answers a HEAD. Returns 0, SK_EPARSE (Content-Length not a number,
 * overflowing, or with conflicting values; Content-Length together with
 * Transfer-Encoding) or SK_EUNSUPPORTED (a transfer coding other than
 * "chunked"). */
int sk_http_framing(const struct sk_http_resp *r, bool head_request, struct sk_http_framing *f);

/* Parses a decimal number of at most 18 digits (no sign, no space).
 * Returns 0 or SK_EPARSE. */
int sk_http_parse_u64(const char *s, size_t n, uint64_t *out);
/* True if s[0..n) is a token (RFC 9110 5.6.2: a header name, a method). */
bool sk_http_is_token(const char *s, size_t n);

/* Streaming decoder of the chunked transfer coding. Zero-fill before use
 * (`struct sk_chunked d = {0};`). Once failed, it stays failed. */
struct sk_chunked {
    unsigned state;
    unsigned digits;         /* hex digits of the current chunk-size */
    uint64_t remaining;      /* data bytes left in the current chunk */
    size_t line_len;         /* bytes of the current extension or trailer line */
    size_t trailer_bytes;    /* total size of the trailer section */
    unsigned trailer_lines;
    bool seen;               /* ";" seen in this extension, ":" in this trailer line */
    uint64_t data_bytes;     /* decoded so far */
    uint64_t overhead_bytes; /* framing bytes so far */
    int err;                 /* sticky failure code, 0 while healthy */
};

#define SK_CHUNK_HEX_MAX 15          /* significant hex digits in a chunk-size (< 2^60) */
#define SK_CHUNK_LINE_MAX 4096       /* a chunk extension or trailer line */
#define SK_CHUNK_TRAILER_MAX (64 * 1024)
#define SK_CHUNK_TRAILERS_MAX 100

/* Feeds in[0..len). Returns how many bytes it used (0..len), or a negative
 * code (SK_EPARSE, SK_ETOOBIG; repeated on every later call). When the
 * span used holds body data, *data / *data_len point to it (inside in);
 * otherwise *data_len is 0. At most one run of data per call: call again
 * with the rest. Once sk_chunked_done() is true it uses nothing more; any
 * bytes after the body are the caller's. At most INT_MAX bytes are used
 * per call. */
int sk_chunked_feed(struct sk_chunked *d, const char *in, size_t len, const char **data,
                    size_t *data_len);

/* True once the last chunk, the trailers and the final CRLF have been seen. */
bool sk_chunked_done(const struct sk_chunked *d);

#ifdef __cplusplus
}
#endif

#endif
