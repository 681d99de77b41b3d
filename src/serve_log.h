/* serve's log lines: the engine's events and serve's own happenings
 * (listening, signals, the TLS reload, the summary, errors at start) as
 * lines of the logger, in the format of --log-format:
 *   text  "close 127.0.0.1:50312 reason=exit messages=3 bytes_in=24 ..."
 *   json  {"ts":"...","event":"close","peer":"127.0.0.1:50312",
 *         "reason":"exit","messages":3,"bytes_in":24,...}
 * docs/protocol.md lists every line and its fields. JSON never changes
 * with the locale. In text the words of serve's own lines (listening on,
 * received SIGx, the reload, accept paused) and the errors come in the
 * user's language; the event records (open, close, refuse, proxy-error,
 * summary) and every key=value field stay English (scripts read them). */
#ifndef SOCKIT_SERVE_LOG_H
#define SOCKIT_SERVE_LOG_H

#include <stdbool.h>

#include "sockit.h"

struct serve_log {
    struct sk_log *log; /* NULL: not started (serve_log_error writes to stderr) */
    bool json;
};

/* --log-format's value: "text" or "json". False for anything else. */
bool serve_log_format_parse(const char *s, bool *json);

/* The engine's events (struct sk_server_config.on_event; user: a struct
 * serve_log). */
void serve_log_event(void *user, const struct sk_server_event *ev);
/* "listening on ADDR (tcp, framing F[, tls])" or "(udp)": one a socket. */
/* passed: the socket systemd passed (its fd= and name= follow), or NULL. */
void serve_log_listening(const struct serve_log *sl, const char *addr, bool udp,
                         enum sk_framing framing, bool tls, const struct sk_sd_socket *passed);
/* "metrics on http://ADDR/metrics": the --metrics endpoint is up. */
void serve_log_metrics(const struct serve_log *sl, const char *addr);
/* "sd_notify: cannot notify the service manager: WHY" (once a run). */
void serve_log_notify_failed(const struct serve_log *sl, const char *why);
/* A signal taken: "received SIGTERM: stopping" (stops) or "...: ignored". */
void serve_log_signal(const struct serve_log *sl, const char *name, bool stops);
/* SIGHUP's reload of the TLS pair: err NULL when it worked. */
void serve_log_reload(const struct serve_log *sl, const char *cert_file, const char *err);
/* The last line: the server's counters. */
void serve_log_summary(const struct serve_log *sl, const struct sk_server_stats *st,
                       bool proxy_protocol);
/* An error that ends serve at start: cli_error's line ("sockit: serve: ...",
 * fmt translated) in text, an "error" event in json (fmt as it is, English).
 * Mark fmt with N_(). */
void serve_log_error(const struct serve_log *sl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A library error code's text (an errno value's too) for serve_log_error
 * and the like: translated in text, English in json. */
const char *serve_log_strerror(const struct serve_log *sl, int rc);

#endif
