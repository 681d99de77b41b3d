/* TLS on the stream: the handshake on the loop, then SSL_read/SSL_write in
 * place of recv/send, close_notify at a clean end (stream.c calls in here
 * only for streams with a session, so the plain path stays as it was).
 *
 * Readiness: an SSL call may want the other direction (a read that must
 * write, a write that must read); the want is kept and drives the interest
 * mask. Decrypted input OpenSSL holds (read-ahead takes whole socket
 * buffers) raises no readiness: while the owner reads, such a stream asks
 * for writability too, which fires at once and wakes it to read on. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "alloc_int.h"
#include "sockit/err.h"
#include "sockit/transport.h"
#include "stream_int.h"
#include "tls_int.h"

#define READS_PER_EVENT 4
#define ERRLEN 320

/* A fatal TLS or socket error: recorded, then the close. */
static void tls_fail(struct sk_stream *s, int rc, const char *err)
{
    s->x->broken = true;
    sk__stream_set_error(s, err);
    sk_stream_close(s, rc == SK_ETLS ? SK_CLOSE_TLS : SK_CLOSE_RESET);
}

static void refresh(struct sk_stream *s)
{
    if (!s->closed)
        sk_stream_update(s, s->reading);
}

static void handshake_step(struct sk_stream *s)
{
    struct sk__stream_ext *x = s->x;
    char err[ERRLEN];
    bool ww = false;
    int rc = sk__tls_handshake(x->ssl, &ww, err, sizeof err);
    if (rc == SK_EAGAIN_MORE) {
        x->hs_want_write = ww;
        refresh(s);
        return;
    }
    if (rc < 0) {
        x->broken = true;
        if (rc == SK_ETLSVERIFY)
            x->verify = SSL_get_verify_result(x->ssl);
        sk__stream_set_error(s, err);
        sk__stream_setup_fail(s, rc, rc == SK_ETLS || rc == SK_ETLSVERIFY ? SK_CLOSE_TLS
                                                                         : SK_CLOSE_RESET);
        return;
    }
    x->handshaking = false;
    sk__stream_setup_leave(s);
    if (s->g->cb->connected)
        s->g->cb->connected(s, 0);
    if (s->closed)
        return;
    sk_stream_touch(s);
    sk_stream_flush(s); /* what was written during the handshake; then flushed */
    refresh(s);
}

/* Input: hands it to the owner (discards it while lingering). */
static void tls_readable(struct sk_stream *s)
{
    struct sk_stream_group *g = s->g;
    struct sk__stream_ext *x = s->x;
    size_t want = s->read_max ? s->read_max : g->lim.read_size;
    for (int i = 0; i < READS_PER_EVENT && !s->read_closed; i++) {
        /* Records while they last, up to want: one callback (and one write
         * of the owner's) for many 16 KiB records, not one each. The call
         * that stops the fill is judged after its data is handed over. */
        size_t n = 0, k = 0;
        int ok = 1, rc = 0;
        char err[ERRLEN] = "";
        bool ww = false;
        if (x->rd_held) { /* the end a paused owner has not seen yet */
            rc = x->rd_held;
            x->rd_held = 0;
            ok = 0;
        }
        bool drained = false;
        while (n < want && ok == 1 && !drained) {
            ERR_clear_error();
            if ((ok = SSL_read_ex(x->ssl, g->rbuf + n, want - n, &k)) == 1)
                n += k;
            /* With read-ahead, nothing buffered means the socket gave all it
             * had: asking again would only read EAGAIN (request/reply pays
             * that syscall on every message). The loop is level-triggered,
             * so what comes later wakes us. A download (tls_keep_buffers)
             * keeps reading: its socket seldom runs dry. */
            drained = ok == 1 && !g->lim.tls_keep_buffers && !SSL_has_pending(x->ssl);
        }
        x->rd_want_write = false;
        if (ok != 1 && !rc)
            rc = sk__tls_result(x->ssl, ok, 0, "TLS read", &ww, err, sizeof err);
        sk__stream_count_in(s, n);
        bool stop = false; /* paused, or half-closed by the owner just now */
        if (n > 0 && !s->lingering) {
            stop = !g->cb->read(s, g->rbuf, n) || s->lingering;
            if (s->closed)
                return; /* even when it said "more": a closed stream is not touched */
        }
        if (stop) {
            if (!s->lingering) { /* paused */
                x->rd_want_write = rc == SK_EAGAIN_MORE && ww;
                if (ok != 1 && rc != SK_EAGAIN_MORE) { /* held until it reads again */
                    x->rd_held = rc == 0 ? SK__TLS_HELD_EOF : rc;
                    if (rc < 0 && rc != SK_ECLOSED)
                        sk__stream_set_error(s, err);
                }
                break;
            }
            /* Half-closed by the owner: the rest is discarded, and the
             * linger goes on below (an end read with this data ends it). */
        }
        if (rc == SK__TLS_HELD_EOF)
            rc = 0;
        if (ok == 1 && drained)
            break;
        if (ok == 1)
            continue;
        if (rc == SK_EAGAIN_MORE) {
            x->rd_want_write = ww;
            break;
        }
        if (rc < 0 && rc != SK_ECLOSED) {
            tls_fail(s, rc, err);
            return;
        }
        x->close_notify = rc == 0; /* SK_ECLOSED: a FIN without it, a truncation */
        s->read_closed = true;
        if (!s->lingering)
            g->cb->read(s, NULL, 0);
        if (s->closed)
            return;
        break; /* the flush below ends a linger the owner began here */
    }
    sk_stream_touch(s);
    sk_stream_flush(s);
}

