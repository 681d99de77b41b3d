/* The HTTP client's connection reuse (HTTP/1.1 keep-alive): whether a
 * response lets its connection serve again, which route a connection
 * serves, whether a kept one is still open. The wire (fetch_io.c) keeps
 * the connection idle in f->w and sends the next request on it; the rules
 * are in docs/fetch.md, "Connection reuse". */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "fetch_int.h"
#include "stream_int.h"

bool sk__fetch_conn_close(const struct sk_http_resp *r)
{
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct sk_http_header *h = &r->headers[i];
        if (h->name_len != 10 || strncasecmp(h->name, "Connection", 10) != 0)
            continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) { /* a list of tokens, with optional spaces */
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *t = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if (p - t == 5 && strncasecmp(t, "close", 5) == 0)
                return true;
        }
    }
    return false;
}

bool sk__fetch_h2c(const struct sk_fetch *f, const struct sk_url *u)
{
    return f->o.http_version == SK_FETCH_HTTP_2_PRIOR_KNOWLEDGE && u->scheme == SK_URL_HTTP &&
           (!f->px.on || f->px.tunnel); /* a tunnel to http://: SOCKS5's */
}

void sk__fetch_route_key(const struct sk_fetch *f, const struct sk_url *u, char *out, size_t cap)
{
    const struct sk__fetch_wire *w = &f->w;
    /* over TLS, what ALPN offered: --http1.1 does not take a kept h2 one;
     * plain http://: h2c (2) and HTTP/1.1 (0) never share */
    int v = u->scheme == SK_URL_HTTPS ? f->o.http_version == SK_FETCH_HTTP_1_1
                                      : 2 * sk__fetch_h2c(f, u);
    if (!f->px.on)
        snprintf(out, cap, "%s %s %d", u->scheme == SK_URL_HTTPS ? "https" : "http", w->where, v);
    else if (!f->px.tunnel) /* a plain-http proxy: any http:// origin */
        snprintf(out, cap, "proxy %s %s", f->px.where, f->px.auth);
    else if (f->px.kind != SK__PROXY_HTTP) /* the scheme: a tunnel to http carries no TLS */
        snprintf(out, cap, "socks%d %s %s:%s %s %s %d", (int)f->px.kind,
                 f->px.where, f->px.has_cred ? f->px.user : "", f->px.has_cred ? f->px.password : "",
                 u->scheme == SK_URL_HTTPS ? "https" : "http", w->where, v);
    else
        snprintf(out, cap, "tunnel %s %s %s %d", f->px.where, f->px.auth, w->where, v);
}

