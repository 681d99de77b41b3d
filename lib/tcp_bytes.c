/* The bytes a TCP connection carried, as the kernel counts them: a session
 * keeps no counters of its own (it stays small), and the count is asked
 * for once, when its close is reported. Its own file: <linux/tcp.h> has
 * the fields glibc's <netinet/tcp.h> lacks, and the two do not mix. */
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "addr_int.h"

/* tcpi_state values (Linux's include/net/tcp_states.h, not exported to
 * user space; glibc's <netinet/tcp.h> has them but cannot be included). */
enum { STATE_CLOSE_WAIT = 8, STATE_LAST_ACK = 9, STATE_CLOSING = 11 };

void sk__tcp_bytes(int fd, bool fin_read, uint64_t *in, uint64_t *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    *in = *out = 0;
    /* Received: delivered in order, once. Sent: data octets minus those
     * sent again (tcpi_bytes_sent counts retransmissions; Linux >= 4.19). */
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return; /* not TCP (a socketpair in tests): nothing to say */
    *in = ti.tcpi_bytes_received;
    *out = ti.tcpi_bytes_sent - ti.tcpi_bytes_retrans;
    /* The peer's FIN takes a sequence number, which bytes_received counts;
     * it is not a byte. Received: read by the stream, or waiting unread. */
    bool fin = fin_read || ti.tcpi_state == STATE_CLOSE_WAIT ||
               ti.tcpi_state == STATE_LAST_ACK || ti.tcpi_state == STATE_CLOSING;
    if (fin && *in > 0)
        (*in)--;
}
