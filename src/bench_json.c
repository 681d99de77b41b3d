/* A bounded JSON reader for bench's own output (see bench_json.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_json.h"

struct parser {
    const char *s;
    size_t len, pos;
    struct bj_tok *t;
    uint32_t n, cap;
    char *err;
    size_t errlen;
};

static int fail(struct parser *p, const char *why)
{
    if (p->pos >= p->len && strncmp(why, "expected", 8) == 0)
        why = "unexpected end"; /* a cut file: say so, not what was missing */
    snprintf(p->err, p->errlen, "%s at byte %zu", why, p->pos);
    return -1;
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static long new_tok(struct parser *p, enum bj_type type)
{
    if (p->n == p->cap) {
        if (p->cap == BJ_MAX_TOKENS)
            return fail(p, "too many values");
        uint32_t cap = p->cap ? p->cap * 2 : 256;
        if (cap > BJ_MAX_TOKENS)
            cap = BJ_MAX_TOKENS;
        struct bj_tok *t = realloc(p->t, (size_t)cap * sizeof *t);
        if (!t)
            return fail(p, "out of memory");
        p->t = t;
        p->cap = cap;
    }
    p->t[p->n] = (struct bj_tok){.type = type, .start = (uint32_t)p->pos};
    return p->n++;
}

static bool bj_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hexval(char c)
{
    if (bj_digit(c))
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_string(struct parser *p)
{
    long i = new_tok(p, BJ_STRING);
    if (i < 0)
        return -1;
    p->pos++; /* the opening quote */
    p->t[i].start = (uint32_t)p->pos;
    while (p->pos < p->len && p->s[p->pos] != '"') {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20)
            return fail(p, "control character in a string");
        if (c == '\\') {
            if (++p->pos >= p->len)
                break;
            char e = p->s[p->pos];
            if (e == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (p->pos + (size_t)k >= p->len || hexval(p->s[p->pos + (size_t)k]) < 0)
                        return fail(p, "bad \\u escape");
                p->pos += 4;
            } else if (!strchr("\"\\/bfnrt", e) || e == 0) {
                return fail(p, "bad escape");
            }
        }
        p->pos++;
    }
    if (p->pos >= p->len)
        return fail(p, "unterminated string");
    p->t[i].len = (uint32_t)(p->pos - p->t[i].start);
    p->pos++;
    p->t[i].next = p->n;
    return 0;
}

/* RFC 8259's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
/* A token cut by the end of the text: the failure is the cut. */
static int fail_at(struct parser *p, size_t q, const char *why)
{
    if (q >= p->len) {
        p->pos = p->len;
        why = "unexpected end";
    }
    return fail(p, why);
}

static int parse_number(struct parser *p)
{
    long i = new_tok(p, BJ_NUMBER);
    if (i < 0)
        return -1;
    size_t q = p->pos;
    if (q < p->len && p->s[q] == '-')
        q++;
    if (q < p->len && p->s[q] == '0')
        q++;
    else if (q < p->len && bj_digit(p->s[q]))
        while (q < p->len && bj_digit(p->s[q]))
            q++;
    else
        return fail_at(p, q, "bad number");
    if (q < p->len && p->s[q] == '.') {
        if (++q >= p->len || !bj_digit(p->s[q]))
            return fail_at(p, q, "bad number");
        while (q < p->len && bj_digit(p->s[q]))
            q++;
    }
    if (q < p->len && (p->s[q] == 'e' || p->s[q] == 'E')) {
        q++;
        if (q < p->len && (p->s[q] == '+' || p->s[q] == '-'))
            q++;
        if (q >= p->len || !bj_digit(p->s[q]))
            return fail_at(p, q, "bad number");
        while (q < p->len && bj_digit(p->s[q]))
            q++;
    }
    p->t[i].len = (uint32_t)(q - p->pos);
    p->pos = q;
    p->t[i].next = p->n;
    return 0;
}

static int parse_word(struct parser *p, const char *w, enum bj_type type)
{
    size_t n = strlen(w);
    size_t have = p->len - p->pos < n ? p->len - p->pos : n;
    if (memcmp(p->s + p->pos, w, have) != 0)
        return fail(p, "not JSON");
    if (have < n)
        return fail_at(p, p->len, "not JSON"); /* "tru" at the end */
    long i = new_tok(p, type);
    if (i < 0)
        return -1;
    p->t[i].len = (uint32_t)n;
    p->pos += n;
    p->t[i].next = p->n;
    return 0;
}

static int parse_value(struct parser *p, unsigned depth);

/* An object or an array: its members, then its .next. */
static int parse_container(struct parser *p, unsigned depth, bool object)
{
    if (depth >= BJ_MAX_DEPTH)
        return fail(p, "nested too deep");
    long i = new_tok(p, object ? BJ_OBJECT : BJ_ARRAY);
    if (i < 0)
        return -1;
    char close = object ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->t[i].next = p->n;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (object) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return fail(p, "expected a key");
            if (parse_string(p) < 0)
                return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, "expected ':'");
            p->pos++;
        }
        if (parse_value(p, depth + 1) < 0)
            return -1;
        p->t[i].count++;
        skip_ws(p);
        if (p->pos >= p->len)
            return fail(p, "unexpected end");
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++;
            p->t[i].len = (uint32_t)(p->pos - p->t[i].start);
            p->t[i].next = p->n;
            return 0;
        }
        return fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int parse_value(struct parser *p, unsigned depth)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "unexpected end");
    switch (p->s[p->pos]) {
    case '{': return parse_container(p, depth, true);
    case '[': return parse_container(p, depth, false);
    case '"': return parse_string(p);
    case 't': return parse_word(p, "true", BJ_TRUE);
    case 'f': return parse_word(p, "false", BJ_FALSE);
    case 'n': return parse_word(p, "null", BJ_NULL);
    default: return parse_number(p);
    }
}

