/* The HTTP client through a SOCKS5 proxy (RFC 1928), with username and
 * password authentication (RFC 1929) when the proxy URL has credentials,
 * or a SOCKS4 one (socks4://: the client resolves, IPv4 only) or SOCKS4a
 * (socks4a://: the name goes, DSTIP 0.0.0.1):
 *
 *   -> 04 01 PORT DSTIP USERID 00 [HOST 00]            <- 00 CD PORT IP (8 bytes)
 *
 *   -> 05 01 00 (or 05 02 00 02 with credentials)   <- 05 METHOD
 *   -> 01 ULEN USER PLEN PASS (METHOD 2)              <- 01 STATUS
 *   -> 05 01 00 ATYP ADDR PORT                        <- 05 REP 00 ATYP ADDR PORT
 *
 * socks5:// sends the origin's address (the client resolves the name),
 * socks5h:// its name (ATYP 3: the proxy resolves it). Then the tunnel
 * carries the origin's bytes: TLS for https (verified as without a
 * proxy), the request itself for http. The proxy's replies are read by a
 * pure state machine (sk__socks5_feed) that takes any split, bounds each
 * reply and lets no byte past it: the origin's stream starts only after
 * the CONNECT reply is complete. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "fetch_int.h"

/* ---- the replies' reader ---- */

void sk__socks5_init(struct sk__socks5 *s, bool offer_auth)
{
    memset(s, 0, sizeof *s);
    s->wait = SK__SOCKS_W_METHOD;
    s->offer_auth = offer_auth;
}

void sk__socks4_init(struct sk__socks5 *s)
{
    memset(s, 0, sizeof *s);
    s->wait = SK__SOCKS_W_CONNECT4;
    s->need = 8;
}

/* Byte c at offset k of the CONNECT reply: its step (MORE while inside). */
static int connect_byte(struct sk__socks5 *s, unsigned k, unsigned c)
{
    s->bad = (unsigned char)c;
    switch (k) {
    case 0: return c == 5 ? SK__SOCKS_MORE : SK__SOCKS_EVERSION;
    case 1: return c == 0 ? SK__SOCKS_MORE : SK__SOCKS_EREP;
    case 2: return c == 0 ? SK__SOCKS_MORE : SK__SOCKS_EGARBAGE;
    case 3: /* ATYP: the address's length, then the port */
        if (c == 1 || c == 4)
            s->need = (unsigned short)(4 + (c == 1 ? 4 : 16) + 2);
        return c == 1 || c == 4 || c == 3 ? SK__SOCKS_MORE : SK__SOCKS_EGARBAGE;
    case 4:
        if (s->need == 0) { /* ATYP 3: a name's length, never 0 */
            if (c == 0)
                return SK__SOCKS_EGARBAGE;
            s->need = (unsigned short)(5 + c + 2);
        }
        return SK__SOCKS_MORE;
    default: return SK__SOCKS_MORE;
    }
}

/* Byte c, the k-th of the reply awaited: its step. */
static int reply_byte(struct sk__socks5 *s, unsigned k, unsigned c)
{
    s->bad = (unsigned char)c;
    if (s->wait == SK__SOCKS_W_METHOD) {
        if (k == 0)
            return c == 5 ? SK__SOCKS_MORE : SK__SOCKS_EVERSION;
        if (c == 0xFF)
            return SK__SOCKS_ENOMETHOD;
        if (c == 2 && s->offer_auth)
            return SK__SOCKS_SEND_AUTH;
        return c == 0 ? SK__SOCKS_SEND_CONNECT : SK__SOCKS_EMETHOD;
    }
    if (s->wait == SK__SOCKS_W_AUTH) {
        if (k == 0)
            return c == 1 ? SK__SOCKS_MORE : SK__SOCKS_EAUTHVER;
        return c == 0 ? SK__SOCKS_SEND_CONNECT : SK__SOCKS_EAUTH;
    }
    int rc = SK__SOCKS_MORE;
    if (s->wait == SK__SOCKS_W_CONNECT4) { /* VN 0, CD 90, then port and address */
        if (k == 0 && c != 0)
            rc = SK__SOCKS_EVERSION;
        else if (k == 1 && c != 90)
            rc = SK__SOCKS_EREP;
    } else {
        rc = connect_byte(s, k, c);
    }
    return rc == SK__SOCKS_MORE && s->need && k + 1 == s->need ? SK__SOCKS_UP : rc;
}

