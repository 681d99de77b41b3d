/* TLS over OpenSSL: context set-up (client: trust store, verification;
 * server: certificate and key, client CAs), the session steps shared with
 * the stream (tls_int.h), and the sk_conn ops for a TLS session on a
 * non-blocking socket.
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
#include <stdatomic.h>
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
#include "tls_int.h"
#include "transport_int.h"

struct sk_tls_ctx {
    SSL_CTX *ssl_ctx;
    atomic_uint refs;  /* the maker's, and one per live session (sk__tls_new) */
    char *cafile;      /* NULL: the system store */
    bool server;       /* a server context (sk_tls_server_ctx_new) */
    /* The trust store, loaded by the first handshake that needs it; a
     * context may be shared by threads, so under store_lock. A failed load
     * (a missing file, or out of memory) is tried again by the next
     * handshake: it must not fail every later one. */
    atomic_bool store_ready; /* loaded */
    pthread_mutex_t store_lock;
    int store_rc;            /* the last load: 0, or SK_ETLS with store_err */
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
    if (atomic_load_explicit(&t->store_ready, memory_order_acquire))
        return 0;
    pthread_mutex_lock(&t->store_lock);
    int rc = 0;
    if (!atomic_load_explicit(&t->store_ready, memory_order_relaxed)) {
        if (t->cafile) {
            if (SSL_CTX_load_verify_locations(t->ssl_ctx, t->cafile, NULL) != 1) {
                char what[300];
                snprintf(what, sizeof what, "cannot load CA file %s", t->cafile);
                take_ssl_error(t->store_err, sizeof t->store_err, what);
                rc = SK_ETLS;
            }
        } else if (load_default_store(t->ssl_ctx) != 1) {
            take_ssl_error(t->store_err, sizeof t->store_err, "cannot load the system CA store");
            rc = SK_ETLS;
        }
        t->store_rc = rc;
        if (rc == 0)
            atomic_store_explicit(&t->store_ready, true, memory_order_release);
    }
    pthread_mutex_unlock(&t->store_lock);
    return rc;
}

/* The last load's failure into err: true when it failed. */
static bool store_failed(struct sk_tls_ctx *t, char *err, size_t errlen)
{
    if (atomic_load_explicit(&t->store_ready, memory_order_acquire))
        return false;
    pthread_mutex_lock(&t->store_lock);
    bool failed = t->store_rc < 0;
    if (failed)
        snprintf(err, errlen, "%s", t->store_err);
    pthread_mutex_unlock(&t->store_lock);
    return failed;
}

static int verify_chain(X509_STORE_CTX *x, void *arg)
{
    if (ensure_store(arg) < 0) {
        X509_STORE_CTX_set_error(x, X509_V_ERR_UNSPECIFIED);
        return 0;
    }
    return X509_verify_cert(x);
}

/* Our certificate (with its chain) and its key, checked against each
 * other. Returns 0 or SK_ETLS with a one-line reason in err. */
static int load_identity(SSL_CTX *ctx, const char *cert, const char *key, char *err,
                         size_t errlen)
{
    char what[300];
    if (!key)
        key = cert;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(what, sizeof what, "cannot load certificate %s", cert);
        take_ssl_error(err, errlen, what);
        return SK_ETLS;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            goto mismatch;
        snprintf(what, sizeof what, "cannot load key %s", key);
        take_ssl_error(err, errlen, what);
        return SK_ETLS;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
mismatch:
        ERR_clear_error();
        snprintf(err, errlen, "the key %s does not match the certificate %s", key, cert);
        return SK_ETLS;
    }
    return 0;
}

static struct sk_tls_ctx *ctx_alloc(void)
{
    struct sk_tls_ctx *t = sk__calloc(1, sizeof *t);
    if (t) {
        t->store_lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
        atomic_init(&t->refs, 1); /* the maker's */
    }
    return t;
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
    struct sk_tls_ctx *t = ctx_alloc();
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
    if (cfg->cert_file && (rc = load_identity(ctx, cfg->cert_file, cfg->key_file, err, errlen)) < 0)
        goto out;
    *out = t;
    t = NULL;
    rc = 0;
out:
    sk_tls_ctx_free(t);
    return rc;
}

