/* The UDP floor: answer each datagram M with "Hello, M!" using one
 * recvmmsg and one sendmmsg per batch of up to 64 datagrams, one thread.
 *
 * usage: udp_server PORT        Build: cc -O2 -o udp_server udp_server.c */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 64
#define DMAX 2048

int main(int argc, char **argv)
{
    char *end = NULL;
    long port = argc >= 2 ? strtol(argv[1], &end, 10) : -1;
    if (argc < 2 || end == argv[1] || *end || port < 0 || port > 65535) {
        fprintf(stderr, "usage: udp_server PORT\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rcvbuf = 2 << 20; /* as sockit serve asks: the same queue for both */
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("udp_server");
        return 1;
    }
    static char in[BATCH][DMAX], outb[BATCH][DMAX + 8];
    static struct sockaddr_storage peers[BATCH];
    static struct iovec iin[BATCH], iout[BATCH];
    static struct mmsghdr rx[BATCH], tx[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iin[i] = (struct iovec){in[i], DMAX};
            rx[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &peers[i],
                                                 .msg_namelen = sizeof peers[i],
                                                 .msg_iov = &iin[i], .msg_iovlen = 1}};
        }
        int n = recvmmsg(fd, rx, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            size_t len = rx[i].msg_len;
            memcpy(outb[i], "Hello, ", 7);
            memcpy(outb[i] + 7, in[i], len);
            outb[i][7 + len] = '!';
            iout[i] = (struct iovec){outb[i], len + 8};
            tx[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &peers[i],
                                                 .msg_namelen = rx[i].msg_hdr.msg_namelen,
                                                 .msg_iov = &iout[i], .msg_iovlen = 1}};
        }
        for (int done = 0; done < n;) {
            int k = sendmmsg(fd, tx + done, (unsigned)(n - done), 0);
            if (k <= 0)
                break;
            done += k;
        }
    }
}
