/* sockit fetch: what a run reports besides the body and its result line:
 * -D FILE (every response head as received), -w FORMAT (curl's write-out
 * variables after each URL) and -v (the exchange on standard error, from
 * the library's events). */
#include <ctype.h>
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

/* curl's variables that sockit knows, in the order %{json} gives them
 * (by name), then those %{json} leaves out and the switches of curl's
 * write-out, which are no variable. */
enum wo_id {
    WO_CONTENT_TYPE, WO_ERRORMSG, WO_EXITCODE, WO_FILENAME, WO_HTTP_CODE, WO_HTTP_CONNECT,
    WO_HTTP_VERSION, WO_LOCAL_IP, WO_LOCAL_PORT, WO_METHOD, WO_NUM_CONNECTS, WO_NUM_HEADERS,
    WO_NUM_REDIRECTS, WO_REDIRECT_URL, WO_REMOTE_IP, WO_REMOTE_PORT, WO_RESPONSE_CODE,
    WO_SCHEME, WO_SIZE_DOWNLOAD, WO_SIZE_HEADER, WO_SIZE_REQUEST, WO_SIZE_UPLOAD,
    WO_SPEED_DOWNLOAD, WO_SPEED_UPLOAD, WO_SSL_VERIFY_RESULT, WO_TIME_APPCONNECT,
    WO_TIME_CONNECT, WO_TIME_NAMELOOKUP, WO_TIME_PRETRANSFER, WO_TIME_REDIRECT,
    WO_TIME_STARTTRANSFER, WO_TIME_TOTAL, WO_URL, WO_URL_EFFECTIVE, WO_URLNUM,
    WO_VARS,
    WO_HEADER_JSON = WO_VARS, WO_JSON, WO_STDOUT, WO_STDERR, WO_ONERROR, WO_UNKNOWN
};
enum wo_kind { WO_TEXT, WO_NUMBER, WO_TIME };
static const struct wo_def {
    const char *name;
    enum wo_kind kind;
} wo_defs[WO_VARS] = {
    [WO_CONTENT_TYPE] = {"content_type", WO_TEXT},
    [WO_ERRORMSG] = {"errormsg", WO_TEXT},
    [WO_EXITCODE] = {"exitcode", WO_NUMBER},
    [WO_FILENAME] = {"filename_effective", WO_TEXT},
    [WO_HTTP_CODE] = {"http_code", WO_NUMBER},
    [WO_HTTP_CONNECT] = {"http_connect", WO_NUMBER},
    [WO_HTTP_VERSION] = {"http_version", WO_TEXT},
    [WO_LOCAL_IP] = {"local_ip", WO_TEXT},
    [WO_LOCAL_PORT] = {"local_port", WO_NUMBER},
    [WO_METHOD] = {"method", WO_TEXT},
    [WO_NUM_CONNECTS] = {"num_connects", WO_NUMBER},
    [WO_NUM_HEADERS] = {"num_headers", WO_NUMBER},
    [WO_NUM_REDIRECTS] = {"num_redirects", WO_NUMBER},
    [WO_REDIRECT_URL] = {"redirect_url", WO_TEXT},
    [WO_REMOTE_IP] = {"remote_ip", WO_TEXT},
    [WO_REMOTE_PORT] = {"remote_port", WO_NUMBER},
    [WO_RESPONSE_CODE] = {"response_code", WO_NUMBER},
    [WO_SCHEME] = {"scheme", WO_TEXT},
    [WO_SIZE_DOWNLOAD] = {"size_download", WO_NUMBER},
    [WO_SIZE_HEADER] = {"size_header", WO_NUMBER},
    [WO_SIZE_REQUEST] = {"size_request", WO_NUMBER},
    [WO_SIZE_UPLOAD] = {"size_upload", WO_NUMBER},
    [WO_SPEED_DOWNLOAD] = {"speed_download", WO_NUMBER},
    [WO_SPEED_UPLOAD] = {"speed_upload", WO_NUMBER},
    [WO_SSL_VERIFY_RESULT] = {"ssl_verify_result", WO_NUMBER},
    [WO_TIME_APPCONNECT] = {"time_appconnect", WO_TIME},
    [WO_TIME_CONNECT] = {"time_connect", WO_TIME},
    [WO_TIME_NAMELOOKUP] = {"time_namelookup", WO_TIME},
    [WO_TIME_PRETRANSFER] = {"time_pretransfer", WO_TIME},
    [WO_TIME_REDIRECT] = {"time_redirect", WO_TIME},
    [WO_TIME_STARTTRANSFER] = {"time_starttransfer", WO_TIME},
    [WO_TIME_TOTAL] = {"time_total", WO_TIME},
    [WO_URL] = {"url", WO_TEXT},
    [WO_URL_EFFECTIVE] = {"url_effective", WO_TEXT},
    [WO_URLNUM] = {"urlnum", WO_NUMBER},
};
static const char *const wo_switches[] = {"header_json", "json", "stdout", "stderr", "onerror"};

