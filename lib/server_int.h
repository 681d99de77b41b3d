/* Server engine internals shared by server.c (lifecycle, accept),
 * session.c (TCP connections) and udp.c (datagrams). */
#ifndef SOCKIT_SERVER_INT_H
#define SOCKIT_SERVER_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "counter_int.h"
#include "sockit/buf.h"
#include "sockit/loop.h"
#include "sockit/server.h"
#include "stream_int.h"

struct sk__worker;

/* One worker's counters (server_stats.c): written by that worker alone
 * (counter_int.h), summed by sk_server_stats_read on any thread. The
 * blocks live in one array owned by the server, from sk_server_new to
 * sk_server_free, so a reader never races a worker's teardown. */
struct sk__counters {
    sk__counter conns, refused, msgs, datagrams, proxy_errors;
    sk__counter open; /* a gauge: +1 at OPEN, -1 at its CLOSE */
    sk__counter tls_ok, tls_failed;
    struct sk__byte_count bytes; /* TCP (the worker's stream group counts here) and UDP */
    sk__counter closed[SK_SERVER_CLOSE_REASONS];
    sk__counter latency[SK_SERVER_LATENCY_BUCKETS + 1];
    sk__counter latency_sum_ns;
    /* Neighbouring workers' blocks never share a cache line (the array is
     * malloc'ed, not aligned: a gap of a line is the portable way). */
    char pad_[64];
};

/* Counts n replies written latency_ns after their message was read. */
void sk__latency_record(struct sk__counters *c, uint64_t latency_ns, uint64_t n);

/* A listening socket shared by all workers; each worker has its own io
 * handle on it. */
struct sk__listener {
    int fd;
    bool udp;
    int owner; /* the one worker that watches it (--reuseport), or -1: all */
    bool inherited; /* cfg.inherited's: stays listening after a stop */
};

/* A reply waiting for its --delay to pass. Entries sit in their worker's
 * FIFO (every entry has the same delay, so arrival order is due order) and
 * in their session's list, so a closing session can drop its own. */
struct sk__delayed {
    struct sk__delayed *wprev, *wnext; /* worker FIFO */
    struct sk__delayed *cnext;         /* session list */
    struct sk_server_conn *s;
    uint64_t due_ms;
    uint32_t len;
    char data[];
};

/* One TCP connection (a session): a stream and the protocol's state. Kept
 * small: an idle session owns no buffer memory. */
struct sk_server_conn {
    struct sk_stream st; /* first: its memory is the session's (one free);
                          * its group is embedded in the worker */
    uint64_t msgs;
    uint64_t accepted_ms; /* on the worker's loop clock: the close's duration */
    struct sk__delayed *dq_last; /* --delay replies, a ring (session.c); cost: st.out_extra */
    void *data;       /* the protocol's (sk_server_conn_set_data) */
    bool exiting;     /* sk_server_conn_end: close once the output is sent */
    bool backlog;     /* line framing: st.in may hold complete lines not yet
                       * answered (parsing stopped at the pause mark) */
    bool oom;         /* a write from a callback failed: close (error) */
    /* One byte, in the padding before peer (a session stays 216 bytes). */
    unsigned proxy : 2;     /* enum sk__proxy_state: 0 once open */
    unsigned proxy_err : 5; /* the parser's reason (enum sk_proxy_error), if any */
    unsigned tls_wait : 1;  /* in its TLS handshake: not open yet */
    struct sockaddr_in6 peer; /* holds a sockaddr_in too */
};

/* A worker's handle on one shared listener. */
struct sk__listen_handle {
    struct sk_io io;
    struct sk__worker *w;
    const struct sk__listener *l;
    bool active;  /* registered with the loop */
    bool backoff; /* unregistered for a while: out of fds */
};

