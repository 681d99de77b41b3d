/* sockit fetch: what a run reports besides the body and its result line:
 * -D FILE (every response head as received), -w FORMAT (curl's write-out
 * variables after each URL) and -v (the exchange on standard error, from
 * the library's events). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fetch.h"
#include "i18n.h"

/* ---- -w FORMAT ---- */

static const char *const wo_vars[] = {"http_code",     "size_download",      "time_total",
                                      "url_effective", "filename_effective", "num_redirects",
                                      "exitcode"};
enum { WO_HTTP_CODE, WO_SIZE, WO_TIME, WO_URL, WO_FILENAME, WO_REDIRECTS, WO_EXIT, WO_UNKNOWN };

/* The variable named s[0..n), WO_UNKNOWN if none. */
static int wo_var(const char *s, size_t n)
{
    for (int i = 0; i < WO_UNKNOWN; i++)
        if (strlen(wo_vars[i]) == n && strncmp(s, wo_vars[i], n) == 0)
            return i;
    return WO_UNKNOWN;
}

/* Each unknown variable of the format, said once (curl warns too); it
 * expands to nothing. */
static void wo_check(const char *fmt)
{
    for (const char *p = fmt; (p = strstr(p, "%{")) != NULL;) {
        const char *end = strchr(p + 2, '}');
        if (!end)
            break;
        if (wo_var(p + 2, (size_t)(end - p - 2)) == WO_UNKNOWN)
            cli_error("warning: unknown --write-out variable: '%.*s'", (int)(end - p - 2), p + 2);
        p = end + 1;
    }
}

/* Appends the value of variable v for the URL just done. */
static void wo_value(const struct fetch_cli *fc, int v, int status, char *out, size_t cap)
{
    const char *url = fc->f && *sk_fetch_url_effective(fc->f) ? sk_fetch_url_effective(fc->f)
                                                              : fc->shown;
    const char *file = fc->output && strcmp(fc->output, "-") != 0 ? fc->output
                       : fc->out_path                             ? fc->out_path
                                                                  : "";
    switch (v) {
    case WO_HTTP_CODE: snprintf(out, cap, "%03d", fc->f ? sk_fetch_status(fc->f) : 0); break;
    case WO_SIZE: snprintf(out, cap, "%llu", (unsigned long long)fc->rep.body_bytes); break;
    case WO_TIME:
        snprintf(out, cap, "%.6f", (double)(sk_now_ns() - fc->rep.start_ns) / 1e9);
        break;
    case WO_URL: snprintf(out, cap, "%s", url); break;
    case WO_FILENAME: snprintf(out, cap, "%s", file); break;
    case WO_REDIRECTS: snprintf(out, cap, "%ld", fc->f ? sk_fetch_redirects(fc->f) : 0L); break;
    case WO_EXIT: snprintf(out, cap, "%d", status); break;
    default: out[0] = '\0';
    }
}

/* The format expanded into out (cap bytes; what does not fit is cut). */
static size_t wo_expand(const struct fetch_cli *fc, int status, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = fc->write_out; *p && n + 1 < cap; p++) {
        static char val[FETCH_SHOWN_MAX + 64];
        const char *end;
        val[0] = *p;
        val[1] = '\0';
        if (p[0] == '%' && p[1] == '%') {
            p++;
        } else if (p[0] == '%' && p[1] == '{' && (end = strchr(p + 2, '}')) != NULL) {
            wo_value(fc, wo_var(p + 2, (size_t)(end - p - 2)), status, val, sizeof val);
            p = end;
        } else if (p[0] == '\\' && p[1] && strchr("nrt\\", p[1])) {
            val[0] = (char)(p[1] == 'n' ? '\n' : p[1] == 'r' ? '\r' : p[1] == 't' ? '\t' : '\\');
            p++;
        }
        size_t k = strlen(val);
        if (k > cap - 1 - n)
            k = cap - 1 - n;
        memcpy(out + n, val, k);
        n += k;
    }
    out[n] = '\0';
    return n;
}

