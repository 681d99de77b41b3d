/* Small helpers shared by the subcommands. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

void cli_error(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* The message quotes outside text (option values, host names, bytes a
     * server sent): a control byte in it would break the one line or drive
     * the terminal (ESC), so each is written as \xHH. */
    char out[4 * sizeof line];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", *p);
        else
            out[o++] = (char)*p;
    }
    out[o] = '\0';
    fprintf(stderr, "sockit: %s\n", out);
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    /* With opterr = 0 and an optstring starting with ':', getopt_long says
     * ':' for a missing value and '?' for an unknown option; the element at
     * optind - 1 is the option as typed, except inside a cluster (-ux). */
    const char *arg = argv[optind - 1];
    char shortopt[3] = {'-', (char)optopt, '\0'};
    bool is_long = strncmp(arg, "--", 2) == 0;
    if (c == ':')
        cli_error("%s: option %s needs a value (try 'sockit %s --help')", cmd,
                  is_long ? arg : shortopt, cmd);
    else
        cli_error("%s: unknown option %s (try 'sockit %s --help')", cmd,
                  optopt > 0 && optopt < 256 ? shortopt : arg, cmd);
    return EXIT_USAGE;
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

unsigned cli_reserve_stdio(void)
{
    /* A closed 0, 1 or 2 would be the next socket's number: the server's
     * bytes read as our input, our output sent to the server. An O_PATH
     * descriptor holds the number and fails every read and write with
     * EBADF, as the closed one did. */
    unsigned closed = 0;
    for (int fd = 0; fd <= 2; fd++)
        if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            closed |= 1u << fd;
            int k = open("/dev/null", O_PATH | O_CLOEXEC);
            if (k >= 0 && k != fd)
                close(k); /* a lower one was free after all: not ours to fill */
        }
    return closed;
}

bool cli_stdout_ok(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("write error on standard output: %s", strerror(errno));
        return false;
    }
    return true;
}
