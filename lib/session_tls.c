/* TLS on the server's sessions (cfg.tls): the handshake stage before a
 * session is open, the TLS fields of its close event, and the rotation of
 * the server's context.
 *
 * A new session starts its handshake at accept, holding its --max-conns
 * slot (taken at accept), on the group's handshake deadline; it is open
 * (open callback, OPEN event) when the stream's connected callback says the
 * handshake is done (session.c). The context in use is the server's
 * current one, read under tls_lock: the stream takes its own reference, so
 * a context replaced by sk_server_set_tls lives on while a session made
 * with it does. */
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#include "addr_int.h"
#include "server_int.h"
#include "sockit/err.h"
#include "tls_int.h"

const char *sk_tls_end_name(enum sk_tls_end e)
{
    static const char *const names[] = {
        [SK_TLS_END_PLAIN] = "",          [SK_TLS_END_CLOSE_NOTIFY] = "close_notify",
        [SK_TLS_END_TRUNCATED] = "truncated", [SK_TLS_END_RESET] = "reset",
        [SK_TLS_END_NONE] = "none",
    };
    return (unsigned)e < sizeof names / sizeof names[0] ? names[e] : "?";
}

static bool start(struct sk_server_conn *s, const char *pre, size_t n)
{
    struct sk_server *srv = sk__conn_worker(s)->srv;
    pthread_mutex_lock(&srv->tls_lock);
    struct sk_tls_ctx *ctx = sk_tls_ctx_ref(srv->cfg.tls);
    pthread_mutex_unlock(&srv->tls_lock);
    s->tls_wait = 1;
    /* A handshake flight is several records, each its own send(): Nagle
     * would hold the later ones for the client's delayed ACK (40 ms). */
    sk__nodelay(s->st.io.fd);
    int rc = sk__stream_start_tls_after(&s->st, ctx, pre, n); /* the session's own reference */
    sk_tls_ctx_free(ctx);
    return rc == 0;
}

bool sk__tls_session_start(struct sk_server_conn *s)
{
    return start(s, NULL, 0);
}

bool sk__tls_session_start_after(struct sk_server_conn *s, const char *data, size_t n)
{
    if (data)
        return start(s, data, n);
    bool ok = start(s, sk_buf_head(&s->st.in), sk_buf_size(&s->st.in)); /* copied */
    sk_buf_free(&s->st.in);
    return ok;
}

const struct sockaddr *sk__tls_proxied_from(const struct sk_server_conn *s,
                                            struct sockaddr_in6 *buf)
{
    /* Not kept through the handshake (a session stays small): asked again. */
    socklen_t len = sizeof *buf;
    if (!sk__conn_worker(s)->srv->cfg.proxy_protocol ||
        getpeername(s->st.io.fd, (struct sockaddr *)buf, &len) < 0)
        return NULL;
    const struct sockaddr_in6 *p = &s->peer;
    bool same = buf->sin6_family == p->sin6_family && buf->sin6_port == p->sin6_port &&
                (buf->sin6_family == AF_INET6
                     ? memcmp(&buf->sin6_addr, &p->sin6_addr, sizeof p->sin6_addr) == 0
                     : ((struct sockaddr_in *)buf)->sin_addr.s_addr ==
                           ((const struct sockaddr_in *)p)->sin_addr.s_addr);
    return same ? NULL : (struct sockaddr *)buf;
}

void sk__tls_close_event(const struct sk_server_conn *s, enum sk_close_reason why,
                         struct sk_server_event *ev)
{
    if (why == SK_CLOSE_TLS) {
        const char *e = sk_stream_error(&s->st);
        ev->tls_error = *e ? e : NULL;
    }
    if (s->tls_wait)
        ev->tls_end = SK_TLS_END_PLAIN; /* no session to end */
    else if (sk_stream_tls_close_notify(&s->st))
        ev->tls_end = SK_TLS_END_CLOSE_NOTIFY;
    else if (s->st.read_closed)
        ev->tls_end = SK_TLS_END_TRUNCATED;
    else if (why == SK_CLOSE_RESET)
        ev->tls_end = SK_TLS_END_RESET;
    else
        ev->tls_end = SK_TLS_END_NONE;
}

int sk_server_set_tls(struct sk_server *srv, struct sk_tls_ctx *ctx)
{
    if (!ctx || !sk__tls_ctx_is_server(ctx))
        return SK_EUSAGE;
    pthread_mutex_lock(&srv->tls_lock);
    struct sk_tls_ctx *old = srv->cfg.tls;
    if (old) /* a plain server stays plain */
        srv->cfg.tls = sk_tls_ctx_ref(ctx);
    pthread_mutex_unlock(&srv->tls_lock);
    if (!old)
        return SK_EUSAGE;
    sk_tls_ctx_free(old);
    return 0;
}
