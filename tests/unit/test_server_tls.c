/* Unit tests: the server engine with TLS (cfg.tls, sk_server_set_tls): the
 * maker frees its context at once and the server and its sessions keep it
 * alive; a replaced context lives on with the session that uses it; misuse
 * is SK_EUSAGE. LSan (sanitizer build) checks every reference is dropped. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

static char dir[64];

static void certs_make(void)
{
    snprintf(dir, sizeof dir, "/tmp/sockit-unit-stls-XXXXXX");
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

/* dir/name in buf. */
static const char *in_dir(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
    return buf;
}

static struct sk_tls_ctx *server_ctx(void)
{
    char cert[128], key[128], err[320];
    struct sk_tls_server_config sc = {.cert_file = in_dir(cert, sizeof cert, "srv.pem"),
                                      .key_file = in_dir(key, sizeof key, "srv.key")};
    struct sk_tls_ctx *ctx = NULL;
    cr_assert_eq(sk_tls_server_ctx_new(&sc, &ctx, err, sizeof err), 0, "%s", err);
    return ctx;
}

static int hello_open(void *user, struct sk_server_conn *c)
{
    (void)user;
    return sk_server_conn_write(c, "hi", 2);
}

static int echo(void *user, struct sk_server_conn *c, const char *msg, size_t n)
{
    (void)user;
    return sk_server_conn_write(c, msg, n);
}

static struct sk_server *start_server(struct sk_tls_ctx *ctx, struct sk_endpoint *bound)
{
    struct sk_server_config cfg = {.nlisten = 1, .workers = 1, .tls = ctx,
                                   .proto = {.open = hello_open, .message = echo}};
    cr_assert_eq(sk_endpoint_parse("127.0.0.1:0", &cfg.listen[0]), 0);
    struct sk_server *srv = NULL;
    cr_assert_eq(sk_server_new(&cfg, &srv, NULL), 0);
    cr_assert_eq(sk_server_start(srv), 0);
    char addr[64];
    cr_assert_eq(sk_server_socket_addr(srv, 0, addr, sizeof addr, NULL), 0);
    cr_assert_eq(sk_endpoint_parse(addr, bound), 0);
    return srv;
}

/* A client that has its greeting. */
static struct sk_conn *client(const struct sk_endpoint *ep, struct sk_tls_ctx *cctx)
{
    uint64_t deadline = sk_now_ms() + 10000;
    int fd = sk_connect_until(ep, SOCK_STREAM, deadline, true);
    cr_assert_geq(fd, 0);
    struct sk_conn *c = NULL;
    cr_assert_eq(sk_conn_new_tls(fd, cctx, "localhost", &c), 0);
    cr_assert_eq(sk_conn_handshake(c, deadline), 0, "%s", sk_conn_error(c));
    char buf[8];
    cr_assert_eq(sk_conn_read(c, buf, sizeof buf, deadline), 2);
    cr_assert(memcmp(buf, "hi", 2) == 0);
    return c;
}

static void round_trip(struct sk_conn *c)
{
    uint64_t deadline = sk_now_ms() + 10000;
    char buf[8];
    cr_assert_eq(sk_conn_write(c, "M", 1, deadline), 0);
    cr_assert_eq(sk_conn_read(c, buf, sizeof buf, deadline), 1);
    cr_assert_eq(buf[0], 'M');
}

TestSuite(server_tls, .init = certs_make, .fini = certs_remove, .timeout = 60);

Test(server_tls, contexts_are_held_by_the_server_and_by_each_session)
{
    char ca[128], err[320];
    struct sk_tls_config cc = {.cafile = in_dir(ca, sizeof ca, "ca.pem")};
    struct sk_tls_ctx *cctx = NULL;
    cr_assert_eq(sk_tls_ctx_new(&cc, &cctx, err, sizeof err), 0, "%s", err);
    struct sk_tls_ctx *first = server_ctx();
    struct sk_endpoint ep;
    struct sk_server *srv = start_server(first, &ep);
    sk_tls_ctx_free(first); /* the server has its own reference */
    struct sk_conn *old = client(&ep, cctx);
    struct sk_tls_ctx *second = server_ctx();
    cr_assert_eq(sk_server_set_tls(srv, second), 0);
    sk_tls_ctx_free(second);
    /* The first context now lives only in the old session. */
    struct sk_conn *new = client(&ep, cctx);
    round_trip(old);
    round_trip(new);
    sk_conn_free(old, true);
    sk_conn_free(new, true);
    sk_server_stop(srv);
    struct sk_server_stats st;
    cr_assert_eq(sk_server_wait(srv, &st), 0);
    cr_assert_eq(st.conns, 2);
    sk_server_free(srv);
    sk_tls_ctx_free(cctx);
}

Test(server_tls, misuse_is_a_usage_error)
{
    char ca[128], err[320];
    struct sk_tls_config cc = {.cafile = in_dir(ca, sizeof ca, "ca.pem")};
    struct sk_tls_ctx *cctx = NULL;
    cr_assert_eq(sk_tls_ctx_new(&cc, &cctx, err, sizeof err), 0, "%s", err);
    struct sk_server_config cfg = {.nlisten = 1, .workers = 1, .tls = cctx,
                                   .proto = {.message = echo}};
    cr_assert_eq(sk_endpoint_parse("127.0.0.1:0", &cfg.listen[0]), 0);
    struct sk_server *srv = NULL;
    cr_assert_eq(sk_server_new(&cfg, &srv, NULL), SK_EUSAGE, "a client context");
    cfg.tls = NULL;
    cr_assert_eq(sk_server_new(&cfg, &srv, NULL), 0);
    struct sk_tls_ctx *sctx = server_ctx();
    cr_assert_eq(sk_server_set_tls(srv, sctx), SK_EUSAGE, "a plain server stays plain");
    sk_server_free(srv);
    sk_tls_ctx_free(sctx);
    sk_tls_ctx_free(cctx);
    cr_assert_str_eq(sk_tls_end_name(SK_TLS_END_CLOSE_NOTIFY), "close_notify");
    cr_assert_str_eq(sk_tls_end_name((enum sk_tls_end)99), "?");
}
