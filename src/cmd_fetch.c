/* sockit fetch: download a URL over HTTP/1.1 or HTTPS, safely.
 *
 * This file is the command line: options, output naming, signals and exit
 * statuses. The transfer itself (redirects, framing, resume, atomic output,
 * retries) is the library's HTTP client (include/sockit/fetch.h); what it
 * reports is printed by fetch_out.c. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fetch.h"
#include "i18n.h"

struct sk_fetch_cancel fetch_cancel = SK_FETCH_CANCEL_INIT;

static const char fetch_help[] = N_(
    "usage: sockit fetch URL... [-i FILE] [--output-dir DIR] [-o FILE] [-s] [-I] [-C]\n"
    "                    [-H 'Name: value']...\n"
    "                    [--cacert FILE] [--insecure] [--max-redirs N]\n"
    "                    [--connect-timeout SEC] [--max-time SEC] [--retry N]\n"
    "                    [-x URL] [--socks5[-hostname] HOST[:PORT]]\n"
    "                    [--socks4[a] HOST[:PORT]] [--noproxy LIST]\n"
    "                    [--compressed] [--max-filesize BYTES] [--no-reuse]\n"
    "                    [--limit-rate RATE] [-Y BYTES] [-y SEC]\n"
    "                    [--parallel N]\n"
    "                    [--http1.1 | --http2 | --http2-prior-knowledge]\n"
    "\n"
    "Download URL (http:// or https://) with HTTP/2 when an https server offers\n"
    "it (ALPN), else HTTP/1.1. The status line and headers\n"
    "of each response are printed to standard output; the body goes to FILE.\n"
    "Several URLs are fetched up to 8 at once (--parallel N), each saved under its\n"
    "own name; a line on standard error gives each one's result, in the order the\n"
    "URLs were given, and a last line the count of successes and failures. A\n"
    "connection is kept open and reused for the next URL (or redirect) to the same\n"
    "server, unless it or the server says close.\n"
    "\n"
    "The body is written to a temporary file beside FILE and renamed onto FILE only\n"
    "once it is complete and verified (Content-Length matched, final chunk seen, or\n"
    "TLS closed with close_notify). On any failure FILE is left as it was.\n"
    "\n"
    "Options:\n"
    "  -o, --output FILE       write the body to FILE (replacing it atomically);\n"
    "                          '-' writes it to standard output and the headers to\n"
    "                          standard error. Default: the URL's last path segment\n"
    "                          (index.html for a path ending in '/'), and then an\n"
    "                          existing file is never replaced: sockit refuses.\n"
    "  -i, --input-file FILE   also fetch the URLs listed in FILE, one per line ('-':\n"
    "                          standard input; blank lines and '#' comments skipped)\n"
    "      --output-dir DIR    save the files named after the URLs in DIR\n"
    "  -s, --silent            print no headers, progress or notices (errors still)\n"
    "  -I, --head              send HEAD: print the headers, save nothing\n"
    "  -C, --continue          resumable download: keep an interrupted transfer as\n"
    "                          FILE.part (+ FILE.part.meta) and continue it on a\n"
    "                          rerun, only if the server proves it is the same data\n"
    "                          (If-Range, 206, Content-Range at the part's size)\n"
    "  -H, --header 'N: V'     add a request header (repeatable); replaces Host,\n"
    "                          User-Agent or Accept; credentials (Authorization,\n"
    "                          Cookie) are not sent to another origin on redirect\n"
    "      --cacert FILE       trust only the CA certificates in FILE (PEM)\n"
    "  -k, --insecure          do not verify the server certificate (warned)\n"
    "      --max-redirs N      follow at most N redirects (default 10); 0: do not\n"
    "                          follow (a 3xx is then the final, failed response)\n"
    "      --allow-downgrade   follow redirects from https to http\n"
    "      --connect-timeout SEC  limit for TCP connect + TLS handshake (default 30)\n"
    "      --idle-timeout SEC  limit for waiting on the next byte (default 60)\n"
    "  -m, --max-time SEC      limit for the whole run, retries included\n"
    "      --retry N           retry up to N times after a connect failure, a\n"
    "                          timeout, a 408, 429 or 5xx, and with -C a truncated\n"
    "                          body (default 0); waits Retry-After, else 1 s\n"
    "                          doubling up to 60 s\n"
    "      --retry-delay SEC   first wait between retries (default 1)\n"
    "      --no-fail           treat any final status as success: save its body\n"
    "      --sync              fsync the file (and its folder) before the rename\n"
    "      --sha256 HEX        the body's expected SHA-256: on a mismatch nothing\n"
    "                          is saved (exit 11)\n"
    "  -x, --proxy URL         go through the proxy URL,\n"
    "                          [SCHEME://][user:pass@]host[:port] (port 1080 by\n"
    "                          default; '' for none). http:// (the default): http://\n"
    "                          URLs are asked of it in absolute form, https:// ones\n"
    "                          through a CONNECT tunnel. socks5:// (sockit resolves\n"
    "                          the name) or socks5h:// (the proxy does): a SOCKS5\n"
    "                          tunnel for both; socks4:// (sockit resolves, IPv4\n"
    "                          only) or socks4a:// (the proxy does): SOCKS4, the\n"
    "                          user name sent as its user id, a password ignored\n"
    "                          (as curl does). The server's certificate is verified\n"
    "                          as usual; user and password go to the proxy only\n"
    "                          (SOCKS: at most 255 bytes each). Default:\n"
    "                          $http_proxy for http://, $https_proxy or\n"
    "                          $HTTPS_PROXY for https://, else $all_proxy or\n"
    "                          $ALL_PROXY ($HTTP_PROXY is ignored, as curl does)\n"
    "      --socks5 HOST[:PORT]  the same as -x socks5://HOST[:PORT]\n"
    "      --socks5-hostname HOST[:PORT]  the same as -x socks5h://HOST[:PORT]\n"
    "      --socks4 HOST[:PORT]  the same as -x socks4://HOST[:PORT]\n"
    "      --socks4a HOST[:PORT]  the same as -x socks4a://HOST[:PORT]\n"
    "      --noproxy LIST      hosts reached directly (overrides $no_proxy and\n"
    "                          $NO_PROXY): names with their subdomains, addresses,\n"
    "                          HOST:PORT, separated by commas; '*' for all\n"
    "      --compressed        ask for gzip, deflate or br and save the decoded\n"
    "                          body (--sha256 checks the decoded bytes); a corrupt\n"
    "                          or truncated stream, an unknown coding or a chain\n"
    "                          of several: nothing saved. Not with -C\n"
    "      --max-filesize BYTES  fail (exit 13, nothing saved) when the body (decoded\n"
    "                          with --compressed) is larger: a Content-Length over\n"
    "                          it before the body is read, else as soon as it\n"
    "                          grows past it. BYTES: a number, or with k, m, g\n"
    "                          (powers of 1024); 0: no limit\n"
    "      --no-reuse          one connection per request: send 'Connection: close'\n"
    "                          and keep no connection open for the next URL\n"
    "      --limit-rate RATE   read each transfer's body at most RATE bytes per\n"
    "                          second (k, m, g: powers of 1024; a burst of 256 KiB,\n"
    "                          over HTTP/2 up to 0.5 s of RATE, first); with -j\n"
    "                          each transfer alone\n"
    "  -Y, --speed-limit BYTES  fail a transfer slower than BYTES per second for\n"
    "                          --speed-time (exit 9; retried by --retry)\n"
    "  -y, --speed-time SEC    the time of -Y (default 30 s; alone: -Y 1)\n"
    "      --http1.1           over TLS offer only HTTP/1.1 (ALPN http/1.1)\n"
    "      --http2             over TLS offer HTTP/2 first (the default); plain\n"
    "                          http:// stays HTTP/1.1 (no Upgrade)\n"
    "      --http2-prior-knowledge  plain http:// in HTTP/2 from the start (h2c,\n"
    "                          no Upgrade: the server must speak it), direct or\n"
    "                          through SOCKS5; https:// as --http2; through an\n"
    "                          HTTP proxy HTTP/1.1. The last of --http1.1,\n"
    "                          --http2 and this one counts\n"
    "      --parallel N        up to N transfers at once (1 to 1024, default 8),\n"
    "                          all on one event loop in one thread, each with its\n"
    "                          own kept connection (those to one HTTP/2 server\n"
    "                          share one); 1: one after another. Result lines and\n"
    "                          heads in the order given.\n"
    "                          Also -j N, --parallel-max N; -Z (curl's) accepted\n"
    "  -h, --help              this help\n"
    "\n"
    "SEC is a duration: seconds (0.5) or with a unit (500ms, 10s, 2m, 1h). A\n"
    "progress bar appears on standard error when "
    "it is a terminal and the transfer lasts.\n"
    "\n"
    "Exit status:\n"
    "   0  success (2xx; with -C also: the partial file was already complete)\n"
    "   1  other failure (out of memory); interrupted by SIGINT, SIGTERM,\n"
    "      SIGHUP, SIGQUIT, SIGXCPU, SIGUSR1 or SIGUSR2 (nothing is saved;\n"
    "      with -C the part is kept)\n"
    "   2  bad command line or URL\n"
    "   3  host name could not be resolved\n"
    "   4  connection failed (refused, unreachable)\n"
    "   5  TLS failure (handshake, certificate chain or host name, CA file,\n"
    "      a corrupt record)\n"
    "   6  the final HTTP status is not 2xx (the body is not saved)\n"
    "   7  protocol error: malformed response, bad redirect, redirect limit,\n"
    "      a 206 that is not the range asked for\n"
    "   8  body truncated: connection closed or reset before its end\n"
    "   9  timeout: connect, a stalled server, --max-time, or a transfer\n"
    "      slower than --speed-limit for --speed-time\n"
    "  10  output error: FILE exists (no -o), cannot be created or written;\n"
    "      standard output closed (SIGPIPE)\n"
    "  11  the body did not match --sha256 (nothing saved)\n"
    "  12  the proxy refused: 407 (authentication), CONNECT answered other than\n"
    "      2xx, a malformed or cut reply to CONNECT; a SOCKS proxy's refusal\n"
    "      (method, credentials, CONNECT) or a malformed or cut reply\n"
    "  13  the body is larger than --max-filesize (nothing saved)\n"
    "With several URLs: 0 when all succeeded, else the status of the first failure\n"
    "in the order given (an interruption's status wins).\n");

static void on_signal(int sig)
{
    /* async-signal-safe: sets the flag, wakes the transfer's loop (a
     * wait that began just before the signal came) */
    sk_fetch_cancel_raise(&fetch_cancel, sig);
}

