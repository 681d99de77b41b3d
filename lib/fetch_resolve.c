/* Name resolution for the HTTP client: a URL's host to the addresses its
 * connect tries (sk_endpoint_resolve), with the client's messages. */
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#include "fetch_int.h"

int sk__fetch_resolve(struct sk_fetch *f, const struct sk_url *u, const struct addrinfo **out)
{
    *out = NULL;
    struct sk_endpoint ep = {.port = u->port};
    _Static_assert(sizeof ep.host == sizeof u->host, "a URL's host fits an endpoint");
    memcpy(ep.host, u->host, sizeof ep.host);
    struct addrinfo *ai = NULL;
    int rc = sk_endpoint_resolve(&ep, SOCK_STREAM, 0, &ai);
    if (rc == 0) {
        *out = ai;
        return 0;
    }
    if (f->cx->flag)
        return sk__fetch_interrupted(f, "resolving");
    if (rc == SK_ERESOLVE || rc == SK_EUSAGE)
        return sk_fetch_set_error(f, SK_ERESOLVE, "could not resolve %shost %s",
                                  f->px.on ? "proxy " : "", u->host);
    if (rc == SK_ERR(ENOMEM))
        return sk_fetch_fail_as(f, rc, "resolving");
    return sk_fetch_set_error(f, SK_ECONNECT, "cannot connect to %s%s: %s",
                              f->px.on ? "proxy " : "", f->px.on ? f->px.where : f->w.where,
                              sk_strerror(rc));
}

void sk__fetch_resolve_put(struct sk_fetch *f, const struct addrinfo *ai)
{
    (void)f;
    if (ai)
        freeaddrinfo((struct addrinfo *)ai);
}
