/* A growable byte buffer with a read offset: append at the end, consume at
 * the front. Zero-initialise (`struct sk_buf b = {0};`) before use; an empty
 * buffer owns no memory, which is how idle connections stay small. */
#ifndef SOCKIT_BUF_H
#define SOCKIT_BUF_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sk_buf {
    char *data;
    size_t off; /* first unread byte */
    size_t len; /* end of valid bytes (data[off..len) is the content) */
    size_t cap;
};

static inline size_t sk_buf_size(const struct sk_buf *b) { return b->len - b->off; }
/* An empty, never-allocated buffer has no data: NULL, not NULL + 0 (undefined). */
static inline const char *sk_buf_head(const struct sk_buf *b) { return b->data ? b->data + b->off : NULL; }

/* What malloc really takes for a block of n bytes (glibc: an 8-byte header,
 * 16-byte granules, 32 bytes at least; from 128 KiB on, whole mmapped
 * pages). Memory limits count this, not the bytes in use. */
static inline size_t sk_alloc_cost(size_t n)
{
    if (n >= 128 * 1024)
        return (n + 16 + 4095) & ~(size_t)4095;
    size_t c = (n + 8 + 15) & ~(size_t)15;
    return c < 32 ? 32 : c;
}
/* The memory the buffer holds (its capacity, not its content). */
static inline size_t sk_buf_held(const struct sk_buf *b)
{
    return b->cap ? sk_alloc_cost(b->cap) : 0;
}

/* Appends n bytes. Returns 0, or SK_ERR(ENOMEM). */
int sk_buf_append(struct sk_buf *b, const void *p, size_t n);
/* Makes room for n more bytes and returns where to write them (commit with
 * sk_buf_commit), or NULL on allocation failure. */
char *sk_buf_reserve(struct sk_buf *b, size_t n);
void sk_buf_commit(struct sk_buf *b, size_t n);
/* Drops n bytes from the front; frees the memory once the buffer is empty. */
void sk_buf_consume(struct sk_buf *b, size_t n);
/* Releases the memory; the buffer is empty and reusable afterwards. */
void sk_buf_free(struct sk_buf *b);

#ifdef __cplusplus
}
#endif

#endif
