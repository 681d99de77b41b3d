/* sockit fetch: the options a curl or wget user types first. Most are other
 * spellings of what fetch already does (-L, -O, -f, -S, -q, -c, -P, -C -);
 * the upload methods are refused with a reason. cmd_fetch.c hands every
 * option it does not know to fetch_curl_opt(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "i18n.h"

static const char fetch_help_more[] = N_(
    "\n"
    "Credentials (HTTP Basic, sent only to the URL's origin: a redirect to another\n"
    "scheme, host or port drops them, as it drops -H Authorization and Cookie):\n"
    "  -u, --user USER:PASSWORD  log in as USER (split at the first ':'); sockit\n"
    "                          never prompts: a USER alone is refused\n"
    "      --netrc             take them from $HOME/.netrc for the URL's host (a\n"
    "                          missing file is no error)\n"
    "      --netrc-file FILE   the same from FILE\n"
    "http://USER:PASSWORD@host/ in the URL (percent-decoded) means the same as -u;\n"
    "-u wins over the URL, and both over netrc. Messages never show them.\n");

static const char fetch_help_report[] = N_(
    "\n"
    "Reports:\n"
    "  -D, --dump-header FILE  write every response head of each URL (redirects\n"
    "                          included) to FILE as received, instead of standard\n"
    "                          output ('-': standard output), even with -s\n"
    "  -w, --write-out FORMAT  after each URL, print FORMAT on standard output with\n"
    "                          curl's variables replaced: %{http_code},\n"
    "                          %{response_code}, %{http_version}, %{scheme},\n"
    "                          %{content_type}, %{size_download}, %{size_header},\n"
    "                          %{size_request}, %{speed_download}, %{time_connect},\n"
    "                          %{time_appconnect}, %{time_pretransfer},\n"
    "                          %{time_starttransfer}, %{time_total}, %{url},\n"
    "                          %{url_effective}, %{urlnum}, %{filename_effective},\n"
    "                          %{num_redirects}, %{num_connects}, %{remote_ip},\n"
    "                          %{remote_port}, %{errormsg}, %{exitcode},\n"
    "                          %{time_namelookup}, %{time_redirect}, %{local_ip},\n"
    "                          %{local_port}, %{method}, %{num_headers},\n"
    "                          %{redirect_url}, %{ssl_verify_result},\n"
    "                          %{http_connect}, %{size_upload}, %{speed_upload};\n"
    "                          %header{NAME} (the final response's field NAME),\n"
    "                          %{header_json} (all its fields); %{json}\n"
    "                          (all variables), %{stderr}, %{stdout}, %{onerror}\n"
    "                          (the rest only after a failure); \\n, \\t, \\r, \\\\\n"
    "                          and %% as in curl. @FILE: the format is FILE's text\n"
    "                          ('@-': standard input)\n"
    "  -v, --verbose           on standard error: the address connected to, the TLS\n"
    "                          version, cipher and certificate, each request sent\n"
    "                          ('> ', credentials masked) and response head ('< '),\n"
    "                          the times (connect, TLS, first byte, total)\n");

static const char fetch_help_curl[] = N_(
    "\n"
    "curl and wget spellings (fetch already behaves this way):\n"
    "  -L, --location          follow redirects (always on; see --max-redirs)\n"
    "  -O, --remote-name       save under the URL's name (the default without -o)\n"
    "  -J, --remote-header-name, --content-disposition  save under the file name of\n"
    "                          the final response's Content-Disposition (only its\n"
    "                          last segment; a hidden, empty or malformed one is\n"
    "                          refused: the URL's name, with a notice). Nothing\n"
    "                          with -o; not with -C\n"
    "      --trust-server-names  name the file after the final URL (after\n"
    "                          redirects) instead of the given one. Nothing with -o\n"
    "  -f, --fail              fail on an HTTP error status (the default; exit 6)\n"
    "  -S, --show-error        show errors (always shown, even with -s)\n"
    "  -q, --quiet             the same as -s\n"
    "  -c                      the same as -C (wget's spelling)\n"
    "  -C -, --continue-at -   the same as -C (curl's spelling; no byte offsets)\n"
    "  -P, --directory-prefix DIR  the same as --output-dir DIR\n"
    "  -A, --user-agent STR    send STR as the User-Agent header\n"
    "A URL without a scheme (example.org/file) means http://, as curl assumes.\n"
    "\n"
    "Out of scope: fetch only downloads (GET, or HEAD with -I). The upload\n"
    "methods -d/--data, -F/--form, -T/--upload-file and -X/--request other than\n"
    "GET are refused (exit 2).\n");

int fetch_curl_help(void)
{
    fputs(_(fetch_help_more), stdout);
    fputs(_(fetch_help_report), stdout);
    return cli_print_help(fetch_help_curl);
}

/* The value of -A: one header line's worth of text. */
static int set_user_agent(struct fetch_cli *fc, const char *s)
{
    if (!*s) {
        cli_error("-A: empty User-Agent (use -H 'User-Agent: ' to send an empty one)");
        return EXIT_USAGE;
    }
    if (strpbrk(s, "\r\n")) {
        cli_error("-A: the User-Agent must not contain CR or LF");
        return EXIT_USAGE;
    }
    fc->o.user_agent = s;
    return EXIT_OK;
}

