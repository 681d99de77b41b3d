/* The HTTP client's pieces (lib/fetch*.c), shared inside lib/ only. */
#ifndef SOCKIT_FETCH_INT_H
#define SOCKIT_FETCH_INT_H

#include <limits.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "decode_int.h"
#include "outfile_int.h"
#include "sockit.h"
#include "stream_int.h"

#define SK__FETCH_INTERIM_MAX 16         /* 1xx responses skipped before the final one */
#define SK__FETCH_URL_MAX (SK_URL_TARGET_MAX + SK_HOST_MAX + 32)
#define SK__FETCH_CRED_MAX 256 /* bytes of a user name or password, with the NUL */
/* One read from the network (and one write to the output for a large
 * body: main's blocking client read 256 KiB at a time too). A read never
 * has to be split to fit the head buffer: a head is refused past
 * SK_HTTP_HEAD_MAX. */
#define SK__FETCH_READ_SIZE (256 * 1024)
/* The I/O buffer: the request, the head (a partial one and a read after
 * it), the small reads gathered for the sink. */
#define SK__FETCH_BUF_SIZE (SK_HTTP_HEAD_MAX + SK__FETCH_READ_SIZE)
/* Reads smaller than this are gathered before they go to the sink. */
#define SK__FETCH_GATHER_MIN (32 * 1024)
_Static_assert(SK_HTTP_HEAD_MAX + SK__FETCH_READ_SIZE <= SK__FETCH_BUF_SIZE,
               "a read after a partial head fits the buffer");

/* The first published struct sk_fetch_opts ended with user_agent. */
#define SK__FETCH_OPTS_SIZE_0 \
    (offsetof(struct sk_fetch_opts, user_agent) + sizeof(((struct sk_fetch_opts *)0)->user_agent))

/* The layout before http_version was appended ended with password. */
#define SK__FETCH_OPTS_SIZE_1 \
    (offsetof(struct sk_fetch_opts, password) + sizeof(((struct sk_fetch_opts *)0)->password))

/* The layout before max_recv_speed was appended ended with http_version:
 * its sizeof, padding included, is where max_recv_speed begins. */
#define SK__FETCH_OPTS_SIZE_2 offsetof(struct sk_fetch_opts, max_recv_speed)

/* Where the body goes. */
struct sk__fetch_sink {
    enum { SK__SINK_DISCARD, SK__SINK_CALL, SK__SINK_FILE } kind;
    struct sk_outfile *of; /* SK__SINK_FILE */
    bool progress;         /* report SK_FETCH_EV_PROGRESS */
    uint64_t done, total;
    void *md;              /* EVP_MD_CTX * with sha256, else NULL */
    struct sk__decoder *dec; /* COMPRESSED, a coded body: the bytes go through it */
};

/* RESUME state: FILE.part and its validator file FILE.part.meta. */
struct sk__fetch_resume {
    bool active;
    char part[PATH_MAX], meta[PATH_MAX];
    uint64_t offset;     /* bytes already in the part that we ask to continue from */
    uint64_t total;      /* the whole file's size, 0: unknown */
    char validator[512]; /* ETag (strong) or Last-Modified of the part's data */
};

/* A parsed final or redirect response: what outlives the I/O buffer. */
struct sk__fetch_resp {
    int status;
    struct sk_http_framing framing;
    char location[SK__FETCH_URL_MAX];
    bool has_location;
    char validator[512]; /* strong ETag, else Last-Modified; "" if none */
    bool has_range;      /* Content-Range present */
    uint64_t range_start, range_end, range_total; /* range_total 0: "*" */
    bool range_unsatisfied; /* "bytes * / total" form */
    long retry_after_ms;    /* -1: none */
    enum sk__coding coding; /* Content-Encoding */
    int coding_rc;          /* sk__coding_parse's verdict: 0, SK_EUNSUPPORTED, SK_EPARSE */
    char coding_text[64];   /* the value as sent (cut), for messages */
};

/* One exchange (connect, TLS, request, head, body) as a state machine
 * driven by its connection's events on the transfer's own loop: the plain
 * stream's callbacks, or the reads of the TLS connection. */
enum sk__fetch_phase {
    SK__PH_IDLE,    /* no connection */
    SK__PH_CONNECT, /* TCP connect and TLS handshake */
    SK__PH_TUNNEL,  /* through a proxy: CONNECT sent, its reply coming in */
    SK__PH_HEAD,    /* the request going out, the head coming in */
    SK__PH_READY,   /* the final head is in f->buf: the caller decides */
    SK__PH_BODY,    /* the body streaming into the sink */
    SK__PH_DONE,    /* the exchange is over: rc says how */
};

