/* Unit tests: the .netrc lookup (sk_netrc_find, sk_netrc_read) and the
 * credentials of a URL (sk_url_take_userinfo). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockit.h"

static int find(const char *text, const char *host, struct sk_netrc_entry *e,
                unsigned long *line, const char **why)
{
    *line = 0;
    *why = NULL;
    return sk_netrc_find(text, strlen(text), host, e, line, why);
}

/* Finds host and checks login and password. */
static void expect(const char *text, const char *host, const char *login, const char *password)
{
    struct sk_netrc_entry e;
    unsigned long line;
    const char *why;
    cr_assert_eq(find(text, host, &e, &line, &why), 1, "%s in %s: %s", host, text,
                 why ? why : "");
    cr_assert_str_eq(e.login, login);
    cr_assert_str_eq(e.password, password);
}

/* Expects a failure rc at line, why containing words. */
static void malformed(const char *text, int rc, unsigned long at, const char *words)
{
    struct sk_netrc_entry e;
    unsigned long line;
    const char *why;
    cr_assert_eq(find(text, "h", &e, &line, &why), rc, "%s", text);
    cr_assert_eq(line, at, "%s: line %lu", text, line);
    cr_assert(why && strstr(why, words), "%s: %s", text, why ? why : "(null)");
    cr_assert_eq(find(text, NULL, &e, &line, &why), rc, "host NULL checks it all");
}

Test(netrc, one_line_entries_first_match_wins)
{
    const char *t = "machine a login ua password pa\n"
                    "machine b login ub password pb\n"
                    "machine a login other password other\n";
    expect(t, "a", "ua", "pa");
    expect(t, "b", "ub", "pb");
    expect(t, "A", "ua", "pa"); /* host names are case-insensitive */
    struct sk_netrc_entry e;
    unsigned long line;
    const char *why;
    cr_assert_eq(find(t, "c", &e, &line, &why), 0);
    cr_assert_eq(find(t, NULL, &e, &line, &why), 0, "well formed");
    cr_assert_eq(find("", "a", &e, &line, &why), 0);
    cr_assert_eq(find("  \n\n\t", "a", &e, &line, &why), 0);
}

Test(netrc, tokens_across_lines_and_any_order)
{
    expect("machine\n  a\nlogin\n\tu\n\n password\r\n p\r\n", "a", "u", "p");
    expect("machine a password p login u", "a", "u", "p");
    expect("machine a login u", "a", "u", "");
    struct sk_netrc_entry e;
    unsigned long line;
    const char *why;
    cr_assert_eq(find("machine a password p", "a", &e, &line, &why), 1);
    cr_assert(!e.has_login && e.has_password);
}

Test(netrc, default_only_when_no_machine_matches)
{
    const char *t = "machine a login ua password pa\ndefault login anon password guest\n";
    expect(t, "a", "ua", "pa");
    expect(t, "zzz", "anon", "guest");
    /* a machine after default still wins for its host */
    expect("default login d password d\nmachine a login ua password pa\n", "a", "ua", "pa");
    expect("default login d password d\nmachine a login ua password pa\n", "b", "d", "d");
}

Test(netrc, account_is_skipped)
{
    expect("machine a account acct login u password p", "a", "u", "p");
    expect("machine a login u account \"x y\" password p", "a", "u", "p");
}

Test(netrc, comments)
{
    expect("# my hosts\nmachine a # the first\n login u # me\n password p#x\n", "a", "u", "p#x");
    expect("#machine a login no password no\nmachine a login u password p", "a", "u", "p");
}

Test(netrc, macdef_skipped_up_to_an_empty_line)
{
    const char *t = "macdef init\ncd /pub\nmachine a login evil password evil\nbin\n\n"
                    "machine a login u password p\n";
    expect(t, "a", "u", "p");
    /* an empty line with CRLF ends it too; a line of spaces does not */
    expect("macdef m\r\nx\r\n\r\nmachine a login u password p", "a", "u", "p");
    struct sk_netrc_entry e;
    unsigned long line;
    const char *why;
    cr_assert_eq(find("macdef m\nx\n   \nmachine a login u password p", "a", &e, &line, &why), 0);
    /* a macro up to the end of the file */
    cr_assert_eq(find("macdef m\nmachine a login u", "a", &e, &line, &why), 0);
    /* a macdef ends the entry before it */
    expect("machine a login u password p macdef m\nlogin x\n\n", "a", "u", "p");
    /* and the lines counted through it */
    malformed("macdef m\nx\ny\n\nbogus", SK_EPARSE, 5, "unknown word");
}

