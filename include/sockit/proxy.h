/* The PROXY protocol (HAProxy's, versions 1 and 2): the header a load
 * balancer puts before a connection's bytes to say whom it relays.
 *
 * The parser is strict, bounded and allocation-free, and incremental: it is
 * given every byte received so far (the same prefix, longer each time) and
 * says "need more", "done: the header is N bytes" or "error: REASON". It
 * decides as early as the bytes allow: a prefix no header can start with
 * is an error at once, not at the deadline.
 *
 * Version 1: "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN
 * ...\r\n", at most SK_PROXY_V1_MAX bytes; single spaces, addresses in
 * their canonical dotted/colon form, ports 0-65535 without leading zeros.
 * Version 2: the 12-byte signature, version 2, command LOCAL or PROXY,
 * family UNSPEC, INET, INET6 or UNIX over STREAM, at most SK_PROXY_V2_MAX
 * bytes after the 16-byte fixed part; the TLVs after the addresses are
 * checked to tile that length exactly and skipped (a CRC32C TLV is
 * verified). */
#ifndef SOCKIT_PROXY_H
#define SOCKIT_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SK_PROXY_V1_MAX 107   /* the spec's bound, "\r\n" included */
/* The v2 length field's bound (the spec allows 65535). HAProxy's largest
 * headers (UNIX addresses, 216 bytes, plus its TLVs: ALPN, authority,
 * unique id, the SSL sub-TLVs) stay well under it. */
#define SK_PROXY_V2_MAX 2048
#define SK_PROXY_HEADER_MAX (16 + SK_PROXY_V2_MAX)

/* Why a connection had no valid header. The parser reports the first
 * eight; the rest are decided by whoever reads the connection. */
enum sk_proxy_error {
    SK_PROXY_OK,
    SK_PROXY_MISSING,             /* neither signature: not a PROXY header */
    SK_PROXY_MALFORMED,           /* syntax, an address, a port, a TLV */
    SK_PROXY_TOO_LONG,            /* v1 over 107 bytes; v2 over SK_PROXY_V2_MAX */
    SK_PROXY_BAD_SIGNATURE,       /* began like a signature, then differed */
    SK_PROXY_UNSUPPORTED_VERSION, /* v2 version nibble not 2 */
    SK_PROXY_UNSUPPORTED_COMMAND, /* v2 command neither LOCAL nor PROXY */
    SK_PROXY_UNSUPPORTED_FAMILY,  /* v1 protocol, v2 family or transport (UDP) */
    SK_PROXY_BAD_CHECKSUM,        /* v2 CRC32C TLV does not match */
    /* decided by the reader: */
    SK_PROXY_TRUNCATED,           /* the connection ended inside the header */
    SK_PROXY_TIMEOUT,             /* the header was not complete in time */
    SK_PROXY_SHUTDOWN,            /* the server stopped before it was */
    SK_PROXY_FAILED,              /* out of memory, a socket error */
};

/* "ok", "missing", "malformed", "too-long", "bad-signature",
 * "unsupported-version", "unsupported-command", "unsupported-family",
 * "bad-checksum", "truncated", "timeout", "shutdown", "error"; "?". */
const char *sk_proxy_error_name(enum sk_proxy_error e);

struct sk_proxy_header {
    unsigned version; /* 1 or 2 */
    /* No client address: v2 LOCAL (a health check), v1 UNKNOWN, v2 UNSPEC.
     * The connection's own addresses are the endpoints. */
    bool local;
    /* The client (src) and the address it connected to (dst): AF_INET,
     * AF_INET6 or AF_UNIX (sun_path as sent, NUL-padded); unset if local. */
    struct sockaddr_storage src, dst;
};

/* Parses the header at the start of data[0..n), every byte received so
 * far. Returns the header's length (> 0: done, *h filled; the bytes after
 * it are the connection's own), 0 (a valid prefix: feed more), or
 * SK_EPARSE with *err set. Only the header's bytes are read; n may be
 * larger. */
int sk_proxy_parse(const void *data, size_t n, struct sk_proxy_header *h,
                   enum sk_proxy_error *err);

#ifdef __cplusplus
}
#endif

#endif
