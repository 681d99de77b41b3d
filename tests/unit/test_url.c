/* Unit tests: URL parsing, normalisation and reference resolution. */
#include <criterion/criterion.h>
#include <string.h>

#include "sockit.h"

static struct sk_url parse_ok(const char *s)
{
    struct sk_url u;
    int rc = sk_url_parse(s, strlen(s), &u);
    cr_assert_eq(rc, 0, "'%s' -> %d", s, rc);
    return u;
}

static int parse_rc(const char *s)
{
    struct sk_url u;
    return sk_url_parse(s, strlen(s), &u);
}

Test(url, basic_forms)
{
    struct sk_url u = parse_ok("http://example.com");
    cr_assert_eq(u.scheme, SK_URL_HTTP);
    cr_assert_str_eq(u.host, "example.com");
    cr_assert_eq(u.port, 80);
    cr_assert_str_eq(u.target, "/");
    u = parse_ok("HTTPS://Example.COM:8443/a/b?x=1&y=2#frag");
    cr_assert_eq(u.scheme, SK_URL_HTTPS);
    cr_assert_str_eq(u.host, "example.com");
    cr_assert_eq(u.port, 8443);
    cr_assert_str_eq(u.target, "/a/b?x=1&y=2");
    u = parse_ok("https://h/");
    cr_assert_eq(u.port, 443);
    u = parse_ok("http://h:/p");
    cr_assert_eq(u.port, 80);
    u = parse_ok("http://127.0.0.1:8080?q");
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_str_eq(u.target, "/?q");
}

Test(url, ipv6_literal)
{
    struct sk_url u = parse_ok("http://[::1]:8080/x");
    cr_assert(u.host_ipv6);
    cr_assert_str_eq(u.host, "::1");
    cr_assert_eq(u.port, 8080);
    char buf[64];
    cr_assert_eq(sk_url_authority(&u, buf, sizeof buf), 10);
    cr_assert_str_eq(buf, "[::1]:8080");
    u = parse_ok("https://[2001:DB8::1]/");
    cr_assert_str_eq(u.host, "2001:db8::1");
    cr_assert_eq(sk_url_authority(&u, buf, sizeof buf), 13);
    cr_assert_str_eq(buf, "[2001:db8::1]");
    cr_assert_eq(parse_rc("http://[::1/"), SK_EPARSE);
    cr_assert_eq(parse_rc("http://[zz::1]/"), SK_EPARSE);
    cr_assert_eq(parse_rc("http://[::1]x/"), SK_EPARSE);
}

