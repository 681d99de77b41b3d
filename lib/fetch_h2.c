/* The HTTP client's HTTP/2 adapter (RFC 9113, with libnghttp2): when the
 * TLS handshake picked "h2", or over plain http:// with prior knowledge
 * (h2c, from the connect on; :scheme http), the exchange of fetch_io.c runs as one stream
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
 * written out, so a fast server waits for the disk. No server push.
 *
 * Multiplexing (a parallel run, fetch_par.c): the session is on the
 * stream of the transfer object that made the connection (its owner, or
 * holder), and in the run's pool (fetch_pool.c); another transfer of the
 * run to the same route opens its stream on it (sk__fetch_h2_join) while
 * the owner is in an exchange on it or done with it (idle), each stream's
 * frames going to its own transfer (the stream's user data). The owner's
 * exchange ends without waiting for the others (sk__fetch_h2_park): the
 * connection outlives it; only closing it waits for them.
 * A stream starts with a window of one read (the DATA that comes before
 * its body starts stays in its own buffer), widened when its body starts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <nghttp2/nghttp2.h>

#include "fetch_int.h"

#define SK__FETCH_H2_WINDOW (32 << 20) /* curl's; 1 MiB made a WINDOW_UPDATE ping-pong */
#define SK__FETCH_H2_WINDOW0 SK__FETCH_READ_SIZE /* a stream's before its body */
#define STATUS_LINE_LEN 12 /* "HTTP/2 200\r\n" */
#define SK__FETCH_H2_USERS 128 /* transfers on one connection, its owner included */

struct sk__fetch_h2 {
    nghttp2_session *s;
    struct sk_fetch *owner; /* the transfer whose stream (w.s) carries it */
    bool goaway;            /* the server sent GOAWAY */
    int32_t goaway_last;    /* its last-stream-id */
    uint32_t goaway_code;
    bool closing;           /* its holder closes it once the others left: no one joins */
    bool dead;              /* the connection ended (or failed): dead_err */
    int dead_err;
    char why[160];          /* nghttp2's last word on a connection error */
    bool plain;             /* h2c (prior knowledge): no ALPN said the server speaks it */
    size_t seen;            /* bytes of input so far (up to the few that tell HTTP/1.x) */
    struct sk_fetch *users[SK__FETCH_H2_USERS];
    unsigned nusers;
};

/* The transfer a stream belongs to; NULL: none (any more). */
static struct sk_fetch *of_sid(nghttp2_session *s, int32_t sid)
{
    return sid > 0 ? nghttp2_session_get_stream_user_data(s, sid) : NULL;
}

/* ---- the response ---- */

/* A failure of one stream (recorded in f): nghttp2 resets that stream
 * only, the others on the connection go on. */
