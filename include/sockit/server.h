/* The greeting server engine behind `sockit serve`.
 *
 * N worker threads, each running its own event loop; all workers watch the
 * same listening sockets (EPOLLEXCLUSIVE wakes one of them per connection).
 * Sessions live on one worker for their whole life, so nothing about a
 * session is shared between threads. */
#ifndef SOCKIT_SERVER_H
#define SOCKIT_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sockit/addr.h"
#include "sockit/framing.h"
#include "sockit/log.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SK_SERVER_MAX_LISTEN 16
#define SK_SERVER_MAX_MEMORY ((size_t)256 << 20) /* default of max_memory */

struct sk_server_config {
    struct sk_endpoint listen[SK_SERVER_MAX_LISTEN];
    size_t nlisten;         /* 0: 127.0.0.1:8888 */
    bool udp;               /* also serve UDP on the same addresses */
    enum sk_framing framing;
    unsigned delay_ms;      /* reply delay (the seed's sleep) */
    size_t max_conns;       /* 0: unlimited (bounded by RLIMIT_NOFILE) */
    unsigned idle_timeout_s;/* 0: never */
    unsigned workers;       /* 0: online CPUs */
    bool reuseport;         /* one SO_REUSEPORT socket per worker instead of
                               one socket shared by all (EPOLLEXCLUSIVE) */
    int backlog;            /* <= 0: the system's maximum (net.core.somaxconn) */
    size_t max_msg;         /* line framing: longest message; 0: 64 KiB */
    size_t out_pause;       /* pending output that pauses reading; 0: 256 KiB */
    size_t out_limit;       /* pending output that closes the session; 0: 4 MiB */
    unsigned grace_ms;      /* shutdown: time left to sessions; 0: 2000 */
    size_t max_memory;      /* memory all sessions' buffers may hold, server-
                               wide; 0: SK_SERVER_MAX_MEMORY; SIZE_MAX: none */
    struct sk_log *log;     /* NULL: quiet (not owned) */
};

struct sk_server_stats {
    uint64_t conns;     /* sessions accepted */
    uint64_t refused;   /* over --max-conns */
    uint64_t msgs;      /* messages answered */
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t datagrams; /* UDP datagrams answered */
};

struct sk_server;

/* Binds every listener (fails as a whole: nothing stays bound on error).
 * Returns 0 and *out, or a negative code; *failed_at, when not NULL, gets
 * the index of the endpoint that failed. */
int sk_server_new(const struct sk_server_config *cfg, struct sk_server **out, size_t *failed_at);
/* Number of bound sockets and the address of the i-th ("127.0.0.1:41234"),
 * with its protocol in *udp: port 0 resolves to the real port here. */
size_t sk_server_nsockets(const struct sk_server *srv);
int sk_server_socket_addr(const struct sk_server *srv, size_t i, char *buf, size_t len, bool *udp);
/* Starts the worker threads. */
int sk_server_start(struct sk_server *srv);
/* Asks the server to stop: listeners close at once, sessions get grace_ms to
 * finish their pending replies, then are closed. Thread-safe. */
void sk_server_stop(struct sk_server *srv);
/* Waits for the workers to finish and adds up their counters. */
int sk_server_wait(struct sk_server *srv, struct sk_server_stats *stats);
/* Closes the listeners and frees the server (after sk_server_wait, or
 * before sk_server_start). NULL is accepted. */
void sk_server_free(struct sk_server *srv);

#ifdef __cplusplus
}
#endif

#endif
