/* Unit tests: bench's reply matcher (src/bench_match.c), in particular the
 * greeting protocol's bye line, which a draining server sends in place of a
 * reply: recognised wherever the reads split it, and nothing after it. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../src/bench_match.c"

static const char REPLY[] = "Hello, a!";
static const char BYE[] = "Error: server shutting down\n";

static struct match_spec spec(void)
{
    return (struct match_spec){.kind = MATCH_EXACT, .bytes = REPLY, .len = sizeof REPLY - 1,
                               .bye = BYE, .bye_len = sizeof BYE - 1};
}

/* Feeds s[0..n) cut at a and b (a <= b); returns the replies counted, or
 * SK_EPROTO from the first piece that failed. */
static long feed3(struct match_state *st, const char *s, size_t n, size_t a, size_t b)
{
    struct match_spec m = spec();
    size_t cut[4] = {0, a, b, n};
    long total = 0;
    for (int i = 0; i < 3; i++) {
        long k = match_feed(&m, st, s + cut[i], cut[i + 1] - cut[i]);
        if (k < 0)
            return k;
        total += k;
    }
    return total;
}

Test(bench_match, bye_after_replies_at_every_split)
{
    char s[128];
    int n = snprintf(s, sizeof s, "%s%s%s", REPLY, REPLY, BYE);
    for (int a = 0; a <= n; a++)
        for (int b = a; b <= n; b++) {
            struct match_state st = {0};
            cr_assert_eq(feed3(&st, s, (size_t)n, (size_t)a, (size_t)b), 2, "cuts %d %d", a, b);
            cr_assert(st.said_bye, "cuts %d %d", a, b);
        }
}

Test(bench_match, a_partial_bye_is_not_yet_said)
{
    struct match_spec m = spec();
    struct match_state st = {0};
    cr_assert_eq(match_feed(&m, &st, BYE, 10), 0);
    cr_assert_not(st.said_bye);
    cr_assert_eq(st.bye, 10);
    cr_assert_eq(match_feed(&m, &st, BYE + 10, strlen(BYE) - 10), 0);
    cr_assert(st.said_bye);
}

Test(bench_match, bytes_after_the_bye_are_a_protocol_error)
{
    char s[128];
    int n = snprintf(s, sizeof s, "%s%sX", REPLY, BYE);
    for (int a = 0; a < n; a++) {
        struct match_state st = {0};
        cr_assert_eq(feed3(&st, s, (size_t)n, (size_t)a, (size_t)a), SK_EPROTO, "cut %d", a);
    }
}

Test(bench_match, another_error_line_is_a_protocol_error)
{
    struct match_spec m = spec();
    struct match_state st = {0};
    cr_assert_eq(match_feed(&m, &st, "Error: message too long\n", 24), SK_EPROTO);
}

Test(bench_match, a_bye_inside_a_reply_is_a_protocol_error)
{
    struct match_spec m = spec();
    struct match_state st = {0};
    cr_assert_eq(match_feed(&m, &st, "Hel", 3), 0);
    cr_assert_eq(match_feed(&m, &st, BYE, strlen(BYE)), SK_EPROTO);
}

Test(bench_match, without_a_bye_spec_the_line_is_a_protocol_error)
{
    struct match_spec m = spec();
    m.bye = NULL;
    m.bye_len = 0;
    struct match_state st = {0};
    cr_assert_eq(match_feed(&m, &st, BYE, strlen(BYE)), SK_EPROTO);
    cr_assert_not(match_bye_starts(&m, &st, BYE, strlen(BYE)));
}

Test(bench_match, match_bye_refuses_more_than_the_line)
{
    struct match_spec m = spec();
    struct match_state st = {0};
    cr_assert_eq(match_bye(&m, &st, "Error: server shutting down\nX", strlen(BYE) + 1), SK_EPROTO);
    struct match_state st2 = {0};
    cr_assert_eq(match_bye(&m, &st2, BYE, strlen(BYE)), 0);
    cr_assert(st2.said_bye);
    cr_assert_eq(match_bye(&m, &st2, "", 0), SK_EPROTO); /* nothing once said */
}
