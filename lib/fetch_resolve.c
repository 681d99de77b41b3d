/* Name resolution for the HTTP client: a URL's host to the addresses its
 * connect tries (sk_endpoint_resolve), with the client's messages.
 *
 * A run remembers what it resolved (struct sk__fetch_dns: a parallel run's
 * transfers share one, a single transfer has its own for its redirects and
 * retries): the same host and port are looked up once per run, a failure
 * is not kept (the next attempt asks again), and nothing outlives the run.
 *
 * In a parallel run getaddrinfo(3) would stop every transfer while it
 * waits for the name service, so a name (not an address literal) is looked
 * up on a thread of its own; the thread hands the result to the run's loop
 * through an eventfd and the transfer waits on the loop like its other
 * phases, so a signal or its deadline ends the wait. The thread works on a
 * heap copy of the name that it frees itself when the run is gone first:
 * it never touches the run's memory. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fetch_int.h"

#define DNS_MAX 64 /* names a run remembers; the least recently used goes */

/* What a lookup thread shares with its run: freed by the last of the two. */
struct lookup {
    struct sk_endpoint ep;
    struct addrinfo *ai;
    int rc;
    int fd;             /* eventfd, written by the thread when it is done */
    atomic_bool done;   /* ep, ai and rc are the thread's no more */
    atomic_int holders; /* the thread and the run */
};

struct sk__fetch_dns_entry {
    struct sk__fetch_dns *dns;
    char host[SK_HOST_MAX];
    unsigned port;
    bool used;          /* the slot holds a name */
    bool done;          /* rc and ai are the lookup's result */
    int rc;
    struct addrinfo *ai;
    struct lookup *job; /* the thread's, while it runs */
    struct sk_io io;    /* job->fd on the run's loop */
    uint64_t last;      /* when last asked for */
};

struct sk__fetch_dns {
    struct sk_loop *loop; /* NULL: lookups block */
    uint64_t tick;
    unsigned lookups;     /* made (for the tests) */
    struct sk__fetch_dns_entry e[DNS_MAX];
};

static void lookup_release(struct lookup *job)
{
    if (atomic_fetch_sub(&job->holders, 1) != 1)
        return;
    if (job->ai)
        freeaddrinfo(job->ai);
    if (job->fd >= 0)
        close(job->fd);
    free(job);
}

static void *lookup_thread(void *arg)
{
    struct lookup *job = arg;
    job->rc = sk_endpoint_resolve(&job->ep, SOCK_STREAM, 0, &job->ai);
    atomic_store_explicit(&job->done, true, memory_order_release);
    /* The run waits for this write: a failure (none is known for an
     * eventfd that is written once) is tried again. */
    uint64_t one = 1;
    for (int tries = 0; tries < 3; tries++)
        if (write(job->fd, &one, sizeof one) == (ssize_t)sizeof one)
            break;
    lookup_release(job);
    return NULL;
}

static void entry_fill(struct sk__fetch_dns_entry *e, int rc, struct addrinfo *ai)
{
    e->rc = rc;
    e->ai = ai;
    e->done = true;
}

/* The thread's result came: into the entry, and every waiter looks. */
static void on_lookup(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)events;
    struct sk__fetch_dns_entry *e = SK_CONTAINER_OF(io, struct sk__fetch_dns_entry, io);
    struct lookup *job = e->job;
    uint64_t count;
    if (!atomic_load_explicit(&job->done, memory_order_acquire) ||
        (read(job->fd, &count, sizeof count) < 0 && errno == EAGAIN))
        return; /* not yet */
    sk_io_stop(loop, io);
    /* The thread wrote: it uses the eventfd no more, and the run closes it
     * now (the thread may still be on its way out when the program exits). */
    close(job->fd);
    job->fd = -1;
    e->job = NULL;
    entry_fill(e, job->rc, job->ai);
    job->ai = NULL;
    lookup_release(job);
    sk_loop_stop(loop);
}

