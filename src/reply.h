/* The client's reply reader: recognising one greeting-protocol reply (or
 * greeting) in the bytes received so far. Pure functions on bytes, shared
 * by client TCP, client UDP and bench --connect's greeting check, and
 * fuzzed by fuzz/fuzz_reply.c.
 *
 * bench's request/reply matcher (bench_match.c) is a different tool on
 * purpose: it streams (never buffers) and counts many replies per read on
 * the hot path; the client holds one reply and reports it. */
#ifndef SOCKIT_REPLY_H
#define SOCKIT_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "sockit.h"

enum reply_status {
    REPLY_MORE, /* not complete yet: receive more */
    REPLY_OK,   /* exactly the expected reply */
    REPLY_BAD,  /* complete, and not the expected reply */
};

struct reply_scan {
    size_t len;  /* bytes the reply takes at the head of the input (OK, BAD) */
    size_t body; /* of those, without the line terminator ("\n", "\r\n") */
};

/* Scans data[0..have) for one reply expected to be expect[0..elen) (its
 * chunk-framing form, e.g. "Hello, M!" or "Welcome!"). Line framing: up to
 * "\n"; the body, without "\n" or "\r\n", must equal expect. Chunk framing:
 * what arrived, continued while it is a proper prefix of expect (TCP may
 * split a reply); it must equal expect, with nothing after it (a server
 * sends nothing unasked). For a datagram, REPLY_MORE means a short one:
 * treat it as BAD. */
enum reply_status reply_scan(enum sk_framing f, const char *expect, size_t elen,
                             const char *data, size_t have, struct reply_scan *r);

/* The one framing-mismatch detection of client and bench: the framing in
 * which data[0..have), the first bytes a greeting server sent, is a
 * complete greeting: SK_FRAMING_LINE for "Welcome!\n" (or "\r\n"),
 * SK_FRAMING_CHUNK for exactly "Welcome!", or -1. A caller in chunk framing
 * that sees LINE knows at once; a caller in line framing that holds a CHUNK
 * greeting knows once REPLY_FRAMING_GRACE_MS pass without its "\n" (a line
 * server sends the greeting in one write: the "\n" never lags behind). */
int reply_greeting_framing(const char *data, size_t have);
#define REPLY_FRAMING_GRACE_MS 200

/* The one line that names a mismatch: "the server uses line framing (its
 * greeting is "Welcome!\n"): use --framing line" (or chunk). */
const char *reply_framing_advice(enum sk_framing server);

/* The message the server sees when msg[0..n) is sent: in line framing the
 * server drops one "\r" before the "\n" (a "\r\n" line end). */
size_t reply_message_len(enum sk_framing f, const char *msg, size_t n);

/* Writes p[0..n) for a one-line message into out (cap > 0 bytes, always
 * NUL-terminated): printable ASCII as is, other bytes as \r \n \t \0 or
 * \xHH, cut with "..." when it does not fit. Returns strlen(out). */
size_t reply_show(const char *p, size_t n, char *out, size_t cap);

#endif