static int fail_cb(struct sk_fetch *f, int rc)
{
    if (!f->w.h2st.fail)
        f->w.h2st.fail = rc;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *fr, void *arg)
{
    (void)arg;
    struct sk_fetch *f = of_sid(s, fr->hd.stream_id);
    if (!f || fr->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct sk__fetch_wire *w = &f->w;
    w->last_ms = sk_now_ms();
    if (w->h2st.head_done || w->phase != SK__PH_HEAD)
        return 0;
    w->h2st.in_head = true;
    memcpy(f->buf, "HTTP/2 000\r\n", STATUS_LINE_LEN);
    w->have = STATUS_LINE_LEN;
    w->resp.num_headers = 0;
    w->resp.status = 0;
    return 0;
}

static int head_too_large(struct sk_fetch *f)
{
    return fail_cb(f, sk_fetch_set_error(f, SK_EPROTO,
                                         "HTTP/2 response header list too large (over %d KiB "
                                         "or %d fields)",
                                         SK_HTTP_HEAD_MAX / 1024, SK_HTTP_HEADERS_MAX));
}

static int on_header(nghttp2_session *s, const nghttp2_frame *fr, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *arg)
{
    (void)flags;
    (void)arg;
    struct sk_fetch *f = of_sid(s, fr->hd.stream_id);
    if (!f)
        return 0;
    struct sk__fetch_wire *w = &f->w;
    struct sk__fetch_h2st *st = &w->h2st;
    /* a field is the stream's progress: a long head in CONTINUATION frames
     * (fetch_io.c counts no bytes over HTTP/2 as progress by themselves) */
    w->last_ms = sk_now_ms();
    size_t line = namelen + valuelen + 4;
    if (st->head_done || !st->in_head) { /* trailers: bounded, not kept */
        st->trailer_bytes += line;
        return st->trailer_bytes > SK_HTTP_HEAD_MAX ? head_too_large(f) : 0;
    }
    if (namelen == 7 && memcmp(name, ":status", 7) == 0) {
        /* nghttp2 checked three digits; below 100 is no status (as the
         * HTTP/1.1 parser says): not a final answer to save or report */
        if (valuelen != 3 || w->resp.status || value[0] == '0')
            return fail_cb(f, sk_fetch_set_error(f, SK_EPROTO, "malformed HTTP/2 :status"));
        memcpy(f->buf + 7, value, 3);
        w->resp.status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
        return 0;
    }
    if (w->have + line + 2 > SK_HTTP_HEAD_MAX || w->resp.num_headers == SK_HTTP_HEADERS_MAX)
        return head_too_large(f);
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
static int head_end(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    w->h2st.in_head = false;
    if (w->resp.status >= 100 && w->resp.status <= 199) {
        if (w->resp.status == 101)
            return fail_cb(f, sk_fetch_set_error(f, SK_EPROTO, "unexpected 101 in HTTP/2"));
        if (++w->interim > SK__FETCH_INTERIM_MAX)
            return fail_cb(f, sk_fetch_set_error(f, SK_EPROTO,
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
    w->h2st.head_done = true;
    w->keep_ok = !w->h2->goaway;
    return 0;
}

/* DATA for the body: into the sink once the body began, else after the
 * head in f->buf (what came with it: sk__fetch_body takes it first). */
static int on_data(nghttp2_session *s, uint8_t flags, int32_t sid, const uint8_t *data,
                   size_t len, void *arg)
{
    (void)flags;
    (void)arg;
    struct sk_fetch *f = of_sid(s, sid);
    struct sk__fetch_wire *w = f ? &f->w : NULL;
    if (!w || (w->phase != SK__PH_BODY && !(w->h2st.head_done && w->phase == SK__PH_HEAD) &&
               w->phase != SK__PH_READY)) {
        nghttp2_session_consume_connection(s, len); /* nobody reads it */
        return 0;
    }
    w->last_ms = sk_now_ms();
    w->spd_bytes += len;
    if (w->phase != SK__PH_BODY) { /* before the body starts: at most its stream's window */
        if (len > SK__FETCH_BUF_SIZE - w->have)
            return fail_cb(f, sk_fetch_set_error(f, SK_EPROTO, "HTTP/2 DATA too large"));
        memcpy(f->buf + w->have, data, len);
        w->have += len;
        return 0;
    }
    int rc = sk__fetch_h2_data(f, (const char *)data, len);
    return rc < 0 ? fail_cb(f, rc) : 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *fr, void *arg)
{
    struct sk__fetch_h2 *h = arg;
    if (fr->hd.type == NGHTTP2_GOAWAY) {
        h->goaway = true;
        h->goaway_last = fr->goaway.last_stream_id;
        h->goaway_code = fr->goaway.error_code;
        for (unsigned i = 0; i < h->nusers; i++)
            h->users[i]->w.keep_ok = false;
        return 0;
    }
    struct sk_fetch *f = of_sid(s, fr->hd.stream_id);
    if (!f)
        return 0;
    /* A WINDOW_UPDATE or PRIORITY on the stream, as a DATA frame with no
     * byte and no END_STREAM, says nothing of the response: no progress
     * (else a server repeating them would hold the idle timeout off). */
    bool empty_data = fr->hd.type == NGHTTP2_DATA && fr->hd.length == 0 &&
                      !(fr->hd.flags & NGHTTP2_FLAG_END_STREAM);
    if (fr->hd.type != NGHTTP2_WINDOW_UPDATE && fr->hd.type != NGHTTP2_PRIORITY && !empty_data)
        f->w.last_ms = sk_now_ms();
    if (fr->hd.type == NGHTTP2_RST_STREAM)
        f->w.h2st.rst_in = true;
    else if (fr->hd.type == NGHTTP2_HEADERS && f->w.h2st.in_head &&
             (fr->hd.flags & NGHTTP2_FLAG_END_HEADERS))
        return head_end(f);
    return 0;
}

static int on_close(nghttp2_session *s, int32_t sid, uint32_t code, void *arg)
{
    (void)arg;
    struct sk_fetch *f = of_sid(s, sid);
    if (f) {
        f->w.h2st.closed = true;
        f->w.h2st.close_code = code;
    }
    return 0;
}

static int on_error(nghttp2_session *s, int code, const char *msg, size_t len, void *arg)
{
    (void)s;
    (void)code;
    struct sk__fetch_h2 *h = arg;
    /* nghttp2 quotes the server's bytes (an invalid field's name and value):
     * control bytes are written \xHH, as -v does, so that a server cannot
     * put a line break or a terminal escape into the error line. */
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < 150; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(h->why + o, sizeof h->why - o, "\\x%02x", c);
        else
            h->why[o++] = (char)c;
    }
    h->why[o] = '\0';
    return 0;
}

/* ---- the session ---- */

int sk__fetch_h2_begin(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = calloc(1, sizeof *h);
    if (!h)
        return sk_fetch_fail_as(f, SK_ERR(ENOMEM), "setting up HTTP/2");
    h->owner = f;
    h->users[h->nusers++] = f;
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
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, SK__FETCH_H2_WINDOW0},
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
    h->plain = !sk_stream_is_tls(&f->w.s);
    f->w.h2 = h;
    return 0;
}

/* f leaves the session: its stream (if still open) is reset. */
static void leave(struct sk__fetch_h2 *h, struct sk_fetch *f)
{
    struct sk__fetch_h2st *st = &f->w.h2st;
    if (st->sid > 0) {
        if (!st->closed)
            (void)nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->sid, NGHTTP2_CANCEL);
        (void)nghttp2_session_set_stream_user_data(h->s, st->sid, NULL);
    }
    st->sid = 0;
    for (unsigned i = 0; i < h->nusers; i++)
        if (h->users[i] == f)
            h->users[i] = h->users[--h->nusers];
    f->w.h2 = NULL;
}

void sk__fetch_h2_free(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = f->w.h2;
    if (!h)
        return;
    if (h->owner != f) { /* a guest: its stream goes, the connection stays */
        leave(h, f);
        if (!h->dead)
            (void)sk__fetch_h2_send(h->owner);
        if (h->owner->w.loop) /* the owner may wait for it (sk__fetch_h2_wait_guests) */
            sk_loop_stop(h->owner->w.loop);
        return;
    }
    while (h->nusers > 0) /* none but the owner by now (fetch_io.c waits for them) */
        leave(h, h->users[h->nusers - 1]);
    sk__fetch_pool_drop(f);
    nghttp2_session_del(h->s);
    free(h);
}

/* The streams open on h: its users' (the holder's own ended with its
 * exchange: sk__fetch_h2_rest). */
static unsigned open_streams(const struct sk__fetch_h2 *h)
{
    unsigned n = 0;
    for (unsigned i = 0; i < h->nusers; i++)
        n += h->users[i]->w.h2st.sid > 0 && !h->users[i]->w.h2st.closed;
    return n;
}

bool sk__fetch_h2_can_join(const struct sk_fetch *owner)
{
    const struct sk__fetch_h2 *h = owner->w.h2;
    return h && h->owner == owner && !h->dead && !h->goaway && !h->closing &&
           h->nusers < SK__FETCH_H2_USERS && nghttp2_session_check_request_allowed(h->s) &&
           nghttp2_session_get_remote_settings(h->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) >
               open_streams(h);
}

void sk__fetch_h2_closing(struct sk_fetch *f)
{
    if (f->w.h2)
        f->w.h2->closing = true;
}

bool sk__fetch_h2_alive(const struct sk_fetch *f)
{
    const struct sk__fetch_h2 *h = f->w.h2;
    return h && !h->dead && !h->closing;
}

void sk__fetch_h2_rest(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = f->w.h2;
    struct sk__fetch_h2st *st = &f->w.h2st;
    if (!h || st->sid <= 0)
        return;
    if (!st->closed)
        (void)nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->sid, NGHTTP2_CANCEL);
    (void)nghttp2_session_set_stream_user_data(h->s, st->sid, NULL);
    st->sid = 0;
    if (!h->dead)
        (void)sk__fetch_h2_send(f);
}

void sk__fetch_h2_join(struct sk_fetch *f, struct sk_fetch *owner)
{
    struct sk__fetch_h2 *h = owner->w.h2;
    h->users[h->nusers++] = f;
    f->w.h2 = h;
}

bool sk__fetch_h2_is_guest(const struct sk_fetch *f)
{
    return f->w.h2 && f->w.h2->owner != f;
}

struct sk_fetch *sk__fetch_h2_owner(const struct sk_fetch *f)
{
    return f->w.h2 ? f->w.h2->owner : NULL;
}

unsigned sk__fetch_h2_users(const struct sk_fetch *f, struct sk_fetch **out, unsigned cap)
{
    const struct sk__fetch_h2 *h = f->w.h2;
    unsigned n = 0;
    for (unsigned i = 0; h && i < h->nusers && n < cap; i++)
        out[n++] = h->users[i];
    return n;
}

void sk__fetch_h2_dead(struct sk_fetch *f, int err)
{
    struct sk__fetch_h2 *h = f->w.h2;
    if (h && !h->dead) {
        h->dead = true;
        h->dead_err = err;
    }
}

/* What the session has to send goes on the connection. */
int sk__fetch_h2_send(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = f->w.h2;
    f = h->owner; /* its stream is the connection */
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
    bool tls = u->scheme == SK_URL_HTTPS; /* h2c: http */
    nv[n++] = NV(":scheme", 7, tls ? "https" : "http", tls ? 5 : 4);
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
    memset(&f->w.h2st, 0, sizeof f->w.h2st);
    int32_t sid = nghttp2_submit_request(h->s, NULL, nv, n, NULL, f);
    if (sid < 0)
        return sk_fetch_set_error(f, sid == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE ? SK_ECONNECT
                                                                                : SK_EPROTO,
                                  "HTTP/2: cannot open a stream: %s", nghttp2_strerror(sid));
    f->w.h2st.sid = sid;
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
    const struct sk__fetch_h2st *st = &w->h2st;
    bool body = st->head_done;
    int err = body ? SK_ETRUNCATED : SK_EPROTO;
    const char *when = body ? "inside the body" : "before the response head";
    if (h->goaway && st->sid > h->goaway_last && !st->head_done) {
        w->stale = true; /* not processed: sk__fetch_open sends it again once */
        return sk_fetch_set_error(f, SK_EPROTO,
                                  "server sent GOAWAY (%s): request not processed",
                                  code_name(h->goaway_code));
    }
    if (st->rst_in)
        return sk_fetch_set_error(f, err, "server reset the HTTP/2 stream (RST_STREAM %s) %s",
                                  code_name(st->close_code), when);
    if (h->goaway && h->goaway_code)
        return sk_fetch_set_error(f, err, "server sent GOAWAY (%s) %s%s%s",
                                  code_name(h->goaway_code), when, h->why[0] ? ": " : "",
                                  h->why);
    if (st->close_code == NGHTTP2_PROTOCOL_ERROR && body && w->fr.kind == SK_HTTP_BODY_LENGTH)
        return sk_fetch_set_error(f, SK_ETRUNCATED,
                                  "HTTP/2 body does not match its content-length of %llu bytes",
                                  (unsigned long long)w->fr.length);
    return sk_fetch_set_error(f, err, "HTTP/2 protocol error %s (%s)%s%s", when,
                              code_name(st->close_code), h->why[0] ? ": " : "", h->why);
}

/* The connection ended (err as feed_end's) before f's stream did. */
static int cut(struct sk_fetch *f, int err)
{
    struct sk__fetch_h2 *h = f->w.h2;
    struct sk__fetch_wire *w = &f->w;
    const struct sk__fetch_h2st *st = &w->h2st;
    if (w->reused && !st->in_head && !st->head_done && !w->interim) {
        w->stale = true; /* the server had closed the kept connection */
        return sk_fetch_set_error(f, SK_ECONNECT, "%s closed the kept connection", w->where);
    }
    if (err == SK_EPROTO) /* nghttp2 gave up on the input */
        return sk_fetch_set_error(f, SK_EPROTO, "HTTP/2: %s", h->why);
    if (err < 0 && err != SK_ECLOSED && err != SK_ERR(ECONNRESET) && err != SK_ERR(EPIPE))
        return sk_fetch_fail_as(f, err, st->head_done ? "reading the body" : "reading the response");
    if (h->goaway && h->goaway_code)
        return stream_failed(f);
    if (h->goaway && st->sid > h->goaway_last) {
        w->stale = true;
        return sk_fetch_set_error(f, SK_EPROTO, "server sent GOAWAY: request not processed");
    }
    return sk_fetch_set_error(f, st->head_done ? SK_ETRUNCATED : SK_EPROTO,
                              "connection closed %s (HTTP/2 stream not ended)",
                              st->head_done ? "inside the body" : "before the response head");
}

int sk__fetch_h2_verdict(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = f->w.h2;
    struct sk__fetch_wire *w = &f->w;
    const struct sk__fetch_h2st *st = &w->h2st;
    if (st->fail)
        return st->fail;
    if (w->phase == SK__PH_HEAD && st->head_done)
        return 1;
    if (st->closed && st->close_code == NGHTTP2_NO_ERROR && st->head_done) {
        if (w->fr.kind == SK_HTTP_BODY_LENGTH && w->left > 0)
            return sk_fetch_set_error(f, SK_ETRUNCATED,
                                      "HTTP/2 body ended after %llu of %llu bytes",
                                      (unsigned long long)(w->fr.length - w->left),
                                      (unsigned long long)w->fr.length);
        w->body_done = true;
        return 1;
    }
    if (st->closed)
        return stream_failed(f);
    if (h->dead)
        return cut(f, h->dead_err);
    if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s)) {
        if (h->goaway && st->sid <= h->goaway_last && !h->goaway_code)
            return 0; /* the stream may still end; the connection's end will tell */
        if (!h->why[0] && h->goaway)
            snprintf(h->why, sizeof h->why, "server sent GOAWAY (%s)", code_name(h->goaway_code));
        return sk_fetch_set_error(f, st->head_done ? SK_ETRUNCATED : SK_EPROTO,
                                  "HTTP/2 connection error: %s",
                                  h->why[0] ? h->why : "the session ended");
    }
    return 0;
}

