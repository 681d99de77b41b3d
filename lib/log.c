/* Non-blocking logger: a byte ring guarded by a mutex, drained by a thread. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc_int.h"
#include "sockit/err.h"
#include "sockit/log.h"
#include "sockit/loop.h"

#define LINE_MAX_BYTES 1024

#define FINAL_WAIT_MS 250 /* at close: for the last line and the drop count */
#define STALL_MS 1000     /* at close: an fd that took nothing for this long is given up */

struct sk_log {
    int fd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *ring;
    size_t cap, head, used; /* bytes live at ring[head .. head+used) mod cap */
    uint64_t dropped, dropped_reported; /* lines */
    uint64_t queued;                    /* bytes ever put in the ring */
    uint64_t taken;                     /* bytes ever taken out by the writer */
    uint64_t written_to;                /* position in `queued` written up to */
    bool ends_line;                     /* the last byte written was '\n' */
    /* The last line logged, kept apart: at close it is written even when
     * the lines before it had to be dropped (a program's last line, such as
     * serve's summary, says how it ended). */
    char last[LINE_MAX_BYTES];
    size_t last_len;
    uint64_t last_end; /* `queued` just after it; 0: it never got in the ring */
    uint64_t deadline_ms; /* closing: stop writing at this time */
    bool close_seen;      /* the writer has seen `closing` (writer's own) */
    uint64_t progress_ms; /* the writer's last successful write (writer's own) */
    atomic_bool closing;
    enum sk_log_format format; /* set before the first line */
};

/* The logger's note of dropped lines: text, and the members after the ts
 * in JSON (at a fixed place: the ts has a fixed length). */
#define NOTE_PREFIX "(logger: "
#define JSON_OPEN "{\"ts\":\""
#define JSON_NOTE "\"event\":\"log_dropped\",\"lines\":"
#define JSON_NOTE_AT (sizeof JSON_OPEN - 1 + SK_LOG_TIMESTAMP_LEN + 2) /* after `",` */

/* A line's start: its timestamp, then " " (text) or `{"ts":"TS",` (JSON). */
static size_t line_start(const struct sk_log *log, char *buf, size_t len)
{
    char ts[SK_LOG_TIMESTAMP_LEN + 1];
    int n = snprintf(buf, len, log->format == SK_LOG_JSON ? JSON_OPEN "%s\"," : "%s ",
                     sk_log_timestamp(ts, sizeof ts));
    return n > 0 ? (size_t)n : 0;
}

/* The note saying `lines` were dropped, with its "\n". Returns its length. */
static size_t format_note(const struct sk_log *log, char *buf, size_t len, uint64_t lines)
{
    if (log->format == SK_LOG_TEXT)
        return (size_t)snprintf(buf, len, NOTE_PREFIX "%llu lines dropped: output too slow)\n",
                                (unsigned long long)lines);
    size_t n = line_start(log, buf, len);
    return n + (size_t)snprintf(buf + n, len - n, JSON_NOTE "%llu}\n", (unsigned long long)lines);
}

/* The count a note of ours at line[0..len) says (digits, then " lines" or
 * "}"); false for a log line. */
static bool note_count(const struct sk_log *log, const char *line, size_t len, uint64_t *count)
{
    size_t at = log->format == SK_LOG_TEXT ? 0 : JSON_NOTE_AT;
    const char *key = log->format == SK_LOG_TEXT ? NOTE_PREFIX : JSON_NOTE;
    size_t klen = strlen(key);
    if (len < at + klen || memcmp(line + at, key, klen) != 0)
        return false;
    *count = strtoull(line + at + klen, NULL, 10);
    return true;
}

/* The ring holds whole lines only: log lines and notes. The writer
 * abandoned chunk[done..n): every log line ending there is dropped; a note
 * that did not get out un-reports its count, so the final note says it
 * again. A chunk always starts at a line start. */
static void abandon(struct sk_log *log, const char *chunk, size_t done, size_t n)
{
    size_t start = done;
    while (start > 0 && chunk[start - 1] != '\n')
        start--;
    while (start < n) {
        const char *nl = memchr(chunk + start, '\n', n - start);
        size_t end = nl ? (size_t)(nl - chunk) + 1 : n;
        uint64_t count;
        if (note_count(log, chunk + start, end - start, &count))
            log->dropped_reported -= count; /* the count we wrote ourselves */
        else
            log->dropped++;
        start = end;
    }
}

/* Writes p without ever blocking in write(): poll() first, then at most
 * PIPE_BUF bytes, which a pipe that polls writable always takes. Until the
 * logger closes, a reader that never drains keeps the writer waiting (and
 * the ring drops new lines); once closing, nothing is written after the
 * deadline, nor after STALL_MS without progress (a reader that never reads
 * does not hold the exit for the whole deadline). Returns the bytes written: fewer than n when the rest was
 * abandoned (the deadline, or a write error: logging is best effort). */
