/* The PROXY protocol header parser (sockit/proxy.h), written from HAProxy's
 * proxy-protocol.txt. Each call parses from the first byte again: a header
 * is at most SK_PROXY_HEADER_MAX bytes, and a sender that drips it a byte
 * at a time is bounded by the reader's deadline. */
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <sys/un.h>

#include "sockit/err.h"
#include "sockit/proxy.h"

static const char v1_sig[] = "PROXY ";
#define V1_SIG_LEN 6
static const unsigned char v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                         0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
#define V2_FIXED 16
#define PP2_TYPE_CRC32C 0x03

enum { FAM_UNSPEC, FAM_INET, FAM_INET6, FAM_UNIX };
enum { TR_UNSPEC, TR_STREAM, TR_DGRAM };
/* Address block of each v2 family: two addresses, then (not UNIX) two ports. */
static const size_t v2_addr_len[4] = {0, 12, 36, 216};

const char *sk_proxy_error_name(enum sk_proxy_error e)
{
    static const char *const names[] = {
        [SK_PROXY_OK] = "ok",
        [SK_PROXY_MISSING] = "missing",
        [SK_PROXY_MALFORMED] = "malformed",
        [SK_PROXY_TOO_LONG] = "too-long",
        [SK_PROXY_BAD_SIGNATURE] = "bad-signature",
        [SK_PROXY_UNSUPPORTED_VERSION] = "unsupported-version",
        [SK_PROXY_UNSUPPORTED_COMMAND] = "unsupported-command",
        [SK_PROXY_UNSUPPORTED_FAMILY] = "unsupported-family",
        [SK_PROXY_BAD_CHECKSUM] = "bad-checksum",
        [SK_PROXY_TRUNCATED] = "truncated",
        [SK_PROXY_TIMEOUT] = "timeout",
        [SK_PROXY_SHUTDOWN] = "shutdown",
        [SK_PROXY_FAILED] = "error",
    };
    if ((unsigned)e >= sizeof names / sizeof names[0] || !names[e])
        return "?";
    return names[e];
}

static int fail(enum sk_proxy_error *err, enum sk_proxy_error e)
{
    *err = e;
    return SK_EPARSE;
}

/* Compares the signature with what there is of it: 0 when it matches so far. */
static int sig_prefix(const unsigned char *p, size_t n, const void *sig, size_t len)
{
    return memcmp(p, sig, n < len ? n : len);
}

/* ---- version 1 ---- */

/* A cursor over a v1 line: bytes past SK_PROXY_V1_MAX do not exist. */
struct v1 {
    const unsigned char *p;
    size_t n, pos;
};

enum { MORE = 0, BAD = -1 }; /* token scan results; > 0: the token's length */

/* Scans a token of characters accepted by ok() up to the byte `stop`
 * (consumed), at most max characters. Returns its length, MORE, or BAD
 * with *why set (empty, a wrong character, too long; past the line's
 * bound: too-long). */
static int v1_token(struct v1 *c, bool (*ok)(unsigned char), size_t max, unsigned char stop,
                    enum sk_proxy_error *why)
{
    size_t start = c->pos;
    for (;;) {
        if (c->pos >= SK_PROXY_V1_MAX) {
            *why = SK_PROXY_TOO_LONG;
            return BAD;
        }
        if (c->pos >= c->n)
            return MORE;
        unsigned char ch = c->p[c->pos];
        if (ch == stop)
            break;
        if (!ok(ch) || c->pos - start >= max) {
            *why = SK_PROXY_MALFORMED;
            return BAD;
        }
        c->pos++;
    }
    size_t len = c->pos - start;
    c->pos++; /* the stop byte */
    if (len == 0) {
        *why = SK_PROXY_MALFORMED;
        return BAD;
    }
    return (int)len;
}

