/* sk_strerror: one table for sockit's own codes, strerror for the rest. */
#include <string.h>

#include "sockit/err.h"

const char *sk_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case SK_EPARSE: return "malformed input";
    case SK_ETOOBIG: return "input too large";
    case SK_EAGAIN_MORE: return "incomplete input";
    case SK_EBUSY: return "handles still registered";
    case SK_ERESOLVE: return "could not resolve host";
    case SK_ETIMEDOUT: return "timed out";
    case SK_ECLOSED: return "connection closed by peer";
    case SK_ETLS: return "TLS error";
    case SK_EUSAGE: return "invalid argument";
    case SK_EPROTO: return "protocol error";
    case SK_EHTTP: return "HTTP error status";
    case SK_EUNSUPPORTED: return "not supported";
    case SK_ETLSVERIFY: return "certificate verification failed";
    case SK_ECONNECT: return "connection failed";
    case SK_ETRUNCATED: return "body truncated";
    case SK_EWRITE: return "cannot write the output";
    case SK_ECHECKSUM: return "checksum mismatch";
    case SK_EPROXY: return "proxy error";
    default: break;
    }
    if (err < 0 && err > SK_E__BASE)
        return strerror(-err); /* glibc: thread-safe for known values */
    return "unknown error";
}
