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

#define LINE_MAX_BYTES 1024

struct sk_log {
    int fd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *ring;
    size_t cap, head, used; /* bytes live at ring[head .. head+used) mod cap */
    uint64_t dropped, dropped_reported;
    atomic_bool closing;
};

/* Writes all of p without ever blocking in write(): poll() first, then at
 * most PIPE_BUF bytes, which a pipe that polls writable always takes. A
 * reader that never drains keeps the writer waiting (and the ring drops new
 * lines) until the logger closes; from then on one second without progress
 * gives up. Returns false when the bytes were abandoned. */
static bool write_all(struct sk_log *log, const char *p, size_t n)
{
    int stalled_ms = 0;
    while (n > 0) {
        struct pollfd pf = {.fd = log->fd, .events = POLLOUT};
        int r = poll(&pf, 1, 100);
        if (r < 0 && errno != EINTR)
            return false;
        if (r <= 0) {
            stalled_ms += r == 0 ? 100 : 0;
            if (atomic_load(&log->closing) && stalled_ms >= 1000)
                return false;
            continue;
        }
        if (pf.revents & (POLLERR | POLLNVAL))
            return false;
        ssize_t w = write(log->fd, p, n < PIPE_BUF ? n : PIPE_BUF);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            stalled_ms = 0;
        } else if (w < 0 && errno != EINTR && errno != EAGAIN) {
            return false; /* EPIPE, a closed stderr, ...: logging is best effort */
        }
    }
    return true;
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
            break; /* closing, and everything is out */
        size_t n = log->used < sizeof chunk ? log->used : sizeof chunk;
        size_t first = log->cap - log->head < n ? log->cap - log->head : n;
        memcpy(chunk, log->ring + log->head, first);
        memcpy(chunk + first, log->ring, n - first);
        log->head = (log->head + n) % log->cap;
        log->used -= n;
        pthread_mutex_unlock(&log->mu);
        bool ok = write_all(log, chunk, n);
        pthread_mutex_lock(&log->mu);
        if (!ok && atomic_load(&log->closing))
            log->used = 0; /* nobody reads: drop the rest rather than hang */
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
    n += (size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2;
    line[n++] = '\n';

    pthread_mutex_lock(&log->mu);
    if (log->dropped > log->dropped_reported && log->cap - log->used >= 2 * LINE_MAX_BYTES) {
        char note[96];
        int k = snprintf(note, sizeof note, "(logger: %llu lines dropped: output too slow)\n",
                         (unsigned long long)(log->dropped - log->dropped_reported));
        ring_put(log, note, (size_t)k);
        log->dropped_reported = log->dropped;
    }
    if (log->cap - log->used >= n)
        ring_put(log, line, n);
    else
        log->dropped++;
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

void sk_log_free(struct sk_log *log)
{
    if (!log)
        return;
    pthread_mutex_lock(&log->mu);
    atomic_store(&log->closing, true);
    pthread_cond_signal(&log->cv);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->thread, NULL);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->cv);
    free(log->ring);
    free(log);
}
