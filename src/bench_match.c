/* sockit bench: finding the ends of replies in a byte stream.
 *
 * The matcher never buffers: it keeps only how far into the current reply
 * (or into the terminator) it is, so a reply split across reads in any
 * place is recognised, and many replies in one read cost one pass. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int match_prepare(struct match_spec *m)
{
    if (m->kind != MATCH_UNTIL)
        return 0;
    /* KMP failure function: fail[i] is the length of the longest proper
     * prefix of bytes[0..i] that is also its suffix. */
    m->fail = calloc(m->len, sizeof *m->fail);
    if (!m->fail)
        return SK_ERR(ENOMEM);
    for (size_t i = 1, k = 0; i < m->len; i++) {
        while (k > 0 && m->bytes[i] != m->bytes[k])
            k = m->fail[k - 1];
        if (m->bytes[i] == m->bytes[k])
            k++;
        m->fail[i] = k;
    }
    return 0;
}

bool match_bye_starts(const struct match_spec *m, const struct match_state *st, const char *data,
                      size_t n)
{
    return m->bye && (st->bye > 0 || (st->pos == 0 && n > 0 && data[0] == m->bye[0]));
}

long match_bye(const struct match_spec *m, struct match_state *st, const char *p, size_t n)
{
    size_t want = m->bye_len - st->bye;
    if (st->said_bye || n > want || memcmp(p, m->bye + st->bye, n) != 0)
        return SK_EPROTO;
    st->bye += n;
    st->said_bye = st->bye == m->bye_len;
    return 0;
}

/* The replies in p[0..n); the bye line may come in place of one, last. */
static long feed_exact(const struct match_spec *m, struct match_state *st, const char *p, size_t n)
{
    long done = 0;
    while (n > 0) {
        if (match_bye_starts(m, st, p, n))
            return match_bye(m, st, p, n) < 0 ? SK_EPROTO : done;
        size_t want = m->len - st->pos;
        size_t k = n < want ? n : want;
        if (memcmp(p, m->bytes + st->pos, k) != 0)
            return SK_EPROTO;
        st->pos += k;
        p += k;
        n -= k;
        if (st->pos == m->len) {
            st->pos = 0;
            done++;
        }
    }
    return done;
}

static long feed_len(const struct match_spec *m, struct match_state *st, size_t n)
{
    size_t total = st->pos + n;
    st->pos = total % m->len;
    return (long)(total / m->len);
}

static long feed_until(const struct match_spec *m, struct match_state *st, const char *p, size_t n)
{
    long done = 0;
    size_t k = st->pos;
    const char *end = p + n;
    while (p < end) {
        if (k == 0) {
            /* Skip quickly to the next possible start of the terminator. */
            const char *q = memchr(p, m->bytes[0], (size_t)(end - p));
            if (!q)
                break;
            p = q;
        }
        char c = *p++;
        while (k > 0 && c != m->bytes[k])
            k = m->fail[k - 1];
        if (c == m->bytes[k])
            k++;
        if (k == m->len) {
            done++;
            k = 0; /* replies do not overlap */
        }
    }
    st->pos = k;
    return done;
}

long match_feed(const struct match_spec *m, struct match_state *st, const char *data, size_t n)
{
    if (n == 0)
        return 0; /* data may be NULL then: no pointer arithmetic on it */
    switch (m->kind) {
    case MATCH_EXACT: return feed_exact(m, st, data, n);
    case MATCH_LEN: return feed_len(m, st, n);
    case MATCH_UNTIL: return feed_until(m, st, data, n);
    }
    return SK_EPROTO;
}
