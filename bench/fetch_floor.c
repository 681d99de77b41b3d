/* The floor for `sockit fetch` in bench/fetch_compare.sh: the least any HTTP/1.1 client must do
 * to fetch a list of URLs from one server, and nothing else. No option parsing beyond the below,
 * no redirects, no chunked bodies, no retries, no progress, no error messages beyond one line;
 * the host name is looked up once (getaddrinfo, its first address). With TLS it does what every
 * verifying TLS client on the system's OpenSSL must do: OPENSSL_init_ssl with the configuration
 * file (the administrator's policy), SSL_CTX_new, one CA file, peer and host-name verification,
 * SNI.
 *
 *   cc -O2 -pthread -o fetch_floor bench/fetch_floor.c -lssl -lcrypto    (fetch_compare.sh does)
 *   fetch_floor [-j N] [-e] [-k CA] [-o DIR | -O FILE] [-a] [-f] LIST
 *
 * LIST: one URL a line, all http://HOST:PORT/... or all https://HOST:PORT/... of one server.
 * -j N: N keep-alive connections, requests in turn on each, no pipelining (default 1); one
 * blocking thread each, or with -e all on one thread (non-blocking, epoll), as a client with
 * one event loop. -k CA: the CA file for https. -o DIR: each body to DIR/<last path component>
 * (created exclusively, O_EXCL); -O FILE: the one URL's body to FILE; without either, bodies
 * are read and dropped. -a: atomically, as sockit does: a temporary name in the folder, then
 * renameat2(RENAME_NOREPLACE). -f: files only, no network: each URL's file is written with
 * 1 KiB of zeros (needs -o), so the cost of creating the files can be measured alone.
 * Exit status 0 when every URL gave a 200 with the whole Content-Length body, else 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define USAGE "usage: fetch_floor [-j N] [-e] [-k CA] [-o DIR | -O FILE] [-a] [-f] LIST"

static char **urls;
static size_t nurls;
static atomic_size_t next_url;
static atomic_int failed;
static const char *outdir, *outname; /* -O FILE: its folder and name */
static int outfd = -1, atomic_write, files_only, nonblocking;
static SSL_CTX *ctx;
static char host[256];
static struct addrinfo *addr;

static int die(const char *what)
{
    fprintf(stderr, "fetch_floor: %s\n", what);
    exit(1);
}

enum { ST_HANDSHAKE, ST_NEXT, ST_SEND, ST_HEAD, ST_BODY };

struct conn {
    int fd, st;
    SSL *ssl;
    int out;              /* the body's file, -1: dropped */
    size_t len, done;     /* the body: its length, the bytes read */
    size_t sent, reqlen;  /* the request: sent, its length */
    size_t have;          /* ST_HEAD: bytes in buf */
    const char *name;     /* the body's file name in outfd */
    char tmp[300];        /* -a: its temporary name */
    char req[1024];
    char buf[65536];
};

/* > 0: bytes, 0: it would block, -1: an error or the end of the stream. */
static ssize_t io_read(struct conn *c, char *p, size_t n)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, n > 1 << 30 ? 1 << 30 : (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    ssize_t r = recv(c->fd, p, n, 0);
    return r > 0 ? r : r < 0 && errno == EAGAIN ? 0 : -1;
}

static ssize_t io_write(struct conn *c, const char *p, size_t n)
{
    if (c->ssl) {
        int r = SSL_write(c->ssl, p, (int)n);
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
    }
    ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
    return r >= 0 ? r : errno == EAGAIN ? 0 : -1;
}

