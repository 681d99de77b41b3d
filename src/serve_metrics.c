/* sockit serve --metrics: a minimal HTTP/1.x endpoint for Prometheus.
 *
 * It speaks only enough HTTP to be scraped: a request head of at most
 * REQUEST_MAX bytes (its body, if any, is ignored), then one response and
 * the close (Connection: close). GET /metrics (any query) gets the text
 * exposition (metrics_text.c); another path 404, another method 405, a
 * request line that is not "METHOD TARGET HTTP/1.x" 400, a head over
 * REQUEST_MAX 431. Each connection has DEADLINE_MS from its accept to its
 * close, however it trickles; at most SCRAPES_MAX are served at once (the
 * next are closed at accept), so a hostile peer holds no more than that
 * many fds and buffers, for no longer than that.
 *
 * Its own thread and loop, not a worker's nor the main thread: a scrape
 * must not delay sessions (the workers' loops are the server's hot path),
 * and the main thread is in sigwait. The statistics are read with
 * sk_server_stats_read, which takes no lock: scraping costs the workers
 * nothing. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics_text.h"
#include "serve_metrics.h"

#define REQUEST_MAX 8192
#define DEADLINE_MS 5000
#define SCRAPES_MAX 16
#define ACCEPT_BATCH 16
#define ACCEPT_RETRY_MS 100 /* out of fds: accepting pauses this long */

struct serve_metrics {
    struct sk_server *srv;
    struct sk_loop *loop;
    struct sk_stream_group *g;
    struct sk_io listen_io;
    int lfd;
    struct sk_timer accept_retry;
    unsigned nscrapes; /* open (not closed) scrapes */
    pthread_t thread;
    bool running;
};

/* One scraper's connection. */
struct scrape {
    struct sk_stream st; /* its partial request head in st.in */
    struct sk_timer deadline;
    struct serve_metrics *m;
};

/* ---- the request ---- */

static bool tchar(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The head ends with an empty line ("\r\n\r\n", or bare "\n\n" as
 * tolerated by most servers); the scan starts at from, where the previous
 * read left off, so a trickled head is not scanned again and again. */
static bool head_complete(const char *p, size_t n, size_t from)
{
    for (size_t i = from > 3 ? from - 3 : 0; i < n; i++)
        if (p[i] == '\n' && ((i + 1 < n && p[i + 1] == '\n') ||
                             (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')))
            return true;
    return false;
}

/* The status a complete head gets (its request line alone decides). */
static int route(const char *p, size_t n)
{
    const char *end = memchr(p, '\n', n);
    size_t len = (size_t)(end - p);
    if (len > 0 && p[len - 1] == '\r')
        len--;
    size_t m = 0;
    while (m < len && tchar(p[m]))
        m++;
    if (m == 0 || m == len || p[m] != ' ')
        return 400;
    const char *target = p + m + 1;
    const char *sp = memchr(target, ' ', len - m - 1);
    if (!sp || sp == target || *target != '/')
        return 400;
    size_t tlen = (size_t)(sp - target);
    const char *version = sp + 1;
    size_t vlen = len - (size_t)(version - p);
    if (vlen != 8 || memcmp(version, "HTTP/1.", 7) != 0 || version[7] < '0' || version[7] > '9')
        return 400;
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)target[i] <= ' ' || target[i] == 0x7f)
            return 400;
    if (m != 3 || memcmp(p, "GET", 3) != 0)
        return 405;
    const char *q = memchr(target, '?', tlen);
    size_t plen = q ? (size_t)(q - target) : tlen;
    return plen == 8 && memcmp(target, "/metrics", 8) == 0 ? 200 : 404;
}

/* ---- the response ---- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    default: return "Internal Server Error";
    }
}

/* The body of status (the metrics for 200) into body; the status it has
 * (500 when the metrics do not fit in memory). */
static int build_body(struct serve_metrics *m, int status, struct sk_buf *body)
{
    if (status == 200) {
        struct sk_server_stats st;
        sk_server_stats_read(m->srv, &st);
        if (metrics_text(body, &st) == 0)
            return 200;
        sk_buf_free(body);
        status = 500;
    }
    char line[64];
    int n = snprintf(line, sizeof line, "%d %s\n", status, reason_phrase(status));
    return sk_buf_append(body, line, (size_t)n) == 0 ? status : -1;
}

/* Sends the response of status, then the FIN; the stream closes once the
 * scraper has closed too (or the linger, or the deadline, has passed). */
static void respond(struct scrape *c, int status)
{
    SK_AUTO(sk_buf_free) struct sk_buf body = {0};
    SK_AUTO(sk_buf_free) struct sk_buf resp = {0};
    status = build_body(c->m, status, &body);
    char head[256];
    int n = status < 0 ? -1
        : snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                   "Connection: close\r\n\r\n",
                   status, reason_phrase(status),
                   status == 200 ? METRICS_TEXT_TYPE : "text/plain; charset=utf-8",
                   sk_buf_size(&body), status == 405 ? "Allow: GET\r\n" : "");
    /* One buffer, one send: a second small one would wait for an ACK. */
    if (n < 0 || (size_t)n >= sizeof head || sk_buf_append(&resp, head, (size_t)n) < 0 ||
        sk_buf_append(&resp, sk_buf_head(&body), sk_buf_size(&body)) < 0) {
        sk_stream_close(&c->st, SK_CLOSE_ERROR);
        return;
    }
    if (sk_stream_shutdown(&c->st, SK_CLOSE_END, sk_buf_head(&resp), sk_buf_size(&resp)) == 0)
        sk_stream_flush(&c->st);
}

/* ---- the scrape's stream ---- */

static bool scrape_read(struct sk_stream *st, const char *data, size_t n)
{
    struct scrape *c = SK_CONTAINER_OF(st, struct scrape, st);
    if (n == 0) { /* the scraper's FIN before a complete head: nothing to answer */
        sk_stream_close(st, SK_CLOSE_EOF);
        return false;
    }
    size_t had = sk_buf_size(&st->in);
    size_t take = n < REQUEST_MAX - had ? n : REQUEST_MAX - had;
    if (sk_buf_append(&st->in, data, take) < 0) {
        sk_stream_close(st, SK_CLOSE_ERROR);
        return false;
    }
    const char *p = sk_buf_head(&st->in);
    size_t len = sk_buf_size(&st->in);
    if (head_complete(p, len, had))
        respond(c, route(p, len));
    else if (len == REQUEST_MAX)
        respond(c, 431);
    else
        return true;
    return false;
}

/* Not called once the response is out (the stream's linger takes over):
 * until then, reading goes on. */
static void scrape_flushed(struct sk_stream *st)
{
    sk_stream_update(st, true);
}

static void scrape_closing(struct sk_stream *st, enum sk_close_reason why)
{
    (void)why;
    struct scrape *c = SK_CONTAINER_OF(st, struct scrape, st);
    sk_timer_stop(c->m->loop, &c->deadline);
    c->m->nscrapes--;
}

static void scrape_release(struct sk_stream *st)
{
    free(SK_CONTAINER_OF(st, struct scrape, st));
}

static const struct sk_stream_cbs scrape_cbs = {
    .read = scrape_read,
    .flushed = scrape_flushed,
    .close = scrape_closing,
    .release = scrape_release,
};

/* The whole exchange took too long (a silent or trickling scraper, or one
 * that does not read): closed, released at the group's next event. */
static void deadline_cb(struct sk_loop *loop, struct sk_timer *t)
{
    (void)loop;
    sk_stream_close(&SK_CONTAINER_OF(t, struct scrape, deadline)->st, SK_CLOSE_IDLE);
}

/* ---- accepting ---- */

static void accept_cb(struct sk_loop *loop, struct sk_io *io, unsigned events);

static void accept_retry_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct serve_metrics *m = SK_CONTAINER_OF(t, struct serve_metrics, accept_retry);
    if (sk_io_start(loop, &m->listen_io, m->lfd, SK_READ, accept_cb) < 0)
        sk_timer_start(loop, t, ACCEPT_RETRY_MS, accept_retry_cb);
}

