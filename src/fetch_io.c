/* sockit fetch: the wire: connect (TCP, TLS), send the request, read the
 * response head, stream the body to its sink. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli.h"
#include "fetch.h"

int fetch_fail(struct fetch_state *fs, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fs->msg, sizeof fs->msg, fmt, ap);
    va_end(ap);
    return code;
}

uint64_t fetch_deadline(const struct fetch_state *fs, int ms)
{
    uint64_t d = ms > 0 ? sk_now_ms() + (uint64_t)ms : 0;
    if (fs->deadline_ms && (d == 0 || d > fs->deadline_ms))
        d = fs->deadline_ms;
    return d;
}

int fetch_interrupted(struct fetch_state *fs, const char *doing)
{
    static const struct { int sig; const char *name; } names[] = {
        {SIGINT, "SIGINT"}, {SIGTERM, "SIGTERM"}, {SIGHUP, "SIGHUP"}, {SIGQUIT, "SIGQUIT"},
        {SIGPIPE, "SIGPIPE: output closed"}, {SIGXCPU, "SIGXCPU: CPU time limit"},
        {SIGUSR1, "SIGUSR1"}, {SIGUSR2, "SIGUSR2"}};
    const char *name = "a signal";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == fetch_cancel)
            name = names[i].name;
    return fetch_fail(fs, fetch_cancel == SIGPIPE ? FX_WRITE : FX_FAIL, "%s: interrupted (%s)",
                      doing, name);
}

int fetch_fail_sk(struct fetch_state *fs, int err, const char *doing)
{
    switch (err) {
    case SK_ETIMEDOUT:
        if (fs->deadline_ms && sk_now_ms() >= fs->deadline_ms) {
            fs->expired = true;
            return fetch_fail(fs, FX_TIMEOUT, "%s: --max-time of %g s reached", doing,
                              fs->o->max_time_ms / 1000.0);
        }
        if (strncmp(doing, "reading", 7) == 0 || strncmp(doing, "sending", 7) == 0 ||
            strncmp(doing, "writing", 7) == 0 || strncmp(doing, "opening", 7) == 0)
            return fetch_fail(fs, FX_TIMEOUT, "%s: timed out: nothing for %g s (--idle-timeout)",
                              doing, fs->o->idle_timeout_ms / 1000.0);
        return fetch_fail(fs, FX_TIMEOUT, "%s: timed out after %g s (--connect-timeout)", doing,
                          fs->o->connect_timeout_ms / 1000.0);
    case SK_ERR(ECANCELED):
        return fetch_interrupted(fs, doing);
    case SK_ECLOSED:
        return fetch_fail(fs, FX_TRUNCATED, "%s: connection closed early", doing);
    case SK_ERESOLVE:
        return fetch_fail(fs, FX_RESOLVE, "%s: %s", doing, sk_strerror(err));
    default:
        return fetch_fail(fs, FX_FAIL, "%s: %s", doing, sk_strerror(err));
    }
}

int fetch_connect(struct fetch_state *fs, const struct sk_url *u, struct sk_conn **out)
{
    const struct fetch_opts *o = fs->o;
    struct sk_endpoint ep = {.port = u->port};
    memcpy(ep.host, u->host, sizeof ep.host);
    char where[SK_HOST_MAX + 16];
    sk_url_authority(u, where, sizeof where);
    if (u->port == (u->scheme == SK_URL_HTTPS ? 443 : 80)) /* always show the port */
        snprintf(where + strlen(where), sizeof where - strlen(where), ":%u", u->port);
    uint64_t deadline = fetch_deadline(fs, o->connect_timeout_ms);
    int fd = sk_connect_until(&ep, SOCK_STREAM, deadline, true);
    if (fd < 0 && fetch_cancel)
        return fetch_interrupted(fs, "connecting");
    if (fd == SK_ERESOLVE)
        return fetch_fail(fs, FX_RESOLVE, "could not resolve host %s", u->host);
    if (fd == SK_ETIMEDOUT) {
        char doing[SK_HOST_MAX + 64];
        snprintf(doing, sizeof doing, "connecting to %s", where);
        return fetch_fail_sk(fs, fd, doing);
    }
    if (fd < 0)
        return fetch_fail(fs, FX_CONNECT, "cannot connect to %s: %s", where, sk_strerror(fd));
    fetch_conn_fd = fd;
    if (fetch_cancel) /* the signal came before the handler knew the socket */
        shutdown(fd, SHUT_RDWR);
    int rc;
    if (u->scheme == SK_URL_HTTP) {
        if ((rc = sk_conn_new_plain(fd, out)) < 0)
            return fetch_fail_sk(fs, rc, "connecting");
        sk_conn_set_cancel(*out, &fetch_cancel);
        return FX_OK;
    }
    if (!fs->tls) {
        struct sk_tls_config cfg = {.cafile = o->cacert, .insecure = o->insecure};
        char err[512];
        if (sk_tls_ctx_new(&cfg, &fs->tls, err, sizeof err) < 0) {
            close(fd);
            return fetch_fail(fs, FX_TLS, "%s", err);
        }
        if (o->insecure && !o->silent)
            fetch_notice(fs, "warning: --insecure: server certificates are not verified");
    }
    if ((rc = sk_conn_new_tls(fd, fs->tls, u->host, out)) < 0)
        return fetch_fail(fs, FX_TLS, "TLS set-up for %s failed: %s", where, sk_strerror(rc));
    sk_conn_set_cancel(*out, &fetch_cancel);
    rc = sk_conn_handshake(*out, deadline);
    if (rc == SK_ETIMEDOUT || rc == SK_ERR(ECANCELED)) {
        char doing[SK_HOST_MAX + 64];
        snprintf(doing, sizeof doing, "TLS handshake with %s", where);
        return fetch_fail_sk(fs, rc, doing);
    }
    if (rc < 0)
        return fetch_fail(fs, FX_TLS, "%s: %s", where,
                          *sk_conn_error(*out) ? sk_conn_error(*out) : sk_strerror(rc));
    return FX_OK;
}

