/* The HTTP client: download one URL (http:// or https://, HTTP/1.1) to a
 * file or to a callback, safely.
 *
 *     struct sk_fetch_opts o;
 *     sk_fetch_opts_init(&o);
 *     o.output = "out.bin";                  // atomic: complete or untouched
 *     struct sk_fetch *f;
 *     int rc = sk_fetch_new(&o, &f);
 *     if (rc == 0)
 *         rc = sk_fetch_run(f, "https://example.org/file");
 *     if (rc < 0)
 *         fprintf(stderr, "%s\n", f ? sk_fetch_error(f) : sk_strerror(rc));
 *     sk_fetch_free(f);
 *
 * What one sk_fetch_run() does: redirects (301/302/303/307/308, at most
 * max_redirs; never https to http unless allowed; Authorization, Cookie
 * and Proxy-Authorization headers are not sent to another origin), 1xx
 * responses skipped, certificate and host-name verification, the body
 * framed by Content-Length, chunked coding or the connection's end (a TLS
 * end needs close_notify), a non-2xx body refused, the body written to a
 * temporary file renamed onto `output` only once complete (and matching
 * `sha256`), resume from FILE.part when SK_FETCH_RESUME is set (only onto a
 * 206 that proves it continues the same data), retries, HTTP proxies
 * (proxy_http, proxy_https, noproxy: chosen per hop), and every wait
 * bounded by the timeouts and the cancel flag. With SK_FETCH_COMPRESSED the
 * request sends "Accept-Encoding: gzip, deflate, br" and a body with one of
 * those Content-Encodings is decoded as it streams (a corrupt or truncated
 * stream, an unknown coding or a chain of several fail: nothing saved);
 * `sha256` and max_filesize then apply to the decoded body.
 *
 * HTTP/2 (RFC 9113, with libnghttp2): over TLS, ALPN offers h2 and
 * http/1.1 (http_version); over plain http:// only with prior knowledge
 * (SK_FETCH_HTTP_2_PRIOR_KNOWLEDGE: h2c, no Upgrade). When the server picks
 * h2 (or prior knowledge says it speaks it) the request goes as a
 * HEADERS frame and the response is handled as an HTTP/1.1 one would be
 * (the head reported as "HTTP/2 STATUS" and its fields, lower case), the
 * body ending at END_STREAM (and matching its content-length). Its size is
 * bounded as HTTP/1.1's (SK_HTTP_HEAD_MAX, SK_HTTP_HEADERS_MAX), the flow
 * control windows (1 MiB) are given back as the body is written out, a
 * RST_STREAM or GOAWAY fails the transfer (SK_EPROTO before the head,
 * SK_ETRUNCATED inside the body; a request the GOAWAY says was not
 * processed is sent once more on a new connection). A kept HTTP/2
 * connection serves the next request as a new stream, and in
 * sk_fetch_run_parallel the transfers to one HTTP/2 route (and TLS
 * settings) share one connection as concurrent streams.
 *
 * Connection reuse: a connection whose response ended at its framing
 * (Content-Length or chunked fully read; a HEAD, 204 or 304 with no body),
 * in HTTP/1.1, with no "Connection: close" and no failure, stays open in
 * the object, idle (one at most: the last). The next request to the same
 * route reuses it: the next sk_fetch_run's, or a redirect's whose body
 * came whole with its head. The same route: the same scheme, host and port
 * and the same proxy (through a plain-http proxy, any http:// origin; a
 * CONNECT tunnel serves its origin only), with the TLS settings of the
 * connection (sk_fetch_set_opts drops it when they change). A kept
 * connection the server closed meanwhile (seen before the request, or a
 * request answered by no byte before the end) is replaced by a new one at
 * once: not a retry, nothing written. Another route closes it first, and
 * sk_fetch_free closes it. SK_FETCH_NO_REUSE: none of this.
 *
 * Synchronous: the call returns when the transfer is over. Inside, the
 * exchange is a state machine on a private event loop (sockit/loop.h), its
 * deadlines the loop's timers. All its state lives in struct sk_fetch; one object serves one thread at a time (and
 * may run several URLs one after another). It never prints, exits or
 * raises a signal: what a program shows goes through on_event.
 *
 * Failures are negative codes (include/sockit/err.h): SK_ERESOLVE,
 * SK_ECONNECT, SK_ETLS / SK_ETLSVERIFY, SK_EHTTP (sk_fetch_status() has
 * the status), SK_EPROXY (the proxy refused: a 407, a CONNECT answered
 * other than 2xx, a malformed or cut reply to it), SK_EPROTO, SK_ETRUNCATED, SK_ETIMEDOUT, SK_EWRITE,
 * SK_ECHECKSUM, SK_ETOOBIG (max_filesize), SK_EUSAGE, SK_ERR(ECANCELED)
 * (the cancel flag), -ENOMEM;
 * sk_fetch_error() gives the one-line reason. */