static size_t write_some(struct sk_log *log, const char *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        int wait_ms = 100;
        if (atomic_load(&log->closing)) {
            uint64_t now = sk_now_ms();
            if (!log->close_seen) {
                log->close_seen = true; /* the stall is counted from the close */
                log->progress_ms = now;
            }
            if (now >= log->deadline_ms || now - log->progress_ms >= STALL_MS)
                break;
            if (log->deadline_ms - now < 100)
                wait_ms = (int)(log->deadline_ms - now);
        }
        struct pollfd pf = {.fd = log->fd, .events = POLLOUT};
        int r = poll(&pf, 1, wait_ms);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        if (pf.revents & (POLLERR | POLLNVAL))
            break;
        /* Whole lines where possible: a pipe takes up to PIPE_BUF bytes
         * atomically, so a reader never sees half a line. */
        size_t want = n - done < PIPE_BUF ? n - done : PIPE_BUF;
        if (want < n - done) {
            const char *nl = memrchr(p + done, '\n', want);
            if (nl)
                want = (size_t)(nl - (p + done)) + 1;
        }
        ssize_t w = write(log->fd, p + done, want);
        if (w > 0) {
            done += (size_t)w;
            log->progress_ms = sk_now_ms();
        } else if (w < 0 && errno != EINTR && errno != EAGAIN)
            break; /* EPIPE, a closed stderr, ... */
    }
    return done;
}

