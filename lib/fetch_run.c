/* The HTTP client's attempt: follow redirects, then save the final body
 * through the atomic output file (or the write callback), or refuse it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fetch_int.h"

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

/* Content-Encoding, one field or several: one coding, or why not (what
 * it means is decided with the body: only SK_FETCH_COMPRESSED decodes). */
static void content_encoding(const struct sk_http_resp *r, struct sk__fetch_resp *rp)
{
    rp->coding = SK__CODING_IDENTITY;
    size_t len = 0;
    for (size_t i = 0; i < r->num_headers; i++) {
        const struct sk_http_header *h = &r->headers[i];
        if (h->name_len != 16 || strncasecmp(h->name, "Content-Encoding", 16) != 0)
            continue;
        len += (size_t)snprintf(rp->coding_text + len, sizeof rp->coding_text - len, "%s%.*s",
                                len ? ", " : "", (int)(h->value_len > 48 ? 48 : h->value_len),
                                h->value);
        if (len >= sizeof rp->coding_text)
            len = sizeof rp->coding_text - 1;
        enum sk__coding c;
        int rc = sk__coding_parse(h->value, h->value_len, &c);
        if (rc == 0 && c != SK__CODING_IDENTITY && rp->coding != SK__CODING_IDENTITY)
            rc = SK_EPARSE; /* a second coding */
        if (rc < 0 && rp->coding_rc == 0)
            rp->coding_rc = rc;
        if (rc == 0 && c != SK__CODING_IDENTITY)
            rp->coding = c;
    }
}