#ifndef SOCKIT_FETCH_H
#define SOCKIT_FETCH_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sk_fetch;

/* Cancelling from a signal handler: the application installs the handler
 * and calls sk_fetch_cancel_raise() in it; the transfer (given it in
 * sk_fetch_opts.cancel) checks flag at every event of its loop and
 * publishes the loop's wake-up eventfd in fd, so that a wait already begun
 * is woken at once. */
struct sk_fetch_cancel {
    volatile sig_atomic_t flag; /* the signal number; 0: running */
    volatile sig_atomic_t fd;   /* the running transfer's eventfd; -1: none */
};
#define SK_FETCH_CANCEL_INIT {0, -1}
/* Async-signal-safe: c->flag = sig, and the running transfer woken. */
void sk_fetch_cancel_raise(struct sk_fetch_cancel *c, int sig);

enum {
    SK_FETCH_NOREPLACE = 1 << 0,  /* never replace an existing output file */
    SK_FETCH_SYNC = 1 << 1,       /* fsync the file and its folder before the rename */
    SK_FETCH_RESUME = 1 << 2,     /* keep output.part on failure and continue it later */
    SK_FETCH_HEAD = 1 << 3,       /* send HEAD: headers only, nothing saved */
    SK_FETCH_NO_FAIL = 1 << 4,    /* any final status is success: its body is saved */
    SK_FETCH_ALLOW_DOWNGRADE = 1 << 5, /* follow redirects from https to http */
    SK_FETCH_INSECURE = 1 << 6,   /* do not verify the server certificate */
    SK_FETCH_COMPRESSED = 1 << 7, /* ask for gzip, deflate, br; save the decoded body
                                     (not with SK_FETCH_RESUME) */
    SK_FETCH_NO_REUSE = 1 << 8,   /* send "Connection: close"; keep no connection */
};

/* What a transfer reports while it runs (on_event). */
enum sk_fetch_event_kind {
    SK_FETCH_EV_HEAD,        /* a response head as received: data, len (each hop) */
    SK_FETCH_EV_BODY_BEGIN,  /* the body starts: done (bytes already there), total (0: unknown) */
    SK_FETCH_EV_PROGRESS,    /* body bytes: done, total */
    SK_FETCH_EV_BODY_END,    /* the body stopped (complete or not) */
    SK_FETCH_EV_NOTICE,      /* a one-line remark (a warning, a retry): data, len */
    /* For a verbose mode: */
    SK_FETCH_EV_CONNECTED,   /* a connection is up: data, len "ADDRESS:PORT" ([v6]:port);
                                total 1: reported only once its TLS handshake ended */
    SK_FETCH_EV_TLS,         /* its TLS session: data, len four NUL-terminated strings,
                                version, cipher, certificate subject, issuer (RFC 2253,
                                "" without a certificate); done: the certificate
                                verification's result (OpenSSL's X509_V_*, 0: verified;
                                not 0 only with SK_FETCH_INSECURE) */
    SK_FETCH_EV_REQUEST,     /* the request head as sent: data, len (credentials included) */
    SK_FETCH_EV_REUSED,      /* the request goes on a kept connection (instead of
                                CONNECTED and TLS): data, len "ADDRESS:PORT" */
    SK_FETCH_EV_PROTOCOL,    /* the protocol of the exchange, before its REQUEST:
                                data, len "HTTP/1.1" or "HTTP/2" */
    /* Appended later (a handler ignores kinds it does not know): */
    SK_FETCH_EV_RESOLVED,    /* the name of a new connection's host (the proxy's through
                                one) is looked up, before its connect: data, len the name */
};

