/* Endpoint parsing, address formatting, listening and connecting sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr_int.h"
#include "sockit/addr.h"
#include "sockit/err.h"
#include "sockit/loop.h"
#include "sockit/scope.h"

static int parse_port(const char *s, unsigned short *port)
{
    if (*s == '\0' || strlen(s) > 5)
        return SK_EPARSE;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return SK_EPARSE;
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535)
        return SK_EPARSE;
    *port = (unsigned short)v;
    return 0;
}

int sk_endpoint_parse(const char *s, struct sk_endpoint *ep)
{
    const char *host, *host_end, *port;
    if (s[0] == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (!host_end || host_end[1] != ':')
            return SK_EPARSE;
        port = host_end + 2;
    } else {
        host = s;
        host_end = strrchr(s, ':');
        if (!host_end)
            return SK_EPARSE;
        /* An unbracketed IPv6 literal is ambiguous: refuse it. */
        if (memchr(s, ':', (size_t)(host_end - s)))
            return SK_EPARSE;
        port = host_end + 1;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof ep->host)
        return SK_EPARSE;
    if (parse_port(port, &ep->port) < 0)
        return SK_EPARSE;
    memcpy(ep->host, host, hlen);
    ep->host[hlen] = '\0';
    return 0;
}

char *sk_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
    return buf;
}

static void freeaddrinfop(struct addrinfo **ai)
{
    if (*ai)
        freeaddrinfo(*ai);
}

/* The one getaddrinfo wrapper and its one error mapping. */
static int gai(const struct sk_endpoint *ep, int type, int flags, struct addrinfo **out)
{
    char port[8];
    snprintf(port, sizeof port, "%u", ep->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = type,
                             .ai_flags = flags | AI_NUMERICSERV};
    int rc = getaddrinfo(ep->host, port, &hints, out);
    if (rc == 0)
        return 0;
    *out = NULL;
    if (rc == EAI_SYSTEM)
        return SK_ERR(errno ? errno : EIO);
    return rc == EAI_MEMORY ? SK_ERR(ENOMEM) : SK_ERESOLVE;
}

int sk_endpoint_resolve(const struct sk_endpoint *ep, int type, unsigned flags,
                        struct addrinfo **out)
{
    *out = NULL;
    if (ep->host[0] == '\0' || !memchr(ep->host, '\0', sizeof ep->host))
        return SK_EUSAGE;
    if (flags & SK_RESOLVE_PASSIVE)
        return gai(ep, type, AI_PASSIVE, out);
    unsigned char ip[16];
    if (inet_pton(AF_INET, ep->host, ip) == 1 || inet_pton(AF_INET6, ep->host, ip) == 1)
        return gai(ep, type, AI_NUMERICHOST, out); /* no name service, no interface scan */
    int rc = gai(ep, type, AI_ADDRCONFIG, out);
    if (rc == SK_ERESOLVE) /* AI_ADDRCONFIG hides ::1 on hosts with no global v6 */
        rc = gai(ep, type, 0, out);
    return rc;
}

int sk_listen(const struct sk_endpoint *ep, int type, int backlog)
{
    return sk_listen_ex(ep, type, backlog, 0);
}

int sk_listen_ex(const struct sk_endpoint *ep, int type, int backlog, unsigned flags)
{
    SK_AUTO(freeaddrinfop) struct addrinfo *ai = NULL;
    int rc = sk_endpoint_resolve(ep, type, SK_RESOLVE_PASSIVE, &ai);
    if (rc < 0)
        return rc;
    if (!ai) /* getaddrinfo's success always has an entry; the analyzer cannot know */
        return SK_ERESOLVE;
    SK_AUTO_CLOSE int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SK_ERR(errno);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if ((flags & SK_LISTEN_REUSEPORT) &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        return SK_ERR(errno);
    if (ai->ai_family == AF_INET6) /* [::]:P must not also claim 0.0.0.0:P */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        return SK_ERR(errno);
    /* The kernel caps the backlog at net.core.somaxconn: asking for more
     * than any real limit gets the system's maximum. */
    if (type == SOCK_STREAM && listen(fd, backlog > 0 ? backlog : 65535) < 0)
        return SK_ERR(errno);
    return SK_TAKE_FD(fd);
}

/* Waits for a non-blocking connect on fd to finish. */
static int connect_wait(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    uint64_t deadline = sk_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int wait = -1;
        if (timeout_ms > 0) {
            uint64_t now = sk_now_ms();
            if (now >= deadline)
                return SK_ETIMEDOUT;
            wait = (int)(deadline - now);
        }
        int n = poll(&p, 1, wait);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return SK_ERR(errno);
        if (n == 0)
            return SK_ETIMEDOUT;
        return sk__connect_result(fd);
    }
}

void sk__nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int finish_connected(int fd, int type, bool nonblock)
{
    if (type == SOCK_STREAM)
        sk__nodelay(fd);
    int fl;
    if (!nonblock && ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)) {
        int err = SK_ERR(errno);
        close(fd);
        return err;
    }
    return fd;
}

static int connect_one(const struct addrinfo *a, int timeout_ms, bool nonblock)
{
    SK_AUTO_CLOSE int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SK_ERR(errno);
    if (connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
        if (errno != EINPROGRESS)
            return SK_ERR(errno);
        int rc = connect_wait(fd, timeout_ms);
        if (rc < 0)
            return rc;
    }
    return finish_connected(SK_TAKE_FD(fd), a->ai_socktype, nonblock);
}