/* The entry's pending lookup is dropped: the thread frees its part. */
static void entry_abandon(struct sk__fetch_dns_entry *e)
{
    if (!e->job)
        return;
    sk_io_stop(e->dns->loop, &e->io);
    lookup_release(e->job);
    e->job = NULL;
}

static void entry_clear(struct sk__fetch_dns_entry *e)
{
    entry_abandon(e);
    if (e->ai)
        freeaddrinfo(e->ai);
    e->ai = NULL;
    e->used = e->done = false;
}

static bool is_literal(const char *host)
{
    unsigned char ip[16];
    return inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
}

/* A thread for the lookup of e; false when none could start. */
static bool lookup_start(struct sk__fetch_dns_entry *e)
{
    struct lookup *job = calloc(1, sizeof *job);
    if (!job)
        return false;
    memcpy(job->ep.host, e->host, sizeof job->ep.host);
    job->ep.port = (unsigned short)e->port;
    atomic_init(&job->holders, 2);
    if ((job->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0 ||
        sk_io_start(e->dns->loop, &e->io, job->fd, SK_READ, on_lookup) < 0) {
        if (job->fd >= 0)
            close(job->fd);
        free(job);
        return false;
    }
    /* Signals stay with the program's threads: the lookup's has none. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_attr_t attr;
    pthread_t t;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) {
        (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        (void)pthread_attr_setstacksize(&attr, 256 * 1024);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        rc = pthread_create(&t, &attr, lookup_thread, job);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    if (rc != 0) {
        sk_io_stop(e->dns->loop, &e->io);
        close(job->fd);
        free(job);
        return false;
    }
    e->job = job;
    return true;
}

struct sk__fetch_dns *sk__fetch_dns_new(struct sk_loop *loop)
{
    struct sk__fetch_dns *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->loop = loop;
    for (size_t i = 0; i < DNS_MAX; i++)
        d->e[i].dns = d;
    return d;
}

void sk__fetch_dns_free(struct sk__fetch_dns *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < DNS_MAX; i++)
        entry_clear(&d->e[i]);
    free(d);
}

unsigned sk__fetch_dns_lookups(const struct sk__fetch_dns *d)
{
    return d->lookups;
}

bool sk__fetch_dns_is(const struct sk__fetch_dns_entry *e, const char *host, unsigned port)
{
    return e->used && e->port == port && strcmp(e->host, host) == 0;
}

struct sk__fetch_dns_entry *sk__fetch_dns_get(struct sk__fetch_dns *d, const char *host,
                                              unsigned port)
{
    struct sk__fetch_dns_entry *e = NULL, *free_slot = NULL, *lru = NULL;
    for (size_t i = 0; i < DNS_MAX && !e; i++) {
        struct sk__fetch_dns_entry *x = &d->e[i];
        if (sk__fetch_dns_is(x, host, port))
            e = x;
        else if (!x->used && !free_slot)
            free_slot = x;
        else if (x->used && x->done && (!lru || x->last < lru->last))
            lru = x;
    }
    if (e && !(e->done && e->rc < 0)) { /* a failure is not kept: asked again */
        e->last = ++d->tick;
        return e;
    }
    if (!e && !(e = free_slot ? free_slot : lru))
        return NULL; /* every slot's lookup is under way */
    entry_clear(e);
    snprintf(e->host, sizeof e->host, "%s", host);
    e->port = port;
    e->used = true;
    e->last = ++d->tick;
    d->lookups++;
    if (d->loop && !is_literal(host) && lookup_start(e))
        return e;
    struct sk_endpoint ep = {.port = (unsigned short)port};
    memcpy(ep.host, e->host, sizeof ep.host);
    struct addrinfo *ai = NULL;
    int rc = sk_endpoint_resolve(&ep, SOCK_STREAM, 0, &ai);
    entry_fill(e, rc, ai);
    return e;
}

bool sk__fetch_dns_result(const struct sk__fetch_dns_entry *e, int *rc,
                          const struct addrinfo **ai)
{
    if (!e->done)
        return false;
    *rc = e->rc;
    *ai = e->ai;
    return true;
}

