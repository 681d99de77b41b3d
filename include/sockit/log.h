/* A logger that never blocks its callers on I/O.
 *
 * Lines go into a bounded in-memory ring; a background thread writes them
 * to the fd. When the ring is full (the fd is a pipe nobody reads, a slow
 * terminal) new lines are dropped and counted, and the count is reported
 * once there is room again: an event loop never waits on stderr. */
#ifndef SOCKIT_LOG_H
#define SOCKIT_LOG_H

#include <stddef.h>
#include <stdint.h>

struct sk_log;

/* Starts a logger writing to fd (not owned) with a ring of cap bytes.
 * Returns NULL and sets *err on failure. */
struct sk_log *sk_log_new(int fd, size_t cap, int *err);
/* Formats one line (a "\n" is added), prefixed with a UTC timestamp.
 * Lines longer than 1 KiB are cut. Thread-safe; log may be NULL (quiet). */
void sk_log_printf(struct sk_log *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Lines dropped so far because the ring was full. */
uint64_t sk_log_dropped(struct sk_log *log);
/* Writes out what is buffered (waiting at most ~1 s for a stuck fd), stops
 * the thread and frees the logger. NULL is accepted. */
void sk_log_free(struct sk_log *log);

#endif
