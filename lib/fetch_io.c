/* sockit fetch: the wire: connect (TCP, TLS), send the request, read the
 * response head, stream the body to its sink. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "fetch_int.h"

int sk__fetch_connect(struct sk_fetch *f, const struct sk_url *u, struct sk_conn **out)
{
    const struct sk_fetch_opts *o = &f->o;
    struct sk_endpoint ep = {.port = u->port};
    memcpy(ep.host, u->host, sizeof ep.host);
    char where[SK_HOST_MAX + 16];
    sk_url_authority(u, where, sizeof where);
    if (u->port == (u->scheme == SK_URL_HTTPS ? 443 : 80)) /* always show the port */
        snprintf(where + strlen(where), sizeof where - strlen(where), ":%u", u->port);
    uint64_t deadline = sk__fetch_deadline(f, o->connect_timeout_ms);
    int fd = sk_connect_until(&ep, SOCK_STREAM, deadline, true);
    if (fd < 0 && f->cx->flag)
        return sk__fetch_interrupted(f, "connecting");
    if (fd == SK_ERESOLVE)
        return sk_fetch_set_error(f, SK_ERESOLVE, "could not resolve host %s", u->host);
    if (fd == SK_ETIMEDOUT) {
        char doing[SK_HOST_MAX + 64];
        snprintf(doing, sizeof doing, "connecting to %s", where);
        return sk_fetch_fail_as(f, fd, doing);
    }
    if (fd < 0)
        return sk_fetch_set_error(f, SK_ECONNECT, "cannot connect to %s: %s", where,
                                  sk_strerror(fd));
    f->cx->fd = fd;
    if (f->cx->flag) /* the signal came before the handler knew the socket */
        shutdown(fd, SHUT_RDWR);
    int rc;
    if (u->scheme == SK_URL_HTTP) {
        if ((rc = sk_conn_new_plain(fd, out)) < 0)
            return sk_fetch_fail_as(f, rc, "connecting");
        sk_conn_set_cancel(*out, &f->cx->flag);
        return 0;
    }
    if (!f->tls) {
        bool insecure = o->flags & SK_FETCH_INSECURE;
        struct sk_tls_config cfg = {.cafile = o->cacert, .insecure = insecure};
        char err[512];
        if (sk_tls_ctx_new(&cfg, &f->tls, err, sizeof err) < 0) {
            close(fd);
            return sk_fetch_set_error(f, SK_ETLS, "%s", err);
        }
        if (insecure)
            sk__fetch_notice(f, "warning: --insecure: server certificates are not verified");
    }
    if ((rc = sk_conn_new_tls(fd, f->tls, u->host, out)) < 0)
        return sk_fetch_set_error(f, SK_ETLS, "TLS set-up for %s failed: %s", where,
                                  sk_strerror(rc));
    sk_conn_set_cancel(*out, &f->cx->flag);
    rc = sk_conn_handshake(*out, deadline);
    if (rc == SK_ETIMEDOUT || rc == SK_ERR(ECANCELED)) {
        char doing[SK_HOST_MAX + 64];
        snprintf(doing, sizeof doing, "TLS handshake with %s", where);
        return sk_fetch_fail_as(f, rc, doing);
    }
    if (rc < 0)
        return sk_fetch_set_error(f, SK_ETLS, "%s: %s", where,
                                  *sk_conn_error(*out) ? sk_conn_error(*out) : sk_strerror(rc));
    return 0;
}

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