/* Every signal a user sends to stop a download (Ctrl-C, kill, a closed
 * terminal, the quit key, a closed standard output, a CPU time limit:
 * SIGKILL follows at the hard limit; the user signals, whose default would
 * kill us with the temporary file left) sets fetch_cancel.flag, which
 * every read and write looks at, and interrupts waits (no SA_RESTART): the
 * transfer unwinds through its scopes, so the temporary file is removed. */
static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGXCPU, SIGUSR1,
                               SIGUSR2};
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&sa.sa_mask, sigs[i]);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    /* A file size limit (ulimit -f) would kill us with the temporary file
     * left behind: ignored, the write fails with EFBIG and is rolled back. */
    signal(SIGXFSZ, SIG_IGN);
    fetch_ticks(false); /* SIGALRM's handler: a stray one must not kill us either */
}

static bool parse_seconds(const char *what, const char *s, int *ms)
{
    return cli_parse_ms(what, s, 0, 86400.0 * 24, ms);
}

/* -H "Name: value": a token, a colon, a value without CR, LF or NUL. Headers
 * that decide the message framing are ours alone. */
static bool check_header(const char *h)
{
    const char *colon = strchr(h, ':');
    if (!colon || colon == h) {
        cli_error("header must be 'Name: value': %s", h);
        return false;
    }
    if (!sk_http_is_token(h, (size_t)(colon - h))) {
        cli_error("invalid header name: %s", h);
        return false;
    }
    if (strpbrk(h, "\r\n")) {
        cli_error("header must not contain CR or LF");
        return false;
    }
    static const char *const reserved[] = {"Connection", "Content-Length", "Transfer-Encoding"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if ((size_t)(colon - h) == strlen(reserved[i]) &&
            strncasecmp(h, reserved[i], strlen(reserved[i])) == 0) {
            cli_error("header %s is set by sockit and cannot be overridden", reserved[i]);
            return false;
        }
    return true;
}

enum { OPT_CACERT = 256, OPT_MAXREDIRS, OPT_CONNTIMEOUT, OPT_IDLETIMEOUT, OPT_RETRY,
       OPT_RETRYDELAY, OPT_DOWNGRADE, OPT_NOFAIL, OPT_SYNC, OPT_SHA256, OPT_OUTDIR,
       OPT_NOPROXY, OPT_SOCKS5, OPT_SOCKS5H, OPT_SOCKS4, OPT_SOCKS4A };
/* --compressed and --max-filesize: a block of their own */
enum { OPT_COMPRESSED = 512, OPT_MAXFILESIZE, OPT_NOREUSE, OPT_HTTP11, OPT_HTTP2,
       OPT_LIMITRATE, OPT_HTTP2PK };

/* --max-filesize BYTES: digits, then k, m or g (powers of 1024, as curl). */
static bool parse_size(const char *what, const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
    unsigned shift = 0;
    if (end && *end && !end[1]) {
        const char *units = "kKmMgG", *u = strchr(units, *end);
        shift = u ? 10 * (unsigned)((u - units) / 2 + 1) : 99;
        end++;
    }
    if (!end || *end || errno || shift == 99 || (shift && v > (UINT64_MAX >> shift))) {
        cli_error("%s needs a size in bytes (a number, or with k, m or g): %s", what, s);
        return false;
    }
    *out = (uint64_t)v << shift;
    return true;
}

/* --limit-rate RATE, -Y BYTES: a size as parse_size's, not 0. */
static bool parse_speed(const char *what, const char *s, uint64_t *out)
{
    if (!parse_size(what, s, out))
        return false;
    if (*out == 0) {
        cli_error("%s needs a speed of at least 1 byte per second: %s", what, s);
        return false;
    }
    return true;
}

/* Appends url to the run's list (a copy: a list file's lines are read
 * into one buffer). Returns false, said, when memory or the bound runs out. */
static bool add_url(struct fetch_cli *fc, const char *url)
{
    if (fc->nurls == FETCH_URLS_MAX) {
        cli_error("too many URLs (at most %d)", FETCH_URLS_MAX);
        return false;
    }
    if (fc->nurls == fc->urls_cap) {
        size_t cap = fc->urls_cap ? fc->urls_cap * 2 : 16;
        char **u = realloc(fc->urls, cap * sizeof *u);
        if (!u) {
            cli_error("%s", cli_strerror(-ENOMEM));
            return false;
        }
        fc->urls = u;
        fc->urls_cap = cap;
    }
    if (!(fc->urls[fc->nurls] = fetch_url_with_scheme(url))) {
        cli_error("%s", cli_strerror(-ENOMEM));
        return false;
    }
    fc->nurls++;
    return true;
}

/* -i FILE ('-': standard input): its URLs after those of the command line. */
static int read_list(struct fetch_cli *fc, const char *path)
{
    bool std = strcmp(path, "-") == 0;
    FILE *in = std ? stdin : fopen(path, "re");
    if (!in) {
        cli_error("cannot open %s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    static char line[FETCH_URL_LINE_MAX + 2]; /* the URL, its NUL, one byte to see it is longer */
    unsigned long n = 0;
    int rc;
    while ((rc = sk_fetch_list_next(in, line, sizeof line - 1, &n)) == 1)
        if (!add_url(fc, line))
            break;
    if (!std)
        (void)fclose(in); /* read only: nothing to lose */
    if (rc == SK_ETOOBIG)
        cli_error("%s:%lu: line longer than %d bytes", path, n, FETCH_URL_LINE_MAX);
    else if (rc == SK_EPARSE)
        cli_error("%s:%lu: NUL byte in the line", path, n);
    else if (rc < 0)
        cli_error("cannot read %s: %s", path, cli_strerror(rc));
    return rc == 0 ? EXIT_OK : rc == 1 ? EXIT_FAIL : EXIT_USAGE;
}

/* ---- proxies: --proxy / -x, --noproxy and the environment ---- */

/* A proxy's URL is http://, socks5://, socks5h://, socks4:// or socks4a://,
 * or has no scheme (http). */
static bool check_proxy(const char *what, const char *v)
{
    static const char *const schemes[] = {"http://", "socks5://", "socks5h://", "socks4://",
                                          "socks4a://"};
    const char *sep = strstr(v, "://");
    for (size_t i = 0; sep && i < sizeof schemes / sizeof schemes[0]; i++)
        if ((size_t)(sep - v) + 3 == strlen(schemes[i]) &&
            strncasecmp(v, schemes[i], strlen(schemes[i])) == 0)
            return true;
    if (sep) {
        cli_error("%s: unsupported proxy scheme (only http://, socks5://, socks5h://, socks4://, "
                  "socks4a://): %s",
                  what, v);
        return false;
    }
    return true;
}

/* curl's --socks5 HOST[:PORT], --socks5-hostname (the proxy resolves the
 * names), --socks4 and --socks4a (the proxy resolves): the proxy for every
 * URL, as -x SCHEME://HOST[:PORT] (the last of these and -x wins). */
static bool socks_option(struct fetch_cli *fc, int opt, const char *v)
{
    static const char *const names[][2] = {{"--socks5", "socks5"},
                                           {"--socks5-hostname", "socks5h"},
                                           {"--socks4", "socks4"},
                                           {"--socks4a", "socks4a"}};
    const char *const *name = names[opt - OPT_SOCKS5];
    const char *what = name[0];
    if (!*v || strstr(v, "://")) {
        cli_error("%s takes HOST[:PORT], without a scheme: %s", what, v);
        return false;
    }
    int n = snprintf(fc->socks_url, sizeof fc->socks_url, "%s://%s", name[1], v);
    if (n < 0 || (size_t)n >= sizeof fc->socks_url) {
        cli_error("%s: proxy too long", what);
        return false;
    }
    fc->proxy = fc->socks_url;
    fc->proxy_set = true;
    return true;
}

/* The first of the variables (a NULL-ended list) set and not empty, or
 * NULL; *name says which. */
static const char *env_first(const char *const *names, const char **name)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && *v) {
            *name = *names;
            return v;
        }
    }
    return NULL;
}

