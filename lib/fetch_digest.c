/* The HTTP client's sha256 option: the body's SHA-256, checked before the
 * output is committed, so the file never appears with bytes other than the
 * expected ones (the checksum step of every install script, done before the
 * rename). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "chars_int.h"
#include "fetch_int.h"

int sk_fetch_parse_sha256(const char *hex, unsigned char out[32])
{
    if (strlen(hex) != 64 || sk__hex_decode(hex, out, 32) < 0)
        return SK_EPARSE;
    return 0;
}

int sk__fetch_digest_begin(struct sk_fetch *f, struct sk__fetch_sink *sink, int prefix_fd,
                           uint64_t prefix_len)
{
    sink->md = NULL;
    if (!f->o.sha256)
        return 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return sk_fetch_set_error(f, SK_ERR(ENOMEM), "cannot set up SHA-256");
    }
    sink->md = md;
    /* RESUME: the bytes already in FILE.part are part of the file. Not
     * f->buf: it holds the first body bytes right now. */
    for (uint64_t off = 0; off < prefix_len;) {
        /* Gigabytes may be read back here: a cancel or max_time must not
         * wait for the end. */
        if (f->cx->flag)
            return sk__fetch_interrupted(f, "checking the partial file");
        if (f->deadline_ms && sk_now_ms() >= f->deadline_ms)
            return sk_fetch_fail_as(f, SK_ETIMEDOUT, "checking the partial file");
        size_t want =
            prefix_len - off < sizeof f->chunk ? (size_t)(prefix_len - off) : sizeof f->chunk;
        ssize_t n = pread(prefix_fd, f->chunk, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return sk_fetch_set_error(f, SK_EWRITE, "cannot read back the partial file: %s",
                                      n < 0 ? strerror(errno) : "unexpected end");
        EVP_DigestUpdate(md, f->chunk, (size_t)n);
        off += (uint64_t)n;
    }
    return 0;
}

void sk__fetch_digest_add(struct sk__fetch_sink *sink, const void *p, size_t n)
{
    if (sink->md)
        EVP_DigestUpdate(sink->md, p, n);
}

int sk__fetch_digest_check(struct sk_fetch *f, struct sk__fetch_sink *sink)
{
    if (!sink->md)
        return 0;
    unsigned char got[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(sink->md, got, &len);
    if (len == 32 && memcmp(got, f->o.sha256, 32) == 0)
        return 0;
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", got[i]);
    return sk_fetch_set_error(f, SK_ECHECKSUM,
                              "SHA-256 mismatch: the body's is %s (body not saved)", hex);
}

void sk__fetch_digest_free(struct sk__fetch_sink *sink)
{
    EVP_MD_CTX_free(sink->md);
    sink->md = NULL;
}
