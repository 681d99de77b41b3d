/* sockit fetch: one attempt: follow redirects, then save the final body
 * through the atomic output file (or stdout), or refuse it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fetch.h"

static bool is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

/* Retry-After = delay-seconds / HTTP-date (RFC 9110 10.2.3). -1 if absent
 * or unreadable; capped at one hour. */
static long retry_after_ms(const struct sk_http_header *h)
{
    if (!h)
        return -1;
    char v[64];
    if (h->value_len == 0 || h->value_len >= sizeof v)
        return -1;
    memcpy(v, h->value, h->value_len);
    v[h->value_len] = '\0';
    uint64_t secs;
    if (sk_http_parse_u64(v, h->value_len, &secs) == 0)
        return secs > 3600 ? 3600000L : (long)secs * 1000;
    struct tm tm = {0};
    const char *end = strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    time_t when = timegm(&tm), now = time(NULL);
    if (when <= now)
        return 0;
    return when - now > 3600 ? 3600000L : (long)(when - now) * 1000;
}

/* Copies a header value into dst (NUL-terminated); false if too long. */
static bool copy_value(const struct sk_http_header *h, char *dst, size_t cap)
{
    if (h->value_len >= cap)
        return false;
    memcpy(dst, h->value, h->value_len);
    dst[h->value_len] = '\0';
    return true;
}

/* Everything needed from a head before the I/O buffer is reused. */
static int extract(struct fetch_state *fs, const struct sk_http_resp *r, bool head,
                   struct fetch_resp *rp)
{
    memset(rp, 0, sizeof *rp);
    rp->status = r->status;
    rp->retry_after_ms = retry_after_ms(sk_http_header_find(r, "Retry-After"));
    int rc = sk_http_framing(r, head, &rp->framing);
    if (rc == SK_EUNSUPPORTED)
        return fetch_fail(fs, FX_PROTO, "unsupported Transfer-Encoding in the response");
    if (rc < 0)
        return fetch_fail(fs, FX_PROTO,
                          "invalid or conflicting Content-Length / Transfer-Encoding");
    const struct sk_http_header *h = sk_http_header_find(r, "Location");
    if (h) {
        if (!copy_value(h, rp->location, sizeof rp->location))
            return fetch_fail(fs, FX_PROTO, "Location header too long");
        rp->has_location = true;
    }
    /* Validator for a later resume: a strong ETag, else Last-Modified. */
    h = sk_http_header_find(r, "ETag");
    if (!(h && h->value_len > 1 && h->value[0] == '"' &&
          copy_value(h, rp->validator, sizeof rp->validator))) {
        rp->validator[0] = '\0';
        h = sk_http_header_find(r, "Last-Modified");
        if (h && !copy_value(h, rp->validator, sizeof rp->validator))
            rp->validator[0] = '\0';
    }
    h = sk_http_header_find(r, "Content-Range");
    if (h && fetch_parse_content_range(h->value, h->value_len, rp) < 0)
        return fetch_fail(fs, FX_PROTO, "malformed Content-Range header");
    return FX_OK;
}

/* A FIFO another user planted in a shared folder (/tmp) would hand them the
 * body. As the kernel's protected_fifos does for O_CREAT, a FIFO in a sticky
 * world-writable folder must be ours or the folder owner's. (Devices need
 * root to create; a pipe behind /dev/stdout is in no folder.) */
static bool planted_fifo(const char *path, const struct stat *st)
{
    if (!S_ISFIFO(st->st_mode) || st->st_uid == geteuid())
        return false;
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 1,
             slash ? path : ".");
    struct stat ds;
    if (stat(dir, &ds) < 0)
        return true; /* cannot tell: refuse */
    return (ds.st_mode & S_ISVTX) && (ds.st_mode & S_IWOTH) && st->st_uid != ds.st_uid;
}

/* Opens -o's device or FIFO. The links were followed when the output was
 * planned: one planted since, or a regular file swapped in, is refused
 * (only a /proc link to a pipe, which no one else can plant, is followed).
 * A FIFO's open waits for a reader: bounded like a read, and by signals. */
