/* sockit client --udp: placeholder until the UDP issue lands. */
#include "cli.h"
#include "client.h"

int client_udp(const struct client_opts *o)
{
    (void)o;
    cli_error("client: --udp not implemented yet");
    return EXIT_FAIL;
}