/* The next byte must be `want`. */
static int v1_byte(struct v1 *c, unsigned char want, enum sk_proxy_error *why)
{
    if (c->pos >= SK_PROXY_V1_MAX) {
        *why = SK_PROXY_TOO_LONG;
        return BAD;
    }
    if (c->pos >= c->n)
        return MORE;
    if (c->p[c->pos] != want) {
        *why = SK_PROXY_MALFORMED;
        return BAD;
    }
    c->pos++;
    return 1;
}

static bool is_proto_char(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static bool is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_v4_char(unsigned char ch)
{
    return is_digit(ch) || ch == '.';
}

static bool is_v6_char(unsigned char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || ch == ':' ||
           ch == '.';
}

static bool is_unknown_char(unsigned char ch)
{
    return ch != '\r' && ch != '\n';
}

/* A decimal number of 1 to 3 digits, or 5 for ports, without leading
 * zeros (so "010" is not read as octal by someone and decimal by us). */
static bool decimal(const unsigned char *s, size_t len, unsigned long max, unsigned long *out)
{
    if (len == 0 || (len > 1 && s[0] == '0'))
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(s[i]))
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

/* Strict dotted quad: four decimal octets, nothing else. */
static bool parse_v4(const unsigned char *s, size_t len, struct in_addr *a)
{
    unsigned char b[4];
    size_t i = 0;
    for (int k = 0; k < 4; k++) {
        size_t start = i;
        while (i < len && s[i] != '.')
            i++;
        unsigned long v;
        if (i - start > 3 || !decimal(s + start, i - start, 255, &v))
            return false;
        b[k] = (unsigned char)v;
        if (k < 3) {
            if (i >= len)
                return false;
            i++; /* the dot */
        }
    }
    if (i != len)
        return false;
    memcpy(&a->s_addr, b, 4);
    return true;
}

static bool parse_v6(const unsigned char *s, size_t len, struct in6_addr *a)
{
    char tmp[INET6_ADDRSTRLEN];
    if (len >= sizeof tmp)
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return inet_pton(AF_INET6, tmp, a) == 1;
}

static bool set_addr(int family, const unsigned char *s, size_t len, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        return parse_v4(s, len, &sin->sin_addr);
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    sin6->sin6_family = AF_INET6;
    return parse_v6(s, len, &sin6->sin6_addr);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port_net)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = port_net;
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = port_net;
}

/* Reads one token into a step's result: returns from the parser unless the
 * token is complete. */
#define V1_STEP(expr)                                                                           \
    do {                                                                                        \
        int r_ = (expr);                                                                        \
        if (r_ == MORE)                                                                         \
            return 0;                                                                           \
        if (r_ == BAD)                                                                          \
            return fail(err, why);                                                              \
        len = (size_t)r_;                                                                       \
    } while (0)
/* As V1_STEP, for a part whose length is not needed. */
#define V1_SKIP(expr)                                                                           \
    do {                                                                                        \
        int r_ = (expr);                                                                        \
        if (r_ == MORE)                                                                         \
            return 0;                                                                           \
        if (r_ == BAD)                                                                          \
            return fail(err, why);                                                              \
    } while (0)

