/* Fuzz target: line framing (sk_line_next). The input is split at a point
 * chosen by its first byte and fed in two pieces, as a session receives it;
 * the messages found must be the same as when it is parsed whole, each
 * within bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sockit.h"

#define MAX_MSG 64

/* Parses buf whole; writes "len:" records of each message into out. */
static size_t parse_all(const uint8_t *buf, size_t len, size_t *msgs, int *toobig)
{
    size_t off = 0, count = 0;
    *toobig = 0;
    for (;;) {
        size_t m = 0, c = 0;
        int rc = sk_line_next((const char *)buf + off, len - off, MAX_MSG, &m, &c);
        if (rc == SK_ETOOBIG) {
            *toobig = 1;
            break;
        }
        if (rc == 0)
            break;
        if (m > MAX_MSG || c > len - off || c <= m || c > m + 2)
            abort();
        if (buf[off + c - 1] != '\n' || memchr(buf + off, '\n', m))
            abort();
        msgs[count++] = m;
        off += c;
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] % size;
    data++;
    size--;
    size_t *whole = malloc((size + 1) * sizeof *whole);
    size_t *pieces = malloc((size + 1) * sizeof *pieces);
    uint8_t *acc = malloc(size + 1);
    if (!whole || !pieces || !acc)
        abort();
    int tb_whole, tb_first, tb_second;
    size_t n_whole = parse_all(data, size, whole, &tb_whole);

    /* Incremental: parse the first piece, keep the unconsumed rest, append
     * the second piece and parse again (what a session does). */
    size_t n_first = parse_all(data, split, pieces, &tb_first);
    size_t consumed = 0;
    for (size_t i = 0; i < n_first; i++) {
        const uint8_t *nl = memchr(data + consumed, '\n', size - consumed);
        consumed = (size_t)(nl - data) + 1;
    }
    size_t rest = size - consumed;
    memcpy(acc, data + consumed, rest);
    size_t n_second = tb_first ? 0 : parse_all(acc, rest, pieces + n_first, &tb_second);
    if (!tb_first && !tb_whole) {
        if (n_first + n_second != n_whole)
            abort();
        for (size_t i = 0; i < n_whole; i++)
            if (pieces[i] != whole[i])
                abort();
    }
    free(whole);
    free(pieces);
    free(acc);
    return 0;
}