static void *writer_main(void *arg)
{
    struct sk_log *log = arg;
    char chunk[16384];
    pthread_mutex_lock(&log->mu);
    for (;;) {
        while (log->used == 0 && !atomic_load(&log->closing))
            pthread_cond_wait(&log->cv, &log->mu);
        if (log->used == 0)
            break; /* closing, and everything is out (or abandoned) */
        size_t n = log->used < sizeof chunk ? log->used : sizeof chunk;
        size_t first = log->cap - log->head < n ? log->cap - log->head : n;
        memcpy(chunk, log->ring + log->head, first);
        memcpy(chunk + first, log->ring, n - first);
        const char *nl = memrchr(chunk, '\n', n);
        if (nl)
            n = (size_t)(nl - chunk) + 1; /* whole lines: the ring holds nothing else */
        log->head = (log->head + n) % log->cap;
        log->used -= n;
        uint64_t chunk_at = log->taken;
        log->taken += n;
        pthread_mutex_unlock(&log->mu);
        size_t done = write_some(log, chunk, n);
        pthread_mutex_lock(&log->mu);
        log->written_to = chunk_at + done;
        if (done > 0)
            log->ends_line = chunk[done - 1] == '\n';
        abandon(log, chunk, done, n);
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

struct sk_log *sk_log_new(int fd, size_t cap, int *err)
{
    struct sk_log *log = sk__calloc(1, sizeof *log);
    char *ring = sk__malloc(cap);
    if (!log || !ring || cap < 2 * LINE_MAX_BYTES) {
        free(log);
        free(ring);
        *err = cap < 2 * LINE_MAX_BYTES ? SK_EUSAGE : SK_ERR(ENOMEM);
        return NULL;
    }
    log->fd = fd;
    log->ends_line = true;
    log->ring = ring;
    log->cap = cap;
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->cv, NULL);
    int rc = pthread_create(&log->thread, NULL, writer_main, log);
    if (rc != 0) {
        pthread_mutex_destroy(&log->mu);
        pthread_cond_destroy(&log->cv);
        free(ring);
        free(log);
        *err = SK_ERR(rc);
        return NULL;
    }
    return log;
}

static void ring_put(struct sk_log *log, const char *p, size_t n)
{
    size_t tail = (log->head + log->used) % log->cap;
    size_t first = log->cap - tail < n ? log->cap - tail : n;
    memcpy(log->ring + tail, p, first);
    memcpy(log->ring, p + first, n - first);
    log->used += n;
}

void sk_log_set_format(struct sk_log *log, enum sk_log_format format)
{
    log->format = format;
}

char *sk_log_timestamp(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    if (len < SK_LOG_TIMESTAMP_LEN + 1) {
        if (len)
            buf[0] = '\0';
        return buf;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return buf;
}

/* The length of the valid UTF-8 sequence at p (RFC 3629: no overlong
 * forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
    size_t n;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3;
        lo = p[0] == 0xe0 ? 0xa0 : lo;
        hi = p[0] == 0xed ? 0x9f : hi;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4;
        lo = p[0] == 0xf0 ? 0x90 : lo;
        hi = p[0] == 0xf4 ? 0x8f : hi;
    } else {
        return 0;
    }
    if (p[1] < lo || p[1] > hi)
        return 0; /* also the string's end */
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

char *sk_log_json_str(char *buf, size_t len, const char *s)
{
    if (len < 8) {
        if (len)
            buf[0] = '\0';
        return buf;
    }
    if (!s) {
        memcpy(buf, "null", 5);
        return buf;
    }
    size_t o = 0;
    buf[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        char esc[8];
        const char *out = esc;
        size_t k = 1, step = 1;
        size_t u = *p >= 0x80 ? utf8_len(p) : 0;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            k = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            static const char short_esc[] = "btn?fr"; /* for 8..13; \v (11) has none */
            bool has = *p >= '\b' && *p <= '\r' && *p != '\v';
            k = has ? (size_t)snprintf(esc, sizeof esc, "\\%c", short_esc[*p - '\b'])
                    : (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else if (*p < 0x80) {
            esc[0] = (char)*p;
        } else if (u) {
            out = (const char *)p;
            k = step = u;
        } else {
            out = "\\ufffd";
            k = 6;
        }
        if (o + k + 2 > len)
            break; /* the closing quote and the NUL must fit */
        memcpy(buf + o, out, k);
        o += k;
        p += step;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

void sk_log_printf(struct sk_log *log, const char *fmt, ...)
{
    if (!log)
        return;
    char line[LINE_MAX_BYTES];
    bool json = log->format == SK_LOG_JSON;
    size_t n = line_start(log, line, sizeof line);
    size_t room = sizeof line - n - (json ? 2 : 1); /* then "}\n" or "\n" */
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, room, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t end = n + ((size_t)m < room ? (size_t)m : room - 1);
    if (json && (size_t)m >= room) /* a cut object would not parse: say so instead */
        end = n + (size_t)snprintf(line + n, room, "\"event\":\"log_line_too_long\",\"bytes\":%d", m);
    for (char *c = line + n; (c = memchr(c, '\n', (size_t)(line + end - c))) != NULL;)
        *c = ' '; /* one call, one line: the counts and the notes rely on it */
    n = end;
    if (json)
        line[n++] = '}';
    line[n++] = '\n';

    pthread_mutex_lock(&log->mu);
    if (log->dropped > log->dropped_reported && log->cap - log->used >= 2 * LINE_MAX_BYTES) {
        char note[128];
        size_t k = format_note(log, note, sizeof note, log->dropped - log->dropped_reported);
        ring_put(log, note, k);
        log->queued += k;
        log->dropped_reported = log->dropped;
    }
    if (log->cap - log->used >= n) {
        ring_put(log, line, n);
        log->queued += n;
        log->last_end = log->queued;
    } else {
        log->dropped++;
        log->last_end = 0;
    }
    memcpy(log->last, line, n);
    log->last_len = n;
    pthread_cond_signal(&log->cv);
    pthread_mutex_unlock(&log->mu);
}

uint64_t sk_log_dropped(struct sk_log *log)
{
    pthread_mutex_lock(&log->mu);
    uint64_t d = log->dropped;
    pthread_mutex_unlock(&log->mu);
    return d;
}

/* After the writer has stopped: if lines were lost, one last write says how
 * many and repeats the last line when it was among them. Returns the lines
 * lost for good. */
static uint64_t write_final(struct sk_log *log)
{
    bool redo = log->last_len > 0 && (log->last_end == 0 || log->written_to < log->last_end);
    uint64_t unreported = log->dropped - log->dropped_reported - (redo ? 1 : 0);
    if (!redo && unreported == 0)
        return log->dropped;
    char buf[LINE_MAX_BYTES + 128];
    size_t n = 0;
    if (!log->ends_line)
        buf[n++] = '\n';
    n += format_note(log, buf + n, sizeof buf - n, unreported);
    if (redo) {
        memcpy(buf + n, log->last, log->last_len);
        n += log->last_len;
    }
    uint64_t now = sk_now_ms();
    if (log->deadline_ms < now)
        log->deadline_ms = now;
    log->deadline_ms += FINAL_WAIT_MS;
    if (write_some(log, buf, n) == n)
        return log->dropped - (redo ? 1 : 0);
    return log->dropped;
}

uint64_t sk_log_close(struct sk_log *log, uint64_t deadline_ms)
{
    if (!log)
        return 0;
    pthread_mutex_lock(&log->mu);
    log->deadline_ms = deadline_ms;
    atomic_store(&log->closing, true);
    pthread_cond_signal(&log->cv);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->thread, NULL);
    uint64_t lost = write_final(log);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cv);
    free(log->ring);
    free(log);
    return lost;
}

void sk_log_free(struct sk_log *log)
{
    sk_log_close(log, sk_now_ms() + 1000);
}
