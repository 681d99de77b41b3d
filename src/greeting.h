/* The greeting protocol's messages (docs/protocol.md), shared by its
 * server (greet.c), `client` and `bench`: "Welcome!" on connect,
 * "Hello, M!" for each message M, "exit" ends the session. The framing
 * (chunk or line) is the library's; these strings are the application's. */
#ifndef SOCKIT_GREETING_H
#define SOCKIT_GREETING_H

#include <stdbool.h>
#include <string.h>

#include "sockit/framing.h"

/* The greeting sent on connect: "Welcome!" (chunk) or "Welcome!\n" (line). */
static inline const char *greeting_text(enum sk_framing f, size_t *len)
{
    *len = f == SK_FRAMING_LINE ? 9 : 8;
    return "Welcome!\n";
}

/* Length of the reply to a message of n bytes: "Hello, " M "!" ["\n"]. */
static inline size_t greeting_reply_len(enum sk_framing f, size_t n)
{
    return 8 + n + (f == SK_FRAMING_LINE ? 1 : 0);
}

/* Writes the reply to msg[0..n) into out (greeting_reply_len bytes);
 * returns the number of bytes written. */
static inline size_t greeting_reply_write(enum sk_framing f, const char *msg, size_t n, char *out)
{
    memcpy(out, "Hello, ", 7);
    if (n)
        memcpy(out + 7, msg, n);
    out[7 + n] = '!';
    if (f == SK_FRAMING_LINE)
        out[8 + n] = '\n';
    return greeting_reply_len(f, n);
}

/* What a draining server says last to a session still open, in both
 * framings (as its other error lines): the messages sent after it were not
 * read, and may be sent again to another server. */
#define GREETING_SHUTDOWN "Error: server shutting down\n"
#define GREETING_SHUTDOWN_LEN (sizeof GREETING_SHUTDOWN - 1)

/* True for the message that ends a session: exactly "exit". */
static inline bool greeting_is_exit(const char *msg, size_t n)
{
    return n == 4 && memcmp(msg, "exit", 4) == 0;
}

#endif