/* The variable or switch named s[0..n), WO_UNKNOWN if none. */
static int wo_var(const char *s, size_t n)
{
    for (int i = 0; i < WO_UNKNOWN; i++) {
        const char *name = i < WO_VARS ? wo_defs[i].name : wo_switches[i - WO_VARS];
        if (strlen(name) == n && strncmp(s, name, n) == 0)
            return i;
    }
    return WO_UNKNOWN;
}

/* Each unknown variable of the format, said once (curl warns too); it
 * expands to nothing. (%header{NAME} is always known.) */
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

/* ---- the last response head, for %header{NAME} and those that read it ---- */

/* The head's field lines, one by one: *name and *value (its spaces
 * trimmed) of the line at *at, which moves to the next; false at the end.
 * The status line is skipped. */
static bool head_field(const struct fetch_cli *fc, size_t *at, const char **name, size_t *name_len,
                       const char **value, size_t *value_len)
{
    if (!fc->last_head_len)
        return false;
    const char *h = fc->last_head, *end = h + fc->last_head_len;
    const char *q = h + *at;
    if (*at == 0) { /* the status line */
        const char *nl = memchr(h, '\n', fc->last_head_len);
        q = nl ? nl + 1 : end;
    }
    while (q < end) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        const char *eol = nl ? nl : end, *colon = memchr(q, ':', (size_t)(eol - q));
        *at = (size_t)((nl ? nl + 1 : end) - h);
        if (colon && colon > q) {
            const char *a = colon + 1, *b = eol;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == '\r' || b[-1] == ' ' || b[-1] == '\t'))
                b--;
            *name = q;
            *name_len = (size_t)(colon - q);
            *value = a;
            *value_len = (size_t)(b - a);
            return true;
        }
        q = *at + h;
    }
    *at = fc->last_head_len;
    return false;
}

/* Appends s[0..n) to out (cap bytes, *o used), cut at its capacity. */
static void put_cut(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    if (n > cap - 1 - *o)
        n = cap - 1 - *o;
    memcpy(out + *o, s, n);
    *o += n;
    out[*o] = '\0';
}

/* The values of the last head's fields named name[0..n) (any case), joined
 * with ", "; "" when there is none. Returns how many there are. */
static unsigned head_value(const struct fetch_cli *fc, const char *name, size_t n, char *out,
                           size_t cap)
{
    size_t at = 0, o = 0, fn, vn;
    const char *f, *v;
    unsigned count = 0;
    out[0] = '\0';
    while (head_field(fc, &at, &f, &fn, &v, &vn)) {
        if (n && fn != n)
            continue;
        if (n && strncasecmp(f, name, n) != 0)
            continue;
        if (count++ && n)
            put_cut(out, cap, &o, ", ", 2);
        if (n)
            put_cut(out, cap, &o, v, vn);
    }
    return count;
}

/* %{redirect_url}: where the final response, a redirect not followed,
 * points (resolved against the URL that got it), "" when none. */
