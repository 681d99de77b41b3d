/* sockit: dispatch to the subcommand named by argv[1]. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sockit.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"serve", cmd_serve, "run the greeting server (TCP and UDP)"},
    {"client", cmd_client, "talk to a greeting server"},
    {"fetch", cmd_fetch, "download a URL over HTTP or HTTPS"},
    {"bench", cmd_bench, "measure a greeting server under load"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: sockit COMMAND [OPTIONS]\n"
                 "       sockit --version | --help\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'sockit COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    /* A peer that goes away must never kill us: writes report EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return cli_stdout_ok() ? EXIT_OK : EXIT_FAIL;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("sockit %s\n", SOCKIT_VERSION);
        return cli_stdout_ok() ? EXIT_OK : EXIT_FAIL;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    cli_error("unknown command: %s (try 'sockit --help')", argv[1]);
    return EXIT_USAGE;
}
