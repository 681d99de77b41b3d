/* The command-line convention shared by the subcommands: see cli.h. */
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
#include "i18n.h"
#include "sockit.h"

const char cli_exit_table[] =
    N_("   0  success\n"
    "   1  failure not listed below (reset, closed early, server refused, I/O)\n"
    "   2  bad command line\n"
    "   3  a host name did not resolve\n"
    "   4  connection refused, host or network unreachable\n"
    "   5  TLS handshake or certificate verification failed\n"
    "   6  HTTP status outside 2xx (fetch)\n"
    "   7  the peer speaks another protocol or framing\n"
    "   8  the data ended early (fetch: truncated body)\n"
    "   9  timeout (connect, greeting, reply, transfer)\n"
    "  10  an output file could not be written (fetch)\n"
    "  11  --sha256 did not match (fetch)\n"
    "  12  the proxy refused the request (fetch: 407, CONNECT not 2xx, SOCKS)\n"
    "  13  the body is larger than --max-filesize (fetch)\n");

int cli_exit_status(int rc)
{
    switch (rc) {
    case 0: return EXIT_OK;
    case SK_ERESOLVE: return EXIT_RESOLVE;
    case SK_ERR(ECONNREFUSED):
    case SK_ERR(EHOSTUNREACH):
    case SK_ERR(ENETUNREACH):
    case SK_ERR(EADDRNOTAVAIL): return EXIT_CONNECT;
    case SK_ETIMEDOUT:
    case SK_ERR(ETIMEDOUT): return EXIT_TIMEOUT;
    case SK_ETLS:
    case SK_ETLSVERIFY: return EXIT_TLS;
    case SK_EPROTO: return EXIT_PROTO;
    case SK_EHTTP: return EXIT_HTTP;
    case SK_EUSAGE: return EXIT_USAGE;
    case SK_ECONNECT: return EXIT_CONNECT;
    case SK_ETRUNCATED: return EXIT_TRUNCATED;
    case SK_EWRITE: return EXIT_WRITE;
    case SK_ECHECKSUM: return EXIT_CHECKSUM;
    case SK_EPROXY: return EXIT_PROXY;
    default: return EXIT_FAIL;
    }
}

/* The subcommand running, for the prefix of every message. */
static const char *command;
/* cli_error_to's: where the messages go instead of standard error. */
static void (*error_sink)(void *arg, const char *line, size_t n);
static void *error_sink_arg;

void cli_set_command(const char *name)
{
    command = name;
}

void cli_error(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, _(fmt), ap); /* msgfmt --check keeps the conversions */
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
    size_t n = command ? strlen(command) : 0;
    bool prefixed = !command || (strncmp(out, command, n) == 0 && out[n] == ':');
    if (!error_sink) {
        fprintf(stderr, "sockit: %s%s%s\n", prefixed ? "" : command, prefixed ? "" : ": ", out);
        return;
    }
    char full[sizeof out + 64];
    int k = snprintf(full, sizeof full, "sockit: %s%s%s\n", prefixed ? "" : command,
                     prefixed ? "" : ": ", out);
    error_sink(error_sink_arg, full, k < (int)sizeof full ? (size_t)k : sizeof full - 1);
}

void cli_error_to(void (*sink)(void *arg, const char *line, size_t n), void *arg)
{
    error_sink = sink;
    error_sink_arg = arg;
}

const char *cli_strerror(int rc)
{
    return _(sk_strerror(rc)); /* lib/err.c's messages are in the catalogue */
}

int cli_print_help(const char *text)
{
    fputs(_(text), stdout);
    return cli_stdout_ok() ? CLI_DONE : EXIT_FAIL;
}

