/* A small, bounded JSON reader for `sockit bench merge`: it reads bench's
 * own --json output (RFC 8259 syntax, any order of keys), not JSON at
 * large. The text is split into a flat array of tokens, each with the
 * index of the token after its subtree, so lookups need no recursion.
 * Bounded: the text is at most BJ_MAX_TEXT bytes, at most BJ_MAX_TOKENS
 * tokens, nested at most BJ_MAX_DEPTH deep. */
#ifndef SOCKIT_BENCH_JSON_H
#define SOCKIT_BENCH_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BJ_MAX_TEXT (16u << 20)
#define BJ_MAX_TOKENS (1u << 20)
#define BJ_MAX_DEPTH 16

enum bj_type { BJ_OBJECT, BJ_ARRAY, BJ_STRING, BJ_NUMBER, BJ_TRUE, BJ_FALSE, BJ_NULL };

struct bj_tok {
    enum bj_type type;
    uint32_t start, len; /* the value's bytes (a string: inside the quotes) */
    uint32_t count;      /* object: pairs; array: elements */
    uint32_t next;       /* the token after this one's subtree */
};

struct bj {
    const char *text;
    struct bj_tok *t; /* owned */
    uint32_t n;
};

/* Parses text[0..len) (one value, whitespace around it). Returns 0, or -1
 * with a one-line reason in err (j is then empty and freeable). */
int bj_parse(struct bj *j, const char *text, size_t len, char *err, size_t errlen);
void bj_free(struct bj *j);

/* The value of key in the object at token obj, or -1 (no such key, or obj
 * is not an object). */
long bj_get(const struct bj *j, long obj, const char *key);
/* An array's (object's) first element (key) is the token after it; the
 * next one is at the element's .next (an object: key, value, key, ...). */

/* Conversions; false when tok is -1 or not of that kind. */
bool bj_u64(const struct bj *j, long tok, uint64_t *out);  /* digits only, no overflow */
bool bj_i64(const struct bj *j, long tok, int64_t *out);   /* -?digits */
bool bj_real(const struct bj *j, long tok, double *out);   /* any number */
bool bj_bool(const struct bj *j, long tok, bool *out);
bool bj_is_null(const struct bj *j, long tok);
/* A string's bytes, unescaped (\u0000..\u00ff are one byte each, as bench
 * writes them; other code points are refused), NUL-terminated, in a new
 * buffer (*len without the NUL). NULL when not such a string, or out of
 * memory. */
char *bj_str(const struct bj *j, long tok, size_t *len);
/* Is tok the string s (unescaped)? */
bool bj_str_eq(const struct bj *j, long tok, const char *s);

#endif
