/* The floor for `sockit fetch` in bench/fetch_compare.sh: the least any HTTP/1.1 client must do
 * to fetch a list of URLs from one server, and nothing else. No option parsing beyond the below,
 * no redirects, no chunked bodies, no retries, no progress, no error messages beyond one line;
 * the host name is looked up once (getaddrinfo, its first address). With TLS it does what every verifying TLS
 * client on the system's OpenSSL must do: OPENSSL_init_ssl with the configuration file (the
 * administrator's policy), SSL_CTX_new, one CA file, peer and host-name verification, SNI.
 *
 *   cc -O2 -pthread -o fetch_floor bench/fetch_floor.c -lssl -lcrypto    (fetch_compare.sh does)
 *   fetch_floor [-j N] [-k CA] [-o DIR | -O FILE] [-a] [-f] LIST
 *
 * LIST: one URL a line, all http://HOST:PORT/... or all https://HOST:PORT/... of one server.
 * -j N: N keep-alive connections (one thread each, blocking I/O), requests in turn, no
 * pipelining (default 1). -k CA: the CA file for https. -o DIR: write each body to DIR/<last
 * path component> (created exclusively, O_EXCL); -O FILE: the one URL's body to FILE; without
 * either, bodies are read and dropped.
 * -a: atomically, as sockit does: a temporary name in DIR, then renameat2(RENAME_NOREPLACE).
 * -f: files only, no network: each URL's file is written with 1 KiB of zeros (needs -o), so
 * the cost of creating the files can be measured alone.
 * Exit status 0 when every URL gave a 200 with the whole Content-Length body, else 1. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define USAGE "usage: fetch_floor [-j N] [-k CA] [-o DIR | -O FILE] [-a] [-f] LIST"

static char **urls;
static size_t nurls;
static atomic_size_t next_url;
static atomic_int failed;
static const char *outdir, *outname; /* -O FILE: its folder and name */
static int outfd = -1, atomic_write, files_only;
static SSL_CTX *ctx;
static char host[256];
static struct addrinfo *addr;

static int die(const char *what) {
    fprintf(stderr, "fetch_floor: %s\n", what);
    exit(1);
}

struct conn {
    int fd;
    SSL *ssl;
    char buf[65536];
    size_t have; /* bytes in buf */
};

static ssize_t conn_read(struct conn *c, char *p, size_t n) {
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, n > 1 << 30 ? 1 << 30 : (int)n);
        return r > 0 ? r : -1;
    }
    ssize_t r = recv(c->fd, p, n, 0);
    return r > 0 ? r : -1;
}

static int conn_write(struct conn *c, const char *p, size_t n) {
    if (c->ssl) return SSL_write(c->ssl, p, (int)n) == (int)n ? 0 : -1;
    return send(c->fd, p, n, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

static int conn_open(struct conn *c) {
    c->have = 0;
    c->ssl = NULL;
    c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, addr->ai_addr, addr->ai_addrlen) != 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!ctx) return 0;
    c->ssl = SSL_new(ctx);
    if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || !SSL_set_tlsext_host_name(c->ssl, host) ||
        !SSL_set1_host(c->ssl, host) || SSL_connect(c->ssl) != 1)
        return -1;
    return 0;
}

