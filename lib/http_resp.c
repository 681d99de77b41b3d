/* HTTP/1.1 response head parser and body framing (RFC 9112).
 *
 * Grammar accepted:
 *
 *   response-head = status-line *( field-line CRLF ) CRLF
 *   status-line   = "HTTP/1." DIGIT SP 3DIGIT [ SP reason-phrase ] CRLF
 *   reason-phrase = *( HTAB / SP / VCHAR / obs-text )
 *   field-line    = field-name ":" OWS field-value OWS
 *   field-name    = token = 1*tchar
 *   field-value   = *( HTAB / SP / VCHAR / obs-text )
 *   OWS           = *( SP / HTAB )
 *
 * Refused (SK_EPARSE): another major version, a status code that is not
 * three digits or below 100, garbage after it without SP, a bare CR or a
 * bare LF (lines end in CRLF only), obs-fold (a line starting with SP or
 * HTAB), whitespace before ':', a field line without ':', control bytes.
 * Bounded (SK_ETOOBIG): the head's size and its number of fields.
 *
 * The parser is stateless (picohttpparser style): each call re-reads the
 * head from the start, and reports an error as soon as the bytes seen so far
 * prove one, without waiting for the end of the head. */
#include <string.h>
#include <strings.h>

#include "chars_int.h"
#include "sockit/http.h"


/* The cursor over buf[0..len) used by the helpers below. Each helper
 * returns the advanced position, or NULL with *rc set (SK_HTTP_INCOMPLETE
 * or SK_EPARSE). */
struct cur {
    const char *p, *end;
    int rc;
};

/* Expects CRLF at c->p. */
static const char *eat_crlf(struct cur *c, const char *p)
{
    if (p == c->end)
        return c->rc = SK_HTTP_INCOMPLETE, NULL;
    if (*p != '\r')
        return c->rc = SK_EPARSE, NULL;
    if (++p == c->end)
        return c->rc = SK_HTTP_INCOMPLETE, NULL;
    if (*p != '\n')
        return c->rc = SK_EPARSE, NULL;
    return p + 1;
}

/* Skips text bytes up to the CR of the line's end; returns the CR. */
static const char *scan_text(struct cur *c, const char *p)
{
    while (p < c->end && sk__is((unsigned char)*p, SK__CH_TEXT))
        p++;
    if (p == c->end)
        return c->rc = SK_HTTP_INCOMPLETE, NULL;
    if (*p != '\r')
        return c->rc = SK_EPARSE, NULL;
    return p;
}

/* Expects the literal lit at p; a prefix of it at the end is INCOMPLETE. */
static const char *eat_lit(struct cur *c, const char *p, const char *lit)
{
    for (; *lit; lit++, p++) {
        if (p == c->end)
            return c->rc = SK_HTTP_INCOMPLETE, NULL;
        if (*p != *lit)
            return c->rc = SK_EPARSE, NULL;
    }
    return p;
}

static const char *parse_status_line(struct cur *c, const char *p, struct sk_http_resp *r)
{
    if (!(p = eat_lit(c, p, "HTTP/1.")))
        return NULL;
    if (p == c->end)
        return c->rc = SK_HTTP_INCOMPLETE, NULL;
    if (*p < '0' || *p > '9')
        return c->rc = SK_EPARSE, NULL;
    r->version_minor = *p++ - '0';
    if (!(p = eat_lit(c, p, " ")))
        return NULL;
    int status = 0;
    for (int i = 0; i < 3; i++, p++) {
        if (p == c->end)
            return c->rc = SK_HTTP_INCOMPLETE, NULL;
        if (*p < '0' || *p > '9')
            return c->rc = SK_EPARSE, NULL;
        status = status * 10 + (*p - '0');
    }
    if (status < 100)
        return c->rc = SK_EPARSE, NULL;
    r->status = status;
    if (p == c->end)
        return c->rc = SK_HTTP_INCOMPLETE, NULL;
    if (*p == ' ') { /* reason-phrase, possibly empty */
        const char *reason = ++p;
        if (!(p = scan_text(c, p)))
            return NULL;
        r->reason = reason;
        r->reason_len = (size_t)(p - reason);
    } else {
        r->reason = p;
    }
    return eat_crlf(c, p);
}

static const char *parse_field(struct cur *c, const char *p, struct sk_http_header *h)
{
    const char *name = p;
    while (p < c->end && sk__is((unsigned char)*p, SK__CH_TCHAR))
        p++;
    if (p == c->end)
        return c->rc = SK_HTTP_INCOMPLETE, NULL;
    if (*p != ':' || p == name) /* no colon, empty name, obs-fold, "name :" */
        return c->rc = SK_EPARSE, NULL;
    h->name = name;
    h->name_len = (size_t)(p - name);
    p++;
    while (p < c->end && (*p == ' ' || *p == '\t'))
        p++;
    const char *value = p;
    if (!(p = scan_text(c, p)))
        return NULL;
    const char *vend = p;
    while (vend > value && (vend[-1] == ' ' || vend[-1] == '\t'))
        vend--;
    h->value = value;
    h->value_len = (size_t)(vend - value);
    return eat_crlf(c, p);
}