/* ---- the options ---- */

int fetch_report_opt(struct fetch_cli *fc, int c, const char *arg)
{
    switch (c) {
    case 'D':
        if (!*arg) {
            cli_error("-D: empty file name");
            return EXIT_USAGE;
        }
        fc->dump_path = arg;
        return EXIT_OK;
    case 'w': fc->write_out = arg; return EXIT_OK;
    case 'v': fc->verbose = true; return EXIT_OK;
    default: return FETCH_OPT_UNKNOWN;
    }
}

int fetch_report_load(struct fetch_cli *fc)
{
    fc->dump_fd = -1;
    if (fc->write_out)
        wo_check(fc->write_out);
    if (!fc->dump_path)
        return EXIT_OK;
    if (strcmp(fc->dump_path, "-") == 0) {
        fc->dump_fd = STDOUT_FILENO;
        return EXIT_OK;
    }
    fc->dump_fd = open(fc->dump_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0666);
    if (fc->dump_fd < 0) {
        cli_error("-D %s: %s", fc->dump_path, strerror(errno));
        return EXIT_WRITE;
    }
    return EXIT_OK;
}

void fetch_report_free(struct fetch_cli *fc)
{
    if (fc->dump_fd > STDERR_FILENO)
        close(fc->dump_fd);
    fc->dump_fd = -1;
}

/* ---- around each URL ---- */

void fetch_report_begin(struct fetch_cli *fc)
{
    fc->rep = (struct fetch_report){.start_ns = sk_now_ns()};
    fc->shown[0] = '\0';
}

void fetch_report_heads(struct fetch_cli *fc)
{
    if (fc->dump_fd >= 0)
        fc->hdr_fd = fc->dump_fd; /* -D: the heads go there, even with -s */
}

/* ---- -v ---- */

static double since_start(const struct fetch_cli *fc)
{
    return (double)(sk_now_ns() - fc->rep.start_ns) / 1e9;
}

/* One "* ..." line on standard error. */
static void say(struct fetch_cli *fc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct fetch_cli *fc, const char *fmt, ...)
{
    char line[2048] = "* ";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + 2, sizeof line - 3, fmt, ap);
    va_end(ap);
    size_t n = strlen(line);
    line[n++] = '\n';
    bool off = fetch_board_off(fc, STDERR_FILENO);
    fetch_stderr(fc, line, n);
    fetch_board_back(fc, off);
}

