/* Unit tests: TLS on sk_stream (both ends streams on one loop, over a
 * socketpair), the set-up deadlines, and sk_stream_connect_list (Happy
 * Eyeballs on the loop). Certificates are made at test time by
 * make_test_certs.sh. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include "../../lib/alloc_int.h"
#include "../../lib/stream_int.h"
#include "sockit.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_LSAN 1
#endif
#endif
#ifdef HAVE_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static char dir[64];

static void certs_make(void)
{
    snprintf(dir, sizeof dir, "/tmp/sockit-unit-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char cmd[160];
    snprintf(cmd, sizeof cmd, "sh tests/unit/make_test_certs.sh %s", dir);
    cr_assert_eq(system(cmd), 0, "make_test_certs.sh failed");
}

static void certs_remove(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)system(cmd);
}

static const char *path(const char *name)
{
    static char p[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
    return p[i];
}

/* ---- the two ends ---- */

struct end {
    struct sk_stream st;
    const char *name;
    int connected, connect_err, closed_why, released;
    bool close_notify; /* at the read of 0 bytes */
    bool saw_eof;
    char version[32], cipher[64], verify[128], error[200];
    /* behaviour */
    bool echo;            /* write back what is read */
    const char *hello;    /* written when connected */
    bool close_after_hello;    /* then closed without close_notify */
    bool shutdown_after_hello; /* then half-closed: close_notify, FIN */
    const char *bye;      /* at the peer's end: our last words */
    /* bulk */
    size_t to_send, sent, got;
    size_t max_queued;
    bool check_pattern;
    bool bad_pattern;
    /* resumption */
    bool keep_session;    /* take the session at the close */
    struct sk_tls_session *session;
    bool resumed;         /* at the connected callback */
    int late_set_rc;      /* sk_stream_tls_set_session once connected */
};

static void note_tls(struct end *e)
{
    const char *v = sk_stream_tls_version(&e->st), *c = sk_stream_tls_cipher(&e->st);
    snprintf(e->version, sizeof e->version, "%s", v ? v : "");
    snprintf(e->cipher, sizeof e->cipher, "%s", c ? c : "");
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 7 % 251);
}

static void pump(struct end *e)
{
    static unsigned char chunk[32 * 1024];
    while (e->sent < e->to_send && !sk_stream_over_high_water(&e->st)) {
        size_t n = e->to_send - e->sent < sizeof chunk ? e->to_send - e->sent : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(e->sent + i);
        if (sk_stream_write(&e->st, chunk, n) < 0)
            return;
        e->sent += n;
    }
    if (sk_buf_size(&e->st.out) > e->max_queued)
        e->max_queued = sk_stream_queued(&e->st);
}

static bool t_read(struct sk_stream *s, const char *data, size_t n)
{
    struct end *e = SK_CONTAINER_OF(s, struct end, st);
    if (n == 0) {
        e->saw_eof = true;
        e->close_notify = sk_stream_tls_close_notify(s);
        sk_stream_shutdown(s, SK_CLOSE_EOF, e->bye, e->bye ? strlen(e->bye) : 0);
        return false;
    }
    if (e->check_pattern)
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)data[i] != pattern(e->got + i))
                e->bad_pattern = true;
    e->got += n;
    if (e->echo) {
        if (sk_stream_write(s, data, n) < 0)
            return false;
        if (sk_stream_queued(s) > e->max_queued)
            e->max_queued = sk_stream_queued(s);
        if (sk_stream_over_high_water(s)) {
            sk_stream_update(s, false); /* back-pressure: read no more for now */
            return false;
        }
    }
    if (e->to_send && e->got == e->to_send) /* all of it came back */
        sk_stream_shutdown(s, SK_CLOSE_END, NULL, 0);
    return true;
}

