/* The HTTP client's entry points: options, the object, errors, and the
 * retry loop around one attempt (fetch_run.c). */
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fetch_int.h"

void sk_fetch_opts_init(struct sk_fetch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->size = sizeof *o;
    o->max_redirs = 10;
    o->retry_delay_ms = 1000;
    o->connect_timeout_ms = 30000;
    o->idle_timeout_ms = 60000;
}

/* Options sk_fetch_new and sk_fetch_set_opts accept. */
static bool opts_ok(const struct sk_fetch_opts *o)
{
    if (!o || (o->size != SK__FETCH_OPTS_SIZE_0 && o->size != SK__FETCH_OPTS_SIZE_1 &&
               o->size != SK__FETCH_OPTS_SIZE_2 && o->size != sizeof *o)) /* the layouts so far */
        return false;
    if (o->size >= SK__FETCH_OPTS_SIZE_2 &&
        (unsigned)o->http_version > SK_FETCH_HTTP_2_PRIOR_KNOWLEDGE)
        return false;
    if (o->size == sizeof *o && o->low_speed_time_ms < 0)
        return false;
    /* A decoded body has no byte ranges of its own to resume into. */
    return !((o->flags & SK_FETCH_COMPRESSED) && (o->flags & SK_FETCH_RESUME));
}

static void take_opts(struct sk_fetch *f, const struct sk_fetch_opts *o)
{
    memset(&f->o, 0, sizeof f->o);
    memcpy(&f->o, o, o->size); /* the fields an older layout lacks stay 0 */
    f->o.size = sizeof f->o;
    f->cx = o->cancel ? o->cancel : &f->own_cancel;
}

int sk_fetch_new(const struct sk_fetch_opts *o, struct sk_fetch **out)
{
    *out = NULL;
    if (!opts_ok(o))
        return SK_EUSAGE;
    struct sk_fetch *f = calloc(1, sizeof *f);
    if (!f)
        return SK_ERR(ENOMEM);
    if (!(f->buf = malloc(SK__FETCH_BUF_SIZE))) {
        free(f);
        return SK_ERR(ENOMEM);
    }
    f->own_cancel.fd = -1;
    f->w.wake_fd = -1;
    sk__outdir_init(&f->outdir);
    take_opts(f, o);
    *out = f;
    return 0;
}

static bool same_string(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int sk_fetch_set_opts(struct sk_fetch *f, const struct sk_fetch_opts *o)
{
    if (!f || !opts_ok(o))
        return SK_EUSAGE;
    const char *cacert = o->cacert;
    bool insecure = o->flags & SK_FETCH_INSECURE;
    if (!same_string(cacert, f->o.cacert) || insecure != !!(f->o.flags & SK_FETCH_INSECURE)) {
        /* what the kept connection was verified with is not the new rule */
        sk__fetch_close(f, true);
        sk_tls_ctx_free(f->tls);
        f->tls = NULL;
    }
    take_opts(f, o);
    if (f->o.flags & SK_FETCH_NO_REUSE)
        sk__fetch_close(f, true);
    return 0;
}

void sk_fetch_free(struct sk_fetch *f)
{
    if (!f)
        return;
    sk__fetch_wire_end(f);
    sk__outdir_close(&f->outdir);
    sk__fetch_dns_free(f->dns);
    sk_tls_ctx_free(f->tls);
    free(f->buf);
    free(f);
}

const char *sk_fetch_error(const struct sk_fetch *f)
{
    return f ? f->msg : "";
}

int sk_fetch_status(const struct sk_fetch *f)
{
    return f ? f->last_status : 0;
}

enum sk_fetch_cause sk_fetch_cause(const struct sk_fetch *f)
{
    return f ? f->cause : SK_FETCH_CAUSE_NONE;
}

const char *sk_fetch_url_effective(const struct sk_fetch *f)
{
    return f ? f->url_effective : "";
}

long sk_fetch_redirects(const struct sk_fetch *f)
{
    return f ? f->redirects : 0;
}

int sk_fetch_connect_status(const struct sk_fetch *f)
{
    return f ? f->connect_status : 0;
}

bool sk_fetch_was_complete(const struct sk_fetch *f)
{
    return f && f->complete;
}

uint64_t sk_fetch_deadline(const struct sk_fetch *f)
{
    return sk__fetch_deadline(f, f->o.idle_timeout_ms);
}

void sk_fetch_cancel_raise(struct sk_fetch_cancel *c, int sig)
{
    c->flag = sig;
    int fd = c->fd;
    if (fd >= 0) {
        int saved = errno;
        /* async-signal-safe; a stale number cannot be: it is -1 before
         * the eventfd closes */
        uint64_t one = 1;
        ssize_t n = write(fd, &one, sizeof one);
        (void)n; /* a full count wakes the loop as well */
        errno = saved;
    }
}

int sk_fetch_set_error(struct sk_fetch *f, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    return code;
}

uint64_t sk__fetch_deadline(const struct sk_fetch *f, int ms)
{
    uint64_t d = ms > 0 ? sk_now_ms() + (uint64_t)ms : 0;
    if (f->deadline_ms && (d == 0 || d > f->deadline_ms))
        d = f->deadline_ms;
    return d;
}

int sk__fetch_interrupted(struct sk_fetch *f, const char *doing)
{
    static const struct {
        int sig;
        const char *name;
    } names[] = {{SIGINT, "SIGINT"},
                 {SIGTERM, "SIGTERM"},
                 {SIGHUP, "SIGHUP"},
                 {SIGQUIT, "SIGQUIT"},
                 {SIGPIPE, "SIGPIPE: output closed"},
                 {SIGXCPU, "SIGXCPU: CPU time limit"},
                 {SIGUSR1, "SIGUSR1"},
                 {SIGUSR2, "SIGUSR2"}};
    const char *name = "a signal";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == f->cx->flag)
            name = names[i].name;
    return sk_fetch_set_error(f, SK_ERR(ECANCELED), "%s: interrupted (%s)", doing, name);
}

