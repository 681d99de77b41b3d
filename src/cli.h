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

/* Parses a decimal integer in [min, max]; on failure prints
 * "sockit: <what> <why>: <value>" and returns false. */
bool cli_parse_num(const char *what, const char *s, long long min, long long max, long long *out);

/* Checks that stdout was written completely (fflush/ferror); prints the
 * error and returns false otherwise. */
bool cli_stdout_ok(void);

#endif
