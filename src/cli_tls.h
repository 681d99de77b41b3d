/* The client-side TLS options that `client` and `bench` share (--tls,
 * --cacert, --insecure, --servername, --cert, --key): parsed, checked and
 * turned into a context one way, with the same messages and statuses. */
#ifndef SOCKIT_CLI_TLS_H
#define SOCKIT_CLI_TLS_H

#include <stdbool.h>

#include "sockit.h"

struct cli_tls {
    bool on;                  /* --tls */
    struct sk_tls_config cfg; /* --cacert, --insecure, --cert, --key */
    const char *servername;   /* --servername; NULL: the host of HOST:PORT */
};

/* getopt_long values of the options, above any command's own. */
enum {
    CLI_OPT_TLS = 0x1000, CLI_OPT_CACERT, CLI_OPT_INSECURE, CLI_OPT_SERVERNAME, CLI_OPT_CERT,
    CLI_OPT_KEY,
};

/* Their entries of a command's struct option table. */
#define CLI_TLS_OPTIONS                                                                    \
    {"tls", no_argument, NULL, CLI_OPT_TLS},                                               \
    {"cacert", required_argument, NULL, CLI_OPT_CACERT},                                   \
    {"insecure", no_argument, NULL, CLI_OPT_INSECURE},                                     \
    {"servername", required_argument, NULL, CLI_OPT_SERVERNAME},                           \
    {"cert", required_argument, NULL, CLI_OPT_CERT},                                       \
    {"key", required_argument, NULL, CLI_OPT_KEY}

/* Takes option c (optarg arg) when it is one of CLI_TLS_OPTIONS: true. */
bool cli_tls_option(struct cli_tls *t, int c, const char *arg);
/* The options together: 0, or EXIT_USAGE after one line (an option that
 * needs --tls without it, --cacert with --insecure, --key without --cert). */
int cli_tls_check(const struct cli_tls *t);
/* The context of t, made before any network work (a file that cannot be
 * read, a bad PEM or a key that does not match its certificate is one
 * line and EXIT_TLS, as fetch's --cacert); warns when insecure, unless
 * quiet. Returns 0 or the exit status. */
int cli_tls_ctx_new(const struct cli_tls *t, bool quiet, struct sk_tls_ctx **ctx);
/* The name sent as SNI and verified: --servername, else host. */
const char *cli_tls_name(const struct cli_tls *t, const char *host);

#endif
