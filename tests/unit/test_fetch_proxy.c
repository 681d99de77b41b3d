/* Unit tests: the HTTP client's proxy settings — sk_fetch_noproxy_match
 * (curl's no_proxy), the options' older layout, the error code. Transfers
 * through proxies are tested against tinyproxy and hostile proxies in
 * tests/integration/test_fetch_proxy.py. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockit.h"

/* Every edge of the rule: list, host, port, whether it matches. */
#define SEPARATED "one.test,two.test  three.test ,\tfour.test,,five.test"
static const struct {
    const char *list, *host;
    int port;
    bool match;
} cases[] = {
    /* empty or null matches nothing */
    {"", "example.com", 80, false},
    {" , ,", "example.com", 80, false},
    {"*", "", 80, false},
    /* star matches everything */
    {"*", "example.com", 80, true},
    {"*", "10.0.0.1", 443, true},
    {"*", "::1", 8080, true},
    {"example.org, *", "example.com", 80, true},
    {"*.example.com", "a.example.com", 80, false}, /* not a pattern: curl's meaning */
    {"**", "example.com", 80, false},
    /* name matches itself and its subdomains */
    {"example.com", "example.com", 80, true},
    {"example.com", "a.example.com", 80, true},
    {"example.com", "a.b.example.com", 443, true},
    {"example.com", "notexample.com", 80, false},
    {"example.com", "example.com.evil", 80, false},
    {"example.com", "com", 80, false},
    {"a.example.com", "example.com", 80, false},
    {"xample.com", "example.com", 80, false},
    /* leading and trailing dots */
    {".example.com", "example.com", 80, true},
    {".example.com", "a.example.com", 80, true},
    {"example.com.", "a.example.com", 80, true},
    {"example.com", "a.example.com.", 80, true},
    {"example.com", "example.com.", 80, true},
    {".", "example.com", 80, false},
    {".example.com", "xexample.com", 80, false},
    /* case is ignored */
    {"EXAMPLE.com", "a.Example.COM", 80, true},
    {"LocalHost", "localhost", 80, true},
    /* separators commas and spaces */
    {SEPARATED, "one.test", 80, true},
    {SEPARATED, "two.test", 80, true},
    {SEPARATED, "three.test", 80, true},
    {SEPARATED, "four.test", 80, true},
    {SEPARATED, "x.five.test", 80, true},
    {SEPARATED, "six.test", 80, false},
    {SEPARATED, "test", 80, false},
    /* ports */
    {"example.com:8080", "example.com", 8080, true},
    {"example.com:8080", "a.example.com", 8080, true},
    {"example.com:8080", "example.com", 80, false},
    {"10.1.2.3:443", "10.1.2.3", 443, true},
    {"10.1.2.3:443", "10.1.2.3", 80, false},
    {"[::1]:8080", "::1", 8080, true},
    {"[::1]:8080", "::1", 80, false},
    /* a bad port matches nothing */
    {"example.com:", "example.com", 80, false},
    {"example.com:http", "example.com", 80, false},
    {"example.com:123456", "example.com", 57920, false},
    {"[::1]x", "::1", 80, false},
    {"[::1", "::1", 80, false},
    /* ipv4 addresses are literal */
    {"127.0.0.1", "127.0.0.1", 80, true},
    {"0.0.1", "127.0.0.1", 80, false},
    {"127.0.0.2", "127.0.0.1", 80, false},
    {"127.0.0", "127.0.0.1", 80, false},
    {"localhost", "127.0.0.1", 80, false},
    {"127.0.0.1", "localhost", 80, false},
    {"1.2.3.4", "a.1.2.3.4", 80, false}, /* a name, not the address */
    /* ipv6 with or without brackets */
    {"::1", "::1", 80, true},
    {"[::1]", "::1", 80, true},
    {"::1", "[::1]", 80, true},
    {"[::1]", "[::1]", 80, true},
    {"0:0:0:0:0:0:0:1", "::1", 80, true}, /* the same address, written otherwise */
    {"2001:DB8::1", "2001:db8::1", 80, true},
    {"::2", "::1", 80, false},
    {"::1", "127.0.0.1", 80, false},
    {"::ffff:127.0.0.1", "127.0.0.1", 80, false},
};