/* True if the user supplied a header with this name. */
static bool user_has(const struct fetch_opts *o, const char *name)
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

int fetch_send_request(struct fetch_state *fs, struct sk_conn *c, const struct sk_url *u,
                       bool head, bool cross_origin)
{
    const struct fetch_opts *o = fs->o;
    char *req = fs->buf;
    size_t cap = FETCH_BUF_SIZE, n = 0;
    char auth[SK_HOST_MAX + 16];
    sk_url_authority(u, auth, sizeof auth);
    bool ok = addf(req, cap, &n, "%s %s HTTP/1.1\r\n", head ? "HEAD" : "GET", u->target);
    if (!user_has(o, "Host"))
        ok = ok && addf(req, cap, &n, "Host: %s\r\n", auth);
    if (!user_has(o, "User-Agent"))
        ok = ok && addf(req, cap, &n, "User-Agent: sockit/%s\r\n", SOCKIT_VERSION);
    if (!user_has(o, "Accept"))
        ok = ok && addf(req, cap, &n, "Accept: */*\r\n");
    fs->sent_range = user_has(o, "Range");
    if (fs->rs.active && fs->rs.offset > 0 && fs->rs.validator[0]) {
        fs->sent_range = true;
        ok = ok &&
             addf(req, cap, &n, "Range: bytes=%llu-\r\nIf-Range: %s\r\n",
                  (unsigned long long)fs->rs.offset, fs->rs.validator);
    }
    for (size_t i = 0; i < o->nheaders; i++)
        if (!(cross_origin && is_credential(o->headers[i])))
            ok = ok && addf(req, cap, &n, "%s\r\n", o->headers[i]);
    ok = ok && addf(req, cap, &n, "Connection: close\r\n\r\n");
    if (!ok)
        return fetch_fail(fs, FX_USAGE, "request too large");
    int rc = sk_conn_write(c, req, n, fetch_deadline(fs, o->idle_timeout_ms));
    if (rc < 0)
        return fetch_fail_sk(fs, rc, "sending the request");
    return FX_OK;
}

/* A failed read: a TLS failure (a corrupt record...) is a TLS
 * error with OpenSSL's reason, the rest as fetch_fail_sk says. */
