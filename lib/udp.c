/* UDP side of the server engine: each datagram goes to the protocol's
 * datagram callback, whose reply goes back to the sender.
 *
 * Stateless: every sender is answered, no connect(). Datagrams are taken
 * and answered in batches (recvmmsg/sendmmsg). Each slot leaves
 * cfg.dgram_headroom bytes in front of the payload and TAILROOM after it,
 * so a protocol can build its reply in place without copying the message. */
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
#define PAYLOAD_MAX 65535          /* more than any UDP payload */
#define TAILROOM 16

struct udp_batch {
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_in6 peers[UDP_BATCH];
    char *slots; /* UDP_BATCH * slot */
    size_t slot, headroom;
};

int sk__udp_worker_init(struct sk__worker *w)
{
    struct udp_batch *b = sk__calloc(1, sizeof *b);
    if (!b)
        return SK_ERR(ENOMEM);
    b->headroom = w->srv->cfg.dgram_headroom;
    b->slot = b->headroom + PAYLOAD_MAX + TAILROOM;
    b->slots = sk__malloc((size_t)UDP_BATCH * b->slot);
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
        b->iov[i].iov_base = b->slots + (size_t)i * b->slot + b->headroom;
        b->iov[i].iov_len = PAYLOAD_MAX;
        b->msgs[i].msg_hdr = (struct msghdr){
            .msg_name = &b->peers[i],
            .msg_namelen = sizeof b->peers[i],
            .msg_iov = &b->iov[i],
            .msg_iovlen = 1,
        };
    }
}

/* Hands received datagram i to the protocol; its reply replaces it in the
 * iov. Returns false when nothing is to be sent back. (A slot's pages are
 * touched only when it is used: nothing is written at start-up.) */
static bool make_reply(struct sk__worker *w, struct udp_batch *b, int i)
{
    const struct sk_server_proto *proto = &w->srv->cfg.proto;
    size_t n = b->msgs[i].msg_len;
    struct sk_datagram d = {
        .data = b->slots + (size_t)i * b->slot + b->headroom,
        .len = n,
        .headroom = b->headroom,
        .tailroom = b->slot - b->headroom - n,
        .truncated = (b->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0,
        .peer = (const struct sockaddr *)&b->peers[i],
    };
    if (!proto->datagram(proto->user, &d))
        return false;
    b->iov[i].iov_base = d.data;
    b->iov[i].iov_len = d.len;
    return true;
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
        int m = 0; /* replies, packed to the front */
        for (int i = 0; i < n; i++) {
            sk__count(&w->ctr->bytes.in, b->msgs[i].msg_len);
            if (!make_reply(w, b, i))
                continue;
            if (m != i) {
                b->iov[m] = b->iov[i];
                b->peers[m] = b->peers[i];
                b->msgs[m].msg_hdr.msg_namelen = b->msgs[i].msg_hdr.msg_namelen;
            }
            b->msgs[m].msg_hdr.msg_iov = &b->iov[m];
            m++;
        }
        int sent = 0;
        while (sent < m) {
            int k = sendmmsg(fd, b->msgs + sent, (unsigned)(m - sent), MSG_DONTWAIT);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                /* Send buffer full or the peer unreachable: UDP gives no
                 * guarantee, so the reply is dropped rather than queued. */
                sent++;
                continue;
            }
            uint64_t out = 0;
            for (int i = sent; i < sent + k; i++)
                out += b->iov[i].iov_len;
            sk__count(&w->ctr->bytes.out, out);
            sk__count(&w->ctr->datagrams, (uint64_t)k);
            sent += k;
        }
        if (n < UDP_BATCH)
            return;
    }
}
