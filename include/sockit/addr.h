/* Endpoint parsing and socket set-up.
 *
 * Endpoints are written HOST:PORT, with IPv6 literals in brackets:
 * 127.0.0.1:8888, localhost:80, [::1]:8888. Ports are 0-65535 (0 only where
 * the caller allows it: a listener picks a free port). */
#ifndef SOCKIT_ADDR_H
#define SOCKIT_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SK_HOST_MAX 256

struct sk_endpoint {
    char host[SK_HOST_MAX]; /* without brackets */
    unsigned short port;
};

/* Parses "HOST:PORT" into ep. Returns 0 or SK_EPARSE (empty host, missing
 * or non-numeric or out-of-range port, unbalanced brackets, host too long). */
int sk_endpoint_parse(const char *s, struct sk_endpoint *ep);

/* Formats a socket address as HOST:PORT ([v6]:port) into buf (at least
 * SK_ADDRSTR_MAX bytes). Returns buf. */
#define SK_ADDRSTR_MAX 64
char *sk_addr_format(const struct sockaddr *sa, char *buf, size_t len);

/* Opens a non-blocking, close-on-exec listening socket of `type`
 * (SOCK_STREAM or SOCK_DGRAM) on ep, with SO_REUSEADDR. backlog <= 0 means
 * the system's maximum (net.core.somaxconn). Returns the fd or a negative code. */
int sk_listen(const struct sk_endpoint *ep, int type, int backlog);

/* sk_listen with flags: SK_LISTEN_REUSEPORT sets SO_REUSEPORT, so several
 * sockets (one per worker) can share the address and the kernel spreads
 * connections and datagrams among them. */
#define SK_LISTEN_REUSEPORT 1u
int sk_listen_ex(const struct sk_endpoint *ep, int type, int backlog, unsigned flags);

/* Connects to ep, trying every address getaddrinfo returns in turn, each
 * within timeout_ms (<= 0: no timeout). The returned fd is blocking unless
 * nonblock is true, and close-on-exec. Returns the fd or a negative code:
 * SK_ERESOLVE, SK_ETIMEDOUT, or -errno of the last attempt. */
int sk_connect(const struct sk_endpoint *ep, int type, int timeout_ms, bool nonblock);

/* As sk_connect, but with Happy Eyeballs (RFC 8305, simplified) and one
 * absolute deadline on the sk_now_ms() clock (0: none) for the whole set:
 * addresses are tried families interleaved, a new attempt starts every
 * 250 ms while earlier ones are pending (at once when one fails), and the
 * first to connect wins. A signal ends the wait with SK_ERR(EINTR). */
int sk_connect_until(const struct sk_endpoint *ep, int type, uint64_t deadline_ms, bool nonblock);
/* Resolves ep for a connect of `type` (SOCK_STREAM, SOCK_DGRAM) as
 * sk_connect_until does: an address literal without the name service; a
 * name with AI_ADDRCONFIG, then without it when that finds nothing. On
 * success *out is the list (freeaddrinfo it), for sk_stream_connect_list.
 * Blocks while the name service answers. Returns 0, SK_ERESOLVE or -errno. */
struct addrinfo;
int sk_resolve(const struct sk_endpoint *ep, int type, struct addrinfo **out);

#ifdef __cplusplus
}
#endif

#endif
