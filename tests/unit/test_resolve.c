/* Unit tests: sk_endpoint_resolve, the library's one resolver. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "sockit.h"

static struct sk_endpoint ep_of(const char *host, unsigned short port)
{
    struct sk_endpoint ep = {.port = port};
    snprintf(ep.host, sizeof ep.host, "%s", host);
    return ep;
}

Test(resolve, numeric_v4)
{
    struct sk_endpoint ep = ep_of("127.0.0.1", 8080);
    struct addrinfo *ai = NULL;
    cr_assert_eq(sk_endpoint_resolve(&ep, SOCK_STREAM, 0, &ai), 0);
    cr_assert_not_null(ai);
    cr_assert_eq(ai->ai_family, AF_INET);
    cr_assert_eq(ai->ai_socktype, SOCK_STREAM);
    const struct sockaddr_in *in = (const struct sockaddr_in *)ai->ai_addr;
    cr_assert_eq(ntohs(in->sin_port), 8080);
    cr_assert_eq(in->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    cr_assert_null(ai->ai_next, "a literal is one address");
    freeaddrinfo(ai);
}

Test(resolve, numeric_v6_datagram)
{
    struct sk_endpoint ep = ep_of("::1", 53);
    struct addrinfo *ai = NULL;
    cr_assert_eq(sk_endpoint_resolve(&ep, SOCK_DGRAM, 0, &ai), 0);
    cr_assert_eq(ai->ai_family, AF_INET6);
    cr_assert_eq(ai->ai_socktype, SOCK_DGRAM);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ai->ai_addr;
    cr_assert_eq(ntohs(in6->sin6_port), 53);
    cr_assert(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));
    freeaddrinfo(ai);
}

Test(resolve, passive_literal)
{
    struct sk_endpoint ep = ep_of("0.0.0.0", 0);
    struct addrinfo *ai = NULL;
    cr_assert_eq(sk_endpoint_resolve(&ep, SOCK_STREAM, SK_RESOLVE_PASSIVE, &ai), 0);
    cr_assert_eq(ai->ai_family, AF_INET);
    freeaddrinfo(ai);
}

Test(resolve, localhost_resolves)
{
    struct sk_endpoint ep = ep_of("localhost", 80);
    struct addrinfo *ai = NULL;
    cr_assert_eq(sk_endpoint_resolve(&ep, SOCK_STREAM, 0, &ai), 0);
    cr_assert(ai->ai_family == AF_INET || ai->ai_family == AF_INET6);
    freeaddrinfo(ai);
}

/* RFC 6761: .invalid never resolves. The documented error, and no list. */
Test(resolve, unknown_name_is_eresolve)
{
    struct sk_endpoint ep = ep_of("no-such-host.invalid", 80);
    struct addrinfo *ai = (struct addrinfo *)&ep; /* must be reset */
    cr_assert_eq(sk_endpoint_resolve(&ep, SOCK_STREAM, 0, &ai), SK_ERESOLVE);
    cr_assert_null(ai);
    cr_assert_str_eq(sk_strerror(SK_ERESOLVE), "could not resolve host");
}

/* The host is read only within its SK_HOST_MAX bytes: one filled to the
 * end without a NUL, or an empty one, is a usage error, not a read past it. */
Test(resolve, host_length_bounded)
{
    struct sk_endpoint ep = {.port = 80};
    memset(ep.host, 'a', sizeof ep.host);
    struct addrinfo *ai = NULL;
    cr_assert_eq(sk_endpoint_resolve(&ep, SOCK_STREAM, 0, &ai), SK_EUSAGE);
    cr_assert_null(ai);
    ep.host[0] = '\0';
    cr_assert_eq(sk_endpoint_resolve(&ep, SOCK_STREAM, 0, &ai), SK_EUSAGE);
    cr_assert_null(ai);
    /* The longest host that fits is resolved, and does not (labels over 63). */
    memset(ep.host, 'a', sizeof ep.host - 1);
    ep.host[sizeof ep.host - 1] = '\0';
    cr_assert_eq(sk_endpoint_resolve(&ep, SOCK_STREAM, 0, &ai), SK_ERESOLVE);
    cr_assert_null(ai);
}
