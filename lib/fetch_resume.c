/* The HTTP client's resume (SK_FETCH_RESUME, fetch -C): resume that can never corrupt the file.
 *
 * An interrupted download is kept only as FILE.part, beside FILE.part.meta
 * which records the URL, the validator (a strong ETag, else Last-Modified)
 * of the data in the part and the whole file's size when it was announced.
 * A rerun sends
 *     Range: bytes=SIZE-      If-Range: VALIDATOR
 * and appends only to a 206 that carries the same validator and whose
 * Content-Range starts at SIZE, runs to the end and agrees with the size
 * on record; a 200 (the resource changed, or no range support) restarts
 * the part from zero; any other 206 or a 416 restarts with a plain request;
 * a 416 "bytes * / SIZE" means the part is complete only if SIZE is the
 * size on record. FILE itself is only ever written by the final rename.
 *
 * The meta file is written as any output file is (a fresh O_EXCL file,
 * renamed into place) and read only if it is ours: a regular file with one
 * link, owned by us. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch_int.h"

#define META_MAGIC "sockit-resume 2\n"

static int read_meta(const char *path, char *url, size_t ulen, char *val, size_t vlen,
                     uint64_t *total)
{
    char buf[SK_URL_TARGET_MAX + SK_HOST_MAX + 1024];
    SK_AUTO_CLOSE int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        st.st_uid != geteuid())
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    size_t m = strlen(META_MAGIC);
    if (strncmp(buf, META_MAGIC, m) != 0 || strncmp(buf + m, "url ", 4) != 0)
        return -1;
    char *u = buf + m + 4, *nl = strchr(u, '\n');
    if (!nl || strncmp(nl + 1, "validator ", 10) != 0)
        return -1;
    *nl = '\0';
    char *v = nl + 11, *vnl = strchr(v, '\n');
    if (!vnl || strncmp(vnl + 1, "size ", 5) != 0)
        return -1;
    *vnl = '\0';
    char *sz = vnl + 6, *snl = strchr(sz, '\n');
    if (!snl || snl[1] != '\0')
        return -1;
    *total = 0;
    if (strcmp(sz, "*\n") != 0 && sk_http_parse_u64(sz, (size_t)(snl - sz), total) < 0)
        return -1;
    if (snprintf(url, ulen, "%s", u) >= (int)ulen || snprintf(val, vlen, "%s", v) >= (int)vlen)
        return -1;
    return 0;
}

int sk__fetch_resume_plan(struct sk_fetch *f)
{
    struct sk__fetch_resume *rs = &f->rs;
    memset(rs, 0, sizeof *rs);
    if (!(f->o.flags & SK_FETCH_RESUME))
        return 0;
    if (!f->o.output || (f->o.flags & SK_FETCH_HEAD))
        return sk_fetch_set_error(f, SK_EUSAGE, "resuming needs a file to save to");
    rs->active = true;
    if (snprintf(rs->part, sizeof rs->part, "%s.part", f->o.output) >= (int)sizeof rs->part ||
        snprintf(rs->meta, sizeof rs->meta, "%s.part.meta", f->o.output) >= (int)sizeof rs->meta)
        return sk_fetch_set_error(f, SK_EUSAGE, "output name too long");
    const char *slash = strrchr(rs->meta, '/');
    if (strlen(slash ? slash + 1 : rs->meta) > NAME_MAX)
        return sk_fetch_set_error(f, SK_EUSAGE,
                                  "-C: the file name must leave room for '.part.meta' "
                                  "(at most %d bytes)",
                                  NAME_MAX - 10);
    return 0;
}

int sk__fetch_resume_open(struct sk_fetch *f, struct sk_outfile *of)
{
    struct sk__fetch_resume *rs = &f->rs;
    int rc = sk_outfile_open_part(of, f->o.output, rs->part, sk__fetch_outfile_flags(f));
    if (rc == SK_EBUSY)
        return sk_fetch_set_error(f, SK_EWRITE, "%s is in use by another download", rs->part);
    if (rc == SK_ERR(ELOOP) || rc == SK_ERR(EPERM) || rc == SK_ERR(EINVAL))
        return sk_fetch_set_error(f, SK_EWRITE,
                                  "refusing %s: a link, not a regular file, or not "
                                  "created by this user",
                                  rs->part);
    if (rc < 0)
        return sk_fetch_set_error(f, SK_EWRITE, "cannot open %s: %s", rs->part, sk_strerror(rc));
    char url[sizeof f->url_text];
    rs->offset = 0;
    rs->validator[0] = '\0';
    if (of->size > 0 &&
        read_meta(rs->meta, url, sizeof url, rs->validator, sizeof rs->validator, &rs->total) ==
            0 &&
        strcmp(url, f->url_text) == 0 && rs->validator[0] &&
        (rs->total == 0 || of->size <= rs->total)) {
        rs->offset = of->size;
        of->keep_on_error = true;
    } else {
        rs->validator[0] = '\0';
        rs->total = 0;
    }
    return 0;
}

/* Writes the meta file as an atomic output file: never through a link. */
static int write_meta(const struct sk_fetch *f, const char *validator, uint64_t total)
{
    char text[sizeof f->url_text + sizeof f->rs.validator + 64], size[24] = "*";
    if (total)
        snprintf(size, sizeof size, "%llu", (unsigned long long)total);
    int n = snprintf(text, sizeof text, META_MAGIC "url %s\nvalidator %s\nsize %s\n", f->url_text,
                     validator, size);
    struct sk_outfile mf;
    int rc = sk_outfile_open_temp(&mf, f->rs.meta, 0);
    if (rc < 0)
        return rc;
    SK_WITH(w, &sk_outfile_with, &mf);
    if ((rc = sk_outfile_write(&mf, text, (size_t)n)) < 0)
        return rc; /* discarded */
    return sk_with_exit(&w);
}