static void t_flushed(struct sk_stream *s)
{
    struct end *e = SK_CONTAINER_OF(s, struct end, st);
    pump(e);
    /* The sender reads its echo whatever its own queue holds (or both
     * ends would wait on each other); the echo pauses over the mark. */
    sk_stream_update(s, e->to_send || !sk_stream_over_high_water(s));
}

static void t_close(struct sk_stream *s, enum sk_close_reason why)
{
    struct end *e = SK_CONTAINER_OF(s, struct end, st);
    e->closed_why = (int)why;
    const char *v = sk_stream_tls_verify_error(s);
    snprintf(e->verify, sizeof e->verify, "%s", v ? v : "");
    snprintf(e->error, sizeof e->error, "%s", sk_stream_error(s));
    if (e->keep_session)
        e->session = sk_stream_tls_session(s);
}

static void t_release(struct sk_stream *s)
{
    SK_CONTAINER_OF(s, struct end, st)->released++;
}

static void t_connected(struct sk_stream *s, int err)
{
    struct end *e = SK_CONTAINER_OF(s, struct end, st);
    e->connected++;
    e->connect_err = err;
    if (err)
        return;
    note_tls(e);
    e->resumed = sk_stream_tls_resumed(s);
    e->late_set_rc = sk_stream_tls_set_session(s, NULL);
    if (e->hello)
        sk_stream_write(s, e->hello, strlen(e->hello));
    if (e->close_after_hello)
        sk_stream_close(s, SK_CLOSE_END);
    else if (e->shutdown_after_hello)
        sk_stream_shutdown(s, SK_CLOSE_END, NULL, 0);
    else
        pump(e);
}

static const struct sk_stream_cbs cbs = {.read = t_read, .flushed = t_flushed, .close = t_close,
                                         .release = t_release, .connected = t_connected};

struct world {
    struct sk_loop *loop;
    struct sk_stream_group *g;
    struct sk_tls_ctx *cctx, *sctx;
    bool shared_sctx; /* sctx is the caller's: not freed with the world */
    struct end cli, srv;
};

static void end_init(struct end *e, const char *name)
{
    memset(e, 0, sizeof *e);
    e->name = name;
    e->closed_why = -1;
}

/* A loop and group; the contexts (the server's: sctx when not NULL).
 * cafile and client_ca are names in dir (cafile NULL: our CA; client_ca
 * NULL: no client certificates), made into paths here where they are
 * used: path()'s few buffers are reused. */
static void world_new_with(struct world *w, const struct sk_stream_limits *lim,
                           const char *cafile, const char *client_ca, struct sk_tls_ctx *sctx)
{
    memset(w, 0, sizeof *w);
    int err = 0;
    char msg[400];
    w->loop = sk_loop_new(&err);
    cr_assert_not_null(w->loop);
    w->g = sk_stream_group_new(w->loop, &cbs, lim, &err);
    cr_assert_not_null(w->g);
    struct sk_tls_config cc = {.cafile = path(cafile ? cafile : "ca.pem")};
    if (client_ca) {
        cc.cert_file = path("cli.pem");
        cc.key_file = path("cli.key");
    }
    cr_assert_eq(sk_tls_ctx_new(&cc, &w->cctx, msg, sizeof msg), 0, "%s", msg);
    struct sk_tls_server_config sc = {.cert_file = path("srv.pem"), .key_file = path("srv.key"),
                                      .client_ca = client_ca ? path(client_ca) : NULL};
    w->shared_sctx = sctx != NULL;
    w->sctx = sctx;
    if (!sctx)
        cr_assert_eq(sk_tls_server_ctx_new(&sc, &w->sctx, msg, sizeof msg), 0, "%s", msg);
    end_init(&w->cli, "client");
    end_init(&w->srv, "server");
}

static void world_new(struct world *w, const struct sk_stream_limits *lim, const char *cafile,
                      const char *client_ca)
{
    world_new_with(w, lim, cafile, client_ca, NULL);
}