int sk__socks5_feed(struct sk__socks5 *s, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s->wait == SK__SOCKS_W_DONE) { /* nothing is due from the proxy now */
            s->extra = n - i;
            return SK__SOCKS_EEXTRA;
        }
        int rc = reply_byte(s, s->got++, p[i]);
        if (rc < 0) {
            s->wait = SK__SOCKS_W_DONE;
            return rc;
        }
        if (rc == SK__SOCKS_MORE)
            continue;
        /* The reply is complete: we speak next (or the origin's stream). */
        s->wait = rc == SK__SOCKS_SEND_AUTH      ? SK__SOCKS_W_AUTH
                  : rc == SK__SOCKS_SEND_CONNECT ? SK__SOCKS_W_CONNECT
                                                 : SK__SOCKS_W_DONE;
        s->got = s->need = 0;
        if (i + 1 < n) {
            s->extra = n - i - 1;
            s->wait = SK__SOCKS_W_DONE;
            return SK__SOCKS_EEXTRA;
        }
        /* the next reply is awaited once our message is out (the caller
         * sends it at once): until then the proxy has nothing to say */
        return rc;
    }
    return SK__SOCKS_MORE;
}

/* ---- the requests ---- */

size_t sk__socks5_hello(unsigned char *out, bool offer_auth)
{
    out[0] = 5;
    out[1] = offer_auth ? 2 : 1;
    out[2] = 0; /* no authentication */
    out[3] = 2; /* username/password: only with credentials */
    return offer_auth ? 4 : 3;
}

/* A length-prefixed field (1 to 255 bytes; 0 to 255 when may_be_empty). */
static size_t put_field(unsigned char *out, const char *s, bool may_be_empty)
{
    size_t n = strlen(s);
    if (n > 255 || (n == 0 && !may_be_empty))
        return 0;
    out[0] = (unsigned char)n;
    memcpy(out + 1, s, n);
    return n + 1;
}

size_t sk__socks5_auth(unsigned char *out, const char *user, const char *password)
{
    out[0] = 1; /* the subnegotiation's version */
    size_t u = put_field(out + 1, user, false);
    size_t p = u ? put_field(out + 1 + u, password, true) : 0;
    return u && p ? 1 + u + p : 0;
}

size_t sk__socks5_connect(unsigned char *out, int atyp, const void *addr, unsigned port)
{
    out[0] = 5;
    out[1] = 1; /* CONNECT */
    out[2] = 0;
    out[3] = (unsigned char)atyp;
    size_t n = 4;
    if (atyp == 3) {
        size_t k = put_field(out + n, addr, false);
        if (!k)
            return 0;
        n += k;
    } else {
        size_t k = atyp == 1 ? 4 : 16;
        memcpy(out + n, addr, k);
        n += k;
    }
    out[n++] = (unsigned char)(port >> 8);
    out[n++] = (unsigned char)(port & 0xFF);
    return n;
}

size_t sk__socks4_connect(unsigned char *out, const unsigned char *addr4, unsigned port,
                          const char *user, const char *host)
{
    static const unsigned char v4a[4] = {0, 0, 0, 1};
    size_t ulen = strlen(user), hlen = addr4 ? 0 : strlen(host);
    if (ulen > 255 || (!addr4 && (hlen == 0 || hlen > 255)))
        return 0;
    out[0] = 4;
    out[1] = 1; /* CONNECT */
    out[2] = (unsigned char)(port >> 8);
    out[3] = (unsigned char)(port & 0xFF);
    memcpy(out + 4, addr4 ? addr4 : v4a, 4);
    memcpy(out + 8, user, ulen + 1);
    size_t n = 8 + ulen + 1;
    if (!addr4) {
        memcpy(out + n, host, hlen + 1);
        n += hlen + 1;
    }
    return n;
}