/* h2c: the server's first bytes are an HTTP/1.x status line ("HTTP/1.1 400"
 * to the preface): it does not speak HTTP/2 there. Whether it can still
 * be that ("HTTP/" may come in pieces): 1 it is, 0 not yet known, -1 not. */
static int http1_reply(struct sk__fetch_h2 *h, const char *p, size_t n)
{
    static const char h1[] = "HTTP/1.";
    const size_t len = sizeof h1 - 1;
    if (!h->plain || h->seen >= len)
        return -1;
    size_t k = n < len - h->seen ? n : len - h->seen;
    if (memcmp(p, h1 + h->seen, k) != 0)
        return -1;
    h->seen += k;
    return h->seen == len ? 1 : 0;
}

int sk__fetch_h2_input(struct sk_fetch *f, const char *p, size_t n)
{
    struct sk__fetch_h2 *h = f->w.h2;
    int h1 = http1_reply(h, p, n);
    if (h1 < 0)
        h->seen = SIZE_MAX; /* decided: frames */
    else if (h1 > 0) {
        snprintf(h->why, sizeof h->why,
                 "%.50s replied in HTTP/1.x to the HTTP/2 connection preface: no HTTP/2 "
                 "without Upgrade (prior knowledge) there",
                 f->w.where);
        sk__fetch_h2_dead(f, SK_EPROTO);
        return SK_EPROTO;
    }
    ssize_t k = nghttp2_session_mem_recv(h->s, (const uint8_t *)p, n);
    if (k < 0) {
        char was[sizeof h->why];
        memcpy(was, h->why, sizeof was);
        /* 60: nghttp2's longest strerror ("Too many CONTINUATION frames
         * following a HEADER frame") whole; the quote after it is cut */
        snprintf(h->why, sizeof h->why, "%.60s%s%.90s", nghttp2_strerror((int)k),
                 was[0] ? ": " : "", was);
        sk__fetch_h2_dead(f, SK_EPROTO);
        return SK_EPROTO;
    }
    /* what the input calls for (SETTINGS ack, WINDOW_UPDATE, a GOAWAY of
     * ours) goes out; the session's state after it is the verdicts' */
    int rc = sk__fetch_h2_send(f);
    if (rc < 0)
        sk__fetch_h2_dead(f, rc); /* the server is gone: why, as for the connection's end */
    return rc;
}

