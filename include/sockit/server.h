/* A protocol-agnostic TCP/UDP server engine.
 *
 * N worker threads, each running its own event loop; all workers watch the
 * same listening sockets (EPOLLEXCLUSIVE wakes one of them per connection)
 * or, with reuseport, one socket each. Connections live on one worker for
 * their whole life, so nothing about a connection is shared between threads.
 *
 * The protocol plugs in through struct sk_server_proto: open, message,
 * close and datagram callbacks with a user pointer. The engine reads, frames
 * (chunk: one read is one message; line: see sk_line_next), buffers the
 * replies with back-pressure, and enforces the limits. It prints nothing:
 * what happens (a connection opened, closed and why, refused, accepting
 * paused) is reported as a struct sk_server_event the application formats.
 *
 * Threads: the callbacks run on the worker thread that owns the connection
 * (several workers: several callbacks at once, on different connections).
 * sk_server_stop() and sk_server_stats_read() may be called from any
 * thread; the other functions from the thread that created the server. */
#ifndef SOCKIT_SERVER_H
#define SOCKIT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sockit/addr.h"
#include "sockit/framing.h"
#include "sockit/proxy.h"
#include "sockit/stream.h"
#include "sockit/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SK_SERVER_MAX_LISTEN 16
#define SK_SERVER_MAX_MEMORY ((size_t)256 << 20) /* default of max_memory */

/* Why a connection ended: enum sk_close_reason (sockit/stream.h). */

/* One TCP connection (opaque). Valid from the open callback to the end of
 * the close callback, on its worker's thread only. */
struct sk_server_conn;

/* A datagram and, on return from the datagram callback, its reply. */
struct sk_datagram {
    char *data;      /* in: the payload; out: the reply (may point elsewhere) */
    size_t len;
    size_t headroom; /* bytes writable just before data (cfg.dgram_headroom) */
    size_t tailroom; /* bytes writable just after data + len */
    bool truncated;  /* larger than the receive buffer */
    const struct sockaddr *peer;
};

struct sk_server_proto {
    /* A connection was accepted: a greeting may be written. Returns 0, or
     * a negative code to close it (reason error). NULL: nothing to do. */
    int (*open)(void *user, struct sk_server_conn *c);
    /* One message. Replies are written with sk_server_conn_write (or
     * reserve/commit); they are sent once the read is handled, in order.
     * Returns 0, or a negative code to close (reason error). */
    int (*message)(void *user, struct sk_server_conn *c, const char *msg, size_t n);
    /* The connection is closing; it is released on return (what is written
     * now is dropped). NULL: none. */
    void (*close)(void *user, struct sk_server_conn *c, enum sk_close_reason why);
    /* A UDP datagram: true sends d->data[0..d->len) back to the sender.
     * Required when cfg.udp is set. */
    bool (*datagram)(void *user, struct sk_datagram *d);
    /* Sent before the connection closes: over max_conns, a line over
     * max_msg. NULL: nothing is sent. */
    const char *busy_reply;
    const char *too_long_reply;
    void *user;
};

/* How the peer ended a TLS session (CLOSE events). */
enum sk_tls_end {
    SK_TLS_END_PLAIN,        /* no TLS session: plain, or the handshake did not end */
    SK_TLS_END_CLOSE_NOTIFY, /* its close_notify */
    SK_TLS_END_TRUNCATED,    /* its FIN without close_notify */
    SK_TLS_END_RESET,        /* a reset or a socket error */
    SK_TLS_END_NONE,         /* nothing yet: the server closed first */
};
/* "", "close_notify", "truncated", "reset", "none"; "?" out of range. */
const char *sk_tls_end_name(enum sk_tls_end e);

enum sk_server_event_kind {
    SK_SERVER_OPEN,            /* peer */
    SK_SERVER_CLOSE,           /* peer, reason, messages, bytes_in, bytes_out,
                                  duration_ms */
    SK_SERVER_REFUSE,          /* peer, limit (over max_conns) */
    SK_SERVER_ACCEPT_PAUSED,   /* err (out of fds); once per episode */
    SK_SERVER_ACCEPT_RESUMED,
    SK_SERVER_STOP_RESENT,     /* worker: its stop request was sent again */
    SK_SERVER_PROXY_ERROR,     /* peer (the balancer's side), proxy_error:
                                  closed without a valid PROXY header */
};