/* Both ends on a socketpair, TLS on both; host: what the client verifies. */
static int world_pair(struct world *w, const char *host)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    int rc = sk_stream_open(w->g, &w->srv.st, sv[1]);
    if (rc == 0)
        rc = sk_stream_start_tls(&w->srv.st, w->sctx, NULL);
    int rc2 = sk_stream_open(w->g, &w->cli.st, sv[0]);
    if (rc2 == 0)
        rc2 = sk_stream_start_tls(&w->cli.st, w->cctx, host);
    return rc < 0 ? rc : rc2;
}

static void world_free(struct world *w)
{
    sk_stream_group_free(w->g);
    cr_assert_eq(sk_loop_free(w->loop), 0, "a handle was left behind");
    sk_tls_ctx_free(w->cctx);
    if (!w->shared_sctx)
        sk_tls_ctx_free(w->sctx);
}

TestSuite(stream_tls, .init = certs_make, .fini = certs_remove);

Test(stream_tls, handshake_then_close_notify_both_ways)
{
    struct world w;
    world_new(&w, NULL, NULL, NULL);
    w.cli.hello = "ping\n";
    w.cli.shutdown_after_hello = true; /* half-close: close_notify, FIN */
    w.srv.bye = "bye\n";               /* the server answers the end with its last words */
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    uint64_t t0 = sk_now_ms();
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.connected, 1);
    cr_assert_eq(w.cli.connect_err, 0);
    cr_assert_eq(w.srv.connected, 1, "the server role reports its handshake too");
    cr_assert_str_eq(w.cli.version, "TLSv1.3");
    cr_assert_str_eq(w.srv.version, "TLSv1.3");
    cr_assert_str_eq(w.cli.cipher, w.srv.cipher);
    cr_assert_gt(strlen(w.cli.cipher), 0);
    cr_assert_eq(w.srv.got, 5);
    cr_assert(w.srv.saw_eof && w.srv.close_notify, "the client ended with close_notify");
    cr_assert_eq(w.srv.closed_why, SK_CLOSE_EOF);
    cr_assert_eq(w.cli.closed_why, SK_CLOSE_END);
    cr_assert_lt(sk_now_ms() - t0, 1500, "the linger ended at the peer's close, not at 2 s");
    cr_assert_str_eq(w.cli.error, "");
    world_free(&w);
    cr_assert_eq(w.cli.released + w.srv.released, 2);
}

Test(stream_tls, a_kept_session_resumes_on_the_next_connection)
{
    struct world w;
    world_new(&w, NULL, NULL, NULL);
    w.srv.hello = "hi";
    w.srv.shutdown_after_hello = true;
    w.cli.keep_session = true;
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert(sk_stream_tls_handshaking(&w.cli.st), "TCP is up: the handshake runs");
    cr_assert_null(sk_stream_tls_session(&w.cli.st), "no session before the handshake");
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.got, 2);
    cr_assert(!w.cli.resumed, "the first handshake is a full one");
    cr_assert_eq(w.cli.late_set_rc, SK_EUSAGE, "a session offered after the handshake");
    struct sk_tls_session *sess = w.cli.session;
    cr_assert_not_null(sess, "the ticket came before the server's data");

    end_init(&w.cli, "client");
    end_init(&w.srv, "server");
    w.srv.hello = "hi";
    w.srv.shutdown_after_hello = true;
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert_eq(sk_stream_tls_set_session(&w.srv.st, sess), SK_EUSAGE, "the server role");
    cr_assert_eq(sk_stream_tls_set_session(&w.cli.st, sess), 0);
    sk_tls_session_free(sess); /* the stream holds its own */
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.connect_err, 0);
    cr_assert(w.cli.resumed, "the kept session resumed");
    cr_assert(!sk_stream_tls_handshaking(&w.cli.st));
    world_free(&w);
}

