/* A non-blocking byte stream on the event loop: plain TCP, or TLS (client
 * or server role) over it.
 *
 * A stream wraps a connected non-blocking socket: it reads when readable
 * and hands the bytes to a read callback, queues what the socket does not
 * take (sk_stream_write), and reports why it closed to a close callback.
 * Streams belong to a group: one per loop, holding what they share (one
 * idle timer over a least-recently-active list, one linger timer, the read
 * scratch, the limits and a memory account), so an idle stream costs no
 * timer and no buffer.
 *
 * Limits, all per group:
 *   idle        no progress either way (a read, a write the peer took) for
 *               idle_ms: closed, reason SK_CLOSE_IDLE (the idle callback may
 *               spare it);
 *   high water  output held over high_water: sk_stream_over_high_water()
 *               is true until it is back under low_water; the owner stops
 *               reading (sk_stream_update) and resumes in its flushed
 *               callback;
 *   out_limit   output held over out_limit with nothing taken by the peer
 *               for 5 s: closed, reason SK_CLOSE_OUTPUT_LIMIT;
 *   max_memory  all the streams sharing the account hold more: the
 *               heaviest are closed, reason SK_CLOSE_MEMORY, and reading
 *               pauses at 16 KiB of output.
 *
 * Set-up deadlines, per group, on the group's timers (no timer per stream):
 *   connect     sk_stream_connect / sk_stream_connect_list not done within
 *               connect_ms: connected(SK_ETIMEDOUT), then closed, reason
 *               SK_CLOSE_CONNECT_TIMEOUT;
 *   handshake   the TLS handshake not done within handshake_ms of its
 *               start: connected(SK_ETIMEDOUT), then closed, reason
 *               SK_CLOSE_HANDSHAKE_TIMEOUT.
 * A stream in set-up is not on the idle list.
 *
 * TLS (sk_stream_start_tls): the handshake runs on the loop, non-blocking;
 * writes made before it ends are queued and go out after it; the connected
 * callback runs when the stream is ready for data (TCP connected and, with
 * TLS, the handshake done), or with the error that ended it (then the
 * stream closes, reason SK_CLOSE_TLS). The peer's end of stream is a read
 * of 0 bytes; sk_stream_tls_close_notify() says whether it was a clean
 * close_notify or a truncation (a FIN without it). sk_stream_shutdown sends
 * close_notify after the last output, then the FIN. Idle TLS streams hold
 * no record buffers (SSL_MODE_RELEASE_BUFFERS) unless the group's
 * tls_keep_buffers says otherwise.
 *
 * The struct is embedded in the owner's object (like struct sk_io); its
 * fields are private. Threads: a group and its streams belong to the
 * loop's thread. Closed streams are handed to the release callback at the
 * end of the loop callback that closed them, never inside a call of yours,
 * so a stream stays readable after a close under you. A struct sk_tls_ctx
 * may be shared by streams of several loops (threads); each stream holds a
 * reference on it (sockit/transport.h) until it is released. */
#ifndef SOCKIT_STREAM_H
#define SOCKIT_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <netdb.h>
#include <sys/socket.h>

#include "sockit/buf.h"
#include "sockit/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Why a stream (a server connection) ended. */
enum sk_close_reason {
    SK_CLOSE_END,          /* the owner ended it (server: sk_server_conn_end) */
    SK_CLOSE_EOF,          /* the peer's FIN, everything answered */
    SK_CLOSE_RESET,        /* the peer reset it, or a socket error */
    SK_CLOSE_IDLE,         /* no progress either way for idle_ms */
    SK_CLOSE_OUTPUT_LIMIT, /* over out_limit with nothing read for 5 s */
    SK_CLOSE_TOO_LONG,     /* line framing: a line over the limit */
    SK_CLOSE_SHUTDOWN,     /* the owner stopped (drain deadline) */
    SK_CLOSE_ERROR,        /* out of memory, or the owner's error */
    SK_CLOSE_MEMORY,       /* shed: the group was over max_memory */
    SK_CLOSE_HANDSHAKE_TIMEOUT, /* the TLS handshake took over handshake_ms */
    SK_CLOSE_TLS,          /* TLS failed: handshake, verification, a bad record */
    SK_CLOSE_CONNECT_TIMEOUT, /* the connect took over connect_ms */
};

/* "end", "eof", "reset", "idle-timeout", "output-limit",
 * "message-too-long", "shutdown", "error", "memory", "handshake-timeout",
 * "tls-error", "connect-timeout"; "?" out of range. */
const char *sk_close_reason_name(enum sk_close_reason why);

struct sk_stream;
struct sk_stream_group;