Test(netrc, quoted_tokens_as_curl)
{
    expect("machine a login \"my user\" password \"p w\\\"q\\\\\"", "a", "my user", "p w\"q\\");
    expect("machine a login u password \"a\\tb\\nc\\rd\\x\"", "a", "u", "a\tb\nc\rdx");
    expect("machine \"a\" login \"\" password \"\"", "a", "", "");
    /* a quote inside an unquoted token is a byte of it */
    expect("machine a login u password p\"q", "a", "u", "p\"q");
}

Test(netrc, malformed_names_the_line)
{
    malformed("machine a login u password \"open\n", SK_EPARSE, 1, "unterminated");
    malformed("\n\nmachine a password \"ends in escape\\", SK_EPARSE, 3, "unterminated");
    malformed("machine a login \"a\\\nb\"", SK_EPARSE, 1, "unterminated");
    malformed("machine a\nlogin", SK_EPARSE, 2, "'login' without a value");
    malformed("machine a login u\npassword\n\n", SK_EPARSE, 2, "without a value");
    malformed("machine", SK_EPARSE, 1, "'machine' without a name");
    malformed("macdef", SK_EPARSE, 1, "'macdef' without a name");
    malformed("login u password p\nmachine h", SK_EPARSE, 1, "outside");
    malformed("machine a\n\n user u", SK_EPARSE, 3, "unknown word");
    /* the reason quotes nothing of the file */
    struct sk_netrc_entry e;
    unsigned long line;
    const char *why;
    cr_assert_eq(find("machine h login u password my secret", "h", &e, &line, &why), SK_EPARSE);
    cr_assert_null(strstr(why, "secret"));
}

Test(netrc, a_match_stops_before_later_errors_but_null_host_sees_them)
{
    const char *t = "machine a login u password p\nmachine b bogus\n";
    expect(t, "a", "u", "p");
    struct sk_netrc_entry e;
    unsigned long line;
    const char *why;
    cr_assert_eq(find(t, NULL, &e, &line, &why), SK_EPARSE);
    cr_assert_eq(line, 2);
}

Test(netrc, nul_byte_is_refused)
{
    static const char t[] = "machine a login u\0x password p";
    struct sk_netrc_entry e;
    unsigned long line;
    const char *why;
    cr_assert_eq(sk_netrc_find(t, sizeof t - 1, "a", &e, &line, &why), SK_EPARSE);
    cr_assert(strstr(why, "NUL"));
    static const char q[] = "machine a login \"u\0\"";
    cr_assert_eq(sk_netrc_find(q, sizeof q - 1, "a", &e, &line, &why), SK_EPARSE);
}

Test(netrc, token_bounds_at_the_edge)
{
    char t[2 * SK_NETRC_TOKEN_MAX + 64], tok[SK_NETRC_TOKEN_MAX + 1];
    memset(tok, 'x', SK_NETRC_TOKEN_MAX - 1);
    tok[SK_NETRC_TOKEN_MAX - 1] = '\0'; /* 255 bytes: the longest */
    snprintf(t, sizeof t, "machine a login u password %s", tok);
    expect(t, "a", "u", tok);
    snprintf(t, sizeof t, "machine a login u password \"%s\"", tok);
    expect(t, "a", "u", tok);
    tok[SK_NETRC_TOKEN_MAX - 1] = 'x';
    tok[SK_NETRC_TOKEN_MAX] = '\0'; /* 256 bytes */
    snprintf(t, sizeof t, "machine a\nlogin %s", tok);
    malformed(t, SK_ETOOBIG, 2, "too long");
    snprintf(t, sizeof t, "machine a\nlogin \"%s\"", tok);
    malformed(t, SK_ETOOBIG, 2, "too long");
}

Test(netrc, usage)
{
    struct sk_netrc_entry e;
    unsigned long line;
    const char *why;
    cr_assert_eq(sk_netrc_find(NULL, 0, "a", &e, &line, &why), SK_EUSAGE);
    cr_assert_eq(sk_netrc_find("", 0, "a", NULL, &line, &why), SK_EUSAGE);
    size_t n;
    char buf[8];
    cr_assert_eq(sk_netrc_read(NULL, buf, &n), SK_EUSAGE);
}

