/* sockit bench: placeholder until its issue lands; fails loudly. */
#include "cli.h"

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("bench: not implemented yet");
    return EXIT_FAIL;
}