struct sk_stream_cbs {
    /* Bytes read (valid during the call); n == 0: the peer's FIN. Returns
     * false to read no more in this event (paused, ended, closed). */
    bool (*read)(struct sk_stream *s, const char *data, size_t n);
    /* The queue changed (a write event made progress, or a read event was
     * handled): resume reading, finish or close; then sk_stream_update. */
    void (*flushed)(struct sk_stream *s);
    /* The group is draining: finish or close (NULL: flushed is called). */
    void (*stop)(struct sk_stream *s);
    /* The idle deadline passed: true spares the stream (its clock restarts).
     * NULL: it closes. */
    bool (*idle)(struct sk_stream *s);
    /* The stream is closing (its fd still open). No stream call but the
     * accessors from here on. */
    void (*close)(struct sk_stream *s, enum sk_close_reason why);
    /* The stream's memory may be freed now. */
    void (*release)(struct sk_stream *s);
    /* The stream is ready for data: the connect finished and, with TLS, the
     * handshake too (for a server-role stream: the handshake alone). err 0
     * (reading starts unless the callback says otherwise with
     * sk_stream_update), or a negative code, after which the stream closes:
     * a failed connect (-errno of the last attempt; reason SK_CLOSE_RESET),
     * SK_ETIMEDOUT (reason SK_CLOSE_CONNECT_TIMEOUT or
     * SK_CLOSE_HANDSHAKE_TIMEOUT), SK_ETLSVERIFY or SK_ETLS (reason
     * SK_CLOSE_TLS); sk_stream_error() has the detail. Not called for a
     * plain stream of sk_stream_open. NULL: nothing to say. */
    void (*connected)(struct sk_stream *s, int err);
};

struct sk_stream_limits {
    uint64_t idle_ms;  /* 0: never */
    size_t high_water; /* 0: 256 KiB */
    size_t low_water;  /* resume mark, <= high_water; 0: high_water */
    size_t out_limit;  /* 0: 4 MiB */
    size_t max_memory; /* 0: 256 MiB; SIZE_MAX: none */
    size_t read_size;  /* read scratch; 0: 64 KiB */
    uint64_t connect_ms;   /* connect deadline; 0: 10 s; UINT64_MAX: none */
    uint64_t handshake_ms; /* TLS handshake deadline; 0: 10 s; UINT64_MAX: none */
    /* TLS: keep each stream's record buffers between reads (a download
     * reading without pause saves a free and an allocation per record);
     * false: released whenever a stream has nothing buffered, so idle
     * streams are cheap (a server's). */
    bool tls_keep_buffers;
};

struct sk_tls_ctx; /* sockit/transport.h */
struct sk__stream_ext;

/* Private: the layout is here so that a stream can be embedded. */
struct sk_stream {
    struct sk_io io;
    struct sk_stream_group *g;
    struct sk_stream *prev, *next; /* group list, least recently active first */
    uint64_t last_active_ms; /* last progress (lingering: its deadline) */
    struct sk_buf in;  /* the owner's partial input (counted as held) */
    struct sk_buf out; /* what the socket did not take yet */
    size_t out_extra;  /* the owner's memory held for output (counted) */
    size_t acct;       /* memory counted in the group's total */
    struct sk__stream_ext *x; /* TLS, a connect in progress, an error; NULL: none */
    uint32_t read_max; /* bytes per read; 0: the scratch's size */
    int outq;          /* unsent bytes in the socket at the last idle check */
    /* One byte of flags: every idle session carries them. */
    bool read_closed : 1;  /* the peer's FIN was read */
    bool reading : 1;      /* the owner wants input */
    bool paused : 1;       /* over the high water mark (until the low one) */
    bool lingering : 1;    /* half-closed: see sk_stream_shutdown */
    bool wr_shut : 1;
    bool closed : 1;
    bool connecting : 1;   /* sk_stream_connect in progress */
    uint8_t linger_why;
    uint8_t setup;     /* connecting or handshaking: on a deadline list */
};

/* A group of streams on loop, sharing cb (not copied: it must outlive the
 * group) and lim (NULL: the defaults). The memory account is the group's
 * own. Returns NULL and sets *err on failure. */
struct sk_stream_group *sk_stream_group_new(struct sk_loop *loop, const struct sk_stream_cbs *cb,
                                            const struct sk_stream_limits *lim, int *err);
/* Closes every stream (reason SK_CLOSE_SHUTDOWN) and frees the group. NULL
 * is accepted. */
void sk_stream_group_free(struct sk_stream_group *g);

/* Starts a stream on fd (connected, non-blocking; the stream owns it from
 * here, also on failure). Returns 0 or a negative code. */
int sk_stream_open(struct sk_stream_group *g, struct sk_stream *s, int fd);
/* Connects a new non-blocking TCP socket to sa and starts a stream on it;
 * the connected callback says how it went, within the group's connect_ms.
 * Returns 0, or a negative code (nothing started). */
int sk_stream_connect(struct sk_stream_group *g, struct sk_stream *s, const struct sockaddr *sa,
                      socklen_t len);