int sk_tls_server_ctx_new(const struct sk_tls_server_config *cfg, struct sk_tls_ctx **out,
                          char *err, size_t errlen)
{
    int rc = SK_ERR(ENOMEM);
    *out = NULL;
    OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, NULL);
    struct sk_tls_ctx *t = ctx_alloc();
    if (!t) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    t->server = true;
    t->store_ready = true; /* the client CAs are loaded here, once */
    rc = SK_ETLS;
    if (!cfg->cert_file) {
        snprintf(err, errlen, "no certificate file");
        goto out;
    }
    if (!(t->ssl_ctx = SSL_CTX_new(TLS_server_method()))) {
        take_ssl_error(err, errlen, "cannot create TLS context");
        goto out;
    }
    SSL_CTX *ctx = t->ssl_ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle sessions hold no record buffers; tickets (OpenSSL's default,
     * kept) let clients resume without a server-side cache entry. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* A record's header and body in one read(), not two. */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* One TLS 1.3 ticket per handshake, not OpenSSL's two: each costs an
     * encryption and a record, and one is all a client resumes with. */
    SSL_CTX_set_num_tickets(ctx, 1);
    SSL_CTX_set_app_data(ctx, t);
    if ((rc = load_identity(ctx, cfg->cert_file, cfg->key_file, err, errlen)) < 0)
        goto out;
    if (cfg->client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca);
        if (!names || SSL_CTX_load_verify_locations(ctx, cfg->client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            char what[300];
            snprintf(what, sizeof what, "cannot load client CA file %s", cfg->client_ca);
            take_ssl_error(err, errlen, what);
            rc = SK_ETLS;
            goto out;
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* ctx owns names */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    *out = t;
    t = NULL;
    rc = 0;
out:
    sk_tls_ctx_free(t);
    return rc;
}

bool sk__tls_ctx_is_server(const struct sk_tls_ctx *t)
{
    return t->server;
}

struct sk_tls_ctx *sk_tls_ctx_ref(struct sk_tls_ctx *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void sk_tls_ctx_free(struct sk_tls_ctx *t)
{
    if (!t || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(t->ssl_ctx);
    pthread_mutex_destroy(&t->store_lock);
    free(t->cafile);
    free(t);
}

int sk__tls_result(SSL *ssl, int ok, size_t n, const char *what, bool *want_write, char *err,
                   size_t errlen)
{
    if (ok == 1)
        return (int)n;
    int e = SSL_get_error(ssl, ok);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want_write = false;
        return SK_EAGAIN_MORE;
    case SSL_ERROR_WANT_WRITE:
        *want_write = true;
        return SK_EAGAIN_MORE;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        break;
    }
    if (e == SSL_ERROR_SYSCALL) {
        int saved = errno;
        ERR_clear_error();
        if (saved == 0) {
            snprintf(err, errlen, "%s: connection closed without close_notify", what);
            return SK_ECLOSED;
        }
        snprintf(err, errlen, "%s: %s", what, strerror(saved));
        return SK_ERR(saved);
    }
    unsigned long last = ERR_peek_last_error();
    if (ERR_GET_LIB(last) == ERR_LIB_SSL &&
        ERR_GET_REASON(last) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        snprintf(err, errlen, "%s: connection closed without close_notify", what);
        return SK_ECLOSED;
    }
    take_ssl_error(err, errlen, what);
    return SK_ETLS;
}

/* The conn's view of sk__tls_result: c->want, c->broken, c->err. */
static int tls_result(struct sk_conn *c, int ok, size_t n, const char *what)
{
    bool want_write = false;
    int rc = sk__tls_result(c->tls, ok, n, what, &want_write, c->err, sizeof c->err);
    if (rc == SK_EAGAIN_MORE)
        c->want = want_write ? POLLOUT : POLLIN;
    else if (rc < 0)
        c->broken = true;
    return rc;
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

const char *sk__tls_verify_text(long vr)
{
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH)
        return "host name mismatch";
    if (vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
        return "IP address mismatch";
    return X509_verify_cert_error_string(vr);
}

int sk__tls_handshake(SSL *ssl, bool *want_write, char *err, size_t errlen)
{
    struct sk_tls_ctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    ERR_clear_error();
    int ok = SSL_do_handshake(ssl);
    if (ok == 1)
        return 0;
    long vr = SSL_get_verify_result(ssl);
    int rc = sk__tls_result(ssl, ok, 0, "TLS handshake", want_write, err, errlen);
    if (rc == SK_EAGAIN_MORE) {
        ensure_store(t); /* the ClientHello is out: use the server's turn */
        return rc;
    }
    if (store_failed(t, err, errlen))
        return SK_ETLS;
    if (vr != X509_V_OK) {
        snprintf(err, errlen, "certificate verification failed: %s", sk__tls_verify_text(vr));
        return SK_ETLSVERIFY;
    }
    if (rc == 0 || rc == SK_ECLOSED) {
        snprintf(err, errlen, "TLS handshake: connection closed by peer");
        return SK_ETLS;
    }
    return rc < 0 ? rc : SK_ETLS;
}

static int tls_handshake(struct sk_conn *c)
{
    bool want_write = false;
    int rc = sk__tls_handshake(c->tls, &want_write, c->err, sizeof c->err);
    if (rc == SK_EAGAIN_MORE)
        c->want = want_write ? POLLOUT : POLLIN;
    else if (rc < 0)
        c->broken = true;
    return rc;
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
    sk__tls_free(c->tls);
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
static int (*socket_read)(BIO *, char *, int);

/* The socket BIO's read, after the bytes of sk__tls_set_prefix (the socket
 * BIO leaves its data pointer unused). */
static int prefixed_read(BIO *b, char *buf, int len)
{
    struct sk_buf *pre = BIO_get_data(b);
    if (!pre || sk_buf_size(pre) == 0 || len <= 0)
        return socket_read(b, buf, len);
    size_t n = sk_buf_size(pre) < (size_t)len ? sk_buf_size(pre) : (size_t)len;
    memcpy(buf, sk_buf_head(pre), n);
    sk_buf_consume(pre, n);
    if (sk_buf_size(pre) == 0)
        sk_buf_free(pre);
    BIO_clear_retry_flags(b);
    return (int)n;
}

void sk__tls_set_prefix(SSL *ssl, struct sk_buf *pre)
{
    BIO_set_data(SSL_get_rbio(ssl), pre);
}

static void make_nosigpipe_method(void)
{
    const BIO_METHOD *s = BIO_s_socket();
    BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOCKET, "socket without SIGPIPE");
    if (!m)
        return;
    if (BIO_meth_set_write(m, nosigpipe_write) != 1 ||
        !(socket_read = BIO_meth_get_read(s)) || BIO_meth_set_read(m, prefixed_read) != 1 ||
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
int sk__tls_set_fd(SSL *ssl, int fd)
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

SSL *sk__tls_new(struct sk_tls_ctx *ctx, int fd, const char *host, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx->ssl_ctx);
    if (!ssl) {
        take_ssl_error(err, errlen, "TLS set-up");
        return NULL;
    }
    sk_tls_ctx_ref(ctx); /* the handshake reads ctx: it lives as long as ssl */
    if (fd >= 0 && sk__tls_set_fd(ssl, fd) != 1)
        goto fail;
    if (ctx->server) {
        SSL_set_accept_state(ssl);
        return ssl;
    }
    SSL_set_connect_state(ssl);
    if (host) {
        unsigned char ip[16];
        bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
        if ((!is_ip && SSL_set_tlsext_host_name(ssl, host) != 1) || SSL_set1_host(ssl, host) != 1)
            goto fail;
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    return ssl;
fail:
    take_ssl_error(err, errlen, "TLS set-up");
    sk__tls_free(ssl);
    return NULL;
}

void sk__tls_free(SSL *ssl)
{
    if (!ssl)
        return;
    struct sk_tls_ctx *t = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    SSL_free(ssl);
    sk_tls_ctx_free(t);
}

int sk_conn_new_tls(int fd, struct sk_tls_ctx *ctx, const char *host, struct sk_conn **out)
{
    struct sk_conn *c = NULL;
    int rc = sk__conn_alloc(fd, &tls_ops, &c); /* c owns fd now, even on failure */
    if (rc < 0)
        return rc;
    if (!(c->tls = sk__tls_new(ctx, c->fd, host, c->err, sizeof c->err))) {
        c->broken = true;
        sk_conn_free(c, false);
        *out = NULL;
        return SK_ETLS;
    }
    *out = c;
    return 0;
}