static bool is_credential(const char *s, size_t n)
{
    static const char *const names[] = {"authorization:", "proxy-authorization:"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (n >= strlen(names[i]) && strncasecmp(s, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

/* Appends s[0..n) to out (cap bytes, *o used), which goes to standard
 * error each time it is full. */
static void emit(struct fetch_cli *fc, char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    while (n > 0) {
        if (*o == cap) {
            fetch_stderr(fc, out, *o);
            *o = 0;
        }
        size_t k = n < cap - *o ? n : cap - *o;
        memcpy(out + *o, s, k);
        *o += k;
        s += k;
        n -= k;
    }
}

/* A head's lines, each after prefix ("> " sent, "< " received), control
 * bytes as \xHH, credentials masked (their scheme kept). */
static void say_head(struct fetch_cli *fc, const char *prefix, const char *p, size_t len)
{
    static char out[16 * 1024];
    size_t o = 0, cap = sizeof out;
    bool off = fetch_board_off(fc, STDERR_FILENO);
    for (const char *end = p + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p), keep;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        keep = n;
        if (is_credential(p, n)) { /* "Name: scheme" and no more */
            const char *v = (const char *)memchr(p, ':', n) + 1;
            while (v < p + n && *v == ' ')
                v++;
            const char *sp = memchr(v, ' ', (size_t)(p + n - v));
            keep = (size_t)((sp ? sp : v) - p);
        }
        emit(fc, out, cap, &o, prefix, strlen(prefix));
        for (size_t i = 0; i < keep; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c < 0x20 && c != '\t') {
                char hex[8];
                emit(fc, out, cap, &o, hex, (size_t)snprintf(hex, sizeof hex, "\\x%02x", c));
            } else {
                emit(fc, out, cap, &o, p + i, 1);
            }
        }
        if (keep < n) {
            const char *mask = keep > 0 && p[keep - 1] == ' ' ? "[masked]" : " [masked]";
            emit(fc, out, cap, &o, mask, strlen(mask));
        }
        emit(fc, out, cap, &o, "\n", 1);
        p = nl ? nl + 1 : end;
    }
    fetch_stderr(fc, out, o);
    fetch_board_back(fc, off);
}

/* The TLS event's four strings. */
static void say_tls(struct fetch_cli *fc, const struct sk_fetch_event *ev)
{
    const char *f[4] = {"", "", "", ""};
    const char *p = ev->data, *end = ev->data + ev->len;
    for (int i = 0; i < 4 && p < end; i++) {
        f[i] = p;
        p += strnlen(p, (size_t)(end - p)) + 1;
    }
    say(fc, _("TLS %s, cipher %s, after %.6f s"), f[0], f[1], since_start(fc));
    say(fc, _("certificate subject: %s"), *f[2] ? f[2] : _("(none)"));
    say(fc, _("certificate issuer: %s"), *f[3] ? f[3] : _("(none)"));
}

static void verbose(struct fetch_cli *fc, const struct sk_fetch_event *ev)
{
    switch (ev->kind) {
    case SK_FETCH_EV_CONNECTED:
        say(fc, _("connected to %.*s after %.6f s%s"), (int)ev->len, ev->data, since_start(fc),
            ev->total ? _(" (the TLS handshake included)") : "");
        break;
    case SK_FETCH_EV_REUSED:
        say(fc, _("reusing the connection to %.*s"), (int)ev->len, ev->data);
        break;
    case SK_FETCH_EV_TLS: say_tls(fc, ev); break;
    case SK_FETCH_EV_PROTOCOL: say(fc, _("using %.*s"), (int)ev->len, ev->data); break;
    case SK_FETCH_EV_REQUEST: say_head(fc, "> ", ev->data, ev->len); break;
    case SK_FETCH_EV_HEAD:
        say(fc, _("first byte after %.6f s"), since_start(fc));
        say_head(fc, "< ", ev->data, ev->len);
        break;
    default: break;
    }
}

void fetch_report_event(struct fetch_cli *fc, const struct sk_fetch_event *ev)
{
    struct fetch_report *r = &fc->rep;
    if (fc->verbose)
        verbose(fc, ev);
    switch (ev->kind) {
    case SK_FETCH_EV_BODY_BEGIN:
        r->body_base = ev->done; /* a resumed part's bytes were not downloaded now */
        r->body_bytes = 0;
        break;
    case SK_FETCH_EV_PROGRESS:
    case SK_FETCH_EV_BODY_END: r->body_bytes = ev->done - r->body_base; break;
    default: break;
    }
}

int fetch_report_end(struct fetch_cli *fc, int status)
{
    if (fc->verbose && fc->f)
        say(fc, _("total %.6f s, %llu body bytes, exit status %d"), since_start(fc),
            (unsigned long long)fc->rep.body_bytes, status);
    if (!fc->write_out)
        return status;
    static char line[2 * FETCH_SHOWN_MAX];
    size_t n = wo_expand(fc, status, line, sizeof line);
    if (fc->held && fetch_held_add(fc->held, true, line, n))
        return status; /* written in its turn */
    bool off = fetch_board_off(fc, STDOUT_FILENO);
    int rc = fetch_write_stdout(fc, line, n);
    fetch_board_back(fc, off);
    return rc < 0 && status == EXIT_OK ? EXIT_WRITE : status;
}
