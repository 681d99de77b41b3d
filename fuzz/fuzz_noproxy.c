/* Fuzz target: sk_fetch_noproxy_match (curl's no_proxy rule). The input is
 * a no_proxy list, a NUL, a host name or address; the port is the input's
 * length. Besides the sanitizers' checks: "*" matches every host, and a
 * list that matches still matches with another entry after it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nul = memchr(data, '\0', size);
    if (!nul)
        return 0;
    size_t llen = (size_t)(nul - (const char *)data);
    char *list = malloc(llen + 8), *host = malloc(size - llen); /* exact: reads past are seen */
    if (!list || !host) {
        free(list);
        free(host);
        return 0;
    }
    memcpy(list, data, llen);
    list[llen] = '\0';
    size_t hlen = strnlen(nul + 1, size - llen - 1);
    memcpy(host, nul + 1, hlen);
    host[hlen] = '\0';
    int port = (int)(size % 65536);
    bool m = sk_fetch_noproxy_match(list, host, port);
    if (*host && !sk_fetch_noproxy_match("*", host, port))
        __builtin_trap();
    memcpy(list + llen, ",x.test", 8);
    if (m && !sk_fetch_noproxy_match(list, host, port))
        __builtin_trap();
    free(list);
    free(host);
    return 0;
}
