/* sockit fetch --sha256: the body's SHA-256, checked before the output is
 * committed, so FILE never appears with bytes other than the expected ones
 * (the checksum step of every install script, done before the rename). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fetch.h"

int fetch_parse_sha256(const char *hex, unsigned char out[32])
{
    if (strlen(hex) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        unsigned v = 0;
        for (int j = 0; j < 2; j++) {
            char c = hex[2 * i + j];
            v <<= 4;
            if (c >= '0' && c <= '9')
                v |= (unsigned)(c - '0');
            else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
                v |= (unsigned)((c | 0x20) - 'a' + 10);
            else
                return -1;
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

int fetch_digest_begin(struct fetch_state *fs, struct fetch_sink *sink, int prefix_fd,
                       uint64_t prefix_len)
{
    sink->md = NULL;
    if (!fs->o->has_sha256)
        return FX_OK;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return fetch_fail(fs, FX_FAIL, "cannot set up SHA-256");
    }
    sink->md = md;
    /* -C: the bytes already in FILE.part are part of the file. Not fs->buf:
     * it holds the first body bytes right now. */
    static char chunk[64 * 1024];
    for (uint64_t off = 0; off < prefix_len;) {
        /* Gigabytes may be read back here: a signal or --max-time must not
         * wait for the end. */
        if (fetch_cancel)
            return fetch_interrupted(fs, "checking the partial file");
        if (fs->deadline_ms && sk_now_ms() >= fs->deadline_ms)
            return fetch_fail_sk(fs, SK_ETIMEDOUT, "checking the partial file");
        size_t want = prefix_len - off < sizeof chunk ? (size_t)(prefix_len - off) : sizeof chunk;
        ssize_t n = pread(prefix_fd, chunk, want, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fetch_fail(fs, FX_WRITE, "cannot read back the partial file: %s",
                              n < 0 ? strerror(errno) : "unexpected end");
        EVP_DigestUpdate(md, chunk, (size_t)n);
        off += (uint64_t)n;
    }
    return FX_OK;
}

int fetch_digest_check(struct fetch_state *fs, struct fetch_sink *sink)
{
    if (!sink->md)
        return FX_OK;
    unsigned char got[32];
    unsigned len = 0;
    EVP_DigestFinal_ex(sink->md, got, &len);
    if (len == 32 && memcmp(got, fs->o->sha256, 32) == 0)
        return FX_OK;
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", got[i]);
    return fetch_fail(fs, FX_CHECKSUM, "SHA-256 mismatch: the body's is %s (body not saved)", hex);
}

void fetch_digest_free(struct fetch_sink *sink)
{
    EVP_MD_CTX_free(sink->md);
    sink->md = NULL;
}
