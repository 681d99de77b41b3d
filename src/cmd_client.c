/* sockit client: talk to a greeting server (the seed's test program).
 * The options; the TCP half is client_tcp.c, the UDP half client_udp.c. */
#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "cli_tls.h"
#include "client.h"
#include "i18n.h"
#include "sockit.h"

static const char client_help[] = N_(
    "usage: sockit client HOST:PORT [--udp] [--framing chunk|line] [--timeout DURATION]\n"
    "                     [--tls [--cacert FILE | --insecure] [--servername NAME]\n"
    "                     [--cert FILE [--key FILE]]] [MSG...]\n"
    "\n"
    "Connect to a greeting server, print its greeting, send each MSG and print\n"
    "each reply on its own line, then send \"exit\" and close. Without MSG, read\n"
    "messages from standard input, one per line, until end of input.\n"
    "In chunk framing an empty message cannot be sent: an empty MSG is an error\n"
    "and empty input lines are skipped. The message \"exit\" ends the session\n"
    "there: later messages are not sent.\n"
    "\n"
    "Options:\n"
    "  -u, --udp              send datagrams instead (no greeting; each reply is\n"
    "                         awaited, and re-sent twice within --timeout)\n"
    "  -f, --framing MODE     chunk (default) or line: must match the server\n"
    "  -t, --timeout DURATION deadline for the connect, for sending each message and\n"
    "                         for each whole reply (UDP: for each message, all its\n"
    "                         attempts); default 10 s; 500ms, 2m, 0.5 (seconds);\n"
    "                         with --tls the connect and the handshake together\n"
    "      --tls              speak TLS (1.2 or 1.3) inside TCP; the server's\n"
    "                         certificate chain and host name are verified\n"
    "      --cacert FILE      trust only the CA certificates in FILE (PEM), not\n"
    "                         the system store\n"
    "      --insecure         do not verify the server's certificate (warned)\n"
    "      --servername NAME  send NAME as SNI and verify the certificate against\n"
    "                         it (default: HOST; for an IP address no SNI is sent\n"
    "                         and the address is verified)\n"
    "      --cert FILE        present this client certificate (PEM, then its chain)\n"
    "      --key FILE         its private key (PEM; default: in the --cert file)\n"
    "  -h, --help             this help\n"
    "  -V, --version          print the version\n"
    "\n"
    "The greeting must be exactly \"Welcome!\" and each reply exactly \"Hello, MSG!\"\n"
    "(line framing: then \"\\n\"; a MSG ending in \"\\r\" is answered without it).\n"
    "\n"
    "A greeting in the other framing (\"Welcome!\\n\" from a line server, or\n"
    "\"Welcome!\" and no newline within 200 ms from a chunk server) is reported\n"
    "at once, not after --timeout.\n"
    "\n"
    "Exit status (the table of 'sockit --help'): 0 every message was answered;\n"
    "1 reset, closed early, or the server refused (\"Error: ...\"); 1 too when TLS\n"
    "failed: the handshake or the certificate's verification (the line says why,\n"
    "e.g. \"certificate has expired\", \"host name mismatch\"), or a --cacert,\n"
    "--cert or --key file is unreadable or bad (fetch and bench say 5); 2 bad\n"
    "command line; 3 the host name did not resolve; 4 connection refused or\n"
    "unreachable; 7 the server speaks another framing or protocol; 9 timeout.\n");

static const struct option client_options[] = {
    {"udp", no_argument, NULL, 'u'},
    {"framing", required_argument, NULL, 'f'},
    {"timeout", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    CLI_TLS_OPTIONS,
    {NULL, 0, NULL, 0},
};

/* Returns 0, CLI_DONE (--help, --version) or EXIT_USAGE. */
static int client_parse(int argc, char **argv, struct client_opts *out)
{
    struct client_opts o = {.framing = SK_FRAMING_CHUNK, .timeout_ms = 10000};
    int c, rc;
    optind = 1;
    opterr = 0; /* cli_bad_option says it, in one line */
    /* GNU getopt permutes: options may come before or after HOST:PORT and the
     * messages; a message that starts with '-' goes after "--". */
    while ((c = getopt_long(argc, argv, ":uf:t:h", client_options, NULL)) != -1) {
        switch (c) {
        case 'u': o.udp = true; break;
        case 'f':
            if (sk_framing_parse(optarg, &o.framing) < 0) {
                cli_error("--framing must be chunk or line: %s", optarg);
                return EXIT_USAGE;
            }
            break;
        case 't':
            if (!cli_parse_ms("--timeout", optarg, 0.001, 86400, &o.timeout_ms))
                return EXIT_USAGE;
            break;
        case 'h': return cli_print_help(client_help);
        default:
            if (cli_tls_option(&o.tls, c, optarg))
                break;
            return cli_bad_option("client", c, argv);
        }
    }
    if ((rc = cli_tls_check(&o.tls)) != 0)
        return rc;
    if (o.tls.on && o.udp) {
        cli_error("--tls does not apply to --udp (TLS runs over TCP)");
        return EXIT_USAGE;
    }
    if (optind >= argc) {
        cli_error("missing HOST:PORT (try 'sockit client --help')");
        return EXIT_USAGE;
    }
    if (sk_endpoint_parse(argv[optind], &o.ep) < 0 || o.ep.port == 0) {
        cli_error("expected HOST:PORT or [IPv6]:PORT: %s", argv[optind]);
        return EXIT_USAGE;
    }
    o.msgs = argv + optind + 1;
    o.nmsgs = argc - optind - 1;
    /* In chunk framing a message is what one write carries, and an empty
     * write carries nothing: the server would never see it, and we would
     * wait for a reply that cannot come. */
    for (int i = 0; i < o.nmsgs && !o.udp; i++) {
        if (o.msgs[i][0] == '\0' && o.framing == SK_FRAMING_CHUNK) {
            cli_error("message %d is empty: chunk framing cannot carry an empty "
                      "message (use --framing line)", i + 1);
            return EXIT_USAGE;
        }
        /* In line framing a newline ends a message: it cannot be inside one. */
        if (o.framing == SK_FRAMING_LINE && strchr(o.msgs[i], '\n')) {
            cli_error("message %d contains a newline, which line framing cannot "
                      "carry", i + 1);
            return EXIT_USAGE;
        }
    }
    *out = o;
    return 0;
}

int cmd_client(int argc, char **argv)
{
    cli_reserve_stdio();
    struct client_opts o = {0}; /* set by client_parse only when it returns 0 */
    int rc = client_parse(argc, argv, &o);
    if (rc != 0)
        return rc == CLI_DONE ? EXIT_OK : rc;
    rc = o.udp ? client_udp(&o) : client_tcp(&o);
    /* Issue 9's contract for the client: a TLS failure (handshake,
     * verification, a TLS file) exits 1; fetch and bench say 5. */
    return rc == EXIT_TLS ? EXIT_FAIL : rc;
}
