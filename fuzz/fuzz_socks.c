/* Fuzz target: the SOCKS5 and SOCKS4 clients' reader of a proxy's replies
 * (sk__socks5_feed, lib/fetch_socks.c). The first byte picks the protocol
 * and whether credentials were offered (0x80: SOCKS5 with credentials;
 * 0xC0 both: SOCKS4) and the size of the reads (the low 7 bits); the rest
 * is the proxy's bytes, fed in those pieces (each exact-size copy: a read
 * past it is seen). Besides the sanitizers' checks: a reply never grows
 * past 262 bytes (SOCKS4: 8), the steps come in the protocol's order
 * (method, then auth only when offered, then CONNECT, then up; SOCKS4: up
 * at once), a failure is final, and the same bytes fed one at a time end
 * in the same step. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds p[0..n) in pieces of `piece` bytes; the last step that is not MORE. */
static int run(const uint8_t *p, size_t n, size_t piece, bool auth, bool v4)
{
    struct sk__socks5 s;
    if (v4)
        sk__socks4_init(&s);
    else
        sk__socks5_init(&s, auth);
    int last = SK__SOCKS_MORE, order = 0;
    for (size_t off = 0; off < n; off += piece) {
        size_t k = n - off < piece ? n - off : piece;
        unsigned char *copy = malloc(k);
        if (!copy)
            abort();
        memcpy(copy, p + off, k);
        int rc = sk__socks5_feed(&s, copy, k);
        free(copy);
        if (s.got > (v4 ? 8 : 262))
            __builtin_trap();
        if (v4 && (rc == SK__SOCKS_SEND_AUTH || rc == SK__SOCKS_SEND_CONNECT))
            __builtin_trap();
        if (rc == SK__SOCKS_MORE)
            continue;
        if (last < 0 || (last == SK__SOCKS_UP && rc != SK__SOCKS_EEXTRA)) /* the end is final */
            __builtin_trap();
        if (rc == SK__SOCKS_SEND_AUTH && (!auth || order != 0))
            __builtin_trap();
        if (rc == SK__SOCKS_SEND_CONNECT && order > 1)
            __builtin_trap();
        if (rc == SK__SOCKS_UP && order == 0 && !v4)
            __builtin_trap();
        order = rc == SK__SOCKS_SEND_AUTH ? 1 : rc == SK__SOCKS_SEND_CONNECT ? 2 : order;
        last = rc;
        if (rc < 0)
            break;
    }
    return last;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool v4 = (data[0] & 0xC0) == 0xC0;
    bool auth = data[0] & 0x80;
    size_t piece = (size_t)(data[0] & 0x7f) + 1;
    int a = run(data + 1, size - 1, piece, auth, v4);
    int b = run(data + 1, size - 1, 1, auth, v4);
    /* EEXTRA depends on the split (bytes ahead of the client's turn); any
     * other outcome does not */
    if (a != b && a != SK__SOCKS_EEXTRA && b != SK__SOCKS_EEXTRA)
        __builtin_trap();
    return 0;
}