Test(stream_tls, a_plain_stream_has_no_session)
{
    int err = 0, sv[2];
    struct sk_loop *loop = sk_loop_new(&err);
    struct sk_stream_group *g = sk_stream_group_new(loop, &cbs, NULL, &err);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    struct end e;
    end_init(&e, "plain");
    cr_assert_eq(sk_stream_open(g, &e.st, sv[0]), 0);
    cr_assert_eq(sk_stream_tls_set_session(&e.st, NULL), SK_EUSAGE);
    cr_assert_null(sk_stream_tls_session(&e.st));
    cr_assert(!sk_stream_tls_resumed(&e.st) && !sk_stream_tls_handshaking(&e.st));
    sk_stream_group_free(g);
    close(sv[1]);
    cr_assert_eq(sk_loop_free(loop), 0);
}

Test(stream_tls, a_close_without_close_notify_is_a_truncation)
{
    struct world w;
    world_new(&w, NULL, NULL, NULL);
    w.srv.hello = "data";
    w.srv.close_after_hello = true;
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.got, 4);
    cr_assert(w.cli.saw_eof);
    cr_assert(!w.cli.close_notify, "a FIN without close_notify must not pass for a clean end");
    world_free(&w);
}

Test(stream_tls, wrong_host_fails_verification_with_its_reason)
{
    struct world w;
    world_new(&w, NULL, NULL, NULL);
    cr_assert_eq(world_pair(&w, "wrong.example"), 0);
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.connected, 1);
    cr_assert_eq(w.cli.connect_err, SK_ETLSVERIFY);
    cr_assert_eq(w.cli.closed_why, SK_CLOSE_TLS);
    cr_assert_str_eq(w.cli.verify, "host name mismatch");
    cr_assert_str_eq(w.cli.error, "certificate verification failed: host name mismatch");
    cr_assert_lt(w.srv.connect_err, 0, "the server sees the client's alert");
    cr_assert(w.srv.closed_why == SK_CLOSE_TLS || w.srv.closed_why == SK_CLOSE_RESET);
    world_free(&w);
}

Test(stream_tls, an_unknown_ca_fails_verification_with_its_reason)
{
    struct world w;
    world_new(&w, NULL, "other.pem", NULL);
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.connect_err, SK_ETLSVERIFY);
    cr_assert_str_eq(w.cli.verify, "unable to get local issuer certificate");
    cr_assert_eq(w.cli.closed_why, SK_CLOSE_TLS);
    world_free(&w);
}

/* A trust store that failed to load is tried again by the next handshake:
 * one failure (a file not there yet, or out of memory) must not fail every
 * later connection made with the context. */
Test(stream_tls, a_failed_trust_store_load_is_retried)
{
    struct world w;
    world_new(&w, NULL, "late-ca.pem", NULL);
    w.srv.close_after_hello = true;
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.connect_err, SK_ETLS);
    cr_assert_neq(strstr(w.cli.error, "cannot load CA file"), NULL, "%s", w.cli.error);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "cp %s %s", path("ca.pem"), path("late-ca.pem"));
    cr_assert_eq(system(cmd), 0);
    end_init(&w.cli, "client");
    end_init(&w.srv, "server");
    w.srv.close_after_hello = true;
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.connect_err, 0, "%s", w.cli.error);
    world_free(&w);
}

Test(stream_tls, the_ip_address_is_verified_too)
{
    struct world w;
    world_new(&w, NULL, NULL, NULL);
    w.srv.close_after_hello = true;
    cr_assert_eq(world_pair(&w, "127.0.0.1"), 0);
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.connect_err, 0);
    world_free(&w);
    world_new(&w, NULL, NULL, NULL);
    cr_assert_eq(world_pair(&w, "127.0.0.2"), 0);
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_str_eq(w.cli.verify, "IP address mismatch");
    world_free(&w);
}