/* The library's proxy settings: --proxy for both schemes, else curl's
 * variables (lowercase http_proxy only: a CGI program's HTTP_PROXY is a
 * request header, "httpoxy"). */
static int plan_proxies(struct fetch_cli *fc)
{
    struct sk_fetch_opts *o = &fc->o;
    const char *name = "--proxy";
    if (fc->proxy_set) {
        o->proxy_http = o->proxy_https = *fc->proxy ? fc->proxy : NULL;
        if (o->proxy_http && !check_proxy(name, fc->proxy))
            return EXIT_USAGE;
    } else {
        static const char *const http[] = {"http_proxy", "all_proxy", "ALL_PROXY", NULL};
        static const char *const https[] = {"https_proxy", "HTTPS_PROXY", "all_proxy",
                                            "ALL_PROXY", NULL};
        if ((o->proxy_http = env_first(http, &name)) && !check_proxy(name, o->proxy_http))
            return EXIT_USAGE;
        if ((o->proxy_https = env_first(https, &name)) && !check_proxy(name, o->proxy_https))
            return EXIT_USAGE;
    }
    static const char *const no[] = {"no_proxy", "NO_PROXY", NULL};
    o->noproxy = fc->noproxy ? fc->noproxy : env_first(no, &name);
    return EXIT_OK;
}

