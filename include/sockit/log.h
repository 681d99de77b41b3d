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

#ifdef __cplusplus
extern "C" {
#endif

struct sk_log;

/* Starts a logger writing to fd (not owned) with a ring of cap bytes.
 * Returns NULL and sets *err on failure. */
struct sk_log *sk_log_new(int fd, size_t cap, int *err);
/* Formats one line (a "\n" is added), prefixed with a UTC timestamp.
 * Lines longer than 1 KiB are cut. Thread-safe; log may be NULL (quiet). */
void sk_log_printf(struct sk_log *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Lines dropped so far (the ring was full, or the fd failed). */
uint64_t sk_log_dropped(struct sk_log *log);
/* Writes out what is buffered until deadline_ms (monotonic, as sk_now_ms()),
 * or until the fd has taken nothing for 1 s, and drops the rest; stops the
 * thread and frees the logger; returns within deadline_ms + 0.25 s whatever
 * the fd does. If lines were lost, a last
 * "(logger: N lines dropped: output too slow)" line says how many, followed
 * by the last line logged when that one was among them. Returns the number
 * of lines lost for good (0: everything was written). NULL is accepted. */
uint64_t sk_log_close(struct sk_log *log, uint64_t deadline_ms);
/* sk_log_close with a deadline 1 s from now. */
void sk_log_free(struct sk_log *log);

#ifdef __cplusplus
}
#endif

#endif
