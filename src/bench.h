/* sockit bench: declarations shared by its files.
 *
 *   cmd_bench.c     command line, threads, the run's phases, live line
 *   bench_opts.c    parsing and checking the options
 *   bench_tcp.c     one worker's TCP connections: greeting, raw, connect and
 *                   idle modes, closed and open loop
 *   bench_udp.c     one worker's UDP sockets (sendmmsg / recvmmsg)
 *   bench_match.c   recognising replies in a byte stream
 *   bench_limits.c  pre-flight checks: open files, ephemeral ports
 *   bench_report.c  the final report, as text or one JSON object
 *
 * Every worker thread runs its own sk_loop over its share of the
 * connections and owns its counters and histograms; the main thread only
 * reads the few atomics a worker publishes, and merges the rest after
 * joining the threads. */
#ifndef SOCKIT_BENCH_H
#define SOCKIT_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "cli_tls.h"
#include "sockit.h"

enum bench_mode {
    BENCH_REQUEST, /* request/reply over kept-alive connections (default) */
    BENCH_CONNECT, /* connect, read the greeting, close; again */
    BENCH_IDLE,    /* open every connection, hold it, close it */
    BENCH_UDP,     /* datagrams */
};

/* How the end of a reply is recognised. */
enum match_kind {
    MATCH_EXACT, /* the reply is exactly these bytes (checked) */
    MATCH_LEN,   /* the reply is this many bytes (not checked) */
    MATCH_UNTIL, /* the reply ends with this string */
};

struct match_spec {
    enum match_kind kind;
    const char *bytes; /* EXACT: the reply; UNTIL: the terminator */
    size_t len;        /* EXACT/UNTIL: length of bytes; LEN: reply length */
    size_t *fail;      /* UNTIL: KMP failure table (len entries) */
    /* EXACT: a line the server may send instead of a reply, saying it is
     * going away (the greeting protocol's GREETING_SHUTDOWN); NULL: none.
     * Its first byte differs from the reply's. */
    const char *bye;
    size_t bye_len;
};

/* Streaming state of one connection's reply matcher; zero-fill to start. */
struct match_state {
    size_t pos; /* bytes of the current reply seen (EXACT, LEN) or terminator matched (UNTIL) */
    size_t bye; /* bytes of the spec's bye line seen, in its place */
    bool said_bye; /* the whole bye line came: nothing may follow it */
};

struct bench_opts {
    const char *target;  /* HOST:PORT as given */
    struct sk_endpoint ep;
    enum bench_mode mode;
    enum sk_framing framing;
    bool raw;            /* --raw: request bytes and reply matcher given */
    unsigned conns;      /* -c */
    unsigned threads;    /* --threads */
    unsigned depth;      /* -P: requests in flight per connection */
    uint64_t requests;   /* -n; 0: run for duration_s */
    double duration_s;   /* -d */
    double warmup_s;     /* --warmup: excluded from every figure */
    double rate;         /* --rate: requests/s in total; 0: closed loop */
    double idle_s;       /* --idle: how long to hold the connections */
    unsigned probe;      /* --probe: idle mode, held connections that get one round trip */
    double timeout_s;    /* a reply (or connect) later than this is an error */
    unsigned connect_concurrency; /* connects in progress at once, per thread */
    const char *message; /* --message (greeting protocol) */
    char *req;           /* one request, as sent (owned) */
    size_t req_len;
    char *greeting;      /* bytes expected first on a new connection, or NULL (owned) */
    size_t greeting_len;
    struct match_spec reply; /* owned buffers */
    bool json;           /* --json: one JSON object on stdout */
    bool live;           /* live line on stderr (a terminal, not --no-live) */
    bool quiet;          /* --quiet: no warnings from the pre-flight checks */
    struct cli_tls tls;  /* --tls and its options */
    bool tls_resume;     /* --tls-resume: each connection resumes its last session */
};

/* Error classes, counted separately. */
enum bench_err {
    BERR_CONNECT,  /* connect failed (refused, unreachable, no ports) */
    BERR_RESET,    /* connection reset or closed by the server mid-run */
    BERR_TIMEOUT,  /* no reply (or greeting, or connect) within timeout */
    BERR_PROTOCOL, /* a reply that is not what the protocol says */
    BERR_LOST,     /* UDP: a datagram whose reply never came */
    BERR__COUNT
};