static int open_special(struct fetch_state *fs, int *out)
{
    uint64_t deadline = fetch_deadline(fs, fs->o->idle_timeout_ms);
    int flags = O_WRONLY | O_CLOEXEC | O_NOCTTY | (fs->out_magic ? 0 : O_NOFOLLOW);
    int fd;
    fetch_ticks(true);
    while ((fd = open(fs->out_path, flags)) < 0 &&
           errno == EINTR && !fetch_cancel && !(deadline && sk_now_ms() >= deadline)) {
        /* woken by the tick: try again until cancelled or out of time */
    }
    int e = errno;
    fetch_ticks(false);
    char doing[PATH_MAX + 16];
    snprintf(doing, sizeof doing, "opening %s", fs->out_path);
    if (fd < 0 && fetch_cancel)
        return fetch_interrupted(fs, doing);
    if (fd < 0 && e == EINTR)
        return fetch_fail_sk(fs, SK_ETIMEDOUT, doing);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
        e = EEXIST;
    } else if (fd >= 0 && !fs->out_magic && planted_fifo(fs->out_path, &st)) {
        close(fd);
        return fetch_fail(fs, FX_WRITE, "refusing %s: a FIFO of another user in a shared folder",
                          fs->out_path);
    }
    if (fd < 0)
        return fetch_fail(fs, FX_WRITE, "cannot open %s: %s", fs->out_path, strerror(e));
    *out = fd;
    return FX_OK;
}

/* Standard output, or a device or FIFO named by -o: no temporary file can
 * stand in for those, so the bytes go straight there. */
static int save_to_fd(struct fetch_state *fs, struct sk_conn *c, const struct fetch_resp *rp,
                      size_t pre_off, size_t pre_len)
{
    struct fetch_sink sink = {.kind = SINK_FD, .fd = STDOUT_FILENO};
    if (fs->out_path) {
        int rc = open_special(fs, &sink.fd);
        if (rc != FX_OK)
            return rc;
    } else if (fflush(stdout) != 0) { /* the head first: the body goes to fd 1 directly */
        return fetch_fail(fs, FX_WRITE, "cannot write to standard output: %s", strerror(errno));
    }
    int rc = fetch_digest_begin(fs, &sink, -1, 0);
    if (rc == FX_OK)
        rc = fetch_body(fs, c, &rp->framing, &sink, pre_off, pre_len);
    if (rc == FX_OK)
        rc = fetch_digest_check(fs, &sink);
    fetch_digest_free(&sink);
    if (sink.fd != STDOUT_FILENO && close(sink.fd) < 0 && rc == FX_OK)
        rc = fetch_fail(fs, FX_WRITE, "cannot write %s: %s", fs->out_path, strerror(errno));
    return rc;
}

static void progress_for(struct fetch_state *fs, struct fetch_progress *pg,
                         const struct fetch_resp *rp, uint64_t already)
{
    uint64_t total = rp->framing.kind == SK_HTTP_BODY_LENGTH ? rp->framing.length + already : 0;
    fetch_progress_start(pg, !fs->o->silent && isatty(STDERR_FILENO), total);
    pg->done = already;
}

