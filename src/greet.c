/* The greeting protocol on the server engine. The replies are built in the
 * engine's write buffer (reserve/commit): no copy per message. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "greeting.h"
#include "greet.h"

#define PREFIX 7 /* "Hello, " */
/* The largest reply that fits one IPv4 UDP datagram is 65507 bytes, so the
 * longest message we can answer is 65507 - 8. */
#define UDP_MSG_MAX (65507 - 8)

static const char too_long_dgram[] = "Error: datagram too long to answer (max 65499 bytes)";

/* The user pointer carries the framing itself: no lifetime to keep. */
static enum sk_framing framing_of(void *user)
{
    return (enum sk_framing)(uintptr_t)user;
}

static int greet_open(void *user, struct sk_server_conn *c)
{
    size_t len;
    const char *g = greeting_text(framing_of(user), &len);
    return sk_server_conn_write(c, g, len);
}

static int greet_message(void *user, struct sk_server_conn *c, const char *msg, size_t n)
{
    if (greeting_is_exit(msg, n)) {
        sk_server_conn_end(c);
        return 0;
    }
    enum sk_framing f = framing_of(user);
    char *dst = sk_server_conn_reserve(c, greeting_reply_len(f, n));
    if (!dst)
        return SK_ERR(ENOMEM);
    sk_server_conn_commit(c, greeting_reply_write(f, msg, n, dst));
    return 0;
}

/* "Hello, M!" built in place around the payload (headroom PREFIX). */
static bool greet_datagram(void *user, struct sk_datagram *d)
{
    (void)user;
    if (d->len > UDP_MSG_MAX || d->truncated || d->headroom < PREFIX || d->tailroom < 1) {
        d->data = (char *)too_long_dgram;
        d->len = sizeof too_long_dgram - 1;
        return true;
    }
    d->data -= PREFIX;
    memcpy(d->data, "Hello, ", PREFIX);
    d->data[PREFIX + d->len] = '!';
    d->len += PREFIX + 1;
    return true;
}

const char *greet_close_reason(enum sk_close_reason why)
{
    return why == SK_CLOSE_END ? "exit" : sk_close_reason_name(why);
}

void greet_setup(struct sk_server_config *cfg)
{
    cfg->proto = (struct sk_server_proto){
        .open = greet_open,
        .message = greet_message,
        .datagram = greet_datagram,
        .busy_reply = "Error: server busy, too many connections\n",
        .too_long_reply = "Error: message too long\n",
        .user = (void *)(uintptr_t)cfg->framing,
    };
    cfg->dgram_headroom = PREFIX;
}
