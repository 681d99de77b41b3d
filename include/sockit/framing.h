/* Message framing (see docs/protocol.md): how a byte stream is cut into
 * messages.
 *
 * chunk: the bytes one read returns are one message (the seed's framing).
 * line:  messages end with "\n" ("\r\n" accepted); replies end with "\n". */
#ifndef SOCKIT_FRAMING_H
#define SOCKIT_FRAMING_H

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

#ifdef __cplusplus
}
#endif

#endif