static void tls_io_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)loop;
    struct sk_stream *s = SK_CONTAINER_OF(io, struct sk_stream, io);
    struct sk_stream_group *g = s->g;
    struct sk__stream_ext *x = s->x;
    if (x->handshaking) {
        handshake_step(s); /* a hang-up or an error shows there too */
    } else if (x->broken) { /* lingering after a failed close_notify */
        sk__stream_io_cb(loop, io, events);
        return;
    } else if ((events & (SK_HUP | SK_ERROR)) && (s->read_closed || (events & SK_ERROR)) &&
               !sk__stream_reads_first(s, events)) {
        x->broken = true;
        sk_stream_close(s, SK_CLOSE_RESET); /* as a plain stream: see stream.c */
    } else {
        bool can_read = !s->read_closed && (s->lingering || s->reading);
        bool ready = x->rd_want_write ? (events & SK_WRITE) : (events & (SK_READ | SK_HUP));
        if (can_read && (ready || SSL_has_pending(x->ssl) || x->rd_held))
            tls_readable(s); /* flushes too */
        else
            sk_stream_flush(s);
        refresh(s);
    }
    sk__stream_group_reap(g);
}

void sk__tls_stream_begin(struct sk_stream *s)
{
    struct sk__stream_ext *x = s->x;
    if (sk__tls_set_fd(x->ssl, s->io.fd) != 1) {
        ERR_clear_error();
        sk__stream_set_error(s, "TLS set-up: cannot attach the socket");
        sk__stream_setup_fail(s, SK_ETLS, SK_CLOSE_TLS);
        return;
    }
    s->io.cb = tls_io_cb;
    x->handshaking = true;
    if (x->pre)
        sk__tls_set_prefix(x->ssl, x->pre);
    /* The client speaks first; the server waits for its ClientHello, unless
     * it has read some already (then writability, at once, wakes it). */
    x->hs_want_write = !SSL_is_server(x->ssl) || x->pre != NULL;
    sk__stream_setup_enter(s, SK__SETUP_HANDSHAKE);
    refresh(s);
}

