/* sockit fetch: declarations shared by the src/fetch_*.c files. */
#ifndef SOCKIT_FETCH_H
#define SOCKIT_FETCH_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sockit.h"

/* Exit statuses of `sockit fetch` (documented in --help and README). */
enum fetch_exit {
    FX_OK = 0,
    FX_FAIL = 1,      /* anything not below (out of memory...) */
    FX_USAGE = 2,     /* bad command line */
    FX_RESOLVE = 3,   /* host name did not resolve */
    FX_CONNECT = 4,   /* no address accepted the connection */
    FX_TLS = 5,       /* TLS handshake or certificate verification failed */
    FX_HTTP = 6,      /* final status outside 2xx (body not saved) */
    FX_PROTO = 7,     /* malformed response, bad redirect, redirect limit */
    FX_TRUNCATED = 8, /* the body ended early (length, final chunk, TLS close) */
    FX_TIMEOUT = 9,   /* connect timeout, stalled server, --max-time */
    FX_WRITE = 10,    /* output file: exists, cannot be created or written */
    FX_CHECKSUM = 11, /* --sha256 did not match (body not saved) */
};

#define FETCH_HEADERS_MAX 64
#define FETCH_BUF_SIZE (256 * 1024) /* one read; also bounds the response head */
#define FETCH_INTERIM_MAX 16         /* 1xx responses skipped before the final one */

struct fetch_opts {
    const char *url;
    const char *output;      /* -o; NULL: name from the URL; "-": stdout */
    const char *cacert;
    const char *headers[FETCH_HEADERS_MAX]; /* -H "Name: value" */
    size_t nheaders;
    bool insecure, silent, head, resume, no_fail, allow_downgrade, sync;
    bool has_sha256;
    unsigned char sha256[32]; /* --sha256: the expected digest of the body */
    long max_redirs;         /* 0: do not follow */
    long retries;
    int retry_delay_ms;
    int connect_timeout_ms;  /* per connection set-up (TCP + TLS) */
    int idle_timeout_ms;     /* longest wait for the next byte */
    int max_time_ms;         /* whole run; 0: none */
};

struct fetch_progress {
    bool enabled;
    uint64_t total; /* 0: unknown */
    uint64_t done;
    uint64_t start_ms, last_ms;
    bool drawn;
};

/* Where the body goes. */
struct fetch_sink {
    enum { SINK_DISCARD, SINK_FD, SINK_FILE } kind;
    int fd;                 /* SINK_FD: standard output, or a device or FIFO */
    struct sk_outfile *of;  /* SINK_FILE */
    struct fetch_progress *pg;
    void *md;               /* EVP_MD_CTX * with --sha256, else NULL */
};

/* -C state: FILE.part and its validator file FILE.part.meta. */
struct fetch_resume {
    bool active;
    char part[PATH_MAX], meta[PATH_MAX];
    uint64_t offset;     /* bytes already in the part that we ask to continue from */
    uint64_t total;      /* the whole file's size, 0: unknown */
    char validator[512]; /* ETag (strong) or Last-Modified of the part's data */
};

/* A parsed final or redirect response: what outlives the I/O buffer. */
struct fetch_resp {
    int status;
    struct sk_http_framing framing;
    char location[SK_URL_TARGET_MAX + SK_HOST_MAX + 32];
    bool has_location;
    char validator[512]; /* strong ETag, else Last-Modified; "" if none */
    bool has_range;      /* Content-Range present */
    uint64_t range_start, range_end, range_total; /* range_total 0: "*" */
    bool range_unsatisfied; /* "bytes * / total" form */
    long retry_after_ms;    /* -1: none */
};

struct fetch_state {
    const struct fetch_opts *o;
    uint64_t deadline_ms;        /* --max-time, absolute; 0: none */
    struct sk_tls_ctx *tls;      /* created on the first https URL */
    char *buf;                   /* FETCH_BUF_SIZE bytes of I/O buffer */
    FILE *hdr_out;               /* where response heads go; NULL with -s */
    const char *out_path;        /* output file; NULL for stdout or -I */
    bool out_noreplace;          /* the name came from the URL: never clobber */
    bool out_special;            /* -o names a device or FIFO: written in place */
    bool out_magic;              /* out_path is a /proc link to a pipe (/dev/stdout) */
    char url_text[SK_URL_TARGET_MAX + SK_HOST_MAX + 32]; /* the URL as asked */
    struct fetch_resume rs;
    /* Outcome of the last attempt, for messages and the retry decision. */
    char msg[600];
    int last_status;
    long retry_after_ms;
    bool expired;                /* --max-time passed: never retry */
    bool complete;               /* -C: the part already held the whole file */
    bool restart;                /* -C: the part cannot be continued; retry from 0 */
    bool sent_range;             /* the last request asked for a Range (-C, or -H) */
};