struct sk__fetch_wire {
    struct sk_loop *loop;         /* the transfer's private loop, or a parallel run's */
    bool own_loop;                /* loop is the transfer's own (freed with it) */
    struct sk_stream_group *g;    /* its one plain stream's group */
    struct sk_stream s;           /* the connection: TCP, with TLS for https */
    struct sk_io wake;            /* the cancel's eventfd (written by a signal) */
    int wake_fd;
    struct sk_timer timer;        /* the phase's deadline */
    /* max_recv_speed: the body's bytes since rate_t0 (its start); over the
     * budget the transfer is paused (no reads; HTTP/2: h2_owed bytes of
     * its stream's window kept back) until the pace timer */
    struct sk_timer pace;
    bool paused;
    uint64_t rate_t0, rate_bytes;
    size_t h2_owed;
    /* low_speed_limit: a tick each second counts spd_bytes; slow_since:
     * when the run of slow seconds began (0: none) */
    struct sk_timer tick;
    uint64_t tick_t0, spd_bytes, slow_since;
    enum sk__fetch_phase phase;
    bool live;                    /* s is open or not yet released */
    bool resolving;               /* start(): the route's name is being looked up */
    bool sending;                 /* the request is not all out yet */
    bool tls_wanted;              /* https: TLS goes on the connection */
    size_t reqlen;                /* the request: f->buf[0..reqlen) until it is sent */
    int rc;                       /* the exchange's outcome (DONE) */
    uint64_t connect_deadline;    /* CONNECT: absolute, 0: none */
    uint64_t last_ms;             /* the last progress */
    char where[SK_HOST_MAX + 16]; /* HOST:PORT, for messages */
    char doing[2 * SK_HOST_MAX + 80]; /* what the CONNECT phase is doing */
    /* The head: f->buf[0..have); once READY the head is its first head_len
     * bytes and the rest is body. */
    size_t have, head_len;
    unsigned interim;
    struct sk_http_resp resp;
    struct sk_http_header hdrs[SK_HTTP_HEADERS_MAX];
    /* The body. */
    struct sk_http_framing fr;
    struct sk__fetch_sink *sink;
    uint64_t left;                /* LENGTH: bytes still due */
    struct sk_chunked chunked;
    size_t pend;                  /* body bytes gathered in f->buf for the sink */
    bool gather;                  /* f->buf is free for it (the head is used) */
    bool told_connected;          /* SK_FETCH_EV_CONNECTED went for this connection */
    /* The connection's two ends as "ADDRESS:PORT", looked up once for its
     * events (CONNECTED, then every REUSED); addr_known: they are filled */
    bool addr_known;
    char addr_peer[64], addr_local[64];
    /* Reuse (HTTP/1.1 keep-alive): the connection of the last exchange may
     * stay open, idle, for the next request to the same route. */
    bool idle;                    /* s is open and kept, between exchanges */
    bool reused;                  /* this exchange runs on a kept connection */
    bool stale;                   /* ... which ended before a byte of response */
    bool keep_ok;                 /* the head allows reuse (HTTP/1.1, no close) */
    bool body_done;               /* the body ended at its framing, nothing after it */
    char key[2 * SK_HOST_MAX + 1100]; /* the route of s: scheme, origin or proxy */
    struct sk__fetch_pool *pool;  /* the parallel run's pool s is in (HTTP/2), else NULL */
    struct sk__fetch_h2 *h2;      /* h2 (ALPN, or h2c): its session (fetch_h2.c),
                                     this transfer's, or another's it joined */
    struct sk__fetch_h2st {       /* this exchange's stream on it */
        int32_t sid;              /* 0: none */
        bool head_done;           /* its final head is in f->buf */
        bool in_head;             /* a head (interim or final) is coming in */
        bool closed;              /* the stream is over ... */
        uint32_t close_code;      /* ... with this error code (0: NO_ERROR) */
        bool rst_in;              /* the server reset it */
        size_t trailer_bytes;     /* trailers: only counted */
        int fail;                 /* a failure recorded in a callback */
    } h2st;
};