struct bench_stats {
    uint64_t sent;     /* measured requests sent (warm-up excluded) */
    uint64_t replies;  /* measured replies received */
    uint64_t errors[BERR__COUNT];
    uint64_t connects; /* connections established (any phase) */
    uint64_t bytes_out, bytes_in;
    uint64_t open;     /* idle mode: connections open when the hold began */
    uint64_t sessions_failed; /* established connections that ended in an error */
    uint64_t resumed;  /* TLS: connections whose handshake resumed a session */
    uint64_t reconnects; /* sessions a draining server ended with its bye line,
                            their unanswered requests sent again on a new one */
};

/* What every worker shares, set before the threads start and read-only
 * afterwards (except the atomics). Times are on the sk_now_ns() clock. */
struct bench_shared {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint64_t t0_ns;            /* the run starts */
    uint64_t measure_ns;       /* warm-up ends, measuring starts */
    uint64_t end_ns;           /* -d: measuring ends; 0 with -n */
    atomic_bool stop;          /* SIGINT, or a fatal error in one worker */
    atomic_bool probe_now;     /* --probe: SIGUSR1 came, probe during the hold */
    struct sk_tls_ctx *tls;    /* --tls: the one client context of every worker
                                * (made and freed by the main thread) */
    const char *tls_name;      /* the name sent as SNI and verified */
};

struct bench_conn;
struct bench_udp_sock;
struct udp_batch;

struct bench_req {
    uint64_t intended; /* when it should have been sent (open loop), else = sent */
    uint64_t sent;
};

struct bench_worker {
    const struct bench_opts *o;
    struct bench_shared *sh;
    unsigned id;
    pthread_t thread;
    struct sk_loop *loop;
    unsigned nconns;          /* this worker's share of -c */
    unsigned nprobe;          /* idle mode: this worker's share of --probe */
    double rate;              /* this worker's share of --rate */
    uint64_t quota;           /* -n: measured requests still to send */
    bool has_quota;

    struct bench_conn *conns; /* TCP modes */
    struct sk_stream_group *streams; /* TCP modes: the connections' streams */
    struct bench_udp_sock *socks; /* UDP mode */
    struct udp_batch *batch;  /* UDP mode: recvmmsg headers */
    struct bench_req *slots;  /* nconns * depth in-flight slots */
    char *reqs;               /* the request repeated depth times */
    char *rbuf;               /* UDP mode: read scratch */
    size_t rbuf_size;

    unsigned next_connect;    /* first connection never started yet */
    unsigned connecting;      /* connects in progress */
    unsigned greeting;        /* connections waiting for their greeting */
    uint64_t inflight;        /* requests sent and not yet answered, all connections */
    unsigned settled;         /* connections that reached ready or failed for good */
    unsigned rr;              /* open loop: round-robin cursor */
    bool ever_connected;
    unsigned failures;        /* connection failures since the last success */
    bool gave_up;             /* too many failures in a row: the run ended early */

    /* open loop schedule */
    uint64_t sched_start;     /* intended time of request 0 (0: not started) */
    double interval_ns;
    uint64_t scheduled;       /* requests whose intended time has come */
    uint64_t dispatched;      /* of those, sent */

    struct sk_timer tick;     /* every 100 ms: timeouts, publishing */
    struct sk_io pace;        /* open loop: a timerfd at the next intended send
                               * (sk_timer has only millisecond resolution) */
    bool pace_on;             /* pace is registered with the loop */
    struct sk_timer end;      /* -d / --idle: the end */
    struct sk_timer kick;     /* start, at t0 */
    bool draining;            /* -d is over (idle mode: the probe is out):
                               * waiting for the replies in flight */
    bool probed, probing;     /* idle mode: the probe was sent; its replies are due */
    bool hold_over;           /* idle mode: the hold's end came (after the probe: finish) */
    bool finishing;

    struct sk_hist lat;       /* from intended send time */
    struct sk_hist svc;       /* from actual send time (open loop only) */
    struct bench_stats st;
    uint64_t hold_start_ns, hold_end_ns; /* idle mode */
    uint64_t first_ns, last_ns; /* first measured send, last measured reply */

    /* published for the main thread (relaxed) */
    _Atomic uint64_t pub_replies;
    _Atomic uint64_t pub_errors;
    atomic_bool pub_settled;  /* idle mode: all connections opened or failed */
    atomic_bool pub_probed;   /* idle mode: the probe is over (pub_replies final) */
    atomic_bool done;
    int fatal;                /* negative code that ended the run, or 0 */
    char fatal_what[64];
    char tls_err[256];        /* the last failed handshake's reason, in words */
    int framing_seen;         /* -1, or the server's framing when a greeting
                               * showed it is not ours (fatal is SK_EPROTO) */
};

