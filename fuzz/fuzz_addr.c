/* Fuzz target: HOST:PORT (sk_endpoint_parse) and address formatting.
 * An accepted endpoint must be within bounds and survive a round trip
 * (written back as HOST:PORT, bracketed when it must be, it parses to the
 * same endpoint); the input's first bytes also format as a socket address. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1); /* exact size: a read past the NUL is seen */
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    struct sk_endpoint ep;
    memset(&ep, 0xA5, sizeof ep);
    if (sk_endpoint_parse(s, &ep) == 0) {
        size_t hlen = strnlen(ep.host, sizeof ep.host);
        if (hlen == 0 || hlen >= sizeof ep.host || strlen(s) < hlen + 2)
            abort();
        char again[SK_HOST_MAX + 16];
        bool brackets = strchr(ep.host, ':') || ep.host[0] == '[';
        snprintf(again, sizeof again, brackets ? "[%s]:%u" : "%s:%u", ep.host, ep.port);
        struct sk_endpoint ep2;
        if (sk_endpoint_parse(again, &ep2) != 0 || ep2.port != ep.port ||
            strcmp(ep2.host, ep.host) != 0)
            abort();
    }
    /* A socket address of either family (or neither) from the raw bytes. */
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    memcpy(&sa, data, size < sizeof sa ? size : sizeof sa);
    sa.sin6_family = size > 0 ? (data[0] & 1 ? AF_INET : AF_INET6) : AF_UNIX;
    char out[SK_ADDRSTR_MAX];
    sk_addr_format((struct sockaddr *)&sa, out, sizeof out);
    if (strnlen(out, sizeof out) >= sizeof out)
        abort();
    free(s);
    return 0;
}
