/* sockit bench: the command line. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "greeting.h"
#include "bench.h"
#include "chars_int.h" /* lib/'s hex table: the CLI links the static archive */
#include "cli.h"
#include "i18n.h"

const char bench_help[] = N_(
    "usage: sockit bench HOST:PORT [-c CONNS] [-n REQUESTS | -d DURATION] [-P DEPTH]\n"
    "                    [--framing chunk|line] [--udp] [--message M] [--rate R]\n"
    "                    [--warmup DURATION] [--threads N] [--json] [--timeout DURATION]\n"
    "       sockit bench HOST:PORT --connect [-c CONNS] [-n CONNECTS | -d DURATION]\n"
    "       sockit bench HOST:PORT --idle DURATION [-c CONNS] [--probe N]\n"
    "       sockit bench HOST:PORT --tls [--cacert FILE | --insecure] [--tls-resume]\n"
    "                    [...]   (TLS in any TCP mode)\n"
    "       sockit bench HOST:PORT --raw BYTES (--reply-bytes N | --reply-until STR |\n"
    "                    --expect STR) [--greeting STR] [...]\n"
    "       sockit bench merge FILE... [--json]   (see 'sockit bench merge --help')\n"
    "\n"
    "Measure a server of the greeting protocol (or, with --raw, any request/reply\n"
    "server) under load, from one event loop per thread. Prints throughput, errors\n"
    "by class and latency percentiles (p50 p90 p99 p99.9 p99.99 max) from a\n"
    "histogram with 0.1 % relative error.\n"
    "\n"
    "Load:\n"
    "  -c, --connections N   concurrent connections (UDP: sockets); default 50\n"
    "  -n, --requests N      measured requests in all: exactly N replies, or errors\n"
    "  -d, --duration DURATION  measure that long (default 10 s when no -n), then\n"
    "                        wait for the replies in flight (each up to --timeout)\n"
    "  -P, --pipeline DEPTH  requests in flight per connection (default 1); needs\n"
    "                        --framing line, --raw or --udp; over TCP at most\n"
    "                        16 MiB of requests per connection\n"
    "  -r, --rate R          open loop: R requests/s in all, on a fixed schedule;\n"
    "                        latency counts from each request's intended send\n"
    "                        time, so a server that falls behind shows it\n"
    "                        (coordinated omission corrected, as in wrk2). Without\n"
    "                        --rate the run is closed loop: a connection sends\n"
    "                        again only when a reply came back\n"
    "  -w, --warmup DURATION run that long first, excluded from every figure\n"
    "  -t, --threads N       event-loop threads (default 1); connections and rate\n"
    "                        are split between them\n"
    "      --timeout DURATION  a connect, greeting or reply later than this is an\n"
    "                        error (default 10 s; UDP: 1 s, then the datagram is lost)\n"
    "      --connect-concurrency N  connects in progress at once per thread\n"
    "                        (default 128), so a listen backlog does not overflow\n"
    "\n"
    "Protocol:\n"
    "  -f, --framing MODE    chunk (default) or line: must match the server\n"
    "  -m, --message M       the message sent (default \"bench\"); the reply\n"
    "                        \"Hello, M!\" is checked byte for byte\n"
    "  -u, --udp             datagrams: each carries M#SEQ (a sequence number, so\n"
    "                        a lost datagram cannot shift the others' replies)\n"
    "                        and gets \"Hello, M#SEQ!\" back; sent and received\n"
    "                        in batches (sendmmsg, recvmmsg)\n"
    "      --raw BYTES       send BYTES as the request (escapes \\r \\n \\t \\0 \\\\\n"
    "                        \\xHH); a reply is recognised by one of:\n"
    "      --reply-bytes N   a reply is N bytes\n"
    "      --reply-until STR a reply ends with STR (escapes as above)\n"
    "      --expect STR      a reply is exactly STR (checked)\n"
    "      --greeting STR    raw: the server first sends exactly STR\n"
    "                        e.g. redis: --raw 'PING\\r\\n' --expect '+PONG\\r\\n'\n"
    "\n"
    "TLS (any TCP mode; one client context for every thread):\n"
    "      --tls             speak TLS (1.2 or 1.3); the server's certificate chain\n"
    "                        and host name are verified (the system store)\n"
    "      --cacert FILE     trust only the CA certificates in FILE (PEM)\n"
    "      --insecure        do not verify the server's certificate (warned)\n"
    "      --servername NAME send NAME as SNI and verify against it (default: HOST)\n"
    "      --cert FILE       present this client certificate (PEM, then its chain)\n"
    "      --key FILE        its private key (PEM; default: in the --cert file)\n"
    "      --tls-resume      each connection resumes the session (ticket) of its\n"
    "                        previous handshake: with --connect, the rate of\n"
    "                        resumed handshakes; the report counts them\n"
    "\n"
    "Modes:\n"
    "      --connect         connect rate: connect, read the greeting, close (with\n"
    "                        a reset, so no TIME_WAIT holds a local port); repeat\n"
    "      --idle DURATION   open every connection, read its greeting, hold them all\n"
    "                        that long, close them (measure memory per connection)\n"
    "      --probe N         --idle: one request on each of N held connections,\n"
    "                        replies checked, on SIGUSR1 (the hold goes on; prints\n"
    "                        \"probe: R of N answered\") or else when the hold ends\n"
    "\n"
    "Output:\n"
    "  -j, --json            one JSON object on stdout with every figure and setting,\n"
    "                        the latency histograms and the measured window on the\n"
    "                        wall clock: results of several runs, from several\n"
    "                        hosts, combine exactly with 'sockit bench merge'\n"
    "      --no-live         no per-second line (shown when stderr is a terminal)\n"
    "  -q, --quiet           no warnings from the pre-flight checks\n"
    "  -h, --help            this help\n"
    "  -V, --version         print the version\n"
    "\n"
    "Before it starts, bench checks the open-file limit (raising the soft limit\n"
    "when it can) and the ephemeral port range against -c, and says what to change\n"
    "instead of failing halfway. SIGINT ends the run early and reports what was\n"
    "measured.\n"
    "\n"
    "Numbers are plain decimal (R may have a fraction: 0.5). A DURATION is\n"
    "NUMBER[ms|s|m|h] (500ms, 1.5s, 2m); a plain number is seconds.\n"
    "A greeting in the other framing (\"Welcome!\\n\" from a line server, or\n"
    "\"Welcome!\" and no newline within 200 ms from a chunk server) ends the run\n"
    "at once with a line that says so.\n"
    "\n"
    "Exit status (the table of 'sockit --help'): 0 every measured request got its\n"
    "reply; 1 errors were counted in a run that worked, or it was interrupted;\n"
    "2 bad command line. A run that could not work says why: 3 the host name did\n"
    "not resolve; 4 the first connect was refused or unreachable; 5 the first\n"
    "TLS handshake failed, or its certificate did not verify (the line says why),\n"
    "or a --cacert, --cert or --key file is bad; 7 the server speaks another\n"
    "framing or protocol; 9 a timeout (the first connect, or every\n"
    "connection failing by timeouts until bench gave up).\n");

