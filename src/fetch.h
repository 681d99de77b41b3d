/* sockit fetch: the command line on top of the library's HTTP client
 * (include/sockit/fetch.h): declarations shared by cmd_fetch.c and fetch_*.c. */
#ifndef SOCKIT_CLI_FETCH_H
#define SOCKIT_CLI_FETCH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "sockit.h"

#define FETCH_HEADERS_MAX 64
#define FETCH_PARALLEL_DEFAULT 8 /* several URLs without --parallel N */
#define FETCH_PARALLEL_MAX 1024   /* --parallel N */
#define FETCH_URLS_MAX 100000     /* URLs in one run (command line and -i) */
#define FETCH_URL_LINE_MAX 8192   /* bytes of one line of a -i list */
#define FETCH_SHOWN_MAX (4 * FETCH_URL_LINE_MAX) /* a URL as shown; longer ones are refused */

struct fetch_progress {
    bool enabled;
    uint64_t total; /* 0: unknown */
    uint64_t done;
    uint64_t base;  /* bytes there at the start (a resumed part): not this run's rate */
    uint64_t start_ms, last_ms;
    bool drawn;
};

/* fetch_report.c: what -w reports of one URL. */
struct fetch_report {
    uint64_t start_ns;          /* the URL's start */
    uint64_t body_base;         /* bytes of the body there before (a resumed part) */
    uint64_t body_bytes;        /* body bytes downloaded */
    size_t index;               /* the URL's place in the run, from 0 */
    /* the last hop's events, in ns since start_ns (0: none came) */
    uint64_t resolved_ns, connected_ns, tls_ns, request_ns, head_ns;
    uint64_t redirect_ns;       /* when the hop after the last head began */
    bool after_head;            /* a head came: the next hop (a redirect's) not yet */
    uint64_t head_bytes, request_bytes; /* every hop's */
    unsigned connects;          /* connections opened (not reused) */
    long verify_result;         /* the last TLS handshake's certificate check (X509_V_*) */
    char peer[64];              /* "ADDRESS:PORT" of the last hop's connection */
    char local[64];             /* its local end */
    char method[16];            /* of the last request */
    char version[4];            /* the last head's: "1", "1.1" or "2" */
    char content_type[256];     /* the last head's, cut to fit */
};

/* A parallel run: what a URL's end says (its result line and messages on
 * standard error, -w's text on standard output), held until every URL
 * given before it has said its own. */
struct fetch_held {
    char *err, *out, *dump;     /* malloc'd; NULL: nothing (dump: the heads for -D FILE) */
    size_t err_len, out_len, dump_len;
    size_t heads_len;           /* of out and dump: response heads, counted in the run's room */
    bool ready;                 /* the URL is over: said as soon as its turn comes */
};

/* Response heads a parallel run holds at most, all URLs together, to give
 * them in URL order (on standard output or in -D FILE); past it a head goes
 * out as it comes. */
#define FETCH_HELD_HEADS_MAX (8u << 20)

/* One run of the command: its options and where the output goes. */
struct fetch_cli {
    struct sk_fetch_opts o;
    struct sk_fetch *f;         /* the URL's transfer (NULL until it runs) */
    struct sk_fetch *run_f;     /* the run's one object: f once the URL runs */
    const char *url;            /* the URL being fetched */
    char **urls;                /* every URL of the run, in order (copies) */
    size_t nurls, urls_cap;
    const char *list;           /* -i FILE */
    const char *out_dir;        /* --output-dir */
    bool multi;                 /* several URLs (or -i): a line for each, a count */
    unsigned parallel;          /* --parallel N: transfers at once (1: one by one; 0: the default) */
    void (*tick)(void *arg);    /* the board on a terminal: body bytes came (its redraw) */
    void (*board_hide)(void *arg, bool hide); /* the board off the screen, or back */
    void *tick_arg;             /* for both */
    struct fetch_held *held;    /* a parallel run, a URL ending: what it says goes there */
    struct fetch_held *heads_held; /* a parallel run: its heads for standard output */
    size_t *heads_room;         /* what the run may hold more of them */
    unsigned flags;             /* the options' SK_FETCH_* before each URL adds its own */
    const char *output;         /* -o; NULL: name from the URL; "-": stdout */
    const char *headers[FETCH_HEADERS_MAX]; /* -H "Name: value" */
    unsigned char sha256[32];
    bool silent, head, resume;
    int hdr_fd;                 /* where response heads go; -1 with -s */
    const char *out_path;       /* output file; NULL for stdout or -I */
    bool out_special;           /* -o names a device or FIFO: written in place */
    bool out_magic;             /* out_path is a /proc link to a pipe (/dev/stdout) */
    int out_fd;                 /* the body's descriptor without a file; -1: none */
    struct fetch_progress pg;
    const char *proxy;          /* -x / --proxy ("": none), or socks_url */
    bool proxy_set;
    char socks_url[2048];       /* --socks5[-hostname], --socks4[a] HOST[:PORT] as SCHEME://HOST[:PORT] */
    const char *noproxy;        /* --noproxy; NULL: $no_proxy */
    /* fetch_curl.c: curl's and wget's spellings */
    bool remote_name;           /* -O */
    /* fetch_name.c: -J / --content-disposition, --trust-server-names */
    bool cd_name;               /* -J */
    bool trust_names;           /* --trust-server-names */
    char *name_buf;             /* the output's name (PATH_MAX), when the final head names it */
    char url_base[256];         /* the URL's own name: the fallback */
    /* fetch_auth.c: -u, the URL's credentials, --netrc */
    char user[SK_NETRC_TOKEN_MAX], password[SK_NETRC_TOKEN_MAX]; /* -u */
    bool has_user;
    bool url_creds;             /* the URL being fetched has its own */
    const char *netrc_path;     /* --netrc ($HOME/.netrc) or --netrc-file */
    bool netrc_optional;        /* --netrc: a missing file is no error */
    char *netrc;                /* its text (NULL: none), netrc_len bytes */
    size_t netrc_len;
    char shown[FETCH_SHOWN_MAX]; /* the URL being fetched, without credentials */
    /* fetch_report.c: -D, -w, -v */
    const char *dump_path;      /* -D FILE ('-': standard output) */
    int dump_fd;                /* its descriptor; -1: none */
    const char *write_out;      /* -w FORMAT (or the text of -w @FILE) */
    char *write_out_text;       /* -w @FILE's, malloc'd */
    bool verbose;               /* -v */
    struct fetch_report rep;
    char *last_head;            /* with -w: the last response head (malloc'd), for */
    size_t last_head_len, last_head_cap; /* %header{NAME}, %{header_json}... */
};

/* The signal that asked to stop (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE,
 * SIGXCPU, SIGUSR1, SIGUSR2) and the socket its handler shuts down. */
extern struct sk_fetch_cancel fetch_cancel;

/* fetch_out.c: what the command writes (heads, notices, a body to a
 * descriptor) and the library's callbacks that do it. */

/* Standard output, a FIFO or a device cannot be bounded by poll(): a pipe
 * write waits until all of it fits, opening a FIFO waits for a reader.
 * While ticks are on, SIGALRM interrupts such a call every FETCH_TICK_MS so
 * that its loop looks at the deadline and the cancel flag. */
#define FETCH_TICK_MS 100
void fetch_ticks(bool on);
/* A "sockit: ..." line on standard error once the transfer has begun:
 * bounded like the body's writes (a stalled stderr must not hang the exit),
 * written even after a signal; a lost line is no failure. */