static int refuse_upload(const char *opt)
{
    cli_error("%s: uploads are out of scope (sockit fetch only downloads: GET, or HEAD "
              "with -I)",
              opt);
    return EXIT_USAGE;
}

int fetch_curl_opt(struct fetch_cli *fc, int c, const char *arg)
{
    switch (c) {
    case 'L':
    case 'S': return EXIT_OK; /* what fetch always does */
    case 'O': fc->remote_name = true; return EXIT_OK;
    case 'J':
    case OPT_CONTENT_DISPOSITION: fc->cd_name = true; return EXIT_OK;
    case OPT_TRUST_SERVER_NAMES: fc->trust_names = true; return EXIT_OK;
    case 'f': fc->o.flags &= ~(unsigned)SK_FETCH_NO_FAIL; return EXIT_OK; /* the last one wins */
    case 'q': fc->silent = true; return EXIT_OK;
    case 'c': fc->resume = true; return EXIT_OK;
    case OPT_CONTINUE_AT:
        if (strcmp(arg, "-") != 0) {
            cli_error("--continue-at %s: only '-' (continue FILE.part) is supported", arg);
            return EXIT_USAGE;
        }
        fc->resume = true;
        return EXIT_OK;
    case 'P':
        if (!*arg) {
            cli_error("-P: empty folder name");
            return EXIT_USAGE;
        }
        fc->out_dir = arg;
        return EXIT_OK;
    case 'A': return set_user_agent(fc, arg);
    case 'X':
        if (strcmp(arg, "GET") == 0)
            return EXIT_OK;
        if (strcmp(arg, "HEAD") == 0) {
            cli_error("-X HEAD: use -I (--head)");
            return EXIT_USAGE;
        }
        return refuse_upload("-X");
    case 'd': return refuse_upload("-d");
    case 'F': return refuse_upload("-F");
    case 'T': return refuse_upload("-T");
    case OPT_DATA_OTHER: return refuse_upload("--data-*");
    default: return fetch_auth_opt(fc, c, arg);
    }
}

/* -C's value, given as -C- or --continue=-: only '-' means something. */
int fetch_curl_continue(struct fetch_cli *fc, const char *arg)
{
    fc->resume = true;
    if (arg && strcmp(arg, "-") != 0) {
        cli_error("-C %s: only '-' (continue FILE.part) is supported", arg);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* A positional argument after -C: curl's "-C -" (skipped), or a byte
 * offset "-C 100" (refused). Returns 1 to skip it, 0 for a URL, or an exit
 * status. */
int fetch_curl_positional(const struct fetch_cli *fc, const char *arg)
{
    if (!fc->resume)
        return 0;
    if (strcmp(arg, "-") == 0)
        return 1;
    if (*arg && strspn(arg, "0123456789") == strlen(arg)) {
        cli_error("-C %s: byte offsets are not supported: -C continues FILE.part", arg);
        return EXIT_USAGE;
    }
    return 0;
}

/* True if s starts with "scheme://" (RFC 3986 scheme characters). */
static bool has_scheme(const char *s)
{
    size_t n = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return false;
    while (s[n] && strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-",
                          s[n]))
        n++;
    return strncmp(s + n, "://", 3) == 0;
}

char *fetch_url_with_scheme(const char *url)
{
    if (has_scheme(url))
        return strdup(url);
    size_t n = strlen(url);
    char *out = malloc(n + sizeof "http://");
    if (out) {
        memcpy(out, "http://", 7);
        memcpy(out + 7, url, n + 1);
    }
    return out;
}

int fetch_curl_load(struct fetch_cli *fc)
{
    int rc = fetch_auth_load(fc);
    return rc == EXIT_OK ? fetch_report_load(fc) : rc;
}

void fetch_curl_free(struct fetch_cli *fc)
{
    fetch_auth_free(fc);
    fetch_report_free(fc);
}
