/* The HTTP client through an HTTP proxy: which URLs go through one (the
 * no_proxy list), the proxy's URL and credentials, the CONNECT tunnel's
 * request and the proxy's reply to it. The wire (fetch_io.c) connects to
 * the proxy instead of the origin and calls these at each step:
 *
 *   http://  GET http://host:port/path HTTP/1.1 to the proxy, with
 *            Proxy-Authorization when the proxy URL has credentials; a 407
 *            answer is the proxy's refusal (SK_EPROXY).
 *   https:// CONNECT host:port to the proxy; its reply head (at most
 *            SK__FETCH_CONNECT_HEAD_MAX bytes) must be 2xx and nothing may
 *            follow it before TLS; then TLS to the origin, verified as
 *            without a proxy, and the request inside, without the proxy's
 *            credentials. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "chars_int.h"
#include "fetch_int.h"

/* ---- no_proxy ---- */

/* An address's bytes (4 or 16) into out; 0 when s[0..n) is not one. */
static int parse_ip(const char *s, size_t n, unsigned char out[16])
{
    char tmp[64];
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
        s++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof tmp)
        return 0;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET, tmp, out) == 1)
        return 4;
    if (inet_pton(AF_INET6, tmp, out) == 1)
        return 16;
    return 0;
}

/* One entry e[0..n) of the list against the host (name[0..namelen) or
 * the address ip[0..iplen)) at port. */
static bool entry_match(const char *e, size_t n, const char *name, size_t namelen,
                        const unsigned char *ip, int iplen, int port)
{
    if (n == 1 && e[0] == '*')
        return true;
    /* ":port": after "]" of a bracketed address, or after the only colon
     * (two or more colons without brackets: an IPv6 address, no port). */
    const char *colon = NULL;
    if (e[0] == '[') {
        const char *close = memchr(e, ']', n);
        if (!close)
            return false;
        if ((size_t)(close - e) + 1 < n) {
            if (close[1] != ':')
                return false;
            colon = close + 1;
        }
    } else {
        const char *c = memchr(e, ':', n);
        if (c && !memchr(c + 1, ':', n - (size_t)(c - e) - 1))
            colon = c;
    }
    if (colon) {
        size_t plen = n - (size_t)(colon - e) - 1;
        long want = 0;
        if (plen == 0 || plen > 5)
            return false;
        for (size_t i = 1; i <= plen; i++) {
            if (colon[i] < '0' || colon[i] > '9')
                return false;
            want = want * 10 + (colon[i] - '0');
        }
        if (want != port)
            return false;
        n = (size_t)(colon - e);
    }
    unsigned char eip[16];
    int elen = parse_ip(e, n, eip);
    if (iplen || elen) /* an address matches the same address only */
        return iplen == elen && memcmp(ip, eip, (size_t)iplen) == 0;
    if (n > 0 && e[n - 1] == '.')
        n--;
    if (n > 0 && e[0] == '.') {
        e++;
        n--;
    }
    if (n == 0 || n > namelen)
        return false;
    if (n == namelen)
        return strncasecmp(e, name, n) == 0;
    return name[namelen - n - 1] == '.' && strncasecmp(e, name + namelen - n, n) == 0;
}

bool sk_fetch_noproxy_match(const char *list, const char *host, int port)
{
    if (!list || !host || !*host)
        return false;
    size_t namelen = strlen(host);
    unsigned char ip[16];
    int iplen = parse_ip(host, namelen, ip);
    if (!iplen && host[namelen - 1] == '.')
        namelen--;
    for (const char *p = list; *p;) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, ", \t");
        if (n > 0 && entry_match(p, n, host, namelen, ip, iplen, port))
            return true;
        p += n;
    }
    return false;
}

/* ---- the proxy's URL ---- */

/* Percent-decodes s[0..n) into out (cap bytes, NUL-terminated); false on
 * a bad escape, a NUL, or no room. */
static bool pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < n ? sk__hex_digit((unsigned char)s[i + 1]) : -1;
            int lo = hi >= 0 ? sk__hex_digit((unsigned char)s[i + 2]) : -1;
            if (lo < 0)
                return false;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap)
            return false;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return true;
}

/* Parses the proxy spec into f->px:
 * "[http://|socks5://|socks5h://|socks4://|socks4a://][user:password@]host[:port][/]"
 * (SOCKS4: the user name is the user id, a password is ignored, as curl does). */
