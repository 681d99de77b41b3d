/* The client's reply reader: see reply.h. */
#include <stdio.h>
#include <string.h>

#include "greeting.h"
#include "reply.h"

enum reply_status reply_scan(enum sk_framing f, const char *expect, size_t elen,
                             const char *data, size_t have, struct reply_scan *r)
{
    if (f == SK_FRAMING_LINE) {
        const char *nl = have ? memchr(data, '\n', have) : NULL;
        if (!nl)
            return REPLY_MORE;
        r->len = (size_t)(nl - data) + 1;
        r->body = r->len - 1;
        if (r->body > 0 && data[r->body - 1] == '\r')
            r->body--;
    } else {
        if (have < elen && (have == 0 || memcmp(data, expect, have) == 0))
            return REPLY_MORE; /* nothing yet, or a proper prefix */
        r->len = r->body = have;
    }
    bool same = r->body == elen && (elen == 0 || memcmp(data, expect, elen) == 0);
    return same ? REPLY_OK : REPLY_BAD;
}

int reply_greeting_framing(const char *data, size_t have)
{
    size_t glen;
    const char *g = greeting_text(SK_FRAMING_CHUNK, &glen);
    if (have < glen || memcmp(data, g, glen) != 0)
        return -1;
    if (have == glen)
        return SK_FRAMING_CHUNK;
    const char *end = data + glen;
    size_t more = have - glen;
    if ((more == 1 && end[0] == '\n') || (more == 2 && end[0] == '\r' && end[1] == '\n'))
        return SK_FRAMING_LINE;
    return -1;
}

const char *reply_framing_advice(enum sk_framing server)
{
    if (server == SK_FRAMING_LINE)
        return "the server uses line framing (its greeting is \"Welcome!\\n\"): "
               "use --framing line";
    return "the server uses chunk framing (its greeting \"Welcome!\" has no newline): "
           "use --framing chunk";
}

size_t reply_message_len(enum sk_framing f, const char *msg, size_t n)
{
    if (f == SK_FRAMING_LINE && n > 0 && msg[n - 1] == '\r')
        n--;
    return n;
}

/* One byte as shown in a message: itself, or an escape. */
static void escape(unsigned char c, char out[5])
{
    char named = 0;
    switch (c) {
    case '\\': named = '\\'; break;
    case '\r': named = 'r'; break;
    case '\n': named = 'n'; break;
    case '\t': named = 't'; break;
    case '\0': named = '0'; break;
    default: break;
    }
    if (named)
        snprintf(out, 5, "\\%c", named);
    else if (c >= 0x20 && c < 0x7f)
        snprintf(out, 5, "%c", c);
    else
        snprintf(out, 5, "\\x%02x", c);
}

size_t reply_show(const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char esc[5];
        escape((unsigned char)p[i], esc);
        size_t k = strlen(esc);
        /* Before the last byte, keep room for "..." and the NUL. */
        if (o + k + (i + 1 < n ? 3 : 0) + 1 > cap) {
            if (o + 4 <= cap) {
                memcpy(out + o, "...", 3);
                o += 3;
            }
            break;
        }
        memcpy(out + o, esc, k);
        o += k;
    }
    out[o] = '\0';
    return o;
}