/* --udp: the largest --message whose tagged reply fits a datagram
 * ("Hello, " M "#" 16 hex digits "!" in 65507 bytes). */
#define BENCH_UDP_MESSAGE_MAX (65507 - 8 - 17)

/* TCP: the most request bytes in flight on one connection (-P times the
 * request). */
#define BENCH_BURST_MAX (16 << 20)

/* bench_opts.c: returns 0, CLI_DONE (--help, --version) or an exit status. */
int bench_parse(int argc, char **argv, struct bench_opts *o);
void bench_opts_free(struct bench_opts *o);
extern const char bench_help[];

/* bench_match.c: 0 or SK_ERR(ENOMEM). */
int match_prepare(struct match_spec *m);
/* Feeds data[0..n); returns the number of replies completed (>= 0), or
 * SK_EPROTO when an EXACT reply differs. */
long match_feed(const struct match_spec *m, struct match_state *st, const char *data, size_t n);
/* Feeds bytes that may be the spec's bye line (at a reply's or the
 * greeting's start): 0 (all taken, st->said_bye once it is complete) or
 * SK_EPROTO (not the bye line, or bytes after it). */
long match_bye(const struct match_spec *m, struct match_state *st, const char *data, size_t n);
/* True when data[0..n) at st's position starts the bye line. */
bool match_bye_starts(const struct match_spec *m, const struct match_state *st, const char *data,
                      size_t n);

/* bench_limits.c: checks (and where possible raises) the limits the run
 * needs. Returns 0, or SK_EUSAGE after printing why it cannot run. */
int bench_limits_check(const struct bench_opts *o);

/* cmd_bench.c: the one place where workers start timers (so that a timer
 * that cannot be started, once sk_timer_start can say so, ends the run
 * with an error in one place). */
void bench_timer_start(struct bench_worker *w, struct sk_timer *t, uint64_t delay_ms,
                       sk_timer_cb cb);

/* cmd_bench.c: publishes the counters the live line reads. */
void bench_publish(struct bench_worker *w);
/* cmd_bench.c: starts a worker's periodic tick: it publishes, then calls
 * the mode's tick (stop: the run is stopped, finish), and runs again until
 * the worker finishes. */
void bench_tick_start(struct bench_worker *w);
void bench_tcp_tick(struct bench_worker *w, bool stop, uint64_t now, uint64_t limit);
void bench_udp_tick(struct bench_worker *w, bool stop, uint64_t now, uint64_t limit);

/* bench_tcp.c / bench_udp.c: set up a worker's share (before the thread
 * starts), run it (in the thread), release it. */
int bench_tcp_init(struct bench_worker *w);
void bench_tcp_run(struct bench_worker *w);
void bench_tcp_free(struct bench_worker *w);
int bench_udp_init(struct bench_worker *w);
void bench_udp_run(struct bench_worker *w);
void bench_udp_free(struct bench_worker *w);

/* bench_report.c. A result is one run's, or the merge of several
 * (bench_merge.c): the same fields, the same reports. */
struct bench_result {
    struct sk_hist lat, svc;
    struct bench_stats st;
    double elapsed_s;   /* the measured window (merged: the union of the windows) */
    double throughput;  /* replies/s (merged: the sum of each result's) */
    double hold_s;      /* idle mode */
    double open_s;      /* idle mode: time to open every connection */
    /* The measured window on the wall clock (microseconds since the epoch),
     * so that results from several hosts can be lined up; merged: the
     * union (start..end) and the common part (common_start..common_end,
     * empty when common_end <= common_start). */
    int64_t start_us, end_us, common_start_us, common_end_us;
    uint64_t sources;   /* results merged into this one (a run: 1) */
    bool interrupted;
    bool gave_up;
};
uint64_t bench_errors_total(const struct bench_stats *st);
extern const char *const bench_err_names[BERR__COUNT]; /* as in the report */
const char *bench_mode_name(enum bench_mode m);         /* "request", ... */
/* o->target NULL: the merged results had different targets. */
void bench_report_text(const struct bench_opts *o, const struct bench_result *r);
void bench_report_json(FILE *f, const struct bench_opts *o, const struct bench_result *r);
/* bench_merge.c: `sockit bench merge FILE... [--json]`. */
int bench_merge_main(int argc, char **argv);

/* Shared by the worker files: the phase a request sent at t belongs to. */
static inline bool bench_measured(const struct bench_shared *sh, uint64_t t)
{
    return t >= sh->measure_ns && (sh->end_ns == 0 || t < sh->end_ns);
}

#endif
