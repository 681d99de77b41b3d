/* sockit fetch: download a URL over HTTP/1.1 or HTTPS, safely.
 *
 * This file is the command line: options, output naming, signals and the
 * retry loop. One attempt (redirects included) lives in fetch_run.c, the
 * wire in fetch_io.c, resume in fetch_resume.c. */
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

volatile sig_atomic_t fetch_cancel;
volatile sig_atomic_t fetch_conn_fd = -1;

static const char fetch_help[] =
    "usage: sockit fetch URL [-o FILE] [-s] [-I] [-C] [-H 'Name: value']...\n"
    "                    [--cacert FILE] [--insecure] [--max-redirs N]\n"
    "                    [--connect-timeout SEC] [--max-time SEC] [--retry N]\n"
    "\n"
    "Download URL (http:// or https://) with HTTP/1.1. The status line and headers\n"
    "of each response are printed to standard output; the body goes to FILE.\n"
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
    "  -h, --help              this help\n"
    "\n"
    "SEC may have a fraction (0.5). A progress bar appears on standard error when\n"
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
    "   9  timeout: connect, a stalled server, or --max-time\n"
    "  10  output error: FILE exists (no -o), cannot be created or written;\n"
    "      standard output closed (SIGPIPE)\n"
    "  11  the body did not match --sha256 (nothing saved)\n";

static void on_signal(int sig)
{
    fetch_cancel = sig;
    int fd = fetch_conn_fd;
    if (fd >= 0) {
        int saved = errno;
        /* async-signal-safe; a stale number names a file (no effect) or
         * another socket of this fetch (cancelled anyway) */
        shutdown(fd, SHUT_RDWR);
        errno = saved;
    }
}

