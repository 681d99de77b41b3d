/* sockit fetch: the saved file's name when it comes from the server:
 * -J / --content-disposition (the final response's Content-Disposition)
 * and --trust-server-names (the final URL's last segment). The name is
 * known only when the final head arrives: it is chosen and checked then,
 * before the library creates the temporary file beside it (it reads the
 * output's name, fc->out_path, when the body begins). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "fetch.h"
#include "fetch_cdisp.h"
#include "i18n.h"

int fetch_name_join(const struct fetch_cli *fc, const char *base, char *name)
{
    if ((size_t)snprintf(name, PATH_MAX, "%s%s%s", fc->out_dir ? fc->out_dir : "",
                         fc->out_dir ? "/" : "", base) >= PATH_MAX)
        return SK_ERR(ENAMETOOLONG);
    return 0;
}

/* The head's status (HTTP/1.x or "HTTP/2 NNN"), or 0. */
static int head_status(const char *p, size_t n)
{
    const char *sp = memchr(p, ' ', n);
    if (!sp || (size_t)(sp - p) + 4 > n)
        return 0;
    int st = 0;
    for (int i = 1; i <= 3; i++) {
        if (sp[i] < '0' || sp[i] > '9')
            return 0;
        st = st * 10 + (sp[i] - '0');
    }
    return st;
}

/* The value of the head's first Content-Disposition field: 1 with *v, *vn; else 0. */
static int find_cd(const char *p, size_t n, const char **v, size_t *vn)
{
    static const char field[] = "content-disposition:";
    const char *end = p + n;
    const char *line = memchr(p, '\n', n); /* past the status line */
    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        size_t len = (size_t)((eol ? eol : end) - line);
        if (len >= sizeof field - 1 && strncasecmp(line, field, sizeof field - 1) == 0) {
            const char *s = line + sizeof field - 1, *e = line + len;
            while (s < e && (*s == ' ' || *s == '\t'))
                s++;
            while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *v = s;
            *vn = (size_t)(e - s);
            return 1;
        }
        line = eol;
    }
    return 0;
}

/* The final URL's last segment into base (256 bytes), unless unusable. A
 * hidden name (".profile": the server chose it) is refused as -J's is. */
static void trusted_base(struct fetch_cli *fc, char *base)
{
    const char *eff = sk_fetch_url_effective(fc->f);
    struct sk_url u;
    char b[256];
    if (!eff || sk_url_parse(eff, strlen(eff), &u) != 0 || sk_url_basename(&u, b, sizeof b) < 0)
        return;
    if (b[0] != '.')
        memcpy(base, b, sizeof b);
    else if (!fc->silent)
        fetch_notice(fc, _("%s: the final URL's file name %s refused (a hidden name); saving as "
                           "%s"),
                     fc->shown, b, base);
}

int fetch_name_head(struct fetch_cli *fc, const struct sk_fetch_event *ev)
{
    if (!fc->name_buf)
        return 0;
    int status = head_status(ev->data, ev->len);
    if (status < 200)
        return 0; /* interim */
    if (fc->o.max_redirs > 0 &&
        (status == 301 || status == 302 || status == 303 || status == 307 || status == 308))
        return 0; /* a hop: its Content-Disposition counts for nothing */
    if (status > 299 && !(fc->o.flags & SK_FETCH_NO_FAIL))
        return 0; /* not saved */
    char base[256];
    memcpy(base, fc->url_base, sizeof base);
    if (fc->trust_names)
        trusted_base(fc, base);
    const char *v;
    size_t vn;
    if (fc->cd_name && find_cd(ev->data, ev->len, &v, &vn)) {
        char cd[FETCH_CD_NAME_MAX + 1];
        const char *why = NULL;
        int r = fetch_cd_filename(v, vn, cd, &why);
        if (r > 0)
            memcpy(base, cd, sizeof cd);
        else if (r < 0 && !fc->silent)
            fetch_notice(fc, _("%s: Content-Disposition's file name refused (%s); saving as %s"),
                         fc->shown, _(why), base);
    }
    if (fetch_name_join(fc, base, fc->name_buf) < 0)
        return sk_fetch_set_error(fc->f, SK_EWRITE, "%s: %s (with the output folder)", base,
                                  strerror(ENAMETOOLONG)); /* the folder would fill the line */
    struct stat st;
    if (lstat(fc->name_buf, &st) == 0) /* nothing read of the body yet */
        return sk_fetch_set_error(fc->f, SK_EWRITE, "%s exists; not replacing it (use -o %s to "
                                  "replace it)", fc->name_buf, fc->name_buf);
    return 0;
}
