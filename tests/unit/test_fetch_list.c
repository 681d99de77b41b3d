/* Unit tests: the URL-list reader (sk_fetch_list_next, sockit fetch -i). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sockit.h"

static FILE *list(const char *s, size_t len)
{
    FILE *f = fmemopen((void *)s, len, "r");
    cr_assert(f);
    return f;
}

Test(fetch_list, skips_blank_lines_and_comments_and_trims)
{
    static const char s[] = "\n  # a comment\nhttp://a/1\n\t \r\n  http://b/2  \r\n#x\nhttp://c/3";
    FILE *f = list(s, sizeof s - 1);
    char buf[64];
    unsigned long line = 0;
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 1);
    cr_assert_str_eq(buf, "http://a/1");
    cr_assert_eq(line, 3);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 1);
    cr_assert_str_eq(buf, "http://b/2");
    cr_assert_eq(line, 5);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 1); /* no final newline */
    cr_assert_str_eq(buf, "http://c/3");
    cr_assert_eq(line, 7);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 0);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 0); /* stays at the end */
    fclose(f);
}

Test(fetch_list, empty_input_and_only_comments_end_at_once)
{
    char buf[16];
    unsigned long line = 0;
    FILE *f = list("", 0);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 0);
    cr_assert_eq(line, 0);
    fclose(f);
    static const char s[] = "# only\n\n   \n#end";
    f = list(s, sizeof s - 1);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 0);
    cr_assert_eq(line, 4);
    fclose(f);
}

Test(fetch_list, longest_line_fits_and_one_more_byte_is_refused)
{
    char buf[8];
    unsigned long line = 0;
    static const char s[] = "1234567\n12345678\nnext\n";
    FILE *f = list(s, sizeof s - 1);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 1);
    cr_assert_str_eq(buf, "1234567");
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), SK_ETOOBIG);
    cr_assert_eq(line, 2);
    /* the long line was consumed whole: the next call reads the next line */
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 1);
    cr_assert_str_eq(buf, "next");
    cr_assert_eq(line, 3);
    fclose(f);
}

Test(fetch_list, long_last_line_without_newline_is_refused)
{
    char buf[4];
    unsigned long line = 0;
    FILE *f = list("abcdef", 6);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), SK_ETOOBIG);
    cr_assert_eq(line, 1);
    fclose(f);
}

Test(fetch_list, nul_byte_is_refused_with_its_line)
{
    static const char s[] = "http://a/\n\0\nhttp://a\0b\n";
    char buf[32];
    unsigned long line = 0;
    FILE *f = list(s, sizeof s - 1);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 1);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), SK_EPARSE);
    cr_assert_eq(line, 2);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), SK_EPARSE);
    cr_assert_eq(line, 3);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 0);
    fclose(f);
}

Test(fetch_list, bad_arguments_are_usage_errors)
{
    char buf[2];
    unsigned long line = 0;
    FILE *f = list("x\n", 2);
    cr_assert_eq(sk_fetch_list_next(NULL, buf, sizeof buf, &line), SK_EUSAGE);
    cr_assert_eq(sk_fetch_list_next(f, NULL, sizeof buf, &line), SK_EUSAGE);
    cr_assert_eq(sk_fetch_list_next(f, buf, 1, &line), SK_EUSAGE);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, NULL), SK_EUSAGE);
    cr_assert_eq(sk_fetch_list_next(f, buf, sizeof buf, &line), 1);
    cr_assert_str_eq(buf, "x");
    fclose(f);
}