static int parse_opts(int argc, char **argv, struct fetch_cli *fc)
{
    struct sk_fetch_opts *o = &fc->o;
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"silent", no_argument, NULL, 's'},
        {"head", no_argument, NULL, 'I'},
        {"continue", no_argument, NULL, 'C'},
        {"header", required_argument, NULL, 'H'},
        {"insecure", no_argument, NULL, 'k'},
        {"max-time", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {"cacert", required_argument, NULL, OPT_CACERT},
        {"max-redirs", required_argument, NULL, OPT_MAXREDIRS},
        {"connect-timeout", required_argument, NULL, OPT_CONNTIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLETIMEOUT},
        {"retry", required_argument, NULL, OPT_RETRY},
        {"retry-delay", required_argument, NULL, OPT_RETRYDELAY},
        {"allow-downgrade", no_argument, NULL, OPT_DOWNGRADE},
        {"no-fail", no_argument, NULL, OPT_NOFAIL},
        {"sync", no_argument, NULL, OPT_SYNC},
        {"sha256", required_argument, NULL, OPT_SHA256},
        {"input-file", required_argument, NULL, 'i'},
        {"output-dir", required_argument, NULL, OPT_OUTDIR},
        {"proxy", required_argument, NULL, 'x'},
        {"noproxy", required_argument, NULL, OPT_NOPROXY},
        {"socks5", required_argument, NULL, OPT_SOCKS5},
        {"socks5-hostname", required_argument, NULL, OPT_SOCKS5H},
        {"socks4", required_argument, NULL, OPT_SOCKS4},
        {"socks4a", required_argument, NULL, OPT_SOCKS4A},
        {"compressed", no_argument, NULL, OPT_COMPRESSED},
        {"max-filesize", required_argument, NULL, OPT_MAXFILESIZE},
        {"no-reuse", no_argument, NULL, OPT_NOREUSE},
        {"http1.1", no_argument, NULL, OPT_HTTP11},
        {"http2", no_argument, NULL, OPT_HTTP2},
        {"http2-prior-knowledge", no_argument, NULL, OPT_HTTP2PK},
        {"limit-rate", required_argument, NULL, OPT_LIMITRATE},
        {"speed-limit", required_argument, NULL, 'Y'},
        {"speed-time", required_argument, NULL, 'y'},
        {"parallel", required_argument, NULL, 'j'},
        {"parallel-max", required_argument, NULL, 'j'},
        FETCH_CURL_LONGOPTS
        {NULL, 0, NULL, 0},
    };
    long long v;
    int c, rc;
    optind = 1;
    opterr = 0; /* cli_bad_option says it, in one line */
    static const char shortopts[] = ":o:sIC::H:km:hi:x:Zj:Y:y:" FETCH_CURL_SHORTOPTS;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        switch (c) {
        case 'o': fc->output = optarg; break;
        case 'i':
            if (fc->list) {
                cli_error("-i given twice");
                return EXIT_USAGE;
            }
            fc->list = optarg;
            break;
        case OPT_OUTDIR:
            if (!*optarg) {
                cli_error("--output-dir: empty folder name");
                return EXIT_USAGE;
            }
            fc->out_dir = optarg;
            break;
        case 's': fc->silent = true; break;
        case 'Z': break; /* curl's "parallel": the default here; -j N says how many */
        case 'j':
            if (!cli_parse_num("--parallel", optarg, 1, FETCH_PARALLEL_MAX, &v))
                return EXIT_USAGE;
            fc->parallel = (unsigned)v;
            break;
        case 'I': fc->head = true; break;
        case 'C':
            if ((rc = fetch_curl_continue(fc, optarg)) != EXIT_OK)
                return rc;
            break;
        case 'k': o->flags |= SK_FETCH_INSECURE; break;
        case OPT_CACERT: o->cacert = optarg; break;
        case OPT_DOWNGRADE: o->flags |= SK_FETCH_ALLOW_DOWNGRADE; break;
        case OPT_NOFAIL: o->flags |= SK_FETCH_NO_FAIL; break;
        case OPT_SYNC: o->flags |= SK_FETCH_SYNC; break;
        case OPT_SHA256:
            if (sk_fetch_parse_sha256(optarg, fc->sha256) < 0) {
                cli_error("--sha256 needs 64 hex digits: %s", optarg);
                return EXIT_USAGE;
            }
            o->sha256 = fc->sha256;
            break;
        case 'H':
            if (o->nheaders == FETCH_HEADERS_MAX) {
                cli_error("too many -H options (at most %d)", FETCH_HEADERS_MAX);
                return EXIT_USAGE;
            }
            if (!check_header(optarg))
                return EXIT_USAGE;
            fc->headers[o->nheaders++] = optarg;
            break;
        case 'm':
            if (!parse_seconds("--max-time", optarg, &o->max_time_ms))
                return EXIT_USAGE;
            break;
        case OPT_CONNTIMEOUT:
            if (!parse_seconds("--connect-timeout", optarg, &o->connect_timeout_ms))
                return EXIT_USAGE;
            break;
        case OPT_IDLETIMEOUT:
            if (!parse_seconds("--idle-timeout", optarg, &o->idle_timeout_ms))
                return EXIT_USAGE;
            break;
        case OPT_RETRYDELAY:
            if (!parse_seconds("--retry-delay", optarg, &o->retry_delay_ms))
                return EXIT_USAGE;
            break;
        case OPT_MAXREDIRS:
            if (!cli_parse_num("--max-redirs", optarg, 0, 1000, &v))
                return EXIT_USAGE;
            o->max_redirs = (long)v;
            break;
        case OPT_RETRY:
            if (!cli_parse_num("--retry", optarg, 0, 1000, &v))
                return EXIT_USAGE;
            o->retries = (long)v;
            break;
        case 'x':
            fc->proxy = optarg;
            fc->proxy_set = true;
            break;
        case OPT_SOCKS5:
        case OPT_SOCKS5H:
        case OPT_SOCKS4:
        case OPT_SOCKS4A:
            if (!socks_option(fc, c, optarg))
                return EXIT_USAGE;
            break;
        case OPT_NOPROXY: fc->noproxy = optarg; break;
        case OPT_COMPRESSED: o->flags |= SK_FETCH_COMPRESSED; break;
        case OPT_NOREUSE: o->flags |= SK_FETCH_NO_REUSE; break;
        case OPT_HTTP11: o->http_version = SK_FETCH_HTTP_1_1; break;
        case OPT_HTTP2: o->http_version = SK_FETCH_HTTP_2; break;
        case OPT_HTTP2PK: o->http_version = SK_FETCH_HTTP_2_PRIOR_KNOWLEDGE; break;
        case OPT_MAXFILESIZE:
            if (!parse_size("--max-filesize", optarg, &o->max_filesize))
                return EXIT_USAGE;
            break;
        case OPT_LIMITRATE:
            if (!parse_speed("--limit-rate", optarg, &o->max_recv_speed))
                return EXIT_USAGE;
            break;
        case 'Y':
            if (!parse_speed("--speed-limit", optarg, &o->low_speed_limit))
                return EXIT_USAGE;
            break;
        case 'y':
            if (!parse_seconds("--speed-time", optarg, &o->low_speed_time_ms))
                return EXIT_USAGE;
            if (o->low_speed_time_ms < 1000) {
                cli_error("--speed-time needs at least 1 s: %s", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            fputs(_(fetch_help), stdout);
            return fetch_curl_help();
        default:
            if ((rc = fetch_curl_opt(fc, c, optarg)) == FETCH_OPT_UNKNOWN)
                return cli_bad_option("fetch", c, argv);
            if (rc != EXIT_OK)
                return rc;
        }
    }
    for (int i = optind; i < argc; i++) {
        if ((rc = fetch_curl_positional(fc, argv[i])) == 1)
            continue;
        if (rc != 0)
            return rc;
        if (!add_url(fc, argv[i]))
            return EXIT_FAIL;
    }
    if (o->low_speed_time_ms && !o->low_speed_limit)
        o->low_speed_limit = 1; /* -y alone: curl's default -Y */
    fc->multi = fc->nurls > 1 || fc->list;
    if (fc->multi && fc->output) {
        cli_error("-o names one file: it cannot take several URLs (use --output-dir)");
        return EXIT_USAGE;
    }
    if (fc->remote_name && fc->output) {
        cli_error("-O saves under the URL's name and -o under FILE: give one of them");
        return EXIT_USAGE;
    }
    if (fc->list && (rc = read_list(fc, fc->list)) != EXIT_OK)
        return rc;
    if (fc->nurls == 0) {
        cli_error("fetch: missing URL (try 'sockit fetch --help')");
        return EXIT_USAGE;
    }
    if (fc->output && fc->out_dir) {
        cli_error("--output-dir is for names taken from the URL; use -o DIR/FILE");
        return EXIT_USAGE;
    }
    if (fc->resume && (fc->head || (fc->output && strcmp(fc->output, "-") == 0))) {
        cli_error("-C needs a file to save to (not -I or -o -)");
        return EXIT_USAGE;
    }
    if (fc->resume && (fc->cd_name || fc->trust_names) && !fc->output) {
        cli_error("-J and --trust-server-names cannot take -C: the partial file's name must "
                  "be known before the request");
        return EXIT_USAGE;
    }
    if (fc->resume && (o->flags & SK_FETCH_COMPRESSED)) {
        cli_error("-C cannot resume a --compressed download (the saved file is the decoded "
                  "body, not the bytes the server sends)");
        return EXIT_USAGE;
    }
    if (o->cacert && access(o->cacert, R_OK) < 0) { /* fail before any network work */
        cli_error("cannot load CA file %s: %s", o->cacert, strerror(errno));
        return EXIT_TLS;
    }
    if (fc->output && !*fc->output) {
        cli_error("-o: empty file name");
        return EXIT_USAGE;
    }
    rc = plan_proxies(fc);
    return rc == EXIT_OK ? fetch_curl_load(fc) : rc;
}