/* The body into a fresh temporary file, renamed onto the target on success. */
static int save_to_file(struct fetch_state *fs, struct sk_conn *c, const struct fetch_resp *rp,
                        size_t pre_off, size_t pre_len)
{
    unsigned flags = (fs->out_noreplace ? SK_OUTFILE_NOREPLACE : 0) |
                     (fs->o->sync ? SK_OUTFILE_SYNC : 0);
    struct sk_outfile of;
    int rc = sk_outfile_open_temp(&of, fs->out_path, flags);
    if (rc < 0)
        return fetch_fail(fs, FX_WRITE, "cannot create a temporary file beside %s: %s",
                          fs->out_path, sk_strerror(rc));
    SK_WITH(w, &sk_outfile_with, &of);
    if (rp->framing.kind == SK_HTTP_BODY_LENGTH &&
        (rc = sk_outfile_reserve(&of, rp->framing.length)) < 0)
        return w.err = fetch_fail(fs, FX_WRITE, "no room for %llu bytes beside %s: %s",
                                  (unsigned long long)rp->framing.length, fs->out_path,
                                  sk_strerror(rc));
    struct fetch_progress pg;
    progress_for(fs, &pg, rp, 0);
    struct fetch_sink sink = {.kind = SINK_FILE, .of = &of, .pg = &pg};
    w.err = fetch_digest_begin(fs, &sink, -1, 0);
    if (w.err == FX_OK)
        w.err = fetch_body(fs, c, &rp->framing, &sink, pre_off, pre_len);
    if (w.err == FX_OK)
        w.err = fetch_digest_check(fs, &sink); /* verified before the rename */
    fetch_digest_free(&sink);
    fetch_progress_end(&pg);
    rc = sk_with_exit(&w); /* commit (rename) or roll back (unlink) */
    if (rc < 0 && rc == SK_ERR(EEXIST))
        return fetch_fail(fs, FX_WRITE, "%s appeared during the download; not replaced",
                          fs->out_path);
    if (rc < 0)
        return fetch_fail(fs, FX_WRITE, "cannot save %s: %s", fs->out_path, sk_strerror(rc));
    return rc;
}

/* -C: the body continues or replaces FILE.part (opened by the caller). */
static int save_to_part(struct fetch_state *fs, struct sk_conn *c, const struct fetch_resp *rp,
                        struct sk_outfile *of, size_t pre_off, size_t pre_len)
{
    struct fetch_resume *rs = &fs->rs;
    uint64_t span = 0, start = of->size;
    if (rp->status == 206) {
        span = rp->range_end - rp->range_start + 1;
        /* Same data (the validator on record: a cache that ignores If-Range
         * sends another version's bytes), from where the part ends, to the
         * end of a file of the size on record. */
        bool continues = rs->offset > 0 && rp->has_range && !rp->range_unsatisfied &&
                         strcmp(rp->validator, rs->validator) == 0 &&
                         rp->range_start == rs->offset && rp->range_start == of->size &&
                         (rp->range_total == 0 || rp->range_end + 1 == rp->range_total) &&
                         (rs->total == 0 || rp->range_end + 1 == rs->total) &&
                         (rp->framing.kind != SK_HTTP_BODY_LENGTH || rp->framing.length == span);
        if (!continues) {
            fs->rs.offset = 0;
            int rc = sk_outfile_truncate(of);
            if (rc < 0)
                return fetch_fail(fs, FX_WRITE, "cannot truncate %s: %s", of->tmp, sk_strerror(rc));
            fs->restart = true;
            return fetch_fail(fs, FX_PROTO, "the 206 reply does not continue %s", of->tmp);
        }
    } else if (of->size > 0) { /* a full reply: start over */
        int rc = sk_outfile_truncate(of);
        if (rc < 0)
            return fetch_fail(fs, FX_WRITE, "cannot truncate %s: %s", of->tmp, sk_strerror(rc));
    }
    int rc = fetch_resume_save(fs, rp, of);
    if (rc != FX_OK)
        return rc;
    if (rp->framing.kind == SK_HTTP_BODY_LENGTH &&
        (rc = sk_outfile_reserve(of, of->size + rp->framing.length)) < 0)
        return fetch_fail(fs, FX_WRITE, "no room for %llu more bytes in %s: %s",
                          (unsigned long long)rp->framing.length, of->tmp, sk_strerror(rc));
    struct fetch_progress pg;
    progress_for(fs, &pg, rp, of->size);
    struct fetch_sink sink = {.kind = SINK_FILE, .of = of, .pg = &pg};
    rc = fetch_digest_begin(fs, &sink, of->fd, of->size);
    if (rc == FX_OK)
        rc = fetch_body(fs, c, &rp->framing, &sink, pre_off, pre_len);
    fetch_progress_end(&pg);
    if (rc == FX_OK && rp->status == 206 && of->size - start != span) {
        /* A chunked or close-delimited 206 body must be the range it claims. */
        if (of->size - start > span)
            of->keep_on_error = false; /* bytes beyond the range: the part is spoiled */
        rc = fetch_fail(fs, of->size - start > span ? FX_PROTO : FX_TRUNCATED,
                        "the 206 body holds %llu bytes, its Content-Range %llu",
                        (unsigned long long)(of->size - start), (unsigned long long)span);
    }
    if (rc == FX_OK && rs->total && of->size != rs->total)
        rc = fetch_fail(fs, FX_TRUNCATED, "%s holds %llu bytes, expected %llu", of->tmp,
                        (unsigned long long)of->size, (unsigned long long)rs->total);
    if (rc == FX_OK && (rc = fetch_digest_check(fs, &sink)) != FX_OK)
        of->keep_on_error = false; /* the whole part is suspect: never resume from it */
    fetch_digest_free(&sink);
    return rc;
}

