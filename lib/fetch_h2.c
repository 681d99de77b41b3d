/* The HTTP client's HTTP/2 adapter (RFC 9113, with libnghttp2): when the
 * TLS handshake picked "h2", the exchange of fetch_io.c runs as one stream
 * of an nghttp2 session on the same connection. The request made for
 * HTTP/1.1 goes as a HEADERS frame (its fields lower-cased, the
 * connection-specific ones dropped, Host as :authority); the response's
 * fields are written into f->buf as an "HTTP/2 STATUS" head and w->resp /
 * w->hdrs point into it, as the HTTP/1.1 parser leaves them, so that
 * fetch_run.c decides on it unchanged; DATA goes to the same sink. The
 * body ends at END_STREAM, and must match its content-length.
 *
 * Bounded: the head as HTTP/1.1's (SK_HTTP_HEAD_MAX bytes of "name: value"
 * lines, SK_HTTP_HEADERS_MAX fields), advertised as
 * SETTINGS_MAX_HEADER_LIST_SIZE; the stream and connection windows are
 * SK__FETCH_H2_WINDOW, given back (WINDOW_UPDATE) only as the body is
 * written out, so a fast server waits for the disk. No server push. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#include "fetch_int.h"

#define SK__FETCH_H2_WINDOW (1 << 20)
#define STATUS_LINE_LEN 12 /* "HTTP/2 200\r\n" */

struct sk__fetch_h2 {
    nghttp2_session *s;
    struct sk_fetch *f;
    int32_t sid;          /* the exchange's stream; 0: none */
    bool head_done;       /* its final head is in f->buf */
    bool in_head;         /* a head (interim or final) is coming in */
    bool closed;          /* the stream is over */
    uint32_t close_code;  /* ... with this error code (0: NO_ERROR) */
    bool rst_in;          /* the server reset it */
    bool goaway;          /* the server sent GOAWAY */
    int32_t goaway_last;  /* its last-stream-id */
    uint32_t goaway_code;
    size_t trailer_bytes; /* trailers: only counted */
    int fail;             /* a failure recorded in a callback */
    char why[160];        /* nghttp2's last word on a connection error */
};

/* ---- the response ---- */

static int fail_cb(struct sk__fetch_h2 *h, int rc)
{
    if (!h->fail)
        h->fail = rc;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *fr, void *arg)
{
    (void)s;
    struct sk__fetch_h2 *h = arg;
    if (fr->hd.type != NGHTTP2_HEADERS || fr->hd.stream_id != h->sid || h->head_done)
        return 0;
    struct sk__fetch_wire *w = &h->f->w;
    h->in_head = true;
    memcpy(h->f->buf, "HTTP/2 000\r\n", STATUS_LINE_LEN);
    w->have = STATUS_LINE_LEN;
    w->resp.num_headers = 0;
    w->resp.status = 0;
    return 0;
}

static int head_too_large(struct sk__fetch_h2 *h)
{
    return fail_cb(h, sk_fetch_set_error(h->f, SK_EPROTO,
                                         "HTTP/2 response header list too large (over %d KiB "
                                         "or %d fields)",
                                         SK_HTTP_HEAD_MAX / 1024, SK_HTTP_HEADERS_MAX));
}

static int on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
    (void)s;
    (void)flags;
    struct sk__fetch_h2 *h = arg;
    struct sk_fetch *f = h->f;
    struct sk__fetch_wire *w = &f->w;
    if (fr->hd.stream_id != h->sid)
        return 0;
    size_t line = namelen + valuelen + 4;
    if (h->head_done || !h->in_head) { /* trailers: bounded, not kept */
        h->trailer_bytes += line;
        return h->trailer_bytes > SK_HTTP_HEAD_MAX ? head_too_large(h) : 0;
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        if (valuelen != 3 || w->resp.status)
            return fail_cb(h, sk_fetch_set_error(f, SK_EPROTO, "malformed HTTP/2 :status"));
        memcpy(f->buf + 7, value, 3); /* nghttp2 checked: three digits */
        w->resp.status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        return 0;
    }
    if (w->have + line + 2 > SK_HTTP_HEAD_MAX || w->resp.num_headers == SK_HTTP_HEADERS_MAX)
        return head_too_large(h);
    char *p = f->buf + w->have;
    struct sk_http_header *hd = &w->hdrs[w->resp.num_headers++];
    memcpy(p, name, namelen);
    memcpy(p + namelen, ": ", 2);
    memcpy(p + namelen + 2, value, valuelen);
    memcpy(p + namelen + 2 + valuelen, "\r\n", 2);
    *hd = (struct sk_http_header){p, namelen, p + namelen + 2, valuelen};
    w->have += line;
    return 0;
}

