/* TLS client over OpenSSL: context set-up (trust store, verification) and
 * the sk_conn ops for a TLS session on a non-blocking socket.
 *
 * Verification is on by default: the chain against the trust store, and the
 * host name (or IP address) against the certificate's subjectAltName via
 * SSL_set1_host. SNI is sent for names, never for IP literals (RFC 6066).
 * SSL_OP_IGNORE_UNEXPECTED_EOF is deliberately not set: a TCP close
 * without close_notify must stay distinguishable from a clean end, or a
 * truncated close-delimited body would pass for a complete one. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "alloc_int.h"
#include "sockit/err.h"
#include "transport_int.h"

struct sk_tls_ctx {
    SSL_CTX *ssl_ctx;
    char *cafile;      /* NULL: the system store */
    bool store_ready;  /* the trust store has been loaded (or failed to) */
    int store_rc;      /* 0, or SK_ETLS with store_err */
    char store_err[320];
};

/* The oldest queued OpenSSL error as text, and clears the queue. */
static void take_ssl_error(char *buf, size_t len, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char detail[200] = "unknown error";
    if (e)
        ERR_error_string_n(e, detail, sizeof detail);
    ERR_clear_error();
    snprintf(buf, len, "%s: %s", what, detail);
}

/* The trust store when no CA file is given: SSL_CERT_FILE / SSL_CERT_DIR
 * when set; otherwise the hashed certificate directory, which OpenSSL reads
 * lazily (one file per lookup) instead of parsing the whole bundle up front.
 * That keeps start-up of a small HTTPS fetch cheap. The bundle file is the
 * fallback when the directory is missing. */
static int load_default_store(SSL_CTX *ctx)
{
    const char *env_file = getenv(X509_get_default_cert_file_env());
    const char *env_dir = getenv(X509_get_default_cert_dir_env());
    if (env_file || env_dir)
        return SSL_CTX_set_default_verify_paths(ctx);
    const char *dir = X509_get_default_cert_dir();
    if (access(dir, R_OK | X_OK) == 0 && SSL_CTX_load_verify_dir(ctx, dir) == 1)
        return 1;
    return SSL_CTX_set_default_verify_paths(ctx);
}

/* Loads the trust store into the context, once. This runs while the
 * ClientHello is in flight (see tls_handshake), so reading and parsing the
 * CA certificates overlaps the server's turn instead of delaying the
 * handshake; the verify callback makes sure it has happened before any
 * chain is checked, whatever the timing. */
static int ensure_store(struct sk_tls_ctx *t)
{
    if (t->store_ready)
        return t->store_rc;
    t->store_ready = true;
    if (t->cafile) {
        if (SSL_CTX_load_verify_locations(t->ssl_ctx, t->cafile, NULL) != 1) {
            char what[300];
            snprintf(what, sizeof what, "cannot load CA file %s", t->cafile);
            take_ssl_error(t->store_err, sizeof t->store_err, what);
            t->store_rc = SK_ETLS;
        }
    } else if (load_default_store(t->ssl_ctx) != 1) {
        take_ssl_error(t->store_err, sizeof t->store_err, "cannot load the system CA store");
        t->store_rc = SK_ETLS;
    }
    return t->store_rc;
}

static int verify_chain(X509_STORE_CTX *x, void *arg)
{
    if (ensure_store(arg) < 0) {
        X509_STORE_CTX_set_error(x, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    return X509_verify_cert(x);
}

int sk_tls_ctx_new(const struct sk_tls_config *cfg, struct sk_tls_ctx **out, char *err,
                   size_t errlen)
{
    int rc = SK_ERR(ENOMEM);
    *out = NULL;
    /* Skip OpenSSL's atexit teardown: it frees every global table one by
     * one and costs a short-lived client more than a whole TLS handshake
     * of its own work; the process is ending anyway. */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, NULL);
    struct sk_tls_ctx *t = sk__calloc(1, sizeof *t);
    if (!t || (cfg->cafile && !(t->cafile = sk__strdup(cfg->cafile)))) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    if (!(t->ssl_ctx = SSL_CTX_new(TLS_client_method()))) {
        take_ssl_error(err, errlen, "cannot create TLS context");
        rc = SK_ETLS;
        goto out;
    }
    SSL_CTX *ctx = t->ssl_ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    /* Read whole socket buffers at once: fewer syscalls on large bodies. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
    SSL_CTX_set_verify(ctx, cfg->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_app_data(ctx, t);
    if (cfg->insecure)
        t->store_ready = true; /* nothing to verify against */
    else
        SSL_CTX_set_cert_verify_callback(ctx, verify_chain, t);
    *out = t;
    t = NULL;
    rc = 0;
out:
    sk_tls_ctx_free(t);
    return rc;
}

void sk_tls_ctx_free(struct sk_tls_ctx *t)
{
    if (!t)
        return;
    SSL_CTX_free(t->ssl_ctx);
    free(t->cafile);
    free(t);
}

/* Maps the outcome of an SSL I/O call: the count, SK_EAGAIN_MORE with
 * c->want set, 0 for close_notify, or an error with c->err filled in. */
static int tls_result(struct sk_conn *c, int ok, size_t n, const char *what)
{
    SSL *ssl = c->tls;
    if (ok == 1)
        return (int)n;
    int e = SSL_get_error(ssl, ok);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        c->want = POLLIN;
        return SK_EAGAIN_MORE;
    case SSL_ERROR_WANT_WRITE:
        c->want = POLLOUT;
        return SK_EAGAIN_MORE;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        break;
    }
    c->broken = true;
    if (e == SSL_ERROR_SYSCALL) {
        int saved = errno;
        ERR_clear_error();
        if (saved == 0) {
            snprintf(c->err, sizeof c->err, "%s: connection closed without close_notify", what);
            return SK_ECLOSED;
        }
        snprintf(c->err, sizeof c->err, "%s: %s", what, strerror(saved));
        return SK_ERR(saved);
    }
    unsigned long err = ERR_peek_last_error();
    if (ERR_GET_LIB(err) == ERR_LIB_SSL &&
        ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        snprintf(c->err, sizeof c->err, "%s: connection closed without close_notify", what);
        return SK_ECLOSED;
    }
    take_ssl_error(c->err, sizeof c->err, what);
    return SK_ETLS;
}