Test(stream_tls, client_certificates_are_required_and_checked)
{
    struct world w;
    world_new(&w, NULL, NULL, "ca.pem");
    w.srv.close_after_hello = true;
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.srv.connect_err, 0, "%s", w.srv.error);
    world_free(&w);
    /* Without one: the server refuses. */
    world_new(&w, NULL, NULL, NULL);
    sk_tls_ctx_free(w.sctx);
    char msg[400];
    struct sk_tls_server_config sc = {.cert_file = path("srv.pem"), .key_file = path("srv.key"),
                                      .client_ca = path("ca.pem")};
    cr_assert_eq(sk_tls_server_ctx_new(&sc, &w.sctx, msg, sizeof msg), 0, "%s", msg);
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.srv.closed_why, SK_CLOSE_TLS, "%s", w.srv.error);
    cr_assert_lt(w.srv.connect_err, 0);
    world_free(&w);
    /* One from a CA the server does not trust: refused, with the reason. */
    world_new(&w, NULL, NULL, "other.pem");
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.srv.connect_err, SK_ETLSVERIFY, "%s", w.srv.error);
    cr_assert_eq(w.srv.closed_why, SK_CLOSE_TLS);
    cr_assert_neq(w.srv.verify[0], 0, "the server says why it refused");
    /* TLS 1.3: the client's handshake ends before the server checks its
     * certificate; the server's alert comes as a failed read. */
    cr_assert_eq(w.cli.closed_why, SK_CLOSE_TLS, "%d %s", w.cli.closed_why, w.cli.error);
    cr_assert_neq(strstr(w.cli.error, "alert"), NULL, "%s", w.cli.error);
    world_free(&w);
}

Test(stream_tls, bad_server_identities_are_one_line_errors)
{
    struct sk_tls_ctx *t = NULL;
    char msg[400];
    struct sk_tls_server_config mismatch = {.cert_file = path("srv.pem"),
                                            .key_file = path("cli.key")};
    cr_assert_eq(sk_tls_server_ctx_new(&mismatch, &t, msg, sizeof msg), SK_ETLS);
    cr_assert_null(t);
    cr_assert(strstr(msg, "does not match the certificate"), "%s", msg);
    cr_assert_null(strchr(msg, '\n'));
    struct sk_tls_server_config bad = {.cert_file = path("bad.pem"), .key_file = path("srv.key")};
    cr_assert_eq(sk_tls_server_ctx_new(&bad, &t, msg, sizeof msg), SK_ETLS);
    cr_assert(strstr(msg, "cannot load certificate"), "%s", msg);
    struct sk_tls_server_config missing = {.cert_file = path("none.pem")};
    cr_assert_eq(sk_tls_server_ctx_new(&missing, &t, msg, sizeof msg), SK_ETLS);
    cr_assert(strstr(msg, "none.pem"), "%s", msg);
    struct sk_tls_server_config badca = {.cert_file = path("srv.pem"),
                                         .key_file = path("srv.key"),
                                         .client_ca = path("bad.pem")};
    cr_assert_eq(sk_tls_server_ctx_new(&badca, &t, msg, sizeof msg), SK_ETLS);
    cr_assert(strstr(msg, "client CA"), "%s", msg);
}

/* A raw peer on the other end of a socketpair, a TLS server stream here. */
static int server_with_raw_peer(struct world *w)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    cr_assert_eq(sk_stream_open(w->g, &w->srv.st, sv[1]), 0);
    cr_assert_eq(sk_stream_start_tls(&w->srv.st, w->sctx, NULL), 0);
    return sv[0];
}