static void redirect_url(const struct fetch_cli *fc, const char *url, char *out, size_t cap)
{
    int status = fc->f ? sk_fetch_status(fc->f) : 0;
    struct sk_url base, next;
    out[0] = '\0';
    if (status < 300 || status > 399 || !head_value(fc, "location", 8, out, cap) || !*out)
        return;
    if (sk_url_parse(url, strlen(url), &base) < 0 || sk_url_resolve(&base, out, strlen(out),
                                                                   &next) < 0 ||
        sk_url_format(&next, out, cap) < 0)
        out[0] = '\0';
}

static void wo_seconds(char *out, size_t cap, uint64_t ns)
{
    snprintf(out, cap, "%.6f", (double)ns / 1e9);
}

/* The peer's address or port ("ADDRESS:PORT", IPv6 in brackets). */
static void wo_peer(const char *peer, bool port, char *out, size_t cap)
{
    const char *colon = strrchr(peer, ':');
    if (!colon) {
        snprintf(out, cap, "%s", port ? "0" : "");
        return;
    }
    if (port) {
        snprintf(out, cap, "%s", colon + 1);
        return;
    }
    bool v6 = peer[0] == '[' && colon > peer && colon[-1] == ']';
    snprintf(out, cap, "%.*s", (int)(colon - peer - (v6 ? 2 : 0)), peer + v6);
}

/* The value of variable v for the URL just done, as text (a string's raw
 * bytes, as the server may have sent them); for %{json}, numbers as
 * JSON writes them. */
static void wo_value(const struct fetch_cli *fc, int v, int status, bool json, char *out,
                     size_t cap)
{
    const struct fetch_report *r = &fc->rep;
    const char *url = fc->f && *sk_fetch_url_effective(fc->f) ? sk_fetch_url_effective(fc->f)
                                                              : fc->shown;
    const char *file = fc->output && strcmp(fc->output, "-") != 0 ? fc->output
                       : fc->out_path                             ? fc->out_path
                                                                  : "";
    uint64_t total_ns = sk_now_ns() - r->start_ns;
    out[0] = '\0';
    switch ((enum wo_id)v) {
    case WO_CONTENT_TYPE: snprintf(out, cap, "%s", r->content_type); break;
    case WO_ERRORMSG:
        snprintf(out, cap, "%s", status != EXIT_OK && fc->f ? sk_fetch_error(fc->f) : "");
        break;
    case WO_EXITCODE: snprintf(out, cap, "%d", status); break;
    case WO_FILENAME: snprintf(out, cap, "%s", file); break;
    case WO_HTTP_CODE:
    case WO_RESPONSE_CODE:
        snprintf(out, cap, json ? "%d" : "%03d", fc->f ? sk_fetch_status(fc->f) : 0);
        break;
    case WO_HTTP_CONNECT: /* as curl writes it: 000 when none */
        snprintf(out, cap, json ? "%d" : "%03d", fc->f ? sk_fetch_connect_status(fc->f) : 0);
        break;
    case WO_HTTP_VERSION: snprintf(out, cap, "%s", *r->version ? r->version : "0"); break;
    case WO_LOCAL_IP: wo_peer(r->local, false, out, cap); break;
    case WO_LOCAL_PORT: wo_peer(r->local, true, out, cap); break;
    case WO_METHOD: snprintf(out, cap, "%s", r->method); break;
    case WO_NUM_CONNECTS: snprintf(out, cap, "%u", r->connects); break;
    case WO_NUM_HEADERS: snprintf(out, cap, "%u", head_value(fc, NULL, 0, out, cap)); break;
    case WO_NUM_REDIRECTS: snprintf(out, cap, "%ld", fc->f ? sk_fetch_redirects(fc->f) : 0L); break;
    case WO_REDIRECT_URL: redirect_url(fc, url, out, cap); break;
    case WO_REMOTE_IP: wo_peer(r->peer, false, out, cap); break;
    case WO_REMOTE_PORT: wo_peer(r->peer, true, out, cap); break;
    case WO_SCHEME: /* as curl 7.88 writes it */
        snprintf(out, cap, "%s", strncmp(url, "https:", 6) == 0 ? "HTTPS" : "HTTP");
        break;
    case WO_SIZE_DOWNLOAD: snprintf(out, cap, "%llu", (unsigned long long)r->body_bytes); break;
    case WO_SIZE_HEADER: snprintf(out, cap, "%llu", (unsigned long long)r->head_bytes); break;
    case WO_SIZE_REQUEST: snprintf(out, cap, "%llu", (unsigned long long)r->request_bytes); break;
    case WO_SIZE_UPLOAD: /* uploads are refused */
    case WO_SPEED_UPLOAD: snprintf(out, cap, "0"); break;
    case WO_SSL_VERIFY_RESULT: snprintf(out, cap, "%ld", r->verify_result); break;
    case WO_SPEED_DOWNLOAD:
        snprintf(out, cap, "%llu",
                 (unsigned long long)(total_ns ? (double)r->body_bytes * 1e9 / (double)total_ns
                                               : 0));
        break;
    case WO_TIME_APPCONNECT: wo_seconds(out, cap, r->tls_ns); break;
    case WO_TIME_CONNECT: wo_seconds(out, cap, r->connected_ns); break;
    case WO_TIME_NAMELOOKUP: wo_seconds(out, cap, r->resolved_ns); break;
    case WO_TIME_PRETRANSFER: wo_seconds(out, cap, r->request_ns); break;
    case WO_TIME_REDIRECT:
        wo_seconds(out, cap, fc->f && sk_fetch_redirects(fc->f) > 0 ? r->redirect_ns : 0);
        break;
    case WO_TIME_STARTTRANSFER: wo_seconds(out, cap, r->head_ns); break;
    case WO_TIME_TOTAL: wo_seconds(out, cap, total_ns); break;
    case WO_URL: snprintf(out, cap, "%s", fc->shown); break;
    case WO_URL_EFFECTIVE: snprintf(out, cap, "%s", url); break;
    case WO_URLNUM: snprintf(out, cap, "%zu", r->index); break;
    default: break; /* a switch: no value */
    }
}

