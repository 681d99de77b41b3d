/* Unit tests: the byte buffer. */
#include <criterion/criterion.h>
#include <string.h>

#include "sockit.h"

Test(buf, empty_owns_nothing)
{
    struct sk_buf b = {0};
    cr_assert_eq(sk_buf_size(&b), 0);
    cr_assert_eq(sk_buf_append(&b, "abc", 3), 0);
    cr_assert_not_null(b.data);
    sk_buf_consume(&b, 3);
    cr_assert_null(b.data, "an emptied buffer releases its memory");
    cr_assert_eq(b.cap, 0);
}

Test(buf, append_consume_keeps_order)
{
    struct sk_buf b = {0};
    char big[5000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7);
    cr_assert_eq(sk_buf_append(&b, big, 3000), 0);
    sk_buf_consume(&b, 1000);
    cr_assert_eq(sk_buf_append(&b, big + 3000, 2000), 0);
    cr_assert_eq(sk_buf_size(&b), 4000);
    cr_assert_eq(memcmp(sk_buf_head(&b), big + 1000, 4000), 0);
    sk_buf_free(&b);
    cr_assert_eq(sk_buf_size(&b), 0);
}

Test(buf, reserve_commit_and_reclaim_prefix)
{
    struct sk_buf b = {0};
    char *p = sk_buf_reserve(&b, 100);
    cr_assert_not_null(p);
    memset(p, 'x', 100);
    sk_buf_commit(&b, 100);
    size_t cap = b.cap;
    sk_buf_consume(&b, 90);
    /* room exists once the consumed prefix is reclaimed: no growth */
    p = sk_buf_reserve(&b, cap - 20);
    cr_assert_not_null(p);
    cr_assert_eq(b.cap, cap);
    cr_assert_eq(b.off, 0);
    cr_assert_eq(memcmp(sk_buf_head(&b), "xxxxxxxxxx", 10), 0);
    sk_buf_free(&b);
}

Test(buf, absurd_reserve_fails_cleanly)
{
    struct sk_buf b = {0};
    cr_assert_eq(sk_buf_append(&b, "a", 1), 0);
    cr_assert_null(sk_buf_reserve(&b, SIZE_MAX - 8));
    cr_assert_eq(sk_buf_size(&b), 1);
    sk_buf_free(&b);
}

Test(buf, held_counts_capacity_and_malloc_overhead)
{
    /* glibc: 8-byte header, 16-byte granules, 32 at least; mmapped pages
     * from 128 KiB on. What a limit counts is never less than the content. */
    cr_assert_eq(sk_alloc_cost(1), 32);
    cr_assert_eq(sk_alloc_cost(24), 32);
    cr_assert_eq(sk_alloc_cost(57), 80);
    cr_assert_eq(sk_alloc_cost(256), 272);
    cr_assert_eq(sk_alloc_cost(128 * 1024), 128 * 1024 + 4096);
    struct sk_buf b = {0};
    cr_assert_eq(sk_buf_held(&b), 0, "an empty buffer holds nothing");
    cr_assert_eq(sk_buf_append(&b, "x", 1), 0);
    cr_assert_geq(sk_buf_held(&b), b.cap, "the capacity counts, not the content");
    char big[5000] = {0};
    cr_assert_eq(sk_buf_append(&b, big, sizeof big), 0);
    cr_assert_eq(sk_buf_held(&b), sk_alloc_cost(b.cap));
    cr_assert_gt(sk_buf_held(&b), sk_buf_size(&b));
    sk_buf_consume(&b, sk_buf_size(&b));
    cr_assert_eq(sk_buf_held(&b), 0);
}
