/* --proxy-protocol: a session's first bytes are a PROXY header naming the
 * client (sockit/proxy.h). Until the header is complete the session is
 * not open: no open callback (no greeting), no open event; it holds the
 * --max-conns slot it took at accept, so connections that never send a
 * header are bounded by the limit as well as by the deadline. Its partial
 * header waits in st.in (at most SK_PROXY_HEADER_MAX bytes: the parser
 * decides within them). The deadline is the group's idle one (session.c's
 * idle callback spares no waiting session). */
#include <string.h>

#include "server_int.h"

static int proxy_fail(struct sk_server_conn *s, enum sk_proxy_error why)
{
    s->proxy_err = (unsigned)why & 0x1F;
    sk_stream_close(&s->st, SK_CLOSE_ERROR);
    return -1;
}

/* The header is done: the client becomes the peer. */
static void admit(struct sk_server_conn *s, const struct sk_proxy_header *h,
                  struct sockaddr_in6 *via)
{
    via->sin6_family = AF_UNSPEC;
    /* A UNIX client has no address a TCP peer can hold: like LOCAL, the
     * connection's own endpoints stand. */
    int fam = h->local ? AF_UNSPEC : h->src.ss_family;
    if (fam == AF_INET || fam == AF_INET6) {
        *via = s->peer;
        memcpy(&s->peer, &h->src,
               fam == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    }
    s->proxy = SK__PROXY_NONE;
}

int sk__proxy_read(struct sk_server_conn *s, const char **data, size_t *n,
                   struct sockaddr_in6 *via)
{
    struct sk_buf *in = &s->st.in;
    bool held = sk_buf_size(in) > 0;
    if (*n == 0)
        return proxy_fail(s, held ? SK_PROXY_TRUNCATED : SK_PROXY_MISSING);
    if (held && sk_buf_append(in, *data, *n) < 0)
        return proxy_fail(s, SK_PROXY_FAILED);
    struct sk_proxy_header h;
    enum sk_proxy_error err;
    int rc = held ? sk_proxy_parse(sk_buf_head(in), sk_buf_size(in), &h, &err)
                  : sk_proxy_parse(*data, *n, &h, &err);
    if (rc < 0)
        return proxy_fail(s, err);
    if (rc == 0) {
        if (!held && sk_buf_append(in, *data, *n) < 0)
            return proxy_fail(s, SK_PROXY_FAILED);
        return 0;
    }
    if (held) {
        sk_buf_consume(in, (size_t)rc);
        if (sk_buf_size(in) == 0)
            sk_buf_free(in);
        *data = NULL;
        *n = 0;
    } else {
        *data += rc;
        *n -= (size_t)rc;
    }
    admit(s, &h, via);
    return 1;
}

void sk__proxy_closing(struct sk_server_conn *s, enum sk_close_reason why)
{
    struct sk__worker *w = sk__conn_worker(s);
    enum sk_proxy_error e = (enum sk_proxy_error)s->proxy_err;
    if (e == SK_PROXY_OK) {
        if (why == SK_CLOSE_IDLE)
            e = SK_PROXY_TIMEOUT;
        else if (why == SK_CLOSE_SHUTDOWN)
            e = SK_PROXY_SHUTDOWN;
        else if (why == SK_CLOSE_EOF || why == SK_CLOSE_RESET)
            e = sk_buf_size(&s->st.in) ? SK_PROXY_TRUNCATED : SK_PROXY_MISSING;
        else
            e = SK_PROXY_FAILED;
    }
    sk__count(&w->ctr->proxy_errors, 1);
    sk__server_event(w->srv, &(struct sk_server_event){
        .kind = SK_SERVER_PROXY_ERROR, .peer = (struct sockaddr *)&s->peer, .proxy_error = e,
        .worker = (unsigned)(w - w->srv->workers)});
}