Test(noproxy, every_case)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_expect_eq(sk_fetch_noproxy_match(cases[i].list, cases[i].host, cases[i].port),
                     cases[i].match, "case %zu: list \"%s\", host %s, port %d", i,
                     cases[i].list, cases[i].host, cases[i].port);
}

Test(noproxy, null_arguments_match_nothing)
{
    cr_assert(!sk_fetch_noproxy_match(NULL, "example.com", 80));
    cr_assert(!sk_fetch_noproxy_match("*", NULL, 80));
}

Test(noproxy, long_entries_do_not_overflow)
{
    char list[3000], host[300];
    memset(list, 'a', sizeof list - 1);
    list[sizeof list - 1] = '\0';
    memset(host, 'a', sizeof host - 1);
    host[sizeof host - 1] = '\0';
    cr_assert(!sk_fetch_noproxy_match(list, host, 80));
    cr_assert(sk_fetch_noproxy_match(list + sizeof list - sizeof host, host, 80));
    list[0] = '[';
    cr_assert(!sk_fetch_noproxy_match(list, "::1", 80));
}

/* A loopback port nobody listens on. */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* A fetch of a closed port with o: its verdict. */
static int run_once(const struct sk_fetch_opts *o)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", closed_port());
    struct sk_fetch *f = NULL;
    cr_assert_eq(sk_fetch_new(o, &f), 0);
    int rc = sk_fetch_run(f, url);
    sk_fetch_free(f);
    return rc;
}

Test(fetch_opts, the_first_layout_is_still_accepted)
{
    /* A program built before the proxy fields: its size ends at user_agent;
     * what lies beyond it is never read. */
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.connect_timeout_ms = 5000;
    o.proxy_http = o.proxy_https = "socks6://127.0.0.1:1"; /* refused when read */
    cr_assert_eq(run_once(&o), SK_EUSAGE);
    o.size = offsetof(struct sk_fetch_opts, user_agent) + sizeof o.user_agent;
    cr_assert_eq(run_once(&o), SK_ECONNECT); /* direct */
    struct sk_fetch *f = (struct sk_fetch *)&o;
    o.size = offsetof(struct sk_fetch_opts, user_agent); /* cut inside a field */
    cr_assert_eq(sk_fetch_new(&o, &f), SK_EUSAGE);
    cr_assert_null(f);
}

Test(fetch_opts, bad_proxy_urls_are_usage_errors_with_a_reason)
{
    static const char *const bad[] = {"https://127.0.0.1:3128", "http://", "u:p@",
                                      "127.0.0.1:99999", "127.0.0.1:3128/path",
                                      "%zz@127.0.0.1:1", "[::1", "a b:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sk_fetch_opts o;
        sk_fetch_opts_init(&o);
        o.proxy_http = bad[i];
        struct sk_fetch *f = NULL;
        cr_assert_eq(sk_fetch_new(&o, &f), 0);
        cr_assert_eq(sk_fetch_run(f, "http://127.0.0.1:1/x"), SK_EUSAGE, "%s", bad[i]);
        cr_assert(strstr(sk_fetch_error(f), "proxy"), "%s: %s", bad[i], sk_fetch_error(f));
        sk_fetch_free(f);
    }
}

Test(fetch_opts, noproxy_and_empty_proxy_go_direct)
{
    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.proxy_http = "socks5://127.0.0.1:1"; /* never read for these */
    o.noproxy = "localhost, 127.0.0.1";
    cr_assert_eq(run_once(&o), SK_ECONNECT);
    o.noproxy = NULL;
    o.proxy_http = "";
    cr_assert_eq(run_once(&o), SK_ECONNECT);
    o.proxy_https = "socks5://127.0.0.1:1"; /* the https one: not for http URLs */
    cr_assert_eq(run_once(&o), SK_ECONNECT);
}

Test(fetch_opts, init_leaves_no_proxy)
{
    struct sk_fetch_opts o;
    memset(&o, 0xff, sizeof o);
    sk_fetch_opts_init(&o);
    cr_assert_null(o.proxy_http);
    cr_assert_null(o.proxy_https);
    cr_assert_null(o.noproxy);
}

Test(fetch_opts, proxy_error_has_a_name)
{
    cr_assert_str_eq(sk_strerror(SK_EPROXY), "proxy error");
    cr_assert(SK_EPROXY < SK_E__BASE && SK_EPROXY > SK_E__LAST);
}