int sk_http_resp_parse(const char *buf, size_t len, struct sk_http_resp *r,
                       struct sk_http_header *headers, size_t max_headers)
{
    r->version_minor = -1;
    r->status = 0;
    r->reason = NULL;
    r->reason_len = 0;
    r->headers = headers;
    r->num_headers = 0;
    /* Never look past the bound: a head that has not ended within it is
     * too big, whatever follows. */
    bool capped = len > SK_HTTP_HEAD_MAX;
    struct cur c = {.p = buf, .end = buf + (capped ? SK_HTTP_HEAD_MAX : len)};
    const char *p = parse_status_line(&c, buf, r);
    while (p) {
        if (p == c.end) {
            c.rc = SK_HTTP_INCOMPLETE;
            break;
        }
        if (*p == '\r') { /* the empty line: end of head */
            if (!(p = eat_crlf(&c, p)))
                break;
            return (int)(p - buf);
        }
        if (r->num_headers == max_headers)
            return SK_ETOOBIG;
        p = parse_field(&c, p, &headers[r->num_headers]);
        if (p)
            r->num_headers++;
    }
    if (c.rc == SK_HTTP_INCOMPLETE && (capped || len == SK_HTTP_HEAD_MAX))
        return SK_ETOOBIG;
    return c.rc;
}

const struct sk_http_header *sk_http_header_find(const struct sk_http_resp *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct sk_http_header *h = &r->headers[i];
        if (h->name_len == n && strncasecmp(h->name, name, n) == 0)
            return h;
    }
    return NULL;
}

bool sk_http_is_token(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!sk__is((unsigned char)s[i], SK__CH_TCHAR))
            return false;
    return n > 0;
}

int sk_http_parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 18)
        return SK_EPARSE;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SK_EPARSE;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Content-Length = 1*DIGIT, possibly repeated as a list ("5, 5") or in
 * several fields: every element must be the same number (RFC 9112 6.3). */
static int content_length(const struct sk_http_resp *r, bool *present, uint64_t *len)
{
    *present = false;
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct sk_http_header *h = &r->headers[i];
        if (h->name_len != 14 || strncasecmp(h->name, "Content-Length", 14) != 0)
            continue;
        const char *p = h->value, *end = h->value + h->value_len;
        do {
            const char *e = memchr(p, ',', (size_t)(end - p));
            if (!e)
                e = end;
            const char *a = p, *b = e;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
                b--;
            uint64_t v;
            if (sk_http_parse_u64(a, (size_t)(b - a), &v) < 0)
                return SK_EPARSE;
            if (*present && v != *len)
                return SK_EPARSE;
            *present = true;
            *len = v;
            p = e + 1;
        } while (p <= end);
    }
    return 0;
}

/* Transfer-Encoding: only exactly "chunked" (any case, in one or more
 * fields) is supported; we never ask for anything else. */
static int transfer_encoding(const struct sk_http_resp *r, bool *chunked)
{
    unsigned seen = 0;
    *chunked = false;
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct sk_http_header *h = &r->headers[i];
        if (h->name_len != 17 || strncasecmp(h->name, "Transfer-Encoding", 17) != 0)
            continue;
        if (h->value_len != 7 || strncasecmp(h->value, "chunked", 7) != 0 || seen++)
            return SK_EUNSUPPORTED;
        *chunked = true;
    }
    return 0;
}

int sk_http_framing(const struct sk_http_resp *r, bool head_request, struct sk_http_framing *f)
{
    f->kind = SK_HTTP_BODY_NONE;
    f->length = 0;
    bool has_len, chunked;
    uint64_t len = 0;
    int rc = content_length(r, &has_len, &len);
    if (rc < 0)
        return rc;
    if (head_request || r->status < 200 || r->status == 204 || r->status == 304)
        return 0;
    if ((rc = transfer_encoding(r, &chunked)) < 0)
        return rc;
    if (chunked && has_len)
        return SK_EPARSE; /* a smuggling pattern: never guess */
    if (chunked) {
        f->kind = SK_HTTP_BODY_CHUNKED;
    } else if (has_len) {
        f->kind = SK_HTTP_BODY_LENGTH;
        f->length = len;
    } else {
        f->kind = SK_HTTP_BODY_CLOSE;
    }
    return 0;
}
