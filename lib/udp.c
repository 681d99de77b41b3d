/* UDP side of the greeting server: each datagram M gets "Hello, M!" back.
 *
 * Stateless: every sender is answered, no connect(). Datagrams are taken
 * and answered in batches (recvmmsg/sendmmsg). Each slot leaves room for
 * the 7-byte "Hello, " in front of the payload and the "!" after it, so a
 * reply is built in place without copying the message. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alloc_int.h"
#include "server_int.h"
#include "sockit/err.h"

#define UDP_BATCH 64
#define BATCHES_PER_EVENT 8
#define PREFIX 7                   /* "Hello, " */
#define PAYLOAD_MAX 65535          /* more than any UDP payload */
#define SLOT_SIZE (PREFIX + PAYLOAD_MAX + 1)
/* The largest reply that fits one IPv4 UDP datagram is 65507 bytes, so the
 * longest message we can answer is 65507 - 8. */
#define UDP_MSG_MAX (65507 - 8)

static const char too_long[] = "Error: datagram too long to answer (max 65499 bytes)";

struct udp_batch {
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_in6 peers[UDP_BATCH];
    char *slots; /* UDP_BATCH * SLOT_SIZE */
};

int sk__udp_worker_init(struct sk__worker *w)
{
    struct udp_batch *b = sk__calloc(1, sizeof *b);
    if (!b)
        return SK_ERR(ENOMEM);
    b->slots = sk__malloc((size_t)UDP_BATCH * SLOT_SIZE);
    if (!b->slots) {
        free(b);
        return SK_ERR(ENOMEM);
    }
    w->udp = b;
    return 0;
}

void sk__udp_worker_free(struct sk__worker *w)
{
    struct udp_batch *b = w->udp;
    if (!b)
        return;
    free(b->slots);
    free(b);
    w->udp = NULL;
}

/* Points every slot's header at its receive area. */
static void prepare_recv(struct udp_batch *b)
{
    for (int i = 0; i < UDP_BATCH; i++) {
        b->iov[i].iov_base = b->slots + (size_t)i * SLOT_SIZE + PREFIX;
        b->iov[i].iov_len = PAYLOAD_MAX;
        b->msgs[i].msg_hdr = (struct msghdr){
            .msg_name = &b->peers[i],
            .msg_namelen = sizeof b->peers[i],
            .msg_iov = &b->iov[i],
            .msg_iovlen = 1,
        };
    }
}

/* Turns received datagram i into its reply, in place. */
static void make_reply(struct udp_batch *b, int i)
{
    char *slot = b->slots + (size_t)i * SLOT_SIZE;
    size_t n = b->msgs[i].msg_len;
    if (n > UDP_MSG_MAX || (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)) {
        b->iov[i].iov_base = (void *)too_long;
        b->iov[i].iov_len = sizeof too_long - 1;
        return;
    }
    /* Written per reply, not once at start-up: that touched a page of
     * every slot of every worker (256 KiB each, 256 MiB for 1,024 idle
     * workers); a slot's pages are now touched only when it is used. */
    memcpy(slot, "Hello, ", PREFIX);
    slot[PREFIX + n] = '!';
    b->iov[i].iov_base = slot;
    b->iov[i].iov_len = PREFIX + n + 1;
}

void sk__udp_readable(struct sk__worker *w, int fd)
{
    struct udp_batch *b = w->udp;
    for (int round = 0; round < BATCHES_PER_EVENT; round++) {
        prepare_recv(b);
        int n = recvmmsg(fd, b->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* EAGAIN, or an error that belongs to no one we can answer */
        for (int i = 0; i < n; i++) {
            w->stats.bytes_in += b->msgs[i].msg_len;
            make_reply(b, i);
            b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
        }
        int sent = 0;
        while (sent < n) {
            int k = sendmmsg(fd, b->msgs + sent, (unsigned)(n - sent), MSG_DONTWAIT);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                /* Send buffer full or the peer unreachable: UDP gives no
                 * guarantee, so the reply is dropped rather than queued. */
                sent++;
                continue;
            }
            for (int i = sent; i < sent + k; i++)
                w->stats.bytes_out += b->iov[i].iov_len;
            w->stats.datagrams += (uint64_t)k;
            sent += k;
        }
        if (n < UDP_BATCH)
            return;
    }
}