int sk_connect(const struct sk_endpoint *ep, int type, int timeout_ms, bool nonblock)
{
    SK_AUTO(freeaddrinfop) struct addrinfo *ai = NULL;
    int rc = sk_endpoint_resolve(ep, type, 0, &ai);
    if (rc < 0)
        return rc;
    for (const struct addrinfo *a = ai; a; a = a->ai_next) {
        rc = connect_one(a, timeout_ms, nonblock);
        if (rc >= 0)
            return rc;
    }
    return rc;
}

/* ---- Happy Eyeballs (RFC 8305, simplified): see addr_int.h ---- */

/* The first usable address from p on whose family is (same) or is not fam. */
static const struct addrinfo *he_next(const struct addrinfo *p, int fam, bool same)
{
    for (; p; p = p->ai_next)
        if ((p->ai_family == AF_INET || p->ai_family == AF_INET6) &&
            p->ai_addrlen <= sizeof(struct sockaddr_in6) && (p->ai_family == fam) == same)
            return p;
    return NULL;
}

static void he_add(struct sk__he *h, const struct addrinfo *p)
{
    memcpy(&h->addr[h->count], p->ai_addr, p->ai_addrlen);
    h->len[h->count++] = p->ai_addrlen;
    h->type = p->ai_socktype ? p->ai_socktype : SOCK_STREAM;
}

unsigned sk__he_init(struct sk__he *h, const struct addrinfo *ai)
{
    memset(h, 0, sizeof *h);
    h->last = SK_ERR(ECONNREFUSED);
    const struct addrinfo *first = he_next(ai, AF_UNSPEC, false); /* any usable one */
    if (!first)
        return 0;
    int fam = first->ai_family; /* the resolver's first family first, then alternate */
    const struct addrinfo *a = he_next(ai, fam, true), *b = he_next(ai, fam, false);
    while (h->count < SK__HE_MAX && (a || b)) {
        if (a) {
            he_add(h, a);
            a = he_next(a->ai_next, fam, true);
        }
        if (b && h->count < SK__HE_MAX) {
            he_add(h, b);
            b = he_next(b->ai_next, fam, false);
        }
    }
    return h->count;
}

int sk__he_step(struct sk__he *h, uint64_t now, bool live, bool *pending)
{
    *pending = false; /* set on every path: callers may read it before checking fd */
    if (!sk__he_more(h) || (live && now < h->next_start))
        return SK_EAGAIN_MORE;
    const struct sockaddr *sa = (const struct sockaddr *)&h->addr[h->next];
    socklen_t len = h->len[h->next++];
    int fd = socket(sa->sa_family, h->type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        sk__he_failed(h, SK_ERR(errno));
        return h->last;
    }
    if (connect(fd, sa, len) == 0)
        return fd;
    if (errno == EINPROGRESS) {
        *pending = true;
        h->next_start = now + SK__HE_DELAY_MS;
        return fd;
    }
    sk__he_failed(h, SK_ERR(errno));
    close(fd);
    return h->last;
}

void sk__he_failed(struct sk__he *h, int err)
{
    h->last = err;
    h->next_start = 0; /* a failure starts the next attempt at once */
}

int sk__connect_result(int fd)
{
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    return soerr ? SK_ERR(soerr) : 0;
}

int sk_connect_until(const struct sk_endpoint *ep, int type, uint64_t deadline_ms, bool nonblock)
{
    SK_AUTO(freeaddrinfop) struct addrinfo *ai = NULL;
    int rc = sk_endpoint_resolve(ep, type, 0, &ai);
    if (rc < 0)
        return rc;
    struct sk__he he;
    if (sk__he_init(&he, ai) == 0)
        return SK_ERESOLVE;
    struct pollfd p[SK__HE_MAX];
    nfds_t live = 0;
    int winner = -1;
    while (winner < 0) {
        uint64_t now = sk_now_ms();
        bool pending;
        int fd = sk__he_step(&he, now, live > 0, &pending);
        if (fd >= 0 && !pending) {
            winner = fd;
            break;
        }
        if (fd >= 0)
            p[live++] = (struct pollfd){.fd = fd, .events = POLLOUT};
        else if (fd != SK_EAGAIN_MORE)
            continue; /* failed at once: the next address right away */
        if (live == 0)
            return he.last;
        if (deadline_ms && now >= deadline_ms) {
            he.last = SK_ETIMEDOUT;
            break;
        }
        uint64_t until = deadline_ms;
        if (sk__he_more(&he) && (until == 0 || he.next_start < until))
            until = he.next_start;
        int timeout = until == 0 ? -1 : until > now ? (int)(until - now) : 0;
        int n = poll(p, live, timeout);
        if (n < 0) {
            he.last = SK_ERR(errno); /* EINTR: let the caller see a signal */
            break;
        }
        for (nfds_t i = 0; i < live && winner < 0;) {
            if (!p[i].revents) {
                i++;
                continue;
            }
            int res = sk__connect_result(p[i].fd);
            if (res == 0) {
                winner = p[i].fd;
                p[i] = p[--live];
                break;
            }
            sk__he_failed(&he, res);
            close(p[i].fd);
            p[i] = p[--live];
        }
    }
    for (nfds_t i = 0; i < live; i++)
        close(p[i].fd);
    if (winner < 0)
        return he.last;
    return finish_connected(winner, type, nonblock);
}
