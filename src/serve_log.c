/* serve's log lines, text or JSON (serve_log.h). A line is built once,
 * field by field, in the format asked for; the logger adds the timestamp
 * (and in JSON the braces). Every string that comes from outside (a TLS
 * error, a file name) is bounded, so a JSON line always fits the logger's
 * 1 KiB and is never cut.
 * Locale: in text the words of serve's own lines (listening, signals, the
 * reload, accept paused) come in the user's language through text()'s
 * callers' _(); the event records (open, close, refuse, proxy-error, the
 * summary) and every key=value field stay English in every locale, since
 * scripts read them. JSON never changes with the locale. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "greet.h"
#include "i18n.h"
#include "serve_log.h"

#define LINE_LEN 960 /* the logger's 1 KiB, less the timestamp and the braces */
#define STR_MAX 400  /* one string value, escaped: a TLS error, a file name */

struct line {
    bool json;
    size_t len;
    char buf[LINE_LEN];
};

static void vput(struct line *l, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void vput(struct line *l, const char *fmt, va_list ap)
{
    size_t room = sizeof l->buf - l->len;
    int n = vsnprintf(l->buf + l->len, room, fmt, ap);
    if (n > 0)
        l->len += (size_t)n < room ? (size_t)n : room - 1;
}

/* Appends to the line, in both formats. */
static void put(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vput(l, fmt, ap);
    va_end(ap);
}

static void field_str(struct line *l, const char *tkey, const char *jkey, const char *v);

/* The line's head: text "EVENT[ PEER]", JSON "event":"EVENT"[,"peer":"PEER"]. */
static void begin(struct line *l, const struct serve_log *sl, const char *text,
                  const char *json, const struct sockaddr *peer)
{
    l->json = sl->json;
    l->len = 0;
    l->buf[0] = '\0';
    if (l->json)
        put(l, "\"event\":\"%s\"", json);
    else
        put(l, "%s", text);
    if (peer) {
        char addr[SK_ADDRSTR_MAX];
        sk_addr_format(peer, addr, sizeof addr);
        field_str(l, NULL, "peer", addr);
        if (!l->json)
            put(l, " %s", addr);
    }
}

/* A field: text " TKEY=V", JSON ,"JKEY":V (a string escaped). A NULL key
 * leaves the field out of that format. */
static void field_str(struct line *l, const char *tkey, const char *jkey, const char *v)
{
    if (l->json && jkey) {
        char q[STR_MAX];
        put(l, ",\"%s\":%s", jkey, sk_log_json_str(q, sizeof q, v));
    } else if (!l->json && tkey)
        put(l, " %s=%s", tkey, v);
}

static void field_num(struct line *l, const char *key, unsigned long long v)
{
    put(l, l->json ? ",\"%s\":%llu" : " %s=%llu", key, v);
}

/* A string of outside text: in text quoted, its quotes and control bytes
 * made '?' (the line stays one line, the value one field). */
static void field_quoted(struct line *l, const char *key, const char *v)
{
    if (l->json) {
        field_str(l, key, key, v);
        return;
    }
    size_t at = l->len + strlen(key) + 3; /* past ` KEY="` */
    put(l, " %s=\"%s\"", key, v);
    for (size_t i = at; i + 1 < l->len; i++)
        if (l->buf[i] == '"' || (unsigned char)l->buf[i] < 0x20)
            l->buf[i] = '?';
}

/* Text-only words between the fields (the text lines' own wording, fmt
 * already translated by the caller: JSON never sees it). */
static void text(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text(struct line *l, const char *fmt, ...)
{
    if (l->json)
        return;
    va_list ap;
    va_start(ap, fmt);
    vput(l, fmt, ap);
    va_end(ap);
}

static void emit(const struct serve_log *sl, const struct line *l)
{
    sk_log_printf(sl->log, "%s", l->buf);
}

bool serve_log_format_parse(const char *s, bool *json)
{
    if (strcmp(s, "text") != 0 && strcmp(s, "json") != 0)
        return false;
    *json = s[0] == 'j';
    return true;
}

static void close_fields(struct line *l, const struct sk_server_event *ev)
{
    field_str(l, "reason", "reason", greet_close_reason(ev->reason));
    field_num(l, "messages", ev->messages);
    field_num(l, "bytes_in", ev->bytes_in);
    field_num(l, "bytes_out", ev->bytes_out);
    field_num(l, "duration_ms", ev->duration_ms);
    if (ev->tls_end)
        field_str(l, "tls_end", "tls_end", sk_tls_end_name(ev->tls_end));
    if (ev->tls_error)
        field_quoted(l, "tls_error", ev->tls_error);
}

void serve_log_event(void *user, const struct sk_server_event *ev)
{
    const struct serve_log *sl = user;
    struct line l;
    switch (ev->kind) {
    case SK_SERVER_OPEN:
        begin(&l, sl, "open", "open", ev->peer);
        if (ev->proxied_from) {
            char via[SK_ADDRSTR_MAX];
            field_str(&l, "proxied_from", "proxied_from",
                      sk_addr_format(ev->proxied_from, via, sizeof via));
        }
        if (ev->tls_version) {
            field_str(&l, "tls", "tls_version", ev->tls_version);
            field_str(&l, "cipher", "tls_cipher", ev->tls_cipher);
        }
        break;
    case SK_SERVER_CLOSE:
        begin(&l, sl, "close", "close", ev->peer);
        close_fields(&l, ev);
        break;
    case SK_SERVER_REFUSE:
        begin(&l, sl, "refuse", "refused", ev->peer);
        field_str(&l, "reason", "reason", "max-conns");
        field_num(&l, "limit", ev->limit);
        break;
    case SK_SERVER_ACCEPT_PAUSED: {
        const char *name = strerrorname_np(ev->err);
        begin(&l, sl, "accept: ", "accept_paused", NULL);
        text(&l, _("%s; pausing accepts for %u ms at a time"), strerror(ev->err), ev->retry_ms);
        field_str(&l, NULL, "error", name ? name : "?");
        if (l.json)
            field_num(&l, "retry_ms", ev->retry_ms);
        break;
    }
    case SK_SERVER_ACCEPT_RESUMED:
        begin(&l, sl, "accept: ", "accept_resumed", NULL);
        text(&l, "%s", _("accepting again"));
        break;
    case SK_SERVER_PROXY_ERROR:
        begin(&l, sl, "proxy-error", "proxy_error", ev->peer);
        field_str(&l, "reason", "reason", sk_proxy_error_name(ev->proxy_error));
        break;
    case SK_SERVER_STOP_RESENT:
        begin(&l, sl, "", "stop_resent", NULL);
        text(&l, _("worker %u: stop request resent"), ev->worker);
        if (l.json)
            field_num(&l, "worker", ev->worker);
        break;
    default:
        return;
    }
    emit(sl, &l);
}

void serve_log_listening(const struct serve_log *sl, const char *addr, bool udp,
                         enum sk_framing framing, bool tls, const struct sk_sd_socket *passed)
{
    struct line l;
    const char *fname = sk_framing_name(framing);
    begin(&l, sl, "", "listening", NULL);
    /* Whole sentences, for the translations' word order; the tests find
     * "listening on ADDR (tcp|udp" in English. */
    if (udp)
        text(&l, _("listening on %s (udp)"), addr);
    else if (tls)
        text(&l, _("listening on %s (tcp, framing %s, tls)"), addr, fname);
    else
        text(&l, _("listening on %s (tcp, framing %s)"), addr, fname);
    field_str(&l, NULL, "addr", addr);
    field_str(&l, NULL, "proto", udp ? "udp" : "tcp");
    if (!udp) { /* datagrams have no framing */
        field_str(&l, NULL, "framing", fname);
        if (l.json)
            put(&l, ",\"tls\":%s", tls ? "true" : "false");
    }
    if (passed) {
        field_num(&l, "fd", (unsigned)passed->fd);
        /* Printable ASCII (sk_sd_listen_fds checks), but maybe empty or
         * with spaces: then quoted, to keep one value per field. */
        if (passed->name[0] && !strpbrk(passed->name, " \""))
            field_str(&l, "name", "name", passed->name);
        else
            field_quoted(&l, "name", passed->name);
    }
    emit(sl, &l);
}

void serve_log_metrics(const struct serve_log *sl, const char *addr)
{
    struct line l;
    char url[SK_ADDRSTR_MAX + 32];
    snprintf(url, sizeof url, "http://%s/metrics", addr);
    begin(&l, sl, "", "metrics", NULL);
    text(&l, _("metrics on %s"), url);
    field_str(&l, NULL, "url", url);
    emit(sl, &l);
}

void serve_log_notify_failed(const struct serve_log *sl, const char *why)
{
    struct line l;
    begin(&l, sl, "sd_notify: ", "sd_notify_failed", NULL);
    text(&l, _("cannot notify the service manager: %s"), why);
    field_str(&l, NULL, "error", why);
    emit(sl, &l);
}

void serve_log_signal(const struct serve_log *sl, const char *name, bool stops)
{
    struct line l;
    begin(&l, sl, "", "signal", NULL);
    text(&l, stops ? _("received %s: stopping") : _("received %s: ignored"), name);
    field_str(&l, NULL, "signal", name);
    field_str(&l, NULL, "action", stops ? "stopping" : "ignored");
    emit(sl, &l);
}

void serve_log_reload(const struct serve_log *sl, const char *cert_file, const char *err)
{
    struct line l;
    begin(&l, sl, "", "tls_reload", NULL);
    if (err)
        text(&l, _("received SIGHUP: reload failed, keeping the old certificate: %s"), err);
    else
        text(&l, _("received SIGHUP: reloaded certificate %s"), cert_file);
    if (l.json)
        put(&l, ",\"signal\":\"SIGHUP\",\"ok\":%s", err ? "false" : "true");
    field_str(&l, NULL, "cert", cert_file);
    if (err)
        field_str(&l, NULL, "error", err);
    emit(sl, &l);
}

void serve_log_summary(const struct serve_log *sl, const struct sk_server_stats *st,
                       bool proxy_protocol)
{
    struct line l;
    begin(&l, sl, "summary:", "summary", NULL);
    field_num(&l, "connections", st->conns);
    field_num(&l, "refused", st->refused);
    field_num(&l, "messages", st->msgs);
    field_num(&l, "datagrams", st->datagrams);
    field_num(&l, "bytes_in", st->bytes_in);
    field_num(&l, "bytes_out", st->bytes_out);
    if (proxy_protocol) /* only then: the line is otherwise unchanged */
        field_num(&l, "proxy_errors", st->proxy_errors);
    emit(sl, &l);
}

void serve_log_error(const struct serve_log *sl, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, sl->json ? fmt : _(fmt), ap);
    va_end(ap);
    if (!sl->json) {
        cli_error("%s", msg); /* already translated; it adds "sockit: " */
        return;
    }
    static const char cmd[] = "serve: "; /* the event says whose it is */
    char q[2 * STR_MAX];
    sk_log_json_str(q, sizeof q, strncmp(msg, cmd, sizeof cmd - 1) ? msg : msg + sizeof cmd - 1);
    if (sl->log) {
        sk_log_printf(sl->log, "\"event\":\"error\",\"message\":%s", q);
        return;
    }
    char ts[SK_LOG_TIMESTAMP_LEN + 1];
    fprintf(stderr, "{\"ts\":\"%s\",\"event\":\"error\",\"message\":%s}\n",
            sk_log_timestamp(ts, sizeof ts), q);
}

const char *serve_log_strerror(const struct serve_log *sl, int rc)
{
    if (!sl->json)
        return cli_strerror(rc);
    /* strerror follows LC_MESSAGES (glibc's own catalogue): JSON takes the
     * English description of an errno value. */
    const char *en = rc < 0 ? strerrordesc_np(-rc) : NULL;
    return en ? en : sk_strerror(rc);
}
