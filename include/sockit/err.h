/* sockit error codes.
 *
 * Every libsockit function that can fail returns an int: 0 (or a positive
 * count) on success and a negative code on failure. System errors are
 * -errno (SK_ERR(ECONNREFUSED)); errors of sockit's own live below
 * SK_E__BASE, far from any errno value. The library never prints or exits. */
#ifndef SOCKIT_ERR_H
#define SOCKIT_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

#define SK_ERR(e) (-(e))

enum {
    SK_E__BASE = -10000,
    SK_EPARSE = SK_E__BASE - 1,     /* malformed input */
    SK_ETOOBIG = SK_E__BASE - 2,    /* input exceeds a configured bound */
    SK_EAGAIN_MORE = SK_E__BASE - 3,/* incomplete: feed more bytes */
    SK_EBUSY = SK_E__BASE - 4,      /* object still has registered handles */
    SK_ERESOLVE = SK_E__BASE - 5,   /* name resolution failed */
    SK_ETIMEDOUT = SK_E__BASE - 6,  /* a deadline passed */
    SK_ECLOSED = SK_E__BASE - 7,    /* peer closed the connection early */
    SK_ETLS = SK_E__BASE - 8,       /* TLS failure; detail via the TLS object */
    SK_EUSAGE = SK_E__BASE - 9,     /* bad argument */
    SK_EPROTO = SK_E__BASE - 10,    /* peer violated the protocol */
    SK_EHTTP = SK_E__BASE - 11,     /* HTTP status outside 2xx */
    /* fetch (URL, HTTP, TLS): -20 .. -29 */
    SK_EUNSUPPORTED = SK_E__BASE - 20, /* valid but unsupported (scheme, coding) */
    SK_ETLSVERIFY = SK_E__BASE - 21,   /* peer certificate failed verification */
    SK_ECONNECT = SK_E__BASE - 22,     /* no address accepted the connection */
    SK_ETRUNCATED = SK_E__BASE - 23,   /* the body ended before its end */
    SK_EWRITE = SK_E__BASE - 24,       /* the output cannot be created or written */
    SK_ECHECKSUM = SK_E__BASE - 25,    /* the body does not match its expected digest */
    SK_EPROXY = SK_E__BASE - 26,       /* the proxy refused or broke the request */
    SK_E__LAST = SK_E__BASE - 64
};

/* A static, human-readable description of err (a negative code). */
const char *sk_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif
