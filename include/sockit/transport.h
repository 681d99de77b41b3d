/* A byte stream over plain TCP or TLS behind one interface, with every
 * wait bounded by a deadline.
 *
 * struct sk_conn owns its socket (and TLS session); sk_conn_free() is the
 * one release, and sends TLS close_notify only when told the exchange ended
 * cleanly. Deadlines are absolute times on the sk_now_ms() clock; 0 means
 * none. Reads and writes return SK_ETIMEDOUT when the deadline passes and
 * SK_ERR(ECANCELED) when a signal arrives while *cancel (if set) is
 * non-zero. */
#ifndef SOCKIT_TRANSPORT_H
#define SOCKIT_TRANSPORT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sk_conn;
struct sk_tls_ctx;

/* Client-side TLS settings: verification is on unless insecure. */
struct sk_tls_config {
    const char *cafile; /* trust only these CAs (PEM); NULL: the system store */
    bool insecure;      /* skip chain and host-name verification */
    const char *cert_file; /* a client certificate (PEM, then its chain); NULL: none */
    const char *key_file;  /* its private key (PEM); NULL: in cert_file */
};

/* Creates a client TLS context (TLS 1.2+). On failure returns SK_ETLS
 * with a one-line reason in err (e.g. an unreadable CA file, a key that
 * does not match the certificate), or -ENOMEM. */
int sk_tls_ctx_new(const struct sk_tls_config *cfg, struct sk_tls_ctx **out, char *err,
                   size_t errlen);

/* Server-side TLS settings. */
struct sk_tls_server_config {
    const char *cert_file; /* the certificate (PEM), then its chain */
    const char *key_file;  /* its private key (PEM); NULL: in cert_file */
    const char *client_ca; /* clients must present a certificate chaining to
                            * these CAs (PEM); NULL: none asked for */
};

/* Creates a server TLS context (TLS 1.2 and 1.3, 1.3 preferred; session
 * tickets on) for sk_stream_start_tls. On failure returns SK_ETLS with a
 * one-line reason in err (an unreadable file, a bad PEM, a key that does
 * not match the certificate), or -ENOMEM. Threads: a context may be used
 * by streams of any thread once made; make and free it on one. */
int sk_tls_server_ctx_new(const struct sk_tls_server_config *cfg, struct sk_tls_ctx **out,
                          char *err, size_t errlen);
/* Contexts are reference-counted: the maker holds one reference, and every
 * stream or conn started with a context holds its own until it is freed,
 * so the maker may free (or replace) a context while sessions still use
 * it. sk_tls_ctx_ref takes one more reference (thread-safe) and returns
 * ctx; sk_tls_ctx_free drops one (NULL is fine), the last frees it. */
struct sk_tls_ctx *sk_tls_ctx_ref(struct sk_tls_ctx *ctx);
void sk_tls_ctx_free(struct sk_tls_ctx *ctx);

/* Wraps the connected socket fd. Ownership of fd passes to the conn at the
 * call, even when it fails (fd is then closed). Returns 0 or -ENOMEM. */
int sk_conn_new_plain(int fd, struct sk_conn **out);
/* As sk_conn_new_plain, for TLS to `host` (SNI when host is a name; the
 * certificate is checked against host, name or IP address). Call
 * sk_conn_handshake() next. */
int sk_conn_new_tls(int fd, struct sk_tls_ctx *ctx, const char *host, struct sk_conn **out);
/* Runs the TLS handshake (no-op for plain). Returns 0, SK_ETLSVERIFY (the
 * certificate was rejected), SK_ETLS, SK_ETIMEDOUT, or -errno; the detail
 * is in sk_conn_error(). */
int sk_conn_handshake(struct sk_conn *c, uint64_t deadline_ms);

/* Reads up to len bytes (at most INT_MAX). Returns the count (> 0), 0 at a
 * clean end of stream (TCP FIN; for TLS only a close_notify), or a negative
 * code; SK_ECLOSED is an end of stream without close_notify on TLS. */
int sk_conn_read(struct sk_conn *c, void *buf, size_t len, uint64_t deadline_ms);
/* Writes all of buf. Returns 0 or a negative code. */
int sk_conn_write(struct sk_conn *c, const void *buf, size_t len, uint64_t deadline_ms);

void sk_conn_set_cancel(struct sk_conn *c, const volatile sig_atomic_t *cancel);
/* A one-line description of the last failure ("" if none). */
const char *sk_conn_error(const struct sk_conn *c);
/* Releases c (NULL is fine). clean: the exchange ended as the protocol
 * says, so TLS may send close_notify (best effort, never blocks). */
void sk_conn_free(struct sk_conn *c, bool clean);
/* Cleanup helper for SK_AUTO: an unclean release. */
void sk_conn_freep(struct sk_conn **c);

#ifdef __cplusplus
}
#endif

#endif
