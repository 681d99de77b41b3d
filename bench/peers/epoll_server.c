/* The floor: the greeting protocol on bare epoll, one thread, nothing else.
 *
 * usage: epoll_server PORT [chunk|line]
 *
 * An idle connection costs the server nothing but its kernel socket: the
 * only per-connection user memory is a pointer slot, and a small state
 * block allocated only while a partial line or unsent output exists.
 * Level-triggered; one recv of up to 64 KiB per readiness event, all
 * replies to it written with one send. Not a product: no limits beyond
 * a 64 KiB line, no logging, no shutdown. Build: cc -O2 -o epoll_server
 * epoll_server.c */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF (64 * 1024)
#define MAXLINE (64 * 1024)

struct state {      /* only while needed */
    size_t inlen;   /* partial line */
    size_t outlen;  /* unsent output */
    char *in, *out;
};

static struct state **states;
static size_t nstates;
static int ep, line;
static char rbuf[RBUF], wbuf[RBUF * 2 + 16];

static void drop(int fd)
{
    if ((size_t)fd < nstates && states[fd]) {
        free(states[fd]->in);
        free(states[fd]->out);
        free(states[fd]);
        states[fd] = NULL;
    }
    close(fd); /* also removes it from the epoll set */
}

static struct state *state_of(int fd)
{
    if (!states[fd])
        states[fd] = calloc(1, sizeof **states);
    return states[fd];
}

static void release_if_empty(int fd)
{
    struct state *s = states[fd];
    if (s && s->inlen == 0 && s->outlen == 0) {
        free(s->in);
        free(s->out);
        free(s);
        states[fd] = NULL;
    }
}

/* Sends buf, keeping what the socket does not take. Returns -1 on error. */
static int out(int fd, const char *buf, size_t n)
{
    struct state *s = states[fd];
    if (s && s->outlen) {
        s->out = realloc(s->out, s->outlen + n);
        memcpy(s->out + s->outlen, buf, n);
        s->outlen += n;
        return 0;
    }
    ssize_t k = send(fd, buf, n, MSG_NOSIGNAL);
    if (k < 0 && errno != EAGAIN)
        return -1;
    if (k < 0)
        k = 0;
    if ((size_t)k < n) {
        s = state_of(fd);
        s->out = malloc(n - (size_t)k);
        memcpy(s->out, buf + k, n - (size_t)k);
        s->outlen = n - (size_t)k;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    }
    return 0;
}

static size_t reply(char *dst, const char *m, size_t n)
{
    memcpy(dst, "Hello, ", 7);
    memcpy(dst + 7, m, n);
    dst[7 + n] = '!';
    if (line)
        dst[8 + n] = '\n';
    return 8 + n + (size_t)line;
}

/* Returns -1 to close. */
static int on_lines(int fd, char *data, size_t n)
{
    struct state *s = states[fd];
    char *p = data, *end = data + n;
    size_t w = 0;
    if (s && s->inlen) { /* join with the partial line */
        s->in = realloc(s->in, s->inlen + n);
        memcpy(s->in + s->inlen, data, n);
        p = s->in;
        end = s->in + s->inlen + n;
        s->inlen = 0;
    }
    for (;;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        size_t len = (size_t)(nl - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (len == 4 && memcmp(p, "exit", 4) == 0) {
            out(fd, wbuf, w);
            return -1;
        }
        if (w + len + 9 > sizeof wbuf) {
            if (out(fd, wbuf, w) < 0)
                return -1;
            w = 0;
        }
        if (len + 9 > sizeof wbuf)
            return -1;
        w += reply(wbuf + w, p, len);
        p = nl + 1;
    }
    if (p < end) {
        size_t rest = (size_t)(end - p);
        if (rest > MAXLINE)
            return -1;
        s = state_of(fd);
        char *keep = malloc(rest);
        memcpy(keep, p, rest);
        free(s->in);
        s->in = keep;
        s->inlen = rest;
    }
    int rc = w ? out(fd, wbuf, w) : 0;
    release_if_empty(fd);
    return rc;
}

static void on_read(int fd)
{
    ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
    if (n < 0 && errno == EAGAIN)
        return;
    if (n <= 0) {
        drop(fd);
        return;
    }
    if (line) {
        if (on_lines(fd, rbuf, (size_t)n) < 0)
            drop(fd);
        return;
    }
    if (n == 4 && memcmp(rbuf, "exit", 4) == 0) {
        drop(fd);
        return;
    }
    if (out(fd, wbuf, reply(wbuf, rbuf, (size_t)n)) < 0)
        drop(fd);
}

static void on_write(int fd)
{
    struct state *s = states[fd];
    if (!s || !s->outlen)
        return;
    ssize_t k = send(fd, s->out, s->outlen, MSG_NOSIGNAL);
    if (k < 0 && errno != EAGAIN) {
        drop(fd);
        return;
    }
    if (k > 0) {
        memmove(s->out, s->out + k, s->outlen - (size_t)k);
        s->outlen -= (size_t)k;
    }
    if (s->outlen == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        release_if_empty(fd);
    }
}

static void on_accept(int lfd)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if ((size_t)fd >= nstates) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        if (out(fd, "Welcome!\n", 8 + (size_t)line) < 0)
            drop(fd);
    }
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long port = argc >= 2 ? strtol(argv[1], &end, 10) : -1;
    if (argc < 2 || end == argv[1] || *end || port < 0 || port > 65535) {
        fprintf(stderr, "usage: epoll_server PORT [chunk|line]\n");
        return 2;
    }
    line = argc > 2 && strcmp(argv[2], "line") == 0;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    nstates = rl.rlim_cur > 1048576 ? 1048576 : rl.rlim_cur;
    states = calloc(nstates, sizeof *states); // NOLINT(bugprone-sizeof-expression): an array of pointers
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (!states || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) {
        perror("epoll_server");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd)
                on_accept(lfd);
            else if (evs[i].events & EPOLLOUT)
                on_write(fd);
            if (fd != lfd && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
                (size_t)fd < nstates)
                on_read(fd);
        }
    }
}