bool sk__fetch_still_open(struct sk_fetch *f)
{
    struct sk_stream *s = &f->w.s;
    if (!f->w.live || s->closed || s->setup)
        return false;
    /* HTTP/2: bytes waiting are frames for the session (a reset stream's
     * DATA, a PING, a GOAWAY), fed by the next exchange; a close found
     * then, before any head, is sent again once on a new connection. */
    if (f->w.h2)
        return sk__fetch_h2_alive(f) && sk__fetch_h2_keep(f);
    if (sk_stream_is_tls(s) && SSL_has_pending(s->x->ssl))
        return false;
    char c;
    ssize_t n = recv(s->io.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* b may use a connection a makes: the same route, verified the same way. */
static bool same_route(const struct sk_fetch *a, const struct sk_fetch *b, const char *key)
{
    const char *ca = a->o.cacert, *cb = b->o.cacert;
    return strcmp(a->w.key, key) == 0 && !(a->o.flags & SK_FETCH_NO_REUSE) &&
           !(b->o.flags & SK_FETCH_NO_REUSE) &&
           (a->o.flags & SK_FETCH_INSECURE) == (b->o.flags & SK_FETCH_INSECURE) &&
           (ca == cb || (ca && cb && strcmp(ca, cb) == 0));
}

bool sk__fetch_h2_shareable(const struct sk_fetch *owner, const struct sk_fetch *f,
                            const char *key)
{
    enum sk__fetch_phase ph = owner->w.phase;
    /* in an exchange on it, or done with it (kept: a pool's, fetch_pool.c) */
    bool in_use = ph == SK__PH_HEAD || ph == SK__PH_READY || ph == SK__PH_BODY ||
                  (ph == SK__PH_IDLE && owner->w.idle);
    return in_use && owner->w.live && !owner->w.s.closed && same_route(owner, f, key) &&
           sk__fetch_h2_can_join(owner);
}

bool sk__fetch_h2_pending(const struct sk_fetch *other, const struct sk_fetch *f,
                          const char *key)
{
    enum sk__fetch_phase ph = other->w.phase;
    /* Looking its name up (on a thread): its connection is on the way. */
    bool connecting = other->w.resolving ||
                      (other->w.live && (ph == SK__PH_CONNECT || ph == SK__PH_TUNNEL));
    return connecting && f->o.http_version != SK_FETCH_HTTP_1_1 && same_route(other, f, key);
}

void sk__fetch_done(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    if (sk__fetch_h2_park(f)) /* other streams on it: it stays, for them and the next */
        return;
    if ((f->o.flags & SK_FETCH_NO_REUSE) || !w->keep_ok || !w->body_done ||
        (w->h2 && !sk__fetch_h2_keep(f)) || !sk__fetch_still_open(f)) {
        sk__fetch_close(f, w->body_done); /* close_notify after a whole response */
        return;
    }
    w->phase = SK__PH_IDLE;
    w->pend = 0;
    w->gather = false;
    sk_timer_stop(w->loop, &w->timer);
    sk_stream_update(&w->s, false);
    w->idle = true;
}

bool sk__fetch_discard(struct sk_fetch *f, const struct sk_http_framing *fr)
{
    if (sk__fetch_drain(f, fr) || (f->o.flags & SK_FETCH_NO_REUSE) || !f->w.keep_ok)
        return f->w.body_done; /* it came with the head, or the connection goes anyway */
    if (!(fr->kind == SK_HTTP_BODY_CHUNKED ||
          (fr->kind == SK_HTTP_BODY_LENGTH && fr->length <= SK__FETCH_DISCARD_MAX)))
        return false; /* to its close, or too long to be worth it */
    uint64_t max = f->o.max_filesize;
    f->o.max_filesize = SK__FETCH_DISCARD_MAX; /* a long chunked one stops there */
    struct sk__fetch_sink sink = {.kind = SK__SINK_DISCARD};
    int rc = sk__fetch_body(f, fr, &sink);
    f->o.max_filesize = max;
    f->cause = SK_FETCH_CAUSE_NONE; /* what stopped it is not the verdict */
    if (rc != 0)
        f->w.body_done = false; /* stopped before its end: the connection goes */
    return f->w.body_done;
}

bool sk__fetch_drain(struct sk_fetch *f, const struct sk_http_framing *fr)
{
    struct sk__fetch_wire *w = &f->w;
    const char *p = f->buf + w->head_len;
    size_t n = w->have - w->head_len;
    w->body_done = false;
    if ((f->o.flags & SK_FETCH_NO_REUSE) || !w->keep_ok)
        return false;
    if (w->h2) { /* its DATA is not read on: the stream ends here, the connection stays */
        if (sk__fetch_h2_ended(f))
            return w->body_done = true;
        if (w->h2st.closed || w->h2st.fail)
            return false; /* reset or failed: as it was, not reused */
        sk__fetch_h2_rest(f); /* still open (a redirect's body unread): reset, its DATA ignored */
        return w->body_done = true;
    }
    if (fr->kind == SK_HTTP_BODY_NONE || fr->kind == SK_HTTP_BODY_LENGTH) {
        w->body_done = n == (fr->kind == SK_HTTP_BODY_NONE ? 0 : fr->length);
    } else if (fr->kind == SK_HTTP_BODY_CHUNKED) { /* what came with the head only */
        struct sk_chunked c;
        memset(&c, 0, sizeof c);
        while (n > 0 && !sk_chunked_done(&c)) {
            const char *data;
            size_t dl;
            int used = sk_chunked_feed(&c, p, n, &data, &dl);
            if (used <= 0)
                break;
            p += used;
            n -= (size_t)used;
        }
        w->body_done = sk_chunked_done(&c) && n == 0;
    }
    return w->body_done;
}