/* A head is over: an interim one (1xx) is dropped, the final one stays. */
static int head_end(struct sk__fetch_h2 *h)
{
    struct sk_fetch *f = h->f;
    struct sk__fetch_wire *w = &f->w;
    h->in_head = false;
    if (w->resp.status >= 100 && w->resp.status <= 199) {
        if (w->resp.status == 101)
            return fail_cb(h, sk_fetch_set_error(f, SK_EPROTO, "unexpected 101 in HTTP/2"));
        if (++w->interim > SK__FETCH_INTERIM_MAX)
            return fail_cb(h, sk_fetch_set_error(f, SK_EPROTO,
                                                 "more than %d interim (1xx) responses",
                                                 SK__FETCH_INTERIM_MAX));
        w->have = 0;
        return 0;
    }
    memcpy(f->buf + w->have, "\r\n", 2);
    w->have += 2;
    w->head_len = w->have;
    w->resp.version_minor = 1; /* the framing's rules: those of HTTP/1.1 */
    w->resp.reason = "";
    w->resp.reason_len = 0;
    w->resp.headers = w->hdrs;
    h->head_done = true;
    w->keep_ok = !h->goaway;
    return 0;
}

/* DATA for the body: into the sink once the body began, else after the
 * head in f->buf (what came with it: sk__fetch_body takes it first). */
static int on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
                   size_t len, void *arg)
{
    (void)flags;
    struct sk__fetch_h2 *h = arg;
    struct sk_fetch *f = h->f;
    struct sk__fetch_wire *w = &f->w;
    if (sid != h->sid) {
        nghttp2_session_consume_connection(s, len);
        return 0;
    }
    if (w->phase != SK__PH_BODY) {
        if (len > SK__FETCH_BUF_SIZE - w->have) /* cannot happen: one read at most */
            return fail_cb(h, sk_fetch_set_error(f, SK_EPROTO, "HTTP/2 DATA too large"));
        memcpy(f->buf + w->have, data, len);
        w->have += len;
        return 0;
    }
    int rc = sk__fetch_h2_data(f, (const char *)data, len);
    return rc < 0 ? fail_cb(h, rc) : 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *fr, void *arg)
{
    (void)s;
    struct sk__fetch_h2 *h = arg;
    if (fr->hd.type == NGHTTP2_GOAWAY) {
        h->goaway = true;
        h->goaway_last = fr->goaway.last_stream_id;
        h->goaway_code = fr->goaway.error_code;
        h->f->w.keep_ok = false;
    } else if (fr->hd.type == NGHTTP2_RST_STREAM && fr->hd.stream_id == h->sid) {
        h->rst_in = true;
    } else if (fr->hd.type == NGHTTP2_HEADERS && fr->hd.stream_id == h->sid && h->in_head &&
               (fr->hd.flags & NGHTTP2_FLAG_END_HEADERS)) {
        return head_end(h);
    }
    return 0;
}

static int on_close(nghttp2_session *s, int32_t sid, uint32_t code, void *arg)
{
    (void)s;
    struct sk__fetch_h2 *h = arg;
    if (sid == h->sid) {
        h->closed = true;
        h->close_code = code;
    }
    return 0;
}

static int on_error(nghttp2_session *s, int code, const char *msg, size_t len, void *arg)
{
    (void)s;
    (void)code;
    struct sk__fetch_h2 *h = arg;
    snprintf(h->why, sizeof h->why, "%.*s", (int)(len < 150 ? len : 150), msg);
    return 0;
}

/* ---- the session ---- */