/* Everything needed from a head before the I/O buffer is reused. */
static int extract(struct sk_fetch *f, const struct sk_http_resp *r, bool head,
                   struct sk__fetch_resp *rp)
{
    memset(rp, 0, sizeof *rp);
    rp->status = r->status;
    rp->retry_after_ms = retry_after_ms(sk_http_header_find(r, "Retry-After"));
    int rc = sk_http_framing(r, head, &rp->framing);
    if (rc == SK_EUNSUPPORTED)
        return sk_fetch_set_error(f, SK_EPROTO, "unsupported Transfer-Encoding in the response");
    if (rc < 0)
        return sk_fetch_set_error(f, SK_EPROTO,
                                  "invalid or conflicting Content-Length / Transfer-Encoding");
    const struct sk_http_header *h = sk_http_header_find(r, "Location");
    if (h) {
        if (!copy_value(h, rp->location, sizeof rp->location))
            return sk_fetch_set_error(f, SK_EPROTO, "Location header too long");
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
    content_encoding(r, rp);
    h = sk_http_header_find(r, "Content-Range");
    if (h && sk__fetch_parse_content_range(h->value, h->value_len, rp) < 0)
        return sk_fetch_set_error(f, SK_EPROTO, "malformed Content-Range header");
    return 0;
}

/* The body starts: `already` bytes of it are in the part. */
static int body_begin(struct sk_fetch *f, struct sk__fetch_sink *sink,
                      const struct sk__fetch_resp *rp, uint64_t already)
{
    /* A decoded body's size is not the length of what is sent. */
    sink->total =
        rp->framing.kind == SK_HTTP_BODY_LENGTH && !sink->dec ? rp->framing.length + already : 0;
    sink->done = already;
    sink->progress = true;
    int rc = sk__fetch_event(f, SK_FETCH_EV_BODY_BEGIN, NULL, 0, already, sink->total);
    return rc < 0 && !f->msg[0] ? sk_fetch_fail_as(f, rc, "starting the body") : rc;
}

/* With no output file the body goes to the write callback. */
static int save_to_call(struct sk_fetch *f, const struct sk__fetch_resp *rp)
{
    struct sk__fetch_sink sink = {.kind = SK__SINK_CALL};
    int rc = sk__fetch_decode_begin(f, &sink, rp, 0);
    if (rc == 0)
        rc = body_begin(f, &sink, rp, 0);
    if (rc == 0)
        rc = sk__fetch_digest_begin(f, &sink, -1, 0);
    if (rc == 0)
        rc = sk__fetch_body(f, &rp->framing, &sink);
    if (rc == 0)
        rc = sk__fetch_decode_end(f, &sink);
    if (rc == 0)
        rc = sk__fetch_digest_check(f, &sink);
    sk__fetch_digest_free(&sink);
    sk__fetch_decode_free(&sink);
    (void)sk__fetch_event(f, SK_FETCH_EV_BODY_END, NULL, 0, sink.done, sink.total);
    return rc;
}

/* The body into a fresh temporary file, renamed onto the target on success. */
static int save_to_file(struct sk_fetch *f, const struct sk__fetch_resp *rp)
{
    const char *path = f->o.output;
    struct sk_outfile of;
    int rc = sk__outdir_get(sk__fetch_outdir(f), path);
    if (rc >= 0)
        rc = sk__outfile_open_temp_at(&of, rc, path, sk__fetch_outfile_flags(f));
    if (rc < 0)
        return sk_fetch_set_error(f, SK_EWRITE, "cannot create a temporary file beside %s: %s",
                                  path, sk_strerror(rc));
    SK_WITH(w, &sk_outfile_with, &of);
    struct sk__fetch_sink sink = {.kind = SK__SINK_FILE, .of = &of};
    if ((w.err = sk__fetch_decode_begin(f, &sink, rp, 0)) != 0)
        return w.err;
    /* A body gathered into one write needs no reservation: a full disk
     * shows on that write as early. */
    if (rp->framing.kind == SK_HTTP_BODY_LENGTH && !sink.dec && /* coded: its size is unknown */
        rp->framing.length > SK__FETCH_GATHER_MIN &&
        (rc = sk_outfile_reserve(&of, rp->framing.length)) < 0)
        return w.err = sk_fetch_set_error(f, SK_EWRITE, "no room for %llu bytes beside %s: %s",
                                          (unsigned long long)rp->framing.length, path,
                                          sk_strerror(rc));
    w.err = body_begin(f, &sink, rp, 0);
    if (w.err == 0)
        w.err = sk__fetch_digest_begin(f, &sink, -1, 0);
    if (w.err == 0)
        w.err = sk__fetch_body(f, &rp->framing, &sink);
    if (w.err == 0)
        w.err = sk__fetch_decode_end(f, &sink); /* a coded body reached its end */
    if (w.err == 0)
        w.err = sk__fetch_digest_check(f, &sink); /* verified before the rename */
    sk__fetch_digest_free(&sink);
    sk__fetch_decode_free(&sink);
    (void)sk__fetch_event(f, SK_FETCH_EV_BODY_END, NULL, 0, sink.done, sink.total);
    int failed = w.err;
    rc = sk_with_exit(&w); /* commit (rename) or roll back (unlink) */
    if (failed)
        return failed; /* the reason is recorded */
    if (rc == SK_ERR(EEXIST))
        return sk_fetch_set_error(f, SK_EWRITE, "%s appeared during the download; not replaced",
                                  path);
    if (rc < 0)
        return sk_fetch_set_error(f, SK_EWRITE, "cannot save %s: %s", f->o.output, sk_strerror(rc));
    return rc;
}

static int truncate_part(struct sk_fetch *f, struct sk_outfile *of)
{
    int rc = sk_outfile_truncate(of);
    return rc < 0 ? sk_fetch_set_error(f, SK_EWRITE, "cannot truncate %s: %s", of->tmp,
                                       sk_strerror(rc))
                  : 0;
}

/* The reply cannot continue the part: empty it, and let the retry loop ask
 * once more from zero. */
static int restart_part(struct sk_fetch *f, struct sk_outfile *of, const char *why)
{
    f->rs.offset = 0;
    int rc = truncate_part(f, of);
    if (rc < 0)
        return rc;
    f->restart = true;
    return sk_fetch_set_error(f, SK_EPROTO, "%s %s", why, of->tmp);
}

/* RESUME (-C): the body continues or replaces FILE.part (opened by the caller). */
static int save_to_part(struct sk_fetch *f, const struct sk__fetch_resp *rp,
                        struct sk_outfile *of)
{
    struct sk__fetch_resume *rs = &f->rs;
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
        if (!continues)
            return restart_part(f, of, "the 206 reply does not continue");
    } else if (of->size > 0) { /* a full reply: start over */
        int rc = truncate_part(f, of);
        if (rc < 0)
            return rc;
    }
    struct sk__fetch_sink sink = {.kind = SK__SINK_FILE, .of = of};
    /* Over max_filesize (not coded: no COMPRESSED here): the part is not
     * kept, a rerun would only fail again. */
    int rc = sk__fetch_decode_begin(f, &sink, rp, of->size);
    if (rc == SK_ETOOBIG)
        of->keep_on_error = false;
    if (rc == 0)
        rc = sk__fetch_resume_save(f, rp, of);
    if (rc != 0)
        return rc;
    if (rp->framing.kind == SK_HTTP_BODY_LENGTH &&
        (rc = sk_outfile_reserve(of, of->size + rp->framing.length)) < 0)
        return sk_fetch_set_error(f, SK_EWRITE, "no room for %llu more bytes in %s: %s",
                                  (unsigned long long)rp->framing.length, of->tmp, sk_strerror(rc));
    rc = body_begin(f, &sink, rp, of->size);
    if (rc == 0)
        rc = sk__fetch_digest_begin(f, &sink, of->fd, of->size);
    if (rc == 0)
        rc = sk__fetch_body(f, &rp->framing, &sink);
    if (rc == SK_ETOOBIG)
        of->keep_on_error = false;
    (void)sk__fetch_event(f, SK_FETCH_EV_BODY_END, NULL, 0, sink.done, sink.total);
    if (rc == 0 && rp->status == 206 && of->size - start != span) {
        /* A chunked or close-delimited 206 body must be the range it claims. */
        if (of->size - start > span)
            of->keep_on_error = false; /* bytes beyond the range: the part is spoiled */
        rc = sk_fetch_set_error(f, of->size - start > span ? SK_EPROTO : SK_ETRUNCATED,
                                "the 206 body holds %llu bytes, its Content-Range %llu",
                                (unsigned long long)(of->size - start), (unsigned long long)span);
    }
    if (rc == 0 && rs->total && of->size != rs->total)
        rc = sk_fetch_set_error(f, SK_ETRUNCATED, "%s holds %llu bytes, expected %llu", of->tmp,
                                (unsigned long long)of->size, (unsigned long long)rs->total);
    if (rc == 0 && (rc = sk__fetch_digest_check(f, &sink)) != 0)
        of->keep_on_error = false; /* the whole part is suspect: never resume from it */
    sk__fetch_digest_free(&sink);
    return rc;
}