/* sk_fetch_opts.http_version: what the TLS handshake offers (ALPN), and
 * for plain http:// whether HTTP/2 starts at once (prior knowledge, RFC 9113
 * section 3.3: no Upgrade); otherwise plain http:// is HTTP/1.1. */
enum sk_fetch_http_version {
    SK_FETCH_HTTP_DEFAULT = 0, /* offer h2 and http/1.1: HTTP/2 when the server picks it */
    SK_FETCH_HTTP_1_1,         /* offer http/1.1 only */
    SK_FETCH_HTTP_2,           /* offer h2 first (the default's behaviour, said outright) */
    /* Appended later: */
    SK_FETCH_HTTP_2_PRIOR_KNOWLEDGE, /* plain http:// (direct or through SOCKS): HTTP/2 from
                                        the first byte; through a plain HTTP proxy HTTP/1.1
                                        (to the proxy, as curl); https://: as the default */
};

struct sk_fetch_event {
    enum sk_fetch_event_kind kind;
    const char *data;
    size_t len;
    uint64_t done, total;
    /* Appended later (the library makes the event: a handler built with
     * the older header just does not see it): CONNECTED and REUSED, the
     * connection's local "ADDRESS:PORT" ([v6]:port), NUL-terminated;
     * NULL for the other kinds. */
    const char *local;
};

/* Returns 0, or a negative code that stops the transfer (it fails with it). */
typedef int (*sk_fetch_event_fn)(void *arg, const struct sk_fetch_event *ev);
/* Takes n body bytes. Returns 0, or a negative code that stops the transfer
 * (sk_fetch_set_error() may record why first). */
typedef int (*sk_fetch_write_fn)(void *arg, const void *data, size_t n);

struct sk_fetch_opts {
    size_t size;                 /* sizeof(struct sk_fetch_opts), set by init */
    const char *output;          /* the file to create or replace; NULL: write. Not
                                    copied: read when the final body begins (with
                                    SK_FETCH_RESUME, before the request), so an
                                    SK_FETCH_EV_HEAD handler may rewrite the name */
    sk_fetch_write_fn write;     /* with output NULL: the body (NULL: discarded) */
    void *write_arg;
    unsigned flags;              /* SK_FETCH_* */
    const char *cacert;          /* trust only these CAs (PEM); NULL: the system's */
    const char *const *headers;  /* extra "Name: value" request lines (replace Host, */
    size_t nheaders;             /* User-Agent, Accept of the same name) */
    const unsigned char *sha256; /* 32 bytes: the body's expected digest; NULL: none */
    long max_redirs;             /* 0: a redirect is the final (failed) response */
    long retries;                /* after a connect failure, a timeout, 408/429/5xx,
                                    and with RESUME a truncated body */
    int retry_delay_ms;          /* first wait; doubled up to 60 s, or Retry-After */
    int connect_timeout_ms;      /* per connection: TCP and TLS; 0: none */
    int idle_timeout_ms;         /* longest wait for progress; 0: none */
    int max_time_ms;             /* the whole call, retries included; 0: none */
    struct sk_fetch_cancel *cancel; /* NULL, or a signal handler's way to stop it */
    sk_fetch_event_fn on_event;  /* NULL: no events */
    void *event_arg;
    const char *user_agent;      /* NULL: "sockit/VERSION" */
    /* Fields below were appended later: a caller built with an older
     * header (a smaller size) gets 0 for them. */
    /* Proxies, "[http://][user:password@]host[:port]" (port 1080 by
     * default, user and password percent-decoded); NULL or "": none. Chosen
     * per URL, redirects included: proxy_http for http:// URLs (the request
     * in absolute form), proxy_https for https:// ones (a CONNECT tunnel;
     * the origin's certificate verified as without a proxy). The
     * credentials go to the proxy only (Proxy-Authorization: Basic).
     * "socks5://" (the name resolved here, its address sent) or
     * "socks5h://" (the name sent): a SOCKS5 proxy (RFC 1928, credentials
     * by RFC 1929, 255 bytes at most each) tunnels either scheme;
     * "socks4://" (resolved here, IPv4 only) or "socks4a://" (the name
     * sent) a SOCKS4 one (the user name as its user id, a password
     * ignored). */
    const char *proxy_http;
    const char *proxy_https;
    const char *noproxy;         /* hosts reached directly: sk_fetch_noproxy_match */
    uint64_t max_filesize;       /* the body's (decoded) size limit; 0: none */
    /* HTTP Basic credentials, sent only to the URL's origin (never after a
     * redirect to another, as the Authorization of `headers`), and not when
     * `headers` has an Authorization. NULL user: none, or those written
     * in the URL (http://user:password@host/, percent-decoded), which a
     * user set here overrides. NULL password: "". */
    const char *user;
    const char *password;
    /* Appended after password: */
    enum sk_fetch_http_version http_version; /* over TLS; 0: HTTP/2 if offered */
    /* Appended after http_version: */
    /* Each transfer's body is read at most this fast (bytes per second,
     * averaged from its start; 0: no limit), by the event loop: over its
     * budget the connection is not read (HTTP/1.1: the kernel's receive
     * window slows the server) or, over HTTP/2, the stream's window is not
     * given back (WINDOW_UPDATE), the connection's is: the other streams
     * on it go on. A burst of one read (256 KiB; HTTP/2: the stream's
     * window, half a second of the rate, at least 256 KiB) may come before
     * the first pause. */
    uint64_t max_recv_speed;
    /* Slower than low_speed_limit bytes per second (each second measured
     * alone, the response head and body) for low_speed_time_ms (0: 30 s):
     * the transfer fails with SK_ETIMEDOUT, SK_FETCH_CAUSE_SPEED_LIMIT
     * (retried as a timeout). low_speed_limit 0: no check. */
    uint64_t low_speed_limit;
    int low_speed_time_ms;
};