/* The file a chain of symbolic links at path ends on, existing or not (a
 * dangling link names the file to create). A link of /proc that names no
 * path (/dev/stdout on a pipe: "pipe:[N]") but that the kernel resolves is
 * the last hop: *magic is set and out names that link. 0, or an errno value. */
static int follow_links(const char *path, char *out, bool *magic)
{
    *magic = false;
    if (snprintf(out, PATH_MAX, "%s", path) >= PATH_MAX)
        return ENAMETOOLONG;
    for (int hops = 0; hops < 40; hops++) { /* the kernel's own limit */
        struct stat st;
        if (lstat(out, &st) < 0 || !S_ISLNK(st.st_mode))
            return 0;
        char target[PATH_MAX];
        ssize_t n = readlink(out, target, sizeof target - 1);
        if (n < 0)
            return errno;
        target[n] = '\0';
        const char *slash = strrchr(out, '/');
        int dir = target[0] == '/' || !slash ? 0 : (int)(slash - out) + 1;
        char next[PATH_MAX];
        if (snprintf(next, sizeof next, "%.*s%s", dir, out, target) >= (int)sizeof next)
            return ENAMETOOLONG;
        struct stat real;
        if (target[0] != '/' && lstat(next, &st) < 0 && /* the kernel resolves it otherwise */
            stat(out, &real) == 0 && !S_ISREG(real.st_mode) && !S_ISDIR(real.st_mode)) {
            *magic = true;
            return 0;
        }
        memcpy(out, next, sizeof next);
    }
    return ELOOP;
}