static int tls_read(struct sk_conn *c, void *buf, size_t len)
{
    size_t n = 0;
    ERR_clear_error();
    int ok = SSL_read_ex(c->tls, buf, len, &n);
    return tls_result(c, ok, n, "TLS read");
}

static int tls_write(struct sk_conn *c, const void *buf, size_t len)
{
    size_t n = 0;
    ERR_clear_error();
    int ok = SSL_write_ex(c->tls, buf, len, &n);
    return tls_result(c, ok, n, "TLS write");
}

static int tls_handshake(struct sk_conn *c)
{
    struct sk_tls_ctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(c->tls));
    ERR_clear_error();
    int ok = SSL_connect(c->tls);
    if (ok == 1)
        return 0;
    long vr = SSL_get_verify_result(c->tls);
    int rc = tls_result(c, ok, 0, "TLS handshake");
    if (rc == SK_EAGAIN_MORE) {
        ensure_store(t); /* the ClientHello is out: use the server's turn */
        return rc;
    }
    if (t->store_rc < 0) {
        snprintf(c->err, sizeof c->err, "%s", t->store_err);
        return SK_ETLS;
    }
    if (vr != X509_V_OK) {
        snprintf(c->err, sizeof c->err, "certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
        return SK_ETLSVERIFY;
    }
    if (rc == 0 || rc == SK_ECLOSED) {
        snprintf(c->err, sizeof c->err, "TLS handshake: connection closed by peer");
        return SK_ETLS;
    }
    return rc < 0 ? rc : SK_ETLS;
}

static void tls_shutdown(struct sk_conn *c)
{
    /* One non-blocking attempt: close_notify goes out if the socket takes
     * it; we never wait for the peer's. */
    ERR_clear_error();
    (void)SSL_shutdown(c->tls);
    ERR_clear_error();
}

static void tls_free(struct sk_conn *c)
{
    SSL_free(c->tls);
    c->tls = NULL;
}

static const struct sk__conn_ops tls_ops = {
    .read = tls_read,
    .write = tls_write,
    .handshake = tls_handshake,
    .shutdown = tls_shutdown,
    .free = tls_free,
    .fill = true,
};

/* OpenSSL's socket BIO writes with write(2), so a peer that has gone away
 * (a reset before our request, or our alert) raises SIGPIPE, which a client
 * takes for its own output being closed (fetch exits 10). This BIO is the
 * socket BIO with writes done by send(MSG_NOSIGNAL), as plain TCP does. */
static int nosigpipe_write(BIO *b, const char *buf, int len)
{
    int fd = -1;
    BIO_get_fd(b, &fd);
    BIO_clear_retry_flags(b);
    int n = (int)send(fd, buf, (size_t)len, MSG_NOSIGNAL);
    if (n <= 0 && BIO_sock_should_retry(n))
        BIO_set_retry_write(b);
    return n;
}

static BIO_METHOD *nosigpipe_method;

static void make_nosigpipe_method(void)
{
    const BIO_METHOD *s = BIO_s_socket();
    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOCKET, "socket without SIGPIPE");
    if (!m)
        return;
    if (BIO_meth_set_write(m, nosigpipe_write) != 1 ||
        BIO_meth_set_read(m, BIO_meth_get_read(s)) != 1 ||
        BIO_meth_set_puts(m, BIO_meth_get_puts(s)) != 1 ||
        BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(s)) != 1 ||
        BIO_meth_set_create(m, BIO_meth_get_create(s)) != 1 ||
        BIO_meth_set_destroy(m, BIO_meth_get_destroy(s)) != 1) {
        BIO_meth_free(m);
        return;
    }
    nosigpipe_method = m; /* kept for the process's life, like OpenSSL's own */
}

/* Attaches fd to ssl through the BIO above. 1 on success, as SSL_set_fd. */
static int set_socket(SSL *ssl, int fd)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_nosigpipe_method);
    BIO *bio = nosigpipe_method ? BIO_new(nosigpipe_method) : NULL;
    if (!bio)
        return 0;
    BIO_set_fd(bio, fd, BIO_NOCLOSE);
    SSL_set_bio(ssl, bio, bio); /* ssl owns it: one reference for both ends */
    return 1;
}

int sk_conn_new_tls(int fd, struct sk_tls_ctx *ctx, const char *host, struct sk_conn **out)
{
    struct sk_conn *c = NULL;
    int rc = sk__conn_alloc(fd, &tls_ops, &c); /* c owns fd now, even on failure */
    if (rc < 0)
        return rc;
    SSL *ssl = SSL_new(ctx->ssl_ctx);
    if (!ssl) {
        rc = SK_ERR(ENOMEM);
        goto fail;
    }
    c->tls = ssl; /* released by tls_free */
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (set_socket(ssl, c->fd) != 1 || (!is_ip && SSL_set_tlsext_host_name(ssl, host) != 1) ||
        SSL_set1_host(ssl, host) != 1) {
        take_ssl_error(c->err, sizeof c->err, "TLS set-up");
        rc = SK_ETLS;
        goto fail;
    }
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    *out = c;
    return 0;
fail:
    c->broken = true;
    sk_conn_free(c, false);
    *out = NULL;
    return rc;
}
