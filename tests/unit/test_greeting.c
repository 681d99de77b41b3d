/* Unit tests: the greeting protocol's messages (src/greeting.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "../../src/greeting.h"

Test(greeting, reply_bytes_exact)
{
    char out[64];
    size_t n = greeting_reply_write(SK_FRAMING_CHUNK, "Michael", 7, out);
    cr_assert_eq(n, greeting_reply_len(SK_FRAMING_CHUNK, 7));
    cr_assert_eq(memcmp(out, "Hello, Michael!", 15), 0);
    n = greeting_reply_write(SK_FRAMING_LINE, "M", 1, out);
    cr_assert_eq(n, 10);
    cr_assert_eq(memcmp(out, "Hello, M!\n", 10), 0);
    n = greeting_reply_write(SK_FRAMING_CHUNK, "", 0, out);
    cr_assert_eq(n, 8);
    cr_assert_eq(memcmp(out, "Hello, !", 8), 0);
}

Test(greeting, reply_carries_nul_bytes)
{
    const char msg[] = {'a', '\0', 'b', '\xff'};
    char out[32];
    size_t n = greeting_reply_write(SK_FRAMING_CHUNK, msg, sizeof msg, out);
    cr_assert_eq(n, 12);
    cr_assert_eq(memcmp(out + 7, msg, sizeof msg), 0);
    cr_assert_eq(out[11], '!');
}

Test(greeting, greeting)
{
    size_t n;
    const char *g = greeting_text(SK_FRAMING_CHUNK, &n);
    cr_assert_eq(n, 8);
    cr_assert_eq(memcmp(g, "Welcome!", 8), 0);
    g = greeting_text(SK_FRAMING_LINE, &n);
    cr_assert_eq(n, 9);
    cr_assert_eq(memcmp(g, "Welcome!\n", 9), 0);
}

Test(greeting, exit_is_exact)
{
    cr_assert(greeting_is_exit("exit", 4));
    cr_assert_not(greeting_is_exit("exit\n", 5));
    cr_assert_not(greeting_is_exit("exi", 3));
    cr_assert_not(greeting_is_exit("Exit", 4));
}
