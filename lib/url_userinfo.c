/* Credentials written in a URL ("http://user:password@host/"): taken out
 * of it before it is parsed (sk_url_parse refuses them), so that what is
 * shown or parsed afterwards never holds them. */
#include <string.h>

#include "chars_int.h"
#include "sockit/err.h"
#include "sockit/url.h"

/* Percent-decodes s[0..n) into out (cap bytes, NUL-terminated). A control
 * byte (a NUL included) decoded or raw is refused. */
static int decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? sk__hex_digit((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? sk__hex_digit((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return SK_EPARSE;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            return SK_EPARSE;
        if (o + 1 >= cap)
            return SK_ETOOBIG;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

int sk_url_take_userinfo(const char *s, char *rest, size_t rest_len, char *user, size_t user_len,
                         char *password, size_t password_len)
{
    if (!s || !rest || !user || !password || !rest_len || !user_len || !password_len)
        return SK_EUSAGE;
    user[0] = password[0] = '\0';
    size_t len = strlen(s);
    const char *auth = strstr(s, "://");
    const char *at = NULL, *end = NULL;
    if (auth) {
        auth += 3;
        end = auth + strcspn(auth, "/?#");
        for (const char *p = auth; p < end; p++)
            if (*p == '@')
                at = p; /* the last one: a raw '@' in the password is common */
    }
    if (!at) {
        if (len >= rest_len)
            return SK_ETOOBIG;
        memcpy(rest, s, len + 1);
        return 0;
    }
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    size_t ulen = (size_t)((colon ? colon : at) - auth);
    int rc = decode(auth, ulen, user, user_len);
    if (rc == 0 && colon)
        rc = decode(colon + 1, (size_t)(at - colon - 1), password, password_len);
    if (rc == 0 && strchr(user, ':'))
        rc = SK_EPARSE; /* Basic cannot carry it (RFC 7617) */
    size_t head = (size_t)(auth - s), tail = len - (size_t)(at + 1 - s);
    if (rc == 0 && head + tail >= rest_len)
        rc = SK_ETOOBIG;
    if (rc < 0) {
        user[0] = password[0] = '\0';
        return rc;
    }
    memcpy(rest, s, head);
    memcpy(rest + head, at + 1, tail + 1);
    return colon ? 2 : 1;
}
