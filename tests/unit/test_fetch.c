/* Unit tests: the HTTP client's API around a transfer (options, errors,
 * the checksum and token helpers); transfers themselves are tested against
 * real and hostile servers in tests/integration/test_fetch_*.py. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

Test(fetch, opts_init_sets_size_and_defaults)
{
    struct sk_fetch_opts o;
    memset(&o, 0xff, sizeof o);
    sk_fetch_opts_init(&o);
    cr_assert_eq(o.size, sizeof o);
    cr_assert_eq(o.max_redirs, 10);
    cr_assert_eq(o.connect_timeout_ms, 30000);
    cr_assert_eq(o.idle_timeout_ms, 60000);
    cr_assert_eq(o.flags, 0u);
    cr_assert_null(o.output);
    cr_assert_null(o.sha256);
}

Test(fetch, new_refuses_an_unknown_layout)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.size = sizeof o - 1;
    struct sk_fetch *f = (struct sk_fetch *)&o;
    cr_assert_eq(sk_fetch_new(&o, &f), SK_EUSAGE);
    cr_assert_null(f);
    sk_fetch_free(NULL);
}

/* A program built before max_filesize was appended passes the older size:
 * accepted, the new field 0 (no limit). */
Test(fetch, new_accepts_the_layout_before_max_filesize)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.size = offsetof(struct sk_fetch_opts, user_agent) + sizeof o.user_agent;
    o.max_filesize = 1; /* beyond the old size: not read */
    struct sk_fetch *f;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    cr_assert_not_null(f);
    sk_fetch_free(f);
    o.size = sizeof o;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    sk_fetch_free(f);
}

Test(fetch, new_refuses_compressed_with_resume)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.output = "x";
    o.flags = SK_FETCH_COMPRESSED | SK_FETCH_RESUME;
    struct sk_fetch *f = (struct sk_fetch *)&o;
    cr_assert_eq(sk_fetch_new(&o, &f), SK_EUSAGE);
    cr_assert_null(f);
}

Test(fetch, new_takes_the_first_layout_without_credentials)
{
    /* a program built before user and password were appended */
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.user = "not\x01valid"; /* refused where it is read */
    struct sk_fetch *f;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    cr_assert_eq(sk_fetch_run(f, "ftp://example.org/x"), SK_EUSAGE);
    cr_assert(strstr(sk_fetch_error(f), "invalid credentials"), "%s", sk_fetch_error(f));
    sk_fetch_free(f);
    o.size = offsetof(struct sk_fetch_opts, user_agent) + sizeof o.user_agent;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    cr_assert_eq(sk_fetch_run(f, "ftp://example.org/x"), SK_EUSAGE);
    cr_assert(strstr(sk_fetch_error(f), "unsupported URL scheme"), "user not read: %s",
              sk_fetch_error(f));
    sk_fetch_free(f);
    o.size = offsetof(struct sk_fetch_opts, user_agent) + sizeof o.user_agent + 1;
    cr_assert_eq(sk_fetch_new(&o, &f), SK_EUSAGE);
}

/* http_version was appended after password: the layout that ended with
 * password still works (HTTP/2 offered), a value this library does not
 * know is refused. */
Test(fetch, new_takes_the_layout_before_http_version)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    cr_assert_eq(o.http_version, SK_FETCH_HTTP_DEFAULT);
    o.size = offsetof(struct sk_fetch_opts, password) + sizeof o.password;
    o.http_version = (enum sk_fetch_http_version)99; /* beyond the old size: not read */
    struct sk_fetch *f;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    sk_fetch_free(f);
    o.size = sizeof o;
    cr_assert_eq(sk_fetch_new(&o, &f), SK_EUSAGE);
    cr_assert_null(f);
    o.http_version = SK_FETCH_HTTP_1_1;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    o.http_version = (enum sk_fetch_http_version)(SK_FETCH_HTTP_2_PRIOR_KNOWLEDGE + 1);
    cr_assert_eq(sk_fetch_set_opts(f, &o), SK_EUSAGE);
    o.http_version = SK_FETCH_HTTP_2;
    cr_assert_eq(sk_fetch_set_opts(f, &o), 0);
    o.http_version = SK_FETCH_HTTP_2_PRIOR_KNOWLEDGE; /* appended later */
    cr_assert_eq(sk_fetch_set_opts(f, &o), 0);
    sk_fetch_free(f);
}

/* max_recv_speed, low_speed_limit and low_speed_time_ms were appended
 * after http_version: the layout that ended there (its sizeof: where
 * max_recv_speed begins) still works, the new fields then unread; a
 * negative low_speed_time_ms is refused. */
Test(fetch, new_takes_the_layout_before_the_rate_fields)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    cr_assert_eq(o.max_recv_speed, 0);
    cr_assert_eq(o.low_speed_limit, 0);
    cr_assert_eq(o.low_speed_time_ms, 0);
    o.size = offsetof(struct sk_fetch_opts, max_recv_speed);
    o.low_speed_time_ms = -1; /* beyond the old size: not read */
    struct sk_fetch *f;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    sk_fetch_free(f);
    o.size = sizeof o;
    cr_assert_eq(sk_fetch_new(&o, &f), SK_EUSAGE);
    cr_assert_null(f);
    o.low_speed_time_ms = 2000;
    o.low_speed_limit = 10;
    o.max_recv_speed = 1024;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    o.low_speed_time_ms = -5;
    cr_assert_eq(sk_fetch_set_opts(f, &o), SK_EUSAGE);
    sk_fetch_free(f);
}

