/* Unit tests: Content-Disposition's file name (src/fetch_cdisp.c, the
 * parser behind sockit fetch -J). Each value is copied into a buffer of its
 * exact size, so ASan catches a read past its end. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/fetch_cdisp.h"

static int parse_n(const char *v, size_t n, char *out, const char **why)
{
    char *copy = malloc(n ? n : 1);
    cr_assert(copy);
    memcpy(copy, v, n);
    *why = NULL;
    int r = fetch_cd_filename(copy, n, out, why);
    free(copy);
    return r;
}

static int parse(const char *v, char *out, const char **why)
{
    return parse_n(v, strlen(v), out, why);
}

static void named(const char *v, const char *want)
{
    char out[FETCH_CD_NAME_MAX + 1];
    const char *why;
    cr_assert_eq(parse(v, out, &why), 1, "%s: %s", v, why ? why : "");
    cr_assert_str_eq(out, want, "%s", v);
}

static void refused(const char *v, const char *words)
{
    char out[FETCH_CD_NAME_MAX + 1];
    const char *why;
    cr_assert_eq(parse(v, out, &why), -1, "%s", v);
    cr_assert(why && strstr(why, words), "%s: %s", v, why ? why : "(none)");
}

Test(fetch_cdisp, forms)
{
    named("attachment; filename=a.txt", "a.txt");
    named("attachment; filename=\"a b.txt\"", "a b.txt");
    named("Attachment;FILENAME=\"x\\\"y\\\\z\"", "z"); /* x"y\z: '\' ends a segment */
    named("attachment; filename=\"es\\caped\"", "escaped");
    named("inline; filename*=UTF-8''%e2%82%ac%20rates.txt", "\xe2\x82\xac rates.txt");
    named("attachment; filename=\"old.txt\"; filename*=utf-8'en'new.txt", "new.txt");
    named("attachment; filename*=utf-8''new.txt; filename=\"old.txt\"", "new.txt");
    named("attachment; filename*=ISO-8859-1''%E9.txt; filename=ok.txt", "ok.txt");
    named("attachment ; size=3 ; filename = \"sp.txt\" ;", "sp.txt");
    named("attachment; filename=first; filename=second", "first");
    named("attachment; filename=\"../../etc/passwd\"", "passwd");
    named("attachment; filename=\"C:\\\\Windows\\\\evil.exe\"", "evil.exe");
    named("attachment; filename*=UTF-8''..%2F..%2Fx", "x");
    named("attachment; filename=\"a..b\"", "a..b");
}

Test(fetch_cdisp, no_name)
{
    char out[FETCH_CD_NAME_MAX + 1];
    const char *why;
    cr_assert_eq(parse("inline", out, &why), 0);
    cr_assert_eq(parse("attachment; size=10", out, &why), 0);
    cr_assert_eq(parse("attachment;", out, &why), 0);
    cr_assert_eq(parse("attachment; filename*=KOI8-R''x", out, &why), 0);
}

Test(fetch_cdisp, refused)
{
    refused("attachment; filename=\"\"", "empty");
    refused("attachment; filename=.", "empty");
    refused("attachment; filename=..", "empty");
    refused("attachment; filename=\"a/..\"", "empty");
    refused("attachment; filename=\"a/\"", "empty");
    refused("attachment; filename=.profile", "hidden");
    refused("attachment; filename=\"a\tb\"", "control");
    refused("attachment; filename*=UTF-8''a%00b", "control");
    refused("attachment; filename*=UTF-8''a%7Fb", "control");
    refused("attachment; filename*=UTF-8''a%0Ab", "control");
    refused("attachment; filename*=UTF-8''a%g0", "percent");
    refused("attachment; filename*=UTF-8''a%4", "percent");
    refused("attachment; filename*=UTF-8''a%", "percent");
    refused("attachment; filename*=UTF-8''%C3", "UTF-8");         /* cut short */
    refused("attachment; filename*=UTF-8''%C0%AF", "UTF-8");      /* overlong '/' */
    refused("attachment; filename*=UTF-8''%E0%80%AF", "UTF-8");   /* overlong */
    refused("attachment; filename*=UTF-8''%ED%A0%80", "UTF-8");   /* surrogate */
    refused("attachment; filename*=UTF-8''%F4%90%80%80", "UTF-8"); /* past U+10FFFF */
    refused("attachment; filename*=UTF-8''%FF", "UTF-8");
    refused("attachment; filename=\"\xff.txt\"", "UTF-8");
    refused("attachment; filename=\"open", "malformed");
    refused("attachment; filename=\"open\\", "malformed");
    refused("attachment; filename=", "malformed");
    refused("attachment; filename", "malformed");
    refused("attachment filename=x", "malformed");
    refused("; filename=x", "malformed");
    refused("", "malformed");
    refused("attachment; filename*=UTF-8", "malformed");
    refused("attachment; filename*=UTF-8'x", "malformed");
}

Test(fetch_cdisp, lengths)
{
    char v[600], want[300];
    memset(want, 'n', 255);
    want[255] = '\0';
    snprintf(v, sizeof v, "attachment; filename=\"%s\"", want);
    named(v, want);
    snprintf(v, sizeof v, "attachment; filename=\"%sn\"", want);
    refused(v, "255");
    snprintf(v, sizeof v, "attachment; filename=\"dir/%s\"", want); /* only the segment counts */
    named(v, want);
    char big[3000];
    memset(big, 'x', sizeof big);
    memcpy(big, "attachment; filename=", 21);
    char out[FETCH_CD_NAME_MAX + 1];
    const char *why;
    cr_assert_eq(parse_n(big, sizeof big, out, &why), -1);
}

Test(fetch_cdisp, every_prefix_is_safe)
{
    const char *v = "attachment; filename=\"a\\\"b\"; filename*=UTF-8''%E2%82%AC.txt";
    char out[FETCH_CD_NAME_MAX + 1];
    const char *why;
    for (size_t n = 0; n <= strlen(v); n++)
        (void)parse_n(v, n, out, &why); /* ASan: no read past n */
}