/* Where the expansion goes: standard output's text and standard error's,
 * each cut at its capacity. */
struct wo_sink {
    char *buf[2];
    size_t len[2], cap;
    int to; /* 0: standard output, 1: standard error */
};

static void wo_put(struct wo_sink *s, const char *p, size_t n)
{
    size_t room = s->cap - 1 - s->len[s->to];
    if (n > room)
        n = room;
    memcpy(s->buf[s->to] + s->len[s->to], p, n);
    s->len[s->to] += n;
}

/* A value from the network as text: control bytes as \xHH, as -v does. */
static void wo_put_text(struct wo_sink *s, const char *v)
{
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c < 0x20 || c == 0x7f) {
            char hex[8];
            int n = snprintf(hex, sizeof hex, "\\x%02x", c);
            wo_put(s, hex, (size_t)n);
        } else {
            wo_put(s, v, 1);
        }
    }
}

/* The length of the UTF-8 sequence at p (a lead byte of 0x80 or more),
 * 0 if it is not one: overlong forms, surrogates and code points over
 * U+10FFFF are not. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || p[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
        return 0;
    return n;
}

/* v as a JSON string: bytes that are not UTF-8 become U+FFFD. */
static void wo_put_json_string(struct wo_sink *s, const char *v)
{
    wo_put(s, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)v; *p;) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p++;
            wo_put(s, esc, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            int n = snprintf(esc, sizeof esc, "\\u%04x", *p++);
            wo_put(s, esc, (size_t)n);
        } else if (*p < 0x80) {
            wo_put(s, (const char *)p++, 1);
        } else {
            size_t n = utf8_len(p);
            if (n)
                wo_put(s, (const char *)p, n);
            else
                wo_put(s, "\xef\xbf\xbd", 3);
            p += n ? n : 1;
        }
    }
    wo_put(s, "\"", 1);
}

/* %{json}: every variable, numbers as numbers, an empty content type or
 * error message as null (curl's form). */