Test(fetch, url_credentials_never_in_messages)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    struct sk_fetch *f;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    static const char *const bad[] = {"http://zqx:hunter2@bad host/", "ftp://zqx:hunter2@h/",
                                      "http://zqx:hunter2%zz@h/", "http://zqx:hunter2%0a@h/",
                                      "http://zqx%3a:hunter2@h/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(sk_fetch_run(f, bad[i]), SK_EUSAGE, "%s", bad[i]);
        cr_assert(*sk_fetch_error(f));
        cr_assert_null(strstr(sk_fetch_error(f), "hunter2"), "%s", sk_fetch_error(f));
        cr_assert_null(strstr(sk_fetch_error(f), "zqx"), "%s", sk_fetch_error(f));
    }
    sk_fetch_free(f);
}

Test(fetch, bad_urls_fail_before_any_network_work)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    struct sk_fetch *f;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    cr_assert_eq(sk_fetch_run(f, "ftp://example.org/x"), SK_EUSAGE);
    cr_assert(strstr(sk_fetch_error(f), "unsupported URL scheme"), "%s", sk_fetch_error(f));
    cr_assert_eq(sk_fetch_run(f, "http://[::1/x"), SK_EUSAGE);
    cr_assert(strstr(sk_fetch_error(f), "invalid URL"), "%s", sk_fetch_error(f));
    cr_assert_eq(sk_fetch_status(f), 0);
    sk_fetch_free(f);
}

Test(fetch, resume_needs_an_output_file)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.flags = SK_FETCH_RESUME;
    struct sk_fetch *f;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    cr_assert_eq(sk_fetch_run(f, "http://127.0.0.1:9/x"), SK_EUSAGE);
    sk_fetch_free(f);
}

Test(fetch, a_cancel_before_the_run_stops_it_at_connect)
{
    struct sk_fetch_cancel c = SK_FETCH_CANCEL_INIT;
    sk_fetch_cancel_raise(&c, 2);
    cr_assert_eq(c.flag, 2);
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.cancel = &c;
    o.retries = 5; /* a cancel is never retried */
    struct sk_fetch *f;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    int rc = sk_fetch_run(f, "http://127.0.0.1:1/x");
    cr_assert_eq(rc, SK_ERR(ECANCELED), "%d %s", rc, sk_fetch_error(f));
    cr_assert(strstr(sk_fetch_error(f), "interrupted (SIGINT)"), "%s", sk_fetch_error(f));
    sk_fetch_free(f);
}

/* A server that accepts (the kernel's backlog does) and never answers. */
static int silent_listener(unsigned short *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 4) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

Test(fetch, a_limit_is_told_by_its_cause_not_by_an_option_name)
{
    unsigned short port;
    int lfd = silent_listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", port);
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    struct sk_fetch *f;
    /* The idle timeout on the loop's timer: the head never comes. */
    o.idle_timeout_ms = 150;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    uint64_t t0 = sk_now_ms();
    int rc = sk_fetch_run(f, url);
    cr_assert_eq(rc, SK_ETIMEDOUT, "%d %s", rc, sk_fetch_error(f));
    cr_expect(sk_now_ms() - t0 < 3000);
    cr_expect_eq(sk_fetch_cause(f), SK_FETCH_CAUSE_IDLE_TIMEOUT);
    cr_expect(strstr(sk_fetch_error(f), "reading the response: timed out"), "%s",
              sk_fetch_error(f));
    cr_expect(!strstr(sk_fetch_error(f), "--"), "%s", sk_fetch_error(f));
    sk_fetch_free(f);
    /* max_time first: its cause wins. */
    o.idle_timeout_ms = 60000;
    o.max_time_ms = 150;
    cr_assert_eq(sk_fetch_new(&o, &f), 0);
    rc = sk_fetch_run(f, url);
    cr_assert_eq(rc, SK_ETIMEDOUT, "%d %s", rc, sk_fetch_error(f));
    cr_expect_eq(sk_fetch_cause(f), SK_FETCH_CAUSE_MAX_TIME);
    cr_expect(!strstr(sk_fetch_error(f), "--"), "%s", sk_fetch_error(f));
    /* A run that fails otherwise has no cause. */
    rc = sk_fetch_run(f, "ftp://x/");
    cr_expect_eq(rc, SK_EUSAGE);
    cr_expect_eq(sk_fetch_cause(f), SK_FETCH_CAUSE_NONE);
    sk_fetch_free(f);
    close(lfd);
}

Test(fetch, sha256_hex_is_64_digits_either_case)
{
    unsigned char d[32];
    const char *hex = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff";
    cr_assert_eq(sk_fetch_parse_sha256(hex, d), 0);
    cr_assert_eq(d[0], 0x00);
    cr_assert_eq(d[10], 0xaa);
    cr_assert_eq(d[31], 0xff);
    cr_assert_eq(sk_fetch_parse_sha256("00", d), SK_EPARSE);
    cr_assert_eq(sk_fetch_parse_sha256(
                     "g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", d),
                 SK_EPARSE);
    cr_assert_eq(sk_fetch_parse_sha256(
                     "0011223344556677889 aabbccddeeff00112233445566778899aabbccddeeff", d),
                 SK_EPARSE);
}

Test(fetch, http_tokens)
{
    cr_assert(sk_http_is_token("X-Custom_1.2~!", 14));
    cr_assert(!sk_http_is_token("", 0));
    cr_assert(!sk_http_is_token("Bad Name", 8));
    cr_assert(!sk_http_is_token("a:b", 3));
    cr_assert(!sk_http_is_token("\x80", 1));
}

Test(fetch, every_fetch_error_kind_has_a_name)
{
    const int codes[] = {SK_ECONNECT, SK_ETRUNCATED, SK_EWRITE, SK_ECHECKSUM};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        cr_assert_str_neq(sk_strerror(codes[i]), "unknown error", "%d", codes[i]);
    cr_assert_str_eq(sk_strerror(SK_ECHECKSUM), "checksum mismatch");
}