unsigned sk__tls_stream_mask(struct sk_stream *s, bool want_read)
{
    struct sk__stream_ext *x = s->x;
    if (s->connecting)
        return SK_WRITE;
    if (x->handshaking)
        return x->hs_want_write ? SK_WRITE : SK_READ;
    unsigned mask = 0;
    if (s->lingering ? !s->read_closed : want_read && !s->read_closed && !s->g->stopping) {
        mask |= x->rd_want_write ? SK_WRITE : SK_READ;
        if (!x->rd_want_write && (SSL_has_pending(x->ssl) || x->rd_held))
            mask |= SK_WRITE; /* a wake-up: see the top of the file */
    }
    if (sk_buf_size(&s->out) || x->notify_pending)
        mask |= x->wr_want_read ? SK_READ : SK_WRITE;
    return mask;
}

/* One SSL_write of p[0..n): the count, 0 when it must wait (x->wr_want_read
 * says for what), or a negative code after which s is closed. OpenSSL asks
 * for the same bytes again after a wait: they are the queue's head. */
static int write_some(struct sk_stream *s, const char *p, size_t n)
{
    struct sk__stream_ext *x = s->x;
    size_t k = 0;
    ERR_clear_error();
    int ok = SSL_write_ex(x->ssl, p, n, &k);
    x->wr_want_read = false;
    if (ok == 1) {
        sk__stream_count_out(s, k);
        return (int)k;
    }
    char err[ERRLEN];
    bool ww = false;
    int rc = sk__tls_result(x->ssl, ok, 0, "TLS write", &ww, err, sizeof err);
    if (rc == SK_EAGAIN_MORE) {
        x->wr_want_read = !ww;
        return 0;
    }
    tls_fail(s, rc, err);
    return SK_ERR(EPIPE);
}

int sk__tls_stream_write(struct sk_stream *s, const char *p, size_t n)
{
    if (s->closed)
        return SK_ERR(EPIPE);
    while (sk_buf_size(&s->out) == 0 && n > 0) {
        int k = write_some(s, p, n);
        if (k < 0)
            return k;
        if (k == 0)
            break;
        p += k;
        n -= (size_t)k;
    }
    if (n > 0 && sk_buf_append(&s->out, p, n) < 0) {
        sk_stream_close(s, SK_CLOSE_ERROR);
        return SK_ERR(ENOMEM);
    }
    return 0;
}

void sk__tls_stream_flush(struct sk_stream *s)
{
    bool progress = false;
    while (sk_buf_size(&s->out) > 0) {
        int k = write_some(s, sk_buf_head(&s->out), sk_buf_size(&s->out));
        if (k < 0)
            return;
        if (k == 0)
            break;
        sk_buf_consume(&s->out, (size_t)k);
        progress = true;
    }
    if (progress)
        sk_stream_touch(s);
    sk__stream_settle(s);
}

bool sk__tls_stream_notify(struct sk_stream *s)
{
    struct sk__stream_ext *x = s->x;
    if (x->notify_sent || x->broken)
        return true;
    ERR_clear_error();
    int r = SSL_shutdown(x->ssl);
    if (r < 0) {
        if (SSL_get_error(x->ssl, r) == SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            x->notify_pending = true;
            return false;
        }
        /* The session failed (out of memory for the alert): it would
         * answer every read with "want read" from here on, however ready
         * the socket. The linger goes on as a plain stream's. */
        x->broken = true;
    }
    ERR_clear_error(); /* sent, or it cannot be: the FIN follows either way */
    x->notify_pending = false;
    x->notify_sent = true;
    return true;
}

void sk__tls_stream_free(struct sk_stream *s)
{
    sk__tls_free(s->x->ssl);
    s->x->ssl = NULL;
    if (s->x->pre)
        sk_buf_free(s->x->pre);
    free(s->x->pre);
    s->x->pre = NULL;
}