static void on_due(struct sk_loop *loop, struct sk_timer *t)
{
    (void)t;
    sk_loop_stop(loop);
}

/* The run's result for host:port, waited for on the parallel run's loop
 * while a thread looks it up: 0 and *rc, *ai; 1 when the run has no room
 * for it; or a negative code (cancelled, timed out; recorded). */
static int lookup(struct sk_fetch *f, struct sk__fetch_dns *d, const char *host, unsigned port,
                  int *rc, const struct addrinfo **ai)
{
    struct sk__fetch_dns_entry *e = sk__fetch_dns_get(d, host, port);
    if (!e)
        return 1;
    if (sk__fetch_dns_result(e, rc, ai))
        return 0;
    uint64_t due = sk__fetch_deadline(f, f->o.connect_timeout_ms);
    struct sk_timer t = {0};
    if (due)
        sk_timer_start_at(d->loop, &t, due, on_due);
    int err = 0;
    while (e && !sk__fetch_dns_result(e, rc, ai)) {
        if (f->cx->flag) {
            err = sk__fetch_interrupted(f, "resolving");
            break;
        }
        if (due && !sk_timer_armed(&t)) {
            char doing[SK_HOST_MAX + 16];
            snprintf(doing, sizeof doing, "resolving %s", host);
            err = sk_fetch_fail_as(f, SK_ETIMEDOUT, doing);
            break;
        }
        int lrc = sk__fetch_wait(f);
        if (lrc < 0) {
            err = sk_fetch_fail_as(f, lrc, "resolving");
            break;
        }
        if (!sk__fetch_dns_is(e, host, port)) /* the slot went to another name */
            e = sk__fetch_dns_get(d, host, port);
    }
    if (due)
        sk_timer_stop(d->loop, &t);
    return e ? err : 1;
}

int sk__fetch_resolve(struct sk_fetch *f, const struct sk_url *u, const struct addrinfo **out)
{
    *out = NULL;
    struct sk__fetch_dns **slot = sk__fetch_dns_slot(f);
    if (!*slot) /* no memory for it: a lookup of its own */
        *slot = sk__fetch_dns_new(sk__fetch_par_loop(f));
    int rc = 0;
    int w = *slot ? lookup(f, *slot, u->host, u->port, &rc, out) : 1;
    if (w < 0)
        return w;
    if (w > 0) { /* not remembered: the connect frees it (sk__fetch_resolve_put) */
        struct sk_endpoint ep = {.port = u->port};
        _Static_assert(sizeof ep.host == sizeof u->host, "a URL's host fits an endpoint");
        memcpy(ep.host, u->host, sizeof ep.host);
        struct addrinfo *own = NULL;
        rc = sk_endpoint_resolve(&ep, SOCK_STREAM, 0, &own);
        *out = own;
    }
    if (rc == 0)
        return 0;
    *out = NULL;
    if (f->cx->flag)
        return sk__fetch_interrupted(f, "resolving");
    if (rc == SK_ERESOLVE || rc == SK_EUSAGE)
        return sk_fetch_set_error(f, SK_ERESOLVE, "could not resolve %shost %s",
                                  f->px.on ? "proxy " : "", u->host);
    if (rc == SK_ERR(ENOMEM))
        return sk_fetch_fail_as(f, rc, "resolving");
    return sk_fetch_set_error(f, SK_ECONNECT, "cannot connect to %s%s: %s",
                              f->px.on ? "proxy " : "", f->px.on ? f->px.where : f->w.where,
                              sk_strerror(rc));
}

void sk__fetch_resolve_put(struct sk_fetch *f, const struct addrinfo *ai)
{
    const struct sk__fetch_dns *d = *sk__fetch_dns_slot(f);
    for (size_t i = 0; d && ai && i < DNS_MAX; i++)
        if (d->e[i].ai == ai)
            return; /* the run's: it stays for the next connect */
    if (ai)
        freeaddrinfo((struct addrinfo *)ai);
}