/* -C, a 416 "bytes * / SIZE": the part is the whole file, if SIZE is the
 * size on record, and it is committed only after --sha256 checked it. */
static int finish_complete_part(struct sk_fetch *f, struct sk_outfile *part)
{
    struct sk__fetch_sink sink = {.kind = SK__SINK_DISCARD};
    int rc = sk__fetch_digest_begin(f, &sink, part->fd, part->size);
    if (rc == 0 && (rc = sk__fetch_digest_check(f, &sink)) != 0)
        part->keep_on_error = false; /* never resume from it */
    sk__fetch_digest_free(&sink);
    f->complete = rc == 0;
    return rc;
}

/* The final response: refuse a non-2xx body, else save it. */
static int finish(struct sk_fetch *f, const struct sk__fetch_resp *rp, const char *reason,
                  struct sk_outfile *part)
{
    unsigned flags = f->o.flags;
    bool success = rp->status >= 200 && rp->status <= 299;
    if (part && rp->status == 416 && f->rs.offset > 0 && rp->range_unsatisfied && f->rs.total &&
        rp->range_total == f->rs.total && part->size == f->rs.total)
        return finish_complete_part(f, part);
    if (part && rp->status == 416 && f->rs.offset > 0)
        return restart_part(f, part, "416 for the partial file");
    if (!success && !(flags & SK_FETCH_NO_FAIL)) {
        (void)sk__fetch_discard(f, &rp->framing); /* the connection may serve the next URL */
        return sk_fetch_set_error(f, SK_EHTTP, "HTTP %d%s%s (body not saved)", rp->status,
                                  *reason ? " " : "", reason);
    }
    if (flags & SK_FETCH_HEAD) {
        (void)sk__fetch_drain(f, &rp->framing); /* none: the connection may serve again */
        return 0;
    }
    if (rp->status == 206 && !f->sent_range) /* a part would pass for the whole */
        return sk_fetch_set_error(f, SK_EPROTO,
                                  "206 Partial Content to a request without Range "
                                  "(body not saved)");
    if (!f->o.output)
        return save_to_call(f, rp);
    if (part)
        return save_to_part(f, rp, part);
    return save_to_file(f, rp);
}