static void wo_put_json(const struct fetch_cli *fc, int status, struct wo_sink *s)
{
    static char val[FETCH_SHOWN_MAX + 64];
    wo_put(s, "{", 1);
    for (int v = 0; v < WO_VARS; v++) {
        const char *name = wo_defs[v].name;
        wo_value(fc, v, status, true, val, sizeof val);
        wo_put(s, v ? ",\"" : "\"", v ? 2 : 1);
        wo_put(s, name, strlen(name));
        wo_put(s, "\":", 2);
        if (wo_defs[v].kind != WO_TEXT)
            wo_put(s, val, strlen(val));
        else if (!*val && (v == WO_CONTENT_TYPE || v == WO_ERRORMSG || v == WO_REDIRECT_URL))
            wo_put(s, "null", 4);
        else
            wo_put_json_string(s, val);
    }
    wo_put(s, "}", 1);
}

/* %{header_json}: the last head's fields, curl's form: an object of the
 * names in lower case, each to the array of its values in order (the
 * first WO_JSON_FIELDS_MAX fields: bounded). */
#define WO_JSON_FIELDS_MAX 256
static void wo_put_header_json(const struct fetch_cli *fc, struct wo_sink *s)
{
    static struct sk_http_header fl[WO_JSON_FIELDS_MAX];
    static char text[SK_HTTP_HEAD_MAX + 1];
    size_t n = 0, at = 0;
    while (n < WO_JSON_FIELDS_MAX && head_field(fc, &at, &fl[n].name, &fl[n].name_len,
                                                &fl[n].value, &fl[n].value_len))
        n++;
    wo_put(s, "{", 1);
    for (size_t i = 0, said = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && (fl[j].name_len != fl[i].name_len ||
                         strncasecmp(fl[j].name, fl[i].name, fl[i].name_len) != 0))
            j++;
        if (j < i)
            continue; /* said with the first of its name */
        for (size_t k = 0; k < fl[i].name_len; k++)
            text[k] = (char)tolower((unsigned char)fl[i].name[k]);
        text[fl[i].name_len] = '\0';
        wo_put(s, ",", said++ ? 1 : 0);
        wo_put_json_string(s, text);
        wo_put(s, ":[", 2);
        for (size_t k = i, vals = 0; k < n; k++) {
            if (fl[k].name_len != fl[i].name_len ||
                strncasecmp(fl[k].name, fl[i].name, fl[i].name_len) != 0)
                continue;
            memcpy(text, fl[k].value, fl[k].value_len);
            text[fl[k].value_len] = '\0';
            wo_put(s, ",", vals++ ? 1 : 0);
            wo_put_json_string(s, text);
        }
        wo_put(s, "]", 1);
    }
    wo_put(s, "}", 1);
}

/* The format expanded into s. */
static void wo_expand(const struct fetch_cli *fc, int status, struct wo_sink *s)
{
    static char val[FETCH_SHOWN_MAX + 64];
    for (const char *p = fc->write_out; *p; p++) {
        const char *end;
        if (p[0] == '%' && p[1] == '%') {
            wo_put(s, p++, 1);
        } else if (strncmp(p, "%header{", 8) == 0 && (end = strchr(p + 8, '}')) != NULL) {
            head_value(fc, p + 8, (size_t)(end - p - 8), val, sizeof val);
            wo_put_text(s, val);
            p = end;
        } else if (p[0] == '%' && p[1] == '{' && (end = strchr(p + 2, '}')) != NULL) {
            int v = wo_var(p + 2, (size_t)(end - p - 2));
            p = end;
            if (v == WO_ONERROR && status == EXIT_OK)
                return; /* the rest is for a failure only */
            if (v == WO_STDOUT || v == WO_STDERR)
                s->to = v == WO_STDERR;
            else if (v == WO_JSON)
                wo_put_json(fc, status, s);
            else if (v == WO_HEADER_JSON)
                wo_put_header_json(fc, s);
            else if (v < WO_VARS) {
                wo_value(fc, v, status, false, val, sizeof val);
                wo_put_text(s, val);
            }
        } else if (p[0] == '\\' && p[1] && strchr("nrt\\", p[1])) {
            char c = (char)(p[1] == 'n' ? '\n' : p[1] == 'r' ? '\r' : p[1] == 't' ? '\t' : '\\');
            wo_put(s, &c, 1);
            p++;
        } else {
            wo_put(s, p, 1);
        }
    }
}

