/* A list of URLs, one per line (sockit fetch -i FILE): blank lines and
 * '#' comments skipped, the spaces around a URL trimmed. Hostile input is
 * bounded: a line longer than the caller's buffer or holding a NUL byte
 * is an error naming its line, never a silently cut URL. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "sockit.h"

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int sk_fetch_list_next(FILE *in, char *buf, size_t size, unsigned long *line)
{
    if (!in || !buf || size < 2 || !line)
        return SK_EUSAGE;
    for (;;) {
        size_t n = 0;
        bool too_long = false, nul = false;
        int c;
        while ((c = getc(in)) != EOF && c != '\n') {
            if (c == '\0')
                nul = true;
            else if (n < size - 1)
                buf[n++] = (char)c;
            else
                too_long = true; /* read on to the line's end: the error names it */
        }
        if (c == EOF && ferror(in))
            return SK_ERR(EIO);
        if (c == EOF && n == 0 && !too_long && !nul)
            return 0;
        ++*line;
        if (too_long)
            return SK_ETOOBIG;
        if (nul)
            return SK_EPARSE;
        while (n && is_space((unsigned char)buf[n - 1]))
            n--;
        buf[n] = '\0';
        size_t skip = strspn(buf, " \t\r\v\f");
        if (buf[skip] == '\0' || buf[skip] == '#') {
            if (c == EOF)
                return 0;
            continue;
        }
        memmove(buf, buf + skip, n - skip + 1);
        return 1;
    }
}
