/* Unit tests: HOST:PORT parsing and address formatting. */
#include <arpa/inet.h>
#include <errno.h>
#include <unistd.h>
#include <criterion/criterion.h>
#include <string.h>

#include "sockit.h"

Test(endpoint, ipv4_and_names)
{
    struct sk_endpoint ep;
    cr_assert_eq(sk_endpoint_parse("127.0.0.1:8888", &ep), 0);
    cr_assert_str_eq(ep.host, "127.0.0.1");
    cr_assert_eq(ep.port, 8888);
    cr_assert_eq(sk_endpoint_parse("localhost:0", &ep), 0);
    cr_assert_str_eq(ep.host, "localhost");
    cr_assert_eq(ep.port, 0);
    cr_assert_eq(sk_endpoint_parse("h:65535", &ep), 0);
    cr_assert_eq(ep.port, 65535);
}

Test(endpoint, ipv6_brackets)
{
    struct sk_endpoint ep;
    cr_assert_eq(sk_endpoint_parse("[::1]:8888", &ep), 0);
    cr_assert_str_eq(ep.host, "::1");
    cr_assert_eq(ep.port, 8888);
    cr_assert_eq(sk_endpoint_parse("[fe80::1%lo]:1", &ep), 0);
    cr_assert_str_eq(ep.host, "fe80::1%lo");
}

Test(endpoint, rejects_bad_forms)
{
    struct sk_endpoint ep;
    const char *bad[] = {"", ":80", "host", "host:", "host:65536", "host:-1", "host:8a",
                         "host:123456", "::1:80", "[::1]80", "[::1]:", "[::1", "[]:80",
                         "host: 80", "host:+80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(sk_endpoint_parse(bad[i], &ep), SK_EPARSE, "accepted '%s'", bad[i]);
}

Test(endpoint, host_length_bounded)
{
    char s[SK_HOST_MAX + 16];
    struct sk_endpoint ep;
    memset(s, 'a', SK_HOST_MAX);
    strcpy(s + SK_HOST_MAX, ":80");
    cr_assert_eq(sk_endpoint_parse(s, &ep), SK_EPARSE);
    strcpy(s + SK_HOST_MAX - 1, ":80");
    cr_assert_eq(sk_endpoint_parse(s, &ep), 0);
}

Test(addr, format_v4_v6)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(8888)};
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    char buf[SK_ADDRSTR_MAX];
    cr_assert_str_eq(sk_addr_format((struct sockaddr *)&in, buf, sizeof buf), "127.0.0.1:8888");
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(1)};
    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    cr_assert_str_eq(sk_addr_format((struct sockaddr *)&in6, buf, sizeof buf), "[::1]:1");
}

Test(addr, listen_port_zero_then_connect)
{
    struct sk_endpoint ep = {.host = "127.0.0.1", .port = 0};
    int lfd = sk_listen(&ep, SOCK_STREAM, 0);
    cr_assert_geq(lfd, 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    ep.port = ntohs(sa.sin_port);
    cr_assert_neq(ep.port, 0);
    int cfd = sk_connect(&ep, SOCK_STREAM, 2000, false);
    cr_assert_geq(cfd, 0);
    close(cfd);
    close(lfd);
}

Test(addr, connect_refused_is_reported)
{
    struct sk_endpoint ep = {.host = "127.0.0.1", .port = 0};
    int lfd = sk_listen(&ep, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    close(lfd); /* nobody listens there any more */
    ep.port = ntohs(sa.sin_port);
    cr_assert_eq(sk_connect(&ep, SOCK_STREAM, 2000, false), SK_ERR(ECONNREFUSED));
}
