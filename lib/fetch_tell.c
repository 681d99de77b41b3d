/* The HTTP client tells what it does on the wire, for a program's verbose
 * mode (sockit fetch -v): the address connected to, the TLS session (its
 * version, cipher, the certificate's subject and issuer, its verification's
 * result) and the request as sent, as SK_FETCH_EV_CONNECTED / _TLS /
 * _REQUEST events (CONNECTED and REUSED with the local address too). Nothing is
 * formatted for a person here: the program does that. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "fetch_int.h"

/* "ADDRESS:PORT" (IPv6 in brackets) of the stream's peer, or with local
 * its own end. */
static void addr_text(const struct sk_stream *s, bool local, char *out, size_t cap)
{
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if ((local ? getsockname : getpeername)(s->io.fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
            port = ntohs(a->sin6_port);
        } else if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
            port = ntohs(a->sin_port);
        }
    }
    bool v6 = ss.ss_family == AF_INET6;
    snprintf(out, cap, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

/* An X509 name, RFC 2253 form (control and non-ASCII bytes escaped), into
 * out; returns the bytes written, its NUL included. */
static size_t name_text(const X509_NAME *name, char *out, size_t cap)
{
    out[0] = '\0';
    BIO *b = name ? BIO_new(BIO_s_mem()) : NULL;
    if (b && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(b, out, (int)cap - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    return strlen(out) + 1;
}

/* s (cut to cap - 1 bytes) and its NUL into out; the bytes written. */
static size_t put_field(char *out, size_t cap, const char *s)
{
    snprintf(out, cap, "%s", s ? s : "");
    return strlen(out) + 1;
}

/* version, cipher, subject and issuer, each NUL-terminated, into out. */
static size_t tls_text(const struct sk_stream *s, char *out, size_t cap)
{
    SSL *ssl = s->x->ssl;
    size_t n = put_field(out, cap / 4, SSL_get_version(ssl));
    n += put_field(out + n, cap / 4, SSL_get_cipher_name(ssl));
    X509 *cert = SSL_get1_peer_certificate(ssl);
    n += name_text(cert ? X509_get_subject_name(cert) : NULL, out + n, cap / 4);
    n += name_text(cert ? X509_get_issuer_name(cert) : NULL, out + n, cap / 4);
    X509_free(cert);
    return n;
}

/* The ends of the connection w holds, looked up on its first event only:
 * a kept connection's next requests cost no system call for them. */
static void addr_learn(struct sk__fetch_wire *w)
{
    _Static_assert(sizeof w->addr_peer >= INET6_ADDRSTRLEN + 16, "room for [v6]:port");
    if (w->addr_known)
        return;
    addr_text(&w->s, false, w->addr_peer, sizeof w->addr_peer);
    addr_text(&w->s, true, w->addr_local, sizeof w->addr_local);
    w->addr_known = true;
}

int sk__fetch_tell_connected(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    if (!f->o.on_event || w->told_connected)
        return 0;
    w->told_connected = true;
    addr_learn(w);
    /* total 1: the stream said nothing before its TLS handshake ended, so
     * this comes after it */
    return sk__fetch_event_local(f, SK_FETCH_EV_CONNECTED, w->addr_peer, strlen(w->addr_peer),
                                 sk_stream_is_tls(&w->s) ? 1 : 0, w->addr_local);
}

/* The protocol, then the request as made (for HTTP/2: before its fields
 * become a HEADERS frame). */
static int tell_request(struct sk_fetch *f, size_t len)
{
    const char *proto = f->w.h2 ? "HTTP/2" : "HTTP/1.1";
    int rc = sk__fetch_event(f, SK_FETCH_EV_PROTOCOL, proto, strlen(proto), 0, 0);
    char *eol = f->w.h2 ? memmem(f->buf, len, " HTTP/1.1\r\n", 11) : NULL;
    if (eol && memchr(f->buf, '\n', len) == eol + 10) { /* shown as curl does: "GET / HTTP/2" */
        memcpy(eol, " HTTP/2", 7);
        memmove(eol + 7, eol + 9, len - (size_t)(eol + 9 - f->buf));
        f->w.reqlen = len -= 2; /* fetch_h2.c takes it in this form too */
    }
    return rc < 0 ? rc : sk__fetch_event(f, SK_FETCH_EV_REQUEST, f->buf, len, 0, 0);
}

int sk__fetch_tell_ready(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    if (!f->o.on_event)
        return 0;
    int rc = 0;
    if (sk_stream_is_tls(&w->s)) {
        char text[4 * 512];
        size_t n = tls_text(&w->s, text, sizeof text);
        rc = sk__fetch_event(f, SK_FETCH_EV_TLS, text, n,
                             (uint64_t)SSL_get_verify_result(w->s.x->ssl), 0);
    }
    return rc < 0 ? rc : tell_request(f, w->reqlen);
}

int sk__fetch_tell_reused(struct sk_fetch *f)
{
    struct sk__fetch_wire *w = &f->w;
    if (!f->o.on_event)
        return 0;
    struct sk_fetch *o = sk__fetch_h2_owner(f); /* HTTP/2: maybe another's */
    struct sk__fetch_wire *cw = o ? &o->w : w;
    addr_learn(cw);
    int rc = sk__fetch_event_local(f, SK_FETCH_EV_REUSED, cw->addr_peer, strlen(cw->addr_peer), 0,
                                   cw->addr_local);
    return rc < 0 ? rc : tell_request(f, w->reqlen);
}
