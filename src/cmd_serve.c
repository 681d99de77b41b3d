/* sockit serve: the greeting server. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "greet.h"
#include "greeting.h"
#include "i18n.h"
#include "serve_log.h"
#include "serve_sd.h"
#include "serve_metrics.h"
#include "sockit.h"

static const char serve_help[] = N_(
    "usage: sockit serve [--listen HOST:PORT]... [--udp] [--framing chunk|line]\n"
    "                    [--delay MS] [--max-conns N] [--idle-timeout DURATION]\n"
    "                    [--workers N] [--reuseport] [--backlog N] [--max-line BYTES]\n"
    "                    [--max-memory BYTES] [--proxy-protocol] [--quiet]\n"
    "                    [--log-format text|json]\n"
    "                    [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]\n"
    "                    [--handshake-timeout DURATION]] [--metrics HOST:PORT]\n"
    "\n"
    "Run the greeting server: each client gets \"Welcome!\", each message M is\n"
    "answered \"Hello, M!\", the message \"exit\" (or end of stream) ends the session.\n"
    "\n"
    "Options:\n"
    "  -l, --listen HOST:PORT  address to serve (repeatable, each address once);\n"
    "                          default 127.0.0.1:8888; IPv6 as [::1]:8888;\n"
    "                          port 0 picks a free port (each time given)\n"
    "  -u, --udp               also answer UDP datagrams on the same addresses\n"
    "  -f, --framing MODE      chunk (default: one read is one message) or\n"
    "                          line (messages end with \\n, replies too)\n"
    "  -d, --delay MS          delay each reply by MS milliseconds (default 0; also\n"
    "                          with a unit: 1.5s); other clients are never held up\n"
    "  -m, --max-conns N       refuse sessions over N with one error line (default:\n"
    "                          no limit but the open-file limit)\n"
    "  -t, --idle-timeout DURATION  close sessions idle that long (default: never;\n"
    "                          NUMBER[ms|s|m|h], plain: seconds; whole seconds,\n"
    "                          rounded up)\n"
    "  -w, --workers N         event-loop threads (default: online CPUs)\n"
    "      --reuseport         one SO_REUSEPORT socket per worker, the kernel\n"
    "                          spreading connections; default: one socket that\n"
    "                          all workers watch, the next idle worker accepting\n"
    "  -b, --backlog N         listen backlog (default: the system maximum)\n"
    "      --max-line BYTES    longest message in line framing (default 65536);\n"
    "                          longer: an error line, then the session closes\n"
    "      --max-memory BYTES  memory all sessions' buffers may hold (default\n"
    "                          268435456, 0: no bound); over it the heaviest\n"
    "                          sessions are closed (reason=memory)\n"
    "      --proxy-protocol    every TCP connection begins with a PROXY protocol\n"
    "                          header (v1 or v2, as HAProxy sends it) naming the\n"
    "                          client; without a valid one it is closed, no\n"
    "                          greeting (\"proxy-error PEER reason=R\"); the\n"
    "                          header's deadline: --idle-timeout, or 10 s; a\n"
    "                          connection holds its --max-conns slot from the\n"
    "                          accept, header or not\n"
    "      --tls-cert FILE     serve TLS (1.2, 1.3) on every TCP address with this\n"
    "                          certificate (PEM, then its intermediates); UDP stays\n"
    "                          plain\n"
    "      --tls-key FILE      its private key (PEM); needed with --tls-cert\n"
    "      --tls-client-ca FILE  clients must present a certificate chaining to\n"
    "                          these CAs (PEM)\n"
    "      --handshake-timeout DURATION  close a TLS handshake not done by then\n"
    "                          (default 10s; plain: seconds)\n"
    "      --metrics HOST:PORT serve Prometheus metrics at http://HOST:PORT/metrics\n"
    "                          (connections, closes by reason, messages, bytes,\n"
    "                          reply latency, PROXY and TLS counts); other paths\n"
    "                          get 404; a request over 8 KiB gets 431, one not\n"
    "                          done in 5 s is closed\n"
    "  -q, --quiet             no per-connection log lines\n"
    "      --log-format FORMAT  text (default) or json: every log line one JSON\n"
    "                          object: ts, event, peer and the event's fields\n"
    "  -h, --help              this help\n"
    "  -V, --version           print the version\n"
    "\n"
    "Log lines go to stderr: \"listening on ADDR (tcp|udp)\" per socket, then\n"
    "\"open PEER\" and \"close PEER reason=R messages=N bytes_in=B bytes_out=B\n"
    "duration_ms=D\" per session (its bytes read and sent, its life), R one of\n"
    "exit, eof, reset, idle-timeout, message-too-long, output-limit, memory,\n"
    "shutdown, error; with TLS also tls-error (with tls_error=\"...\") and\n"
    "handshake-timeout (no open line then). TLS adds \"tls=VERSION cipher=C\" to\n"
    "open lines and \"tls_end=close_notify|truncated|reset|none\" (how the client\n"
    "ended TLS) to close lines; clean ends send close_notify. Only the wording of\n"
    "serve's own lines follows the locale (LANG): these records and every\n"
    "key=value field never do.\n"
    "SIGINT/SIGTERM/SIGQUIT stop accepting, give sessions 2 s to finish, print a\n"
    "summary and exit 0, within 2.5 s: log lines stderr cannot take by then are\n"
    "dropped and counted in a last \"(logger: N lines dropped ...)\" line, then\n"
    "the summary if it was among them. SIGHUP re-reads --tls-cert and --tls-key\n"
    "(new handshakes use the new pair, sessions keep theirs; a bad pair is logged\n"
    "and the old one kept); without TLS it is logged and ignored, as are SIGUSR1,\n"
    "SIGUSR2 and SIGALRM; SIGPIPE is ignored.\n"
    "\n"
    "Under systemd: without --listen, the sockets it passes (socket activation:\n"
    "LISTEN_FDS, stream sockets as TCP, datagram sockets as UDP) are served, their\n"
    "listening lines adding \"fd=N name=NAME\"; with --listen they are ignored.\n"
    "With NOTIFY_SOCKET set (Type=notify) serve sends READY=1 once it listens and\n"
    "STOPPING=1 at a stop signal.\n"
    "\n"
    "Limits: pending output over 256 KiB pauses reading from that client; over\n"
    "4 MiB with nothing read by the client for 5 s closes it. Idle means no\n"
    "progress either way. Over --max-conns a client gets \"Error: server busy, too\n"
    "many connections\" and is closed. Out of file descriptors, accepting pauses\n"
    "(100 ms at a time) instead of spinning. A session ended by \"exit\" or by an\n"
    "error line gets its replies, then the server's FIN; what the client sends\n"
    "after that is discarded for up to 2 s while waiting for its close.\n"
    "\n"
    "Exit status: 0 after a signal-initiated shutdown, 1 on a runtime error\n"
    "(e.g. address in use, a certificate or key that does not load or match),\n"
    "2 on a bad command line.\n");

enum {
    OPT_MAX_LINE = 256, OPT_REUSEPORT, OPT_MAX_MEMORY, OPT_PROXY_PROTOCOL,
    OPT_TLS_CERT, OPT_TLS_KEY, OPT_TLS_CLIENT_CA, OPT_HANDSHAKE_TIMEOUT, OPT_LOG_FORMAT,
    OPT_METRICS,
};

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 8888
#define GRACE_MS 2000     /* shutdown: time left to sessions and the log */
#define LOG_FLUSH_MS 250  /* the log's least share of it, after the sessions */