/* -w @FILE (@-: standard input): the format is the file's text, which
 * may hold newlines; bounded, and no NUL byte. */
#define WO_FILE_MAX (64 * 1024)
static int wo_load(struct fetch_cli *fc)
{
    const char *path = fc->write_out + 1;
    bool in = strcmp(path, "-") == 0;
    if (in && fc->list && strcmp(fc->list, "-") == 0) {
        cli_error("-w @- and -i - cannot both read standard input");
        return EXIT_USAGE;
    }
    int fd = in ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        cli_error("-w @%s: %s", path, strerror(errno));
        return EXIT_USAGE;
    }
    char *text = malloc(WO_FILE_MAX + 1);
    if (!text) {
        if (fd > STDERR_FILENO)
            close(fd);
        cli_error("%s", cli_strerror(-ENOMEM));
        return EXIT_FAIL;
    }
    size_t n = 0;
    int err = 0;
    for (ssize_t k = 1; !err && k != 0 && n <= WO_FILE_MAX;) {
        k = read(fd, text + n, WO_FILE_MAX + 1 - n);
        if (k > 0)
            n += (size_t)k;
        else if (k < 0 && errno != EINTR)
            err = errno;
    }
    if (fd > STDERR_FILENO)
        close(fd);
    const char *why = err               ? strerror(err)
                      : n > WO_FILE_MAX ? _("larger than 64 KiB")
                      : memchr(text, '\0', n) ? _("holds a NUL byte")
                                              : NULL;
    if (why) {
        free(text);
        cli_error("-w @%s: %s", path, why);
        return err ? EXIT_FAIL : EXIT_USAGE; /* a read error is no bad command line */
    }
    text[n] = '\0';
    fc->write_out = fc->write_out_text = text;
    return EXIT_OK;
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
    if (fc->write_out && fc->write_out[0] == '@') {
        int rc = wo_load(fc);
        if (rc != EXIT_OK)
            return rc;
    }
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
    free(fc->write_out_text);
    fc->write_out = fc->write_out_text = NULL;
    fetch_report_drop_head(fc);
}

void fetch_report_drop_head(struct fetch_cli *fc)
{
    free(fc->last_head);
    fc->last_head = NULL;
    fc->last_head_len = fc->last_head_cap = 0;
}

/* ---- around each URL ---- */

void fetch_report_begin(struct fetch_cli *fc, size_t index)
{
    fc->rep = (struct fetch_report){.start_ns = sk_now_ns(), .index = index};
    fc->shown[0] = '\0';
    fc->last_head_len = 0;
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

/* What -w reports of a response head: its version and Content-Type. */
static void note_head(struct fetch_report *r, const char *p, size_t n)
{
    /* "HTTP/1.1 200", "HTTP/2 200": curl says 1.0 as "1" */
    const char *v = p + 5, *sp = n > 5 ? memchr(v, ' ', n - 5) : NULL;
    size_t vn = n > 5 && memcmp(p, "HTTP/", 5) == 0 && sp ? (size_t)(sp - v) : 0;
    if (vn == 3 && memcmp(v, "1.0", 3) == 0)
        vn = 1;
    snprintf(r->version, sizeof r->version, "%.*s", vn < sizeof r->version ? (int)vn : 0, v);
    r->content_type[0] = '\0';
    for (const char *end = p + n, *q = p; q < end;) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        const char *eol = nl ? nl : end;
        size_t name = sizeof "content-type:" - 1;
        if ((size_t)(eol - q) >= name && strncasecmp(q, "content-type:", name) == 0) {
            const char *a = q + name, *b = eol;
            while (a < b && (*a == ' ' || *a == '\t'))
                a++;
            while (b > a && (b[-1] == '\r' || b[-1] == ' ' || b[-1] == '\t'))
                b--;
            size_t len = (size_t)(b - a) < sizeof r->content_type ? (size_t)(b - a)
                                                                 : sizeof r->content_type - 1;
            memcpy(r->content_type, a, len);
            r->content_type[len] = '\0';
        }
        q = nl ? nl + 1 : end;
    }
}