/* -C, a 416 "bytes * / SIZE": the part is the whole file, if SIZE is the
 * size on record, and it is committed only after --sha256 checked it. */
static int finish_complete_part(struct fetch_state *fs, struct sk_outfile *part)
{
    struct fetch_sink sink = {.kind = SINK_DISCARD};
    int rc = fetch_digest_begin(fs, &sink, part->fd, part->size);
    if (rc == FX_OK && (rc = fetch_digest_check(fs, &sink)) != FX_OK)
        part->keep_on_error = false; /* never resume from it */
    fetch_digest_free(&sink);
    fs->complete = rc == FX_OK;
    return rc;
}

/* The final response: refuse a non-2xx body, else save it. */
static int finish(struct fetch_state *fs, struct sk_conn *c, const struct fetch_resp *rp,
                  const char *reason, struct sk_outfile *part, size_t pre_off, size_t pre_len)
{
    const struct fetch_opts *o = fs->o;
    bool success = rp->status >= 200 && rp->status <= 299;
    if (part && rp->status == 416 && fs->rs.offset > 0 && rp->range_unsatisfied &&
        fs->rs.total && rp->range_total == fs->rs.total && part->size == fs->rs.total)
        return finish_complete_part(fs, part);
    if (part && rp->status == 416 && fs->rs.offset > 0) {
        fs->rs.offset = 0;
        int rc = sk_outfile_truncate(part);
        if (rc < 0)
            return fetch_fail(fs, FX_WRITE, "cannot truncate %s: %s", part->tmp, sk_strerror(rc));
        fs->restart = true;
        return fetch_fail(fs, FX_PROTO, "416 for the partial file %s", part->tmp);
    }
    if (!success && !o->no_fail)
        return fetch_fail(fs, FX_HTTP, "HTTP %d%s%s (body not saved)", rp->status,
                          *reason ? " " : "", reason);
    if (o->head)
        return FX_OK;
    if (rp->status == 206 && !fs->sent_range) /* a part would pass for the whole */
        return fetch_fail(fs, FX_PROTO, "206 Partial Content to a request without Range "
                                        "(body not saved)");
    if (!fs->out_path || fs->out_special)
        return save_to_fd(fs, c, rp, pre_off, pre_len);
    if (part)
        return save_to_part(fs, c, rp, part, pre_off, pre_len);
    return save_to_file(fs, c, rp, pre_off, pre_len);
}