int sk__fetch_h2_begin(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = calloc(1, sizeof *h);
    if (!h)
        return sk_fetch_fail_as(f, SK_ERR(ENOMEM), "setting up HTTP/2");
    h->f = f;
    nghttp2_session_callbacks *cb = NULL;
    nghttp2_option *opt = NULL;
    int rc = nghttp2_session_callbacks_new(&cb);
    if (rc == 0)
        rc = nghttp2_option_new(&opt);
    if (rc == 0) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
        nghttp2_session_callbacks_set_error_callback2(cb, on_error);
        nghttp2_option_set_no_auto_window_update(opt, 1); /* given back as written out */
        nghttp2_option_set_max_reserved_remote_streams(opt, 0);
        rc = nghttp2_session_client_new2(&h->s, cb, h, opt);
    }
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    const nghttp2_settings_entry set[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, SK__FETCH_H2_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, SK_HTTP_HEAD_MAX},
    };
    if (rc == 0)
        rc = nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, set, sizeof set / sizeof set[0]);
    if (rc == 0)
        rc = nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0,
                                                   SK__FETCH_H2_WINDOW);
    if (rc != 0) {
        nghttp2_session_del(h->s);
        free(h);
        return sk_fetch_fail_as(f, SK_ERR(ENOMEM), "setting up HTTP/2");
    }
    f->w.h2 = h;
    return 0;
}

void sk__fetch_h2_free(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = f->w.h2;
    if (!h)
        return;
    nghttp2_session_del(h->s);
    free(h);
    f->w.h2 = NULL;
}

/* What the session has to send goes on the connection. */
int sk__fetch_h2_send(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = f->w.h2;
    for (;;) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(h->s, &p);
        if (n < 0)
            return sk_fetch_set_error(f, SK_EPROTO, "HTTP/2: %s", nghttp2_strerror((int)n));
        if (n == 0)
            return 0;
        if (!f->w.live) /* no connection (fuzz/fuzz_h2.c): what goes out is dropped */
            continue;
        int rc = sk_stream_write(&f->w.s, p, (size_t)n);
        if (rc < 0)
            return rc;
    }
}

/* Connection-specific fields (RFC 9113 8.2.2), not sent in HTTP/2. */
static bool connection_specific(const char *name, size_t n)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade", "host", "te"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && strncasecmp(name, names[i], n) == 0)
            return true;
    return false;
}

/* A field for nghttp2_submit_request, which copies it. */
#define NV(n, nl, v, vl) ((nghttp2_nv){(uint8_t *)(n), (uint8_t *)(v), (nl), (vl), NGHTTP2_NV_FLAG_NONE})

/* The HTTP/1.1 request in f->buf[0..len) (made by build_request: one
 * request line, "Name: value" lines) as a HEADERS frame on a new stream. */
int sk__fetch_h2_request(struct sk_fetch *f, const struct sk_url *u, size_t len)
{
    struct sk__fetch_h2 *h = f->w.h2;
    char *p = f->buf, *end = f->buf + len;
    char authority[SK_HOST_MAX + 16];
    sk_url_authority(u, authority, sizeof authority);
    nghttp2_nv nv[SK_HTTP_HEADERS_MAX + 8];
    size_t n = 0;
    char *sp = memchr(p, ' ', (size_t)(end - p));
    char *sp2 = sp ? memchr(sp + 1, ' ', (size_t)(end - sp - 1)) : NULL;
    char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (!sp || !sp2 || !eol || sp2 > eol)
        return sk_fetch_set_error(f, SK_EUSAGE, "request too large");
    nv[n++] = NV(":method", 7, p, (size_t)(sp - p));
    nv[n++] = NV(":scheme", 7, "https", 5);
    size_t auth_at = n++; /* :authority: Host's value when one is given */
    nv[auth_at] = NV(":authority", 10, authority, strlen(authority));
    nv[n++] = NV(":path", 5, sp + 1, (size_t)(sp2 - sp - 1));
    for (p = eol + 2; p < end && !(p[0] == '\r' && p[1] == '\n'); p = eol + 2) {
        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        char *colon = eol ? memchr(p, ':', (size_t)(eol - p)) : NULL;
        if (!colon)
            return sk_fetch_set_error(f, SK_EUSAGE, "malformed request header");
        size_t nl = (size_t)(colon - p);
        char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        size_t vl = (size_t)(eol - v);
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (nl == 4 && strncasecmp(p, "host", 4) == 0)
            nv[auth_at] = NV(":authority", 10, v, vl);
        if (connection_specific(p, nl))
            continue;
        if (n == sizeof nv / sizeof nv[0])
            return sk_fetch_set_error(f, SK_EUSAGE, "request too large (over %d fields)",
                                      SK_HTTP_HEADERS_MAX);
        for (size_t i = 0; i < nl; i++)
            p[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i]);
        nv[n++] = NV(p, nl, v, vl);
    }
    h->head_done = h->in_head = h->closed = h->rst_in = false;
    h->close_code = 0;
    h->trailer_bytes = 0;
    h->fail = 0;
    h->why[0] = '\0';
    int32_t sid = nghttp2_submit_request(h->s, NULL, nv, n, NULL, NULL);
    if (sid < 0)
        return sk_fetch_set_error(f, sid == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? SK_ECONNECT
                                                                                : SK_EPROTO,
                                  "HTTP/2: cannot open a stream: %s", nghttp2_strerror(sid));
    h->sid = sid;
    return sk__fetch_h2_send(f);
}