enum {
    OPT_CONNECT = 256, OPT_IDLE, OPT_RAW, OPT_REPLY_BYTES, OPT_REPLY_UNTIL, OPT_EXPECT,
    OPT_GREETING, OPT_TIMEOUT, OPT_CONC, OPT_NO_LIVE, OPT_PROBE, OPT_TLS_RESUME,
};

static const struct option bench_options[] = {
    {"connections", required_argument, NULL, 'c'},
    {"requests", required_argument, NULL, 'n'},
    {"duration", required_argument, NULL, 'd'},
    {"pipeline", required_argument, NULL, 'P'},
    {"rate", required_argument, NULL, 'r'},
    {"warmup", required_argument, NULL, 'w'},
    {"threads", required_argument, NULL, 't'},
    {"framing", required_argument, NULL, 'f'},
    {"message", required_argument, NULL, 'm'},
    {"udp", no_argument, NULL, 'u'},
    {"json", no_argument, NULL, 'j'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {"connect", no_argument, NULL, OPT_CONNECT},
    {"idle", required_argument, NULL, OPT_IDLE},
    {"probe", required_argument, NULL, OPT_PROBE},
    {"raw", required_argument, NULL, OPT_RAW},
    {"reply-bytes", required_argument, NULL, OPT_REPLY_BYTES},
    {"reply-until", required_argument, NULL, OPT_REPLY_UNTIL},
    {"expect", required_argument, NULL, OPT_EXPECT},
    {"greeting", required_argument, NULL, OPT_GREETING},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"connect-concurrency", required_argument, NULL, OPT_CONC},
    {"no-live", no_argument, NULL, OPT_NO_LIVE},
    {"tls-resume", no_argument, NULL, OPT_TLS_RESUME},
    CLI_TLS_OPTIONS,
    {NULL, 0, NULL, 0},
};

