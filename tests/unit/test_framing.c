/* Unit tests: framing (chunk/line) and line splitting. */
#include <criterion/criterion.h>
#include <string.h>

#include "sockit.h"

Test(framing, parse_names)
{
    enum sk_framing f;
    cr_assert_eq(sk_framing_parse("line", &f), 0);
    cr_assert_eq(f, SK_FRAMING_LINE);
    cr_assert_eq(sk_framing_parse("chunk", &f), 0);
    cr_assert_eq(f, SK_FRAMING_CHUNK);
    cr_assert_eq(sk_framing_parse("lines", &f), SK_EPARSE);
    cr_assert_eq(sk_framing_parse("", &f), SK_EPARSE);
}

Test(line, complete_lf_and_crlf)
{
    size_t m = 99, c = 99;
    cr_assert_eq(sk_line_next("abc\nrest", 8, 100, &m, &c), 1);
    cr_assert_eq(m, 3);
    cr_assert_eq(c, 4);
    cr_assert_eq(sk_line_next("abc\r\n", 5, 100, &m, &c), 1);
    cr_assert_eq(m, 3);
    cr_assert_eq(c, 5);
    cr_assert_eq(sk_line_next("\n", 1, 100, &m, &c), 1);
    cr_assert_eq(m, 0);
}

Test(line, incomplete_needs_more)
{
    size_t m, c;
    cr_assert_eq(sk_line_next("abc", 3, 100, &m, &c), 0);
    cr_assert_eq(sk_line_next("abc\r", 4, 100, &m, &c), 0);
    cr_assert_eq(sk_line_next("", 0, 100, &m, &c), 0);
}

Test(line, split_at_every_point_reassembles)
{
    /* Simulates a session buffer: bytes arrive split at i, then the rest. */
    const char *msg = "Michael\r\nTracy\nSarah\n";
    size_t len = strlen(msg);
    for (size_t i = 0; i <= len; i++) {
        char buf[64];
        size_t have = 0, m, c, got = 0;
        const char *want[] = {"Michael", "Tracy", "Sarah"};
        memcpy(buf, msg, i);
        have = i;
        for (int round = 0; round < 2; round++) {
            int rc;
            while ((rc = sk_line_next(buf, have, 100, &m, &c)) == 1) {
                cr_assert_lt(got, 3);
                cr_assert_eq(m, strlen(want[got]), "split %zu msg %zu", i, got);
                cr_assert_eq(memcmp(buf, want[got], m), 0);
                got++;
                memmove(buf, buf + c, have - c);
                have -= c;
            }
            cr_assert_eq(rc, 0);
            if (round == 0) {
                memcpy(buf + have, msg + i, len - i);
                have += len - i;
            }
        }
        cr_assert_eq(got, 3, "split at %zu", i);
        cr_assert_eq(have, 0);
    }
}

Test(line, pipelined_in_order)
{
    const char *data = "a\nbb\nccc\n";
    size_t off = 0, m, c;
    const char *want[] = {"a", "bb", "ccc"};
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(sk_line_next(data + off, strlen(data) - off, 10, &m, &c), 1);
        cr_assert_eq(m, strlen(want[k]));
        cr_assert_eq(memcmp(data + off, want[k], m), 0);
        off += c;
    }
    cr_assert_eq(off, strlen(data));
}

Test(line, oversized_rejected)
{
    char big[32];
    size_t m, c;
    memset(big, 'x', sizeof big);
    /* No newline within max + 2 bytes: too long. */
    cr_assert_eq(sk_line_next(big, sizeof big, 8, &m, &c), SK_ETOOBIG);
    /* Exactly max bytes + "\n" is accepted, max + 1 is not. */
    memcpy(big + 8, "\n", 1);
    cr_assert_eq(sk_line_next(big, 9, 8, &m, &c), 1);
    cr_assert_eq(m, 8);
    big[8] = 'x';
    big[9] = '\n';
    cr_assert_eq(sk_line_next(big, 10, 8, &m, &c), SK_ETOOBIG);
    /* Exactly max bytes + "\r\n" is accepted. */
    big[8] = '\r';
    cr_assert_eq(sk_line_next(big, 10, 8, &m, &c), 1);
    cr_assert_eq(m, 8);
}

Test(line, nul_bytes_inside_message)
{
    const char data[] = {'a', '\0', 'b', '\n'};
    size_t m, c;
    cr_assert_eq(sk_line_next(data, sizeof data, 10, &m, &c), 1);
    cr_assert_eq(m, 3);
    cr_assert_eq(data[1], '\0');
}