/* Fills o with the defaults: 10 redirects, 30 s connect and 60 s idle
 * timeouts, 1 s retry delay, no retries, verification on. */
void sk_fetch_opts_init(struct sk_fetch_opts *o);

/* Creates a transfer object; o (and what it points to) must outlive it.
 * o->size may be that of an older struct sk_fetch_opts (the fields after it
 * are then zero). Returns 0, SK_EUSAGE (o->size is not one this library
 * knows), -ENOMEM. */
int sk_fetch_new(const struct sk_fetch_opts *o, struct sk_fetch **out);
/* Replaces the options for the runs that follow (between runs only), with
 * sk_fetch_new's checks and rules (o must outlive the object, or the next
 * call). Any field may change; the kept connection and the TLS context stay
 * when cacert and SK_FETCH_INSECURE are unchanged (cacert compared as a
 * string), else both go. Returns 0 or SK_EUSAGE (then nothing changed). */
int sk_fetch_set_opts(struct sk_fetch *f, const struct sk_fetch_opts *o);
/* Downloads url. Returns 0 or a negative code (see above). May be called
 * again, for another URL: the object's results (error, status, effective
 * URL...) are then the new run's; a kept connection serves it when its
 * route is the same (see above). */
int sk_fetch_run(struct sk_fetch *f, const char *url);
/* The one-line reason of the last failure ("" after a success). */
const char *sk_fetch_error(const struct sk_fetch *f);
/* The status of the last response read (the final one, or where a redirect
 * chain failed); 0: none. */
int sk_fetch_status(const struct sk_fetch *f);
/* Which of the settings the last failure ran into, so that a program can
 * name its own option for it (the messages name none). */
enum sk_fetch_cause {
    SK_FETCH_CAUSE_NONE,
    SK_FETCH_CAUSE_CONNECT_TIMEOUT, /* connect_timeout_ms passed (TCP + TLS) */
    SK_FETCH_CAUSE_IDLE_TIMEOUT,    /* idle_timeout_ms without progress */
    SK_FETCH_CAUSE_MAX_TIME,        /* max_time_ms passed */
    SK_FETCH_CAUSE_DOWNGRADE,       /* a redirect from https to http, refused
                                       (SK_FETCH_ALLOW_DOWNGRADE not set) */
    SK_FETCH_CAUSE_MAX_FILESIZE,    /* the body is larger than max_filesize
                                       (SK_ETOOBIG) */
    SK_FETCH_CAUSE_SPEED_LIMIT,     /* slower than low_speed_limit for
                                       low_speed_time_ms (SK_ETIMEDOUT) */
};
enum sk_fetch_cause sk_fetch_cause(const struct sk_fetch *f);
/* The URL of the last request sent (after the redirects followed), without
 * credentials; "" when none was sent. */
