/* sockit: dispatch to the subcommand named by argv[1]. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "i18n.h"
#include "sockit.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"serve", cmd_serve, N_("run the greeting server (TCP and UDP)")},
    {"client", cmd_client, N_("talk to a greeting server")},
    {"fetch", cmd_fetch, N_("download a URL over HTTP or HTTPS")},
    {"bench", cmd_bench, N_("measure a greeting server under load")},
};

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0)
            return &commands[i];
    return NULL;
}

static int usage(void)
{
    fputs(_("usage: sockit COMMAND [OPTIONS]\n"
             "       sockit help [COMMAND]\n"
             "       sockit --version | --help\n\n"
             "Commands:\n"), stdout);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        printf("  %-8s %s\n", commands[i].name, _(commands[i].summary));
    printf(_("\n'sockit help COMMAND' (or 'sockit COMMAND --help') prints a command's\n"
           "options; 'sockit COMMAND --version' works for every command; man sockit.\n"
           "\n"
           "Every command takes durations as NUMBER[ms|s|m|h] (500ms, 10s, 2m; a plain\n"
           "number is seconds, except serve --delay: milliseconds), and reports a\n"
           "failure in one line \"sockit: COMMAND: what went wrong\" on stderr.\n"
           "\n"
           "Exit status, the same for every command:\n%s"), _(cli_exit_table));
    return cli_stdout_ok() ? EXIT_OK : EXIT_FAIL;
}

static int version(void)
{
    return cli_print_version() == CLI_DONE ? EXIT_OK : EXIT_FAIL;
}

/* sockit help [COMMAND]: the command's --help text (the one manual of each
 * command; man sockit has the same in long form). */
static int help(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    const struct command *c = find(argv[2]);
    if (!c || argc > 3) {
        cli_error(c ? "help: one command at a time: %s" : "help: unknown command %s "
                  "(try 'sockit --help')", argv[c ? 3 : 2]);
        return EXIT_USAGE;
    }
    char name[16], opt[] = "--help";
    snprintf(name, sizeof name, "%s", c->name);
    char *args[] = {name, opt, NULL};
    cli_set_command(c->name);
    return c->run(2, args);
}

int main(int argc, char **argv)
{
    i18n_init();
    /* A peer that goes away must never kill us: writes report EPIPE instead. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        cli_error("missing command (try 'sockit --help')");
        return EXIT_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
        return usage();
    if (strcmp(a, "help") == 0)
        return help(argc, argv);
    if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0 || strcmp(a, "version") == 0)
        return version();
    const struct command *c = find(a);
    if (c) {
        cli_set_command(c->name);
        return c->run(argc - 1, argv + 1);
    }
    if (a[0] == '-')
        cli_error("unknown option %s (try 'sockit --help')", a);
    else
        cli_error("unknown command %s (try 'sockit --help')", a);
    return EXIT_USAGE;
}
