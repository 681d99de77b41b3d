/* http(s) URL parsing and reference resolution.
 *
 * Grammar accepted (RFC 3986, restricted to what an HTTP client needs):
 *
 *   URL          = scheme "://" authority path-abempty [ "?" query ] [ "#" fragment ]
 *   scheme       = "http" / "https"              ; case-insensitive
 *   authority    = host [ ":" [ port ] ]         ; userinfo "@" is refused
 *   host         = "[" IPv6address "]" / reg-name
 *   reg-name     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" )   ; IPv4 included
 *   port         = 1*5DIGIT                      ; 1-65535, empty = default
 *   path, query  = *( pchar / "/" / "?" )        ; pct-encoded must be well formed
 *
 * Bytes outside the grammar that are harmless (space, '"', '<', '>', '\',
 * '^', '`', '{', '|', '}', obs bytes >= 0x80) are percent-encoded; control
 * bytes are refused. The fragment is dropped: it never goes on the wire.
 * Dot segments are removed (RFC 3986 5.2.4) so "/a/./b/../c" is "/a/c". */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "chars_int.h"
#include "sockit/err.h"
#include "sockit/url.h"

static bool is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static unsigned short default_port(enum sk_url_scheme s) { return s == SK_URL_HTTPS ? 443 : 80; }

/* Length of a scheme at s ("http" in "http://..."), or 0 when s does not
 * start with scheme ":". */
static size_t scheme_len(const char *s, size_t len)
{
    if (len == 0 || !is_alpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':')
            return i;
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' && c != '.')
            return 0;
    }
    return 0;
}

static int parse_scheme(const char *s, size_t n, enum sk_url_scheme *out)
{
    if (n == 4 && strncasecmp(s, "http", 4) == 0)
        *out = SK_URL_HTTP;
    else if (n == 5 && strncasecmp(s, "https", 5) == 0)
        *out = SK_URL_HTTPS;
    else
        return SK_EUNSUPPORTED;
    return 0;
}

static int parse_port(const char *s, size_t n, unsigned short *port)
{
    if (n > 5)
        return SK_EPARSE;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i]))
            return SK_EPARSE;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return SK_EPARSE;
    *port = (unsigned short)v;
    return 0;
}

/* authority = host [ ":" [ port ] ] in s[0..n). */
static int parse_authority(const char *s, size_t n, struct sk_url *u)
{
    if (memchr(s, '@', n))
        return SK_EPARSE; /* credentials in URLs: refused, never sent */
    const char *host = s, *rest;
    size_t hlen;
    u->host_ipv6 = false;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return SK_EPARSE;
        host = s + 1;
        hlen = (size_t)(close - host);
        rest = close + 1;
        u->host_ipv6 = true;
    } else {
        const char *colon = memchr(s, ':', n);
        hlen = colon ? (size_t)(colon - s) : n;
        rest = s + hlen;
        for (size_t i = 0; i < hlen; i++) {
            unsigned char c = (unsigned char)s[i];
            if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_' && c != '~')
                return SK_EPARSE;
        }
    }
    if (hlen == 0)
        return SK_EPARSE;
    if (hlen >= sizeof u->host)
        return SK_ETOOBIG;
    for (size_t i = 0; i < hlen; i++) {
        char c = host[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        u->host[i] = c;
    }
    u->host[hlen] = '\0';
    if (u->host_ipv6) {
        unsigned char a[16];
        if (inet_pton(AF_INET6, u->host, a) != 1)
            return SK_EPARSE;
    }
    size_t left = (size_t)(s + n - rest);
    u->port = default_port(u->scheme);
    if (left == 0)
        return 0;
    if (rest[0] != ':')
        return SK_EPARSE;
    if (left == 1)
        return 0; /* "host:" means the default port */
    return parse_port(rest + 1, left - 1, &u->port);
}

/* Removes "." and ".." segments from p[0..n), which starts with '/', in
 * place. Returns the new length (>= 1). */
static size_t remove_dot_segments(char *p, size_t n)
{
    size_t out = 0, i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && p[j] != '/')
            j++;
        size_t seg = j - i - 1;
        if (seg == 1 && p[i + 1] == '.') {
            if (j == n)
                p[out++] = '/';
        } else if (seg == 2 && p[i + 1] == '.' && p[i + 2] == '.') {
            while (out > 0 && p[--out] != '/')
                ;
            if (j == n)
                p[out++] = '/';
        } else {
            memmove(p + out, p + i, j - i);
            out += j - i;
        }
        i = j;
    }
    if (out == 0)
        p[out++] = '/';
    return out;
}

static bool must_encode(unsigned char c)
{
    return c == ' ' || c == '"' || c == '<' || c == '>' || c == '\\' || c == '^' || c == '`' ||
           c == '{' || c == '|' || c == '}' || c >= 0x80;
}

/* Copies path-and-query s[0..n) into u->target, encoding as described at
 * the top, prefixing "/" when the path is empty, and normalising the path. */
static int parse_target(const char *s, size_t n, struct sk_url *u)
{
    static const char hex[] = "0123456789ABCDEF";
    char *t = u->target;
    size_t cap = sizeof u->target - 1, o = 0, path_end = (size_t)-1;
    if (n == 0 || s[0] != '/')
        t[o++] = '/';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return SK_EPARSE;
        if (c == '%' && (i + 2 >= n || !sk__is((unsigned char)s[i + 1], SK__CH_HEX) ||
                         !sk__is((unsigned char)s[i + 2], SK__CH_HEX)))
            return SK_EPARSE;
        if (c == '?' && path_end == (size_t)-1)
            path_end = o;
        /* What this byte takes, not the worst case: a target that fits
         * parses again from its formatted form (a fuzz finding). */
        if (o + (must_encode(c) ? 3 : 1) > cap)
            return SK_ETOOBIG;
        if (must_encode(c)) {
            t[o++] = '%';
            t[o++] = hex[c >> 4];
            t[o++] = hex[c & 15];
        } else {
            t[o++] = (char)c;
        }
    }
    if (path_end == (size_t)-1)
        path_end = o;
    size_t plen = remove_dot_segments(t, path_end);
    memmove(t + plen, t + path_end, o - path_end);
    o = plen + (o - path_end);
    t[o] = '\0';
    return 0;
}

