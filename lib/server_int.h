/* Server engine internals shared by server.c (lifecycle, accept),
 * session.c (TCP connections) and udp.c (datagrams). */
#ifndef SOCKIT_SERVER_INT_H
#define SOCKIT_SERVER_INT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "sockit/buf.h"
#include "sockit/loop.h"
#include "sockit/server.h"

struct sk__worker;

/* A listening socket shared by all workers; each worker has its own io
 * handle on it. */
struct sk__listener {
    int fd;
    bool udp;
    int owner; /* the one worker that watches it (--reuseport), or -1: all */
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

/* One TCP connection (a session). Kept small: an idle session owns no
 * buffer memory. */
struct sk_server_conn {
    struct sk_io io;
    struct sk__worker *w;
    struct sk_server_conn *prev, *next; /* worker list, least recently active first */
    uint64_t last_active_ms; /* last progress, read or write (linger: deadline) */
    uint64_t msgs;
    struct sk_buf in;  /* line framing: a partial line, only while one is pending */
    struct sk_buf out; /* replies the socket did not take yet */
    struct sk__delayed *dq_head, *dq_tail;
    size_t dq_bytes;  /* what the delayed replies cost (malloc's blocks) */
    size_t acct;      /* memory counted in the worker's total */
    int outq;         /* unsent bytes in the socket at the last idle check */
    bool read_closed; /* peer sent FIN (or we stopped reading for good) */
    bool exiting;     /* "exit" seen: close once the pending output is sent */
    bool paused;      /* reading paused: too much output pending */
    bool backlog;     /* line framing: s->in may hold complete lines not yet
                       * answered (parsing stopped at the pause mark) */
    bool lingering;   /* ended by an error: the error line goes out, then our
                       * FIN; input is read and discarded until the peer's
                       * FIN or the linger deadline (last_active_ms), so the
                       * close does not reset the line away */
    bool wr_shut;     /* lingering: shutdown(SHUT_WR) done */
    bool closed;      /* sk__session_close done; freed by sk__worker_reap */
    bool oom;         /* a write from a callback failed: close (error) */
    uint8_t linger_why; /* lingering: the reason logged on close */
    void *data;       /* the protocol's (sk_server_conn_set_data) */
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
    bool fd_starved;              /* in a back-off episode (logged once) */
    struct sk_timer idle_timer;
    struct sk_timer delay_timer;
    struct sk_timer grace_timer;
    struct sk_server_conn *s_head, *s_tail;
    struct sk_server_conn *l_head, *l_tail; /* lingering, deadline order */
    struct sk_server_conn *dead; /* closed, not yet freed (linked by next) */
    struct sk_timer linger_timer;
    size_t nsessions;
    struct sk__delayed *d_head, *d_tail;
    struct sk_buf wbuf;   /* replies of one read, before the write */
    struct sk_timer mem_timer; /* output-limit and memory-budget checks */
    size_t mem;                /* memory this worker's sessions hold */
    long long mem_unpub;       /* change of mem not yet in srv->mem_held */
    uint64_t stall_scan_ms;    /* next output-limit scan of the sessions */
    char *rbuf;           /* read scratch, rbuf_size bytes */
    size_t rbuf_size;
    bool stopping;
    atomic_bool stop_seen; /* stopping, as seen from other threads */
    struct sk_server_stats stats;
    /* UDP batch buffers (udp.c), allocated only with --udp. */
    void *udp;
};

struct sk_server {
    struct sk_server_config cfg;
    struct sk__listener *listeners;
    size_t nlisteners;
    struct sk__worker *workers;
    unsigned nworkers;
    atomic_size_t open_sessions; /* across workers, for --max-conns */
    atomic_bool stop_requested;  /* sk_server_stop() was called */
    /* Memory all sessions hold (--max-memory), each worker adding its
     * changes in steps: read often, written rarely, kept off the cache line
     * of open_sessions (padding: the struct is malloc'ed, not aligned). */
    char pad_[64];
    atomic_size_t mem_held;
    bool started;
};

/* Reports an event to the application, if it asked for them. */
void sk__server_event(const struct sk_server *srv, const struct sk_server_event *ev);

/* session.c */
void sk__session_accepted(struct sk__worker *w, int fd, const struct sockaddr *peer);
/* Closes (logs, releases the fd and buffers); idempotent. The memory stays
 * valid until sk__worker_reap, which every entry point of session.c calls
 * on return: a caller may still look at a session closed under it. */
void sk__session_close(struct sk_server_conn *s, enum sk_close_reason why);
void sk__worker_reap(struct sk__worker *w);
void sk__worker_idle_cb(struct sk_loop *loop, struct sk_timer *t);
void sk__worker_delay_cb(struct sk_loop *loop, struct sk_timer *t);
/* Shutdown: stop reading everywhere, close sessions with nothing pending. */
void sk__worker_drain(struct sk__worker *w);
/* Closes every session of the worker, lingering ones included. */
void sk__worker_close_all(struct sk__worker *w, enum sk_close_reason why);
static inline bool sk__worker_has_sessions(const struct sk__worker *w)
{
    return w->s_head || w->l_head;
}

/* udp.c */
int sk__udp_worker_init(struct sk__worker *w);
void sk__udp_worker_free(struct sk__worker *w);
void sk__udp_readable(struct sk__worker *w, int fd);

#endif