int sk_fetch_fail_as(struct sk_fetch *f, int err, const char *doing)
{
    switch (err) {
    case SK_ETIMEDOUT:
        if (f->deadline_ms && sk_now_ms() >= f->deadline_ms) {
            f->expired = true;
            f->cause = SK_FETCH_CAUSE_MAX_TIME;
            return sk_fetch_set_error(f, err, "%s: timed out: time limit of %g s reached", doing,
                                      f->o.max_time_ms / 1000.0);
        }
        if (strncmp(doing, "reading", 7) == 0 || strncmp(doing, "sending", 7) == 0 ||
            strncmp(doing, "writing", 7) == 0 || strncmp(doing, "opening", 7) == 0) {
            f->cause = SK_FETCH_CAUSE_IDLE_TIMEOUT;
            return sk_fetch_set_error(f, err, "%s: timed out: nothing for %g s", doing,
                                      f->o.idle_timeout_ms / 1000.0);
        }
        f->cause = SK_FETCH_CAUSE_CONNECT_TIMEOUT;
        return sk_fetch_set_error(f, err, "%s: timed out after %g s", doing,
                                  f->o.connect_timeout_ms / 1000.0);
    case SK_ERR(ECANCELED): return sk__fetch_interrupted(f, doing);
    case SK_ECLOSED:
        return sk_fetch_set_error(f, SK_ETRUNCATED, "%s: connection closed early", doing);
    default: return sk_fetch_set_error(f, err, "%s: %s", doing, sk_strerror(err));
    }
}

static int emit(struct sk_fetch *f, const struct sk_fetch_event *ev)
{
    return f->o.on_event ? f->o.on_event(f->o.event_arg, ev) : 0;
}

int sk__fetch_event(struct sk_fetch *f, enum sk_fetch_event_kind kind, const char *data, size_t len,
                    uint64_t done, uint64_t total)
{
    return emit(f, &(struct sk_fetch_event){
                       .kind = kind, .data = data, .len = len, .done = done, .total = total});
}

int sk__fetch_event_local(struct sk_fetch *f, enum sk_fetch_event_kind kind, const char *data,
                          size_t len, uint64_t total, const char *local)
{
    return emit(f, &(struct sk_fetch_event){
                       .kind = kind, .data = data, .len = len, .total = total, .local = local});
}

void sk__fetch_notice(struct sk_fetch *f, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n >= 0)
        (void)sk__fetch_event(f, SK_FETCH_EV_NOTICE, line,
                              (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, 0, 0);
}

static bool retryable(const struct sk_fetch *f, int rc)
{
    if (f->expired || f->cx->flag)
        return false;
    if (rc == SK_ECONNECT || rc == SK_ETIMEDOUT)
        return true;
    if (rc == SK_ETRUNCATED && f->rs.active)
        return true; /* with RESUME a retry continues where the body stopped */
    int s = f->last_status;
    return rc == SK_EHTTP && (s == 408 || s == 429 || (s >= 500 && s <= 599));
}

