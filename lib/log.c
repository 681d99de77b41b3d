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
};

#define NOTE_PREFIX "(logger: "

/* The ring holds whole lines only: log lines (a timestamp first) and notes
 * (NOTE_PREFIX first). The writer abandoned chunk[done..n): every log line
 * ending there is dropped; a note that did not get out un-reports its count,
 * so the final note says it again. A chunk always starts at a line start. */
static void abandon(struct sk_log *log, const char *chunk, size_t done, size_t n)
{
    size_t start = done;
    while (start > 0 && chunk[start - 1] != '\n')
        start--;
    while (start < n) {
        const char *nl = memchr(chunk + start, '\n', n - start);
        size_t end = nl ? (size_t)(nl - chunk) + 1 : n;
        if (strncmp(chunk + start, NOTE_PREFIX, sizeof NOTE_PREFIX - 1) == 0)
            /* the count we wrote ourselves: digits, then " lines" */
            log->dropped_reported -= strtoull(chunk + start + sizeof NOTE_PREFIX - 1, NULL, 10);
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

static size_t format_time(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, len - n, ".%03ldZ ", ts.tv_nsec / 1000000);
    return n;
}

void sk_log_printf(struct sk_log *log, const char *fmt, ...)
{
    if (!log)
        return;
    char line[LINE_MAX_BYTES];
    size_t n = format_time(line, sizeof line);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t end = n + ((size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2);
    for (char *c = line + n; (c = memchr(c, '\n', (size_t)(line + end - c))) != NULL;)
        *c = ' '; /* one call, one line: the counts and the notes rely on it */
    n = end;
    line[n++] = '\n';

    pthread_mutex_lock(&log->mu);
    if (log->dropped > log->dropped_reported && log->cap - log->used >= 2 * LINE_MAX_BYTES) {
        char note[96];
        int k = snprintf(note, sizeof note, NOTE_PREFIX "%llu lines dropped: output too slow)\n",
                         (unsigned long long)(log->dropped - log->dropped_reported));
        ring_put(log, note, (size_t)k);
        log->queued += (size_t)k;
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
    int k = snprintf(buf, sizeof buf, "%s" NOTE_PREFIX "%llu lines dropped: output too slow)\n",
                     log->ends_line ? "" : "\n", (unsigned long long)unreported);
    size_t n = (size_t)k;
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