static int parse_proxy(struct sk_fetch *f, const char *spec)
{
    struct sk__fetch_proxy *px = &f->px;
    const char *s = spec;
    static const struct {
        const char *prefix;
        enum sk__proxy_kind kind;
    } schemes[] = {{"http://", SK__PROXY_HTTP},       {"socks5://", SK__PROXY_SOCKS5},
                   {"socks5h://", SK__PROXY_SOCKS5H}, {"socks4://", SK__PROXY_SOCKS4},
                   {"socks4a://", SK__PROXY_SOCKS4A}};
    px->kind = SK__PROXY_HTTP;
    size_t sc = 0;
    while (sc < sizeof schemes / sizeof schemes[0] &&
           strncasecmp(s, schemes[sc].prefix, strlen(schemes[sc].prefix)) != 0)
        sc++;
    if (sc < sizeof schemes / sizeof schemes[0]) {
        px->kind = schemes[sc].kind;
        s += strlen(schemes[sc].prefix);
    } else if (strstr(s, "://")) {
        return sk_fetch_set_error(f, SK_EUSAGE,
                                  "unsupported proxy scheme (only http://, socks5://, socks5h://, "
                                  "socks4://, socks4a://): %.200s",
                                  spec);
    }
    size_t len = strcspn(s, "/?#");
    if (s[len] && strcmp(s + len, "/") != 0)
        return sk_fetch_set_error(f, SK_EUSAGE, "invalid proxy URL (a path): %.200s", spec);
    const char *at = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '@')
            at = s + i;
    px->auth[0] = '\0';
    px->has_cred = false;
    if (at) {
        /* decoded with room to spare: too long is told apart from bad */
        const char *colon = memchr(s, ':', (size_t)(at - s));
        char *user = px->user, *pass = px->password;
        char wide[2][4 * SK__FETCH_CRED_MAX];
        size_t ulen = colon ? (size_t)(colon - s) : (size_t)(at - s);
        size_t plen = colon ? (size_t)(at - colon - 1) : 0;
        /* an escape is 3 bytes: what does not fit wide is over the limit */
        bool ulong = ulen >= sizeof wide[0], plong = plen >= sizeof wide[1];
        if ((!ulong && !pct_decode(s, ulen, wide[0], sizeof wide[0])) ||
            (!plong && !pct_decode(colon ? colon + 1 : at, plen, wide[1], sizeof wide[1])))
            return sk_fetch_set_error(f, SK_EUSAGE, "invalid proxy credentials (a bad escape)");
        ulong = ulong || strlen(wide[0]) >= SK__FETCH_CRED_MAX;
        plong = plong || strlen(wide[1]) >= SK__FETCH_CRED_MAX;
        if (ulong || plong)
            return sk_fetch_set_error(f, SK_EUSAGE, "proxy %s too long (over %d bytes)",
                                      ulong ? "user name" : "password", SK__FETCH_CRED_MAX - 1);
        if ((px->kind == SK__PROXY_SOCKS5 || px->kind == SK__PROXY_SOCKS5H) && !wide[0][0])
            return sk_fetch_set_error(f, SK_EUSAGE, "SOCKS5 proxy credentials without a user name");
        memcpy(user, wide[0], strlen(wide[0]) + 1);
        memcpy(pass, wide[1], strlen(wide[1]) + 1);
        OPENSSL_cleanse(wide, sizeof wide);
        px->has_cred = px->kind != SK__PROXY_HTTP;
        if (px->kind == SK__PROXY_HTTP) {
            char both[2 * SK__FETCH_CRED_MAX];
            int k = snprintf(both, sizeof both, "%s:%s", user, pass);
            char b64[4 * (sizeof both + 2) / 3 + 1];
            int b = EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)both, k);
            snprintf(px->auth, sizeof px->auth, "Basic %.*s", b, b64);
            OPENSSL_cleanse(both, sizeof both);
        }
        len -= (size_t)(at + 1 - s);
        s = at + 1;
    }
    /* The authority, with the default port when it has none. */
    bool has_port = false;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        has_port = close && (size_t)(close - s) + 1 < len && close[1] == ':';
    } else {
        has_port = memchr(s, ':', len) != NULL;
    }
    char url[SK_HOST_MAX + 32];
    if (len == 0 || (size_t)snprintf(url, sizeof url, "http://%.*s%s/", (int)len, s,
                                     has_port ? "" : ":1080") >= sizeof url)
        return sk_fetch_set_error(f, SK_EUSAGE, "invalid proxy URL: %.200s", spec);
    if (sk_url_parse(url, strlen(url), &px->url) < 0)
        return sk_fetch_set_error(f, SK_EUSAGE, "invalid proxy URL: %.200s", spec);
    snprintf(px->where, sizeof px->where, "%s%s%s:%u", px->url.host_ipv6 ? "[" : "",
             px->url.host, px->url.host_ipv6 ? "]" : "", px->url.port);
    return 0;
}

int sk__fetch_proxy_route(struct sk_fetch *f, const struct sk_url *u)
{
    struct sk__fetch_proxy *px = &f->px;
    const char *spec = u->scheme == SK_URL_HTTPS ? f->o.proxy_https : f->o.proxy_http;
    px->on = px->tunnel = px->tunnel_up = false;
    px->kind = SK__PROXY_HTTP;
    if (!spec || !*spec || sk_fetch_noproxy_match(f->o.noproxy, u->host, u->port))
        return 0;
    int rc = parse_proxy(f, spec);
    if (rc < 0)
        return rc;
    if ((px->kind == SK__PROXY_SOCKS5H || px->kind == SK__PROXY_SOCKS4A) && strlen(u->host) > 255)
        return sk_fetch_set_error(f, SK_EUSAGE,
                                  "host name too long for a %s proxy (over 255 bytes)",
                                  sk__proxy_socks_version(px->kind));
    px->on = true;
    px->tunnel = u->scheme == SK_URL_HTTPS || px->kind != SK__PROXY_HTTP;
    return 0;
}