int sk__fetch_send_request(struct sk_fetch *f, struct sk_conn *c, const struct sk_url *u,
                           bool cross_origin)
{
    bool head = f->o.flags & SK_FETCH_HEAD;
    const struct sk_fetch_opts *o = &f->o;
    char *req = f->buf;
    size_t cap = SK__FETCH_BUF_SIZE, n = 0;
    char auth[SK_HOST_MAX + 16];
    sk_url_authority(u, auth, sizeof auth);
    bool ok = addf(req, cap, &n, "%s %s HTTP/1.1\r\n", head ? "HEAD" : "GET", u->target);
    if (!user_has(o, "Host"))
        ok = ok && addf(req, cap, &n, "Host: %s\r\n", auth);
    if (!user_has(o, "User-Agent"))
        ok = ok && addf(req, cap, &n, "User-Agent: %s\r\n",
                        o->user_agent ? o->user_agent : "sockit/" SOCKIT_VERSION);
    if (!user_has(o, "Accept"))
        ok = ok && addf(req, cap, &n, "Accept: */*\r\n");
    f->sent_range = user_has(o, "Range");
    if (f->rs.active && f->rs.offset > 0 && f->rs.validator[0]) {
        f->sent_range = true;
        ok = ok && addf(req, cap, &n, "Range: bytes=%llu-\r\nIf-Range: %s\r\n",
                        (unsigned long long)f->rs.offset, f->rs.validator);
    }
    for (size_t i = 0; i < o->nheaders; i++)
        if (!(cross_origin && is_credential(o->headers[i])))
            ok = ok && addf(req, cap, &n, "%s\r\n", o->headers[i]);
    ok = ok && addf(req, cap, &n, "Connection: close\r\n\r\n");
    if (!ok)
        return sk_fetch_set_error(f, SK_EUSAGE, "request too large");
    int rc = sk_conn_write(c, req, n, sk__fetch_deadline(f, o->idle_timeout_ms));
    if (rc < 0)
        return sk_fetch_fail_as(f, rc, "sending the request");
    return 0;
}

/* A failed read: a TLS failure (a corrupt record...) is a TLS
 * error with OpenSSL's reason, the rest as sk_fetch_fail_as says. */