static int parse_v1(const unsigned char *p, size_t n, struct sk_proxy_header *h,
                    enum sk_proxy_error *err)
{
    if (sig_prefix(p, n, v1_sig, V1_SIG_LEN) != 0)
        return fail(err, SK_PROXY_BAD_SIGNATURE);
    struct v1 c = {.p = p, .n = n, .pos = V1_SIG_LEN};
    enum sk_proxy_error why = SK_PROXY_MALFORMED;
    size_t len;
    /* The protocol ends at a space, or for UNKNOWN at the line's end. */
    size_t at = c.pos;
    while (c.pos < n && c.pos < SK_PROXY_V1_MAX && p[c.pos] != ' ' && p[c.pos] != '\r') {
        if (!is_proto_char(p[c.pos]) || c.pos - at >= 7)
            return fail(err, SK_PROXY_MALFORMED);
        c.pos++;
    }
    if (c.pos >= SK_PROXY_V1_MAX)
        return fail(err, SK_PROXY_TOO_LONG);
    if (c.pos >= n)
        return 0;
    const unsigned char *proto = p + at;
    size_t plen = c.pos - at;
    h->version = 1;
    if (plen == 7 && memcmp(proto, "UNKNOWN", 7) == 0) {
        /* The rest of the line is the sender's and is ignored. */
        if (p[c.pos] == ' ') {
            c.pos++;
            if (c.pos < n && p[c.pos] != '\r')
                V1_SKIP(v1_token(&c, is_unknown_char, SK_PROXY_V1_MAX, '\r', &why));
            else
                V1_SKIP(v1_byte(&c, '\r', &why));
        } else {
            c.pos++; /* the '\r' */
        }
        V1_SKIP(v1_byte(&c, '\n', &why));
        h->local = true;
        return (int)c.pos;
    }
    int family;
    if (plen == 4 && memcmp(proto, "TCP4", 4) == 0)
        family = AF_INET;
    else if (plen == 4 && memcmp(proto, "TCP6", 4) == 0)
        family = AF_INET6;
    else
        return fail(err, plen ? SK_PROXY_UNSUPPORTED_FAMILY : SK_PROXY_MALFORMED);
    if (p[c.pos] != ' ')
        return fail(err, SK_PROXY_MALFORMED);
    c.pos++;
    bool (*addr_ok)(unsigned char) = family == AF_INET ? is_v4_char : is_v6_char;
    size_t addr_max = family == AF_INET ? 15 : INET6_ADDRSTRLEN - 1;
    struct sockaddr_storage *ends[2] = {&h->src, &h->dst};
    for (int i = 0; i < 2; i++) {
        V1_STEP(v1_token(&c, addr_ok, addr_max, ' ', &why));
        if (!set_addr(family, p + c.pos - 1 - len, len, ends[i]))
            return fail(err, SK_PROXY_MALFORMED);
    }
    for (int i = 0; i < 2; i++) {
        V1_STEP(v1_token(&c, is_digit, 5, i == 0 ? ' ' : '\r', &why));
        unsigned long port;
        if (!decimal(p + c.pos - 1 - len, len, 65535, &port))
            return fail(err, SK_PROXY_MALFORMED);
        set_port(ends[i], htons((uint16_t)port));
    }
    V1_SKIP(v1_byte(&c, '\n', &why));
    h->local = false;
    return (int)c.pos;
}

/* ---- version 2 ---- */

/* CRC32C (Castagnoli, reflected), bit by bit: at most one header per
 * connection goes through it. The bytes at skip[0..4) count as zeros. */
static uint32_t crc32c(const unsigned char *p, size_t n, size_t skip)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= (i >= skip && i < skip + 4) ? 0 : p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* The TLVs of p[start..end): each a type, a 16-bit length and that many
 * bytes, tiling the range exactly. */
static int check_tlvs(const unsigned char *p, size_t start, size_t end, enum sk_proxy_error *err)
{
    size_t i = start;
    while (i < end) {
        if (end - i < 3)
            return fail(err, SK_PROXY_MALFORMED);
        size_t tlen = (size_t)p[i + 1] << 8 | p[i + 2];
        if (tlen > end - i - 3)
            return fail(err, SK_PROXY_MALFORMED);
        if (p[i] == PP2_TYPE_CRC32C) {
            if (tlen != 4)
                return fail(err, SK_PROXY_MALFORMED);
            uint32_t want = (uint32_t)p[i + 3] << 24 | (uint32_t)p[i + 4] << 16 |
                            (uint32_t)p[i + 5] << 8 | p[i + 6];
            if (crc32c(p, end, i + 3) != want)
                return fail(err, SK_PROXY_BAD_CHECKSUM);
        }
        i += 3 + tlen;
    }
    return 0;
}

