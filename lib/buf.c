/* Growable byte buffer. Memory is dropped as soon as the buffer empties, so
 * an idle connection's buffers cost nothing. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_int.h"
#include "sockit/buf.h"
#include "sockit/err.h"

char *sk_buf_reserve(struct sk_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return b->data + b->len;
    size_t used = b->len - b->off;
    if (b->off > 0 && b->cap - used >= n) {
        /* Enough room once the consumed prefix is reclaimed. */
        memmove(b->data, b->data + b->off, used);
        b->off = 0;
        b->len = used;
        return b->data + b->len;
    }
    if (n > SIZE_MAX / 2 - used)
        return NULL;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < used + n)
        cap *= 2;
    char *p = sk__malloc(cap);
    if (!p)
        return NULL;
    if (used)
        memcpy(p, b->data + b->off, used);
    free(b->data);
    b->data = p;
    b->off = 0;
    b->len = used;
    b->cap = cap;
    return b->data + b->len;
}

void sk_buf_commit(struct sk_buf *b, size_t n)
{
    b->len += n;
}

int sk_buf_append(struct sk_buf *b, const void *p, size_t n)
{
    char *dst = sk_buf_reserve(b, n);
    if (!dst)
        return SK_ERR(ENOMEM);
    if (n)
        memcpy(dst, p, n);
    b->len += n;
    return 0;
}

void sk_buf_consume(struct sk_buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        sk_buf_free(b);
}

void sk_buf_free(struct sk_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