Test(stream_tls, a_peer_that_stalls_in_the_handshake_is_closed_at_the_deadline)
{
    struct world w;
    struct sk_stream_limits lim = {.handshake_ms = 150, .idle_ms = 30};
    world_new(&w, &lim, NULL, NULL);
    /* The loop's clock is only brought up to date by the loop: set-up
     * before it runs must not start the deadline in the past. */
    while (sk_now_ms() < sk_loop_now(w.loop) + 100)
        ;
    uint64_t t0 = sk_now_ms();
    int peer = server_with_raw_peer(&w);
    cr_assert_eq(write(peer, "\x16\x03\x01", 3), 3); /* the start of a record, then nothing */
    cr_assert_eq(sk_loop_run(w.loop), 0);
    uint64_t took = sk_now_ms() - t0;
    cr_assert_eq(w.srv.closed_why, SK_CLOSE_HANDSHAKE_TIMEOUT,
                 "the idle deadline does not apply in the handshake: %d", w.srv.closed_why);
    cr_assert_eq(w.srv.connect_err, SK_ETIMEDOUT);
    cr_assert_geq(took, 140);
    cr_assert_lt(took, 2000);
    cr_assert_str_eq(sk_close_reason_name(SK_CLOSE_HANDSHAKE_TIMEOUT), "handshake-timeout");
    close(peer);
    world_free(&w);
}

Test(stream_tls, garbage_instead_of_a_client_hello_is_a_tls_error)
{
    struct world w;
    world_new(&w, NULL, NULL, NULL);
    int peer = server_with_raw_peer(&w);
    const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(write(peer, req, strlen(req)), (ssize_t)strlen(req));
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.srv.closed_why, SK_CLOSE_TLS);
    cr_assert_eq(w.srv.connect_err, SK_ETLS);
    cr_assert_neq(strstr(w.srv.error, "TLS handshake"), NULL, "%s", w.srv.error);
    cr_assert_null(strchr(w.srv.error, '\n'));
    cr_assert_str_eq(sk_close_reason_name(SK_CLOSE_TLS), "tls-error");
    close(peer);
    world_free(&w);
}

Test(stream_tls, bulk_data_both_ways_with_back_pressure)
{
    struct world w;
    struct sk_stream_limits lim = {.high_water = 64 * 1024};
    world_new(&w, &lim, NULL, NULL);
    w.cli.to_send = 4u << 20; /* many TLS records each way */
    w.cli.check_pattern = true;
    w.srv.echo = true;
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.sent, w.cli.to_send);
    cr_assert_eq(w.srv.got, w.cli.to_send);
    cr_assert_eq(w.cli.got, w.cli.to_send, "all of it came back");
    cr_assert(!w.cli.bad_pattern, "the bytes came back in order, unchanged");
    /* The echo stops reading over the mark: its queue stays within the mark
     * plus one read. */
    cr_assert_leq(w.srv.max_queued, 64 * 1024 + 64 * 1024, "%zu", w.srv.max_queued);
    cr_assert_leq(w.cli.max_queued, 64 * 1024 + 32 * 1024, "%zu", w.cli.max_queued);
    cr_assert(w.srv.close_notify);
    world_free(&w);
}

Test(stream_tls, writes_made_before_the_handshake_ends_go_out_after_it)
{
    struct world w;
    world_new(&w, NULL, NULL, NULL);
    w.srv.bye = "";
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert_eq(sk_stream_write(&w.cli.st, "early", 5), 0);
    cr_assert_eq(sk_stream_queued(&w.cli.st), 5);
    cr_assert_eq(sk_stream_shutdown(&w.cli.st, SK_CLOSE_END, "!", 1), SK_ERR(EPIPE),
                 "a half-close before anything was said is a close");
    cr_assert_eq(sk_loop_run(w.loop), 0);
    world_free(&w);
    world_new(&w, NULL, NULL, NULL);
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    cr_assert_eq(sk_stream_write(&w.cli.st, "early", 5), 0);
    w.cli.shutdown_after_hello = true;
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.srv.got, 5);
    world_free(&w);
}

/* ---- TLS after sk_stream_connect_list, over TCP ---- */

struct acceptor {
    struct sk_io io;
    struct world *w;
};

static void accept_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)events;
    struct acceptor *a = SK_CONTAINER_OF(io, struct acceptor, io);
    int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    sk_io_close(loop, io); /* one connection is all this test takes */
    if (sk_stream_open(a->w->g, &a->w->srv.st, fd) == 0)
        sk_stream_start_tls(&a->w->srv.st, a->w->sctx, NULL);
}

