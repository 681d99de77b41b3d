/* Server engine lifecycle: listeners, worker threads, accept, shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc_int.h"
#include "internal.h"
#include "server_int.h"
#include "sockit/err.h"
#include "tls_int.h"

#define ACCEPT_BATCH 64
#define ACCEPT_RETRY_MS 100
#define STOP_RESEND_MS 100

/* The largest dgram_headroom (a slot is that much bigger per datagram). */
#define DGRAM_HEADROOM_MAX 1024

void sk__server_event(const struct sk_server *srv, const struct sk_server_event *ev)
{
    if (srv->cfg.on_event)
        srv->cfg.on_event(srv->cfg.event_user, ev);
}

static void fill_defaults(struct sk_server_config *cfg)
{
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (unsigned)n : 1;
    }
    /* The system's maximum: listen() silently caps the backlog at
     * net.core.somaxconn, which may be above the SOMAXCONN constant (4096)
     * that sk_listen would otherwise use. */
    if (cfg->backlog <= 0)
        cfg->backlog = INT_MAX;
    if (cfg->max_msg == 0)
        cfg->max_msg = SK_MSG_MAX_DEFAULT;
    if (cfg->out_pause == 0)
        cfg->out_pause = 256 * 1024;
    if (cfg->out_limit == 0)
        cfg->out_limit = 4 * 1024 * 1024;
    if (cfg->grace_ms == 0)
        cfg->grace_ms = 2000;
}

#define UDP_RCVBUF (2 << 20)

/* Binds one endpoint: one socket shared by all workers, or with reuseport
 * one per worker (the first may pick the port; the others take the same). */
static int bind_endpoint(struct sk_server *srv, struct sk_endpoint ep, int type)
{
    const struct sk_server_config *cfg = &srv->cfg;
    unsigned copies = cfg->reuseport ? cfg->workers : 1;
    unsigned flags = cfg->reuseport ? SK_LISTEN_REUSEPORT : 0;
    for (unsigned k = 0; k < copies; k++) {
        int fd = sk_listen_ex(&ep, type, type == SOCK_STREAM ? cfg->backlog : 0, flags);
        if (fd < 0)
            return fd;
        if (type == SOCK_DGRAM) {
            /* A burst of small datagrams overflows the default 208 KiB
             * (each costs about 1 KiB of it on loopback): ask for more,
             * as far as net.core.rmem_max allows. Best effort. */
            int rcvbuf = UDP_RCVBUF;
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        }
        srv->listeners[srv->nlisteners++] = (struct sk__listener){
            .fd = fd, .udp = type == SOCK_DGRAM, .owner = cfg->reuseport ? (int)k : -1};
        struct sockaddr_in6 ss = {0}; /* sin_port and sin6_port share their offset */
        socklen_t sl = sizeof ss;
        if (ep.port == 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
            ep.port = ntohs(ss.sin6_port);
    }
    return ep.port;
}

static int bind_all(struct sk_server *srv, size_t *failed_at)
{
    const struct sk_server_config *cfg = &srv->cfg;
    size_t want = cfg->nlisten * (cfg->udp ? 2 : 1) * (cfg->reuseport ? cfg->workers : 1);
    srv->listeners = sk__calloc(want, sizeof *srv->listeners);
    if (!srv->listeners)
        return SK_ERR(ENOMEM);
    for (size_t i = 0; i < cfg->nlisten; i++) {
        struct sk_endpoint ep = cfg->listen[i];
        int port = bind_endpoint(srv, ep, SOCK_STREAM);
        if (port >= 0 && cfg->udp) {
            /* UDP on the same port as TCP, also when TCP picked it (port 0). */
            ep.port = (unsigned short)port;
            port = bind_endpoint(srv, ep, SOCK_DGRAM);
        }
        if (port < 0) {
            if (failed_at)
                *failed_at = i;
            return port;
        }
    }
    return 0;
}

/* The inherited sockets become the listeners, all of them before anything
 * can fail: from here on sk_server_free closes them. */
static int adopt_all(struct sk_server *srv, size_t *failed_at)
{
    const struct sk_server_config *cfg = &srv->cfg;
    srv->listeners = sk__calloc(cfg->ninherited, sizeof *srv->listeners);
    if (!srv->listeners) {
        for (size_t i = 0; i < cfg->ninherited; i++)
            close(cfg->inherited[i].fd);
        return SK_ERR(ENOMEM);
    }
    for (size_t i = 0; i < cfg->ninherited; i++) {
        srv->listeners[srv->nlisteners++] = (struct sk__listener){
            .fd = cfg->inherited[i].fd, .udp = cfg->inherited[i].udp, .owner = -1,
            .inherited = true};
        srv->udp |= cfg->inherited[i].udp;
    }
    /* The workers' accept and receive loops stop at EAGAIN; systemd passes
     * blocking sockets unless NonBlocking=yes. */
    for (size_t i = 0; i < cfg->ninherited; i++) {
        int fd = cfg->inherited[i].fd;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) {
            if (failed_at)
                *failed_at = i;
            return SK_ERR(errno);
        }
    }
    return 0;
}

