/* Inside the library: the OpenSSL pieces that the blocking conn
 * (tls_openssl.c) and the stream on the loop (stream_tls.c) share, so a
 * session is set up, driven and judged the same way by both. */
#ifndef SOCKIT_TLS_INT_H
#define SOCKIT_TLS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "sockit/buf.h"
#include "sockit/transport.h"

/* Attaches fd (not owned) to ssl; writes never raise SIGPIPE. 1 on
 * success, as SSL_set_fd. */
int sk__tls_set_fd(SSL *ssl, int fd);
/* A session on fd (not owned; < 0: none yet, see sk__tls_set_fd) for ctx: the client role (SNI for a host
 * name, the name or IP address verified) or, for a server context, the
 * server role (host unused). NULL on failure, with a reason in err. */
SSL *sk__tls_new(struct sk_tls_ctx *ctx, int fd, const char *host, char *err, size_t errlen);
/* ssl (attached by sk__tls_set_fd) reads pre's bytes before the socket's,
 * freeing pre's memory once they are taken; pre must outlive ssl. */
void sk__tls_set_prefix(SSL *ssl, struct sk_buf *pre);
/* Frees a session of sk__tls_new and its reference on the context (NULL
 * is fine). */
void sk__tls_free(SSL *ssl);
bool sk__tls_ctx_is_server(const struct sk_tls_ctx *ctx);
/* Maps the outcome of an SSL I/O call: the count n when ok == 1,
 * SK_EAGAIN_MORE with *want_write saying which readiness it waits for, 0
 * for the peer's close_notify, SK_ECLOSED for an end without it, or an
 * error with a one-line reason in err (SK_ETLS, -errno). */
int sk__tls_result(SSL *ssl, int ok, size_t n, const char *what, bool *want_write, char *err,
                   size_t errlen);
/* One handshake step: 0 when done, SK_EAGAIN_MORE with *want_write, or
 * SK_ETLSVERIFY / SK_ETLS / -errno with a one-line reason in err. */
int sk__tls_handshake(SSL *ssl, bool *want_write, char *err, size_t errlen);
/* The one-line reason for a verification result ("host name mismatch"). */
const char *sk__tls_verify_text(long vr);

#endif