/* As sk_stream_connect, to the first address of ai (a getaddrinfo list of
 * SOCK_STREAM addresses; copied, the caller may free it on return) that
 * accepts, with Happy Eyeballs as sk_connect_until: up to 16 addresses,
 * families interleaved, a new attempt every 250 ms while earlier ones are
 * pending or at once when one fails, the first to connect wins and the
 * others are closed; connect_ms bounds the whole set. Returns 0, or a
 * negative code (nothing started: SK_EUSAGE for an empty list, -ENOMEM). */
int sk_stream_connect_list(struct sk_stream_group *g, struct sk_stream *s,
                           const struct addrinfo *ai);
/* Puts TLS on s, right after sk_stream_open or sk_stream_connect* (before
 * the loop runs it): the client role for a context of sk_tls_ctx_new (host:
 * the name sent as SNI and verified, or the IP address verified, as
 * sk_conn_new_tls), the server role for one of sk_tls_server_ctx_new (host
 * ignored). The handshake starts now, or when the connect ends. Returns 0,
 * or a negative code (-ENOMEM, SK_ETLS) after which s is closed (reason
 * SK_CLOSE_ERROR). */
int sk_stream_start_tls(struct sk_stream *s, struct sk_tls_ctx *ctx, const char *host);
/* Sends what it can of p[0..n) after what is queued, queues the rest.
 * Returns 0, or a negative code when the stream closed (reset, or error
 * when out of memory). */
int sk_stream_write(struct sk_stream *s, const void *p, size_t n);
/* Half-close: `last` goes out after the queued output, then the FIN; input
 * is discarded until the peer's FIN or 2 s, then the stream closes with
 * `why`. Returns 0, or a negative code when it closed at once. */
int sk_stream_shutdown(struct sk_stream *s, enum sk_close_reason why, const void *last,
                       size_t n);
/* Closes now (the close callback runs); idempotent. */
void sk_stream_close(struct sk_stream *s, enum sk_close_reason why);
/* Re-arms the stream's interest: reading when want_read (and not half-
 * closed), writing while output is queued; brings its memory up to date. */
void sk_stream_update(struct sk_stream *s, bool want_read);
/* Over the high water mark (see above), or the group over its budget. */
bool sk_stream_over_high_water(struct sk_stream *s);
/* Marks progress now (a reply that was waiting is out). */
void sk_stream_touch(struct sk_stream *s);
/* Sends what is queued; then the flushed callback runs. */
void sk_stream_flush(struct sk_stream *s);

/* TLS accessors (valid until the release callback). */
bool sk_stream_is_tls(const struct sk_stream *s);
/* "TLSv1.3", "TLSv1.2"...; NULL before the handshake ended, or plain. */
const char *sk_stream_tls_version(const struct sk_stream *s);
/* The negotiated cipher suite ("TLS_AES_256_GCM_SHA384"); NULL as above. */
const char *sk_stream_tls_cipher(const struct sk_stream *s);
/* Why the peer's certificate was rejected, one line ("certificate has
 * expired", "host name mismatch", "unable to get local issuer
 * certificate"); NULL when it was not. */
const char *sk_stream_tls_verify_error(const struct sk_stream *s);
/* The peer ended TLS with close_notify (false: not yet, or a truncation). */
bool sk_stream_tls_close_notify(const struct sk_stream *s);
/* The TLS handshake is under way (TCP is up; false before, after, or plain):
 * a deadline that passes now passed in the handshake, not in the connect. */
bool sk_stream_tls_handshaking(const struct sk_stream *s);

/* Session resumption, client role: the session of one handshake, offered
 * on a later connection to the same server, lets that handshake resume it
 * (a ticket: no certificate, no signature). A session is reference-counted
 * and may be used by streams of any thread, one at a time. */
struct sk_tls_session;
/* s's session when it can be resumed: a copy of its own (however s ends),
 * or NULL (plain, the handshake not done, no ticket yet: TLS 1.3 tickets
 * come after the handshake, before the server's first data, so ask once
 * data came; or out of memory). */
struct sk_tls_session *sk_stream_tls_session(const struct sk_stream *s);
/* Offers sess on s, a client TLS stream whose handshake has not run yet
 * (right after sk_stream_start_tls); s takes its own reference. Returns 0,
 * SK_EUSAGE (plain, the server role, or too late) or SK_ETLS. */
int sk_stream_tls_set_session(struct sk_stream *s, struct sk_tls_session *sess);
/* The handshake resumed a session (false: a full one, not done, or plain). */
bool sk_stream_tls_resumed(const struct sk_stream *s);
/* Frees a session of sk_stream_tls_session (NULL is fine). */
void sk_tls_session_free(struct sk_tls_session *sess);

/* A one-line description of what failed (a connect, the handshake, the
 * verification, a TLS record); "" when nothing did. */
const char *sk_stream_error(const struct sk_stream *s);

static inline size_t sk_stream_queued(const struct sk_stream *s)
{
    return sk_buf_size(&s->out);
}

#ifdef __cplusplus
}
#endif

#endif