/* ---- the tunnel ---- */

bool sk__fetch_is_proxy_auth(const char *h)
{
    return strncasecmp(h, "Proxy-Authorization:", 20) == 0;
}

int sk__fetch_connect_request(struct sk_fetch *f, const struct sk_url *u, size_t *len)
{
    /* The credentials: a -H Proxy-Authorization (it replaces ours, as in a
     * plain request), else the proxy URL's. */
    const char *cred = NULL;
    for (size_t i = 0; !cred && i < f->o.nheaders; i++)
        if (sk__fetch_is_proxy_auth(f->o.headers[i]))
            cred = f->o.headers[i] + 20 + strspn(f->o.headers[i] + 20, " \t");
    if (!cred && f->px.auth[0])
        cred = f->px.auth;
    char auth[SK_HOST_MAX + 16];
    sk_url_authority(u, auth, sizeof auth);
    if (!strchr(auth + (u->host_ipv6 ? strlen(u->host) + 2 : 0), ':')) /* always the port */
        snprintf(auth + strlen(auth), sizeof auth - strlen(auth), ":%u", u->port);
    const char *ua = f->o.user_agent ? f->o.user_agent : "sockit/" SOCKIT_VERSION;
    int n = snprintf(f->buf, SK__FETCH_BUF_SIZE,
                     "CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n%s%s%s\r\n", auth,
                     auth, ua, cred ? "Proxy-Authorization: " : "", cred ? cred : "",
                     cred ? "\r\n" : "");
    if (n < 0 || (size_t)n >= SK__FETCH_BUF_SIZE)
        return sk_fetch_set_error(f, SK_EUSAGE, "CONNECT request too large");
    *len = (size_t)n;
    return 0;
}

/* The proxy's 407: it wants (other) credentials. */
static int refused_auth(struct sk_fetch *f)
{
    f->last_status = 407;
    return sk_fetch_set_error(f, SK_EPROXY, "proxy %s %s (407)", f->px.where,
                              f->px.auth[0] ? "rejected the credentials"
                                            : "requires authentication");
}

int sk__fetch_tunnel_reply(struct sk_fetch *f, const char *buf, size_t have)
{
    const char *where = f->px.where;
    struct sk_http_resp r;
    struct sk_http_header h[SK_HTTP_HEADERS_MAX];
    size_t n = have < SK__FETCH_CONNECT_HEAD_MAX ? have : SK__FETCH_CONNECT_HEAD_MAX;
    int rc = sk_http_resp_parse(buf, n, &r, h, SK_HTTP_HEADERS_MAX);
    if (rc == SK_HTTP_INCOMPLETE && have < SK__FETCH_CONNECT_HEAD_MAX)
        return 0;
    if (rc == SK_HTTP_INCOMPLETE || rc == SK_ETOOBIG)
        return sk_fetch_set_error(f, SK_EPROXY, "proxy %s: reply to CONNECT too large (over %d KiB)",
                                  where, SK__FETCH_CONNECT_HEAD_MAX / 1024);
    if (rc < 0)
        return sk_fetch_set_error(f, SK_EPROXY, "proxy %s: malformed reply to CONNECT", where);
    f->connect_status = r.status;
    if (r.status == 407)
        return refused_auth(f);
    if (r.status < 200 || r.status > 299) {
        f->last_status = r.status;
        return sk_fetch_set_error(f, SK_EPROXY, "proxy %s refused CONNECT: %d %.*s", where,
                                  r.status, (int)(r.reason_len < 100 ? r.reason_len : 100),
                                  r.reason);
    }
    if (have > (size_t)rc) /* the origin's TLS comes from us first: a proxy's own bytes */
        return sk_fetch_set_error(f, SK_EPROXY,
                                  "proxy %s sent %zu bytes after its reply to CONNECT, "
                                  "before TLS (refused)",
                                  where, have - (size_t)rc);
    f->px.tunnel_up = true;
    return 1;
}

int sk__fetch_tunnel_cut(struct sk_fetch *f, size_t have)
{
    if (f->px.kind != SK__PROXY_HTTP)
        return sk_fetch_set_error(f, SK_EPROXY, "proxy %s closed the connection %s its %s reply",
                                  f->px.where, f->px.socks.got ? "inside" : "before",
                                  sk__proxy_socks_version(f->px.kind));
    return sk_fetch_set_error(f, SK_EPROXY, "proxy %s closed the connection %s", f->px.where,
                              have ? "inside its reply to CONNECT"
                                   : "without replying to CONNECT");
}

int sk__fetch_proxy_check(struct sk_fetch *f, int status)
{
    return f->px.on && !f->px.tunnel && status == 407 ? refused_auth(f) : 0;
}