void fetch_notice(struct fetch_cli *fc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int fetch_on_event(void *arg, const struct sk_fetch_event *ev);
int fetch_write_out(void *arg, const void *p, size_t n);

/* fetch_curl.c: the options of curl and wget that fetch takes (their own
 * block of the option table, values from FETCH_CURL_OPT_BASE). */
enum { FETCH_CURL_OPT_BASE = 1000, OPT_CONTINUE_AT = FETCH_CURL_OPT_BASE, OPT_DATA_OTHER,
       OPT_NETRC, OPT_NETRC_FILE, OPT_CONTENT_DISPOSITION, OPT_TRUST_SERVER_NAMES };
#define FETCH_CURL_SHORTOPTS "LOJfSqcP:A:X:d:F:T:u:D:w:v"
#define FETCH_CURL_LONGOPTS                                      \
    {"location", no_argument, NULL, 'L'},                        \
    {"remote-name", no_argument, NULL, 'O'},                     \
    {"remote-header-name", no_argument, NULL, 'J'},              \
    {"content-disposition", no_argument, NULL, OPT_CONTENT_DISPOSITION}, \
    {"trust-server-names", no_argument, NULL, OPT_TRUST_SERVER_NAMES}, \
    {"fail", no_argument, NULL, 'f'},                            \
    {"show-error", no_argument, NULL, 'S'},                      \
    {"quiet", no_argument, NULL, 'q'},                           \
    {"continue-at", required_argument, NULL, OPT_CONTINUE_AT},   \
    {"directory-prefix", required_argument, NULL, 'P'},          \
    {"user-agent", required_argument, NULL, 'A'},                \
    {"request", required_argument, NULL, 'X'},                   \
    {"data", required_argument, NULL, 'd'},                      \
    {"form", required_argument, NULL, 'F'},                      \
    {"upload-file", required_argument, NULL, 'T'},               \
    {"data-binary", required_argument, NULL, OPT_DATA_OTHER},    \
    {"data-raw", required_argument, NULL, OPT_DATA_OTHER},       \
    {"data-urlencode", required_argument, NULL, OPT_DATA_OTHER}, \
    {"user", required_argument, NULL, 'u'},                      \
    {"netrc", no_argument, NULL, OPT_NETRC},                     \
    {"netrc-file", required_argument, NULL, OPT_NETRC_FILE},     \
    {"dump-header", required_argument, NULL, 'D'},               \
    {"write-out", required_argument, NULL, 'w'},                 \
    {"verbose", no_argument, NULL, 'v'},
#define FETCH_OPT_UNKNOWN (-1000)
/* One option of that block: EXIT_OK, an exit status, or FETCH_OPT_UNKNOWN. */
int fetch_curl_opt(struct fetch_cli *fc, int c, const char *arg);
/* -C with a value attached (-C-): EXIT_OK or EXIT_USAGE. */
int fetch_curl_continue(struct fetch_cli *fc, const char *arg);
/* A positional argument: 1 to skip it (the '-' of "-C -"), 0: a URL, or an
 * exit status (a byte offset after -C). */
int fetch_curl_positional(const struct fetch_cli *fc, const char *arg);
/* A copy of url with "http://" before it when it names no scheme (as curl
 * assumes); NULL when out of memory. */
char *fetch_url_with_scheme(const char *url);
/* The second part of --help. */
int fetch_curl_help(void);

/* fetch_name.c */
/* dir/base (--output-dir) into name (PATH_MAX bytes): 0 or SK_ERR(ENAMETOOLONG). */
int fetch_name_join(const struct fetch_cli *fc, const char *base, char *name);
/* A response head (SK_FETCH_EV_HEAD): when it is the final one and the
 * server names the file (-J, --trust-server-names), the output's name is
 * set (fc->name_buf) and checked: 0, or SK_EWRITE when that file exists. */
int fetch_name_head(struct fetch_cli *fc, const struct sk_fetch_event *ev);

/* fetch_auth.c */
/* -u, --netrc, --netrc-file: EXIT_OK, an exit status, or FETCH_OPT_UNKNOWN. */
int fetch_auth_opt(struct fetch_cli *fc, int c, const char *arg);
/* After the options: the netrc file read and checked (EXIT_OK or 2). */
int fetch_auth_load(struct fetch_cli *fc);
/* Before each URL: fc->shown, url without its credentials (what messages
 * show). EXIT_OK or EXIT_USAGE (malformed credentials, a user without a
 * password). */
int fetch_auth_url(struct fetch_cli *fc, const char *url);
/* Then the credentials for it in fc->o: -u, else the URL's own (the
 * library takes them), else netrc's entry for host. */
void fetch_auth_host(struct fetch_cli *fc, const char *host);
void fetch_auth_free(struct fetch_cli *fc);

/* After the options: the netrc file and -D's file (EXIT_OK or a status). */
int fetch_curl_load(struct fetch_cli *fc);
/* At the end of the run: what those options hold goes. */
void fetch_curl_free(struct fetch_cli *fc);

/* fetch_report.c */
/* -D, -w, -v: EXIT_OK, an exit status, or FETCH_OPT_UNKNOWN. */
int fetch_report_opt(struct fetch_cli *fc, int c, const char *arg);
int fetch_report_load(struct fetch_cli *fc);
void fetch_report_free(struct fetch_cli *fc);
/* The copy of the last response head -w keeps, freed. */
void fetch_report_drop_head(struct fetch_cli *fc);
/* Before each URL; after its output is planned (-D takes the heads); after
 * it is done (-w, which may turn a success into EXIT_WRITE). */
void fetch_report_begin(struct fetch_cli *fc, size_t index);
void fetch_report_heads(struct fetch_cli *fc);
int fetch_report_end(struct fetch_cli *fc, int status);
/* Every event of the library, before fetch_out.c handles it. */
void fetch_report_event(struct fetch_cli *fc, const struct sk_fetch_event *ev);
/* fetch_out.c: n bytes to standard output, bounded like the body's writes.
 * 0 or a negative code. */
int fetch_write_stdout(struct fetch_cli *fc, const char *p, size_t n);
/* The same to -D FILE. */
int fetch_write_dump(struct fetch_cli *fc, const char *p, size_t n);

/* fetch_out.c: n bytes to standard error, bounded; a lost line is no failure. */
void fetch_stderr(struct fetch_cli *fc, const char *p, size_t n);
/* Appends p[0..n) to what h holds for standard error, standard output or
 * -D FILE: false when memory ran out (then write it now). */
enum fetch_held_to { FETCH_HELD_ERR, FETCH_HELD_OUT, FETCH_HELD_DUMP };
bool fetch_held_add(struct fetch_held *h, enum fetch_held_to to, const char *p, size_t n);
/* The board of a parallel run (on a terminal) taken off the screen before
 * a line goes to fd, when that shows on the terminal: true if it was;
 * then fetch_board_back(fc, true) after the line draws it again. */
bool fetch_board_off(struct fetch_cli *fc, int fd);
void fetch_board_back(struct fetch_cli *fc, bool off);

/* fetch_progress.c */
void fetch_progress_start(struct fetch_progress *pg, bool enabled, uint64_t total,
                          uint64_t done);
void fetch_progress_update(struct fetch_progress *pg, uint64_t done);
void fetch_progress_end(struct fetch_progress *pg);
/* --parallel on a terminal: one line per transfer under way and a total,
 * redrawn in place (ANSI cursor-up and clear-line). */
struct fetch_board {
    unsigned drawn; /* lines on the screen */
    uint64_t last_ms;
};
struct fetch_board_row {
    const char *name;                /* NULL: the slot is free */
    const struct fetch_progress *pg;
};
void fetch_board_clear(struct fetch_board *b);
/* At most ten times a second unless force. */
void fetch_board_draw(struct fetch_board *b, const struct fetch_board_row *rows, unsigned n,
                      size_t done, size_t total, bool force);

#endif