/* Decodes C-style escapes into a new buffer (*out, *len). Returns false
 * after printing the error. */
static bool unescape(const char *what, const char *s, char **out, size_t *len)
{
    char *buf = malloc(strlen(s) + 1);
    if (!buf) {
        cli_error("out of memory");
        return false;
    }
    size_t n = 0;
    for (const char *p = s; *p; p++) {
        if (*p != '\\') {
            buf[n++] = *p;
            continue;
        }
        char c = *++p;
        switch (c) {
        case 'r': buf[n++] = '\r'; break;
        case 'n': buf[n++] = '\n'; break;
        case 't': buf[n++] = '\t'; break;
        case '0': buf[n++] = '\0'; break;
        case '\\': buf[n++] = '\\'; break;
        case 'x': {
            unsigned char byte;
            if (sk__hex_decode(p + 1, &byte, 1) < 0) { /* stops at the NUL */
                free(buf);
                cli_error("%s has a bad \\x escape (want \\xHH): %s", what, s);
                return false;
            }
            buf[n++] = (char)byte;
            p += 2;
            break;
        }
        default:
            free(buf);
            cli_error("%s has an unknown escape \\%c (known: \\r \\n \\t \\0 \\\\ \\xHH): %s",
                      what, c ? c : ' ', s);
            return false;
        }
    }
    *out = buf;
    *len = n;
    return true;
}

