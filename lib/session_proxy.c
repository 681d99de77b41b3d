/* --proxy-protocol: a session's first bytes are a PROXY header naming the
 * client (sockit/proxy.h). Until the header is complete the session is
 * not open: no open callback (no greeting), no open event, no --max-conns
 * slot; its partial header waits in st.in (at most SK_PROXY_HEADER_MAX
 * bytes: the parser decides within them). The deadline is the group's idle
 * one (session.c's idle callback spares no waiting session). */
#include <string.h>

#include "server_int.h"

static void proxy_event(struct sk__worker *w, const struct sk_server_event *ev)
{
    struct sk_server_event e = *ev;
    e.worker = (unsigned)(w - w->srv->workers);
    sk__server_event(w->srv, &e);
}

static int proxy_fail(struct sk_server_conn *s, enum sk_proxy_error why)
{
    s->proxy_err = (unsigned)why & 0x1F;
    sk_stream_close(&s->st, SK_CLOSE_ERROR);
    return -1;
}

/* The header is done: the client becomes the peer, and the session takes
 * its --max-conns slot now (the refusal names the client). Returns false
 * when refused: the busy line, then the FIN, as at accept. */
static bool admit(struct sk_server_conn *s, const struct sk_proxy_header *h,
                  struct sockaddr_in6 *via)
{
    struct sk__worker *w = sk__conn_worker(s);
    via->sin6_family = AF_UNSPEC;
    /* A UNIX client has no address a TCP peer can hold: like LOCAL, the
     * connection's own endpoints stand. */
    int fam = h->local ? AF_UNSPEC : h->src.ss_family;
    if (fam == AF_INET || fam == AF_INET6) {
        *via = s->peer;
        memcpy(&s->peer, &h->src,
               fam == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    }
    size_t max = w->srv->cfg.max_conns;
    size_t open = atomic_fetch_add(&w->srv->open_sessions, 1) + 1;
    if (!max || open <= max) {
        s->proxy = SK__PROXY_NONE;
        return true;
    }
    atomic_fetch_sub(&w->srv->open_sessions, 1);
    s->proxy = SK__PROXY_REFUSED;
    sk__count(&w->ctr->refused, 1);
    proxy_event(w, &(struct sk_server_event){
        .kind = SK_SERVER_REFUSE, .peer = (struct sockaddr *)&s->peer, .limit = max});
    sk_buf_free(&s->st.in);
    const char *line = w->srv->cfg.proto.busy_reply;
    if (sk_stream_shutdown(&s->st, SK_CLOSE_END, line, line ? strlen(line) : 0) == 0)
        sk_stream_flush(&s->st);
    return false;
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
    return admit(s, &h, via) ? 1 : -1;
}

void sk__proxy_closing(struct sk_server_conn *s, enum sk_close_reason why)
{
    struct sk__worker *w = sk__conn_worker(s);
    if (s->proxy == SK__PROXY_REFUSED)
        return; /* reported, and its slot given back, when refused */
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
    proxy_event(w, &(struct sk_server_event){
        .kind = SK_SERVER_PROXY_ERROR, .peer = (struct sockaddr *)&s->peer, .proxy_error = e});
}
