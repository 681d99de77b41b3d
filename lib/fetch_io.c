/* The HTTP client's wire: one exchange (connect, TLS, the request, the
 * response head, the body into its sink) as a state machine fed by its
 * connection's events on the transfer's private loop.
 *
 * The connection is a stream (sockit/stream.h): connected with Happy
 * Eyeballs, with TLS on it for https; its read callback feeds the head
 * parser, then the body decoder. Each phase's deadline (connect, idle,
 * max_time) is one loop timer, and the cancel flag's signal wakes the loop
 * through a socket of its own. sk_fetch_run drives the machine phase by phase (open: up to the final
 * head; body: to its end), running the loop until the phase ends; what
 * lies between (a redirect, which sink) is fetch_run.c's. */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "alloc_int.h"
#include "fetch_int.h"
#include "stream_int.h"

/* ---- the request ---- */

/* True if the user supplied a header with this name. */
static bool user_has(const struct sk_fetch_opts *o, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < o->nheaders; i++)
        if (strncasecmp(o->headers[i], name, n) == 0 && o->headers[i][n] == ':')
            return true;
    return false;
}

/* Credentials the user gave for one origin never follow a redirect to
 * another (curl's rule too). */
static bool is_credential(const char *h)
{
    static const char *const names[] = {"Authorization:", "Proxy-Authorization:", "Cookie:"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncasecmp(h, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

/* Appends a formatted line to buf at *n; false when it does not fit. */
static bool addf(char *buf, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool addf(char *buf, size_t cap, size_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= cap - *n)
        return false;
    *n += (size_t)k;
    return true;
}

/* "Authorization: Basic base64(user:password)" (RFC 7617). */
static bool add_basic(struct sk_fetch *f, char *buf, size_t cap, size_t *n)
{
    unsigned char plain[2 * SK__FETCH_CRED_MAX];
    char b64[sizeof plain / 3 * 4 + 8];
    int k = snprintf((char *)plain, sizeof plain, "%s:%s", f->auth_user, f->auth_password);
    if (k < 0 || (size_t)k >= sizeof plain)
        return false;
    EVP_EncodeBlock((unsigned char *)b64, plain, k);
    OPENSSL_cleanse(plain, sizeof plain);
    bool ok = addf(buf, cap, n, "Authorization: Basic %s\r\n", b64);
    OPENSSL_cleanse(b64, sizeof b64);
    return ok;
}

/* The request into f->buf; *len its length. */
static int build_request(struct sk_fetch *f, const struct sk_url *u, bool cross_origin,
                         size_t *len)
{
    bool head = f->o.flags & SK_FETCH_HEAD;
    const struct sk_fetch_opts *o = &f->o;
    char *req = f->buf;
    size_t cap = SK__FETCH_BUF_SIZE, n = 0;
    char auth[SK_HOST_MAX + 16];
    sk_url_authority(u, auth, sizeof auth);
    /* To a proxy (plain http): the absolute form, and its credentials. */
    bool to_proxy = f->px.on && !f->px.tunnel;
    char absolute[SK__FETCH_URL_MAX];
    if (to_proxy && sk_url_format(u, absolute, sizeof absolute) < 0)
        return sk_fetch_set_error(f, SK_EUSAGE, "request too large");
    bool ok = addf(req, cap, &n, "%s %s HTTP/1.1\r\n", head ? "HEAD" : "GET",
                   to_proxy ? absolute : u->target);
    if (!user_has(o, "Host"))
        ok = ok && addf(req, cap, &n, "Host: %s\r\n", auth);
    if (!user_has(o, "User-Agent"))
        ok = ok && addf(req, cap, &n, "User-Agent: %s\r\n",
                        o->user_agent ? o->user_agent : "sockit/" SOCKIT_VERSION);
    if (!user_has(o, "Accept"))
        ok = ok && addf(req, cap, &n, "Accept: */*\r\n");
    if ((o->flags & SK_FETCH_COMPRESSED) && !user_has(o, "Accept-Encoding"))
        ok = ok && addf(req, cap, &n, "Accept-Encoding: gzip, deflate, br\r\n");
    f->sent_range = user_has(o, "Range");
    if (f->rs.active && f->rs.offset > 0 && f->rs.validator[0]) {
        f->sent_range = true;
        ok = ok && addf(req, cap, &n, "Range: bytes=%llu-\r\nIf-Range: %s\r\n",
                        (unsigned long long)f->rs.offset, f->rs.validator);
    }
    if (f->auth_user && !cross_origin && !user_has(o, "Authorization"))
        ok = ok && add_basic(f, req, cap, &n);
    for (size_t i = 0; i < o->nheaders; i++)
        if (!(cross_origin && is_credential(o->headers[i])) &&
            !(f->px.tunnel && sk__fetch_is_proxy_auth(o->headers[i]))) /* on the CONNECT */
            ok = ok && addf(req, cap, &n, "%s\r\n", o->headers[i]);
    if (to_proxy && f->px.auth[0] && !user_has(o, "Proxy-Authorization"))
        ok = ok && addf(req, cap, &n, "Proxy-Authorization: %s\r\n", f->px.auth);
    if (o->flags & SK_FETCH_NO_REUSE)
        ok = ok && addf(req, cap, &n, "Connection: close\r\n");
    ok = ok && addf(req, cap, &n, "\r\n");
    if (!ok)
        return sk_fetch_set_error(f, SK_EUSAGE, "request too large");
    *len = n;
    return 0;
}

/* ---- the machine's phases ---- */

/* Where the connection goes, for messages: "proxy HOST:PORT", or the origin's. */
static const char *peer(struct sk_fetch *f)
{
    if (!f->px.on)
        return f->w.where;
    snprintf(f->w.doing, sizeof f->w.doing, "proxy %s", f->px.where);
    return f->w.doing;
}

static const char *doing(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    if (w->phase == SK__PH_CONNECT) {
        bool tls = w->live && w->s.setup == SK__SETUP_HANDSHAKE;
        if (tls)
            snprintf(w->doing, sizeof w->doing, "TLS handshake with %s", w->where);
        else
            snprintf(w->doing, sizeof w->doing, "connecting to %s%s", f->px.on ? "proxy " : "",
                     f->px.on ? f->px.where : w->where);
        return w->doing;
    }
    if (w->phase == SK__PH_TUNNEL) {
        snprintf(w->doing, sizeof w->doing, "%s%sCONNECT to %s through proxy %s",
                 sk__proxy_socks_version(f->px.kind), f->px.kind != SK__PROXY_HTTP ? " " : "",
                 w->where, f->px.where);
        return w->doing;
    }
    if (w->phase == SK__PH_HEAD)
        return w->sending ? "sending the request" : "reading the response";
    return "reading the body";
}

static bool reading(const struct sk__fetch_wire *w)
{
    return w->phase == SK__PH_HEAD || w->phase == SK__PH_BODY || w->phase == SK__PH_TUNNEL;
}

/* In a phase that the loop drives. */
static bool active(const struct sk__fetch_wire *w)
{
    return w->phase == SK__PH_CONNECT || reading(w);
}

/* The phase is over: READY (the head is in) or DONE (w->rc says how). */
static int sink_flush(struct sk_fetch *f);
static bool h2_reading(struct sk_fetch *f);

/* The connection is to be read now: over HTTP/2 while a stream on it
 * waits for frames, else in a reading phase not paused by the rate limit. */
static bool wants_read(struct sk_fetch *f)
{
    return f->w.h2 ? h2_reading(f) : reading(&f->w) && !f->w.paused;
}

/* The phase's timers stop (its deadline, the rate limit's, the speed's). */
static void timers_stop(struct sk__fetch_wire *w)
{
    sk_timer_stop(w->loop, &w->timer);
    sk_timer_stop(w->loop, &w->pace);
    sk_timer_stop(w->loop, &w->tick);
    w->paused = false;
}

/* ---- HTTP/2: the transfers whose streams share a connection ---- */

#define H2_USERS_MAX 128

/* Some transfer on f's HTTP/2 connection waits for its stream's frames. */
static bool h2_reading(struct sk_fetch *f)
{
    struct sk_fetch *u[H2_USERS_MAX];
    unsigned n = sk__fetch_h2_users(f, u, H2_USERS_MAX);
    for (unsigned i = 0; i < n; i++)
        if (u[i]->w.phase == SK__PH_HEAD || u[i]->w.phase == SK__PH_BODY)
            return true;
    return false;
}

/* The connection reads while some stream on it needs its frames (a stream
 * whose body has not started takes at most its window meanwhile). */
static void conn_update(struct sk_fetch *f)
{
    struct sk_fetch *o = sk__fetch_h2_owner(f);
    if (o && o->w.live && !o->w.s.setup)
        sk_stream_update(&o->w.s, h2_reading(o));
}

static void phase_end(struct sk_fetch *f, enum sk__fetch_phase next, int rc);

/* After input (or the connection's end): each exchange on the connection
 * whose phase is over ends it. */
static void h2_settle(struct sk_fetch *f)
{
    struct sk_fetch *u[H2_USERS_MAX];
    unsigned n = sk__fetch_h2_users(f, u, H2_USERS_MAX);
    for (unsigned i = 0; i < n; i++) {
        enum sk__fetch_phase was = u[i]->w.phase;
        if (was != SK__PH_HEAD && was != SK__PH_BODY)
            continue;
        int rc = sk__fetch_h2_verdict(u[i]);
        if (rc != 0)
            phase_end(u[i], rc > 0 && was == SK__PH_HEAD ? SK__PH_READY : SK__PH_DONE,
                      rc > 0 ? 0 : rc);
    }
}

/* The owner of a connection closes it only once the transfers that joined
 * it left (their streams end as they would); its exchange ends without
 * waiting (sk__fetch_h2_park). */
void sk__fetch_h2_wait_guests(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    struct sk_fetch *u[H2_USERS_MAX];
    if (w->h2 && sk__fetch_h2_owner(f) == f)
        sk__fetch_h2_closing(f); /* nothing joins a connection that is to close */
    while (w->h2 && sk__fetch_h2_owner(f) == f && sk__fetch_h2_users(f, u, H2_USERS_MAX) > 1) {
        if (!f->co) { /* cannot happen: a holder out of a slot is swept once they left */
            sk__fetch_h2_dead(f, SK_ERR(ECONNRESET));
            h2_settle(f);
            unsigned n = sk__fetch_h2_users(f, u, H2_USERS_MAX);
            for (unsigned i = 0; i < n; i++)
                if (u[i] != f && u[i]->w.phase != SK__PH_DONE)
                    phase_end(u[i], SK__PH_DONE,
                              sk_fetch_set_error(u[i], SK_ETRUNCATED, "connection closed"));
            return;
        }
        conn_update(f);
        (void)sk__fetch_wait(f);
    }
}

bool sk__fetch_h2_park(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    struct sk_fetch *u[2];
    if (!w->h2 || sk__fetch_h2_owner(f) != f || !w->pool || !w->live || w->s.closed ||
        !sk__fetch_h2_alive(f) || sk__fetch_h2_users(f, u, 2) < 2)
        return false;
    sk__fetch_h2_rest(f); /* its own stream ends; the others go on */
    w->phase = SK__PH_IDLE;
    w->pend = 0;
    w->gather = false;
    timers_stop(w);
    w->idle = true;
    conn_update(f);
    return true;
}

static void phase_end(struct sk_fetch *f, enum sk__fetch_phase next, int rc)
{
    struct sk__fetch_wire *w = &f->w;
    if (w->pend) { /* what was gathered is the body's too, also when it failed */
        int frc = sink_flush(f);
        rc = rc ? rc : frc;
    }
    w->gather = false;
    w->phase = next;
    w->rc = rc;
    timers_stop(w);
    if (w->h2)
        conn_update(f);
    else if (w->live && !w->s.setup)
        sk_stream_update(&w->s, false);
    sk_loop_stop(w->loop);
}

/* A failure met while reading: a TLS failure (a corrupt record...) is a
 * TLS error with OpenSSL's reason, the rest as sk_fetch_fail_as says. */
static int read_fail(struct sk_fetch *f, int err, const char *what)
{
    if (err == SK_ETLS)
        return sk_fetch_set_error(f, SK_ETLS, "%s: %s", what, sk_stream_error(&f->w.s));
    return sk_fetch_fail_as(f, err, what);
}

/* True when the parse error lies in the status line: the first line, cut
 * at its CRLF, does not parse on its own. */
static bool bad_status_line(const char *buf, size_t len)
{
    const char *crlf = memmem(buf, len, "\r\n", 2);
    char line[256];
    size_t n = crlf ? (size_t)(crlf - buf) : 0;
    if (!crlf || n + 4 > sizeof line)
        return true;
    memcpy(line, buf, n);
    memcpy(line + n, "\r\n\r\n", 4);
    struct sk_http_resp r;
    return sk_http_resp_parse(line, n + 4, &r, NULL, 0) < 0;
}

/* The head so far in f->buf: 1 when the final (non-1xx) head is in, 0
 * when more is needed, or a negative code (recorded). */
static int parse_head(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    while (w->have > 0) {
        int rc = sk_http_resp_parse(f->buf, w->have, &w->resp, w->hdrs, SK_HTTP_HEADERS_MAX);
        if (rc > 0 && w->resp.status >= 100 && w->resp.status <= 199) {
            if (w->resp.status == 101)
                return sk_fetch_set_error(f, SK_EPROTO, "unexpected 101 Switching Protocols");
            /* Interim response (100 Continue, 103 Early Hints): skip it,
             * but not forever. */
            if (++w->interim > SK__FETCH_INTERIM_MAX)
                return sk_fetch_set_error(f, SK_EPROTO, "more than %d interim (1xx) responses",
                                          SK__FETCH_INTERIM_MAX);
            memmove(f->buf, f->buf + rc, w->have - (size_t)rc);
            w->have -= (size_t)rc;
            continue;
        }
        if (rc > 0) {
            w->head_len = (size_t)rc;
            w->keep_ok = w->resp.version_minor == 1 && !sk__fetch_conn_close(&w->resp);
            return 1;
        }
        if (rc == SK_ETOOBIG)
            return sk_fetch_set_error(f, SK_EPROTO,
                                      "response head too large (over %d KiB or %d fields)",
                                      SK_HTTP_HEAD_MAX / 1024, SK_HTTP_HEADERS_MAX);
        if (rc < 0 && rc != SK_HTTP_INCOMPLETE)
            return sk_fetch_set_error(f, SK_EPROTO, "malformed response: %s",
                                      bad_status_line(f->buf, w->have) ? "bad status line"
                                                                       : "bad header field line");
        return 0;
    }
    return 0;
}

int sk__fetch_sink_out(struct sk_fetch *f, struct sk__fetch_sink *s, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    uint64_t max = f->o.max_filesize;
    if (max && (s->done > max || n > max - s->done)) {
        f->cause = SK_FETCH_CAUSE_MAX_FILESIZE;
        return sk_fetch_set_error(f, SK_ETOOBIG,
                                  "the body grows past the size limit of %llu bytes "
                                  "(transfer stopped, body not saved)",
                                  (unsigned long long)max);
    }
    if (s->kind == SK__SINK_CALL && f->o.write) {
        int rc = f->o.write(f->o.write_arg, p, n);
        if (rc < 0) /* the callback may have said why */
            return f->msg[0] ? rc : sk_fetch_fail_as(f, rc, "writing the body");
    } else if (s->kind == SK__SINK_FILE) {
        int rc = sk_outfile_write(s->of, p, n);
        if (rc < 0)
            return sk_fetch_set_error(f, SK_EWRITE, "cannot write %s: %s", s->of->tmp,
                                      sk_strerror(rc));
    }
    sk__fetch_digest_add(s, p, n);
    s->done += n;
    if (s->progress) {
        int rc = sk__fetch_event(f, SK_FETCH_EV_PROGRESS, NULL, 0, s->done, s->total);
        if (rc < 0)
            return f->msg[0] ? rc : sk_fetch_fail_as(f, rc, "reporting progress");
    }
    return 0;
}

/* Body bytes as the server sent them: decoded first if they are coded. */
static int sink_write(struct sk_fetch *f, struct sk__fetch_sink *s, const char *p, size_t n)
{
    return s->dec ? sk__fetch_decode_put(f, s, p, n) : sk__fetch_sink_out(f, s, p, n);
}

/* The bytes gathered for the sink go out. */
static int sink_flush(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    size_t n = w->pend;
    w->pend = 0;
    return sink_write(f, w->sink, f->buf, n);
}

/* Body bytes for the sink. Small pieces (TLS records: 16 KiB) are gathered
 * in f->buf, free once the head is used, and go out when half of it is
 * full or when a read event ends with no more input ready: few large
 * writes, not one per record, and nothing held while the server pauses. */
int sk__fetch_sink_put(struct sk_fetch *f, const char *p, size_t n)
{
    struct sk__fetch_wire *w = &f->w;
    if (n == 0) /* a chunk's framing: no data, maybe no pointer */
        return 0;
    if (!w->gather || n >= SK__FETCH_GATHER_MIN || w->pend + n > SK__FETCH_BUF_SIZE ||
        w->sink->kind == SK__SINK_DISCARD) { /* nothing to write: its bound checked at once */
        int rc = sink_flush(f);
        if (rc < 0 || !w->gather || n >= SK__FETCH_GATHER_MIN)
            return rc < 0 ? rc : sink_write(f, w->sink, p, n);
    }
    memcpy(f->buf + w->pend, p, n);
    w->pend += n;
    return 0;
}

/* Decodes p[0..n) of a chunked body into the sink; *rest: the bytes after
 * its end. */
static int chunked_span(struct sk_fetch *f, const char *p, size_t n, size_t *rest)
{
    struct sk__fetch_wire *w = &f->w;
    while (n > 0 && !sk_chunked_done(&w->chunked)) {
        const char *data;
        size_t dl;
        int used = sk_chunked_feed(&w->chunked, p, n, &data, &dl);
        if (used == SK_ETOOBIG)
            return sk_fetch_set_error(f, SK_EPROTO,
                                      "chunked body exceeds limits (chunk size, "
                                      "extension, trailers or framing overhead)");
        if (used < 0)
            return sk_fetch_set_error(f, SK_EPROTO, "malformed chunked body");
        int rc = sk__fetch_sink_put(f, data, dl);
        if (rc != 0)
            return rc;
        p += used;
        n -= (size_t)used;
    }
    *rest = n;
    return 0;
}

/* Body bytes: 1 when the body is complete, 0 when more is due, or a
 * negative code (recorded). Bytes after the body's end are ignored, and
 * the connection is then not reused (w->body_done says whether it may). */
static int body_bytes(struct sk_fetch *f, const char *p, size_t n)
{
    struct sk__fetch_wire *w = &f->w;
    int rc;
    size_t rest = 0;
    switch (w->fr.kind) {
    case SK_HTTP_BODY_LENGTH: {
        size_t take = n < w->left ? n : (size_t)w->left;
        rc = sk__fetch_sink_put(f, p, take);
        w->left -= take;
        w->body_done = w->left == 0 && take == n;
        return rc < 0 ? rc : w->left == 0;
    }
    case SK_HTTP_BODY_CHUNKED:
        rc = chunked_span(f, p, n, &rest);
        w->body_done = sk_chunked_done(&w->chunked) && rest == 0;
        return rc < 0 ? rc : sk_chunked_done(&w->chunked);
    case SK_HTTP_BODY_CLOSE: return sk__fetch_sink_put(f, p, n);
    default: return 1;
    }
}

/* The connection ended with err (0: a clean end; SK_ECLOSED: a TLS end
 * without close_notify) inside the body: the verdict, recorded. */
static int body_end(struct sk_fetch *f, int err)
{
    struct sk__fetch_wire *w = &f->w;
    bool reset = err == SK_ERR(ECONNRESET);
    if (err != 0 && err != SK_ECLOSED && !reset)
        return read_fail(f, err, "reading the body");
    switch (w->fr.kind) {
    case SK_HTTP_BODY_LENGTH:
        return sk_fetch_set_error(f, SK_ETRUNCATED,
                                  "body truncated: connection closed after %llu of %llu bytes",
                                  (unsigned long long)(w->fr.length - w->left),
                                  (unsigned long long)w->fr.length);
    case SK_HTTP_BODY_CHUNKED:
        return sk_fetch_set_error(f, SK_ETRUNCATED,
                                  "body truncated: connection closed inside the chunked body "
                                  "(no final chunk)");
    default:
        if (err == SK_ECLOSED)
            return sk_fetch_set_error(
                f, SK_ETRUNCATED,
                "body may be truncated: TLS connection closed without close_notify");
        if (reset) /* a reset is not the end of the body: it cut it */
            return sk_fetch_set_error(f, SK_ETRUNCATED, "body may be truncated: connection reset");
        return 0; /* the end of a close-delimited body */
    }
}

static int tls_start(struct sk_fetch *f, const char *host);
static void on_connected(struct sk_stream *s, int err);

/* The proxy said 2xx to CONNECT (or SOCKS granted it): TLS to the origin
 * on the tunnel for https, the request inside it (without the proxy's
 * credentials) once it is up; plain http (SOCKS) goes on as connected. */
static int tunnel_up(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    w->have = 0;
    int rc = build_request(f, f->px.origin, f->px.cross, &w->reqlen);
    if (rc < 0)
        return rc;
    w->phase = SK__PH_CONNECT;
    if (f->px.origin->scheme != SK_URL_HTTPS) {
        on_connected(&w->s, 0);
        return 0;
    }
    w->tls_wanted = true;
    return tls_start(f, f->px.origin->host);
}

/* Bytes of a SOCKS proxy's replies. Returns whether to read on. */
static bool socks_feed(struct sk_fetch *f, const char *p, size_t n)
{
    struct sk__fetch_wire *w = &f->w;
    size_t len = 0;
    int rc = sk__fetch_socks_reply(f, p, n, &len);
    if (rc == 2 && (rc = sk_stream_write(&w->s, f->buf, len)) < 0)
        rc = sk_fetch_fail_as(f, rc, doing(f));
    if (rc == 0 || rc == 2)
        return true;
    if (rc > 0 && (rc = tunnel_up(f)) == 0)
        return f->px.origin->scheme != SK_URL_HTTPS && reading(w); /* else TLS reads */
    phase_end(f, SK__PH_DONE, rc);
    return false;
}

/* Bytes of the proxy's reply to CONNECT. Returns whether to read on. */
static bool tunnel_feed(struct sk_fetch *f, const char *p, size_t n)
{
    struct sk__fetch_wire *w = &f->w;
    if (f->px.kind != SK__PROXY_HTTP)
        return socks_feed(f, p, n);
    size_t take = n < SK__FETCH_BUF_SIZE - w->have ? n : SK__FETCH_BUF_SIZE - w->have;
    memcpy(f->buf + w->have, p, take);
    w->have += take;
    int rc = sk__fetch_tunnel_reply(f, f->buf, w->have);
    if (rc == 0)
        return true;
    if (rc > 0)
        rc = tunnel_up(f);
    if (rc < 0)
        phase_end(f, SK__PH_DONE, rc);
    return false; /* TLS reads from here on, or the phase is over */
}

/* Bytes from the connection. Returns whether to read on. */
static bool feed(struct sk_fetch *f, const char *p, size_t n)
{
    struct sk__fetch_wire *w = &f->w;
    int rc;
    if (w->phase == SK__PH_TUNNEL)
        return tunnel_feed(f, p, n);
    if (w->h2 && w->phase != SK__PH_CONNECT) { /* every stream of the connection's */
        (void)sk__fetch_h2_input(f, p, n);
        h2_settle(f);
        return h2_reading(f);
    }
    if (w->phase == SK__PH_HEAD) {
        if (n > SK__FETCH_BUF_SIZE - w->have) { /* cannot happen: a head is refused first */
            phase_end(f, SK__PH_DONE, sk_fetch_set_error(f, SK_EPROTO, "response head too large"));
            return false;
        }
        memcpy(f->buf + w->have, p, n);
        w->have += n;
        if ((rc = parse_head(f)) == 0)
            return true;
        phase_end(f, rc > 0 ? SK__PH_READY : SK__PH_DONE, rc > 0 ? 0 : rc);
        return false;
    }
    if (w->phase != SK__PH_BODY)
        return false;
    if ((rc = body_bytes(f, p, n)) == 0)
        return true;
    phase_end(f, SK__PH_DONE, rc < 0 ? rc : 0);
    return false;
}

/* The connection ended (err as in body_end) or failed (err < 0). */
static void feed_end(struct sk_fetch *f, int err)
{
    struct sk__fetch_wire *w = &f->w;
    int rc;
    bool ended = err == 0 || err == SK_ECLOSED || err == SK_ERR(ECONNRESET);
    if (w->h2) { /* every stream on it */
        sk__fetch_h2_dead(f, err);
        h2_settle(f);
        return;
    }
    if (w->reused && w->phase == SK__PH_HEAD && w->have == 0 && !w->interim &&
        (ended || err == SK_ERR(EPIPE))) {
        /* the server had closed the kept connection: sk__fetch_open
         * replaces it (the message is for a cancel that comes first) */
        w->stale = true;
        rc = sk_fetch_set_error(f, SK_ECONNECT, "%s closed the kept connection", peer(f));
    } else if (w->phase == SK__PH_TUNNEL && ended)
        rc = sk__fetch_tunnel_cut(f, w->have);
    else if (w->phase == SK__PH_TUNNEL)
        rc = read_fail(f, err, doing(f));
    else if (w->phase == SK__PH_HEAD && w->sending)
        rc = sk_fetch_fail_as(f, err ? err : SK_ERR(EPIPE), "sending the request");
    else if (w->phase == SK__PH_HEAD && ended)
        rc = sk_fetch_set_error(f, SK_EPROTO, "%s",
                                w->have == 0 && !w->interim
                                    ? "empty reply from server"
                                    : "connection closed inside the response head");
    else if (w->phase == SK__PH_HEAD)
        rc = read_fail(f, err, "reading the response");
    else if (w->phase == SK__PH_BODY)
        rc = body_end(f, err);
    else
        return;
    phase_end(f, SK__PH_DONE, rc);
}

/* The cancel flag is up: the phase fails. */
static bool cancelled(struct sk_fetch *f)
{
    if (!f->cx->flag || !active(&f->w))
        return false;
    phase_end(f, SK__PH_DONE, sk__fetch_interrupted(f, doing(f)));
    return true;
}

/* ---- the stream's callbacks and the phase's timer ---- */

static void arm(struct sk_fetch *f);

static struct sk_fetch *of_stream(struct sk_stream *s)
{
    return SK_CONTAINER_OF(s, struct sk_fetch, w.s);
}

static bool on_read(struct sk_stream *s, const char *p, size_t n)
{
    struct sk_fetch *f = of_stream(s);
    if (cancelled(f))
        return false;
    bool more = true;
    uint64_t was = f->w.last_ms;
    bool body = f->w.phase == SK__PH_BODY;
    if (!f->w.h2 && (body || f->w.phase == SK__PH_HEAD))
        f->w.spd_bytes += n; /* over HTTP/2: each stream's DATA (fetch_h2.c) */
    if (n > 0)
        more = feed(f, p, n);
    else /* TLS: an end without close_notify may be a truncation */
        feed_end(f, sk_stream_is_tls(s) && !sk_stream_tls_close_notify(s) ? SK_ECLOSED : 0);
    if (n > 0 && body && !f->w.h2 && f->w.phase == SK__PH_BODY && sk__fetch_rate_count(f, n))
        more = false; /* the rate limit: reading resumes on its timer */
    /* After the sink: its own time is not the server's. Over HTTP/2 bytes
     * are not progress (PINGs, SETTINGS, another stream's frames would keep
     * a stalled stream alive forever): only what fetch_h2.c's callbacks
     * counted for this transfer's stream moves its idle clock. */
    if (!f->w.h2 || f->w.last_ms != was)
        f->w.last_ms = sk_now_ms();
    return more && wants_read(f);
}

/* At the end of a read event: more input is ready at once, and there is
 * room to gather it (else what is gathered goes out now). */
static bool more_ready(struct sk_fetch *f)
{
    struct sk_stream *s = &f->w.s;
    if (f->w.pend >= SK__FETCH_BUF_SIZE / 2 || s->closed)
        return false;
    if (sk_stream_is_tls(s) && SSL_has_pending(s->x->ssl))
        return true;
    int n = 0;
    return ioctl(s->io.fd, FIONREAD, &n) == 0 && n > 0;
}

static void on_flushed(struct sk_stream *s)
{
    struct sk_fetch *f = of_stream(s);
    if (cancelled(f))
        return;
    if (f->w.sending) {
        f->w.last_ms = sk_now_ms(); /* a write event: the peer took some */
        f->w.sending = sk_stream_queued(s) > 0;
    }
    int rc = f->w.pend && !more_ready(f) ? sink_flush(f) : 0;
    if (rc < 0) {
        phase_end(f, SK__PH_DONE, rc);
        return;
    }
    sk_stream_update(s, wants_read(f));
}

/* Connected to the proxy: CONNECT goes out, its reply is read. */
static void tunnel_send(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    size_t len = 0;
    int rc = 0;
    if (f->px.kind != SK__PROXY_HTTP) /* SOCKS5: the greeting first; SOCKS4: CONNECT */
        len = sk__fetch_socks_hello(f);
    else
        rc = sk__fetch_connect_request(f, f->px.origin, &len);
    if (rc < 0) {
        phase_end(f, SK__PH_DONE, rc);
        return;
    }
    w->phase = SK__PH_TUNNEL;
    w->have = 0;
    if ((rc = sk_stream_write(&w->s, f->buf, len)) < 0) {
        phase_end(f, SK__PH_DONE, sk_fetch_fail_as(f, rc, doing(f)));
        return;
    }
    arm(f);
}

/* The TLS handshake picked HTTP/2 (ALPN). */
static bool alpn_h2(struct sk_stream *s)
{
    const unsigned char *p = NULL;
    unsigned len = 0;
    if (sk_stream_is_tls(s))
        SSL_get0_alpn_selected(s->x->ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0;
}

/* The connection is ready (TCP, and TLS for https), or failed. */
static void on_connected(struct sk_stream *s, int err)
{
    struct sk_fetch *f = of_stream(s);
    struct sk__fetch_wire *w = &f->w;
    if (cancelled(f) || w->phase != SK__PH_CONNECT)
        return;
    if (err < 0 && s->setup == SK__SETUP_HANDSHAKE) {
        const char *why = *sk_stream_error(s) ? sk_stream_error(s) : sk_strerror(err);
        phase_end(f, SK__PH_DONE, sk_fetch_set_error(f, SK_ETLS, "%s: %s", w->where, why));
        return;
    }
    if (err < 0) {
        phase_end(f, SK__PH_DONE, sk_fetch_set_error(f, SK_ECONNECT, "cannot connect to %s: %s",
                                                     peer(f), sk_strerror(err)));
        return;
    }
    if (f->px.tunnel && !f->px.tunnel_up) {
        tunnel_send(f);
        return;
    }
    int rc = sk__fetch_tell_connected(f);
    if (rc == 0 && w->tls_wanted && !sk_stream_is_tls(s))
        return; /* TCP connected at once, in start(): TLS goes on it there */
    /* HTTP/2: picked by ALPN, or over plain http:// by prior knowledge (h2c) */
    bool h2 = sk_stream_is_tls(s) ? alpn_h2(s) : sk__fetch_h2c(f, f->px.origin);
    if (rc == 0 && h2 && (rc = sk__fetch_h2_begin(f)) == 0)
        rc = sk__fetch_par_h2_add(f); /* the run's to share */
    if (rc == 0)
        rc = sk__fetch_tell_ready(f);
    if (rc < 0) {
        phase_end(f, SK__PH_DONE, f->msg[0] ? rc : sk_fetch_fail_as(f, rc, "connecting"));
        return;
    }
    if (sk__fetch_par_loop(f)) /* the run's transfers waiting for this handshake look */
        sk_loop_stop(w->loop);
    w->phase = SK__PH_HEAD;
    w->sending = true;
    w->last_ms = sk_now_ms();
    rc = w->h2 ? sk__fetch_h2_request(f, f->px.origin, w->reqlen)
               : sk_stream_write(s, f->buf, w->reqlen); /* what the socket does not take is queued */
    if (rc < 0) {
        phase_end(f, SK__PH_DONE, sk_fetch_fail_as(f, rc, "sending the request"));
        return;
    }
    w->sending = sk_stream_queued(s) > 0;
    arm(f);
}

static void on_close(struct sk_stream *s, enum sk_close_reason why)
{
    struct sk_fetch *f = of_stream(s);
    struct sk__fetch_wire *w = &f->w;
    if (cancelled(f))
        return;
    if (w->phase == SK__PH_CONNECT) /* closed without a verdict: out of memory */
        phase_end(f, SK__PH_DONE, sk_fetch_set_error(f, SK_ECONNECT, "cannot connect to %s: %s",
                                                     peer(f), sk_strerror(SK_ERR(ENOMEM))));
    else if (why == SK_CLOSE_ERROR && reading(w))
        phase_end(f, SK__PH_DONE, sk_fetch_fail_as(f, SK_ERR(ENOMEM), doing(f)));
    else if (why == SK_CLOSE_TLS)
        feed_end(f, SK_ETLS);
    else
        feed_end(f, SK_ERR(ECONNRESET)); /* ours (END) come after the phase */
}

static void on_release(struct sk_stream *s)
{
    of_stream(s)->w.live = false;
}


/* The phase's deadline: idle since the last progress, capped by max_time. */
static uint64_t phase_due(const struct sk_fetch *f)
{
    if (f->w.phase == SK__PH_CONNECT || f->w.phase == SK__PH_TUNNEL)
        return f->w.connect_deadline; /* through a proxy: the CONNECT exchange too */
    int idle = f->o.idle_timeout_ms;
    uint64_t d = idle > 0 ? f->w.last_ms + (uint64_t)idle : 0;
    if (f->deadline_ms && (d == 0 || d > f->deadline_ms))
        d = f->deadline_ms;
    return d;
}

/* Progress only records the time; the timer looks when it fires, and sleeps
 * on while there was some (no timer update per read). */
static void on_timer(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk_fetch *f = SK_CONTAINER_OF(t, struct sk_fetch, w.timer);
    if (!active(&f->w) || cancelled(f))
        return;
    if (f->w.paused) /* the rate limit's pause is ours, not the server's stall */
        f->w.last_ms = sk_now_ms();
    uint64_t due = phase_due(f);
    if (due && sk_now_ms() < due)
        sk_timer_start_at(loop, t, due, on_timer);
    else if (due)
        phase_end(f, SK__PH_DONE, sk_fetch_fail_as(f, SK_ETIMEDOUT, doing(f)));
}

/* ---- the rate limit (max_recv_speed) and the speed limit ---- */

/* When the body's bytes so far are within max_recv_speed's budget. */
static uint64_t pace_at(const struct sk__fetch_wire *w, uint64_t rate)
{
    return w->rate_t0 + w->rate_bytes / rate * 1000 + w->rate_bytes % rate * 1000 / rate;
}

/* The pause is over: the transfer reads again (HTTP/2: the stream's window
 * kept back goes to the server), or pauses on if still over the budget. */
static void on_pace(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk_fetch *f = SK_CONTAINER_OF(t, struct sk_fetch, w.pace);
    struct sk__fetch_wire *w = &f->w;
    if (w->phase != SK__PH_BODY || cancelled(f))
        return;
    uint64_t at = pace_at(w, f->o.max_recv_speed);
    if (at > sk_now_ms()) { /* cannot happen: the timer was set to it */
        sk_timer_start_at(loop, t, at, on_pace);
        return;
    }
    w->paused = false;
    w->last_ms = sk_now_ms();
    if (w->h2) {
        int rc = sk__fetch_h2_give(f);
        if (rc < 0) { /* the server is gone: every stream on it */
            sk__fetch_h2_dead(f, rc);
            h2_settle(f);
        }
    } else if (w->live && !w->s.setup) {
        sk_stream_update(&w->s, wants_read(f));
    }
}

bool sk__fetch_rate_count(struct sk_fetch *f, size_t n)
{
    struct sk__fetch_wire *w = &f->w;
    uint64_t rate = f->o.max_recv_speed;
    w->rate_bytes += n;
    if (!rate || w->paused)
        return w->paused;
    uint64_t at = pace_at(w, rate);
    if (at <= sk_now_ms())
        return false;
    w->paused = true;
    sk_timer_start_at(w->loop, &w->pace, at, on_pace);
    return true;
}

#define SPEED_TICK_MS 1000

/* Each second of the head or the body: slower than low_speed_limit for
 * low_speed_time_ms in a row fails the transfer. */
static void on_tick(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk_fetch *f = SK_CONTAINER_OF(t, struct sk_fetch, w.tick);
    struct sk__fetch_wire *w = &f->w;
    if (!active(w) || cancelled(f))
        return;
    uint64_t now = sk_now_ms(), span = now - w->tick_t0;
    uint64_t limit = f->o.low_speed_limit;
    int secs = f->o.low_speed_time_ms > 0 ? f->o.low_speed_time_ms : 30000;
    bool counted = w->phase == SK__PH_HEAD || w->phase == SK__PH_BODY;
    if (!counted || (span > 0 && w->spd_bytes * 1000 / span >= limit))
        w->slow_since = 0;
    else if (!w->slow_since)
        w->slow_since = w->tick_t0 ? w->tick_t0 : now;
    w->spd_bytes = 0;
    w->tick_t0 = now;
    if (w->slow_since && now - w->slow_since >= (uint64_t)secs) {
        f->cause = SK_FETCH_CAUSE_SPEED_LIMIT;
        phase_end(f, SK__PH_DONE,
                  sk_fetch_set_error(f, SK_ETIMEDOUT,
                                     "%s: transfer slower than %llu bytes/s for %g s", doing(f),
                                     (unsigned long long)limit, secs / 1000.0));
        return;
    }
    sk_timer_start_at(loop, t, now + SPEED_TICK_MS, on_tick);
}

static void arm(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    uint64_t due = phase_due(f);
    if (due)
        sk_timer_start_at(w->loop, &w->timer, due, on_timer);
    if (f->o.low_speed_limit && !w->tick.armed && active(w)) {
        w->tick_t0 = sk_now_ms();
        w->spd_bytes = 0;
        sk_timer_start_at(w->loop, &w->tick, w->tick_t0 + SPEED_TICK_MS, on_tick);
    }
}

/* A signal raised the cancel flag and woke the eventfd. */
static void on_wake(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)events;
    struct sk_fetch *f = SK_CONTAINER_OF(io, struct sk_fetch, w.wake);
    if (!cancelled(f) && !f->cx->flag)
        sk_io_set(loop, io, 0); /* woken by someone else: nothing to tell */
}

static const struct sk_stream_cbs stream_cbs = {
    .read = on_read,
    .flushed = on_flushed,
    .close = on_close,
    .release = on_release,
    .connected = on_connected,
};

/* ---- connecting ---- */

/* The TLS context, made on the first https URL. */
static int tls_ctx(struct sk_fetch *f)
{
    if (f->tls)
        return 0;
    bool insecure = f->o.flags & SK_FETCH_INSECURE;
    struct sk_tls_config cfg = {.cafile = f->o.cacert, .insecure = insecure};
    char err[512];
    int rc = sk_tls_ctx_new(&cfg, &f->tls, err, sizeof err);
    if (rc == SK_ERR(ENOMEM))
        return sk_fetch_set_error(f, rc, "TLS set-up: %s", sk_strerror(rc));
    if (rc < 0)
        return sk_fetch_set_error(f, SK_ETLS, "%s", err);
    if (insecure)
        sk__fetch_notice(f, "warning: certificate verification is off: server certificates "
                            "are not verified");
    return 0;
}

/* TLS on the connection: at once if TCP is up, else when the connect ends. */
static int tls_start(struct sk_fetch *f, const char *host)
{
    struct sk__fetch_wire *w = &f->w;
    int rc = sk_stream_start_tls(&w->s, f->tls, host);
    /* ALPN (RFC 7301): HTTP/2 offered first unless HTTP/1.1 is asked for */
    static const unsigned char both[] = "\x02h2\x08http/1.1", h1[] = "\x08http/1.1";
    bool only_h1 = f->o.http_version == SK_FETCH_HTTP_1_1;
    if (rc == 0 && SSL_set_alpn_protos(w->s.x->ssl, only_h1 ? h1 : both,
                                       only_h1 ? sizeof h1 - 1 : sizeof both - 1) != 0)
        rc = SK_ERR(ENOMEM);
    if (rc < 0) {
        w->phase = SK__PH_IDLE;
        return sk_fetch_set_error(f, SK_ETLS, "TLS set-up for %s failed: %s", w->where,
                                  *sk_stream_error(&w->s) ? sk_stream_error(&w->s)
                                                          : sk_strerror(rc));
    }
    return 0;
}

/* The loop's first pass: the first connect attempt goes out (the stream
 * starts it from the loop). */
static void on_kick(struct sk_loop *loop, struct sk_timer *t)
{
    (void)t;
    sk_loop_stop(loop);
}

/* Starts the connection to u, TLS on it for https. The TLS context (the
 * costly part of a small https fetch: OpenSSL's start-up) is made while
 * the SYN is out, so it overlaps the TCP handshake's round trip. */
static int start(struct sk_fetch *f, const struct sk_url *u, size_t reqlen)
{
    struct sk__fetch_wire *w = &f->w;
    /* Through a proxy: TCP to it; for https TLS comes after its CONNECT
     * (the context made first: no overlap with the SYN to gain there).
     * socks5://, socks4://: the origin's name is looked up first, here. */
    bool tls = u->scheme == SK_URL_HTTPS && !f->px.tunnel;
    int rc = f->px.tunnel && u->scheme == SK_URL_HTTPS ? tls_ctx(f) : 0;
    if (rc == 0 && f->px.kind != SK__PROXY_HTTP && f->px.on)
        rc = sk__fetch_socks_resolve(f, u);
    if (rc < 0)
        return rc;
    if (f->px.on)
        u = &f->px.url;
    const struct addrinfo *ai = NULL;
    w->resolving = true; /* a parallel run's lookup waits: others may join (HTTP/2) */
    rc = sk__fetch_resolve(f, u, &ai);
    w->resolving = false;
    if (rc < 0)
        return rc;
    if ((rc = sk__fetch_event(f, SK_FETCH_EV_RESOLVED, u->host, strlen(u->host), 0, 0)) < 0) {
        sk__fetch_resolve_put(f, ai);
        return f->msg[0] ? rc : sk_fetch_fail_as(f, rc, "resolving");
    }
    w->addr_known = false; /* a new connection: its ends are learnt anew */
    rc = sk_stream_connect_list(w->g, &w->s, ai);
    sk__fetch_resolve_put(f, ai);
    if (rc < 0)
        return rc == SK_EUSAGE ? sk_fetch_set_error(f, SK_ERESOLVE, "could not resolve %shost %s",
                                                    f->px.on ? "proxy " : "", u->host)
                               : sk_fetch_fail_as(f, rc, "connecting");
    w->live = true;
    w->phase = SK__PH_CONNECT;
    w->tls_wanted = tls;
    w->reqlen = reqlen;
    w->connect_deadline = sk__fetch_deadline(f, f->o.connect_timeout_ms);
    if (!tls || f->tls)
        return tls ? tls_start(f, u->host) : 0;
    sk_timer_start_at(w->loop, &w->timer, sk_loop_now(w->loop), on_kick);
    /* In a parallel run the loop may stop for another transfer first. */
    while (w->timer.armed && w->phase == SK__PH_CONNECT && !cancelled(f))
        if ((rc = sk__fetch_wait(f)) < 0 && active(w))
            phase_end(f, SK__PH_DONE, sk_fetch_fail_as(f, rc, doing(f)));
    sk_timer_stop(w->loop, &w->timer);
    if (w->phase != SK__PH_CONNECT) /* every address failed at once, or the cancel */
        return w->rc;
    if ((rc = tls_ctx(f)) < 0) {
        w->phase = SK__PH_IDLE; /* the stream goes in sk__fetch_close */
        return rc;
    }
    return tls_start(f, u->host);
}

/* Runs the loop until the phase is over. */
static int run_phase(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    if (!cancelled(f))
        arm(f);
    while (active(w) && !cancelled(f)) {
        int rc = sk__fetch_wait(f);
        if (rc < 0 && active(w))
            phase_end(f, SK__PH_DONE, sk_fetch_fail_as(f, rc, doing(f)));
    }
    sk__stream_group_reap(w->g);
    return w->phase == SK__PH_READY ? 0 : w->rc;
}

/* ---- reuse (the rules: fetch_reuse.c) ---- */

/* The request on the kept connection, or (owner not NULL: HTTP/2
 * multiplexing) as a new stream on the connection of another transfer of
 * the run in an exchange to the same route; the head is read as on a new
 * one. */
static int reuse(struct sk_fetch *f, size_t reqlen, struct sk_fetch *owner)
{
    struct sk__fetch_wire *w = &f->w;
    if (owner)
        sk__fetch_h2_join(f, owner);
    w->idle = false;
    w->reused = true; /* refused before a byte: sent again on a new connection */
    w->reqlen = reqlen;
    w->told_connected = true;
    f->px.tunnel_up = f->px.tunnel;
    int rc = sk__fetch_tell_reused(f);
    if (rc < 0)
        return f->msg[0] ? rc : sk_fetch_fail_as(f, rc, "connecting");
    w->phase = SK__PH_HEAD;
    w->sending = !owner;
    w->last_ms = sk_now_ms();
    rc = w->h2 ? sk__fetch_h2_request(f, f->px.origin, w->reqlen) /* as told */
               : sk_stream_write(&w->s, f->buf, reqlen);
    if (rc < 0) {
        w->phase = SK__PH_IDLE;
        w->stale = true;
        return f->msg[0] ? rc : sk_fetch_fail_as(f, rc, "sending the request");
    }
    if (owner) {
        conn_update(f);
    } else {
        w->sending = sk_stream_queued(&w->s) > 0;
        sk_stream_update(&w->s, true);
    }
    return run_phase(f);
}

/* ---- the exchange ---- */

static void wire_reset(struct sk__fetch_wire *w)
{
    w->phase = SK__PH_IDLE;
    w->slow_since = w->spd_bytes = 0;
    w->have = w->head_len = 0;
    w->interim = 0;
    w->rc = 0;
    w->sending = false;
    w->told_connected = false;
    w->reused = w->stale = w->keep_ok = w->body_done = false;
}

/* The exchange again from nothing on a new connection (the one it had
 * ended before a byte of response: nothing to undo): the old one closed,
 * no tunnel up, the request built anew (a tunnel's used f->buf). */
static int afresh(struct sk_fetch *f, const struct sk_url *u, bool cross_origin, size_t *reqlen)
{
    sk__fetch_close(f, false);
    wire_reset(&f->w);
    f->msg[0] = '\0';
    f->px.tunnel_up = false;
    return build_request(f, u, cross_origin, reqlen);
}

int sk__fetch_open(struct sk_fetch *f, const struct sk_url *u, bool cross_origin)
{
    struct sk__fetch_wire *w = &f->w;
    wire_reset(w);
    sk_url_authority(u, w->where, sizeof w->where);
    if (u->port == (u->scheme == SK_URL_HTTPS ? 443 : 80)) /* always show the port */
        snprintf(w->where + strlen(w->where), sizeof w->where - strlen(w->where), ":%u",
                 u->port);
    int rc = sk__fetch_proxy_route(f, u); /* per hop: a redirect may change it */
    if (rc < 0)
        return rc;
    f->px.origin = u;
    f->px.cross = cross_origin;
    char key[sizeof w->key];
    sk__fetch_route_key(f, u, key, sizeof key);
    if (w->idle && (strcmp(key, w->key) != 0 || !sk__fetch_still_open(f)))
        sk__fetch_close(f, true); /* another route, or closed by the server */
    size_t reqlen = 0; /* through a tunnel: made again once it is up (f->buf is used) */
    rc = build_request(f, u, cross_origin, &reqlen);
    if (rc < 0)
        return rc;
    if (w->idle) {
        rc = reuse(f, reqlen, NULL);
        if (rc == 0 || !w->stale || f->cx->flag)
            return rc;
        /* The server had closed it: a new connection, as if none had been
         * kept (no byte of the response came: nothing to undo). */
        if ((rc = afresh(f, u, cross_origin, &reqlen)) < 0)
            return rc;
    }
    snprintf(w->key, sizeof w->key, "%s", key);
    /* In a parallel run another transfer may be connecting there: whether
     * it gets HTTP/2 (then this one joins it) is known after its handshake. */
    while ((u->scheme == SK_URL_HTTPS || sk__fetch_h2c(f, u)) && !w->live &&
           sk__fetch_par_h2_pending(f, key) &&
           !f->cx->flag)
        if (sk__fetch_wait(f) < 0)
            break;
    if (f->cx->flag)
        return sk__fetch_interrupted(f, "connecting");
    struct sk_fetch *owner = w->live ? NULL : sk__fetch_par_h2_owner(f, key);
    if (owner) {
        rc = reuse(f, reqlen, owner);
        if (rc == 0 || !w->stale || f->cx->flag)
            return rc;
        /* refused (GOAWAY): a connection of its own */
        if ((rc = afresh(f, u, cross_origin, &reqlen)) < 0)
            return rc;
    }
    for (int tries = 0;; tries++) {
        if ((rc = start(f, u, reqlen)) < 0)
            return rc;
        rc = run_phase(f);
        if (rc == 0 || !w->stale || tries > 0 || f->cx->flag)
            return rc;
        /* An HTTP/2 GOAWAY said the request was not processed: once more
         * on a new connection. */
        if ((rc = afresh(f, u, cross_origin, &reqlen)) < 0)
            return rc;
    }
}

int sk__fetch_body(struct sk_fetch *f, const struct sk_http_framing *fr,
                   struct sk__fetch_sink *sink)
{
    struct sk__fetch_wire *w = &f->w;
    w->fr = *fr;
    w->sink = sink;
    w->left = fr->kind == SK_HTTP_BODY_LENGTH ? fr->length : 0;
    memset(&w->chunked, 0, sizeof w->chunked);
    w->body_done = false;
    w->rate_t0 = sk_now_ms();
    w->rate_bytes = 0;
    w->h2_owed = 0;
    w->paused = false;
    if (w->phase == SK__PH_DONE && w->rc < 0) /* its connection went meanwhile */
        return w->rc;
    if (w->h2) { /* to END_STREAM, whatever the framing */
        w->phase = SK__PH_BODY;
        w->pend = 0;
        w->gather = false;
        int rc = sk__fetch_h2_body(f);
        if (rc != 0) {
            w->phase = SK__PH_DONE;
            conn_update(f);
            return rc < 0 ? rc : 0;
        }
        w->gather = !sk__fetch_h2_is_guest(f); /* a guest's are not flushed when idle */
        w->last_ms = sk_now_ms();
        conn_update(f);
        return run_phase(f);
    }
    if (fr->kind == SK_HTTP_BODY_NONE) {
        w->body_done = w->have == w->head_len; /* nothing after the head */
        return 0;
    }
    w->phase = SK__PH_BODY;
    /* What came with the head first, straight from f->buf. */
    w->pend = 0;
    w->gather = false;
    int rc = body_bytes(f, f->buf + w->head_len, w->have - w->head_len);
    if (rc != 0) {
        w->phase = SK__PH_DONE;
        return rc < 0 ? rc : 0;
    }
    w->gather = true;
    if (!w->live) /* cannot happen: the head's phase ended with it open */
        return sk_fetch_set_error(f, SK_ETRUNCATED, "connection closed early");
    w->last_ms = sk_now_ms();
    (void)sk__fetch_rate_count(f, w->have - w->head_len);
    sk_stream_update(&w->s, wants_read(f));
    return run_phase(f);
}

void sk__fetch_close(struct sk_fetch *f, bool clean)
{
    struct sk__fetch_wire *w = &f->w;
    sk__fetch_h2_wait_guests(f);
    w->phase = SK__PH_IDLE;
    w->pend = 0;
    w->gather = false;
    w->idle = false;
    w->addr_known = false;
    if (w->loop)
        timers_stop(w);
    if (w->live) {
        if (clean && sk_stream_is_tls(&w->s) && !w->s.setup &&
            sk_stream_shutdown(&w->s, SK_CLOSE_END, NULL, 0) == 0)
            sk_stream_flush(&w->s); /* close_notify, best effort: no wait for the peer's */
        sk_stream_close(&w->s, SK_CLOSE_END);
        sk__stream_group_reap(w->g);
    }
    sk__fetch_h2_free(f);
}

/* ---- the transfer's loop ---- */

int sk__fetch_wire_begin(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    int err = 0;
    struct sk_loop *shared = sk__fetch_par_loop(f);
    if (w->loop && w->loop != shared && (shared || !w->own_loop))
        sk__fetch_wire_end(f); /* another loop's: its kept connection goes */
    if (!w->loop && shared) {
        w->loop = shared;
        w->own_loop = false;
    }
    if (!w->loop) {
        if (!(w->loop = sk_loop_new(&err)))
            return sk_fetch_set_error(f, err, "cannot set up the event loop: %s",
                                      sk_strerror(err));
        w->own_loop = true;
    }
    static const struct sk_stream_limits lim = {
        .read_size = SK__FETCH_READ_SIZE,
        .max_memory = SIZE_MAX,     /* one stream, and the request is bounded */
        .connect_ms = UINT64_MAX,   /* the connect and the handshake share */
        .handshake_ms = UINT64_MAX, /* one deadline: w->timer's */
        .tls_keep_buffers = true,   /* a download reads without a pause */
    };
    if (!w->g && !(w->g = sk_stream_group_new(w->loop, &stream_cbs, &lim, &err)))
        return sk_fetch_set_error(f, err, "cannot set up the event loop: %s", sk_strerror(err));
    if (shared)
        return 0; /* the parallel run has the cancel's wake-up */
    /* The wake-up: sk_fetch_cancel_raise (async-signal-safe) writes to
     * it. A fresh one per run: its count is never read back. */
    if ((w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        err = SK_ERR(errno);
        return sk_fetch_set_error(f, err, "cannot set up the event loop: %s", sk_strerror(err));
    }
    if ((err = sk_io_start(w->loop, &w->wake, w->wake_fd, SK_READ, on_wake)) < 0) {
        sk__fetch_wire_finish(f);
        return sk_fetch_set_error(f, err, "cannot set up the event loop: %s", sk_strerror(err));
    }
    f->cx->fd = w->wake_fd;
    if (f->cx->flag) /* the signal came before the handler knew the eventfd */
        sk_fetch_cancel_raise(f->cx, f->cx->flag);
    return 0;
}

void sk__fetch_wire_finish(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    if (w->wake_fd < 0 && !w->wake.active)
        return; /* none of its own (a parallel run's) */
    f->cx->fd = -1; /* first: a signal must not shut down whatever reuses the number */
    if (w->wake.active)
        sk_io_stop(w->loop, &w->wake);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    w->wake_fd = -1;
}

void sk__fetch_wire_end(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    sk__fetch_close(f, w->idle); /* a kept connection ended as the protocol says */
    sk_stream_group_free(w->g);
    w->g = NULL;
    if (w->loop && w->own_loop)
        (void)sk_loop_free(w->loop);
    w->loop = NULL;
    w->own_loop = false;
}