int bj_parse(struct bj *j, const char *text, size_t len, char *err, size_t errlen)
{
    *j = (struct bj){.text = text};
    if (len > BJ_MAX_TEXT) {
        snprintf(err, errlen, "larger than %u bytes", BJ_MAX_TEXT);
        return -1;
    }
    struct parser p = {.s = text, .len = len, .err = err, .errlen = errlen};
    int rc = parse_value(&p, 0);
    if (rc == 0) {
        skip_ws(&p);
        if (p.pos != p.len)
            rc = fail(&p, "text after the value");
    }
    if (rc < 0) {
        free(p.t);
        return -1;
    }
    j->t = p.t;
    j->n = p.n;
    return 0;
}

void bj_free(struct bj *j)
{
    free(j->t);
    j->t = NULL;
    j->n = 0;
}

bool bj_str_eq(const struct bj *j, long tok, const char *s)
{
    size_t n = 0;
    char *v = bj_str(j, tok, &n);
    bool eq = v && n == strlen(s) && memcmp(v, s, n) == 0;
    free(v);
    return eq;
}

long bj_get(const struct bj *j, long obj, const char *key)
{
    if (obj < 0 || (uint32_t)obj >= j->n || j->t[obj].type != BJ_OBJECT)
        return -1;
    long k = obj + 1;
    for (uint32_t i = 0; i < j->t[obj].count; i++) {
        long v = k + 1;
        const struct bj_tok *kt = &j->t[k];
        /* Keys of bench's output have no escapes: compare the bytes. */
        if (kt->len == strlen(key) && memcmp(j->text + kt->start, key, kt->len) == 0)
            return v;
        k = j->t[v].next;
    }
    return -1;
}

static const struct bj_tok *tok_of(const struct bj *j, long tok, enum bj_type type)
{
    if (tok < 0 || (uint32_t)tok >= j->n || j->t[tok].type != type)
        return NULL;
    return &j->t[tok];
}

bool bj_u64(const struct bj *j, long tok, uint64_t *out)
{
    const struct bj_tok *t = tok_of(j, tok, BJ_NUMBER);
    if (!t)
        return false;
    uint64_t v = 0;
    for (uint32_t i = 0; i < t->len; i++) {
        char c = j->text[t->start + i];
        if (!bj_digit(c) || v > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
            return false; /* a sign, a fraction, an exponent, or too large */
        v = v * 10 + (uint64_t)(c - '0');
    }
    *out = v;
    return true;
}

bool bj_i64(const struct bj *j, long tok, int64_t *out)
{
    const struct bj_tok *t = tok_of(j, tok, BJ_NUMBER);
    if (!t)
        return false;
    bool neg = j->text[t->start] == '-';
    struct bj_tok abs = *t;
    abs.start += neg;
    abs.len -= neg;
    struct bj tmp = {.text = j->text, .t = &abs, .n = 1};
    uint64_t v;
    if (!bj_u64(&tmp, 0, &v) || v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

bool bj_real(const struct bj *j, long tok, double *out)
{
    const struct bj_tok *t = tok_of(j, tok, BJ_NUMBER);
    char buf[64];
    if (!t || t->len >= sizeof buf)
        return false;
    memcpy(buf, j->text + t->start, t->len);
    buf[t->len] = 0;
    errno = 0;
    double v = strtod(buf, NULL); /* the grammar was checked by the parser */
    if (errno == ERANGE)
        return false;
    *out = v;
    return true;
}

bool bj_bool(const struct bj *j, long tok, bool *out)
{
    if (tok < 0 || (uint32_t)tok >= j->n ||
        (j->t[tok].type != BJ_TRUE && j->t[tok].type != BJ_FALSE))
        return false;
    *out = j->t[tok].type == BJ_TRUE;
    return true;
}

bool bj_is_null(const struct bj *j, long tok)
{
    return tok_of(j, tok, BJ_NULL) != NULL;
}

char *bj_str(const struct bj *j, long tok, size_t *len)
{
    const struct bj_tok *t = tok_of(j, tok, BJ_STRING);
    if (!t)
        return NULL;
    char *out = malloc((size_t)t->len + 1);
    if (!out)
        return NULL;
    const char *s = j->text + t->start;
    size_t n = 0;
    for (uint32_t i = 0; i < t->len; i++) {
        if (s[i] != '\\') {
            out[n++] = s[i];
            continue;
        }
        char e = s[++i]; /* the parser saw a complete escape */
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        if (e != 'u') {
            out[n++] = to[strchr(from, e) - from];
            continue;
        }
        int v = 0;
        for (int k = 1; k <= 4; k++)
            v = v * 16 + hexval(s[i + (uint32_t)k]);
        i += 4;
        if (v > 0xff) {
            free(out); /* not a byte: bench never writes it */
            return NULL;
        }
        out[n++] = (char)v;
    }
    out[n] = 0;
    *len = n;
    return out;
}