int sk__fetch_h2_feed(struct sk_fetch *f, const char *p, size_t n)
{
    (void)sk__fetch_h2_input(f, p, n);
    return sk__fetch_h2_verdict(f);
}

int sk__fetch_h2_end(struct sk_fetch *f, int err)
{
    sk__fetch_h2_dead(f, err);
    int rc = sk__fetch_h2_verdict(f);
    return rc < 0 ? rc : 0;
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
     * what it gathers before f->buf would overflow); the stream's, over
     * the rate limit's budget, once the pace timer says (the connection's
     * at once: the other streams on it go on) */
    nghttp2_session_consume_connection(h->s, n);
    w->h2_owed += n;
    if (!sk__fetch_rate_count(f, n) && !w->h2st.closed) {
        nghttp2_session_consume_stream(h->s, w->h2st.sid, w->h2_owed);
        w->h2_owed = 0;
    }
    return rc;
}

int sk__fetch_h2_give(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    if (!w->h2st.closed && w->h2_owed)
        nghttp2_session_consume_stream(w->h2->s, w->h2st.sid, w->h2_owed);
    w->h2_owed = 0;
    return sk__fetch_h2_send(f);
}

int sk__fetch_h2_body(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    struct sk__fetch_h2 *h = w->h2;
    int rc = sk__fetch_h2_data(f, f->buf + w->head_len, w->have - w->head_len);
    if (rc < 0)
        return rc;
    if ((rc = sk__fetch_h2_verdict(f)) != 0)
        return rc;
    /* the body has a sink: the stream's window widens to the connection's;
     * under a rate limit to half a second of it (the burst before a pause),
     * at least one read */
    uint64_t rate = f->o.max_recv_speed, win = SK__FETCH_H2_WINDOW;
    if (rate)
        win = rate / 2 < SK__FETCH_H2_WINDOW0 ? SK__FETCH_H2_WINDOW0
              : rate / 2 > SK__FETCH_H2_WINDOW ? SK__FETCH_H2_WINDOW
                                               : rate / 2;
    if (win > SK__FETCH_H2_WINDOW0 &&
        nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, w->h2st.sid,
                                              (int32_t)win) != 0)
        return sk_fetch_fail_as(f, SK_ERR(ENOMEM), "reading the body");
    if ((rc = sk__fetch_h2_send(f)) < 0) { /* the WINDOW_UPDATEs; the server gone: */
        sk__fetch_h2_dead(f, rc);           /* as for the connection's end */
        return sk__fetch_h2_verdict(f);
    }
    return 0;
}

bool sk__fetch_h2_ended(struct sk_fetch *f)
{
    struct sk__fetch_h2 *h = f->w.h2;
    struct sk__fetch_wire *w = &f->w;
    nghttp2_session_consume_connection(h->s, w->have - w->head_len);
    return w->h2st.closed && w->h2st.close_code == NGHTTP2_NO_ERROR && !w->h2st.fail;
}

bool sk__fetch_h2_keep(const struct sk_fetch *f)
{
    const struct sk__fetch_h2 *h = f->w.h2;
    return !h->goaway && !h->dead && nghttp2_session_want_read(h->s) &&
           nghttp2_session_check_request_allowed(h->s);
}