/* Names the output and decides where headers go. A symbolic link given to
 * -o is followed, dangling or not: the file it points to is replaced or
 * created (atomically, beside itself) and the link stays a link. */
static int plan_output(struct fetch_cli *fc, const struct sk_url *u, char *name)
{
    static char resolved[PATH_MAX];
    fc->hdr_fd = fc->silent ? -1 : STDOUT_FILENO;
    if (fc->head)
        return EXIT_OK;
    if (fc->output && strcmp(fc->output, "-") == 0) {
        fc->hdr_fd = fc->silent ? -1 : STDERR_FILENO;
        return EXIT_OK;
    }
    struct stat st;
    if (fc->output) {
        int e = follow_links(fc->output, resolved, &fc->out_magic);
        if (e) {
            cli_error("-o %s: %s", fc->output, strerror(e));
            return EXIT_WRITE;
        }
        fc->out_path = resolved;
        bool exists = stat(fc->out_path, &st) == 0;
        if (exists && S_ISDIR(st.st_mode)) {
            cli_error("%s is a folder; -o needs a file name", fc->output);
            return EXIT_USAGE;
        }
        fc->out_special = exists && !S_ISREG(st.st_mode);
        if (fc->out_special && fc->resume) {
            cli_error("-C needs a regular file, not %s", fc->output);
            return EXIT_USAGE;
        }
    } else {
        char base[256];
        if (sk_url_basename(u, base, sizeof base) < 0 || strcmp(base, ".") == 0 ||
            strcmp(base, "..") == 0) {
            cli_error("cannot name the output after the URL; use -o FILE");
            return EXIT_USAGE;
        }
        if (fetch_name_join(fc, base, name) < 0) {
            cli_error("--output-dir %s: %s", fc->out_dir, strerror(ENAMETOOLONG));
            return EXIT_USAGE;
        }
        fc->out_path = name;
        fc->o.flags |= SK_FETCH_NOREPLACE;
        if (fc->cd_name || fc->trust_names) { /* named, and checked, at the final head */
            memcpy(fc->url_base, base, sizeof base);
            fc->name_buf = name;
        } else if (lstat(name, &st) == 0) {
            cli_error("%s exists; not replacing it (use -o %s to replace it)", name, name);
            return EXIT_WRITE;
        }
    }
    return EXIT_OK;
}

/* The library's verdict as the documented exit status. */
static int exit_status(int rc)
{
    if (rc == SK_ECLOSED)
        return EXIT_TRUNCATED; /* a body cut by the server's close */
    if (rc == SK_ETOOBIG)
        return EXIT_TOOBIG; /* max_filesize */
    if (rc == SK_ERR(ECANCELED))
        return fetch_cancel.flag == SIGPIPE ? EXIT_WRITE : EXIT_FAIL;
    return cli_exit_status(rc);
}

/* The option that sets the limit or the rule a failure ran into. */
static const char *cause_option(enum sk_fetch_cause c)
{
    switch (c) {
    case SK_FETCH_CAUSE_CONNECT_TIMEOUT: return " (--connect-timeout)";
    case SK_FETCH_CAUSE_IDLE_TIMEOUT: return " (--idle-timeout)";
    case SK_FETCH_CAUSE_MAX_TIME: return " (--max-time)";
    case SK_FETCH_CAUSE_DOWNGRADE: return " (--allow-downgrade)";
    case SK_FETCH_CAUSE_MAX_FILESIZE: return " (--max-filesize)";
    case SK_FETCH_CAUSE_SPEED_LIMIT: return " (--speed-limit)";
    default: return "";
    }
}

/* The library's options for what the command line asked. */
static void configure(struct fetch_cli *fc)
{
    struct sk_fetch_opts *o = &fc->o;
    o->headers = fc->headers;
    o->flags |= (fc->head ? SK_FETCH_HEAD : 0) | (fc->resume ? SK_FETCH_RESUME : 0);
    o->cancel = &fetch_cancel;
    o->on_event = fetch_on_event;
    o->event_arg = fc;
    if (fc->out_path && !fc->out_special) {
        o->output = fc->out_path;
    } else if (!fc->head) {
        o->write = fetch_write_out;
        o->write_arg = fc;
    }
}

/* One URL of the run: its output planned, fetched, its verdict said.
 * Returns its exit status; fc->f stays for the notices that follow, and
 * for the next URL (sk_fetch_set_opts: fc->o is this URL's). */
/* Its output planned, the object ready for sk_fetch_run: EXIT_OK or the
 * URL's exit status. name (PATH_MAX bytes) keeps the output's name. */
static int fetch_prepare(struct fetch_cli *fc, const char *url_text, bool stdout_closed,
                         char *name)
{
    struct sk_url url;
    fc->url = url_text;
    fc->out_path = NULL;
    fc->name_buf = NULL;
    fc->out_special = fc->out_magic = false;
    fc->out_fd = -1;
    fc->pg = (struct fetch_progress){0};
    fc->o.flags = fc->flags;
    fc->o.output = NULL;
    fc->o.write = NULL;
    fc->o.write_arg = NULL;
    int rc = fetch_auth_url(fc, url_text);
    if (rc != EXIT_OK)
        return rc;
    const char *shown = fc->shown; /* without credentials */
    rc = sk_url_parse(shown, strlen(shown), &url);
    if (rc == SK_EUNSUPPORTED) {
        cli_error("unsupported URL scheme (only http and https): %s", shown);
        return EXIT_USAGE;
    }
    if (rc < 0) {
        cli_error("invalid URL (%s): %s", cli_strerror(rc), shown);
        return EXIT_USAGE;
    }
    fetch_auth_host(fc, url.host);
    if ((rc = plan_output(fc, &url, name)) != EXIT_OK)
        return rc;
    fetch_report_heads(fc);
    if (stdout_closed && (fc->hdr_fd == STDOUT_FILENO || (!fc->out_path && !fc->head))) {
        cli_error("standard output is closed (use -s, or -o FILE)");
        return EXIT_WRITE;
    }
    configure(fc);
    /* One object for the whole run: its kept connection serves the next URL. */
    if ((rc = fc->run_f ? sk_fetch_set_opts(fc->run_f, &fc->o)
                        : sk_fetch_new(&fc->o, &fc->run_f)) < 0) {
        if (fc->multi) /* which of the URLs failed, as for any other failure */
            cli_error("%s: %s", shown, cli_strerror(rc));
        else
            cli_error("%s", cli_strerror(rc));
        return EXIT_FAIL;
    }
    fc->f = fc->run_f;
    return EXIT_OK;
}