static int read_fail(struct sk_fetch *f, struct sk_conn *c, int err, const char *doing)
{
    if (err == SK_ETLS)
        return sk_fetch_set_error(f, SK_ETLS, "%s: %s", doing, sk_conn_error(c));
    return sk_fetch_fail_as(f, err, doing);
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

int sk__fetch_read_head(struct sk_fetch *f, struct sk_conn *c, struct sk_http_resp *r,
                        struct sk_http_header *h, size_t *head_len, size_t *filled)
{
    size_t have = 0;
    unsigned interim = 0;
    for (;;) {
        if (have > 0) {
            int rc = sk_http_resp_parse(f->buf, have, r, h, SK_HTTP_HEADERS_MAX);
            if (rc > 0 && r->status >= 100 && r->status <= 199) {
                if (r->status == 101)
                    return sk_fetch_set_error(f, SK_EPROTO, "unexpected 101 Switching Protocols");
                /* Interim response (100 Continue, 103 Early Hints): skip it,
                 * but not forever. */
                if (++interim > SK__FETCH_INTERIM_MAX)
                    return sk_fetch_set_error(f, SK_EPROTO, "more than %d interim (1xx) responses",
                                              SK__FETCH_INTERIM_MAX);
                memmove(f->buf, f->buf + rc, have - (size_t)rc);
                have -= (size_t)rc;
                continue;
            }
            if (rc > 0) {
                *head_len = (size_t)rc;
                *filled = have;
                return 0;
            }
            if (rc == SK_ETOOBIG)
                return sk_fetch_set_error(f, SK_EPROTO,
                                          "response head too large (over %d KiB or %d fields)",
                                          SK_HTTP_HEAD_MAX / 1024, SK_HTTP_HEADERS_MAX);
            if (rc == SK_EPARSE)
                return sk_fetch_set_error(f, SK_EPROTO, "malformed response: %s",
                                          bad_status_line(f->buf, have) ? "bad status line"
                                                                        : "bad header field line");
        }
        int n = sk_conn_read(c, f->buf + have, SK__FETCH_BUF_SIZE - have,
                             sk__fetch_deadline(f, f->o.idle_timeout_ms));
        if (n == 0 || n == SK_ECLOSED || n == SK_ERR(ECONNRESET))
            return sk_fetch_set_error(f, SK_EPROTO, "%s",
                                      have == 0 && !interim
                                          ? "empty reply from server"
                                          : "connection closed inside the response head");
        if (n < 0)
            return read_fail(f, c, n, "reading the response");
        have += (size_t)n;
    }
}

static int sink_write(struct sk_fetch *f, struct sk__fetch_sink *s, const char *p, size_t n)
{
    if (n == 0)
        return 0;
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

/* The next read of the body: bytes (> 0), or a negative code with the
 * reason recorded. eof_msg describes a premature end. */
static int body_read(struct sk_fetch *f, struct sk_conn *c, size_t want, const char *eof_msg)
{
    int n = sk_conn_read(c, f->buf, want, sk__fetch_deadline(f, f->o.idle_timeout_ms));
    if (n > 0)
        return n;
    if (n == 0 || n == SK_ECLOSED || n == SK_ERR(ECONNRESET))
        return sk_fetch_set_error(f, SK_ETRUNCATED, "%s", eof_msg);
    return read_fail(f, c, n, "reading the body");
}

static int body_length(struct sk_fetch *f, struct sk_conn *c, uint64_t len,
                       struct sk__fetch_sink *sink, size_t pre_off, size_t pre_len)
{
    uint64_t left = len;
    size_t take = pre_len < left ? pre_len : (size_t)left;
    int rc = sink_write(f, sink, f->buf + pre_off, take);
    left -= take;
    while (rc == 0 && left > 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "body truncated: connection closed after %llu of %llu bytes",
                 (unsigned long long)(len - left), (unsigned long long)len);
        int n = body_read(f, c, left < SK__FETCH_BUF_SIZE ? (size_t)left : SK__FETCH_BUF_SIZE, msg);
        if (n < 0)
            return n;
        rc = sink_write(f, sink, f->buf, (size_t)n);
        left -= (uint64_t)n;
    }
    return rc;
}

/* Decodes buf[0..n) through d into the sink. */
static int chunked_span(struct sk_fetch *f, struct sk_chunked *d, struct sk__fetch_sink *sink,
                        const char *p, size_t n)
{
    while (n > 0 && !sk_chunked_done(d)) {
        const char *data;
        size_t dl;
        int used = sk_chunked_feed(d, p, n, &data, &dl);
        if (used == SK_ETOOBIG)
            return sk_fetch_set_error(f, SK_EPROTO,
                                      "chunked body exceeds limits (chunk size, "
                                      "extension, trailers or framing overhead)");
        if (used < 0)
            return sk_fetch_set_error(f, SK_EPROTO, "malformed chunked body");
        int rc = sink_write(f, sink, data, dl);
        if (rc != 0)
            return rc;
        p += used;
        n -= (size_t)used;
    }
    return 0;
}

static int body_chunked(struct sk_fetch *f, struct sk_conn *c, struct sk__fetch_sink *sink,
                        size_t pre_off, size_t pre_len)
{
    struct sk_chunked d = {0};
    int rc = chunked_span(f, &d, sink, f->buf + pre_off, pre_len);
    while (rc == 0 && !sk_chunked_done(&d)) {
        int n = body_read(f, c, SK__FETCH_BUF_SIZE,
                          "body truncated: connection closed inside the chunked body "
                          "(no final chunk)");
        if (n < 0)
            return n;
        rc = chunked_span(f, &d, sink, f->buf, (size_t)n);
    }
    return rc;
}

static int body_close(struct sk_fetch *f, struct sk_conn *c, struct sk__fetch_sink *sink,
                      size_t pre_off, size_t pre_len)
{
    int rc = sink_write(f, sink, f->buf + pre_off, pre_len);
    while (rc == 0) {
        int n = sk_conn_read(c, f->buf, SK__FETCH_BUF_SIZE,
                             sk__fetch_deadline(f, f->o.idle_timeout_ms));
        if (n == 0)
            return 0; /* the end of a close-delimited body */
        if (n == SK_ECLOSED)
            return sk_fetch_set_error(
                f, SK_ETRUNCATED,
                "body may be truncated: TLS connection closed without close_notify");
        if (n == SK_ERR(ECONNRESET)) /* a reset is not the end of the body: it cut it */
            return sk_fetch_set_error(f, SK_ETRUNCATED, "body may be truncated: connection reset");
        if (n < 0)
            return read_fail(f, c, n, "reading the body");
        rc = sink_write(f, sink, f->buf, (size_t)n);
    }
    return rc;
}

int sk__fetch_body(struct sk_fetch *f, struct sk_conn *c, const struct sk_http_framing *fr,
                   struct sk__fetch_sink *sink, size_t pre_off, size_t pre_len)
{
    switch (fr->kind) {
    case SK_HTTP_BODY_LENGTH: return body_length(f, c, fr->length, sink, pre_off, pre_len);
    case SK_HTTP_BODY_CHUNKED: return body_chunked(f, c, sink, pre_off, pre_len);
    case SK_HTTP_BODY_CLOSE: return body_close(f, c, sink, pre_off, pre_len);
    default: return 0;
    }
}