Test(stream_tls, tls_starts_when_a_connect_list_connects)
{
    struct world w;
    world_new(&w, NULL, NULL, NULL);
    w.cli.hello = "ping\n";
    w.cli.shutdown_after_hello = true;
    w.srv.bye = "bye\n";
    struct sockaddr_in sa[2] = {{.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)}};
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof sa[1];
    cr_assert_eq(bind(lfd, (struct sockaddr *)&sa[0], sizeof sa[0]), 0);
    cr_assert_eq(listen(lfd, 4), 0);
    cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sa[1], &len), 0);
    int gone = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); /* a refused address first */
    cr_assert_eq(bind(gone, (struct sockaddr *)&sa[0], sizeof sa[0]), 0);
    len = sizeof sa[0];
    cr_assert_eq(getsockname(gone, (struct sockaddr *)&sa[0], &len), 0);
    close(gone);
    struct addrinfo ai[2] = {
        {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_addrlen = sizeof sa[0],
         .ai_addr = (struct sockaddr *)&sa[0], .ai_next = &ai[1]},
        {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM, .ai_addrlen = sizeof sa[1],
         .ai_addr = (struct sockaddr *)&sa[1]},
    };
    struct acceptor acc = {.w = &w};
    cr_assert_eq(sk_io_start(w.loop, &acc.io, lfd, SK_READ, accept_cb), 0);
    cr_assert_eq(sk_stream_connect_list(w.g, &w.cli.st, ai), 0);
    cr_assert_eq(sk_stream_start_tls(&w.cli.st, w.cctx, "127.0.0.1"), 0);
    cr_assert_eq(sk_stream_write(&w.cli.st, "early", 5), 0, "queued until the handshake ends");
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.connected, 1, "one connected callback: TCP and TLS both done");
    cr_assert_eq(w.cli.connect_err, 0, "%s", w.cli.error);
    cr_assert_str_eq(w.cli.version, "TLSv1.3");
    cr_assert_eq(w.srv.got, 10, "the early write, then the hello");
    cr_assert(w.srv.close_notify);
    cr_assert_eq(w.cli.closed_why, SK_CLOSE_END);
    world_free(&w);
}

/* ---- allocation failures: OpenSSL's allocations go through lib/alloc.c ---- */

/* OpenSSL takes allocation functions only before its first allocation, and
 * Criterion's start-up allocates through it (libgit2 initialises libssh2,
 * which initialises libcrypto), before any test runs: so they are set from
 * a constructor, before main. They pass through to malloc until a test
 * turns on routing, so other tests do not count OpenSSL's allocations. */
static bool mem_functions_set;
static atomic_bool routing;

static void *t_malloc(size_t n, const char *f, int l)
{
    (void)f, (void)l;
    return atomic_load_explicit(&routing, memory_order_relaxed) ? sk__malloc(n) : malloc(n);
}

static void *t_realloc(void *p, size_t n, const char *f, int l)
{
    (void)f, (void)l;
    return atomic_load_explicit(&routing, memory_order_relaxed) ? sk__realloc(p, n)
                                                                : realloc(p, n);
}

static void t_free(void *p, const char *f, int l)
{
    (void)f, (void)l;
    free(p);
}

__attribute__((constructor)) static void route_openssl_allocations(void)
{
    mem_functions_set = CRYPTO_set_mem_functions(t_malloc, t_realloc, t_free) == 1;
}

static int fd_count(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));)
        n++;
    if (d)
        closedir(d);
    return n;
}

/* One exchange with allocation k failing: a handshake, bulk data each way
 * (reads and writes), close_notify. Returns the allocations it made. */