const char *sk__socks4_cd_text(unsigned cd)
{
    switch (cd) {
    case 91: return "request rejected or failed";
    case 92: return "identd not reachable";
    case 93: return "user id mismatch";
    default: return "unknown reply code";
    }
}

const char *sk__proxy_socks_version(enum sk__proxy_kind k)
{
    return SK__PROXY_IS_SOCKS4(k) ? "SOCKS4" : k == SK__PROXY_HTTP ? "" : "SOCKS5";
}

const char *sk__socks5_rep_text(unsigned rep)
{
    static const char *const text[] = {
        "succeeded",
        "general SOCKS server failure",
        "connection not allowed by ruleset",
        "network unreachable",
        "host unreachable",
        "connection refused by the destination",
        "TTL expired",
        "command not supported",
        "address type not supported",
    };
    return rep < sizeof text / sizeof text[0] ? text[rep] : "unknown reply code";
}

/* ---- the tunnel's exchange ---- */

/* The origin's address as bytes when its host is one (4 or 16), else 0. */
static size_t literal(const struct sk_url *u, unsigned char out[16])
{
    if (inet_pton(AF_INET, u->host, out) == 1)
        return 4;
    return inet_pton(AF_INET6, u->host, out) == 1 ? 16 : 0;
}

int sk__fetch_socks_resolve(struct sk_fetch *f, const struct sk_url *origin)
{
    struct sk__fetch_proxy *px = &f->px;
    bool v4 = SK__PROXY_IS_SOCKS4(px->kind);
    px->alen = literal(origin, px->addr);
    if (v4 && px->alen == 16)
        return sk_fetch_set_error(f, SK_EUSAGE, "a SOCKS4 proxy cannot reach an IPv6 address (%s)",
                                  origin->host);
    if (px->alen || (px->kind != SK__PROXY_SOCKS5 && px->kind != SK__PROXY_SOCKS4))
        return 0;
    /* The origin's own name, looked up here: its messages are the origin's
     * ("could not resolve host X"), not the proxy's. */
    const struct addrinfo *ai = NULL;
    px->on = false;
    int rc = sk__fetch_resolve(f, origin, &ai);
    px->on = true;
    if (rc < 0)
        return rc;
    /* One address only can be asked for: the first IPv4 one (the proxy's
     * own network may have no IPv6 route), else the first IPv6 one (not
     * for SOCKS4: IPv4 only). */
    for (int pass = 0; pass < (v4 ? 1 : 2) && !px->alen; pass++)
        for (const struct addrinfo *a = ai; a && !px->alen; a = a->ai_next) {
            if (pass == 0 && a->ai_family == AF_INET) {
                memcpy(px->addr, &((const struct sockaddr_in *)(const void *)a->ai_addr)->sin_addr,
                       4);
                px->alen = 4;
            } else if (pass == 1 && a->ai_family == AF_INET6) {
                memcpy(px->addr,
                       &((const struct sockaddr_in6 *)(const void *)a->ai_addr)->sin6_addr, 16);
                px->alen = 16;
            }
        }
    bool any = ai != NULL;
    sk__fetch_resolve_put(f, ai);
    if (!px->alen && v4 && any)
        return sk_fetch_set_error(f, SK_ERESOLVE,
                                  "host %s has no IPv4 address (a SOCKS4 proxy takes IPv4 only)",
                                  origin->host);
    if (!px->alen)
        return sk_fetch_set_error(f, SK_ERESOLVE, "could not resolve host %s", origin->host);
    return 0;
}

