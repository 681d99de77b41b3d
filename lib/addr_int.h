/* Inside the library: the Happy Eyeballs plan (RFC 8305, simplified) that
 * sk_connect_until (with poll) and sk_stream_connect_list (on the loop)
 * both follow, so the order and the pacing of attempts are decided in one
 * place. */
#ifndef SOCKIT_ADDR_INT_H
#define SOCKIT_ADDR_INT_H

#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

/* A new attempt every SK__HE_DELAY_MS while earlier ones are pending. */
#define SK__HE_DELAY_MS 250
#define SK__HE_MAX 16

struct sk__he {
    struct sockaddr_in6 addr[SK__HE_MAX]; /* holds a sockaddr_in too */
    socklen_t len[SK__HE_MAX];
    int type;             /* SOCK_STREAM or SOCK_DGRAM */
    unsigned count, next; /* addresses; the next one to try */
    uint64_t next_start;  /* the next attempt is due (0: at once) */
    int last;             /* the error of the last failed attempt */
};

/* Copies up to SK__HE_MAX IPv4/IPv6 addresses of ai into h, families
 * interleaved (the resolver's first family first). Returns the count (0:
 * nothing usable). */
unsigned sk__he_init(struct sk__he *h, const struct addrinfo *ai);
/* Starts the next attempt when one is due at now (live: attempts are still
 * pending). Returns a connected fd (*pending false), a pending one
 * (*pending true), SK_EAGAIN_MORE when none is due or none is left, or a
 * negative code when the attempt failed at once (the next is due at once).
 * Sockets are non-blocking and close-on-exec. */
int sk__he_step(struct sk__he *h, uint64_t now, bool live, bool *pending);
/* An attempt failed with err: the next one is due at once. */
void sk__he_failed(struct sk__he *h, int err);
/* True while addresses are left to try. */
static inline bool sk__he_more(const struct sk__he *h)
{
    return h->next < h->count;
}
/* A connect's outcome on fd: 0 or a negative code (SO_ERROR). */
int sk__connect_result(int fd);
/* TCP_NODELAY on a connected stream socket. */
void sk__nodelay(int fd);
/* The bytes TCP received and sent (once, not counting retransmissions) on
 * fd in its life; 0 and 0 when the kernel cannot say (tcp_bytes.c).
 * fin_read: the peer's FIN was read (it is not counted as a byte). */
void sk__tcp_bytes(int fd, bool fin_read, uint64_t *in, uint64_t *out);

#endif