int sk__fetch_resume_save(struct sk_fetch *f, const struct sk__fetch_resp *rp,
                          struct sk_outfile *of)
{
    struct sk__fetch_resume *rs = &f->rs;
    const char *v = rp->validator[0] ? rp->validator : rp->status == 206 ? rs->validator : "";
    if (!*v || strchr(v, '\n')) {
        /* Nothing to check a later resume against: a partial file would be
         * useless, so it is not kept. */
        unlink(rs->meta);
        of->keep_on_error = false;
        return 0;
    }
    uint64_t total = rp->status == 206 ? (rp->range_total ? rp->range_total : rs->total)
                     : rp->framing.kind == SK_HTTP_BODY_LENGTH ? rp->framing.length
                                                               : 0;
    int rc = write_meta(f, v, total);
    if (rc < 0)
        return sk_fetch_set_error(f, SK_EWRITE, "cannot write %s: %s", rs->meta, sk_strerror(rc));
    if (v != rs->validator)
        snprintf(rs->validator, sizeof rs->validator, "%s", v);
    rs->total = total;
    of->keep_on_error = true;
    return 0;
}

void sk__fetch_resume_finish(struct sk_fetch *f, const struct sk_outfile *part, bool committed)
{
    if (committed || !part->keep_on_error || part->size == 0)
        unlink(f->rs.meta);
}

/* Content-Range = "bytes" SP ( first "-" last "/" ( complete-length / "*" )
 *                            / "*" "/" complete-length )       (RFC 9110 14.4) */
int sk__fetch_parse_content_range(const char *v, size_t n, struct sk__fetch_resp *rp)
{
    char s[128];
    if (n >= sizeof s || n < 6 || strncasecmp(v, "bytes ", 6) != 0)
        return -1;
    memcpy(s, v + 6, n - 6);
    s[n - 6] = '\0';
    char *slash = strchr(s, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    const char *total = slash + 1;
    rp->has_range = true;
    rp->range_total = 0;
    if (strcmp(total, "*") != 0 &&
        (sk_http_parse_u64(total, strlen(total), &rp->range_total) < 0 || rp->range_total == 0))
        return -1;
    if (strcmp(s, "*") == 0) {
        rp->range_unsatisfied = true;
        return rp->range_total ? 0 : -1;
    }
    char *dash = strchr(s, '-');
    if (!dash)
        return -1;
    *dash = '\0';
    if (sk_http_parse_u64(s, strlen(s), &rp->range_start) < 0 ||
        sk_http_parse_u64(dash + 1, strlen(dash + 1), &rp->range_end) < 0 ||
        rp->range_end < rp->range_start || (rp->range_total && rp->range_end >= rp->range_total))
        return -1;
    return 0;
}
