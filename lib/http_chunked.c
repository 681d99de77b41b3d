/* Streaming decoder for the chunked transfer coding (RFC 9112 7.1).
 *
 *   chunked-body   = *chunk last-chunk trailer-section CRLF
 *   chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-size     = 1*HEXDIG                 ; at most SK_CHUNK_HEX_MAX digits
 *   last-chunk     = 1*("0") [ chunk-ext ] CRLF
 *   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
 *   trailer-section = *( field-line CRLF )
 *
 * Extensions are skipped (their bytes must be text: HTAB / SP / VCHAR /
 * obs-text, and must start with BWS ";"); trailer fields are checked for a
 * ':' and discarded. Lines end in CRLF only. Bounds: hex digits, extension
 * and trailer line length, trailer section size and count, and the share of
 * framing overhead (a stream of 1-byte chunks is a cheap way to make a
 * client burn CPU: over 100 KiB of overhead that is more than 80 % of the
 * bytes read is refused). The failed state is sticky. */
#include <limits.h>

#include "chars_int.h"
#include "sockit/http.h"

enum {
    CH_SIZE = 0,  /* chunk-size digits; zero-filled state starts here */
    CH_EXT,       /* after the size: BWS, extensions, up to CR */
    CH_SIZE_LF,   /* CR seen after the size line: expect LF */
    CH_DATA,      /* chunk-data: `remaining` bytes */
    CH_DATA_CR,   /* after the data: expect CR */
    CH_DATA_LF,   /* expect LF, then the next chunk-size */
    CH_TRAILER,   /* at the start of a trailer line, or the final CRLF */
    CH_TRAILER_LINE, /* inside a trailer field line, up to CR */
    CH_TRAILER_LF,   /* CR seen after a trailer line: expect LF */
    CH_FINAL_LF,     /* CR of the final empty line seen: expect LF */
    CH_DONE,      /* the whole chunked body has been read */
};

#define OVERHEAD_FLOOR (100u * 1024u)


static int fail(struct sk_chunked *d, int err)
{
    d->err = err;
    return err;
}

bool sk_chunked_done(const struct sk_chunked *d)
{
    return d->state == CH_DONE && d->err == 0;
}

/* Handles one framing byte c. Returns 0 or a negative code. */
static int step(struct sk_chunked *d, unsigned char c)
{
    switch (d->state) {
    case CH_SIZE: {
        int v = sk__hex_digit(c);
        if (v >= 0) {
            if (d->digits == SK_CHUNK_HEX_MAX || d->remaining > (UINT64_MAX >> 4))
                return SK_ETOOBIG;
            if (d->remaining > 0 || v > 0)
                d->digits++; /* leading zeros do not count towards the bound */
            d->remaining = (d->remaining << 4) | (uint64_t)v;
            d->line_len++;
            if (d->line_len > SK_CHUNK_LINE_MAX)
                return SK_ETOOBIG;
            return 0;
        }
        if (d->line_len == 0)
            return SK_EPARSE; /* no digit at all */
        if (c == '\r') {
            d->state = CH_SIZE_LF;
            return 0;
        }
        if (c != ';' && c != ' ' && c != '\t')
            return SK_EPARSE;
        d->state = CH_EXT;
        d->seen = (c == ';');
        return 0;
    }
    case CH_EXT:
        if (c == '\r') {
            d->state = CH_SIZE_LF;
            return 0;
        }
        if (!sk__is(c, SK__CH_TEXT))
            return SK_EPARSE;
        if (!d->seen) { /* BWS before the first ';' */
            if (c == ';')
                d->seen = true;
            else if (c != ' ' && c != '\t')
                return SK_EPARSE;
        }
        if (++d->line_len > SK_CHUNK_LINE_MAX)
            return SK_ETOOBIG;
        return 0;
    case CH_SIZE_LF:
        if (c != '\n')
            return SK_EPARSE;
        d->line_len = 0;
        d->digits = 0;
        d->seen = false;
        d->state = d->remaining > 0 ? CH_DATA : CH_TRAILER;
        return 0;
    case CH_DATA_CR:
        if (c != '\r')
            return SK_EPARSE;
        d->state = CH_DATA_LF;
        return 0;
    case CH_DATA_LF:
        if (c != '\n')
            return SK_EPARSE;
        d->state = CH_SIZE;
        return 0;
    case CH_TRAILER:
        if (c == '\r') {
            d->state = CH_FINAL_LF;
            return 0;
        }
        if (++d->trailer_lines > SK_CHUNK_TRAILERS_MAX)
            return SK_ETOOBIG;
        d->state = CH_TRAILER_LINE;
        d->line_len = 0;
        d->seen = false;
        if (c == ' ' || c == '\t' || c == ':')
            return SK_EPARSE; /* obs-fold or an empty field name */
        __attribute__((fallthrough)); /* the byte starts the line */
    case CH_TRAILER_LINE:
        if (c == '\r') {
            if (!d->seen)
                return SK_EPARSE; /* a field line without ':' */
            d->state = CH_TRAILER_LF;
            return 0;
        }
        if (!sk__is(c, SK__CH_TEXT))
            return SK_EPARSE;
        if (c == ':')
            d->seen = true;
        if (++d->line_len > SK_CHUNK_LINE_MAX)
            return SK_ETOOBIG;
        return 0;
    case CH_TRAILER_LF:
        if (c != '\n')
            return SK_EPARSE;
        d->state = CH_TRAILER;
        return 0;
    case CH_FINAL_LF:
        if (c != '\n')
            return SK_EPARSE;
        d->state = CH_DONE;
        return 0;
    default:
        return SK_EPARSE;
    }
}

int sk_chunked_feed(struct sk_chunked *d, const char *in, size_t len, const char **data,
                    size_t *data_len)
{
    *data = NULL;
    *data_len = 0;
    if (d->err)
        return d->err;
    if (len > INT_MAX)
        len = INT_MAX;
    size_t i = 0;
    while (i < len && d->state != CH_DONE) {
        if (d->state == CH_DATA) {
            size_t n = len - i;
            if (n > d->remaining)
                n = (size_t)d->remaining;
            *data = in + i;
            *data_len = n;
            d->remaining -= n;
            d->data_bytes += n;
            i += n;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            return (int)i;
        }
        int rc = step(d, (unsigned char)in[i]);
        if (rc < 0)
            return fail(d, rc);
        if (d->state >= CH_TRAILER && d->state <= CH_FINAL_LF &&
            ++d->trailer_bytes > SK_CHUNK_TRAILER_MAX)
            return fail(d, SK_ETOOBIG);
        i++;
        d->overhead_bytes++;
        if (d->overhead_bytes > OVERHEAD_FLOOR &&
            d->overhead_bytes / 4 > d->data_bytes) /* overhead > 80 % of all bytes */
            return fail(d, SK_ETOOBIG);
    }
    return (int)i;
}
