/* Shared helpers of the command-line program (not part of libsockit). */
#ifndef SOCKIT_CLI_H
#define SOCKIT_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* Exit statuses shared by every subcommand (documented in --help, README). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,  /* runtime failure not covered below */
    EXIT_USAGE = 2, /* bad command line */
};

int cmd_serve(int argc, char **argv);
int cmd_client(int argc, char **argv);
int cmd_fetch(int argc, char **argv);
int cmd_bench(int argc, char **argv);

/* Prints "sockit: <message>\n" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Reports the option getopt_long (run with opterr = 0 and an optstring
 * starting with ':') could not take: c is its ':' (no value) or '?'
 * (unknown). One "sockit: CMD: ..." line; returns EXIT_USAGE. */
int cli_bad_option(const char *cmd, int c, char **argv);

/* The one number syntax of every option: decimal digits only (no spaces,
 * signs, hex or exponents). On failure these print
 * "sockit: <what> <why>: <value>" (why: "is not a decimal number", "must
 * not be negative", "is too small", "is too large") and return false. */
/* An integer in [min, max]. */
bool cli_parse_num(const char *what, const char *s, long long min, long long max, long long *out);
/* Seconds (or another quantity with a fraction: DIGITS[.DIGITS], .DIGITS)
 * in [min, max]. */
bool cli_parse_seconds(const char *what, const char *s, double min, double max, double *out);
/* cli_parse_seconds, converted to milliseconds (rounded; a positive value
 * never becomes 0). */
bool cli_parse_ms(const char *what, const char *s, double min, double max, int *ms);

/* Makes sure descriptors 0, 1 and 2 are taken (by a descriptor that fails
 * every read and write, where one was closed), so that no socket gets one
 * of those numbers. Call first. Returns the closed ones, bit n for fd n. */
unsigned cli_reserve_stdio(void);

/* Checks that stdout was written completely (fflush/ferror); prints the
 * error and returns false otherwise. */
bool cli_stdout_ok(void);

#endif
