/* Small helpers shared by the subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_error(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "sockit: %s\n", line);
}

bool cli_parse_num(const char *what, const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    const char *why = NULL;
    if (*s == '\0' || *end != '\0')
        why = "is not a number";
    else if (errno == ERANGE || v < min)
        why = v < 0 && min >= 0 ? "must not be negative" : "is too small";
    if (!why && (errno == ERANGE || v > max))
        why = "is too large";
    if (why) {
        cli_error("%s %s: %s", what, why, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_stdout_ok(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("write error on standard output: %s", strerror(errno));
        return false;
    }
    return true;
}