static int out_open(struct conn *c, const char *name)
{
    c->out = -1;
    if (outfd < 0) return 0;
    c->name = outname ? outname : name;
    if (atomic_write) snprintf(c->tmp, sizeof c->tmp, ".%s.%lx", c->name, (unsigned long)(uintptr_t)c);
    c->out = openat(outfd, atomic_write ? c->tmp : c->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    return c->out < 0 ? -1 : 0;
}

static int out_write(struct conn *c, const char *p, size_t n)
{
    return c->out < 0 || n == 0 || write(c->out, p, n) == (ssize_t)n ? 0 : -1;
}

static int out_finish(struct conn *c)
{
    if (c->out < 0) return 0;
    if (close(c->out) != 0) return -1;
    if (atomic_write && renameat2(outfd, c->tmp, outfd, c->name, RENAME_NOREPLACE) != 0) {
        unlinkat(outfd, c->tmp, 0);
        return -1;
    }
    return 0;
}

/* The connection up (blocking connect: on loopback it is there at once), then non-blocking
 * with -e; the TLS handshake is the first step. */
static void conn_close(struct conn *c)
{
    if (c->ssl) SSL_free(c->ssl);
    if (c->fd >= 0) close(c->fd);
    free(c);
}

static struct conn *conn_open(void)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    int one = 1;
    c->st = ST_NEXT;
    c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, addr->ai_addr, addr->ai_addrlen) != 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        (nonblocking && fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0))
        goto fail;
    if (!ctx) return c;
    c->ssl = SSL_new(ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || !SSL_set_tlsext_host_name(c->ssl, host) ||
        !SSL_set1_host(c->ssl, host))
        goto fail;
    c->st = ST_HANDSHAKE;
    return c;
fail:
    conn_close(c);
    return NULL;
}

/* Runs c as far as it goes: 0 when it would block, 1 when no URL is left, -1 on an error. */
static int step(struct conn *c)
{
    ssize_t r;
    for (;;) switch (c->st) {
        case ST_HANDSHAKE:
            if ((r = SSL_connect(c->ssl)) != 1) {
                int e = SSL_get_error(c->ssl, (int)r);
                return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
            }
            c->st = ST_NEXT;
            break;
        case ST_NEXT: {
            size_t i = atomic_fetch_add(&next_url, 1);
            if (i >= nurls) return 1;
            const char *path = strchr(strstr(urls[i], "//") + 2, '/');
            int n = snprintf(c->req, sizeof c->req, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n\r\n",
                             path, host);
            if (n <= 0 || (size_t)n >= sizeof c->req) return -1;
            c->reqlen = (size_t)n;
            c->sent = c->have = 0;
            c->name = strrchr(path, '/') + 1;
            c->st = ST_SEND;
            break;
        }
        case ST_SEND:
            if ((r = io_write(c, c->req + c->sent, c->reqlen - c->sent)) <= 0) return (int)r;
            if ((c->sent += (size_t)r) == c->reqlen) c->st = ST_HEAD;
            break;
        case ST_HEAD: {
            if ((r = io_read(c, c->buf + c->have, sizeof c->buf - 1 - c->have)) <= 0) return (int)r;
            c->have += (size_t)r;
            c->buf[c->have] = 0;
            char *end = strstr(c->buf, "\r\n\r\n");
            if (!end) {
                if (c->have == sizeof c->buf - 1) return -1;
                break;
            }
            char *cl = strcasestr(c->buf, "\r\ncontent-length:");
            if (strncmp(c->buf, "HTTP/1.1 200", 12) != 0 || !cl || cl > end) return -1;
            c->len = strtoull(cl + 17, NULL, 10);
            size_t head = (size_t)(end + 4 - c->buf);
            c->done = c->have - head;
            if (c->done > c->len) return -1; /* no pipelining: nothing may follow the body */
            if (out_open(c, c->name) != 0 || out_write(c, c->buf + head, c->done) != 0) return -1;
            c->st = ST_BODY;
            break;
        }
        case ST_BODY:
            if (c->done == c->len) {
                if (out_finish(c) != 0) return -1;
                c->st = ST_NEXT;
                break;
            }
            size_t want = c->len - c->done < sizeof c->buf ? c->len - c->done : sizeof c->buf;
            if ((r = io_read(c, c->buf, want)) <= 0) return (int)r;
            if (out_write(c, c->buf, (size_t)r) != 0) return -1;
            c->done += (size_t)r;
            break;
        }
}

/* -f: the files alone. */
static void *files(void *arg)
{
    struct conn *c = arg;
    memset(c->buf, 0, 1024);
    for (size_t i; (i = atomic_fetch_add(&next_url, 1)) < nurls;)
        if (out_open(c, strrchr(urls[i], '/') + 1) != 0 || out_write(c, c->buf, 1024) != 0 ||
            out_finish(c) != 0)
            atomic_store(&failed, 1);
    return NULL;
}

/* One blocking connection: every step runs until no URL is left. */
static void *worker(void *arg)
{
    (void)arg;
    struct conn *c = conn_open();
    if (!c || step(c) != 1) atomic_store(&failed, 1);
    if (c) conn_close(c);
    return NULL;
}