/* A redirect's target: resolved, supported, not a downgrade. */
static int next_hop(struct sk_fetch *f, const struct sk_url *cur, const struct sk__fetch_resp *rp,
                    long redirs, struct sk_url *next)
{
    if (!rp->has_location)
        return sk_fetch_set_error(f, SK_EPROTO, "redirect (%d) without a Location header",
                                  rp->status);
    if (redirs >= f->o.max_redirs)
        return sk_fetch_set_error(f, SK_EPROTO,
                                  "too many redirects (limit %ld); last Location: %.200s",
                                  f->o.max_redirs, rp->location);
    int rc = sk_url_resolve(cur, rp->location, strlen(rp->location), next);
    if (rc == SK_EUNSUPPORTED)
        return sk_fetch_set_error(f, SK_EPROTO, "redirect to an unsupported scheme: %.200s",
                                  rp->location);
    if (rc < 0)
        return sk_fetch_set_error(f, SK_EPROTO, "redirect to an invalid URL: %.200s", rp->location);
    if (cur->scheme == SK_URL_HTTPS && next->scheme == SK_URL_HTTP &&
        !(f->o.flags & SK_FETCH_ALLOW_DOWNGRADE))
    {
        sk_fetch_set_error(f, SK_EPROTO, "refusing redirect from https to http: %.200s",
                           rp->location);
        f->cause = SK_FETCH_CAUSE_DOWNGRADE;
        return SK_EPROTO;
    }
    return 0;
}

/* One hop of the chain on the open exchange: its head, then the final
 * body, or the next URL (*redirect). */
static int hop(struct sk_fetch *f, struct sk_outfile *part, long redirs, bool *redirect)
{
    const struct sk_http_resp *r = &f->w.resp;
    int rc = sk__fetch_event(f, SK_FETCH_EV_HEAD, f->buf, f->w.head_len, 0, 0);
    if (rc < 0)
        return f->msg[0] ? rc : sk_fetch_fail_as(f, rc, "writing the response head");
    char reason[128];
    snprintf(reason, sizeof reason, "%.*s",
             (int)(r->reason_len < sizeof reason ? r->reason_len : sizeof reason - 1), r->reason);
    struct sk__fetch_resp rp;
    if ((rc = extract(f, r, f->o.flags & SK_FETCH_HEAD, &rp)) != 0)
        return rc;
    f->last_status = rp.status;
    f->retry_after_ms = rp.retry_after_ms;
    if ((rc = sk__fetch_proxy_check(f, rp.status)) != 0)
        return rc;
    *redirect = is_redirect(rp.status) && f->o.max_redirs > 0;
    if (!*redirect)
        return finish(f, &rp, reason, part);
    rc = next_hop(f, &f->cur, &rp, redirs, &f->next);
    if (rc == 0) /* a small body that came with the head: the connection may serve again */
        (void)sk__fetch_drain(f, &rp.framing);
    return rc;
}

/* The redirect chain, one exchange per URL. */
static int run(struct sk_fetch *f, struct sk_outfile *part)
{
    struct sk_url *cur = &f->cur, *next = &f->next; /* 8 KiB each: off the stack */
    *cur = f->start;
    bool cross = false;
    for (long redirs = 0;; redirs++) {
        bool redirect = false;
        f->redirects = redirs;
        sk_url_format(cur, f->url_effective, sizeof f->url_effective);
        int rc = sk__fetch_open(f, cur, cross);
        if (rc == 0)
            rc = hop(f, part, redirs, &redirect);
        if (rc == 0 || rc == SK_EHTTP) /* kept for the next request when the response allows it */
            sk__fetch_done(f);
        else if (!sk__fetch_h2_park(f)) /* others' streams on it go on */
            sk__fetch_close(f, false);
        if (rc != 0 || !redirect)
            return rc;
        cross = cross || !sk_url_same_origin(cur, next);
        *cur = *next;
    }
}

int sk__fetch_attempt(struct sk_fetch *f)
{
    f->msg[0] = '\0';
    f->restart = false;
    f->last_status = 0;
    f->retry_after_ms = -1;
    f->cause = SK_FETCH_CAUSE_NONE;
    if (!f->rs.active)
        return run(f, NULL);
    struct sk_outfile part;
    int rc = sk__fetch_resume_open(f, &part);
    if (rc != 0)
        return rc;
    SK_WITH(w, &sk_outfile_with, &part);
    int failed = w.err = run(f, &part);
    rc = sk_with_exit(&w); /* commit FILE.part onto FILE, or keep it for later */
    sk__fetch_resume_finish(f, &part, rc == 0);
    if (failed)
        return failed; /* the reason is recorded */
    if (rc < 0)
        return sk_fetch_set_error(f, SK_EWRITE, "cannot save %s: %s", f->o.output, sk_strerror(rc));
    return rc;
}
