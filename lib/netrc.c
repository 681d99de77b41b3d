/* .netrc lookup (include/sockit/netrc.h): a tokenizer over the file's
 * text, bounded per token, and the entries' grammar on top of it. A
 * malformed file is an error naming its line, never a guess: its words
 * may be secrets, so the reasons quote none of them. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sockit.h"

struct scan {
    const char *p, *end;
    unsigned long line;
    unsigned long tok_line; /* where the last token began */
    const char *why;
    char tok[SK_NETRC_TOKEN_MAX];
};

static int fail(struct scan *s, int rc, const char *why)
{
    s->why = why;
    return rc;
}

/* Skips spaces, newlines and comments; false at the end of the text. */
static bool skip_space(struct scan *s)
{
    while (s->p < s->end) {
        char c = *s->p;
        if (c == '\n') {
            s->line++;
        } else if (c == '#') {
            while (s->p < s->end && *s->p != '\n')
                s->p++;
            continue;
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v') {
            return true;
        }
        s->p++;
    }
    return false;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* A quoted token, s->p past its opening quote. */
static int quoted(struct scan *s, size_t *n)
{
    for (; s->p < s->end; s->p++) {
        char c = *s->p;
        if (c == '"') {
            s->p++;
            return 0;
        }
        if (c == '\n')
            break;
        if (c == '\\') {
            if (++s->p == s->end || *s->p == '\n')
                break;
            c = (char)(*s->p == 'n' ? '\n' : *s->p == 'r' ? '\r' : *s->p == 't' ? '\t' : *s->p);
        }
        if (c == '\0')
            return fail(s, SK_EPARSE, "NUL byte");
        if (*n + 1 >= sizeof s->tok)
            return fail(s, SK_ETOOBIG, "token too long");
        s->tok[(*n)++] = c;
    }
    return fail(s, SK_EPARSE, "unterminated quoted token");
}

/* The next token into s->tok. Returns 1, 0 at the end, or an error. */
static int next_token(struct scan *s)
{
    if (!skip_space(s))
        return 0;
    s->tok_line = s->line;
    size_t n = 0;
    if (*s->p == '"') {
        s->p++;
        int rc = quoted(s, &n);
        if (rc < 0)
            return rc;
    } else {
        for (; s->p < s->end && !is_space(*s->p); s->p++) {
            if (*s->p == '\0')
                return fail(s, SK_EPARSE, "NUL byte");
            if (n + 1 >= sizeof s->tok)
                return fail(s, SK_ETOOBIG, "token too long");
            s->tok[n++] = *s->p;
        }
    }
    s->tok[n] = '\0';
    return 1;
}

/* The value after a keyword into dst (NULL: skipped). */
static int value(struct scan *s, const char *missing, char *dst)
{
    int rc = next_token(s);
    if (rc == 0)
        return fail(s, SK_EPARSE, missing);
    if (rc > 0 && dst)
        memcpy(dst, s->tok, sizeof s->tok);
    return rc < 0 ? rc : 0;
}

/* After "macdef NAME": the rest of the line and the macro's lines up to an
 * empty one (or the end). */
static void skip_macro(struct scan *s)
{
    bool line_start = false;
    while (s->p < s->end) {
        char c = *s->p++;
        if (c == '\n') {
            s->line++;
            if (line_start)
                return; /* an empty line ends it */
            line_start = true;
        } else if (!(c == '\r' && line_start && s->p < s->end && *s->p == '\n')) {
            line_start = false;
        }
    }
}

enum entry { OUTSIDE, OTHER, MATCH, DEFAULT };

/* One keyword at the start of s->tok. */
static int keyword(struct scan *s, const char *host, enum entry *in, struct sk_netrc_entry *cur)
{
    const char *t = s->tok;
    if (strcmp(t, "machine") == 0) {
        int rc = value(s, "'machine' without a name", NULL);
        if (rc < 0)
            return rc;
        *in = host && strcasecmp(s->tok, host) == 0 ? MATCH : OTHER;
        memset(cur, 0, sizeof *cur);
        return 0;
    }
    if (strcmp(t, "default") == 0) {
        *in = DEFAULT;
        memset(cur, 0, sizeof *cur);
        return 0;
    }
    if (strcmp(t, "macdef") == 0) {
        int rc = value(s, "'macdef' without a name", NULL);
        if (rc == 0)
            skip_macro(s);
        *in = rc == 0 ? OUTSIDE : *in;
        return rc;
    }
    bool login = strcmp(t, "login") == 0, password = strcmp(t, "password") == 0;
    if (!login && !password && strcmp(t, "account") != 0)
        return fail(s, SK_EPARSE,
                    "unknown word (expected machine, default, login, password, account or macdef)");
    if (*in == OUTSIDE)
        return fail(s, SK_EPARSE, "login, password or account outside a machine or default entry");
    int rc = value(s, login ? "'login' without a value" : "'password' or 'account' without a value",
                   login ? cur->login : password ? cur->password : NULL);
    cur->has_login |= login;
    cur->has_password |= password;
    return rc;
}

int sk_netrc_find(const char *text, size_t len, const char *host, struct sk_netrc_entry *out,
                  unsigned long *line, const char **why)
{
    if (!text || !out || !line || !why)
        return SK_EUSAGE;
    static const struct sk_netrc_entry none;
    struct scan s = {.p = text, .end = text + len, .line = 1};
    struct sk_netrc_entry cur = none, dflt = none;
    enum entry in = OUTSIDE;
    bool have_default = false;
    int rc;
    *out = none;
    while ((rc = next_token(&s)) == 1) {
        if (in == MATCH && (strcmp(s.tok, "machine") == 0 || strcmp(s.tok, "default") == 0 ||
                            strcmp(s.tok, "macdef") == 0))
            break; /* the entry is complete */
        if ((rc = keyword(&s, host, &in, &cur)) < 0)
            break;
        if (in == DEFAULT) { /* its fields so far; keyword() clears cur at the next entry */
            dflt = cur;
            have_default = true;
        }
    }
    if (rc < 0) {
        *line = s.tok_line ? s.tok_line : s.line;
        *why = s.why;
        return rc;
    }
    if (in == MATCH) {
        *out = cur;
        return 1;
    }
    if (have_default && host) {
        *out = dflt;
        return 1;
    }
    return 0;
}

int sk_netrc_read(const char *path, char *buf, size_t *len)
{
    if (!path || !buf || !len)
        return SK_EUSAGE;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return SK_ERR(errno);
    size_t n = 0;
    int rc = 0;
    for (;;) {
        char extra;
        ssize_t k = n < SK_NETRC_FILE_MAX ? read(fd, buf + n, SK_NETRC_FILE_MAX - n)
                                          : read(fd, &extra, 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = SK_ERR(errno);
            break;
        }
        if (k == 0)
            break;
        if (n == SK_NETRC_FILE_MAX) {
            rc = SK_ETOOBIG;
            break;
        }
        n += (size_t)k;
    }
    close(fd);
    *len = n;
    return rc;
}