static char *dup_bytes(const void *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

/* The greeting protocol's request, reply and greeting for o->message. */
static int greeting_protocol(struct bench_opts *o)
{
    size_t mlen = strlen(o->message);
    if (o->mode != BENCH_UDP && o->framing == SK_FRAMING_LINE && strpbrk(o->message, "\r\n")) {
        cli_error("--message must not contain a line break in line framing");
        return EXIT_USAGE;
    }
    if (o->mode != BENCH_UDP && greeting_is_exit(o->message, mlen)) {
        cli_error("--message must not be \"exit\": it ends the session");
        return EXIT_USAGE;
    }
    if (o->mode != BENCH_UDP && o->framing == SK_FRAMING_CHUNK && mlen == 0) {
        cli_error("--message must not be empty in chunk framing (nothing would be sent)");
        return EXIT_USAGE;
    }
    if (o->mode == BENCH_UDP && mlen > BENCH_UDP_MESSAGE_MAX) {
        cli_error("--message is too long for --udp: at most %d bytes (the reply and the "
                  "sequence tag must fit a datagram)", BENCH_UDP_MESSAGE_MAX);
        return EXIT_USAGE;
    }
    enum sk_framing f = o->mode == BENCH_UDP ? SK_FRAMING_CHUNK : o->framing;
    o->req_len = mlen + (f == SK_FRAMING_LINE);
    o->req = malloc(o->req_len + 1);
    size_t rlen = greeting_reply_len(f, mlen);
    char *reply = malloc(rlen);
    if (!o->req || !reply) {
        free(reply);
        cli_error("out of memory");
        return EXIT_FAIL;
    }
    memcpy(o->req, o->message, mlen);
    if (f == SK_FRAMING_LINE)
        o->req[mlen] = '\n';
    greeting_reply_write(f, o->message, mlen, reply);
    o->reply = (struct match_spec){.kind = MATCH_EXACT, .bytes = reply, .len = rlen};
    if (o->mode != BENCH_UDP) {
        o->reply.bye = GREETING_SHUTDOWN; /* "E", the reply "H" */
        o->reply.bye_len = GREETING_SHUTDOWN_LEN;
        size_t glen;
        const char *g = greeting_text(f, &glen);
        o->greeting = dup_bytes(g, glen);
        o->greeting_len = glen;
        if (!o->greeting) {
            cli_error("out of memory");
            return EXIT_FAIL;
        }
    }
    return 0;
}

struct raw_args {
    const char *req, *until, *expect, *greeting;
    long long bytes;
    int nmatch;
};

static int raw_protocol(struct bench_opts *o, const struct raw_args *a)
{
    if (a->nmatch != 1) {
        cli_error("--raw needs exactly one of --reply-bytes, --reply-until, --expect");
        return EXIT_USAGE;
    }
    if (!unescape("--raw", a->req, &o->req, &o->req_len))
        return EXIT_USAGE;
    if (o->req_len == 0) {
        cli_error("--raw must not be empty");
        return EXIT_USAGE;
    }
    char *b = NULL;
    size_t n = 0;
    if (a->bytes > 0) {
        o->reply = (struct match_spec){.kind = MATCH_LEN, .len = (size_t)a->bytes};
    } else {
        const char *s = a->until ? a->until : a->expect;
        const char *what = a->until ? "--reply-until" : "--expect";
        if (!unescape(what, s, &b, &n))
            return EXIT_USAGE;
        if (n == 0) {
            free(b);
            cli_error("%s must not be empty", what);
            return EXIT_USAGE;
        }
        o->reply = (struct match_spec){.kind = a->until ? MATCH_UNTIL : MATCH_EXACT,
                                       .bytes = b, .len = n};
    }
    if (a->greeting && !unescape("--greeting", a->greeting, &o->greeting, &o->greeting_len))
        return EXIT_USAGE;
    return 0;
}

/* Flag conflicts and defaults, in one place. */
static int check(struct bench_opts *o, bool have_n, bool have_d, bool have_framing,
                 const struct raw_args *a)
{
    if (o->mode == BENCH_IDLE && (have_n || have_d)) {
        cli_error("--idle takes its duration as its argument; drop -n / -d");
        return EXIT_USAGE;
    }
    if (o->probe && o->mode != BENCH_IDLE) {
        cli_error("--probe needs --idle (it probes held connections)");
        return EXIT_USAGE;
    }
    if (o->probe > o->conns) {
        cli_error("--probe %u is more than the %u connections", o->probe, o->conns);
        return EXIT_USAGE;
    }
    if (have_n && have_d) {
        cli_error("-n and -d exclude each other");
        return EXIT_USAGE;
    }
    if (!have_n && !have_d)
        o->duration_s = 10;
    if (o->mode == BENCH_IDLE || o->mode == BENCH_CONNECT) {
        if (o->rate > 0 || o->depth > 1) {
            cli_error("--rate and -P apply to requests, not to --connect or --idle");
            return EXIT_USAGE;
        }
    }
    if (o->mode == BENCH_UDP && o->rate > 0) {
        cli_error("--rate is not supported with --udp (UDP runs closed loop)");
        return EXIT_USAGE;
    }
    if (o->depth > 1 && !o->raw && o->mode != BENCH_UDP && o->framing != SK_FRAMING_LINE) {
        cli_error("-P %u needs --framing line: chunk framing has no message boundaries, "
                  "so pipelined messages would merge", o->depth);
        return EXIT_USAGE;
    }
    if (!o->raw && (a->nmatch || a->greeting)) {
        cli_error("--reply-bytes, --reply-until, --expect and --greeting need --raw");
        return EXIT_USAGE;
    }
    if (o->raw && have_framing) {
        cli_error("--framing does not apply to --raw (the bytes are sent as given)");
        return EXIT_USAGE;
    }
    int rc = cli_tls_check(&o->tls);
    if (rc != 0)
        return rc;
    if (o->tls_resume && !o->tls.on) {
        cli_error("--tls-resume needs --tls");
        return EXIT_USAGE;
    }
    if (o->tls.on && o->mode == BENCH_UDP) {
        cli_error("--tls does not apply to --udp (TLS runs over TCP)");
        return EXIT_USAGE;
    }
    if (o->threads > o->conns) {
        cli_error("--threads %u is more than the %u connections", o->threads, o->conns);
        return EXIT_USAGE;
    }
    if (o->timeout_s == 0)
        o->timeout_s = o->mode == BENCH_UDP ? 1 : 10;
    rc = o->raw ? raw_protocol(o, a) : greeting_protocol(o);
    /* TCP sends -P requests as one burst from one buffer, and holds what the
     * socket does not take: bound that, per connection. */
    if (rc == 0 && o->mode != BENCH_UDP && (uint64_t)o->req_len * o->depth > BENCH_BURST_MAX) {
        cli_error("-P %u requests of %zu bytes are more than %d MiB in flight per connection",
                  o->depth, o->req_len, BENCH_BURST_MAX >> 20);
        return EXIT_USAGE;
    }
    return rc;
}

int bench_parse(int argc, char **argv, struct bench_opts *o)
{
    *o = (struct bench_opts){.conns = 50, .threads = 1, .depth = 1, .message = "bench",
                             .connect_concurrency = 128};
    struct raw_args ra = {0};
    bool have_n = false, have_d = false, have_framing = false, no_live = false;
    long long v;
    int c;
    optind = 1;
    opterr = 0; /* cli_bad_option says it, in one line */
    while ((c = getopt_long(argc, argv, ":c:n:d:P:r:w:t:f:m:ujqh", bench_options, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (!cli_parse_num("-c", optarg, 1, 1000000, &v))
                return EXIT_USAGE;
            o->conns = (unsigned)v;
            break;
        case 'n':
            if (!cli_parse_num("-n", optarg, 1, INT64_MAX, &v))
                return EXIT_USAGE;
            o->requests = (uint64_t)v;
            have_n = true;
            break;
        case 'd':
            if (!cli_parse_seconds("-d", optarg, 0.001, 86400 * 7, &o->duration_s))
                return EXIT_USAGE;
            have_d = true;
            break;
        case 'P':
            if (!cli_parse_num("-P", optarg, 1, 65536, &v))
                return EXIT_USAGE;
            o->depth = (unsigned)v;
            break;
        case 'r':
            if (!cli_parse_real("--rate", optarg, 0.001, 1e9, &o->rate))
                return EXIT_USAGE;
            break;
        case 'w':
            if (!cli_parse_seconds("--warmup", optarg, 0, 3600, &o->warmup_s))
                return EXIT_USAGE;
            break;
        case 't':
            if (!cli_parse_num("--threads", optarg, 1, 256, &v))
                return EXIT_USAGE;
            o->threads = (unsigned)v;
            break;
        case 'f':
            if (sk_framing_parse(optarg, &o->framing) < 0) {
                cli_error("--framing must be chunk or line: %s", optarg);
                return EXIT_USAGE;
            }
            have_framing = true;
            break;
        case 'm': o->message = optarg; break;
        case 'u': o->mode = BENCH_UDP; break;
        case 'j': o->json = true; break;
        case 'q': o->quiet = true; break;
        case 'h': return cli_print_help(bench_help);
        case OPT_CONNECT: o->mode = BENCH_CONNECT; break;
        case OPT_IDLE:
            if (!cli_parse_seconds("--idle", optarg, 0, 86400, &o->idle_s))
                return EXIT_USAGE;
            o->mode = BENCH_IDLE;
            break;
        case OPT_PROBE:
            if (!cli_parse_num("--probe", optarg, 1, 1000000, &v))
                return EXIT_USAGE;
            o->probe = (unsigned)v;
            break;
        case OPT_RAW: o->raw = true; ra.req = optarg; break;
        case OPT_REPLY_BYTES:
            if (!cli_parse_num("--reply-bytes", optarg, 1, 1 << 30, &ra.bytes))
                return EXIT_USAGE;
            ra.nmatch++;
            break;
        case OPT_REPLY_UNTIL: ra.until = optarg; ra.nmatch++; break;
        case OPT_EXPECT: ra.expect = optarg; ra.nmatch++; break;
        case OPT_GREETING: ra.greeting = optarg; break;
        case OPT_TIMEOUT:
            if (!cli_parse_seconds("--timeout", optarg, 0.001, 3600, &o->timeout_s))
                return EXIT_USAGE;
            break;
        case OPT_CONC:
            if (!cli_parse_num("--connect-concurrency", optarg, 1, 65536, &v))
                return EXIT_USAGE;
            o->connect_concurrency = (unsigned)v;
            break;
        case OPT_NO_LIVE: no_live = true; break;
        case OPT_TLS_RESUME: o->tls_resume = true; break;
        default:
            if (cli_tls_option(&o->tls, c, optarg))
                break;
            return cli_bad_option("bench", c, argv);
        }
    }
    if (optind != argc - 1) {
        if (optind >= argc)
            cli_error("missing HOST:PORT (try 'sockit bench --help')");
        else
            cli_error("one HOST:PORT expected; unexpected: %s", argv[optind + 1]);
        return EXIT_USAGE;
    }
    o->target = argv[optind];
    if (sk_endpoint_parse(o->target, &o->ep) < 0 || o->ep.port == 0) {
        cli_error("expected HOST:PORT or [IPv6]:PORT: %s", o->target);
        return EXIT_USAGE;
    }
    if (o->mode == BENCH_UDP && o->raw && ra.greeting) {
        cli_error("--greeting does not apply to --udp");
        return EXIT_USAGE;
    }
    o->live = !no_live && isatty(2);
    return check(o, have_n, have_d, have_framing, &ra);
}

void bench_opts_free(struct bench_opts *o)
{
    free(o->req);
    free(o->greeting);
    free((char *)o->reply.bytes);
    free(o->reply.fail);
    o->req = o->greeting = NULL;
    o->reply.bytes = NULL;
    o->reply.fail = NULL;
}
