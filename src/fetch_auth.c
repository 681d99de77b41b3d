/* sockit fetch: credentials. -u USER:PASSWORD, those written in the URL
 * (the library takes them out of it), or the netrc entry of the URL's host
 * (--netrc, --netrc-file FILE), in that order. The library sends them as
 * Basic only to the URL's origin. Nothing here prints a password or a URL
 * that holds one. */
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "i18n.h"

static int set_user(struct fetch_cli *fc, const char *arg)
{
    const char *colon = strchr(arg, ':');
    if (!colon) {
        cli_error("-u %s: no password; sockit does not prompt for one (give -u USER:PASSWORD, "
                  "or use --netrc)",
                  arg);
        return EXIT_USAGE;
    }
    size_t ulen = (size_t)(colon - arg);
    if (ulen >= sizeof fc->user || strlen(colon + 1) >= sizeof fc->password) {
        cli_error("-u: the user name and the password are each at most %d bytes",
                  SK_NETRC_TOKEN_MAX - 1);
        return EXIT_USAGE;
    }
    for (const char *p = arg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            cli_error("-u: control character in the credentials");
            return EXIT_USAGE;
        }
    memcpy(fc->user, arg, ulen);
    fc->user[ulen] = '\0';
    memcpy(fc->password, colon + 1, strlen(colon + 1) + 1); /* the length was checked */
    fc->has_user = true;
    return EXIT_OK;
}

int fetch_auth_opt(struct fetch_cli *fc, int c, const char *arg)
{
    switch (c) {
    case 'u': return set_user(fc, arg);
    case OPT_NETRC: {
        static char home_netrc[PATH_MAX];
        const char *home = getenv("HOME");
        if (!home || !*home) {
            cli_error("--netrc: HOME is not set (use --netrc-file FILE)");
            return EXIT_USAGE;
        }
        if ((size_t)snprintf(home_netrc, sizeof home_netrc, "%s/.netrc", home) >=
            sizeof home_netrc) {
            cli_error("--netrc: HOME is too long");
            return EXIT_USAGE;
        }
        fc->netrc_path = home_netrc;
        fc->netrc_optional = true;
        return EXIT_OK;
    }
    case OPT_NETRC_FILE:
        fc->netrc_path = arg;
        fc->netrc_optional = false;
        return EXIT_OK;
    default: return fetch_report_opt(fc, c, arg);
    }
}

int fetch_auth_load(struct fetch_cli *fc)
{
    if (!fc->netrc_path)
        return EXIT_OK;
    if (!(fc->netrc = malloc(SK_NETRC_FILE_MAX))) {
        cli_error("%s", cli_strerror(SK_ERR(ENOMEM)));
        return EXIT_FAIL;
    }
    int rc = sk_netrc_read(fc->netrc_path, fc->netrc, &fc->netrc_len);
    if (rc == SK_ERR(ENOENT) && fc->netrc_optional) {
        fc->netrc_len = 0; /* curl's --netrc: the file is optional */
        return EXIT_OK;
    }
    if (rc == SK_ETOOBIG) {
        cli_error("%s: larger than %d KiB: not a netrc file", fc->netrc_path,
                  SK_NETRC_FILE_MAX / 1024);
        return EXIT_USAGE;
    }
    if (rc < 0) {
        cli_error("cannot read %s: %s", fc->netrc_path, cli_strerror(rc));
        return EXIT_USAGE;
    }
    struct sk_netrc_entry e;
    unsigned long line = 0;
    const char *why = "";
    rc = sk_netrc_find(fc->netrc, fc->netrc_len, NULL, &e, &line, &why);
    if (rc < 0) {
        cli_error("%s:%lu: %s", fc->netrc_path, line, why); /* the library's English */
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int fetch_auth_url(struct fetch_cli *fc, const char *url)
{
    char user[SK_NETRC_TOKEN_MAX], password[SK_NETRC_TOKEN_MAX];
    int rc = sk_url_take_userinfo(url, fc->shown, sizeof fc->shown, user, sizeof user, password,
                                  sizeof password);
    memset(password, 0, sizeof password);
    fc->url_creds = rc > 0;
    if (rc == SK_ETOOBIG && strlen(url) < sizeof fc->shown)
        cli_error("the credentials in the URL are too long (at most %d bytes each)",
                  SK_NETRC_TOKEN_MAX - 1);
    else if (rc < 0 && rc != SK_ETOOBIG)
        cli_error("invalid credentials in the URL (%s)", cli_strerror(rc));
    if (rc < 0 && rc != SK_ETOOBIG)
        return EXIT_USAGE;
    if (rc < 0) { /* the URL itself: a part may be credentials, so none is shown */
        cli_error("URL too long (%zu bytes; at most %zu)", strlen(url), sizeof fc->shown - 1);
        return EXIT_USAGE;
    }
    if (rc == 1 && !fc->has_user) {
        cli_error("%s: a user without a password in the URL; sockit does not prompt for one "
                  "(write user:password@, or use -u or --netrc)",
                  fc->shown);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

void fetch_auth_host(struct fetch_cli *fc, const char *host)
{
    static struct sk_netrc_entry e;
    fc->o.user = fc->o.password = NULL;
    if (fc->has_user) {
        fc->o.user = fc->user;
        fc->o.password = fc->password;
        return;
    }
    unsigned long line;
    const char *why;
    if (fc->url_creds || !fc->netrc_len ||
        sk_netrc_find(fc->netrc, fc->netrc_len, host, &e, &line, &why) != 1 || !e.has_login)
        return;
    fc->o.user = e.login;
    fc->o.password = e.password;
}

void fetch_auth_free(struct fetch_cli *fc)
{
    if (fc->netrc)
        memset(fc->netrc, 0, fc->netrc_len);
    free(fc->netrc);
    fc->netrc = NULL;
    memset(fc->password, 0, sizeof fc->password);
}