static const struct option serve_options[] = {
    {"listen", required_argument, NULL, 'l'},
    {"udp", no_argument, NULL, 'u'},
    {"framing", required_argument, NULL, 'f'},
    {"delay", required_argument, NULL, 'd'},
    {"max-conns", required_argument, NULL, 'm'},
    {"idle-timeout", required_argument, NULL, 't'},
    {"workers", required_argument, NULL, 'w'},
    {"backlog", required_argument, NULL, 'b'},
    {"max-line", required_argument, NULL, OPT_MAX_LINE},
    {"reuseport", no_argument, NULL, OPT_REUSEPORT},
    {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
    {"proxy-protocol", no_argument, NULL, OPT_PROXY_PROTOCOL},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"tls-client-ca", required_argument, NULL, OPT_TLS_CLIENT_CA},
    {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"quiet", no_argument, NULL, 'q'},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* True when the endpoint just parsed (cfg->listen[cfg->nlisten]) names a
 * fixed port already given. */
static bool listen_repeated(const struct sk_server_config *cfg)
{
    const struct sk_endpoint *ep = &cfg->listen[cfg->nlisten];
    for (size_t i = 0; ep->port && i < cfg->nlisten; i++)
        if (cfg->listen[i].port == ep->port && strcmp(cfg->listen[i].host, ep->host) == 0)
            return true;
    return false;
}

/* --tls-cert and --tls-key come together; the others need them. */
static int check_tls_args(const struct sk_server_config *cfg, const struct sk_tls_server_config *tls)
{
    if (!tls->cert_file != !tls->key_file) {
        cli_error("serve: %s needs %s", tls->cert_file ? "--tls-cert" : "--tls-key",
                  tls->cert_file ? "--tls-key" : "--tls-cert");
        return EXIT_USAGE;
    }
    if (!tls->cert_file && (tls->client_ca || cfg->handshake_timeout_ms)) {
        cli_error("serve: %s needs --tls-cert and --tls-key",
                  tls->client_ca ? "--tls-client-ca" : "--handshake-timeout");
        return EXIT_USAGE;
    }
    return 0;
}

/* Returns 0, CLI_DONE (--help, --version) or EXIT_USAGE. metrics->host
 * stays "" without --metrics. */
static int parse_args(int argc, char **argv, struct sk_server_config *cfg, bool *quiet,
                      bool *json, struct sk_tls_server_config *tls, struct sk_endpoint *metrics)
{
    long long v;
    double secs;
    int ms;
    int c;
    optind = 1;
    opterr = 0; /* cli_bad_option says it, in one line */
    while ((c = getopt_long(argc, argv, ":l:uf:d:m:t:w:b:qh", serve_options, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (cfg->nlisten == SK_SERVER_MAX_LISTEN) {
                cli_error("--listen given more than %d times", SK_SERVER_MAX_LISTEN);
                return EXIT_USAGE;
            }
            if (sk_endpoint_parse(optarg, &cfg->listen[cfg->nlisten]) < 0) {
                cli_error("--listen expects HOST:PORT or [IPv6]:PORT: %s", optarg);
                return EXIT_USAGE;
            }
            if (listen_repeated(cfg)) {
                /* With --reuseport the second bind would succeed: one port
                 * served twice. Port 0 twice is two free ports: fine. */
                cli_error("--listen given twice: %s", optarg);
                return EXIT_USAGE;
            }
            cfg->nlisten++;
            break;
        case 'u': cfg->udp = true; break;
        case 'f':
            if (sk_framing_parse(optarg, &cfg->framing) < 0) {
                cli_error("--framing must be chunk or line: %s", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'd':
            if (!cli_parse_duration_ms("--delay", optarg, CLI_MILLISECONDS, 0, 3600, &ms))
                return EXIT_USAGE;
            cfg->delay_ms = (unsigned)ms;
            break;
        case 'm':
            if (!cli_parse_num("--max-conns", optarg, 1, 100000000, &v))
                return EXIT_USAGE;
            cfg->max_conns = (size_t)v;
            break;
        case 't':
            if (!cli_parse_seconds("--idle-timeout", optarg, 0, 86400 * 365, &secs))
                return EXIT_USAGE;
            /* The engine counts whole seconds: round up (500ms is 1 s, not never). */
            cfg->idle_timeout_s = (unsigned)secs + ((double)(unsigned)secs < secs);
            break;
        case 'w':
            if (!cli_parse_num("--workers", optarg, 1, 1024, &v))
                return EXIT_USAGE;
            cfg->workers = (unsigned)v;
            break;
        case 'b':
            if (!cli_parse_num("--backlog", optarg, 1, 1 << 20, &v))
                return EXIT_USAGE;
            cfg->backlog = (int)v;
            break;
        case OPT_REUSEPORT: cfg->reuseport = true; break;
        case OPT_MAX_LINE:
            if (!cli_parse_num("--max-line", optarg, 1, 16 << 20, &v))
                return EXIT_USAGE;
            cfg->max_msg = (size_t)v;
            break;
        case OPT_MAX_MEMORY:
            if (!cli_parse_num("--max-memory", optarg, 0, 1LL << 50, &v))
                return EXIT_USAGE;
            cfg->max_memory = v ? (size_t)v : SIZE_MAX;
            break;
        case OPT_PROXY_PROTOCOL: cfg->proxy_protocol = true; break;
        case OPT_TLS_CERT: tls->cert_file = optarg; break;
        case OPT_TLS_KEY: tls->key_file = optarg; break;
        case OPT_TLS_CLIENT_CA: tls->client_ca = optarg; break;
        case OPT_HANDSHAKE_TIMEOUT:
            if (!cli_parse_duration_ms("--handshake-timeout", optarg, CLI_SECONDS, 0.001, 3600, &ms))
                return EXIT_USAGE;
            cfg->handshake_timeout_ms = (unsigned)ms;
            break;
        case OPT_METRICS:
            if (sk_endpoint_parse(optarg, metrics) < 0) {
                cli_error("--metrics expects HOST:PORT or [IPv6]:PORT: %s", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'q': *quiet = true; break;
        case OPT_LOG_FORMAT:
            if (!serve_log_format_parse(optarg, json)) {
                cli_error("--log-format must be text or json: %s", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h': return cli_print_help(serve_help);
        default: return cli_bad_option("serve", c, argv);
        }
    }
    if (optind < argc) {
        cli_error("serve: unexpected argument: %s", argv[optind]);
        return EXIT_USAGE;
    }
    return check_tls_args(cfg, tls);
}

/* Raises the open-file soft limit to the hard limit: every session is an fd. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void log_freep(struct sk_log **log)
{
    sk_log_free(*log);
}

static void server_freep(struct sk_server **srv)
{
    sk_server_free(*srv);
}

/* The signals serve takes (all others keep their default action). */
static const struct {
    int sig;
    const char *name;
    bool stops;
} serve_signals[] = {
    {SIGINT, "SIGINT", true},   {SIGTERM, "SIGTERM", true}, {SIGQUIT, "SIGQUIT", true},
    {SIGHUP, "SIGHUP", false},  {SIGUSR1, "SIGUSR1", false}, {SIGUSR2, "SIGUSR2", false},
    {SIGALRM, "SIGALRM", false},
};

/* The server context of the --tls-* files, at start and on SIGHUP. A file
 * that cannot be read is named with the system's reason (OpenSSL's own
 * message says "system lib"). Returns 0, or < 0 with one line in err. */
static int tls_ctx_load(const struct sk_tls_server_config *tls, const struct serve_log *sl,
                        struct sk_tls_ctx **ctx, char *err, size_t len)
{
    const char *files[] = {tls->cert_file, tls->key_file, tls->client_ca};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        FILE *f = files[i] ? fopen(files[i], "r") : NULL;
        if (files[i] && !f) {
            snprintf(err, len, "cannot read %s: %s", files[i],
                     serve_log_strerror(sl, SK_ERR(errno)));
            return SK_EUSAGE;
        }
        if (f)
            (void)fclose(f); /* opened only to name an unreadable file */
    }
    return sk_tls_server_ctx_new(tls, ctx, err, len);
}

/* SIGHUP with TLS: the certificate and key are read again; new handshakes
 * use the new pair, sessions keep theirs. A bad pair keeps the old one. */
static void reload_tls(struct sk_server *srv, const struct sk_tls_server_config *tls,
                       const struct serve_log *sl)
{
    char err[400];
    struct sk_tls_ctx *ctx = NULL;
    if (tls_ctx_load(tls, sl, &ctx, err, sizeof err) < 0) {
        serve_log_reload(sl, tls->cert_file, err);
        return;
    }
    sk_server_set_tls(srv, ctx);
    sk_tls_ctx_free(ctx); /* the server holds its own */
    serve_log_reload(sl, tls->cert_file, NULL);
}

/* Takes signals until one that stops the server, and stops it; SIGHUP
 * reloads the TLS pair (without TLS it is ignored), the others are logged
 * and ignored.
 * The stop comes before its log line: once "stopping" can be read, the
 * listeners refuse new connections. */
static void wait_for_stop(const sigset_t *sigs, struct sk_server *srv, const struct serve_log *sl,
                          const struct sk_tls_server_config *tls)
{
    for (;;) {
        int sig = 0;
        if (sigwait(sigs, &sig) != 0)
            continue;
        for (size_t i = 0; i < sizeof serve_signals / sizeof serve_signals[0]; i++) {
            if (serve_signals[i].sig != sig)
                continue;
            if (serve_signals[i].stops) {
                sk_server_stop(srv);
                serve_log_signal(sl, serve_signals[i].name, true);
                return;
            }
            if (sig == SIGHUP && tls->cert_file) {
                reload_tls(srv, tls, sl);
                continue;
            }
            serve_log_signal(sl, serve_signals[i].name, false);
        }
    }
}

static void tls_ctx_freep(struct sk_tls_ctx **ctx)
{
    sk_tls_ctx_free(*ctx);
}

/* ep as it was given: HOST:PORT, [IPv6]:PORT. Returns buf. */
static const char *endpoint_text(const struct sk_endpoint *ep, char *buf, size_t len)
{
    bool v6 = strchr(ep->host, ':') != NULL;
    snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", ep->host, v6 ? "]" : "", ep->port);
    return buf;
}

static void metrics_freep(struct serve_metrics **m)
{
    serve_metrics_free(*m);
}

static int run_server(struct sk_server_config *cfg, bool quiet, bool json,
                      const struct sk_tls_server_config *tls, struct serve_sd *sd,
                      const struct sk_endpoint *metrics)
{
    /* Signals are taken synchronously by this thread (sigwait below). Block
     * them before any thread exists: a thread started earlier (the logger's)
     * would otherwise inherit them unblocked, and a SIGTERM delivered to it
     * while this thread is not yet (or no longer) in sigwait kills the
     * process by the default action instead of stopping it cleanly. */
    sigset_t sigs;
    sigemptyset(&sigs);
    for (size_t i = 0; i < sizeof serve_signals / sizeof serve_signals[0]; i++)
        sigaddset(&sigs, serve_signals[i].sig);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* SIGPIPE: ignored by main() */

    int err = 0;
    struct serve_log sl = {.json = json}; /* outlives the server (its events') */
    /* The logger always exists for the start-up and summary lines; --quiet
     * only keeps it away from the sessions. */
    SK_AUTO(log_freep) struct sk_log *log = sk_log_new(STDERR_FILENO, 1 << 20, &err);
    if (!log) {
        serve_log_error(&sl, N_("serve: cannot start logger: %s"), serve_log_strerror(&sl, err));
        return EXIT_FAIL;
    }
    sk_log_set_format(log, json ? SK_LOG_JSON : SK_LOG_TEXT);
    sl.log = log;
    /* --quiet: no events, so not even their formatting. */
    cfg->on_event = quiet ? NULL : serve_log_event;
    cfg->event_user = &sl;
    cfg->grace_ms = GRACE_MS;
    greet_setup(cfg);
    SK_AUTO(tls_ctx_freep) struct sk_tls_ctx *ctx = NULL; /* the server takes its own */
    if (tls->cert_file) {
        char why[400];
        if (tls_ctx_load(tls, &sl, &ctx, why, sizeof why) < 0) {
            serve_log_error(&sl, N_("serve: %s"), why);
            return EXIT_FAIL;
        }
        cfg->tls = ctx;
    }

    SK_AUTO(server_freep) struct sk_server *srv = NULL;
    size_t failed = 0;
    int rc = sk_server_new(cfg, &srv, &failed);
    if (rc < 0 && cfg->ninherited) {
        serve_log_error(&sl, N_("serve: cannot serve the passed socket fd %d: %s"),
                        cfg->inherited[failed].fd, serve_log_strerror(&sl, rc));
        return EXIT_FAIL;
    }
    if (rc < 0) {
        char name[SK_HOST_MAX + 8];
        serve_log_error(&sl, N_("serve: cannot listen on %s: %s"),
                        endpoint_text(&cfg->listen[failed], name, sizeof name),
                        serve_log_strerror(&sl, rc));
        return EXIT_FAIL;
    }
    sk_server_set_shutdown_reply(srv, GREETING_SHUTDOWN);
    /* Before the workers start: a bad --metrics ends the run with nothing
     * served. Declared after srv, so released before it. */
    SK_AUTO(metrics_freep) struct serve_metrics *m = NULL;
    if (metrics->host[0] && (rc = serve_metrics_start(metrics, srv, &sl, &m)) < 0) {
        char name[SK_HOST_MAX + 8];
        serve_log_error(&sl, N_("serve: cannot serve metrics on %s: %s"),
                        endpoint_text(metrics, name, sizeof name), serve_log_strerror(&sl, rc));
        return EXIT_FAIL;
    }
    rc = sk_server_start(srv);
    if (rc < 0) {
        serve_log_error(&sl, N_("serve: cannot start workers: %s"), serve_log_strerror(&sl, rc));
        return EXIT_FAIL;
    }
    for (size_t i = 0; i < sk_server_nsockets(srv); i++) {
        char addr[SK_ADDRSTR_MAX];
        bool udp = false;
        if (sk_server_socket_addr(srv, i, addr, sizeof addr, &udp) == 0)
            serve_log_listening(&sl, addr, udp, cfg->framing, tls->cert_file != NULL,
                                serve_sd_passed(sd, i));
    }
    serve_sd_notify(sd, &sl, "READY=1", _("serving"));
    wait_for_stop(&sigs, srv, &sl, tls);
    serve_sd_notify(sd, &sl, "STOPPING=1", _("stopping: draining sessions"));
    /* The grace period bounds the whole exit: sessions get grace_ms, the
     * log what is left of it (at least LOG_FLUSH_MS) to write out. */
    uint64_t deadline = sk_now_ms() + cfg->grace_ms;
    struct sk_server_stats st;
    sk_server_wait(srv, &st);
    serve_log_summary(&sl, &st, cfg->proxy_protocol);
    uint64_t now = sk_now_ms();
    sk_log_close(log, deadline > now + LOG_FLUSH_MS ? deadline : now + LOG_FLUSH_MS);
    log = NULL;
    return EXIT_OK;
}

int cmd_serve(int argc, char **argv)
{
    cli_reserve_stdio(); /* a closed stderr must not make a client's socket fd 2 */
    struct sk_server_config cfg = {0};
    struct sk_tls_server_config tls = {0};
    struct serve_sd sd = {0};
    struct sk_endpoint metrics = {0};
    bool quiet = false, json = false;
    int rc = parse_args(argc, argv, &cfg, &quiet, &json, &tls, &metrics);
    if (rc != 0)
        return rc == CLI_DONE ? EXIT_OK : rc;
    /* --listen wins over socket activation: LISTEN_* are then not read. */
    if (cfg.nlisten == 0 && (rc = serve_sd_listen(&cfg, &sd)) != 0)
        return rc;
    if (cfg.nlisten == 0 && cfg.ninherited == 0) { /* the default address */
        strcpy(cfg.listen[0].host, DEFAULT_HOST);
        cfg.listen[0].port = DEFAULT_PORT;
        cfg.nlisten = 1;
    }
    raise_nofile();
    return run_server(&cfg, quiet, json, &tls, &sd, &metrics);
}
