/* http and https URLs (RFC 3986), parsed into a caller-owned struct.
 *
 * The parser allocates nothing: struct sk_url holds fixed-size fields, and
 * every function fills a struct the caller provides. Paths are normalised
 * (dot segments removed) and bytes a URL must not carry raw (space, '"',
 * '<', '>', '\', '^', '`', '{', '|', '}', bytes >= 0x80) are percent-encoded,
 * as a browser does; control bytes and malformed escapes are refused. */
#ifndef SOCKIT_URL_H
#define SOCKIT_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "sockit/addr.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SK_URL_TARGET_MAX 8192 /* request-target: path and query */

enum sk_url_scheme { SK_URL_HTTP, SK_URL_HTTPS };

struct sk_url {
    enum sk_url_scheme scheme;
    char host[SK_HOST_MAX];         /* lowercase; an IPv6 literal without brackets */
    bool host_ipv6;                 /* host is an IPv6 literal */
    unsigned short port;            /* explicit, or 80 / 443 */
    char target[SK_URL_TARGET_MAX]; /* "/path?query", never empty; no fragment */
};

/* Parses the absolute URL s[0..len). Returns 0, SK_EUNSUPPORTED (a scheme
 * other than http or https), SK_ETOOBIG (host or target too long), or
 * SK_EPARSE (anything else malformed, including user:password@: see
 * sk_url_take_userinfo). */
int sk_url_parse(const char *s, size_t len, struct sk_url *u);

/* Resolves the reference ref[0..len) (absolute, "//host/...", "/path",
 * "rel/path", "?query", "") against base into out (RFC 3986 5.2). out may
 * not alias base. Returns as sk_url_parse. */
int sk_url_resolve(const struct sk_url *base, const char *ref, size_t len, struct sk_url *out);

/* Writes "scheme://host[:port]/target" into buf. Returns the length, or
 * SK_ETOOBIG if buf is too small (buf then holds a truncated string). */
int sk_url_format(const struct sk_url *u, char *buf, size_t len);

/* Writes the Host header value: host, brackets for IPv6, ":port" when the
 * port is not the scheme's default. Returns the length or SK_ETOOBIG. */
int sk_url_authority(const struct sk_url *u, char *buf, size_t len);

/* Writes the last path segment (without the query) into buf, or
 * "index.html" when the path ends in '/'. Returns the length or SK_ETOOBIG. */
int sk_url_basename(const struct sk_url *u, char *buf, size_t len);

/* True when a and b have the same scheme, host and port. */
bool sk_url_same_origin(const struct sk_url *a, const struct sk_url *b);

/* Takes credentials out of the URL s ("http://user:password@host/..."):
 * rest (rest_len bytes) gets s without "user:password@", user and
 * password (NUL-terminated) the percent-decoded parts. Returns 2 (user
 * and password), 1 (a user alone: password is ""), 0 (none: rest is s),
 * SK_ETOOBIG (a buffer too small), SK_EPARSE (a malformed escape, a
 * control byte, a ':' decoded in the user name), SK_EUSAGE. On failure
 * user and password are "". */
int sk_url_take_userinfo(const char *s, char *rest, size_t rest_len, char *user, size_t user_len,
                         char *password, size_t password_len);

#ifdef __cplusplus
}
#endif

#endif