/* A redirect's target: resolved, supported, not a downgrade. */
static int next_hop(struct fetch_state *fs, const struct sk_url *cur, const struct fetch_resp *rp,
                    long redirs, struct sk_url *next)
{
    if (!rp->has_location)
        return fetch_fail(fs, FX_PROTO, "redirect (%d) without a Location header", rp->status);
    if (redirs >= fs->o->max_redirs)
        return fetch_fail(fs, FX_PROTO, "too many redirects (limit %ld); last Location: %.200s",
                          fs->o->max_redirs, rp->location);
    int rc = sk_url_resolve(cur, rp->location, strlen(rp->location), next);
    if (rc == SK_EUNSUPPORTED)
        return fetch_fail(fs, FX_PROTO, "redirect to an unsupported scheme: %.200s", rp->location);
    if (rc < 0)
        return fetch_fail(fs, FX_PROTO, "redirect to an invalid URL: %.200s", rp->location);
    if (cur->scheme == SK_URL_HTTPS && next->scheme == SK_URL_HTTP && !fs->o->allow_downgrade)
        return fetch_fail(fs, FX_PROTO,
                          "refusing redirect from https to http: %.200s (--allow-downgrade)",
                          rp->location);
    return FX_OK;
}

static int run(struct fetch_state *fs, const struct sk_url *start, struct sk_outfile *part)
{
    static struct sk_url cur, next; /* 8 KiB each: off the stack; one fetch per process */
    cur = *start;
    bool cross = false;
    for (long redirs = 0;; redirs++) {
        SK_AUTO(sk_conn_freep) struct sk_conn *c = NULL;
        int rc = fetch_connect(fs, &cur, &c);
        if (rc == FX_OK)
            rc = fetch_send_request(fs, c, &cur, fs->o->head, cross);
        struct sk_http_resp r;
        struct sk_http_header h[SK_HTTP_HEADERS_MAX];
        size_t head_len = 0, filled = 0;
        if (rc == FX_OK)
            rc = fetch_read_head(fs, c, &r, h, &head_len, &filled);
        if (rc != FX_OK)
            return rc;
        if (fs->hdr_out) { /* bounded like the body: standard output may be a stalled pipe */
            bool out = fs->hdr_out == stdout;
            if (fflush(fs->hdr_out) != 0 && out)
                return fetch_fail(fs, FX_WRITE, "cannot write to standard output: %s",
                                  strerror(errno));
            rc = fetch_write_fd(fs, fileno(fs->hdr_out), fs->buf, head_len,
                                out ? "standard output" : "standard error");
            if (rc != FX_OK && (out || rc != FX_WRITE)) /* a lost stderr is no failure */
                return rc;
        }
        char reason[128];
        snprintf(reason, sizeof reason, "%.*s",
                 (int)(r.reason_len < sizeof reason ? r.reason_len : sizeof reason - 1), r.reason);
        struct fetch_resp rp;
        if ((rc = extract(fs, &r, fs->o->head, &rp)) != FX_OK)
            return rc;
        fs->last_status = rp.status;
        fs->retry_after_ms = rp.retry_after_ms;
        if (!is_redirect(rp.status) || fs->o->max_redirs == 0) {
            rc = finish(fs, c, &rp, reason, part, head_len, filled - head_len);
            if (rc == FX_OK) {
                sk_conn_free(c, true); /* the exchange ended cleanly: close_notify */
                c = NULL;
            }
            return rc;
        }
        if ((rc = next_hop(fs, &cur, &rp, redirs, &next)) != FX_OK)
            return rc;
        cross = cross || !sk_url_same_origin(&cur, &next);
        cur = next;
    }
}

int fetch_attempt(struct fetch_state *fs, const struct sk_url *start)
{
    fs->msg[0] = '\0';
    fs->restart = false;
    fs->last_status = 0;
    fs->retry_after_ms = -1;
    if (!fs->rs.active)
        return run(fs, start, NULL);
    struct sk_outfile part;
    int rc = fetch_resume_open(fs, &part);
    if (rc != FX_OK)
        return rc;
    SK_WITH(w, &sk_outfile_with, &part);
    w.err = run(fs, start, &part);
    rc = sk_with_exit(&w); /* commit FILE.part onto FILE, or keep it for later */
    fetch_resume_finish(fs, &part, rc == 0);
    if (rc < 0)
        return fetch_fail(fs, FX_WRITE, "cannot save %s: %s", fs->out_path, sk_strerror(rc));
    return rc;
}