static void accept_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)events;
    struct serve_metrics *m = SK_CONTAINER_OF(io, struct serve_metrics, listen_io);
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Level-triggered: watching on would spin. */
                sk_io_stop(loop, io);
                sk_timer_start(loop, &m->accept_retry, ACCEPT_RETRY_MS, accept_retry_cb);
            }
            return;
        }
        struct scrape *c = m->nscrapes < SCRAPES_MAX ? calloc(1, sizeof *c) : NULL;
        if (!c) { /* over the limit (or out of memory): closed unanswered */
            close(fd);
            continue;
        }
        if (sk_stream_open(m->g, &c->st, fd) < 0) { /* fd closed by it */
            free(c);
            continue;
        }
        c->m = m;
        m->nscrapes++;
        sk_timer_start(loop, &c->deadline, DEADLINE_MS, deadline_cb);
    }
}

/* ---- the thread ---- */

static void *metrics_main(void *arg)
{
    struct serve_metrics *m = arg;
    sk_loop_run(m->loop); /* until serve_metrics_free stops it */
    return NULL;
}

void serve_metrics_free(struct serve_metrics *m)
{
    if (!m)
        return;
    if (m->running) {
        sk_loop_stop(m->loop);
        pthread_join(m->thread, NULL);
    }
    /* The thread is gone: its loop is this thread's now. */
    sk_stream_group_free(m->g);
    if (m->loop) {
        sk_io_stop(m->loop, &m->listen_io);
        sk_timer_stop(m->loop, &m->accept_retry);
        sk_loop_free(m->loop);
    }
    if (m->lfd >= 0)
        close(m->lfd);
    free(m);
}

/* Binds, makes the loop and its group, starts the thread; addr gets the
 * bound address. Whatever it made is released by serve_metrics_free. */
static int metrics_open(struct serve_metrics *m, const struct sk_endpoint *ep, char *addr,
                        size_t addrlen)
{
    m->lfd = sk_listen(ep, SOCK_STREAM, 0);
    if (m->lfd < 0)
        return m->lfd;
    int rc = 0;
    if (!(m->loop = sk_loop_new(&rc)))
        return rc;
    /* No idle limit: each scrape has its own deadline, progress or not. */
    if (!(m->g = sk_stream_group_new(m->loop, &scrape_cbs, NULL, &rc)))
        return rc;
    if ((rc = sk_io_start(m->loop, &m->listen_io, m->lfd, SK_READ, accept_cb)) < 0)
        return rc;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(m->lfd, (struct sockaddr *)&ss, &len) < 0)
        return SK_ERR(errno);
    sk_addr_format((struct sockaddr *)&ss, addr, addrlen);
    int e = pthread_create(&m->thread, NULL, metrics_main, m);
    if (e != 0)
        return SK_ERR(e);
    m->running = true;
    return 0;
}

int serve_metrics_start(const struct sk_endpoint *ep, struct sk_server *srv,
                        const struct serve_log *sl, struct serve_metrics **out)
{
    struct serve_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return SK_ERR(ENOMEM);
    m->srv = srv;
    m->lfd = -1;
    char addr[SK_ADDRSTR_MAX];
    int rc = metrics_open(m, ep, addr, sizeof addr);
    if (rc < 0) {
        serve_metrics_free(m);
        return rc;
    }
    serve_log_metrics(sl, addr);
    *out = m;
    return 0;
}
