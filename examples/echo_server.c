/* A line echo server on libsockit's server engine.
 *
 *   echo_server HOST:PORT    each line a client sends comes back unchanged
 *
 * The engine does the rest: line framing (lines over 64 KiB close that
 * client), back-pressure, idle timeout, the memory bound, and on SIGTERM or
 * SIGINT a graceful drain (pending replies go out, 2 s at most), then exit
 * 0. Events are printed to stderr as "open PEER" / "close PEER REASON
 * messages=N bytes_in=N bytes_out=N duration_ms=N". */
#include <pthread.h>
#include <signal.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sockit.h"

static int echo_line(void *user, struct sk_server_conn *c, const char *line, size_t n)
{
    (void)user;
    char *dst = sk_server_conn_reserve(c, n + 1);
    if (!dst)
        return SK_ERR(ENOMEM);
    memcpy(dst, line, n);
    dst[n] = '\n';
    sk_server_conn_commit(c, n + 1);
    return 0;
}

static void print_event(void *user, const struct sk_server_event *ev)
{
    (void)user;
    char addr[SK_ADDRSTR_MAX];
    if (ev->kind == SK_SERVER_OPEN)
        fprintf(stderr, "open %s\n", sk_addr_format(ev->peer, addr, sizeof addr));
    else if (ev->kind == SK_SERVER_CLOSE)
        fprintf(stderr, "close %s %s messages=%" PRIu64 " bytes_in=%" PRIu64 " bytes_out=%" PRIu64
                " duration_ms=%" PRIu64 "\n", sk_addr_format(ev->peer, addr, sizeof addr),
                sk_close_reason_name(ev->reason), ev->messages, ev->bytes_in, ev->bytes_out,
                ev->duration_ms);
}

int main(int argc, char **argv)
{
    struct sk_server_config cfg = {
        .nlisten = 1,
        .framing = SK_FRAMING_LINE,
        .workers = 2,
        .idle_timeout_s = 300,
        .proto = {.message = echo_line, .too_long_reply = "error: line too long\n"},
        .on_event = print_event,
    };
    if (argc != 2 || sk_endpoint_parse(argv[1], &cfg.listen[0]) < 0) {
        fprintf(stderr, "usage: echo_server HOST:PORT\n");
        return 2;
    }
    /* Signals are taken by this thread (sigwait); the workers block them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sk_server *srv = NULL;
    int rc = sk_server_new(&cfg, &srv, NULL);
    if (rc == 0 && (rc = sk_server_start(srv)) < 0)
        sk_server_free(srv);
    if (rc < 0) {
        fprintf(stderr, "echo_server: %s: %s\n", argv[1], sk_strerror(rc));
        return 1;
    }
    char addr[SK_ADDRSTR_MAX];
    if (sk_server_socket_addr(srv, 0, addr, sizeof addr, NULL) == 0)
        fprintf(stderr, "listening on %s (tcp)\n", addr);
    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    sk_server_stop(srv); /* drain: pending replies get grace_ms */
    struct sk_server_stats st;
    sk_server_wait(srv, &st);
    sk_server_free(srv);
    fprintf(stderr, "stopped: connections=%llu lines=%llu\n", (unsigned long long)st.conns,
            (unsigned long long)st.msgs);
    return 0;
}
