/* Shared helpers of the command-line program (not part of libsockit): the
 * one convention every subcommand follows (errors, exit statuses, numbers
 * and durations, --help and --version). */
#ifndef SOCKIT_CLI_H
#define SOCKIT_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* Exit statuses, one table for every subcommand: the same failure gets the
 * same status wherever it happens. Printed by `sockit --help` (cli_exit_table)
 * and documented in man/sockit.1, EXIT STATUS. */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,       /* runtime failure not covered below */
    EXIT_USAGE = 2,      /* bad command line */
    EXIT_RESOLVE = 3,    /* a host name did not resolve */
    EXIT_CONNECT = 4,    /* the connection was refused or the host unreachable */
    EXIT_TLS = 5,        /* TLS handshake or certificate verification failed */
    EXIT_HTTP = 6,       /* HTTP status outside 2xx */
    EXIT_PROTO = 7,      /* the peer speaks another protocol or framing */
    EXIT_TRUNCATED = 8,  /* the data ended early */
    EXIT_TIMEOUT = 9,    /* a connect, greeting, reply or transfer timed out */
    EXIT_WRITE = 10,     /* an output file could not be written */
    EXIT_CHECKSUM = 11,  /* --sha256 did not match */
    EXIT_PROXY = 12,     /* the proxy refused the request or broke its protocol */
    EXIT_TOOBIG = 13,    /* fetch: the body is larger than --max-filesize */
};

/* The table above as `sockit --help` prints it (one line per status). */
extern const char cli_exit_table[];

/* The exit status for a libsockit error code (SK_ERESOLVE: EXIT_RESOLVE,
 * refused or unreachable: EXIT_CONNECT, SK_ETIMEDOUT: EXIT_TIMEOUT, TLS:
 * EXIT_TLS, SK_EPROTO: EXIT_PROTO, ...; anything else EXIT_FAIL). */
int cli_exit_status(int rc);

/* What a subcommand's option parser returns when --help or --version was
 * printed: the command stops there with EXIT_OK. Parsers return 0 to go
 * on, CLI_DONE, or an exit status (EXIT_USAGE) to stop with. */
#define CLI_DONE (-1)

int cmd_serve(int argc, char **argv);
int cmd_client(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Names the subcommand running (main() sets it before dispatching): every
 * message of cli_error then reads "sockit: SUB: ...". */
void cli_set_command(const char *name);

/* Prints "sockit: SUB: <message>\n" to stderr, as one line (control bytes
 * are written as \xHH). A message that already starts with "SUB: " is not
 * prefixed again. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Until called again with NULL, cli_error hands each line (its "\n"
 * included) to sink instead (fetch: a URL's messages held until the
 * earlier URLs have said theirs). */
void cli_error_to(void (*sink)(void *arg, const char *line, size_t n), void *arg);

/* sk_strerror in the user's language (the library's own text is English). */
const char *cli_strerror(int rc);

/* Prints a subcommand's --help text (translated) on stdout: returns CLI_DONE, or
 * EXIT_FAIL after saying why stdout failed. */
int cli_print_help(const char *text);

/* Prints "sockit VERSION" on stdout: CLI_DONE or EXIT_FAIL, as above. */
int cli_print_version(void);

/* Reports the option getopt_long (run with opterr = 0 and an optstring
 * starting with ':') could not take: c is its ':' (no value) or '?'
 * (unknown). One "sockit: CMD: ..." line; returns EXIT_USAGE. The options
 * every subcommand takes besides its own come here too, as getopt does not
 * know them: --version (and -V) prints the version and returns CLI_DONE. */
int cli_bad_option(const char *cmd, int c, char **argv);

/* The one number syntax of every option: decimal digits only (no spaces,
 * signs, hex or exponents). On failure these print
 * "sockit: SUB: <what> <why>: <value>" (why: "is not a decimal number",
 * "must not be negative", "is too small", "is too large", "is not a
 * duration") and return false. */
/* An integer in [min, max]. */
bool cli_parse_num(const char *what, const char *s, long long min, long long max, long long *out);
/* A number with a fraction (DIGITS[.DIGITS], .DIGITS) in [min, max]: a rate,
 * not a duration. */
bool cli_parse_real(const char *what, const char *s, double min, double max, double *out);

/* The one duration syntax: a number as cli_parse_real and an optional unit,
 * ms, s, m or h ("500ms", "1.5s", "2m"). A number without a unit is in
 * `plain` (CLI_SECONDS for most options; CLI_MILLISECONDS where an option
 * has always taken milliseconds, e.g. serve --delay). Bounds are in
 * seconds. */
enum cli_unit { CLI_SECONDS, CLI_MILLISECONDS };
bool cli_parse_duration(const char *what, const char *s, enum cli_unit plain, double min_s,
                        double max_s, double *secs);
/* cli_parse_duration, in whole milliseconds (rounded; a positive value
 * never becomes 0). */
bool cli_parse_duration_ms(const char *what, const char *s, enum cli_unit plain, double min_s,
                           double max_s, int *ms);
/* Durations whose plain numbers are seconds. */
bool cli_parse_seconds(const char *what, const char *s, double min, double max, double *out);
bool cli_parse_ms(const char *what, const char *s, double min, double max, int *ms);

/* Makes sure descriptors 0, 1 and 2 are taken (by a descriptor that fails
 * every read and write, where one was closed), so that no socket gets one
 * of those numbers. Call first. Returns the closed ones, bit n for fd n. */
unsigned cli_reserve_stdio(void);

/* Checks that stdout was written completely (fflush/ferror); prints the
 * error and returns false otherwise. */
bool cli_stdout_ok(void);

#endif