struct sk_server_event {
    enum sk_server_event_kind kind;
    const struct sockaddr *peer;
    enum sk_close_reason reason;
    uint64_t messages;  /* messages the connection handled */
    /* CLOSE: the bytes TCP received from and sent to the peer, as the
     * kernel counts them (TLS: the records, handshake included; a PROXY
     * header counts as received; retransmissions do not count), and the
     * connection's life on its worker's loop clock, from its accept to its
     * close. */
    uint64_t bytes_in, bytes_out;
    uint64_t duration_ms;
    size_t limit;
    int err;            /* an errno value */
    unsigned retry_ms;  /* ACCEPT_PAUSED: accepting is retried this often */
    unsigned worker;
    /* proxy_protocol: OPEN's peer is the header's client and proxied_from
     * the connection's own peer (NULL: not relayed, e.g. LOCAL). */
    const struct sockaddr *proxied_from;
    enum sk_proxy_error proxy_error;
    /* TLS (cfg.tls): OPEN's protocol version and cipher suite ("TLSv1.3",
     * "TLS_AES_256_GCM_SHA384"; NULL: plain); CLOSE's end of TLS, and for
     * reason SK_CLOSE_TLS what failed, one line (NULL: none). A session
     * whose handshake failed or timed out has a CLOSE and no OPEN. */
    const char *tls_version, *tls_cipher;
    enum sk_tls_end tls_end;
    const char *tls_error;
};

/* Called on worker threads (STOP_RESENT: on the thread in sk_server_wait). */
typedef void (*sk_server_event_cb)(void *user, const struct sk_server_event *ev);

/* A socket given to the server already bound (socket activation: sockit/sd.h). */
struct sk_server_inherited {
    int fd;
    bool udp; /* a bound datagram socket; false: a listening stream socket */
};

struct sk_server_config {
    struct sk_endpoint listen[SK_SERVER_MAX_LISTEN];
    size_t nlisten;         /* addresses to bind; at least 1, or 0 with inherited */
    bool udp;               /* also serve UDP on the same addresses (listen only) */
    /* Sockets bound by someone else (systemd's, sk_sd_listen_fds), served
     * instead of listen[]: one or the other. sk_server_new takes ownership
     * of them in every case (it closes them itself when it fails) and makes
     * them non-blocking; sk_server_free closes them. sk_server_stop leaves
     * them listening: the service manager still holds them, and connections
     * that arrive during a restart wait in their backlog for the next
     * process. Not with reuseport or udp (SK_EUSAGE). */
    struct sk_server_inherited inherited[SK_SERVER_MAX_LISTEN];
    size_t ninherited;
    enum sk_framing framing;
    unsigned delay_ms;      /* replies to messages are held this long */
    size_t max_conns;       /* 0: unlimited (bounded by RLIMIT_NOFILE) */
    unsigned idle_timeout_s;/* 0: never */
    unsigned workers;       /* 0: online CPUs */
    bool reuseport;         /* one SO_REUSEPORT socket per worker instead of
                               one socket shared by all (EPOLLEXCLUSIVE) */
    int backlog;            /* <= 0: the system's maximum (net.core.somaxconn) */
    size_t max_msg;         /* line framing: longest message; 0: 64 KiB */
    size_t out_pause;       /* pending output that pauses reading; 0: 256 KiB */
    size_t out_limit;       /* pending output that closes the connection (after
                               5 s without reads); 0: 4 MiB */
    unsigned grace_ms;      /* shutdown: time left to connections; 0: 2000 */
    size_t max_memory;      /* memory all connections' buffers may hold, server-
                               wide; 0: SK_SERVER_MAX_MEMORY; SIZE_MAX: none */
    size_t dgram_headroom;  /* room before a datagram's payload (<= 1024) */
    /* Every TCP connection begins with a PROXY protocol header (v1 or v2):
     * until it is complete the connection is not open (no open callback),
     * but it holds its max_conns slot from the accept (connections that
     * never send a header are bounded too; over the limit the refusal names
     * the balancer's address, the header not being read); its client
     * address is then the peer. A connection without a valid one is closed
     * (event PROXY_ERROR) and its slot given back. */
    bool proxy_protocol;
    unsigned proxy_timeout_ms; /* the header's deadline: idle_timeout_s if
                                  set, else this; 0: 10 s */
    /* TLS on every TCP connection: a server context (sk_tls_server_ctx_new,
     * sockit/transport.h) of which sk_server_new takes its own reference;
     * NULL: plain. A connection is open (open callback, OPEN event) once
     * its handshake is done; until then it counts in max_conns. With
     * proxy_protocol the PROXY header comes first, in clear, then TLS. */
    struct sk_tls_ctx *tls;
    unsigned handshake_timeout_ms; /* the handshake's deadline; 0: 10 s */
    struct sk_server_proto proto;
    sk_server_event_cb on_event; /* NULL: no events (nothing formatted) */
    void *event_user;
};

/* Every reason a server connection can close with: the closed[] index. */
#define SK_SERVER_CLOSE_REASONS (SK_CLOSE_TLS + 1)
/* The reply-latency histogram's buckets: SK_SERVER_LATENCY_BUCKETS upper
 * bounds (sk_server_latency_bound_us: 50 us, 100 us, 250 us ... 1 s), and
 * one more slot for what is above the last. */
#define SK_SERVER_LATENCY_BUCKETS 14

/* What a server did since sk_server_new (sk_server_stats_read,
 * sk_server_wait). Connections in their PROXY header or TLS handshake are
 * not open yet: they count as refused, proxy_errors or tls_failed when
 * they end there. */