struct sk__worker {
    struct sk_server *srv;
    struct sk_loop *loop;
    pthread_t thread;
    struct sk__listen_handle *lh; /* one per listener */
    struct sk_io stop_io;    /* eventfd: sk_server_stop() */
    int stop_fd;
    struct sk_timer accept_retry; /* EMFILE back-off */
    bool fd_starved;              /* in a back-off episode (reported once) */
    struct sk_stream_group g;     /* the sessions' streams, limits, memory */
    struct sk_timer delay_timer;
    struct sk_timer grace_timer;
    struct sk__delayed *d_head, *d_tail;
    struct sk_buf wbuf;   /* replies of one read, before the write */
    atomic_bool stop_seen; /* stopping, as seen from other threads */
    struct sk__counters *ctr; /* this worker's block of srv->counters */
    uint64_t lat_pending;     /* messages answered in wbuf, not yet written */
    /* UDP batch buffers (udp.c), allocated only with --udp. */
    void *udp;
};

struct sk_server {
    struct sk_server_config cfg;
    struct sk__listener *listeners;
    size_t nlisteners;
    struct sk__worker *workers;
    unsigned nworkers;
    struct sk__counters *counters; /* cfg.workers blocks, one per worker */
    atomic_size_t open_sessions; /* across workers, for --max-conns */
    atomic_bool stop_requested;  /* sk_server_stop() was called */
    pthread_mutex_t tls_lock;    /* guards cfg.tls (sk_server_set_tls) */
    const char *shutdown_reply;  /* sk_server_set_shutdown_reply; NULL: none */
    /* Memory all sessions hold (--max-memory), each worker adding its
     * changes in steps: read often, written rarely, kept off the cache line
     * of open_sessions (padding: the struct is malloc'ed, not aligned). */
    char pad_[64];
    atomic_size_t mem_held;
    bool started;
    bool udp; /* some listener is UDP: the workers need their batch buffers */
};

/* Reports an event to the application, if it asked for them. */
void sk__server_event(const struct sk_server *srv, const struct sk_server_event *ev);

/* session.c */
/* Initialises the worker's stream group (limits from the config). */
int sk__worker_streams_init(struct sk__worker *w);
void sk__session_accepted(struct sk__worker *w, int fd, const struct sockaddr *peer);
void sk__worker_delay_cb(struct sk_loop *loop, struct sk_timer *t);
static inline struct sk__worker *sk__conn_worker(const struct sk_server_conn *c)
{
    return SK_CONTAINER_OF(c->st.g, struct sk__worker, g);
}
static inline bool sk__worker_has_sessions(const struct sk__worker *w)
{
    return sk__stream_group_busy(&w->g);
}

/* session_proxy.c: --proxy-protocol, before the session is open. */
enum sk__proxy_state {
    SK__PROXY_NONE,    /* open (or no PROXY protocol) */
    SK__PROXY_WAITING, /* its header is not complete */
};
/* Takes a read of a waiting session (n == 0: the peer's FIN). Returns 0
 * (the header needs more), -1 (the session is closed), or 1:
 * the header was consumed, s->peer is its client, *via the connection's
 * own peer (family AF_UNSPEC: none), and the rest of the read is
 * (*data, *n), or, when *data is NULL, what s->st.in holds. */
int sk__proxy_read(struct sk_server_conn *s, const char **data, size_t *n,
                   struct sockaddr_in6 *via);
/* The close of a session that was never open (its slot is given back
 * by the caller). */
void sk__proxy_closing(struct sk_server_conn *s, enum sk_close_reason why);

/* session_tls.c: TLS on the sessions (cfg.tls). */
/* Starts the handshake of a new session with the server's current context.
 * Returns false when the session was closed. */
bool sk__tls_session_start(struct sk_server_conn *s);
/* The same after a PROXY header: the rest of its read is (data, n), or
 * when data is NULL what st.in holds, the first bytes of the handshake. */
bool sk__tls_session_start_after(struct sk_server_conn *s, const char *data, size_t n);
/* --proxy-protocol: the balancer's address (the connection's own peer, in
 * *buf), or NULL when the header named no other client. */
const struct sockaddr *sk__tls_proxied_from(const struct sk_server_conn *s,
                                            struct sockaddr_in6 *buf);
/* The TLS fields of the CLOSE event of a TLS session. */
void sk__tls_close_event(const struct sk_server_conn *s, enum sk_close_reason why,
                         struct sk_server_event *ev);

/* udp.c */
int sk__udp_worker_init(struct sk__worker *w);
void sk__udp_worker_free(struct sk__worker *w);
void sk__udp_readable(struct sk__worker *w, int fd);

#endif