static bool config_ok(const struct sk_server_config *cfg)
{
    bool some_udp = cfg->udp;
    for (size_t i = 0; i < cfg->ninherited && i < SK_SERVER_MAX_LISTEN; i++)
        some_udp |= cfg->inherited[i].udp;
    return (cfg->nlisten == 0) != (cfg->ninherited == 0) && cfg->nlisten <= SK_SERVER_MAX_LISTEN &&
           cfg->ninherited <= SK_SERVER_MAX_LISTEN &&
           !(cfg->ninherited && (cfg->reuseport || cfg->udp)) && cfg->proto.message &&
           (!some_udp || cfg->proto.datagram) && cfg->dgram_headroom <= DGRAM_HEADROOM_MAX &&
           (!cfg->tls || sk__tls_ctx_is_server(cfg->tls));
}

int sk_server_new(const struct sk_server_config *cfg, struct sk_server **out, size_t *failed_at)
{
    bool ok = config_ok(cfg);
    struct sk_server *srv = ok ? sk__calloc(1, sizeof *srv) : NULL;
    struct sk_server_config full = *cfg;
    fill_defaults(&full);
    /* Here, not at start: sk_server_stats_read may run from new to free. */
    struct sk__counters *counters = srv ? sk__calloc(full.workers, sizeof *counters) : NULL;
    if (!counters) {
        /* Ownership of the inherited sockets is taken in every case. */
        for (size_t i = 0; i < cfg->ninherited && i < SK_SERVER_MAX_LISTEN; i++)
            close(cfg->inherited[i].fd);
        free(srv);
        return ok ? SK_ERR(ENOMEM) : SK_EUSAGE;
    }
    srv->cfg = full;
    srv->counters = counters;
    srv->udp = cfg->udp;
    pthread_mutex_init(&srv->tls_lock, NULL);
    if (srv->cfg.tls)
        sk_tls_ctx_ref(srv->cfg.tls); /* the server's own (sk_server_set_tls) */
    int rc = cfg->ninherited ? adopt_all(srv, failed_at) : bind_all(srv, failed_at);
    if (rc < 0) {
        sk_server_free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

/* The i-th listener with a distinct address: with reuseport, worker 0's
 * socket stands for its siblings. */
static const struct sk__listener *nth_address(const struct sk_server *srv, size_t i)
{
    for (size_t k = 0; k < srv->nlisteners; k++)
        if (srv->listeners[k].owner <= 0 && i-- == 0)
            return &srv->listeners[k];
    return NULL;
}

size_t sk_server_nsockets(const struct sk_server *srv)
{
    size_t n = 0;
    for (size_t k = 0; k < srv->nlisteners; k++)
        n += srv->listeners[k].owner <= 0;
    return n;
}

int sk_server_socket_addr(const struct sk_server *srv, size_t i, char *buf, size_t len, bool *udp)
{
    const struct sk__listener *l = nth_address(srv, i);
    if (!l)
        return SK_EUSAGE;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) < 0)
        return SK_ERR(errno);
    sk_addr_format((struct sockaddr *)&ss, buf, len);
    if (udp)
        *udp = l->udp;
    return 0;
}

/* ---- accepting ---- */

static void listen_cb(struct sk_loop *loop, struct sk_io *io, unsigned events);

/* Registers a worker's handle on a listener: a shared socket wakes one
 * worker per event (EPOLLEXCLUSIVE), a worker's own socket is plain. */
