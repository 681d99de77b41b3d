/* sockit fetch: placeholder until its issue lands; fails loudly. */
#include "cli.h"

int cmd_fetch(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_error("fetch: not implemented yet");
    return EXIT_FAIL;
}
