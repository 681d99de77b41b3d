/* Fuzz target: the response-head parser and framing rules. Every prefix
 * of a head that parses must be INCOMPLETE or an error (never a different
 * success), and the parse must not depend on bytes after the head. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    struct sk_http_resp r;
    struct sk_http_header h[SK_HTTP_HEADERS_MAX];
    int rc = sk_http_resp_parse(s, size, &r, h, SK_HTTP_HEADERS_MAX);
    if (rc > 0) {
        if ((size_t)rc > size || rc > SK_HTTP_HEAD_MAX)
            __builtin_trap();
        struct sk_http_framing f;
        sk_http_framing(&r, false, &f);
        sk_http_framing(&r, true, &f);
        sk_http_header_find(&r, "Location");
        struct sk_http_resp r2;
        if (sk_http_resp_parse(s, (size_t)rc, &r2, h, SK_HTTP_HEADERS_MAX) != rc)
            __builtin_trap();
        if (rc > 1 && sk_http_resp_parse(s, (size_t)rc - 1, &r2, h, SK_HTTP_HEADERS_MAX) > 0)
            __builtin_trap();
    } else if (rc != SK_HTTP_INCOMPLETE && rc != SK_EPARSE && rc != SK_ETOOBIG) {
        __builtin_trap();
    }
    return 0;
}