int cli_print_version(void)
{
    printf("sockit %s\n", SOCKIT_VERSION);
    return cli_stdout_ok() ? CLI_DONE : EXIT_FAIL;
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    /* With opterr = 0 and an optstring starting with ':', getopt_long says
     * ':' for a missing value and '?' for an unknown option; the element at
     * optind - 1 is the option as typed, except inside a cluster (-ux). */
    const char *arg = argv[optind - 1];
    char shortopt[3] = {'-', (char)optopt, '\0'};
    bool is_long = strncmp(arg, "--", 2) == 0;
    if (c == '?' && (optopt == 'V' || (optopt == 0 && strcmp(arg, "--version") == 0)))
        return cli_print_version();
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
 * (no spaces, signs, hex, exponents); fractions may add ".DIGITS". A
 * leading '-' is recognised only to say "must not be negative". Returns
 * NULL and the value in *v (and the integer part in *iv), or why the text
 * is not a number. *over: the integer part does not fit a long long.
 * *rest: where the number ends (must be the end of s when rest is NULL). */
static const char *scan(const char *s, bool fraction, double *v, long long *iv, bool *over,
                        const char **rest)
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
            return N_("is not a decimal number");
        any = true;
    }
    if (!any || (!rest && *p != '\0'))
        return N_("is not a decimal number");
    if (neg)
        return N_("must not be negative");
    if (rest)
        *rest = p;
    *iv = ip;
    *v = (double)ip + frac;
    return NULL;
}

/* The bounds check shared by the parsers: why v is out of [min, max]. */
static const char *bounds(bool over, double v, double min, double max)
{
    if (over || v > max)
        return N_("is too large");
    return v < min ? N_("is too small") : NULL;
}

bool cli_parse_num(const char *what, const char *s, long long min, long long max, long long *out)
{
    double dv;
    long long v = 0;
    bool over;
    const char *why = scan(s, false, &dv, &v, &over, NULL);
    if (!why && (over || v > max))
        why = N_("is too large");
    else if (!why && v < min)
        why = N_("is too small");
    if (why) {
        cli_error("%s %s: %s", what, _(why), s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_real(const char *what, const char *s, double min, double max, double *out)
{
    double v = 0;
    long long iv;
    bool over;
    const char *why = scan(s, true, &v, &iv, &over, NULL);
    if (!why)
        why = bounds(over, v, min, max);
    if (why) {
        cli_error("%s %s (%.10g to %.10g, fractions allowed): %s", what, _(why), min, max, s);
        return false;
    }
    *out = v;
    return true;
}

/* The units of a duration: seconds = number * mul / div (a division for
 * ms, as 0.001 has no exact double: 86400000ms must be 86400 s exactly). */
static const struct {
    const char *name;
    double mul, div;
} units[] = {{"ms", 1, 1000}, {"s", 1, 1}, {"m", 60, 1}, {"h", 3600, 1}};

bool cli_parse_duration(const char *what, const char *s, enum cli_unit plain, double min_s,
                        double max_s, double *secs)
{
    double v = 0;
    long long iv;
    bool over;
    const char *rest = NULL;
    const char *why = scan(s, true, &v, &iv, &over, &rest);
    if (!why) {
        double mul = 1, div = plain == CLI_MILLISECONDS ? 1000 : 1;
        bool known = *rest == '\0';
        for (size_t i = 0; !known && i < sizeof units / sizeof units[0]; i++)
            if (strcmp(rest, units[i].name) == 0) {
                mul = units[i].mul;
                div = units[i].div;
                known = true;
            }
        v = v * mul / div;
        why = known ? bounds(over, v, min_s, max_s) : N_("is not a duration");
    } else if (strcmp(why, "is not a decimal number") == 0) {
        why = N_("is not a duration");
    }
    if (why) {
        cli_error("%s %s (NUMBER[ms|s|m|h], %s without a unit; %.10g s to %.10g s): %s", what,
                  _(why), plain == CLI_MILLISECONDS ? _("milliseconds") : _("seconds"), min_s, max_s, s);
        return false;
    }
    *secs = v;
    return true;
}

bool cli_parse_duration_ms(const char *what, const char *s, enum cli_unit plain, double min_s,
                           double max_s, int *ms)
{
    double v;
    if (!cli_parse_duration(what, s, plain, min_s, max_s, &v))
        return false;
    double m = v * 1000.0 + 0.5;
    *ms = m > 2147483647.0 ? 2147483647 : (int)m;
    if (*ms == 0 && v > 0)
        *ms = 1; /* a positive bound must not become "no bound" */
    return true;
}

bool cli_parse_seconds(const char *what, const char *s, double min, double max, double *out)
{
    return cli_parse_duration(what, s, CLI_SECONDS, min, max, out);
}

bool cli_parse_ms(const char *what, const char *s, double min, double max, int *ms)
{
    return cli_parse_duration_ms(what, s, CLI_SECONDS, min, max, ms);
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
