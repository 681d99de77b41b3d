/* .netrc files (the credentials of curl --netrc, ftp, wget): a lookup of
 * one host's login and password, bounded and strict.
 *
 * The format: tokens separated by spaces, tabs and newlines (an entry may
 * span lines); "machine NAME", "default", then "login NAME", "password
 * STR", "account STR" (skipped); "macdef NAME" and the lines after it up
 * to an empty line are skipped (a macro); a token starting with '#' makes
 * the rest of its line a comment. A token may be quoted as curl accepts:
 * "..." on one line, with \" \\ \n \r \t escapes. */
#ifndef SOCKIT_NETRC_H
#define SOCKIT_NETRC_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SK_NETRC_FILE_MAX (64 * 1024) /* bytes of a file */
#define SK_NETRC_TOKEN_MAX 256        /* bytes of a token with its NUL */

struct sk_netrc_entry {
    char login[SK_NETRC_TOKEN_MAX];    /* "" when the entry has none */
    char password[SK_NETRC_TOKEN_MAX]; /* "" when the entry has none */
    bool has_login, has_password;
};

/* Finds host's entry in text[0..len): the first "machine" whose name is
 * host (ASCII case-insensitive), else the "default" entry. The whole text
 * is read up to the match, so host NULL checks all of it. Returns 1 (out
 * filled), 0 (no entry), or SK_EPARSE (malformed) / SK_ETOOBIG (a token of
 * SK_NETRC_TOKEN_MAX bytes or more) with *line (from 1) and *why (a static
 * English phrase that quotes nothing of the file: it may hold secrets);
 * SK_EUSAGE for NULL arguments. */
int sk_netrc_find(const char *text, size_t len, const char *host, struct sk_netrc_entry *out,
                  unsigned long *line, const char **why);

/* Reads the file at path into buf (SK_NETRC_FILE_MAX bytes), *len its
 * size. Returns 0, SK_ETOOBIG (a larger file), SK_ERR(errno) (it cannot be
 * opened or read: SK_ERR(ENOENT) when it does not exist), SK_EUSAGE. */
int sk_netrc_read(const char *path, char *buf, size_t *len);

#ifdef __cplusplus
}
#endif

#endif
