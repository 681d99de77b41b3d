/* Small helpers shared by the subcommands. */
#include <errno.h>
#include <limits.h>
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

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The one number syntax of the command line: decimal digits, nothing else
 * (no spaces, signs, hex, exponents); seconds may add ".DIGITS". A leading
 * '-' is recognised only to say "must not be negative". Returns NULL and
 * the value in *v (and the integer part in *iv), or why the text is not a
 * number. *over: the integer part does not fit a long long. */
static const char *scan(const char *s, bool fraction, double *v, long long *iv, bool *over)
{
    const char *p = s;
    bool neg = *p == '-';
    p += neg;
    long long ip = 0;
    *over = false;
    const char *digits = p;
    for (; is_digit(*p); p++) {
        int d = *p - '0';
        if (ip > (LLONG_MAX - d) / 10)
            *over = true;
        else
            ip = ip * 10 + d;
    }
    bool any = p > digits;
    double frac = 0, scale = 1;
    if (fraction && *p == '.') {
        const char *f = ++p;
        for (; is_digit(*p); p++)
            if (p - f < 18) { /* further digits are below any resolution we use */
                scale /= 10;
                frac += (*p - '0') * scale;
            }
        if (p == f)
            return "is not a decimal number";
        any = true;
    }
    if (!any || *p != '\0')
        return "is not a decimal number";
    if (neg)
        return "must not be negative";
    *iv = ip;
    *v = (double)ip + frac;
    return NULL;
}

bool cli_parse_num(const char *what, const char *s, long long min, long long max, long long *out)
{
    double dv;
    long long v = 0;
    bool over;
    const char *why = scan(s, false, &dv, &v, &over);
    if (!why && (over || v > max))
        why = "is too large";
    else if (!why && v < min)
        why = "is too small";
    if (why) {
        cli_error("%s %s: %s", what, why, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_seconds(const char *what, const char *s, double min, double max, double *out)
{
    double v = 0;
    long long iv;
    bool over;
    const char *why = scan(s, true, &v, &iv, &over);
    if (!why && (over || v > max))
        why = "is too large";
    else if (!why && v < min)
        why = "is too small";
    if (why) {
        cli_error("%s %s (%.10g to %.10g, fractions allowed): %s", what, why, min, max, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_ms(const char *what, const char *s, double min, double max, int *ms)
{
    double v;
    if (!cli_parse_seconds(what, s, min, max, &v))
        return false;
    double m = v * 1000.0 + 0.5;
    *ms = m > 2147483647.0 ? 2147483647 : (int)m;
    if (*ms == 0 && v > 0)
        *ms = 1; /* a positive bound must not become "no bound" */
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