static void set_v2_addrs(const unsigned char *a, unsigned fam, struct sk_proxy_header *h)
{
    memset(&h->src, 0, sizeof h->src);
    memset(&h->dst, 0, sizeof h->dst);
    if (fam == FAM_UNIX) {
        struct sockaddr_un *s = (struct sockaddr_un *)&h->src, *d = (struct sockaddr_un *)&h->dst;
        s->sun_family = d->sun_family = AF_UNIX;
        memcpy(s->sun_path, a, sizeof s->sun_path);
        memcpy(d->sun_path, a + 108, sizeof d->sun_path);
        return;
    }
    size_t alen = fam == FAM_INET ? 4 : 16;
    const unsigned char *ports = a + 2 * alen;
    struct sockaddr_storage *ends[2] = {&h->src, &h->dst};
    for (int i = 0; i < 2; i++) {
        if (fam == FAM_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)ends[i];
            sin->sin_family = AF_INET;
            memcpy(&sin->sin_addr, a + i * alen, alen);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ends[i];
            sin6->sin6_family = AF_INET6;
            memcpy(&sin6->sin6_addr, a + i * alen, alen);
        }
        uint16_t port_net;
        memcpy(&port_net, ports + 2 * i, 2); /* network order on the wire and in sockaddr */
        set_port(ends[i], port_net);
    }
}

static int parse_v2(const unsigned char *p, size_t n, struct sk_proxy_header *h,
                    enum sk_proxy_error *err)
{
    if (sig_prefix(p, n, v2_sig, sizeof v2_sig) != 0)
        return fail(err, SK_PROXY_BAD_SIGNATURE);
    if (n <= 12)
        return 0;
    /* Each fixed field is checked as soon as it is there. */
    unsigned ver = p[12] >> 4, cmd = p[12] & 0x0F;
    if (ver != 2)
        return fail(err, SK_PROXY_UNSUPPORTED_VERSION);
    if (cmd > 1)
        return fail(err, SK_PROXY_UNSUPPORTED_COMMAND);
    bool local = cmd == 0;
    if (n <= 13)
        return 0;
    unsigned fam = p[13] >> 4, tr = p[13] & 0x0F;
    /* LOCAL: the family is ignored (the spec), unless it says where the
     * TLVs start. PROXY: a stream family, or UNSPEC (no addresses). */
    bool known = fam <= FAM_UNIX && tr <= TR_DGRAM;
    if (!local && (!known || tr == TR_DGRAM || (fam != FAM_UNSPEC && tr != TR_STREAM)))
        return fail(err, SK_PROXY_UNSUPPORTED_FAMILY);
    if (n < V2_FIXED)
        return 0;
    size_t len = (size_t)p[14] << 8 | p[15];
    if (len > SK_PROXY_V2_MAX)
        return fail(err, SK_PROXY_TOO_LONG);
    size_t alen = known ? v2_addr_len[fam] : len;
    if (len < alen)
        return fail(err, SK_PROXY_MALFORMED);
    if (n < V2_FIXED + len)
        return 0;
    if (check_tlvs(p, V2_FIXED + alen, V2_FIXED + len, err) < 0)
        return SK_EPARSE;
    h->version = 2;
    h->local = local || fam == FAM_UNSPEC;
    if (!h->local)
        set_v2_addrs(p + V2_FIXED, fam, h);
    return (int)(V2_FIXED + len);
}

int sk_proxy_parse(const void *data, size_t n, struct sk_proxy_header *h,
                   enum sk_proxy_error *err)
{
    const unsigned char *p = data;
    *err = SK_PROXY_OK;
    if (n == 0)
        return 0;
    if (p[0] == (unsigned char)v1_sig[0])
        return parse_v1(p, n, h, err);
    if (p[0] == v2_sig[0])
        return parse_v2(p, n, h, err);
    return fail(err, SK_PROXY_MISSING);
}