Test(netrc, read_bounds_the_file)
{
    char path[] = "/tmp/sockit-netrc-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    char *big = malloc(SK_NETRC_FILE_MAX + 1);
    char *buf = malloc(SK_NETRC_FILE_MAX);
    cr_assert(big && buf);
    memset(big, ' ', SK_NETRC_FILE_MAX + 1);
    cr_assert_eq(write(fd, big, SK_NETRC_FILE_MAX), SK_NETRC_FILE_MAX);
    size_t n = 0;
    cr_assert_eq(sk_netrc_read(path, buf, &n), 0, "exactly the limit");
    cr_assert_eq(n, SK_NETRC_FILE_MAX);
    cr_assert_eq(write(fd, big, 1), 1);
    cr_assert_eq(sk_netrc_read(path, buf, &n), SK_ETOOBIG, "one byte more");
    close(fd);
    unlink(path);
    cr_assert_eq(sk_netrc_read(path, buf, &n), SK_ERR(ENOENT));
    free(big);
    free(buf);
}

/* ---- sk_url_take_userinfo ---- */

/* sk_url_take_userinfo(url) returns rc with rest, user and password so. */
static void split(const char *url, int rc, const char *rest, const char *user,
                  const char *password)
{
    char r[256], u[64], p[64];
    cr_assert_eq(sk_url_take_userinfo(url, r, sizeof r, u, sizeof u, p, sizeof p), rc, "%s", url);
    if (rc >= 0)
        cr_assert_str_eq(r, rest, "%s", url);
    cr_assert_str_eq(u, user, "%s", url);
    cr_assert_str_eq(p, password, "%s", url);
}

Test(url_userinfo, none_leaves_the_url)
{
    split("http://h/a@b?c=d@e", 0, "http://h/a@b?c=d@e", "", ""); /* '@' after the host */
    split("no scheme@x", 0, "no scheme@x", "", "");
}

Test(url_userinfo, user_and_password_decoded)
{
    split("http://us%40er:p%3Ass@h:8080/x", 2, "http://h:8080/x", "us@er", "p:ss");
    split("https://u:p@ss:w@h", 2, "https://h", "u", "p@ss:w"); /* the last '@' ends it */
    split("http://u:@h/", 2, "http://h/", "u", "");
    split("http://u@[::1]:81/", 1, "http://[::1]:81/", "u", "");
    split("http://@h/", 1, "http://h/", "", "");
}

Test(url_userinfo, malformed_leaves_nothing_behind)
{
    split("http://u:%zz@h/", SK_EPARSE, NULL, "", "");
    split("http://u:%4@h/", SK_EPARSE, NULL, "", "");
    split("http://u:%@h/", SK_EPARSE, NULL, "", "");
    split("http://u:%0a@h/", SK_EPARSE, NULL, "", ""); /* a control byte */
    split("http://u:%00@h/", SK_EPARSE, NULL, "", "");
    split("http://u%3ax:p@h/", SK_EPARSE, NULL, "", ""); /* ':' in the user */
    char b[1];
    cr_assert_eq(sk_url_take_userinfo(NULL, b, 1, b, 1, b, 1), SK_EUSAGE);
}

Test(url_userinfo, bounds_at_the_edge)
{
    char rest[16], user[4], password[4];
    cr_assert_eq(sk_url_take_userinfo("http://abc:def@h", rest, sizeof rest, user, sizeof user,
                                      password, sizeof password),
                 2);
    cr_assert_eq(sk_url_take_userinfo("http://abcd:d@h", rest, sizeof rest, user, sizeof user,
                                      password, sizeof password),
                 SK_ETOOBIG);
    cr_assert_eq(sk_url_take_userinfo("http://a:%41%41%41%41@h", rest, sizeof rest, user,
                                      sizeof user, password, sizeof password),
                 SK_ETOOBIG);
    cr_assert_eq(sk_url_take_userinfo("http://h/123456789", rest, sizeof rest, user, sizeof user,
                                      password, sizeof password),
                 SK_ETOOBIG, "18 bytes in 16");
    cr_assert_eq(sk_url_take_userinfo("http://h/123456", rest, sizeof rest, user, sizeof user,
                                      password, sizeof password),
                 0, "15 bytes and the NUL");
    cr_assert_eq(sk_url_take_userinfo("http://u:p@h/123456", rest, sizeof rest, user,
                                      sizeof user, password, sizeof password),
                 2, "the rest is 15 bytes once the credentials are out");
}