Test(url, rejects)
{
    const char *bad[] = {"", "example.com", "http:/x", "http:x", "http//x", "http://",
                         "http:///p", "http://:80/", "http://h:0/", "http://h:65536/",
                         "http://h:8a/", "http://h:123456/", "http://user:pw@h/",
                         "http://h o/", "http://h/a\x01", "http://h/%", "http://h/%4",
                         "http://h/%zz", "http://h/\x7f", "1http://h/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(parse_rc(bad[i]), SK_EPARSE, "accepted '%s'", bad[i]);
    cr_assert_eq(parse_rc("ftp://h/"), SK_EUNSUPPORTED);
    cr_assert_eq(parse_rc("file:///etc/passwd"), SK_EUNSUPPORTED);
    cr_assert_eq(parse_rc("javascript:alert(1)"), SK_EUNSUPPORTED);
}

Test(url, length_bounds)
{
    static char s[SK_URL_TARGET_MAX + 64];
    strcpy(s, "http://h/");
    memset(s + 9, 'a', SK_URL_TARGET_MAX);
    s[9 + SK_URL_TARGET_MAX] = '\0';
    cr_assert_eq(parse_rc(s), SK_ETOOBIG);
    strcpy(s, "http://");
    memset(s + 7, 'a', SK_HOST_MAX);
    strcpy(s + 7 + SK_HOST_MAX, "/");
    cr_assert_eq(parse_rc(s), SK_ETOOBIG);
}

/* A target of the longest size fits whatever its last bytes are, and the
 * formatted URL parses again to the same target (fuzz_url found an encoded
 * target near the bound that did not). */
Test(url, longest_target_round_trips)
{
    static char s[SK_URL_TARGET_MAX + 64], buf[SK_URL_TARGET_MAX + SK_HOST_MAX + 32];
    const size_t longest = SK_URL_TARGET_MAX - 1;
    strcpy(s, "http://h/");
    memset(s + 9, 'a', longest - 1);
    s[8 + longest] = '\0';
    struct sk_url u = parse_ok(s);
    cr_assert_eq(strlen(u.target), longest);
    s[8 + longest] = 'a';
    s[9 + longest] = '\0';
    cr_assert_eq(parse_rc(s), SK_ETOOBIG, "one byte more");
    /* The same bound reached by encoding: "\xff" becomes "%FF". */
    memset(s + 9, 'a', longest - 4);
    strcpy(s + 8 + longest - 3, "\xff");
    u = parse_ok(s);
    cr_assert_eq(strlen(u.target), longest);
    cr_assert_str_eq(u.target + longest - 3, "%FF");
    cr_assert_gt(sk_url_format(&u, buf, sizeof buf), 0);
    struct sk_url again = parse_ok(buf);
    cr_assert_str_eq(again.target, u.target);
}

Test(url, encoding_and_dots)
{
    struct sk_url u = parse_ok("http://h/a b/\xc3\xa9?q=\"x\"");
    cr_assert_str_eq(u.target, "/a%20b/%C3%A9?q=%22x%22");
    u = parse_ok("http://h/%41%2f");
    cr_assert_str_eq(u.target, "/%41%2f");
    const char *cases[][2] = {
        {"http://h/a/./b/../c", "/a/c"}, {"http://h/a/b/..", "/a/"},
        {"http://h/a/b/.", "/a/b/"},     {"http://h/../../x", "/x"},
        {"http://h/.", "/"},             {"http://h/a//b", "/a//b"},
        {"http://h/a/..?q=/../", "/?q=/../"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        u = parse_ok(cases[i][0]);
        cr_assert_str_eq(u.target, cases[i][1], "%s", cases[i][0]);
    }
}

Test(url, format_and_basename)
{
    struct sk_url u = parse_ok("http://h:80/dir/file.tar.gz?x=1");
    char buf[256];
    cr_assert_gt(sk_url_format(&u, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "http://h/dir/file.tar.gz?x=1");
    cr_assert_eq(sk_url_basename(&u, buf, sizeof buf), 11);
    cr_assert_str_eq(buf, "file.tar.gz");
    u = parse_ok("https://h:444/dir/?x=/y");
    cr_assert_gt(sk_url_format(&u, buf, sizeof buf), 0);
    cr_assert_str_eq(buf, "https://h:444/dir/?x=/y");
    sk_url_basename(&u, buf, sizeof buf);
    cr_assert_str_eq(buf, "index.html");
    u = parse_ok("http://h");
    sk_url_basename(&u, buf, sizeof buf);
    cr_assert_str_eq(buf, "index.html");
    cr_assert_eq(sk_url_format(&u, buf, 5), SK_ETOOBIG);
}

/* RFC 3986 5.4.1, the examples that an http base can express. */
Test(url, resolve_rfc3986_examples)
{
    struct sk_url base = parse_ok("http://a/b/c/d;p?q");
    const char *cases[][2] = {
        {"g", "http://a/b/c/g"},          {"./g", "http://a/b/c/g"},
        {"g/", "http://a/b/c/g/"},        {"/g", "http://a/g"},
        {"//g", "http://g/"},             {"?y", "http://a/b/c/d;p?y"},
        {"g?y", "http://a/b/c/g?y"},      {"#s", "http://a/b/c/d;p?q"},
        {"g#s", "http://a/b/c/g"},        {";x", "http://a/b/c/;x"},
        {"", "http://a/b/c/d;p?q"},       {".", "http://a/b/c/"},
        {"./", "http://a/b/c/"},          {"..", "http://a/b/"},
        {"../", "http://a/b/"},           {"../g", "http://a/b/g"},
        {"../..", "http://a/"},           {"../../g", "http://a/g"},
        {"../../../g", "http://a/g"},     {"/./g", "http://a/g"},
        {"/../g", "http://a/g"},          {"g.", "http://a/b/c/g."},
        {"..g", "http://a/b/c/..g"},      {"g;x=1/../y", "http://a/b/c/y"},
        {"https://x:1/y", "https://x:1/y"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sk_url out;
        char buf[256];
        int rc = sk_url_resolve(&base, cases[i][0], strlen(cases[i][0]), &out);
        cr_assert_eq(rc, 0, "'%s' -> %d", cases[i][0], rc);
        sk_url_format(&out, buf, sizeof buf);
        cr_assert_str_eq(buf, cases[i][1], "'%s'", cases[i][0]);
    }
    struct sk_url out;
    cr_assert_eq(sk_url_resolve(&base, "ftp://x/", 8, &out), SK_EUNSUPPORTED);
    cr_assert_eq(sk_url_resolve(&base, "//", 2, &out), SK_EPARSE);
}

Test(url, same_origin)
{
    struct sk_url a = parse_ok("http://h/x"), b = parse_ok("http://H:80/y"),
                  c = parse_ok("https://h/x"), d = parse_ok("http://h:81/x");
    cr_assert(sk_url_same_origin(&a, &b));
    cr_assert_not(sk_url_same_origin(&a, &c));
    cr_assert_not(sk_url_same_origin(&a, &d));
}