/* ---- the exchange's verdicts ---- */

static const char *code_name(uint32_t code)
{
    static const char *const names[] = {
        "NO_ERROR",       "PROTOCOL_ERROR",    "INTERNAL_ERROR",     "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT", "STREAM_CLOSED",   "FRAME_SIZE_ERROR",   "REFUSED_STREAM",
        "CANCEL",         "COMPRESSION_ERROR", "CONNECT_ERROR",      "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"};
    return code < sizeof names / sizeof names[0] ? names[code] : "unknown error";
}

/* The stream ended before the exchange did (a reset, a GOAWAY). */
static int stream_failed(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = f->w.h2;
    struct sk__fetch_wire *w = &f->w;
    bool body = h->head_done;
    int err = body ? SK_ETRUNCATED : SK_EPROTO;
    const char *when = body ? "inside the body" : "before the response head";
    if (h->goaway && h->sid > h->goaway_last && !h->head_done) {
        w->stale = true; /* not processed: sk__fetch_open sends it again once */
        return sk_fetch_set_error(f, SK_EPROTO,
                                  "server sent GOAWAY (%s): request not processed",
                                  code_name(h->goaway_code));
    }
    if (h->rst_in)
        return sk_fetch_set_error(f, err, "server reset the HTTP/2 stream (RST_STREAM %s) %s",
                                  code_name(h->close_code), when);
    if (h->goaway && h->goaway_code)
        return sk_fetch_set_error(f, err, "server sent GOAWAY (%s) %s%s%s",
                                  code_name(h->goaway_code), when, h->why[0] ? ": " : "",
                                  h->why);
    if (h->close_code == NGHTTP2_PROTOCOL_ERROR && body && w->fr.kind == SK_HTTP_BODY_LENGTH)
        return sk_fetch_set_error(f, SK_ETRUNCATED,
                                  "HTTP/2 body does not match its content-length of %llu bytes",
                                  (unsigned long long)w->fr.length);
    return sk_fetch_set_error(f, body ? SK_ETRUNCATED : SK_EPROTO,
                              "HTTP/2 protocol error %s (%s)%s%s", when,
                              code_name(h->close_code), h->why[0] ? ": " : "", h->why);
}

/* After the session took input or was told of the connection's end: 1
 * when the phase is over (the head in, or the body at END_STREAM), 0 when
 * more is due, or a negative code (recorded). */
static int verdict(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = f->w.h2;
    struct sk__fetch_wire *w = &f->w;
    if (h->fail)
        return h->fail;
    if (w->phase == SK__PH_HEAD && h->head_done)
        return 1;
    if (h->closed && h->close_code == NGHTTP2_NO_ERROR && h->head_done) {
        if (w->fr.kind == SK_HTTP_BODY_LENGTH && w->left > 0)
            return sk_fetch_set_error(f, SK_ETRUNCATED,
                                      "HTTP/2 body ended after %llu of %llu bytes",
                                      (unsigned long long)(w->fr.length - w->left),
                                      (unsigned long long)w->fr.length);
        w->body_done = true;
        return 1;
    }
    if (h->closed)
        return stream_failed(f);
    if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s)) {
        if (h->goaway && h->sid <= h->goaway_last && !h->goaway_code)
            return 0; /* the stream may still end; the connection's end will tell */
        if (!h->why[0] && h->goaway)
            snprintf(h->why, sizeof h->why, "server sent GOAWAY (%s)", code_name(h->goaway_code));
        return sk_fetch_set_error(f, h->head_done ? SK_ETRUNCATED : SK_EPROTO,
                                  "HTTP/2 connection error: %s",
                                  h->why[0] ? h->why : "the session ended");
    }
    return 0;
}