/* The signal that asked to stop (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE,
 * SIGXCPU, SIGUSR1, SIGUSR2), or 0. */
extern volatile sig_atomic_t fetch_cancel;
/* The socket of the current connection, or -1: the signal handler shuts it
 * down, which wakes a wait that began just before the signal came (the
 * flag alone would be seen only after the next byte or the idle timeout). */
extern volatile sig_atomic_t fetch_conn_fd;

/* Records a one-line reason in fs->msg; returns code. */
int fetch_fail(struct fetch_state *fs, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The transfer was stopped by fetch_cancel's signal: 1, or 10 for SIGPIPE. */
int fetch_interrupted(struct fetch_state *fs, const char *doing);
/* Maps a libsockit error met while `doing` something to an exit status. */
int fetch_fail_sk(struct fetch_state *fs, int err, const char *doing);
/* The deadline for the next wait: now + ms, capped by --max-time. */
uint64_t fetch_deadline(const struct fetch_state *fs, int ms);

/* Standard output, a FIFO or a device cannot be bounded by poll(): a pipe
 * write waits until all of it fits, opening a FIFO waits for a reader.
 * While ticks are on, SIGALRM interrupts such a call every FETCH_TICK_MS so
 * that its loop looks at the deadline and the cancel flag. */
#define FETCH_TICK_MS 100
void fetch_ticks(bool on);
/* Writes n bytes to fd (standard output or error, a FIFO, a device; `what`
 * names it), bounded by --idle-timeout (no progress) and --max-time, and
 * stopped by a signal. Returns an exit status. */
int fetch_write_fd(struct fetch_state *fs, int fd, const char *p, size_t n, const char *what);
/* A "sockit: ..." line on standard error once the transfer has begun:
 * bounded like fetch_write_fd (a stalled stderr must not hang the exit),
 * written even after a signal; a lost line is no failure. */
void fetch_notice(struct fetch_state *fs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fetch_run.c: one attempt, redirects included. Returns an exit status. */
int fetch_attempt(struct fetch_state *fs, const struct sk_url *start);

/* fetch_io.c */
int fetch_connect(struct fetch_state *fs, const struct sk_url *u, struct sk_conn **out);
int fetch_send_request(struct fetch_state *fs, struct sk_conn *c, const struct sk_url *u,
                       bool head, bool cross_origin);
/* Reads the head of the final (non-1xx) response into fs->buf; *head_len
 * is its length and *filled the bytes in the buffer. */
int fetch_read_head(struct fetch_state *fs, struct sk_conn *c, struct sk_http_resp *r,
                    struct sk_http_header *h, size_t *head_len, size_t *filled);
int fetch_body(struct fetch_state *fs, struct sk_conn *c, const struct sk_http_framing *f,
               struct fetch_sink *sink, size_t pre_off, size_t pre_len);

/* fetch_resume.c */
int fetch_resume_open(struct fetch_state *fs, struct sk_outfile *of);
bool fetch_resume_usable(const struct fetch_state *fs);
int fetch_resume_save(struct fetch_state *fs, const struct fetch_resp *rp, struct sk_outfile *of);
void fetch_resume_finish(struct fetch_state *fs, const struct sk_outfile *part, bool committed);
int fetch_parse_content_range(const char *v, size_t n, struct fetch_resp *rp);

/* fetch_digest.c: --sha256 */
int fetch_parse_sha256(const char *hex, unsigned char out[32]);
/* Starts the digest when asked, over prefix_len bytes of prefix_fd first. */
int fetch_digest_begin(struct fetch_state *fs, struct fetch_sink *sink, int prefix_fd,
                       uint64_t prefix_len);
int fetch_digest_check(struct fetch_state *fs, struct fetch_sink *sink);
void fetch_digest_free(struct fetch_sink *sink);

/* fetch_progress.c */
void fetch_progress_start(struct fetch_progress *pg, bool enabled, uint64_t total);
void fetch_progress_add(struct fetch_progress *pg, size_t n);
void fetch_progress_end(struct fetch_progress *pg);

#endif