/* -e: every connection on one thread, edge-triggered. */
static void event_loop(int jobs)
{
    int ep = epoll_create1(EPOLL_CLOEXEC), active = 0;
    if (ep < 0) die("epoll_create1");
    for (int i = 0; i < jobs; i++) {
        struct conn *c = conn_open();
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
        if (!c || epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("a connection failed");
        active++;
    }
    struct epoll_event evs[64];
    while (active > 0) {
        int n = epoll_wait(ep, evs, 64, 30000);
        if (n <= 0) die(n ? "epoll_wait" : "timed out");
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            int rc = step(c);
            if (rc < 0) die("a transfer failed");
            if (rc == 1) {
                conn_close(c);
                active--;
            }
        }
    }
    close(ep);
}

int main(int argc, char **argv)
{
    int jobs = 1, opt;
    const char *ca = NULL;
    while ((opt = getopt(argc, argv, "j:ek:o:O:af")) != -1) switch (opt) {
        case 'j': jobs = atoi(optarg); break;
        case 'e': nonblocking = 1; break;
        case 'k': ca = optarg; break;
        case 'o': outdir = optarg; break;
        case 'O': {
            char *slash = strrchr(optarg, '/');
            outdir = slash ? strndup(optarg, (size_t)(slash - optarg + 1)) : ".";
            outname = slash ? slash + 1 : optarg;
            break;
        }
        case 'a': atomic_write = 1; break;
        case 'f': files_only = 1; break;
        default: return die(USAGE);
        }
    if (optind + 1 != argc || jobs < 1) return die(USAGE);
    FILE *f = fopen(argv[optind], "re");
    if (!f) return die("cannot open the list");
    size_t cap = 0, lcap = 0;
    char *line = NULL;
    ssize_t ll;
    while ((ll = getline(&line, &lcap, f)) > 0) {
        while (ll && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) line[--ll] = 0;
        if (!ll) continue;
        if (nurls == cap) {
            char **more = realloc(urls, (cap = cap ? 2 * cap : 1024) * sizeof *urls);
            if (!more) return die("out of memory");
            urls = more;
        }
        if (!(urls[nurls++] = strdup(line))) return die("out of memory");
    }
    fclose(f);
    free(line);
    if (!nurls || (outname && nurls != 1)) return die(nurls ? "-O FILE: one URL" : "empty list");
    if (outdir && (outfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return die("cannot open -o DIR");
    if (files_only) {
        struct conn *c = calloc(1, sizeof *c);
        if (outfd < 0 || !c) return die(USAGE);
        files(c);
        return atomic_load(&failed) ? die("cannot write a file") : 0;
    }
    int tls = strncmp(urls[0], "https://", 8) == 0;
    const char *h = urls[0] + (tls ? 8 : 7), *colon = strchr(h, ':'), *slash = strchr(h, '/');
    if (!colon || !slash || colon > slash || (size_t)(colon - h) >= sizeof host || slash - colon > 6)
        return die("URL: scheme://HOST:PORT/path");
    memcpy(host, h, (size_t)(colon - h));
    char port[8];
    snprintf(port, sizeof port, "%.*s", (int)(slash - colon - 1), colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    if (getaddrinfo(host, port, &hints, &addr) != 0) return die("cannot look the host up");
    if (tls) {
        if (!OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL) ||
            !(ctx = SSL_CTX_new(TLS_client_method())) || !ca || !SSL_CTX_load_verify_locations(ctx, ca, NULL))
            return die("TLS set-up (-k CA?)");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (jobs > (int)nurls) jobs = (int)nurls;
    if (nonblocking) {
        event_loop(jobs);
    } else if (jobs == 1) {
        worker(NULL);
    } else {
        pthread_t *t = calloc((size_t)jobs, sizeof *t);
        if (!t) return die("out of memory");
        for (int i = 0; i < jobs; i++)
            if (pthread_create(&t[i], NULL, worker, NULL) != 0) return die("pthread_create");
        for (int i = 0; i < jobs; i++) pthread_join(t[i], NULL);
    }
    if (atomic_load(&failed) || atomic_load(&next_url) < nurls) return die("a transfer failed");
    return 0;
}