int sk_stream_start_tls(struct sk_stream *s, struct sk_tls_ctx *ctx, const char *host)
{
    if (s->closed)
        return SK_ERR(EPIPE);
    struct sk__stream_ext *x = sk__stream_ext(s);
    if (!x) {
        sk_stream_close(s, SK_CLOSE_ERROR);
        return SK_ERR(ENOMEM);
    }
    if (x->ssl)
        return SK_EUSAGE;
    char err[ERRLEN];
    if (!(x->ssl = sk__tls_new(ctx, -1, sk__tls_ctx_is_server(ctx) ? NULL : host, err,
                               sizeof err))) {
        sk__stream_set_error(s, err);
        sk_stream_close(s, SK_CLOSE_ERROR);
        return SK_ETLS;
    }
    /* A write may return after each record and resume from a moved
     * (reallocated) queue. Idle streams hold no record buffers unless the
     * owner keeps them (a server context sets the release: cleared). */
    long mode = SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
    if (s->g->lim.tls_keep_buffers)
        SSL_clear_mode(x->ssl, SSL_MODE_RELEASE_BUFFERS);
    else
        mode |= SSL_MODE_RELEASE_BUFFERS;
    SSL_set_mode(x->ssl, mode);
    if (s->setup != SK__SETUP_CONNECT)
        sk__tls_stream_begin(s); /* else when the connect ends */
    return 0;
}

int sk__stream_start_tls_after(struct sk_stream *s, struct sk_tls_ctx *ctx, const void *pre,
                               size_t n)
{
    struct sk__stream_ext *x = s->closed ? NULL : sk__stream_ext(s);
    if (x && n > 0 && !x->pre &&
        (!(x->pre = sk__calloc(1, sizeof *x->pre)) || sk_buf_append(x->pre, pre, n) < 0)) {
        sk_stream_close(s, SK_CLOSE_ERROR);
        return SK_ERR(ENOMEM);
    }
    return sk_stream_start_tls(s, ctx, NULL);
}

bool sk_stream_is_tls(const struct sk_stream *s)
{
    return s->x && s->x->ssl;
}

const char *sk_stream_tls_version(const struct sk_stream *s)
{
    return sk_stream_is_tls(s) && !s->x->handshaking && SSL_is_init_finished(s->x->ssl)
               ? SSL_get_version(s->x->ssl)
               : NULL;
}

const char *sk_stream_tls_cipher(const struct sk_stream *s)
{
    return sk_stream_tls_version(s) ? SSL_get_cipher_name(s->x->ssl) : NULL;
}

const char *sk_stream_tls_verify_error(const struct sk_stream *s)
{
    return s->x && s->x->verify != X509_V_OK ? sk__tls_verify_text(s->x->verify) : NULL;
}

bool sk_stream_tls_close_notify(const struct sk_stream *s)
{
    return s->x && s->x->close_notify;
}

bool sk_stream_tls_handshaking(const struct sk_stream *s)
{
    return sk_stream_is_tls(s) && s->x->handshaking;
}

/* struct sk_tls_session is OpenSSL's SSL_SESSION under the library's name.
 * A copy, not the session itself: OpenSSL marks a session not resumable
 * when its connection is freed without close_notify (a reset, a bench
 * cycle), and the copy must outlive that. */
struct sk_tls_session *sk_stream_tls_session(const struct sk_stream *s)
{
    SSL_SESSION *live = sk_stream_tls_version(s) ? SSL_get_session(s->x->ssl) : NULL;
    if (!live || !SSL_SESSION_is_resumable(live))
        return NULL;
    SSL_SESSION *copy = SSL_SESSION_dup(live);
    ERR_clear_error(); /* out of memory: no session, a full handshake next time */
    return (struct sk_tls_session *)copy;
}

int sk_stream_tls_set_session(struct sk_stream *s, struct sk_tls_session *sess)
{
    if (!sk_stream_is_tls(s) || SSL_is_server(s->x->ssl) || !SSL_in_before(s->x->ssl))
        return SK_EUSAGE;
    ERR_clear_error();
    if (SSL_set_session(s->x->ssl, (SSL_SESSION *)sess) != 1) { /* a reference of its own */
        ERR_clear_error();
        return SK_ETLS;
    }
    return 0;
}

bool sk_stream_tls_resumed(const struct sk_stream *s)
{
    return sk_stream_tls_version(s) && SSL_session_reused(s->x->ssl) == 1;
}

void sk_tls_session_free(struct sk_tls_session *sess)
{
    SSL_SESSION_free((SSL_SESSION *)sess);
}