/* With -w: a copy of the head just received (the last one is the final
 * response's when the URL ends); kept as it was if memory runs out. */
static void keep_head(struct fetch_cli *fc, const char *p, size_t n)
{
    if (n > fc->last_head_cap) {
        char *grown = realloc(fc->last_head, n);
        if (!grown)
            return;
        fc->last_head = grown;
        fc->last_head_cap = n;
    }
    memcpy(fc->last_head, p, n);
    fc->last_head_len = n;
}

void fetch_report_event(struct fetch_cli *fc, const struct sk_fetch_event *ev)
{
    struct fetch_report *r = &fc->rep;
    if (fc->verbose)
        verbose(fc, ev);
    uint64_t t = sk_now_ns() - r->start_ns;
    if (r->after_head && (ev->kind == SK_FETCH_EV_RESOLVED || ev->kind == SK_FETCH_EV_REUSED)) {
        r->redirect_ns = t; /* the next hop begins */
        r->after_head = false;
    }
    switch (ev->kind) {
    case SK_FETCH_EV_RESOLVED: r->resolved_ns = t; break;
    case SK_FETCH_EV_CONNECTED:
    case SK_FETCH_EV_REUSED:
        snprintf(r->peer, sizeof r->peer, "%.*s", (int)ev->len, ev->data);
        snprintf(r->local, sizeof r->local, "%s", ev->local ? ev->local : "");
        r->connects += ev->kind == SK_FETCH_EV_CONNECTED;
        r->connected_ns = ev->kind == SK_FETCH_EV_CONNECTED ? t : 0; /* reused: none */
        r->resolved_ns = ev->kind == SK_FETCH_EV_CONNECTED ? r->resolved_ns : 0;
        r->tls_ns = ev->kind == SK_FETCH_EV_CONNECTED && ev->total ? t : 0;
        r->verify_result = 0;
        break;
    case SK_FETCH_EV_TLS: r->verify_result = (long)ev->done; break;
    case SK_FETCH_EV_REQUEST: {
        const char *sp = memchr(ev->data, ' ', ev->len);
        size_t n = sp ? (size_t)(sp - ev->data) : 0;
        snprintf(r->method, sizeof r->method, "%.*s", n < sizeof r->method ? (int)n : 0,
                 ev->data);
        r->request_ns = t;
        r->request_bytes += ev->len;
        break;
    }
    case SK_FETCH_EV_HEAD:
        r->head_ns = t;
        r->head_bytes += ev->len;
        r->after_head = true;
        note_head(r, ev->data, ev->len);
        if (fc->write_out)
            keep_head(fc, ev->data, ev->len);
        break;
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
    static char text[2][4 * FETCH_SHOWN_MAX + 4096]; /* %{json} has two URLs */
    struct wo_sink sk = {.buf = {text[0], text[1]}, .cap = sizeof text[0]};
    wo_expand(fc, status, &sk);
    int rc = 0;
    for (int to = 0; to < 2; to++) {
        if (!sk.len[to] || (fc->held && fetch_held_add(fc->held, to ? FETCH_HELD_ERR : FETCH_HELD_OUT, text[to], sk.len[to])))
            continue; /* written in its turn */
        bool off = fetch_board_off(fc, to ? STDERR_FILENO : STDOUT_FILENO);
        if (to)
            fetch_stderr(fc, text[to], sk.len[to]);
        else
            rc = fetch_write_stdout(fc, text[to], sk.len[to]);
        fetch_board_back(fc, off);
    }
    return rc < 0 && status == EXIT_OK ? EXIT_WRITE : status;
}
