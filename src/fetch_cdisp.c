/* sockit fetch: Content-Disposition's file name (RFC 6266, RFC 8187's
 * ext-value for filename*). Hostile input: the name is cut to its last
 * path segment and refused rather than repaired. */
#include "fetch_cdisp.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "chars_int.h"

#define N_(s) s /* marked for xgettext (make pot); the caller translates */

#define RAW_MAX 1024 /* a decoded value before it is cut to its last segment */

struct cd_scan {
    const char *p, *end;
};

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static void skip_ows(struct cd_scan *s)
{
    while (s->p < s->end && is_ows(*s->p))
        s->p++;
}

static size_t token_len(const struct cd_scan *s)
{
    size_t n = 0;
    while (s->p + n < s->end && sk__is((unsigned char)s->p[n], SK__CH_TCHAR))
        n++;
    return n;
}

/* A parameter's value: a quoted-string (unescaped into raw) or a token
 * (copied). Returns its length in raw, or -1 when malformed or too long. */
static int param_value(struct cd_scan *s, char raw[RAW_MAX])
{
    if (s->p < s->end && *s->p == '"') {
        size_t n = 0;
        for (s->p++;; s->p++) {
            if (s->p >= s->end)
                return -1; /* unterminated */
            char c = *s->p;
            if (c == '"')
                break;
            if (c == '\\' && ++s->p >= s->end)
                return -1;
            if (n >= RAW_MAX - 1)
                return -1;
            raw[n++] = *s->p;
        }
        s->p++;
        return (int)n;
    }
    size_t t = token_len(s);
    if (t == 0 || t >= RAW_MAX)
        return -1;
    memcpy(raw, s->p, t);
    s->p += t;
    return (int)t;
}

/* RFC 8187 ext-value: charset'[language]'pct-encoded, decoded in place.
 * Returns the decoded length, -1 when malformed, -2 for a charset other
 * than UTF-8 (ignored: filename= stands). */
static int ext_value(char *raw, size_t n, const char **why)
{
    const char *q1 = memchr(raw, '\'', n);
    const char *q2 = q1 ? memchr(q1 + 1, '\'', n - (size_t)(q1 + 1 - raw)) : NULL;
    if (!q2) {
        *why = N_("malformed filename*");
        return -1;
    }
    if ((size_t)(q1 - raw) != 5 || strncasecmp(raw, "UTF-8", 5) != 0)
        return -2;
    size_t out = 0;
    for (const char *p = q2 + 1; p < raw + n; p++) {
        if (*p != '%') {
            raw[out++] = *p;
            continue;
        }
        int hi = p + 2 < raw + n ? sk__hex_digit((unsigned char)p[1]) : -1;
        int lo = hi >= 0 ? sk__hex_digit((unsigned char)p[2]) : -1;
        if (lo < 0) {
            *why = N_("invalid percent-encoding");
            return -1;
        }
        raw[out++] = (char)(hi << 4 | lo);
        p += 2;
    }
    return (int)out;
}

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static bool utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k;
        /* the second byte's range rules out overlongs, surrogates, > U+10FFFF */
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            k = 0;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            lo = c == 0xE0 ? 0xA0 : lo;
            hi = c == 0xED ? 0x9F : hi;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            lo = c == 0xF0 ? 0x90 : lo;
            hi = c == 0xF4 ? 0x8F : hi;
        } else {
            return false;
        }
        if (n - i <= k)
            return false; /* cut short */
        for (size_t j = 1; j <= k; j++, lo = 0x80, hi = 0xBF) {
            if (s[i + j] < lo || s[i + j] > hi)
                return false;
        }
        i += k + 1;
    }
    return true;
}

/* The decoded value as a file name of this folder, or -1 (*why). */
static int checked_name(const char *raw, size_t n, char out[FETCH_CD_NAME_MAX + 1],
                        const char **why)
{
    const char *base = raw;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)raw[i] < 0x20 || raw[i] == 0x7f) {
            *why = N_("control bytes in the name");
            return -1;
        }
        if (raw[i] == '/' || raw[i] == '\\')
            base = raw + i + 1;
    }
    size_t len = n - (size_t)(base - raw);
    if (len == 0 || (len <= 2 && strncmp(base, "..", len) == 0)) {
        *why = N_("an empty, \".\" or \"..\" name");
        return -1;
    }
    if (base[0] == '.') {
        *why = N_("a hidden name (starting with '.')");
        return -1;
    }
    if (len > FETCH_CD_NAME_MAX) {
        *why = N_("a name over 255 bytes");
        return -1;
    }
    if (!utf8_ok((const unsigned char *)base, len)) {
        *why = N_("a name that is not UTF-8");
        return -1;
    }
    memcpy(out, base, len);
    out[len] = '\0';
    return 1;
}

int fetch_cd_filename(const char *v, size_t n, char out[FETCH_CD_NAME_MAX + 1],
                      const char **why)
{
    struct cd_scan s = {v, v + n};
    char plain[RAW_MAX], ext[RAW_MAX];
    int plain_len = -1, ext_len = -1; /* -1: absent */
    *why = N_("malformed Content-Disposition");
    skip_ows(&s);
    size_t t = token_len(&s); /* the disposition type: attachment, inline... */
    if (t == 0)
        return -1;
    s.p += t;
    for (;;) {
        skip_ows(&s);
        if (s.p >= s.end)
            break;
        if (*s.p++ != ';')
            return -1;
        skip_ows(&s);
        if (s.p >= s.end)
            break; /* a trailing ';' */
        const char *name = s.p;
        size_t nl = token_len(&s);
        s.p += nl;
        skip_ows(&s);
        if (nl == 0 || s.p >= s.end || *s.p++ != '=')
            return -1;
        skip_ows(&s);
        char raw[RAW_MAX];
        int len = param_value(&s, raw);
        if (len < 0)
            return -1;
        /* a repeated parameter: the first counts */
        if (nl == 9 && strncasecmp(name, "filename*", 9) == 0 && ext_len < 0) {
            memcpy(ext, raw, (size_t)len);
            ext_len = len;
        } else if (nl == 8 && strncasecmp(name, "filename", 8) == 0 && plain_len < 0) {
            memcpy(plain, raw, (size_t)len);
            plain_len = len;
        }
    }
    if (ext_len >= 0) {
        int d = ext_value(ext, (size_t)ext_len, why);
        if (d == -1)
            return -1;
        if (d >= 0)
            return checked_name(ext, (size_t)d, out, why);
    }
    if (plain_len < 0)
        return 0;
    return checked_name(plain, (size_t)plain_len, out, why);
}