static int run_with_retries(struct sk_fetch *f)
{
    const struct sk_fetch_opts *o = &f->o;
    long backoff = o->retry_delay_ms;
    bool restarted = false;
    for (long attempt = 0;; attempt++) {
        int rc = sk__fetch_attempt(f);
        if (rc == 0)
            return rc;
        if (f->restart && !restarted) {
            restarted = true; /* the part was not continuable: once more from zero */
            attempt--;
            continue;
        }
        if (attempt >= o->retries || !retryable(f, rc))
            return rc;
        long wait = f->retry_after_ms >= 0 ? f->retry_after_ms : backoff;
        if (f->deadline_ms && sk_now_ms() + (uint64_t)wait >= f->deadline_ms)
            return rc; /* the wait alone would pass max_time */
        sk__fetch_notice(f, "%s; retrying in %.1f s (%ld of %ld)", f->msg, wait / 1000.0,
                         attempt + 1, o->retries);
        if (!sk__fetch_nap(f, wait))
            return sk__fetch_interrupted(f, "waiting to retry");
        backoff = backoff * 2 > 60000 ? 60000 : backoff * 2;
    }
}

/* Basic credentials must fit one header line, and a user name its ':'. */
static bool bad_credential(const char *s, bool user)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || (user && *s == ':'))
            return true;
    return false;
}

/* The run's credentials: o.user, else those in the URL, which goes
 * without them into f->url_text. */
static int take_credentials(struct sk_fetch *f, const char *url)
{
    f->auth_user = f->auth_password = NULL;
    int rc = sk_url_take_userinfo(url, f->url_text, sizeof f->url_text, f->url_user,
                                  sizeof f->url_user, f->url_password, sizeof f->url_password);
    if (rc == SK_ETOOBIG && strlen(url) < sizeof f->url_text)
        return sk_fetch_set_error(f, SK_EUSAGE, "the credentials in the URL are too long");
    if (rc < 0 && rc != SK_ETOOBIG)
        return sk_fetch_set_error(f, SK_EUSAGE, "invalid credentials in the URL (%s)",
                                  sk_strerror(rc));
    if (rc < 0)
        return sk_fetch_set_error(f, SK_EUSAGE, "invalid URL (%s)", sk_strerror(rc));
    if (f->o.user) {
        if (bad_credential(f->o.user, true) || bad_credential(f->o.password, false))
            return sk_fetch_set_error(f, SK_EUSAGE,
                                      "invalid credentials (a control byte, or ':' in the user)");
        f->auth_user = f->o.user;
        f->auth_password = f->o.password ? f->o.password : "";
    } else if (rc > 0) {
        f->auth_user = f->url_user;
        f->auth_password = f->url_password;
    }
    return 0;
}

int sk_fetch_run(struct sk_fetch *f, const char *url)
{
    f->msg[0] = '\0';
    f->url_effective[0] = '\0';
    f->redirects = 0;
    f->connect_status = 0;
    f->expired = f->complete = false;
    f->last_status = 0;
    f->cause = SK_FETCH_CAUSE_NONE;
    int rc = take_credentials(f, url);
    if (rc < 0)
        return rc;
    url = f->url_text; /* without the credentials: what messages may show */
    rc = sk_url_parse(url, strlen(url), &f->start);
    if (rc == SK_EUNSUPPORTED)
        return sk_fetch_set_error(f, SK_EUSAGE, "unsupported URL scheme (only http and https): %s",
                                  url);
    if (rc < 0)
        return sk_fetch_set_error(f, SK_EUSAGE, "invalid URL (%s): %s", sk_strerror(rc), url);
    sk_url_format(&f->start, f->url_text, sizeof f->url_text);
    if ((rc = sk__fetch_resume_plan(f)) < 0)
        return rc;
    if ((rc = sk__fetch_wire_begin(f)) == 0) {
        f->deadline_ms = f->o.max_time_ms ? sk_now_ms() + (uint64_t)f->o.max_time_ms : 0;
        rc = run_with_retries(f);
    }
    sk__fetch_wire_finish(f);
    sk__fetch_dns_free(f->dns); /* what this run resolved is not kept for the next */
    f->dns = NULL;
    return rc;
}
