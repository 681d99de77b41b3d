/* The client-side TLS options of client and bench: see cli_tls.h. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_tls.h"

bool cli_tls_option(struct cli_tls *t, int c, const char *arg)
{
    switch (c) {
    case CLI_OPT_TLS: t->on = true; return true;
    case CLI_OPT_CACERT: t->cfg.cafile = arg; return true;
    case CLI_OPT_INSECURE: t->cfg.insecure = true; return true;
    case CLI_OPT_SERVERNAME: t->servername = arg; return true;
    case CLI_OPT_CERT: t->cfg.cert_file = arg; return true;
    case CLI_OPT_KEY: t->cfg.key_file = arg; return true;
    default: return false;
    }
}

int cli_tls_check(const struct cli_tls *t)
{
    const char *needs = t->cfg.cafile ? "--cacert"
                      : t->cfg.insecure ? "--insecure"
                      : t->servername ? "--servername"
                      : t->cfg.cert_file ? "--cert"
                      : t->cfg.key_file ? "--key"
                      : NULL;
    if (!t->on && needs) {
        cli_error("%s needs --tls", needs);
        return EXIT_USAGE;
    }
    if (t->cfg.cafile && t->cfg.insecure) {
        cli_error("--cacert and --insecure exclude each other");
        return EXIT_USAGE;
    }
    if (t->cfg.key_file && !t->cfg.cert_file) {
        cli_error("--key needs --cert");
        return EXIT_USAGE;
    }
    if (t->servername && !*t->servername) {
        cli_error("--servername must not be empty");
        return EXIT_USAGE;
    }
    return 0;
}

int cli_tls_ctx_new(const struct cli_tls *t, bool quiet, struct sk_tls_ctx **ctx)
{
    /* OpenSSL names an unreadable file "system lib": the system's reason
     * says more. The CA file is read at the first handshake: checked here,
     * before any network work. */
    const char *files[] = {t->cfg.cafile, t->cfg.cert_file, t->cfg.key_file};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *f = files[i] ? fopen(files[i], "r") : NULL;
        if (files[i] && !f) {
            cli_error("cannot read %s: %s", files[i], strerror(errno));
            return EXIT_TLS;
        }
        if (f)
            (void)fclose(f); /* opened only to name an unreadable file */
    }
    char err[512];
    int rc = sk_tls_ctx_new(&t->cfg, ctx, err, sizeof err);
    if (rc < 0) {
        cli_error("%s", rc == SK_ETLS ? err : cli_strerror(rc));
        return cli_exit_status(rc);
    }
    if (t->cfg.insecure && !quiet)
        cli_error("warning: --insecure: the server's certificate is not verified");
    return 0;
}

const char *cli_tls_name(const struct cli_tls *t, const char *host)
{
    return t->servername ? t->servername : host;
}
