/* Message framing: names and line splitting. */
#include <string.h>

#include "sockit/err.h"
#include "sockit/framing.h"

int sk_framing_parse(const char *s, enum sk_framing *out)
{
    if (strcmp(s, "chunk") == 0)
        *out = SK_FRAMING_CHUNK;
    else if (strcmp(s, "line") == 0)
        *out = SK_FRAMING_LINE;
    else
        return SK_EPARSE;
    return 0;
}

const char *sk_framing_name(enum sk_framing f)
{
    return f == SK_FRAMING_LINE ? "line" : "chunk";
}

int sk_line_next(const char *buf, size_t len, size_t max, size_t *msg_len, size_t *consumed)
{
    /* Look no further than max + 2 bytes: the longest acceptable line is max
     * bytes of message plus "\r\n". */
    size_t scan = len < max + 2 ? len : max + 2;
    const char *nl = memchr(buf, '\n', scan);
    if (!nl)
        return len > max + 1 ? SK_ETOOBIG : 0;
    size_t n = (size_t)(nl - buf);
    *consumed = n + 1;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n > max)
        return SK_ETOOBIG;
    *msg_len = n;
    return 1;
}