static int listen_register(struct sk__worker *w, struct sk__listen_handle *h)
{
    if (h->l->owner < 0)
        return sk_io_start_exclusive(w->loop, &h->io, h->l->fd, listen_cb);
    return sk_io_start(w->loop, &h->io, h->l->fd, SK_READ, listen_cb);
}

static void accept_retry_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk__worker *w = SK_CONTAINER_OF(t, struct sk__worker, accept_retry);
    if (w->g.stopping)
        return;
    bool again = false;
    for (size_t i = 0; i < w->srv->nlisteners; i++) {
        struct sk__listen_handle *h = &w->lh[i];
        if (!h->backoff)
            continue;
        if (listen_register(w, h) == 0) {
            h->active = true;
            h->backoff = false;
        } else {
            again = true;
        }
    }
    if (again)
        sk_timer_start(loop, &w->accept_retry, ACCEPT_RETRY_MS, accept_retry_cb);
}

/* Out of fds: stop watching the listeners for a moment instead of spinning
 * on a readiness we cannot act on. The handles are removed from the loop
 * and added back later: an EPOLLEXCLUSIVE registration cannot be modified
 * (EPOLL_CTL_MOD fails with EINVAL), so merely clearing its interest left
 * the listener armed and the worker spinning on accept. One log line per
 * episode, not one per retry. */
static void accept_backoff(struct sk__worker *w, int err)
{
    for (size_t i = 0; i < w->srv->nlisteners; i++) {
        struct sk__listen_handle *h = &w->lh[i];
        if (h->active && !h->l->udp) {
            sk_io_stop(w->loop, &h->io);
            h->active = false;
            h->backoff = true;
        }
    }
    if (!w->fd_starved) {
        w->fd_starved = true;
        sk__server_event(w->srv, &(struct sk_server_event){
            .kind = SK_SERVER_ACCEPT_PAUSED, .err = err, .retry_ms = ACCEPT_RETRY_MS,
            .worker = (unsigned)(w - w->srv->workers)});
    }
    if (!sk_timer_armed(&w->accept_retry))
        sk_timer_start(w->loop, &w->accept_retry, ACCEPT_RETRY_MS, accept_retry_cb);
}

static void refuse(struct sk__worker *w, int fd)
{
    /* Best effort: the socket is fresh, so the line fits in its buffer. */
    const char *line = w->srv->cfg.proto.busy_reply;
    if (line) {
        ssize_t n = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
    /* A close with unread input sends a reset instead of a FIN, and a reset
     * can destroy the line before the peer reads it: send our FIN first and
     * discard what the peer already sent (a few reads, never blocking). */
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 4 && recv(fd, w->g.rbuf, w->g.lim.read_size, MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
}

static void accept_some(struct sk__worker *w, int lfd)
{
    size_t max = w->srv->cfg.max_conns;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_backoff(w, errno);
            return; /* EAGAIN: drained */
        }
        if (w->fd_starved) {
            w->fd_starved = false;
            sk__server_event(w->srv, &(struct sk_server_event){
                .kind = SK_SERVER_ACCEPT_RESUMED, .worker = (unsigned)(w - w->srv->workers)});
        }
        /* A slot from the accept on, also while a PROXY header or a TLS
         * handshake is awaited: a flood of connections that never get that
         * far is bounded too. */
        size_t open = atomic_fetch_add(&w->srv->open_sessions, 1) + 1;
        if (max && open > max) {
            atomic_fetch_sub(&w->srv->open_sessions, 1);
            /* Counted before the event: whoever sees the log line or the
             * busy reply finds the counter already moved. */
            sk__count(&w->ctr->refused, 1);
            sk__server_event(w->srv, &(struct sk_server_event){
                .kind = SK_SERVER_REFUSE, .peer = (struct sockaddr *)&peer, .limit = max,
                .worker = (unsigned)(w - w->srv->workers)});
            refuse(w, fd);
            continue;
        }
        sk__session_accepted(w, fd, (struct sockaddr *)&peer);
    }
}

static void listen_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)loop;
    (void)events;
    struct sk__listen_handle *h = SK_CONTAINER_OF(io, struct sk__listen_handle, io);
    if (h->l->udp)
        sk__udp_readable(h->w, h->l->fd);
    else
        accept_some(h->w, h->l->fd);
}