struct sk_server_stats {
    uint64_t conns;     /* connections opened (OPEN events) */
    uint64_t refused;   /* over max_conns */
    uint64_t msgs;      /* messages handled */
    uint64_t bytes_in;  /* TCP (after TLS: the plaintext) and UDP payload */
    uint64_t bytes_out;
    uint64_t datagrams; /* UDP replies sent */
    uint64_t proxy_errors; /* connections closed without a valid PROXY header */
    uint64_t open;      /* connections open now (an OPEN event, no CLOSE yet) */
    /* CLOSE events by reason (a TLS handshake that failed has one too). */
    uint64_t closed[SK_SERVER_CLOSE_REASONS];
    uint64_t tls_ok;     /* TLS handshakes done */
    uint64_t tls_failed; /* TLS connections closed before theirs was done */
    /* Replies by latency, from the loop's wake-up that read the message to
     * the write of its reply (the socket took it, or it was queued):
     * latency[i] counts those within (bound(i-1), bound(i)], the last slot
     * those above every bound. Not cumulative. With a delay, the delay is
     * part of it (to within 1 ms). */
    uint64_t latency[SK_SERVER_LATENCY_BUCKETS + 1];
    uint64_t latency_sum_ns;
};

struct sk_server;

/* Binds every listener (fails as a whole: nothing stays bound on error).
 * Returns 0 and *out, or a negative code (SK_EUSAGE: no address, both
 * addresses and inherited sockets, or no message callback); *failed_at,
 * when not NULL, gets the index of the endpoint (or inherited socket) that
 * failed. */
int sk_server_new(const struct sk_server_config *cfg, struct sk_server **out, size_t *failed_at);
/* Number of bound sockets and the address of the i-th ("127.0.0.1:41234"),
 * with its protocol in *udp: port 0 resolves to the real port here. With
 * inherited sockets the i-th is cfg.inherited[i]. */
size_t sk_server_nsockets(const struct sk_server *srv);
int sk_server_socket_addr(const struct sk_server *srv, size_t i, char *buf, size_t len, bool *udp);
/* Starts the worker threads. */
int sk_server_start(struct sk_server *srv);
/* Asks the server to stop: listeners close at once, connections get
 * grace_ms to finish their pending replies, then are closed. Thread-safe. */
void sk_server_stop(struct sk_server *srv);
/* Waits for the workers to finish; *stats as sk_server_stats_read. */
int sk_server_wait(struct sk_server *srv, struct sk_server_stats *stats);
/* Adds up the workers' counters into *stats. Callable from any thread at
 * any time from sk_server_new to sk_server_free, while the workers run
 * too: each counter is read without a lock, so two fields may be a few
 * events apart (never torn; every counter but open only grows).
 * Returns 0. */
int sk_server_stats_read(struct sk_server *srv, struct sk_server_stats *stats);
/* The upper bound of latency bucket i in microseconds (0 for i out of
 * range: i < SK_SERVER_LATENCY_BUCKETS). */
unsigned sk_server_latency_bound_us(size_t i);
/* Replaces the TLS context of a server made with one (certificate
 * rotation): handshakes that start from now on use ctx, those under way and
 * the open sessions keep the one they began with. The server takes its own
 * reference. Thread-safe. Returns 0, or SK_EUSAGE (a plain server, or ctx
 * not a server context). */
int sk_server_set_tls(struct sk_server *srv, struct sk_tls_ctx *ctx);
/* The line a drain says to each open session before its FIN (NULL, the
 * default: none), so that a peer can tell a server going away on purpose,
 * its requests after the line unread and safe to send elsewhere, from one
 * that failed. Sent after the replies to everything already read, then
 * nothing more is read: the session ends with reason shutdown. Sessions
 * whose peer has already sent its FIN, and those cut at the end of
 * grace_ms, get no line. Call before sk_server_start; the string must
 * outlive the server. */
void sk_server_set_shutdown_reply(struct sk_server *srv, const char *line);
/* Closes the listeners and frees the server (after sk_server_wait, or
 * before sk_server_start). NULL is accepted. */
void sk_server_free(struct sk_server *srv);

/* ---- inside the callbacks ---- */

/* Queues n bytes to send. Returns 0 or SK_ERR(ENOMEM) (the connection then
 * closes with reason error once the callback returns). */
int sk_server_conn_write(struct sk_server_conn *c, const void *p, size_t n);
/* Zero-copy form: room for n bytes (NULL: out of memory), then commit the
 * k <= n bytes written there. */
char *sk_server_conn_reserve(struct sk_server_conn *c, size_t n);
void sk_server_conn_commit(struct sk_server_conn *c, size_t k);
/* Ends the connection: the rest of the input is ignored, the replies
 * queued so far are sent, then the server's FIN (reason end). The message
 * that called it is not counted. */
void sk_server_conn_end(struct sk_server_conn *c);
/* The peer's address; the protocol's pointer for this connection. */
const struct sockaddr *sk_server_conn_peer(const struct sk_server_conn *c);
void sk_server_conn_set_data(struct sk_server_conn *c, void *data);
void *sk_server_conn_data(const struct sk_server_conn *c);

#ifdef __cplusplus
}
#endif

#endif