/* Every signal a user sends to stop a download (Ctrl-C, kill, a closed
 * terminal, the quit key, a closed standard output, a CPU time limit:
 * SIGKILL follows at the hard limit; the user signals, whose default would
 * kill us with the temporary file left) sets fetch_cancel, which
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
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    if (!colon || colon == h) {
        cli_error("header must be 'Name: value': %s", h);
        return false;
    }
    for (const char *p = h; p < colon; p++)
        if (!((*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z') ||
              strchr(tchar, *p))) {
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
       OPT_RETRYDELAY, OPT_DOWNGRADE, OPT_NOFAIL, OPT_SYNC, OPT_SHA256 };

static int parse_opts(int argc, char **argv, struct fetch_opts *o)
{
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
        {NULL, 0, NULL, 0},
    };
    long long v;
    int c;
    optind = 1;
    opterr = 0; /* cli_bad_option says it, in one line */
    while ((c = getopt_long(argc, argv, ":o:sICH:km:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': o->output = optarg; break;
        case 's': o->silent = true; break;
        case 'I': o->head = true; break;
        case 'C': o->resume = true; break;
        case 'k': o->insecure = true; break;
        case OPT_CACERT: o->cacert = optarg; break;
        case OPT_DOWNGRADE: o->allow_downgrade = true; break;
        case OPT_NOFAIL: o->no_fail = true; break;
        case OPT_SYNC: o->sync = true; break;
        case OPT_SHA256:
            if (fetch_parse_sha256(optarg, o->sha256) < 0) {
                cli_error("--sha256 needs 64 hex digits: %s", optarg);
                return FX_USAGE;
            }
            o->has_sha256 = true;
            break;
        case 'H':
            if (o->nheaders == FETCH_HEADERS_MAX) {
                cli_error("too many -H options (at most %d)", FETCH_HEADERS_MAX);
                return FX_USAGE;
            }
            if (!check_header(optarg))
                return FX_USAGE;
            o->headers[o->nheaders++] = optarg;
            break;
        case 'm':
            if (!parse_seconds("--max-time", optarg, &o->max_time_ms))
                return FX_USAGE;
            break;
        case OPT_CONNTIMEOUT:
            if (!parse_seconds("--connect-timeout", optarg, &o->connect_timeout_ms))
                return FX_USAGE;
            break;
        case OPT_IDLETIMEOUT:
            if (!parse_seconds("--idle-timeout", optarg, &o->idle_timeout_ms))
                return FX_USAGE;
            break;
        case OPT_RETRYDELAY:
            if (!parse_seconds("--retry-delay", optarg, &o->retry_delay_ms))
                return FX_USAGE;
            break;
        case OPT_MAXREDIRS:
            if (!cli_parse_num("--max-redirs", optarg, 0, 1000, &v))
                return FX_USAGE;
            o->max_redirs = (long)v;
            break;
        case OPT_RETRY:
            if (!cli_parse_num("--retry", optarg, 0, 1000, &v))
                return FX_USAGE;
            o->retries = (long)v;
            break;
        case 'h':
            fputs(fetch_help, stdout);
            return cli_stdout_ok() ? -1 : FX_FAIL;
        default: return cli_bad_option("fetch", c, argv);
        }
    }
    if (optind != argc - 1) {
        cli_error(optind == argc ? "fetch: missing URL (try 'sockit fetch --help')"
                                 : "fetch: exactly one URL expected (try 'sockit fetch --help')");
        return FX_USAGE;
    }
    o->url = argv[optind];
    if (o->resume && (o->head || (o->output && strcmp(o->output, "-") == 0))) {
        cli_error("-C needs a file to save to (not -I or -o -)");
        return FX_USAGE;
    }
    if (o->cacert && access(o->cacert, R_OK) < 0) { /* fail before any network work */
        cli_error("cannot load CA file %s: %s", o->cacert, strerror(errno));
        return FX_TLS;
    }
    if (o->output && !*o->output) {
        cli_error("-o: empty file name");
        return FX_USAGE;
    }
    return FX_OK;
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
static int plan_output(struct fetch_state *fs, const struct sk_url *u, char *name, size_t len)
{
    static char resolved[PATH_MAX];
    const struct fetch_opts *o = fs->o;
    fs->hdr_out = o->silent ? NULL : stdout;
    if (o->head)
        return FX_OK;
    if (o->output && strcmp(o->output, "-") == 0) {
        fs->hdr_out = o->silent ? NULL : stderr;
        return FX_OK;
    }
    struct stat st;
    if (o->output) {
        int e = follow_links(o->output, resolved, &fs->out_magic);
        if (e) {
            cli_error("-o %s: %s", o->output, strerror(e));
            return FX_WRITE;
        }
        fs->out_path = resolved;
        bool exists = stat(fs->out_path, &st) == 0;
        if (exists && S_ISDIR(st.st_mode)) {
            cli_error("%s is a folder; -o needs a file name", o->output);
            return FX_USAGE;
        }
        fs->out_special = exists && !S_ISREG(st.st_mode);
        if (fs->out_special && o->resume) {
            cli_error("-C needs a regular file, not %s", o->output);
            return FX_USAGE;
        }
    } else {
        if (sk_url_basename(u, name, len) < 0 || strcmp(name, ".") == 0 ||
            strcmp(name, "..") == 0) {
            cli_error("cannot name the output after the URL; use -o FILE");
            return FX_USAGE;
        }
        fs->out_path = name;
        fs->out_noreplace = true;
        if (lstat(name, &st) == 0) {
            cli_error("%s exists; not replacing it (use -o %s to replace it)", name, name);
            return FX_WRITE;
        }
    }
    if (o->resume) {
        struct fetch_resume *rs = &fs->rs;
        rs->active = true;
        if (snprintf(rs->part, sizeof rs->part, "%s.part", fs->out_path) >= (int)sizeof rs->part ||
            snprintf(rs->meta, sizeof rs->meta, "%s.part.meta", fs->out_path) >=
                (int)sizeof rs->meta) {
            cli_error("output name too long");
            return FX_USAGE;
        }
        const char *slash = strrchr(rs->meta, '/');
        if (strlen(slash ? slash + 1 : rs->meta) > NAME_MAX) {
            cli_error("-C: the file name must leave room for '.part.meta' (at most %d bytes)",
                      NAME_MAX - 10);
            return FX_USAGE;
        }
    }
    return FX_OK;
}

static bool retryable(const struct fetch_state *fs, int rc)
{
    if (fs->expired || fetch_cancel)
        return false;
    if (rc == FX_CONNECT || rc == FX_TIMEOUT)
        return true;
    if (rc == FX_TRUNCATED && fs->rs.active)
        return true; /* with -C a retry continues where the body stopped */
    int s = fs->last_status;
    return rc == FX_HTTP && (s == 408 || s == 429 || (s >= 500 && s <= 599));
}

/* Sleeps ms, or less if interrupted; false when interrupted. */
static bool nap(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    if (fetch_cancel)
        return false;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        if (fetch_cancel)
            return false;
    return true;
}

static int run_with_retries(struct fetch_state *fs, const struct sk_url *url)
{
    const struct fetch_opts *o = fs->o;
    long backoff = o->retry_delay_ms;
    bool restarted = false;
    for (long attempt = 0;; attempt++) {
        int rc = fetch_attempt(fs, url);
        if (rc == FX_OK)
            return rc;
        if (fs->restart && !restarted) {
            restarted = true; /* the part was not continuable: once more from zero */
            attempt--;
            continue;
        }
        if (attempt >= o->retries || !retryable(fs, rc))
            return rc;
        long wait = fs->retry_after_ms >= 0 ? fs->retry_after_ms : backoff;
        if (fs->deadline_ms && sk_now_ms() + (uint64_t)wait >= fs->deadline_ms)
            return rc; /* the wait alone would pass --max-time */
        if (!o->silent)
            fetch_notice(fs, "%s; retrying in %.1f s (%ld of %ld)", fs->msg, wait / 1000.0,
                         attempt + 1, o->retries);
        if (!nap(wait))
            return fetch_interrupted(fs, "waiting to retry");
        backoff = backoff * 2 > 60000 ? 60000 : backoff * 2;
    }
}

int cmd_fetch(int argc, char **argv)
{
    struct fetch_opts o = {.max_redirs = 10, .retry_delay_ms = 1000,
                           .connect_timeout_ms = 30000, .idle_timeout_ms = 60000};
    int rc = parse_opts(argc, argv, &o);
    if (rc != FX_OK)
        return rc < 0 ? FX_OK : rc;
    if (!o.url) /* parse_opts names a missing URL; this states it for the analyzer */
        return FX_USAGE;
    bool stdout_closed = cli_reserve_stdio() & (1u << STDOUT_FILENO);
    static struct sk_url url;
    rc = sk_url_parse(o.url, strlen(o.url), &url);
    if (rc == SK_EUNSUPPORTED) {
        cli_error("unsupported URL scheme (only http and https): %s", o.url);
        return FX_USAGE;
    }
    if (rc < 0) {
        cli_error("invalid URL (%s): %s", sk_strerror(rc), o.url);
        return FX_USAGE;
    }
    struct fetch_state fs = {.o = &o}; /* on the stack: it points at o and name */
    sk_url_format(&url, fs.url_text, sizeof fs.url_text);
    char name[256];
    if ((rc = plan_output(&fs, &url, name, sizeof name)) != FX_OK)
        return rc;
    if (stdout_closed && (fs.hdr_out == stdout || (!fs.out_path && !o.head))) {
        cli_error("standard output is closed (use -s, or -o FILE)");
        return FX_WRITE;
    }
    if (!(fs.buf = malloc(FETCH_BUF_SIZE))) {
        cli_error("out of memory");
        return FX_FAIL;
    }
    catch_signals();
    fs.deadline_ms = o.max_time_ms ? sk_now_ms() + (uint64_t)o.max_time_ms : 0;
    rc = run_with_retries(&fs, &url);
    if (rc == FX_OK && fs.hdr_out == stdout && !cli_stdout_ok())
        rc = FX_WRITE;
    else if (rc != FX_OK)
        fetch_notice(&fs, "%s", fs.msg[0] ? fs.msg : "fetch failed");
    sk_tls_ctx_free(fs.tls);
    free(fs.buf);
    if (fetch_cancel && rc != FX_OK)
        return fetch_cancel == SIGPIPE ? FX_WRITE : FX_FAIL;
    return rc;
}