int sk_url_parse(const char *s, size_t len, struct sk_url *u)
{
    memset(u, 0, sizeof *u);
    size_t sl = scheme_len(s, len);
    if (sl == 0)
        return SK_EPARSE;
    int rc = parse_scheme(s, sl, &u->scheme);
    if (rc < 0)
        return rc;
    if (len < sl + 3 || s[sl + 1] != '/' || s[sl + 2] != '/')
        return SK_EPARSE;
    const char *auth = s + sl + 3, *end = s + len;
    const char *frag = memchr(auth, '#', (size_t)(end - auth));
    if (frag)
        end = frag;
    const char *p = auth;
    while (p < end && *p != '/' && *p != '?')
        p++;
    rc = parse_authority(auth, (size_t)(p - auth), u);
    if (rc < 0)
        return rc;
    return parse_target(p, (size_t)(end - p), u);
}

int sk_url_authority(const struct sk_url *u, char *buf, size_t len)
{
    int n;
    const char *l = u->host_ipv6 ? "[" : "", *r = u->host_ipv6 ? "]" : "";
    if (u->port == default_port(u->scheme))
        n = snprintf(buf, len, "%s%s%s", l, u->host, r);
    else
        n = snprintf(buf, len, "%s%s%s:%u", l, u->host, r, u->port);
    return n < 0 || (size_t)n >= len ? SK_ETOOBIG : n;
}

int sk_url_format(const struct sk_url *u, char *buf, size_t len)
{
    char auth[SK_HOST_MAX + 16];
    int rc = sk_url_authority(u, auth, sizeof auth);
    if (rc < 0)
        return rc;
    int n = snprintf(buf, len, "%s://%s%s", u->scheme == SK_URL_HTTPS ? "https" : "http", auth,
                     u->target);
    return n < 0 || (size_t)n >= len ? SK_ETOOBIG : n;
}

int sk_url_basename(const struct sk_url *u, char *buf, size_t len)
{
    size_t plen = strcspn(u->target, "?");
    const char *seg = u->target + plen;
    while (seg > u->target && seg[-1] != '/')
        seg--;
    size_t n = (size_t)(u->target + plen - seg);
    if (n == 0) {
        seg = "index.html";
        n = strlen(seg);
    }
    if (n >= len)
        return SK_ETOOBIG;
    memcpy(buf, seg, n);
    buf[n] = '\0';
    return (int)n;
}

bool sk_url_same_origin(const struct sk_url *a, const struct sk_url *b)
{
    return a->scheme == b->scheme && a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* Appends s[0..n) to buf at *o; false when it does not fit. */
static bool put(char *buf, size_t cap, size_t *o, const char *s, size_t n)
{
    if (n >= cap - *o)
        return false;
    memcpy(buf + *o, s, n);
    *o += n;
    buf[*o] = '\0';
    return true;
}

int sk_url_resolve(const struct sk_url *base, const char *ref, size_t len, struct sk_url *out)
{
    /* Absolute reference: parse as is (its own scheme decides support). */
    if (scheme_len(ref, len) > 0)
        return sk_url_parse(ref, len, out);
    const char *frag = memchr(ref, '#', len);
    if (frag)
        len = (size_t)(frag - ref);
    /* Build an absolute URL text and let the parser validate it. */
    char abs[SK_URL_TARGET_MAX * 2 + SK_HOST_MAX + 32];
    size_t o = 0, cap = sizeof abs;
    const char *scheme = base->scheme == SK_URL_HTTPS ? "https:" : "http:";
    abs[0] = '\0';
    if (len >= 2 && ref[0] == '/' && ref[1] == '/') { /* network-path reference */
        if (!put(abs, cap, &o, scheme, strlen(scheme)) || !put(abs, cap, &o, ref, len))
            return SK_ETOOBIG;
        return sk_url_parse(abs, o, out);
    }
    char auth[SK_HOST_MAX + 16];
    int rc = sk_url_authority(base, auth, sizeof auth);
    if (rc < 0)
        return rc;
    if (!put(abs, cap, &o, scheme, strlen(scheme)) || !put(abs, cap, &o, "//", 2) ||
        !put(abs, cap, &o, auth, (size_t)rc))
        return SK_ETOOBIG;
    size_t base_path = strcspn(base->target, "?");
    bool ok;
    if (len == 0) { /* same document */
        ok = put(abs, cap, &o, base->target, strlen(base->target));
    } else if (ref[0] == '?') {
        ok = put(abs, cap, &o, base->target, base_path) && put(abs, cap, &o, ref, len);
    } else if (ref[0] == '/') {
        ok = put(abs, cap, &o, ref, len);
    } else { /* merge: base path up to its last '/', then ref */
        size_t dir = base_path;
        while (dir > 0 && base->target[dir - 1] != '/')
            dir--;
        ok = put(abs, cap, &o, base->target, dir) && put(abs, cap, &o, ref, len);
    }
    if (!ok)
        return SK_ETOOBIG;
    return sk_url_parse(abs, o, out);
}
