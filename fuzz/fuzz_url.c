/* Fuzz target: URL parsing, formatting and reference resolution. The input
 * is split at the first NUL byte: an absolute URL, then a reference to
 * resolve against it. */
#include <stdint.h>
#include <string.h>

#include "sockit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sk_url base, out;
    const char *s = (const char *)data;
    const char *nul = memchr(s, '\0', size);
    size_t blen = nul ? (size_t)(nul - s) : size;
    if (sk_url_parse(s, blen, &base) < 0)
        return 0;
    char buf[SK_URL_TARGET_MAX + SK_HOST_MAX + 32];
    if (sk_url_format(&base, buf, sizeof buf) > 0) {
        /* Formatting then parsing again is stable. */
        if (sk_url_parse(buf, strlen(buf), &out) != 0 || strcmp(out.target, base.target) != 0 ||
            strcmp(out.host, base.host) != 0 || out.port != base.port)
            __builtin_trap();
    }
    sk_url_basename(&base, buf, sizeof buf);
    if (nul && sk_url_resolve(&base, nul + 1, size - blen - 1, &out) == 0) {
        if (out.target[0] != '/')
            __builtin_trap();
        sk_url_same_origin(&base, &out);
    }
    return 0;
}
