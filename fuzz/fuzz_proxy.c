/* Fuzz target: the PROXY protocol header parser (sk_proxy_parse). The
 * result is one of need-more, done (a length within the input and the
 * bound) or a parser's error; the input is also fed cut short at a point
 * chosen by its last byte and at every length up to the header's end: a
 * shorter prefix needs more or gives the same error, never a different
 * answer, and a header is decided within SK_PROXY_HEADER_MAX bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse(const uint8_t *data, size_t n, struct sk_proxy_header *h,
                 enum sk_proxy_error *err)
{
    /* An exact-size copy: a read past n is seen by the sanitizers. */
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        abort();
    memcpy(copy, data, n);
    memset(h, 0x5A, sizeof *h);
    int rc = sk_proxy_parse(copy, n, h, err);
    free(copy);
    return rc;
}

/* A shorter prefix agrees with the whole: need more, or the same error. */
static void check_prefix(const uint8_t *data, size_t k, int whole, enum sk_proxy_error whole_err)
{
    struct sk_proxy_header h;
    enum sk_proxy_error err;
    int rc = parse(data, k, &h, &err);
    if (rc == 0)
        return;
    if (whole > 0 || rc != SK_EPARSE || err != whole_err)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sk_proxy_header h, h2;
    enum sk_proxy_error err, err2;
    int rc = parse(data, size, &h, &err);
    if (rc > 0) {
        if ((size_t)rc > size || rc > SK_PROXY_HEADER_MAX || err != SK_PROXY_OK)
            abort();
        if (h.version != 1 && h.version != 2)
            abort();
        if (!h.local && h.src.ss_family != h.dst.ss_family)
            abort();
        if (!h.local && h.src.ss_family != AF_INET && h.src.ss_family != AF_INET6 &&
            h.src.ss_family != AF_UNIX)
            abort();
        if (h.version == 1 && rc > SK_PROXY_V1_MAX)
            abort();
        /* The header alone is the same header. */
        if (parse(data, (size_t)rc, &h2, &err2) != rc || h2.local != h.local ||
            (!h.local && (memcmp(&h2.src, &h.src, sizeof h.src) != 0 ||
                          memcmp(&h2.dst, &h.dst, sizeof h.dst) != 0)))
            abort();
    } else if (rc == SK_EPARSE) {
        if (err == SK_PROXY_OK || err >= SK_PROXY_TRUNCATED)
            abort(); /* those are the reader's to say */
    } else if (rc != 0 || size >= SK_PROXY_HEADER_MAX) {
        abort(); /* undecided within the bound */
    }
    size_t end = rc > 0 ? (size_t)rc : size;
    if (end > 0)
        check_prefix(data, data[size - 1] % end, rc, err);
    /* Every length, for inputs small enough to keep the run fast. */
    for (size_t k = 0; end <= 256 && k < end; k++)
        check_prefix(data, k, rc, err);
    return 0;
}
