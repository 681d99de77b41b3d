/* The greeting protocol's framing (see docs/protocol.md).
 *
 * chunk: the bytes one read returns are one message (the seed's framing).
 * line:  messages end with "\n" ("\r\n" accepted); replies end with "\n". */
#ifndef SOCKIT_FRAMING_H
#define SOCKIT_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sk_framing { SK_FRAMING_CHUNK = 0, SK_FRAMING_LINE = 1 };

/* Default and hard bounds of one message. */
#define SK_MSG_MAX_DEFAULT (64 * 1024)

/* Parses "chunk" or "line". Returns 0 or SK_EPARSE. */
int sk_framing_parse(const char *s, enum sk_framing *out);
const char *sk_framing_name(enum sk_framing f);

/* Finds the first complete line in buf[0..len).
 * Returns 1 and sets *msg_len (without "\n" or "\r\n") and *consumed
 * (with the terminator) when a line is complete; 0 when more bytes are
 * needed; SK_ETOOBIG when no newline appears within max bytes (a line of
 * exactly max bytes plus its terminator is accepted). */
int sk_line_next(const char *buf, size_t len, size_t max, size_t *msg_len, size_t *consumed);

/* The greeting sent on connect: "Welcome!" (chunk) or "Welcome!\n" (line). */
const char *sk_greeting(enum sk_framing f, size_t *len);

/* Length of the reply to a message of n bytes: "Hello, " M "!" ["\n"]. */
static inline size_t sk_reply_len(enum sk_framing f, size_t n)
{
    return 8 + n + (f == SK_FRAMING_LINE ? 1 : 0);
}

/* Writes the reply to msg[0..n) into out (sk_reply_len bytes); returns the
 * number of bytes written. */
size_t sk_reply_write(enum sk_framing f, const char *msg, size_t n, char *out);

/* True for the message that ends a session: exactly "exit". */
static inline bool sk_is_exit(const char *msg, size_t n)
{
    return n == 4 && msg[0] == 'e' && msg[1] == 'x' && msg[2] == 'i' && msg[3] == 't';
}

#ifdef __cplusplus
}
#endif

#endif