static int read_fail(struct fetch_state *fs, struct sk_conn *c, int err, const char *doing)
{
    if (err == SK_ETLS)
        return fetch_fail(fs, FX_TLS, "%s: %s", doing, sk_conn_error(c));
    return fetch_fail_sk(fs, err, doing);
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

int fetch_read_head(struct fetch_state *fs, struct sk_conn *c, struct sk_http_resp *r,
                    struct sk_http_header *h, size_t *head_len, size_t *filled)
{
    size_t have = 0;
    unsigned interim = 0;
    for (;;) {
        if (have > 0) {
            int rc = sk_http_resp_parse(fs->buf, have, r, h, SK_HTTP_HEADERS_MAX);
            if (rc > 0 && r->status >= 100 && r->status <= 199) {
                if (r->status == 101)
                    return fetch_fail(fs, FX_PROTO, "unexpected 101 Switching Protocols");
                /* Interim response (100 Continue, 103 Early Hints): skip it,
                 * but not forever. */
                if (++interim > FETCH_INTERIM_MAX)
                    return fetch_fail(fs, FX_PROTO, "more than %d interim (1xx) responses",
                                      FETCH_INTERIM_MAX);
                memmove(fs->buf, fs->buf + rc, have - (size_t)rc);
                have -= (size_t)rc;
                continue;
            }
            if (rc > 0) {
                *head_len = (size_t)rc;
                *filled = have;
                return FX_OK;
            }
            if (rc == SK_ETOOBIG)
                return fetch_fail(fs, FX_PROTO,
                                  "response head too large (over %d KiB or %d fields)",
                                  SK_HTTP_HEAD_MAX / 1024, SK_HTTP_HEADERS_MAX);
            if (rc == SK_EPARSE)
                return fetch_fail(fs, FX_PROTO, "malformed response: %s",
                                  bad_status_line(fs->buf, have) ? "bad status line"
                                                                 : "bad header field line");
        }
        int n = sk_conn_read(c, fs->buf + have, FETCH_BUF_SIZE - have,
                             fetch_deadline(fs, fs->o->idle_timeout_ms));
        if (n == 0 || n == SK_ECLOSED || n == SK_ERR(ECONNRESET))
            return fetch_fail(fs, FX_PROTO, "%s",
                              have == 0 && !interim ? "empty reply from server"
                                                    : "connection closed inside the response head");
        if (n < 0)
            return read_fail(fs, c, n, "reading the response");
        have += (size_t)n;
    }
}

static void on_tick(int sig)
{
    (void)sig; /* only there to interrupt a blocking call */
}

void fetch_ticks(bool on)
{
    static bool installed;
    if (!installed) { /* also makes a stray SIGALRM harmless */
        struct sigaction sa = {.sa_handler = on_tick}; /* no SA_RESTART */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        installed = true;
    }
    struct itimerval it = {0};
    if (on)
        it.it_value.tv_usec = it.it_interval.tv_usec = FETCH_TICK_MS * 1000;
    setitimer(ITIMER_REAL, &it, NULL);
}

/* fetch_write_fd(); a signal stops it only if `stoppable`. */
static int write_bounded(struct fetch_state *fs, int fd, const char *p, size_t n,
                         const char *what, bool stoppable)
{
    char doing[PATH_MAX + 16];
    snprintf(doing, sizeof doing, "writing to %s", what);
    uint64_t deadline = fetch_deadline(fs, fs->o->idle_timeout_ms);
    int rc = FX_OK;
    fetch_ticks(true);
    for (size_t off = 0; off < n && rc == FX_OK;) {
        if (fetch_cancel && stoppable) {
            rc = fetch_interrupted(fs, doing);
            break;
        }
        ssize_t k = write(fd, p + off, n - off);
        if (k > 0) {
            off += (size_t)k;
            deadline = fetch_deadline(fs, fs->o->idle_timeout_ms);
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) /* inherited O_NONBLOCK */
            poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1, FETCH_TICK_MS);
        else if (k < 0 && errno != EINTR)
            rc = fetch_fail(fs, FX_WRITE, "write error on %s: %s", what, strerror(errno));
        if (rc == FX_OK && deadline && sk_now_ms() >= deadline) /* no progress */
            rc = fetch_fail_sk(fs, SK_ETIMEDOUT, doing);
    }
    fetch_ticks(false);
    return rc;
}

int fetch_write_fd(struct fetch_state *fs, int fd, const char *p, size_t n, const char *what)
{
    return write_bounded(fs, fd, p, n, what, true);
}