const char *sk_fetch_url_effective(const struct sk_fetch *f);
/* The redirects followed before that request. */
long sk_fetch_redirects(const struct sk_fetch *f);
/* The status of the last reply to a CONNECT through a proxy (an https URL
 * through proxy_https) of the last run; 0: none was sent (no proxy, plain
 * http, or the request went on a kept tunnel). */
int sk_fetch_connect_status(const struct sk_fetch *f);
/* With SK_FETCH_RESUME: the part already held the whole file (nothing was
 * transferred). */
bool sk_fetch_was_complete(const struct sk_fetch *f);
/* For a write callback that fails: records code and a reason; returns code. */
int sk_fetch_set_error(struct sk_fetch *f, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* For a callback that fails: records the library's own reason for err met
 * while `doing` (a timeout names the limit that passed, a cancel the
 * signal); returns err (SK_ECLOSED becomes SK_ETRUNCATED). */
int sk_fetch_fail_as(struct sk_fetch *f, int err, const char *doing);
/* The absolute deadline (sk_now_ms() clock, 0: none) a write callback
 * should respect: now + idle timeout, capped by the whole call's limit. */
uint64_t sk_fetch_deadline(const struct sk_fetch *f);
void sk_fetch_free(struct sk_fetch *f);

/* Parallel transfers: up to n (1..1024) sk_fetch_run()s at once, all on
 * one event loop in the calling thread (no threads; each run keeps every
 * guarantee above, its waits are that loop's timers). next(arg, slot, &f,
 * &url) is called when slot (0..n-1) is free: it returns 1 with a
 * transfer object and a URL to run on it (both valid until done), 0 when
 * there are no more, or a negative code (nothing more starts). done(arg,
 * slot, f, rc) gets sk_fetch_run's result, in the order the transfers
 * end; between next and done the object belongs to the run. An object
 * may be given again for the next URL of its slot: its kept connection
 * then serves it when the route is the same (at most n connections at
 * once). An HTTP/2 connection is the run's, shared by every transfer to
 * its origin: an object whose connection other transfers use must stay
 * valid until the call returns, even once its slot has another. Every
 * object must have the same cancel (o.cancel) as passed here (or none
 * when cancel is NULL): raising it stops them all. When the call
 * returns, the objects' kept connections are closed and they can be
 * run again alone or freed. Returns 0 (each transfer's result went to
 * done), SK_EUSAGE, -ENOMEM, next's code, or the loop's failure. */
typedef int (*sk_fetch_next_fn)(void *arg, unsigned slot, struct sk_fetch **f, const char **url);
typedef void (*sk_fetch_done_fn)(void *arg, unsigned slot, struct sk_fetch *f, int rc);
int sk_fetch_run_parallel(unsigned n, struct sk_fetch_cancel *cancel, sk_fetch_next_fn next,
                          sk_fetch_done_fn done, void *arg);

/* Reads the next URL of a list, one per line (blank lines and lines whose
 * first non-space is '#' are skipped; spaces around a URL trimmed) into
 * buf (size bytes, NUL-terminated). *line counts the lines read, so that
 * an error can name its line. Returns 1 with a URL in buf, 0 at the end,
 * SK_ETOOBIG (a line of size bytes or more: the rest of it is consumed),
 * SK_EPARSE (a NUL byte in the line), SK_ERR(EIO) (a read error),
 * SK_EUSAGE (a NULL argument, size < 2). */
int sk_fetch_list_next(FILE *in, char *buf, size_t size, unsigned long *line);

/* True when host (a name, an IPv4 address, an IPv6 address with or
 * without brackets) at port is in list, curl's no_proxy: entries separated
 * by commas and/or spaces; "*" matches every host; a name matches itself
 * and its subdomains ("example.com" and ".example.com" both match
 * example.com and a.example.com, not notexample.com); an address matches
 * the same address only; an entry's ":port" limits it to that port. Case
 * and a trailing dot are ignored. NULL or empty list: false. */
bool sk_fetch_noproxy_match(const char *list, const char *host, int port);

/* Parses 64 hex digits into out. Returns 0 or SK_EPARSE. */
int sk_fetch_parse_sha256(const char *hex, unsigned char out[32]);

#ifdef __cplusplus
}
#endif

#endif
