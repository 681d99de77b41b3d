/* Unit tests: the atomic output file and its context manager. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sockit.h"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/sockit-outfile-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static int entries(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."));
    closedir(d);
    return n;
}

static void slurp(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void spit(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

/* The body of a `with` block: writes, then fails with err (0: success). */
static int scoped_write(const char *path, unsigned flags, int err)
{
    struct sk_outfile of;
    int before = entries();
    int rc = sk_outfile_open_temp(&of, path, flags);
    if (rc < 0)
        return rc;
    SK_WITH(w, &sk_outfile_with, &of);
    w.err = sk_outfile_write(&of, "new data", 8);
    cr_assert_eq(w.err, 0);
    cr_assert_eq(entries(), before + 1); /* only the temporary file so far */
    w.err = err;
    return sk_with_exit(&w);
}

Test(outfile, commits_on_success, .init = setup, .fini = teardown)
{
    char path[128], buf[64];
    snprintf(path, sizeof path, "%s/out", dir);
    spit(path, "old");
    cr_assert_eq(scoped_write(path, 0, 0), 0);
    slurp(path, buf, sizeof buf);
    cr_assert_str_eq(buf, "new data");
    cr_assert_eq(entries(), 1);
}

Test(outfile, rolls_back_on_error, .init = setup, .fini = teardown)
{
    char path[128], buf[64];
    snprintf(path, sizeof path, "%s/out", dir);
    spit(path, "old");
    cr_assert_eq(scoped_write(path, 0, SK_EPROTO), SK_EPROTO);
    slurp(path, buf, sizeof buf);
    cr_assert_str_eq(buf, "old");
    cr_assert_eq(entries(), 1);
    snprintf(path, sizeof path, "%s/absent", dir);
    cr_assert_eq(scoped_write(path, 0, SK_ECLOSED), SK_ECLOSED);
    cr_assert_eq(access(path, F_OK), -1);
    cr_assert_eq(entries(), 1); /* "out" alone: no temporary file left */
}

Test(outfile, noreplace_never_clobbers, .init = setup, .fini = teardown)
{
    char path[128], buf[64];
    snprintf(path, sizeof path, "%s/out", dir);
    spit(path, "mine");
    cr_assert_eq(scoped_write(path, SK_OUTFILE_NOREPLACE | SK_OUTFILE_SYNC, 0), SK_ERR(EEXIST));
    slurp(path, buf, sizeof buf);
    cr_assert_str_eq(buf, "mine");
    cr_assert_eq(entries(), 1);
    snprintf(path, sizeof path, "%s/fresh", dir);
    cr_assert_eq(scoped_write(path, SK_OUTFILE_NOREPLACE, 0), 0);
    slurp(path, buf, sizeof buf);
    cr_assert_str_eq(buf, "new data");
}

Test(outfile, part_kept_only_when_asked, .init = setup, .fini = teardown)
{
    char path[128], part[140], buf[64];
    snprintf(path, sizeof path, "%s/out", dir);
    snprintf(part, sizeof part, "%s.part", path);
    struct sk_outfile of, other;
    cr_assert_eq(sk_outfile_open_part(&of, path, part, 0), 0);
    cr_assert_eq(of.size, 0);
    cr_assert_eq(sk_outfile_open_part(&other, path, part, 0), SK_EBUSY); /* locked */
    cr_assert_eq(access(part, F_OK), 0, "a busy part is not removed");
    cr_assert_eq(sk_outfile_write(&of, "abc", 3), 0);
    of.keep_on_error = true;
    sk_outfile_discard(&of);
    cr_assert_eq(access(path, F_OK), -1);
    cr_assert_eq(sk_outfile_open_part(&of, path, part, 0), 0);
    cr_assert_eq(of.size, 3);
    cr_assert_eq(sk_outfile_reserve(&of, 1 << 20), 0);
    cr_assert_eq(sk_outfile_write(&of, "def", 3), 0);
    struct stat st;
    cr_assert_eq(stat(part, &st), 0);
    cr_assert_eq(st.st_size, 6, "reserving space does not change the size");
    cr_assert_eq(sk_outfile_commit(&of), 0);
    slurp(path, buf, sizeof buf);
    cr_assert_str_eq(buf, "abcdef");
    cr_assert_eq(access(part, F_OK), -1);
}

Test(outfile, missing_folder, .init = setup, .fini = teardown)
{
    char path[128];
    struct sk_outfile of;
    snprintf(path, sizeof path, "%s/no/such", dir);
    cr_assert_eq(sk_outfile_open_temp(&of, path, 0), SK_ERR(ENOENT));
    snprintf(path, sizeof path, "%s/", dir);
    cr_assert_eq(sk_outfile_open_temp(&of, path, 0), SK_ERR(EISDIR));
}
