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

/* What a line looks like.
 *   SK_LOG_TEXT  "2026-11-27T06:00:01.000Z " then the caller's text.
 *   SK_LOG_JSON  one JSON object a line, its timestamp the first member:
 *                {"ts":"2026-11-27T06:00:01.000Z", then the caller's text,
 *                which is the other members ("event":"open","peer":"..."),
 *                strings made with sk_log_json_str, then }. A line that
 *                does not fit in 1 KiB becomes {"ts":"...",
 *                "event":"log_line_too_long","bytes":N} instead of being
 *                cut (a cut object would not parse). The logger's own note
 *                is {"ts":"...","event":"log_dropped","lines":N}. */
enum sk_log_format {
    SK_LOG_TEXT,
    SK_LOG_JSON,
};

/* Starts a logger writing to fd (not owned) with a ring of cap bytes, in
 * SK_LOG_TEXT. Returns NULL and sets *err on failure. */
struct sk_log *sk_log_new(int fd, size_t cap, int *err);
/* Sets the format of the lines; before the first line is logged. */
void sk_log_set_format(struct sk_log *log, enum sk_log_format format);
/* Formats one line (a "\n" is added), prefixed with a UTC timestamp (see
 * enum sk_log_format). Text lines longer than 1 KiB are cut. Thread-safe;
 * log may be NULL (quiet). */
void sk_log_printf(struct sk_log *log, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The timestamp a line starts with: the time now, UTC, RFC 3339 with
 * milliseconds ("2026-11-27T06:00:01.000Z", SK_LOG_TIMESTAMP_LEN bytes and
 * a NUL), in buf of len bytes. Returns buf ("" when len is too small). */
#define SK_LOG_TIMESTAMP_LEN 24
char *sk_log_timestamp(char *buf, size_t len);
/* s as a JSON string with its quotes, in buf of len (at least 8) bytes: '"'
 * and '\\' escaped, control bytes as \n \r \t \b \f or \u00XX (DEL
 * too), each byte that is not part of valid UTF-8 as \ufffd; valid UTF-8
 * is kept. Cut, between characters and still quoted, where it would not
 * fit. NULL is null. Returns buf. For text from outside (a peer's, a
 * file's name): the result is always one valid JSON value. */
char *sk_log_json_str(char *buf, size_t len, const char *s);
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