/* The proxy of the exchange under way (fetch_proxy.c). */
#define SK__FETCH_CONNECT_HEAD_MAX 8192 /* the proxy's reply to CONNECT */
/* The SOCKS client's reading of the proxy's replies (RFC 1928, RFC 1929;
 * SOCKS4), a pure state machine fed the bytes in any split: sk__socks5_feed
 * says what comes next. Every reply is bounded (at most 262 bytes) and checked
 * byte by byte; a byte beyond the reply awaited is the proxy's fault. */
enum sk__socks_step {
    SK__SOCKS_MORE = 0,      /* the reply is not complete yet */
    SK__SOCKS_SEND_AUTH,     /* method 2 chosen: the username/password request goes */
    SK__SOCKS_SEND_CONNECT,  /* no authentication, or it succeeded: CONNECT goes */
    SK__SOCKS_UP,            /* CONNECT succeeded: the tunnel is up */
    SK__SOCKS_EVERSION = -1, /* a reply of another version (the byte: bad) */
    SK__SOCKS_ENOMETHOD = -2, /* 0xFF: none of the offered methods */
    SK__SOCKS_EMETHOD = -3,  /* a method not offered (bad) */
    SK__SOCKS_EAUTHVER = -4, /* the authentication reply's version is not 1 (bad) */
    SK__SOCKS_EAUTH = -5,    /* the credentials refused (status: bad) */
    SK__SOCKS_EREP = -6,     /* CONNECT failed: REP (bad) other than 0 */
    SK__SOCKS_EGARBAGE = -7, /* a reserved byte not 0, an unknown ATYP, an empty name */
    SK__SOCKS_EEXTRA = -8,   /* extra bytes after the reply awaited */
};
/* SOCKS4 and SOCKS4a have one reply (8 bytes: VN 0, CD 90 granted): the
 * same reader awaits it (W_CONNECT4, from sk__socks4_init), EVERSION for a
 * VN not 0, EREP for a CD not 90, UP once its 8 bytes are in. */
enum sk__socks_wait {
    SK__SOCKS_W_METHOD,
    SK__SOCKS_W_AUTH,
    SK__SOCKS_W_CONNECT,
    SK__SOCKS_W_CONNECT4,
    SK__SOCKS_W_DONE
};
struct sk__socks5 {
    unsigned char wait;       /* enum sk__socks_wait: the reply awaited */
    bool offer_auth;          /* method 2 was offered (credentials given) */
    unsigned char bad;        /* the byte that failed it */
    unsigned short got, need; /* bytes of the reply so far; its length (0: not known) */
    size_t extra;             /* EEXTRA: how many bytes */
};
void sk__socks5_init(struct sk__socks5 *s, bool offer_auth);
void sk__socks4_init(struct sk__socks5 *s);
/* The next bytes from the proxy; the step they lead to (a failure is final). */
int sk__socks5_feed(struct sk__socks5 *s, const unsigned char *p, size_t n);
/* The requests, into out (at least SK__SOCKS5_MSG_MAX bytes, SOCKS4's
 * too: 8 + 256 + 256); their length, 0 when a name, user or password is
 * over 255 bytes (or empty name). */
#define SK__SOCKS5_MSG_MAX 520
size_t sk__socks5_hello(unsigned char *out, bool offer_auth);
size_t sk__socks5_auth(unsigned char *out, const char *user, const char *password);
/* atyp 1 (addr: 4 bytes), 4 (16 bytes) or 3 (addr: a name, NUL-terminated). */
size_t sk__socks5_connect(unsigned char *out, int atyp, const void *addr, unsigned port);
/* REP's meaning, "connection refused by the destination". */
const char *sk__socks5_rep_text(unsigned rep);
/* The SOCKS4 CONNECT: addr4 the origin's IPv4 address, or NULL for
 * SOCKS4a (DSTIP 0.0.0.1, host after the user id); 0 when user or host is
 * over 255 bytes (or host empty). */
size_t sk__socks4_connect(unsigned char *out, const unsigned char *addr4, unsigned port,
                          const char *user, const char *host);
/* CD's meaning, "request rejected or failed". */
const char *sk__socks4_cd_text(unsigned cd);