/* ---- workers ---- */

/* Also on a worker whose start failed part-way: w->lh may be NULL. */
static void stop_listening(struct sk__worker *w)
{
    for (size_t i = 0; w->lh && i < w->srv->nlisteners; i++) {
        if (w->lh[i].active)
            sk_io_stop(w->loop, &w->lh[i].io);
        w->lh[i].active = false;
        w->lh[i].backoff = false;
    }
    sk_timer_stop(w->loop, &w->accept_retry);
}

static void grace_cb(struct sk_loop *loop, struct sk_timer *t)
{
    struct sk__worker *w = SK_CONTAINER_OF(t, struct sk__worker, grace_timer);
    (void)loop;
    sk__stream_group_close_all(&w->g, SK_CLOSE_SHUTDOWN);
}

static void stop_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    struct sk__worker *w = SK_CONTAINER_OF(io, struct sk__worker, stop_io);
    (void)events;
    uint64_t v;
    ssize_t n = read(w->stop_fd, &v, sizeof v);
    (void)n;
    if (w->g.stopping)
        return;
    atomic_store(&w->stop_seen, true);
    sk_io_stop(loop, &w->stop_io);
    stop_listening(w);
    sk__stream_group_drain(&w->g); /* sets g.stopping */
    /* Sessions still flushing get the grace period; the loop ends by itself
     * once the last handle is gone. */
    if (!sk__worker_has_sessions(w))
        sk_timer_stop(loop, &w->delay_timer);
    else
        sk_timer_start(loop, &w->grace_timer, w->srv->cfg.grace_ms, grace_cb);
}

static void *worker_main(void *arg)
{
    struct sk__worker *w = arg;
    sk_loop_run(w->loop);
    return NULL;
}

static void worker_free(struct sk__worker *w)
{
    if (w->loop) {
        stop_listening(w);
        if (!w->g.stopping && w->stop_fd >= 0)
            sk_io_stop(w->loop, &w->stop_io);
        sk__stream_group_fini(&w->g, SK_CLOSE_SHUTDOWN);
        sk_timer_stop(w->loop, &w->delay_timer);
        sk_timer_stop(w->loop, &w->grace_timer);
        sk_loop_free(w->loop);
        w->loop = NULL;
    }
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    w->stop_fd = -1;
    sk__udp_worker_free(w);
    sk_buf_free(&w->wbuf);
    free(w->lh);
    w->lh = NULL;
}

static int worker_init(struct sk_server *srv, struct sk__worker *w)
{
    int rc = 0;
    w->srv = srv;
    w->stop_fd = -1;
    w->ctr = &srv->counters[w - srv->workers];
    w->loop = sk_loop_new(&rc);
    if (!w->loop)
        return rc;
    if ((rc = sk__worker_streams_init(w)) < 0)
        return rc;
    w->lh = sk__calloc(srv->nlisteners, sizeof *w->lh);
    if (!w->lh)
        return SK_ERR(ENOMEM);
    w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->stop_fd < 0)
        return SK_ERR(errno);
    rc = sk_io_start(w->loop, &w->stop_io, w->stop_fd, SK_READ, stop_cb);
    if (rc < 0)
        return rc;
    if (srv->udp && (rc = sk__udp_worker_init(w)) < 0)
        return rc;
    int self = (int)(w - srv->workers);
    for (size_t i = 0; i < srv->nlisteners; i++) {
        w->lh[i].w = w;
        w->lh[i].l = &srv->listeners[i];
        if (srv->listeners[i].owner >= 0 && srv->listeners[i].owner != self)
            continue; /* another worker's own socket */
        rc = listen_register(w, &w->lh[i]);
        if (rc < 0)
            return rc;
        w->lh[i].active = true;
    }
    return 0;
}

/* Joins a worker's thread. A stop that was asked for is resent every
 * STOP_RESEND_MS until the thread has gone: one failed eventfd write must
 * not leave a worker running for ever (and the process deaf to SIGTERM). */