/* Writes one body of len bytes, of which the first `have` are in buf, to DIR/name. */
static int sink(struct conn *c, const char *name, size_t len, size_t have) {
    char tmp[300];
    int fd = -1;
    if (outname) name = outname;
    if (outfd >= 0) {
        if (atomic_write) {
            snprintf(tmp, sizeof tmp, ".%s.%lx", name, (unsigned long)pthread_self());
            fd = openat(outfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        } else {
            fd = openat(outfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        }
        if (fd < 0) return -1;
    }
    size_t done = have;
    if (fd >= 0 && have && write(fd, c->buf, have) != (ssize_t)have) return -1;
    while (done < len) {
        ssize_t r = conn_read(c, c->buf, sizeof c->buf < len - done ? sizeof c->buf : len - done);
        if (r < 0) return -1;
        if (fd >= 0 && write(fd, c->buf, (size_t)r) != r) return -1;
        done += (size_t)r;
    }
    if (fd >= 0 && close(fd) != 0) return -1;
    if (fd >= 0 && atomic_write && renameat2(outfd, tmp, outfd, name, RENAME_NOREPLACE) != 0) return -1;
    return 0;
}

/* One request and its response on c; 0 when it was a 200 with its whole body. */
static int get(struct conn *c, const char *url) {
    const char *path = strchr(strstr(url, "//") + 2, '/');
    char req[1024];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n\r\n", path, host);
    if (n <= 0 || (size_t)n >= sizeof req || conn_write(c, req, (size_t)n) != 0) return -1;
    c->have = 0;
    char *end;
    for (;;) {
        ssize_t r = conn_read(c, c->buf + c->have, sizeof c->buf - 1 - c->have);
        if (r < 0) return -1;
        c->have += (size_t)r;
        c->buf[c->have] = 0;
        if ((end = strstr(c->buf, "\r\n\r\n"))) break;
        if (c->have == sizeof c->buf - 1) return -1;
    }
    if (strncmp(c->buf, "HTTP/1.1 200", 12) != 0) return -1;
    char *cl = strcasestr(c->buf, "\r\ncontent-length:");
    if (!cl || cl > end) return -1;
    size_t len = strtoull(cl + 17, NULL, 10);
    size_t head = (size_t)(end + 4 - c->buf), have = c->have - head;
    if (have > len) return -1; /* no pipelining: nothing may follow the body */
    memmove(c->buf, c->buf + head, have);
    return sink(c, strrchr(path, '/') + 1, len, have);
}

static void *worker(void *arg) {
    (void)arg;
    struct conn *c = calloc(1, sizeof *c);
    if (c && files_only) {
        for (size_t i; (i = atomic_fetch_add(&next_url, 1)) < nurls;)
            if (sink(c, strrchr(urls[i], '/') + 1, 1024, 1024) != 0) atomic_store(&failed, 1);
        free(c);
        return NULL;
    }
    if (!c || conn_open(c) != 0) {
        atomic_store(&failed, 1);
        return NULL;
    }
    for (size_t i; (i = atomic_fetch_add(&next_url, 1)) < nurls;)
        if (get(c, urls[i]) != 0) {
            atomic_store(&failed, 1);
            break;
        }
    if (c->ssl) SSL_free(c->ssl);
    close(c->fd);
    free(c);
    return NULL;
}

int main(int argc, char **argv) {
    int jobs = 1, opt;
    const char *ca = NULL;
    while ((opt = getopt(argc, argv, "j:k:o:O:af")) != -1) switch (opt) {
        case 'j': jobs = atoi(optarg); break;
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
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t ll;
    while ((ll = getline(&line, &lcap, f)) > 0) {
        while (ll && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) line[--ll] = 0;
        if (!ll) continue;
        if (nurls == cap && !(urls = realloc(urls, (cap = cap ? 2 * cap : 1024) * sizeof *urls)))
            return die("out of memory");
        if (!(urls[nurls++] = strdup(line))) return die("out of memory");
    }
    fclose(f);
    free(line);
    if (!nurls || (outname && nurls != 1)) return die(nurls ? "-O FILE: one URL" : "empty list");
    int tls = strncmp(urls[0], "https://", 8) == 0;
    const char *h = urls[0] + (tls ? 8 : 7), *colon = strchr(h, ':'), *slash = strchr(h, '/');
    if (!colon || !slash || colon > slash || (size_t)(colon - h) >= sizeof host || slash - colon > 6)
        return die("URL: scheme://HOST:PORT/path");
    memcpy(host, h, (size_t)(colon - h));
    char port[8];
    snprintf(port, sizeof port, "%.*s", (int)(slash - colon - 1), colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    if (getaddrinfo(host, port, &hints, &addr) != 0) return die("cannot look the host up");
    if (outdir && (outfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) return die("cannot open -o DIR");
    if (files_only && outfd < 0) return die(USAGE);
    if (tls && !files_only) {
        if (!OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT, NULL) ||
            !(ctx = SSL_CTX_new(TLS_client_method())) || !ca || !SSL_CTX_load_verify_locations(ctx, ca, NULL))
            return die("TLS set-up (-k CA?)");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (jobs > (int)nurls) jobs = (int)nurls;
    if (jobs == 1) {
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