/* The run of a prepared URL is over (lib_rc: sk_fetch_run's): its verdict
 * said; returns its exit status. */
static int fetch_finish(struct fetch_cli *fc, int lib_rc)
{
    const char *shown = fc->shown;
    int rc = exit_status(lib_rc);
    if (fc->out_fd > STDERR_FILENO && close(fc->out_fd) < 0 && rc == EXIT_OK) {
        sk_fetch_set_error(fc->f, SK_EWRITE, "cannot write %s: %s", fc->out_path, strerror(errno));
        rc = EXIT_WRITE;
    }
    const char *why = *sk_fetch_error(fc->f) ? sk_fetch_error(fc->f) : "fetch failed";
    if (rc == EXIT_OK && fc->hdr_fd == STDOUT_FILENO && !cli_stdout_ok())
        rc = EXIT_WRITE;
    else if (rc != EXIT_OK && fc->multi)
        fetch_notice(fc, "%s: %s%s", shown, why, cause_option(sk_fetch_cause(fc->f)));
    else if (rc != EXIT_OK)
        fetch_notice(fc, "%s%s", why, cause_option(sk_fetch_cause(fc->f)));
    else if (fc->multi && !fc->silent)
        fetch_notice(fc, _("%s: saved %s"), shown, fc->out_path ? fc->out_path : "-");
    return rc;
}

static int fetch_one(struct fetch_cli *fc, const char *url_text, bool stdout_closed)
{
    static char name[PATH_MAX];
    int rc = fetch_prepare(fc, url_text, stdout_closed, name);
    return rc != EXIT_OK ? rc : fetch_finish(fc, sk_fetch_run(fc->f, url_text));
}

/* Several URLs: fc->parallel slots at once, each slot a copy of the
 * command's state with its own transfer object. What each URL's end says
 * is held (struct fetch_held) and said in URL order. */
struct par_slot {
    struct fetch_cli fc;
    char name[PATH_MAX];
    size_t index; /* the URL it runs */
};

struct par_run {
    struct fetch_cli *fc;
    struct par_slot *slots;
    int *status;      /* each URL's exit status, in URL order */
    struct fetch_held *held; /* what each says at its end, in URL order */
    size_t next, done, ok;
    size_t said;      /* the URLs before it have said what they held */
    bool stdout_closed;
    size_t heads_room;             /* FETCH_HELD_HEADS_MAX less the heads held */
    bool board_on;                 /* stderr is a terminal, not -s */
    struct fetch_board board;
    struct fetch_board_row *rows;  /* one per slot */
    unsigned n;
};

static void par_tick(void *arg)
{
    struct par_run *r = arg;
    fetch_board_draw(&r->board, r->rows, r->n, r->done, r->fc->nurls, false);
}

/* A line goes to the terminal: the board off the screen first, back after. */
static void par_board_hide(void *arg, bool hide)
{
    struct par_run *r = arg;
    if (hide)
        fetch_board_clear(&r->board);
    else if (r->done < r->fc->nurls && !fetch_cancel.flag)
        fetch_board_draw(&r->board, r->rows, r->n, r->done, r->fc->nurls, true);
}

/* cli_error's lines for a URL whose end is held. */
static void par_hold_error(void *arg, const char *line, size_t n)
{
    if (!fetch_held_add(arg, FETCH_HELD_ERR, line, n))
        (void)fwrite(line, 1, n, stderr); /* out of memory: now rather than never */
}

/* Holds (or stops holding: h NULL) what the URL of slot s says. */
static void par_hold(struct par_slot *s, struct fetch_held *h)
{
    s->fc.held = h;
    cli_error_to(h ? par_hold_error : NULL, h);
}

/* Says, written by fc, what the URLs whose turn has come held: each once
 * every URL before it has (all: the run is over, any still held). Each
 * URL's status is final then (-w's text could not be written: EXIT_WRITE)
 * and counted. */
static void par_say(struct par_run *r, struct fetch_cli *fc, bool all)
{
    for (size_t i = r->said; i < r->next && (all || r->held[i].ready); i++) {
        struct fetch_held *h = &r->held[i];
        if (!h->ready)
            continue;
        if (h->err_len)
            fetch_stderr(fc, h->err, h->err_len);
        if (h->dump_len && fetch_write_dump(fc, h->dump, h->dump_len) < 0) {
            cli_error("%s", fc->f ? sk_fetch_error(fc->f) : strerror(EIO));
            if (r->status[i] == EXIT_OK)
                r->status[i] = EXIT_WRITE;
        }
        if (h->out_len && fetch_write_stdout(fc, h->out, h->out_len) < 0 &&
            r->status[i] == EXIT_OK)
            r->status[i] = EXIT_WRITE;
        r->ok += r->status[i] == EXIT_OK;
        r->heads_room += h->heads_len;
        free(h->err);
        free(h->out);
        free(h->dump);
        *h = (struct fetch_held){.ready = true};
        r->said = i + 1;
    }
}

/* URL i is over with exit status rc: what it held said in its turn. */
static void par_over(struct par_run *r, struct par_slot *s, size_t i, int rc)
{
    r->status[i] = rc;
    r->held[i].ready = true;
    r->done++;
    if (r->board_on)
        fetch_board_clear(&r->board); /* the result lines go above it */
    par_say(r, &s->fc, false);
    if (r->board_on && r->done < r->fc->nurls && !fetch_cancel.flag)
        fetch_board_draw(&r->board, r->rows, r->n, r->done, r->fc->nurls, true);
}

static int par_next(void *arg, unsigned slot, struct sk_fetch **f, const char **url)
{
    struct par_run *r = arg;
    struct par_slot *s = &r->slots[slot];
    while (r->next < r->fc->nurls && !fetch_cancel.flag) {
        size_t i = r->next++;
        s->index = i;
        s->fc.f = NULL;
        fetch_report_begin(&s->fc, i);
        par_hold(s, &r->held[i]); /* what planning the output says, too */
        int rc = fetch_prepare(&s->fc, r->fc->urls[i], r->stdout_closed, s->name);
        if (rc == EXIT_OK) {
            par_hold(s, NULL);
            s->fc.heads_held = &r->held[i]; /* in URL order too */
            r->rows[slot].name = s->fc.out_path ? s->fc.out_path : s->fc.shown;
            *f = s->fc.f;
            *url = r->fc->urls[i];
            return 1;
        }
        rc = fetch_report_end(&s->fc, rc);
        par_hold(s, NULL);
        par_over(r, s, i, rc);
    }
    return 0;
}