enum sk__proxy_kind {
    SK__PROXY_HTTP,
    SK__PROXY_SOCKS5,
    SK__PROXY_SOCKS5H,
    SK__PROXY_SOCKS4,
    SK__PROXY_SOCKS4A
};
/* SOCKS4 or SOCKS4a */
#define SK__PROXY_IS_SOCKS4(k) ((k) == SK__PROXY_SOCKS4 || (k) == SK__PROXY_SOCKS4A)
/* "SOCKS4" or "SOCKS5" (both flavours), for messages; "" for HTTP */
const char *sk__proxy_socks_version(enum sk__proxy_kind k);
struct sk__fetch_proxy {
    bool on;                      /* connected to the proxy, not the origin */
    bool tunnel;                  /* https, or any SOCKS: a tunnel, then the origin's bytes */
    bool tunnel_up;               /* the proxy said 2xx to CONNECT (SOCKS: succeeded) */
    enum sk__proxy_kind kind;
    /* SOCKS: the credentials (RFC 1929), the origin's address when the
     * client resolves it (socks5://: alen 4 or 16), the replies' reader */
    char user[SK__FETCH_CRED_MAX], password[SK__FETCH_CRED_MAX];
    bool has_cred;
    unsigned char addr[16];
    size_t alen;
    struct sk__socks5 socks;
    struct sk_url url;            /* the proxy's host and port */
    char where[SK_HOST_MAX + 16]; /* HOST:PORT, for messages */
    char auth[1024];              /* "Basic ..." for Proxy-Authorization; "": none */
    const struct sk_url *origin;  /* what the request inside the tunnel asks */
    bool cross;
};

struct sk_fetch {
    struct sk_fetch_opts o;      /* a copy of the caller's */
    struct sk_fetch_cancel *cx;  /* o.cancel, or own_cancel */
    struct sk_fetch_cancel own_cancel;
    uint64_t deadline_ms;        /* max_time, absolute; 0: none */
    struct sk_tls_ctx *tls;      /* created on the first https URL */
    char *buf;                   /* SK__FETCH_BUF_SIZE bytes of I/O buffer */
    char url_text[SK__FETCH_URL_MAX]; /* the URL as asked */
    struct sk_url start, cur, next;
    struct sk__fetch_resume rs;
    char chunk[64 * 1024];       /* reading back a part for the digest */
    /* Outcome of the last attempt, for messages and the retry decision. */
    char msg[600];
    int last_status;
    long retry_after_ms;
    bool expired;                /* max_time passed: never retry */
    bool complete;               /* RESUME: the part already held the whole file */
    bool restart;                /* RESUME: the part cannot be continued; retry from 0 */
    bool sent_range;             /* the last request asked for a Range (RESUME, or a header) */
    enum sk_fetch_cause cause;   /* the setting the last failure ran into */
    struct sk__fetch_wire w;
    struct sk__fetch_proxy px;
    /* Basic credentials of this run (o.user, else the URL's), for its origin */
    const char *auth_user, *auth_password;
    char url_user[SK__FETCH_CRED_MAX], url_password[SK__FETCH_CRED_MAX];
    /* The last request of the chain: its URL, the redirects before it */
    char url_effective[SK__FETCH_URL_MAX];
    long redirects;
    int connect_status;          /* the last CONNECT reply's status; 0: none */
    /* Inside sk_fetch_run_parallel: the transfer's coroutine (fetch_par.c) */
    struct sk__fetch_co *co;
    /* The output folder, kept open across the object's files outside a
     * parallel run (sk__fetch_outdir) */
    struct sk__outdir outdir;
    /* The names of this sk_fetch_run, outside a parallel run (fetch_resolve.c) */
    struct sk__fetch_dns *dns;
};

static inline unsigned sk__fetch_outfile_flags(const struct sk_fetch *f)
{
    return (f->o.flags & SK_FETCH_NOREPLACE ? SK_OUTFILE_NOREPLACE : 0) |
           (f->o.flags & SK_FETCH_SYNC ? SK_OUTFILE_SYNC : 0);
}

/* The cancel flag stopped the transfer while `doing`. (Other failures are
 * recorded by the public sk_fetch_set_error() and sk_fetch_fail_as().) */
int sk__fetch_interrupted(struct sk_fetch *f, const char *doing);
/* now + ms (none if ms <= 0), capped by max_time. */
uint64_t sk__fetch_deadline(const struct sk_fetch *f, int ms);
/* An event to the application; its verdict (0 or a negative code). */
int sk__fetch_event(struct sk_fetch *f, enum sk_fetch_event_kind kind, const char *data,
                    size_t len, uint64_t done, uint64_t total);
/* The same with the connection's local address (CONNECTED, REUSED). */
int sk__fetch_event_local(struct sk_fetch *f, enum sk_fetch_event_kind kind, const char *data,
                          size_t len, uint64_t total, const char *local);