static void join_worker(struct sk__worker *w, bool (*resend)(struct sk__worker *))
{
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += STOP_RESEND_MS * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        if (pthread_timedjoin_np(w->thread, NULL, &ts) != ETIMEDOUT)
            return;
        if (resend(w))
            sk__server_event(w->srv, &(struct sk_server_event){
                .kind = SK_SERVER_STOP_RESENT, .worker = (unsigned)(w - w->srv->workers)});
    }
}

static bool resend_loop_stop(struct sk__worker *w)
{
    sk_loop_stop(w->loop);
    return false;
}

static bool resend_server_stop(struct sk__worker *w)
{
    if (!atomic_load(&w->srv->stop_requested) || atomic_load(&w->stop_seen))
        return false;
    sk__eventfd_post(w->stop_fd);
    return true;
}

int sk_server_start(struct sk_server *srv)
{
    if (srv->started)
        return SK_EUSAGE;
    srv->workers = sk__calloc(srv->cfg.workers, sizeof *srv->workers);
    if (!srv->workers)
        return SK_ERR(ENOMEM);
    int rc = 0;
    for (unsigned i = 0; i < srv->cfg.workers && rc == 0; i++) {
        srv->workers[i].stop_fd = -1;
        rc = worker_init(srv, &srv->workers[i]);
        srv->nworkers = i + 1;
    }
    /* Worker threads take no signals: the caller's thread handles them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    unsigned started = 0;
    for (; rc == 0 && started < srv->nworkers; started++) {
        int e = pthread_create(&srv->workers[started].thread, NULL, worker_main,
                               &srv->workers[started]);
        if (e != 0)
            rc = SK_ERR(e);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0) {
        /* Stop and join the threads that did start, then free everything. */
        for (unsigned i = 0; i < started; i++) {
            sk_loop_stop(srv->workers[i].loop);
            join_worker(&srv->workers[i], resend_loop_stop);
        }
        for (unsigned i = 0; i < srv->nworkers; i++)
            worker_free(&srv->workers[i]);
        free(srv->workers);
        srv->workers = NULL;
        srv->nworkers = 0;
        return rc;
    }
    srv->started = true;
    return 0;
}

void sk_server_set_shutdown_reply(struct sk_server *srv, const char *line)
{
    srv->shutdown_reply = line;
}

void sk_server_stop(struct sk_server *srv)
{
    /* Stop accepting at once, not when the last session has gone: a TCP
     * listener that is shut down leaves the LISTEN state, so new connects
     * are refused and those still queued in the backlog are reset instead
     * of hanging until exit. The fd stays valid (a worker may be in accept4
     * on it: that returns EINVAL) and is closed by sk_server_free. Not an
     * inherited socket: the service manager's copy must stay listening for
     * the next process (shutdown acts on the socket, not on our fd).
     * Before the workers hear of the stop: a worker drains at once, and a
     * peer told by the drain's line to go elsewhere may connect again
     * before this thread runs on; with --reuseport on a shared port the
     * kernel could still queue it here, to be reset by this shutdown. */
    for (size_t i = 0; i < srv->nlisteners; i++)
        if (!srv->listeners[i].udp && !srv->listeners[i].inherited)
            shutdown(srv->listeners[i].fd, SHUT_RDWR);
    /* A failed post is resent by sk_server_wait (join_worker). */
    atomic_store(&srv->stop_requested, true);
    for (unsigned i = 0; i < srv->nworkers; i++)
        sk__eventfd_post(srv->workers[i].stop_fd);
}

int sk_server_wait(struct sk_server *srv, struct sk_server_stats *stats)
{
    if (!srv->started)
        return SK_EUSAGE;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        join_worker(&srv->workers[i], resend_server_stop);
        worker_free(&srv->workers[i]);
    }
    free(srv->workers);
    srv->workers = NULL;
    srv->nworkers = 0;
    srv->started = false;
    atomic_store(&srv->stop_requested, false);
    return sk_server_stats_read(srv, stats); /* the last sessions' closes included */
}

void sk_server_free(struct sk_server *srv)
{
    if (!srv)
        return;
    for (size_t i = 0; i < srv->nlisteners; i++)
        close(srv->listeners[i].fd);
    free(srv->listeners);
    free(srv->counters);
    sk_tls_ctx_free(srv->cfg.tls);
    pthread_mutex_destroy(&srv->tls_lock);
    free(srv);
}