static void par_done(void *arg, unsigned slot, struct sk_fetch *f, int lib_rc)
{
    (void)f;
    struct par_run *r = arg;
    struct par_slot *s = &r->slots[slot];
    r->rows[slot].name = NULL;
    s->fc.heads_held = NULL;
    par_hold(s, &r->held[s->index]);
    int rc = fetch_report_end(&s->fc, fetch_finish(&s->fc, lib_rc));
    par_hold(s, NULL);
    par_over(r, s, s->index, rc);
}

/* Runs every URL; the first failure's status in URL order, *ok and *done
 * counted. */
static int fetch_parallel(struct fetch_cli *fc, bool stdout_closed, size_t *ok, size_t *done)
{
    unsigned n = fc->parallel < fc->nurls ? fc->parallel : (unsigned)fc->nurls;
    struct par_run r = {.fc = fc, .stdout_closed = stdout_closed, .n = n,
                        .heads_room = FETCH_HELD_HEADS_MAX};
    r.board_on = !fc->silent && isatty(STDERR_FILENO);
    r.slots = calloc(n, sizeof *r.slots);
    r.status = calloc(fc->nurls, sizeof *r.status);
    r.held = calloc(fc->nurls, sizeof *r.held);
    r.rows = calloc(n, sizeof *r.rows);
    if (!r.slots || !r.status || !r.held || !r.rows) {
        free(r.slots);
        free(r.status);
        free(r.held);
        free(r.rows);
        cli_error("%s", cli_strerror(-ENOMEM));
        return EXIT_FAIL;
    }
    for (unsigned i = 0; i < n; i++) {
        r.slots[i].fc = *fc;
        r.slots[i].fc.run_f = NULL;
        r.slots[i].fc.tick = r.board_on ? par_tick : NULL;
        r.slots[i].fc.board_hide = r.board_on ? par_board_hide : NULL;
        r.slots[i].fc.tick_arg = &r;
        r.slots[i].fc.heads_room = &r.heads_room;
        r.slots[i].fc.last_head = NULL; /* each slot keeps its own */
        r.slots[i].fc.last_head_cap = 0;
        r.rows[i].pg = &r.slots[i].fc.pg;
    }
    int rc = sk_fetch_run_parallel(n, &fetch_cancel, par_next, par_done, &r);
    if (r.board_on)
        fetch_board_clear(&r.board);
    par_say(&r, &r.slots[0].fc, true); /* none should be left; if so, not lost */
    if (rc < 0)
        cli_error("%s", cli_strerror(rc));
    int first = rc < 0 ? EXIT_FAIL : EXIT_OK;
    for (size_t i = 0; i < r.next && first == EXIT_OK; i++)
        first = r.status[i];
    *ok = r.ok;
    *done = r.done;
    fc->f = NULL;
    for (unsigned i = 0; i < n; i++) { /* one object stays for the last line */
        struct sk_fetch *sf = r.slots[i].fc.run_f;
        if (sf && !fc->run_f)
            fc->f = fc->run_f = sf; /* freed by the caller */
        else
            sk_fetch_free(sf);
        fetch_report_drop_head(&r.slots[i].fc);
    }
    for (size_t i = 0; i < r.next; i++) { /* said by now; if not, not leaked */
        free(r.held[i].err);
        free(r.held[i].out);
        free(r.held[i].dump);
    }
    free(r.slots);
    free(r.status);
    free(r.held);
    free(r.rows);
    return first;
}

int cmd_fetch(int argc, char **argv)
{
    static struct fetch_cli fc; /* 1 per process; -H pointers and names outlive the run */
    sk_fetch_opts_init(&fc.o);
    fc.out_fd = -1;
    int rc = parse_opts(argc, argv, &fc);
    if (rc == EXIT_OK) {
        bool stdout_closed = cli_reserve_stdio() & (1u << STDOUT_FILENO);
        fc.flags = fc.o.flags;
        catch_signals();
        int first = EXIT_OK;
        size_t ok = 0, done = 0;
        if (!fc.parallel) /* several URLs: FETCH_PARALLEL_DEFAULT at once */
            fc.parallel = fc.nurls > 1 ? FETCH_PARALLEL_DEFAULT : 1;
        bool par = fc.parallel > 1 && fc.nurls > 1; /* one URL: the direct path */
        if (par)
            first = fetch_parallel(&fc, stdout_closed, &ok, &done);
        for (; !par && done < fc.nurls && !fetch_cancel.flag; done++) {
            fc.f = NULL; /* this URL's results only */
            fetch_report_begin(&fc, done);
            rc = fetch_report_end(&fc, fetch_one(&fc, fc.urls[done], stdout_closed));
            ok += rc == EXIT_OK;
            if (rc != EXIT_OK && first == EXIT_OK)
                first = rc;
        }
        rc = first;
        const char *rest = done < fc.nurls ? _(", the rest not tried") : "";
        if (!fc.multi || (fc.silent && ok == done && done == fc.nurls))
            ; /* -s: a count only when something failed */
        else if (fc.f)
            fetch_notice(&fc, _("%zu succeeded, %zu failed%s"), ok, done - ok, rest);
        else /* no transfer began (the run could not start) */
            cli_error("%zu succeeded, %zu failed%s", ok, done - ok, rest);
        sk_fetch_free(fc.run_f); /* and its kept connection */
        fc.f = fc.run_f = NULL;
        if (fetch_cancel.flag && rc != EXIT_OK)
            rc = fetch_cancel.flag == SIGPIPE ? EXIT_WRITE : EXIT_FAIL;
    }
    fetch_curl_free(&fc);
    for (size_t i = 0; i < fc.nurls; i++)
        free(fc.urls[i]);
    free(fc.urls);
    fc.urls = NULL;
    fc.nurls = fc.urls_cap = 0;
    return rc == CLI_DONE ? EXIT_OK : rc;
}