size_t sk__fetch_socks_hello(struct sk_fetch *f)
{
    struct sk__fetch_proxy *px = &f->px;
    if (SK__PROXY_IS_SOCKS4(px->kind)) { /* the user id: the URL's user name, else empty */
        sk__socks4_init(&px->socks);
        return sk__socks4_connect((unsigned char *)f->buf, px->alen ? px->addr : NULL,
                                  px->origin->port, px->has_cred ? px->user : "",
                                  px->origin->host);
    }
    sk__socks5_init(&f->px.socks, f->px.has_cred);
    return sk__socks5_hello((unsigned char *)f->buf, f->px.has_cred);
}

/* The proxy's failure, one line naming it. */
static int socks_fail(struct sk_fetch *f, int step)
{
    const struct sk__socks5 *s = &f->px.socks;
    const char *where = f->px.where, *v = sk__proxy_socks_version(f->px.kind);
    switch (step) {
    case SK__SOCKS_EVERSION:
        return sk_fetch_set_error(f, SK_EPROXY, "proxy %s: not a %s reply (version %u)", where, v,
                                  s->bad);
    case SK__SOCKS_ENOMETHOD:
        return sk_fetch_set_error(f, SK_EPROXY,
                                  f->px.has_cred
                                      ? "proxy %s accepts no offered SOCKS5 method (none, "
                                        "username/password)"
                                      : "proxy %s accepts no offered SOCKS5 method (none): "
                                        "it may require authentication",
                                  where);
    case SK__SOCKS_EMETHOD:
        return sk_fetch_set_error(f, SK_EPROXY, "proxy %s chose a SOCKS5 method not offered (%u)",
                                  where, s->bad);
    case SK__SOCKS_EAUTHVER:
        return sk_fetch_set_error(f, SK_EPROXY,
                                  "proxy %s: malformed SOCKS5 authentication reply (version %u)",
                                  where, s->bad);
    case SK__SOCKS_EAUTH:
        return sk_fetch_set_error(f, SK_EPROXY,
                                  "proxy %s rejected the credentials (SOCKS5 status %u)", where,
                                  s->bad);
    case SK__SOCKS_EREP:
        return sk_fetch_set_error(f, SK_EPROXY, "proxy %s: %s CONNECT to %s failed: %s (%u)",
                                  where, v, f->w.where,
                                  SK__PROXY_IS_SOCKS4(f->px.kind) ? sk__socks4_cd_text(s->bad)
                                                                  : sk__socks5_rep_text(s->bad),
                                  s->bad);
    case SK__SOCKS_EEXTRA:
        return sk_fetch_set_error(f, SK_EPROXY,
                                  "proxy %s sent %zu bytes beyond its %s reply (refused)", where,
                                  s->extra, v);
    default:
        return sk_fetch_set_error(f, SK_EPROXY, "proxy %s: malformed %s reply", where, v);
    }
}

int sk__fetch_socks_reply(struct sk_fetch *f, const char *p, size_t n, size_t *len)
{
    struct sk__fetch_proxy *px = &f->px;
    unsigned char *out = (unsigned char *)f->buf;
    int step = sk__socks5_feed(&px->socks, (const unsigned char *)p, n);
    if (step < 0)
        return socks_fail(f, step);
    if (step == SK__SOCKS_MORE)
        return 0;
    if (step == SK__SOCKS_UP) {
        px->tunnel_up = true;
        return 1;
    }
    if (step == SK__SOCKS_SEND_AUTH)
        *len = sk__socks5_auth(out, px->user, px->password);
    else if (px->alen)
        *len = sk__socks5_connect(out, px->alen == 4 ? 1 : 4, px->addr, px->origin->port);
    else
        *len = sk__socks5_connect(out, 3, px->origin->host, px->origin->port);
    if (*len == 0) /* checked before connecting: cannot happen */
        return sk_fetch_set_error(f, SK_EUSAGE, "SOCKS5 request too large");
    return 2;
}