static unsigned long one_run(unsigned long k, struct sk_tls_ctx *sctx, bool *clean)
{
    struct world w;
    struct sk_stream_limits lim = {.high_water = 16 * 1024};
    world_new_with(&w, &lim, NULL, NULL, sctx);
    w.cli.to_send = 100 * 1024;
    w.srv.echo = true;
    uint64_t t0 = sk_now_ms();
    sk__alloc_fail_at(k);
    int rc = world_pair(&w, "localhost");
    if (rc == 0 || rc == SK_ERR(ENOMEM) || rc == SK_ETLS)
        cr_assert_eq(sk_loop_run(w.loop), 0);
    unsigned long used = sk__alloc_count();
    sk__alloc_fail_at(0);
    /* Each end closes at the other's end: a run that lasts the 2 s linger
     * had a stream that missed it (one spun on a wedged session). */
    cr_assert_lt(sk_now_ms() - t0, 1900, "k=%lu: a stream waited out its linger", k);
    *clean = w.cli.got == w.cli.to_send && w.srv.close_notify;
    world_free(&w);
    return used;
}

/* The walk over k is cut in slices, each a test (a process) of its own:
 * a run costs about one handshake, and a whole walk is thousands of them,
 * too long for one test's deadline on a sanitizer build. */
#define ALLOC_SLICES 8

ParameterizedTestParameters(stream_tls, every_allocation_failure_closes_cleanly)
{
    static unsigned slices[ALLOC_SLICES];
    for (unsigned i = 0; i < ALLOC_SLICES; i++)
        slices[i] = i;
    return cr_make_param_array(unsigned, slices, ALLOC_SLICES);
}

ParameterizedTest(unsigned *slice, stream_tls, every_allocation_failure_closes_cleanly,
                  .timeout = 120)
{
    cr_assert(mem_functions_set, "OpenSSL allocated before the test could route its allocations");
    atomic_store(&routing, true);
    /* One server context for every run (it is shared like that in real
     * use, and made before any failure is armed): making one costs more
     * than the rest of a run. */
    struct world base;
    world_new(&base, NULL, NULL, NULL);
    int fds = fd_count();
    bool clean;
    unsigned long total = one_run(0, base.sctx, &clean);
    cr_assert(clean, "the run without failures works");
    cr_assert_gt(total, 50);
    /* Slice i takes every ALLOC_SLICES-th k from i + 1: each slice walks
     * the handshake, the data and the close alike. */
    unsigned long failed = 0;
    for (unsigned long k = *slice + 1; k <= total; k += ALLOC_SLICES) {
        one_run(k, base.sctx, &clean);
        failed += !clean;
        cr_assert_eq(fd_count(), fds, "fd leak at k=%lu", k);
    }
    cr_assert_gt(failed, 0, "the failures reached the streams");
    world_free(&base);
#ifdef HAVE_LSAN
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "leaks: see the report above");
#endif
}

/* The record buffers: released while idle (both roles), or kept for the
 * group's streams with tls_keep_buffers. */
static void check_buffer_mode(bool keep)
{
    struct world w;
    struct sk_stream_limits lim = {.tls_keep_buffers = keep};
    world_new(&w, &lim, NULL, NULL);
    w.cli.to_send = 256 * 1024;
    w.srv.echo = true;
    cr_assert_eq(world_pair(&w, "localhost"), 0);
    long want = keep ? 0 : SSL_MODE_RELEASE_BUFFERS;
    cr_assert_eq(SSL_get_mode(w.cli.st.x->ssl) & SSL_MODE_RELEASE_BUFFERS, want);
    cr_assert_eq(SSL_get_mode(w.srv.st.x->ssl) & SSL_MODE_RELEASE_BUFFERS, want,
                 "the server context's own setting gives way too");
    cr_assert_eq(sk_loop_run(w.loop), 0);
    cr_assert_eq(w.cli.got, w.cli.to_send);
    world_free(&w);
}

Test(stream_tls, record_buffers_are_released_unless_the_group_keeps_them)
{
    check_buffer_mode(false);
    check_buffer_mode(true);
}
