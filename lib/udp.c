/* UDP side of the greeting server: stubs until the UDP issue lands. */
#include "server_int.h"
#include "sockit/err.h"

int sk__udp_worker_init(struct sk__worker *w)
{
    (void)w;
    return SK_EUSAGE;
}

void sk__udp_worker_free(struct sk__worker *w)
{
    (void)w;
}

void sk__udp_readable(struct sk__worker *w, int fd)
{
    (void)w;
    (void)fd;
}