int sk__fetch_h2_feed(struct sk_fetch *f, const char *p, size_t n)
{
    struct sk__fetch_h2 *h = f->w.h2;
    ssize_t k = nghttp2_session_mem_recv(h->s, (const uint8_t *)p, n);
    if (k < 0 && !h->fail)
        return sk_fetch_set_error(f, SK_EPROTO, "HTTP/2: %s%s%s", nghttp2_strerror((int)k),
                                  h->why[0] ? ": " : "", h->why);
    /* first what the input calls for (SETTINGS ack, WINDOW_UPDATE, a
     * GOAWAY of ours): the session's state after it is the verdict's */
    int src = h->fail ? 0 : sk__fetch_h2_send(f);
    int rc = verdict(f);
    if (rc == 0 && src < 0) /* the server is gone: why, as for the connection's end */
        rc = sk__fetch_h2_end(f, src);
    return rc;
}

int sk__fetch_h2_end(struct sk_fetch *f, int err)
{
    struct sk__fetch_h2 *h = f->w.h2;
    struct sk__fetch_wire *w = &f->w;
    int rc = verdict(f);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (w->reused && !h->in_head && !h->head_done && !w->interim) {
        w->stale = true; /* the server had closed the kept connection */
        return sk_fetch_set_error(f, SK_ECONNECT, "%s closed the kept connection", w->where);
    }
    if (err < 0 && err != SK_ECLOSED && err != SK_ERR(ECONNRESET) && err != SK_ERR(EPIPE))
        return sk_fetch_fail_as(f, err, h->head_done ? "reading the body" : "reading the response");
    if (h->goaway && h->goaway_code)
        return stream_failed(f);
    if (h->goaway && !h->goaway_code && h->sid > h->goaway_last) {
        w->stale = true;
        return sk_fetch_set_error(f, SK_EPROTO, "server sent GOAWAY: request not processed");
    }
    return sk_fetch_set_error(f, h->head_done ? SK_ETRUNCATED : SK_EPROTO,
                              "connection closed %s (HTTP/2 stream not ended)",
                              h->head_done ? "inside the body" : "before the response head");
}

int sk__fetch_h2_data(struct sk_fetch *f, const char *p, size_t n)
{
    struct sk__fetch_h2 *h = f->w.h2;
    struct sk__fetch_wire *w = &f->w;
    if (w->fr.kind == SK_HTTP_BODY_LENGTH && n > w->left)
        return sk_fetch_set_error(f, SK_EPROTO,
                                  "HTTP/2 body longer than its content-length of %llu bytes",
                                  (unsigned long long)w->fr.length);
    if (w->fr.kind == SK_HTTP_BODY_NONE && n > 0)
        return sk_fetch_set_error(f, SK_EPROTO, "HTTP/2 DATA in a response without a body");
    if (w->fr.kind == SK_HTTP_BODY_LENGTH)
        w->left -= n;
    int rc = sk__fetch_sink_put(f, p, n);
    /* the window is given back once the bytes are taken (the sink writes
     * what it gathers before f->buf would overflow) */
    nghttp2_session_consume_connection(h->s, n);
    if (!h->closed)
        nghttp2_session_consume_stream(h->s, h->sid, n);
    return rc;
}

int sk__fetch_h2_body(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    int rc = sk__fetch_h2_data(f, f->buf + w->head_len, w->have - w->head_len);
    if (rc < 0)
        return rc;
    if ((rc = verdict(f)) != 0)
        return rc;
    rc = sk__fetch_h2_send(f); /* the WINDOW_UPDATE */
    return rc < 0 ? sk_fetch_fail_as(f, rc, "sending to the server") : 0;
}

bool sk__fetch_h2_ended(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = f->w.h2;
    struct sk__fetch_wire *w = &f->w;
    nghttp2_session_consume_connection(h->s, w->have - w->head_len);
    return h->closed && h->close_code == NGHTTP2_NO_ERROR && !h->fail;
}

bool sk__fetch_h2_keep(const struct sk_fetch *f)
{
    const struct sk__fetch_h2 *h = f->w.h2;
    return !h->goaway && nghttp2_session_want_read(h->s) &&
           nghttp2_session_check_request_allowed(h->s);
}