void fetch_notice(struct fetch_state *fs, const char *fmt, ...)
{
    char line[1024] = "sockit: ";
    size_t n = strlen(line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    n = strlen(line);
    line[n++] = '\n';
    (void)fflush(stderr); /* stdio's pending bytes first; the line goes by write() below */
    char msg[sizeof fs->msg]; /* the reason being reported outlives a failed notice */
    memcpy(msg, fs->msg, sizeof msg);
    (void)write_bounded(fs, STDERR_FILENO, line, n, "standard error", false);
    memcpy(fs->msg, msg, sizeof msg);
}

static int sink_write(struct fetch_state *fs, struct fetch_sink *s, const char *p, size_t n)
{
    if (n == 0)
        return FX_OK;
    if (s->kind == SINK_FD) {
        int rc = fetch_write_fd(fs, s->fd, p, n,
                                s->fd == STDOUT_FILENO ? "standard output" : fs->out_path);
        if (rc != FX_OK)
            return rc;
    } else if (s->kind == SINK_FILE) {
        int rc = sk_outfile_write(s->of, p, n);
        if (rc < 0)
            return fetch_fail(fs, FX_WRITE, "cannot write %s: %s", s->of->tmp, sk_strerror(rc));
    }
    if (s->md)
        EVP_DigestUpdate(s->md, p, n);
    if (s->pg)
        fetch_progress_add(s->pg, n);
    return FX_OK;
}

/* The next read of the body: bytes (> 0), or an exit status (negated) with
 * the reason recorded. `what` describes a premature end. */
static int body_read(struct fetch_state *fs, struct sk_conn *c, size_t want, const char *eof_msg)
{
    int n = sk_conn_read(c, fs->buf, want, fetch_deadline(fs, fs->o->idle_timeout_ms));
    if (n > 0)
        return n;
    if (n == 0 || n == SK_ECLOSED || n == SK_ERR(ECONNRESET))
        return -fetch_fail(fs, FX_TRUNCATED, "%s", eof_msg);
    return -read_fail(fs, c, n, "reading the body");
}

static int body_length(struct fetch_state *fs, struct sk_conn *c, uint64_t len,
                       struct fetch_sink *sink, size_t pre_off, size_t pre_len)
{
    uint64_t left = len;
    size_t take = pre_len < left ? pre_len : (size_t)left;
    int rc = sink_write(fs, sink, fs->buf + pre_off, take);
    left -= take;
    while (rc == FX_OK && left > 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "body truncated: connection closed after %llu of %llu bytes",
                 (unsigned long long)(len - left), (unsigned long long)len);
        int n = body_read(fs, c, left < FETCH_BUF_SIZE ? (size_t)left : FETCH_BUF_SIZE, msg);
        if (n < 0)
            return -n;
        rc = sink_write(fs, sink, fs->buf, (size_t)n);
        left -= (uint64_t)n;
    }
    return rc;
}

/* Decodes buf[0..n) through d into the sink. */
static int chunked_span(struct fetch_state *fs, struct sk_chunked *d, struct fetch_sink *sink,
                        const char *p, size_t n)
{
    while (n > 0 && !sk_chunked_done(d)) {
        const char *data;
        size_t dl;
        int used = sk_chunked_feed(d, p, n, &data, &dl);
        if (used == SK_ETOOBIG)
            return fetch_fail(fs, FX_PROTO, "chunked body exceeds limits (chunk size, "
                                            "extension, trailers or framing overhead)");
        if (used < 0)
            return fetch_fail(fs, FX_PROTO, "malformed chunked body");
        int rc = sink_write(fs, sink, data, dl);
        if (rc != FX_OK)
            return rc;
        p += used;
        n -= (size_t)used;
    }
    return FX_OK;
}

static int body_chunked(struct fetch_state *fs, struct sk_conn *c, struct fetch_sink *sink,
                        size_t pre_off, size_t pre_len)
{
    struct sk_chunked d = {0};
    int rc = chunked_span(fs, &d, sink, fs->buf + pre_off, pre_len);
    while (rc == FX_OK && !sk_chunked_done(&d)) {
        int n = body_read(fs, c, FETCH_BUF_SIZE,
                          "body truncated: connection closed inside the chunked body "
                          "(no final chunk)");
        if (n < 0)
            return -n;
        rc = chunked_span(fs, &d, sink, fs->buf, (size_t)n);
    }
    return rc;
}

static int body_close(struct fetch_state *fs, struct sk_conn *c, struct fetch_sink *sink,
                      size_t pre_off, size_t pre_len)
{
    int rc = sink_write(fs, sink, fs->buf + pre_off, pre_len);
    while (rc == FX_OK) {
        int n = sk_conn_read(c, fs->buf, FETCH_BUF_SIZE, fetch_deadline(fs, fs->o->idle_timeout_ms));
        if (n == 0)
            return FX_OK; /* the end of a close-delimited body */
        if (n == SK_ECLOSED)
            return fetch_fail(fs, FX_TRUNCATED,
                              "body may be truncated: TLS connection closed without close_notify");
        if (n == SK_ERR(ECONNRESET)) /* a reset is not the end of the body: it cut it */
            return fetch_fail(fs, FX_TRUNCATED, "body may be truncated: connection reset");
        if (n < 0)
            return read_fail(fs, c, n, "reading the body");
        rc = sink_write(fs, sink, fs->buf, (size_t)n);
    }
    return rc;
}

int fetch_body(struct fetch_state *fs, struct sk_conn *c, const struct sk_http_framing *f,
               struct fetch_sink *sink, size_t pre_off, size_t pre_len)
{
    switch (f->kind) {
    case SK_HTTP_BODY_LENGTH:
        return body_length(fs, c, f->length, sink, pre_off, pre_len);
    case SK_HTTP_BODY_CHUNKED:
        return body_chunked(fs, c, sink, pre_off, pre_len);
    case SK_HTTP_BODY_CLOSE:
        return body_close(fs, c, sink, pre_off, pre_len);
    default:
        return FX_OK;
    }
}