void sk__fetch_notice(struct sk_fetch *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* fetch_par.c: the waits of a transfer. On its own loop: runs it until
 * stopped. In a parallel run: gives the thread back to the run, which
 * resumes the transfer after its shared loop stopped (maybe for another's
 * event: the caller checks what it waits for). Returns the loop's code. */
int sk__fetch_wait(struct sk_fetch *f);
/* Waits ms (a timer in a parallel run, a sleep otherwise); false when
 * cancelled. */
bool sk__fetch_nap(struct sk_fetch *f, long ms);
/* The shared loop of the parallel run f is in; NULL: none. */
struct sk_loop *sk__fetch_par_loop(const struct sk_fetch *f);
/* The output folder kept open: the parallel run's (one fd for all its
 * transfers), else the object's own. */
struct sk__outdir *sk__fetch_outdir(struct sk_fetch *f);

/* fetch_io.c: n more bytes of the body came (the rate limit's count).
 * True when the rate limit pauses the transfer now: over HTTP/1.1 the
 * caller stops reading, over HTTP/2 its stream's window is kept back
 * (sk__fetch_h2_give on the pace timer). */
bool sk__fetch_rate_count(struct sk_fetch *f, size_t n);
/* fetch_h2.c: the stream's window kept back by the rate limit goes back
 * (the WINDOW_UPDATE sent). 0 or a negative code (the connection is gone). */
int sk__fetch_h2_give(struct sk_fetch *f);

/* fetch_run.c: one attempt, redirects included. */
int sk__fetch_attempt(struct sk_fetch *f);

/* fetch_io.c: the exchange on f->w. */
/* The private loop (made once) and the cancel's wake-up (per run). */
int sk__fetch_wire_begin(struct sk_fetch *f);
/* The end of one sk_fetch_run: the wake-up goes. */
void sk__fetch_wire_finish(struct sk_fetch *f);
/* sk_fetch_free: the loop goes. */
void sk__fetch_wire_end(struct sk_fetch *f);
/* Connects to u, sends the request and reads up to the final (non-1xx)
 * head: then f->w.resp / hdrs describe it, f->buf[0..head_len) holds it
 * and the bytes after it in f->buf are the body's first. */
int sk__fetch_open(struct sk_fetch *f, const struct sk_url *u, bool cross_origin);
/* Streams the body of the open exchange into sink. */
int sk__fetch_body(struct sk_fetch *f, const struct sk_http_framing *fr,
                   struct sk__fetch_sink *sink);
/* Ends the exchange; clean: it ended as the protocol says (TLS close_notify). */
void sk__fetch_close(struct sk_fetch *f, bool clean);
/* fetch_reuse.c: ends the exchange that succeeded: its connection is kept
 * idle for the next request when the response allows it, else closed. */
void sk__fetch_done(struct sk_fetch *f);
/* A redirect's body, when small, read and dropped so that its connection
 * can serve the next hop; false when it was not (then it is closed). */
bool sk__fetch_drain(struct sk_fetch *f, const struct sk_http_framing *fr);
/* An error response's body (4xx, 5xx: not saved), when at most
 * SK__FETCH_DISCARD_MAX bytes (a Content-Length, or chunks up to that),
 * read and dropped so that its connection can serve the next request;
 * false when it was not (then it is closed). The reason recorded stays
 * the caller's to set. */
#define SK__FETCH_DISCARD_MAX (64 * 1024)
bool sk__fetch_discard(struct sk_fetch *f, const struct sk_http_framing *fr);
/* fetch_reuse.c */
/* True when the Connection header fields of r hold the token "close". */
bool sk__fetch_conn_close(const struct sk_http_resp *r);
/* The route of the exchange to u (after sk__fetch_proxy_route), what a
 * kept connection must match to serve it: the scheme and origin; through
 * a plain-http proxy, the proxy and its credentials (any http origin);
 * through a tunnel, those and the origin. */
/* The connection to u runs HTTP/2 from its first byte, without TLS (h2c,
 * prior knowledge): http:// with SK_FETCH_HTTP_2_PRIOR_KNOWLEDGE, direct or
 * through a SOCKS5 proxy (a plain HTTP proxy gets HTTP/1.1, as curl's). */
bool sk__fetch_h2c(const struct sk_fetch *f, const struct sk_url *u);
void sk__fetch_route_key(const struct sk_fetch *f, const struct sk_url *u, char *out, size_t cap);
/* The kept connection is still open: nothing came on it while it was idle
 * (the server's FIN, a reset, a TLS alert or stray bytes: not reused). */
bool sk__fetch_still_open(struct sk_fetch *f);

/* fetch_resolve.c */
struct addrinfo;
/* u's addresses for the connect (*ai: until sk__fetch_resolve_put, with
 * no wait between), or a negative code (recorded: could not resolve,
 * interrupted, timed out...). In a parallel run a name is looked up on a
 * thread while the transfer waits on the loop. */
int sk__fetch_resolve(struct sk_fetch *f, const struct sk_url *u, const struct addrinfo **ai);
/* The addresses of sk__fetch_resolve are no longer used. */
void sk__fetch_resolve_put(struct sk_fetch *f, const struct addrinfo *ai);
/* A run's names: each host and port looked up once (at most 64 kept, the
 * least recently used goes; failures are not kept). loop: lookups of names
 * go to a thread whose result comes on it; NULL: they block. */
struct sk__fetch_dns;
struct sk__fetch_dns_entry;
struct sk__fetch_dns *sk__fetch_dns_new(struct sk_loop *loop);
/* Frees d; lookups under way finish on their threads, which free their own. */
void sk__fetch_dns_free(struct sk__fetch_dns *d);
/* host:port's entry: the one kept, else a new lookup. NULL: every slot's
 * lookup is under way. */
struct sk__fetch_dns_entry *sk__fetch_dns_get(struct sk__fetch_dns *d, const char *host,
                                              unsigned port);
/* The lookup's result (true) or not yet (false). */
bool sk__fetch_dns_result(const struct sk__fetch_dns_entry *e, int *rc,
                          const struct addrinfo **ai);
/* e holds host:port. */
bool sk__fetch_dns_is(const struct sk__fetch_dns_entry *e, const char *host, unsigned port);
/* How many lookups d made (its tests). */
unsigned sk__fetch_dns_lookups(const struct sk__fetch_dns *d);
/* fetch_par.c: where f's run keeps its names: the parallel run's, else f's own. */
struct sk__fetch_dns **sk__fetch_dns_slot(struct sk_fetch *f);

/* fetch_proxy.c */
/* Decides how u is reached: f->px.on (and .tunnel for https) when through
 * a proxy. Returns 0 or SK_EUSAGE (the proxy's URL is invalid; recorded). */
int sk__fetch_proxy_route(struct sk_fetch *f, const struct sk_url *u);
/* h is a Proxy-Authorization line: through a tunnel it goes on the CONNECT
 * (when the proxy URL has no credentials), never to the origin. */
bool sk__fetch_is_proxy_auth(const char *h);
/* The CONNECT request for u into f->buf; *len its length. */
int sk__fetch_connect_request(struct sk_fetch *f, const struct sk_url *u, size_t *len);
/* The proxy's reply to CONNECT so far, buf[0..have): 0 when more is
 * needed, 1 when the tunnel is up, or a negative code (recorded). */
int sk__fetch_tunnel_reply(struct sk_fetch *f, const char *buf, size_t have);
/* The proxy closed the connection after have bytes of its reply: recorded. */
int sk__fetch_tunnel_cut(struct sk_fetch *f, size_t have);
/* fetch_socks.c: the SOCKS tunnel (f->px.kind SOCKS5, SOCKS5H, SOCKS4,
 * SOCKS4A). */
/* socks5://, socks4://: the origin's address, looked up by the client
 * (SOCKS4: IPv4 only; recorded failures); else 0 at once (SOCKS4a: an IPv6
 * literal refused). */
int sk__fetch_socks_resolve(struct sk_fetch *f, const struct sk_url *origin);
/* The first message into f->buf (SOCKS5: the greeting; SOCKS4: CONNECT,
 * its user id and name checked before connecting); its length. */
size_t sk__fetch_socks_hello(struct sk_fetch *f);
/* The proxy's bytes: 0 more needed, 1 the tunnel is up, 2 f->buf[0..*len)
 * goes to the proxy next, or a negative code (recorded). */
int sk__fetch_socks_reply(struct sk_fetch *f, const char *p, size_t n, size_t *len);
/* A final status from a proxy (plain http): 407 is the proxy's refusal
 * (recorded, SK_EPROXY); else 0. */
int sk__fetch_proxy_check(struct sk_fetch *f, int status);
/* fetch_tell.c: the events of a verbose mode (no-ops without on_event) */
/* The connection is up: its peer's address, once per connection. */
int sk__fetch_tell_connected(struct sk_fetch *f);
/* It is ready for the request: the TLS session, then the request. */
int sk__fetch_tell_ready(struct sk_fetch *f);
/* The request goes on a kept connection: SK_FETCH_EV_REUSED, the request. */
int sk__fetch_tell_reused(struct sk_fetch *f);

/* fetch_resume.c */
int sk__fetch_resume_plan(struct sk_fetch *f);
int sk__fetch_resume_open(struct sk_fetch *f, struct sk_outfile *of);
int sk__fetch_resume_save(struct sk_fetch *f, const struct sk__fetch_resp *rp,
                          struct sk_outfile *of);
void sk__fetch_resume_finish(struct sk_fetch *f, const struct sk_outfile *part, bool committed);
int sk__fetch_parse_content_range(const char *v, size_t n, struct sk__fetch_resp *rp);

/* fetch_digest.c: the sha256 option */
/* Starts the digest when asked, over prefix_len bytes of prefix_fd first. */
int sk__fetch_digest_begin(struct sk_fetch *f, struct sk__fetch_sink *sink, int prefix_fd,
                           uint64_t prefix_len);
void sk__fetch_digest_add(struct sk__fetch_sink *sink, const void *p, size_t n);
int sk__fetch_digest_check(struct sk_fetch *f, struct sk__fetch_sink *sink);
void sk__fetch_digest_free(struct sk__fetch_sink *sink);

/* fetch_decode.c: the glue of SK_FETCH_COMPRESSED and max_filesize on the body */
/* Before the body: refuses a Content-Length over max_filesize (already:
 * bytes of the file already there) and a Content-Encoding that cannot be
 * decoded; sets up the sink's decoder when the body is coded. */
int sk__fetch_decode_begin(struct sk_fetch *f, struct sk__fetch_sink *sink,
                           const struct sk__fetch_resp *rp, uint64_t already);
/* Body bytes as received: decoded (if so) into sk__fetch_sink_out. */
int sk__fetch_decode_put(struct sk_fetch *f, struct sk__fetch_sink *sink, const char *p, size_t n);
/* The body is over: a coded one must have reached its end. */
int sk__fetch_decode_end(struct sk_fetch *f, struct sk__fetch_sink *sink);
void sk__fetch_decode_free(struct sk__fetch_sink *sink);
/* fetch_io.c: the body's final bytes into the sink's output (max_filesize
 * checked there). */
int sk__fetch_sink_out(struct sk_fetch *f, struct sk__fetch_sink *s, const char *p, size_t n);
/* Body bytes as received into w->sink, small ones gathered first. */
int sk__fetch_sink_put(struct sk_fetch *f, const char *p, size_t n);

/* fetch_h2.c: the exchange as a stream of an HTTP/2 session on w->s (the
 * TLS handshake picked h2). Returns are 0 or negative codes (recorded)
 * unless said. */
/* The session on the new connection (its SETTINGS queued): w->h2. */
int sk__fetch_h2_begin(struct sk_fetch *f);
/* The owner's session goes (its guests have left); a guest leaves it. */
void sk__fetch_h2_free(struct sk_fetch *f);
/* Multiplexing: another transfer may open a stream on owner's session. */
bool sk__fetch_h2_can_join(const struct sk_fetch *owner);
/* The holder of the connection is to close it once the others left: no
 * transfer joins it from now on. */
void sk__fetch_h2_closing(struct sk_fetch *f);
/* f's session is usable by the streams on it: not dead, not closing. */
bool sk__fetch_h2_alive(const struct sk_fetch *f);
/* The holder's own exchange is over, its connection stays: its stream (if
 * still open) is reset and no longer its. */
void sk__fetch_h2_rest(struct sk_fetch *f);
/* fetch_io.c: in a parallel run, the exchange of f, which holds an HTTP/2
 * connection that other transfers' streams use, ends without closing it:
 * the connection stays with f, idle, for them and for the next transfers
 * of the run (fetch_pool.c); false: f holds none such (close it). */
bool sk__fetch_h2_park(struct sk_fetch *f);
void sk__fetch_h2_join(struct sk_fetch *f, struct sk_fetch *owner);
bool sk__fetch_h2_is_guest(const struct sk_fetch *f);
/* The transfer whose stream carries f's session; NULL: no session. */
struct sk_fetch *sk__fetch_h2_owner(const struct sk_fetch *f);
/* The transfers on f's session (the owner included), at most cap. */
unsigned sk__fetch_h2_users(const struct sk_fetch *f, struct sk_fetch **out, unsigned cap);
/* The connection ended with err (as feed_end's; SK_EPROTO: nghttp2 gave up). */
void sk__fetch_h2_dead(struct sk_fetch *f, int err);
/* Bytes from the connection into the session (every stream's callbacks);
 * 0, or a connection failure (the session is then dead). */
int sk__fetch_h2_input(struct sk_fetch *f, const char *p, size_t n);
/* f's exchange after the input: as sk__fetch_h2_feed's result. */
int sk__fetch_h2_verdict(struct sk_fetch *f);
/* The request made for HTTP/1.1, f->buf[0..len), to u as a new stream. */
int sk__fetch_h2_request(struct sk_fetch *f, const struct sk_url *u, size_t len);
/* What the session has to send, onto w->s. */
int sk__fetch_h2_send(struct sk_fetch *f);
/* Bytes from the connection in the HEAD or BODY phase: 1 when the phase is
 * over (the final head in f->buf, w->resp / w->hdrs on it, DATA that came
 * with it after it; or the body ended at END_STREAM), 0 when more is due. */
int sk__fetch_h2_feed(struct sk_fetch *f, const char *p, size_t n);
/* fetch_io.c: the owner of an HTTP/2 connection that is to close waits
 * (on the run's loop) until the transfers that joined it left; no one
 * joins it meanwhile. */
void sk__fetch_h2_wait_guests(struct sk_fetch *f);
/* fetch_reuse.c: f may open its stream on owner's connection for route key
 * (owner in an exchange on it or idle, the same route and TLS settings,
 * room for it). */
bool sk__fetch_h2_shareable(const struct sk_fetch *owner, const struct sk_fetch *f,
                            const char *key);
/* other is connecting on route key (https) where f may then join it. */
bool sk__fetch_h2_pending(const struct sk_fetch *other, const struct sk_fetch *f,
                          const char *key);
/* fetch_par.c: the holder of an HTTP/2 connection of the run f is in,
 * of route key, that f may join (its pool's); NULL: none. */
struct sk_fetch *sk__fetch_par_h2_owner(const struct sk_fetch *f, const char *key);
/* ... f's connection got h2 in a parallel run: it goes into the run's pool
 * (0, or -ENOMEM: then it is f's alone, as outside a run). */
int sk__fetch_par_h2_add(struct sk_fetch *f);
/* fetch_pool.c: a parallel run's HTTP/2 connections, by their holders. */
struct sk__fetch_pool;
struct sk__fetch_pool *sk__fetch_pool_new(void);
int sk__fetch_pool_add(struct sk__fetch_pool *p, struct sk_fetch *f);
/* f's connection closes: out of its pool (f->w.pool; none: a no-op). */
void sk__fetch_pool_drop(struct sk_fetch *f);
/* A usable connection for f's stream to route key; NULL: none. */
struct sk_fetch *sk__fetch_pool_find(const struct sk__fetch_pool *p, const struct sk_fetch *f,
                                     const char *key);
/* f leaves its slot: true when its connection carries other streams (it
 * is kept, closing, and swept once they left), false: close it now. */
bool sk__fetch_pool_detach(struct sk__fetch_pool *p, struct sk_fetch *f);
/* The detached holders whose streams all left are closed (all: every
 * one), and the idle connections without a stream that cannot serve
 * another (GOAWAY, ended). */
void sk__fetch_pool_sweep(struct sk__fetch_pool *p, bool all);
void sk__fetch_pool_free(struct sk__fetch_pool *p);
/* ... or connecting to it: f waits to see whether it speaks HTTP/2. */
bool sk__fetch_par_h2_pending(const struct sk_fetch *f, const char *key);
/* The connection ended (err as feed_end's) in the HEAD or BODY phase: 0
 * when the phase was over, else the failure. */
int sk__fetch_h2_end(struct sk_fetch *f, int err);
/* Body DATA into the sink, checked against the framing; its window given back. */
int sk__fetch_h2_data(struct sk_fetch *f, const char *p, size_t n);
/* The body starts (w->fr, sink, left set): the DATA that came with the
 * head first; 1 when the stream already ended (the body is whole). */
int sk__fetch_h2_body(struct sk_fetch *f);
/* A redirect's body is not read: whether the stream already ended cleanly. */
bool sk__fetch_h2_ended(struct sk_fetch *f);
/* The session can take another request (no GOAWAY, no error). */
bool sk__fetch_h2_keep(const struct sk_fetch *f);

#endif
