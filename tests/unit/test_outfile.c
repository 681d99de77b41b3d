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

#include "outfile_int.h"
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

/* Issue 7: a failed fsync used to leak the fd and a later commit of the
 * discarded file reported success. fsync(2) on a pipe fails (EINVAL). */
Test(outfile, failed_fsync_closes_and_discards, .init = setup, .fini = teardown)
{
    char path[128];
    snprintf(path, sizeof path, "%s/out", dir);
    struct sk_outfile of;
    cr_assert_eq(sk_outfile_open_temp(&of, path, SK_OUTFILE_SYNC), 0);
    cr_assert_eq(sk_outfile_write(&of, "abc", 3), 0);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    int fd = of.fd;
    cr_assert_eq(dup2(p[0], fd), fd); /* the file's fd now names a pipe */
    close(p[0]);
    cr_assert_eq(sk_outfile_commit(&of), SK_ERR(EINVAL));
    cr_assert_eq(fcntl(fd, F_GETFD), -1, "the fd is closed");
    cr_assert_eq(errno, EBADF);
    cr_assert_eq(of.fd, -1);
    cr_assert_eq(access(path, F_OK), -1);
    cr_assert_eq(entries(), 0, "the temporary file is removed");
    cr_assert_neq(sk_outfile_commit(&of), 0, "a discarded file is never reported saved");
    close(p[1]);
}

static int scoped_plain_return(const char *path)
{
    struct sk_outfile of;
    int rc = sk_outfile_open_temp(&of, path, 0);
    if (rc < 0)
        return rc;
    SK_WITH(w, &sk_outfile_with, &of);
    cr_assert_eq(w.value, &of);
    cr_assert_eq(sk_outfile_write(&of, "partial", 7), 0);
    return 0; /* no verdict: w.err is 0 but sk_with_exit() never ran */
}

/* Issue 7: leaving the scope by a plain return committed the file. */
Test(outfile, scope_left_without_commit_discards, .init = setup, .fini = teardown)
{
    char path[128], buf[64];
    snprintf(path, sizeof path, "%s/out", dir);
    cr_assert_eq(scoped_plain_return(path), 0);
    cr_assert_eq(access(path, F_OK), -1, "never committed");
    cr_assert_eq(entries(), 0);
    spit(path, "old");
    cr_assert_eq(scoped_plain_return(path), 0);
    slurp(path, buf, sizeof buf);
    cr_assert_str_eq(buf, "old");
    cr_assert_eq(entries(), 1);
}

/* Issue 7: replacing a setuid/setgid file kept those bits on new bytes. */
Test(outfile, special_mode_bits_are_not_carried_over, .init = setup, .fini = teardown)
{
    char path[128];
    snprintf(path, sizeof path, "%s/tool", dir);
    spit(path, "old");
    cr_assert_eq(chmod(path, 07755), 0);
    cr_assert_eq(scoped_write(path, 0, 0), 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0755, "mode %o", (unsigned)(st.st_mode & 07777));
}

/* Issue 7: a legal 255-byte name failed: the temporary name was longer. */
Test(outfile, longest_legal_name, .init = setup, .fini = teardown)
{
    char path[PATH_MAX], name[NAME_MAX + 1], buf[64];
    memset(name, 'n', NAME_MAX);
    name[NAME_MAX] = '\0';
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(scoped_write(path, 0, 0), 0);
    slurp(path, buf, sizeof buf);
    cr_assert_str_eq(buf, "new data");
    cr_assert_eq(entries(), 1);
}

/* Issue 7: a link or another user's file planted at FILE.part was written
 * through. */
Test(outfile, part_refuses_links_and_foreign_files, .init = setup, .fini = teardown)
{
    char path[128], part[140], victim[140], buf[64];
    snprintf(path, sizeof path, "%s/out", dir);
    snprintf(part, sizeof part, "%s.part", path);
    snprintf(victim, sizeof victim, "%s/victim", dir);
    spit(victim, "precious");
    struct sk_outfile of;
    cr_assert_eq(symlink(victim, part), 0);
    cr_assert_eq(sk_outfile_open_part(&of, path, part, 0), SK_ERR(ELOOP));
    cr_assert_eq(unlink(part), 0);
    cr_assert_eq(link(victim, part), 0);
    cr_assert_eq(sk_outfile_open_part(&of, path, part, 0), SK_ERR(EPERM));
    cr_assert_eq(unlink(part), 0);
    spit(part, "theirs");
    if (geteuid() == 0) { /* only root can give a file away */
        cr_assert_eq(chown(part, 12345, 12345), 0);
        cr_assert_eq(sk_outfile_open_part(&of, path, part, 0), SK_ERR(EPERM));
    }
    slurp(victim, buf, sizeof buf);
    cr_assert_str_eq(buf, "precious");
    cr_assert_eq(access(path, F_OK), -1);
}

/* The folder kept across files: opened once, used while its name leads to
 * it, never closed by the files' commit or discard. */
Test(outfile, kept_folder_serves_many_files, .init = setup, .fini = teardown)
{
    struct sk__outdir d;
    sk__outdir_init(&d);
    char path[128], other[128], moved[128];
    snprintf(path, sizeof path, "%s/a/one", dir);
    snprintf(other, sizeof other, "%s/a/two", dir);
    snprintf(moved, sizeof moved, "%s/a", dir);
    cr_assert_eq(sk__outdir_get(&d, path), -ENOENT);
    cr_assert_eq(mkdir(moved, 0700), 0);
    int fd = sk__outdir_get(&d, path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(sk__outdir_get(&d, other), fd, "the same folder: the same fd");
    struct sk_outfile of;
    cr_assert_eq(sk__outfile_open_temp_at(&of, fd, path, SK_OUTFILE_NOREPLACE), 0);
    cr_assert_eq(sk_outfile_write(&of, "1", 1), 0);
    cr_assert_eq(sk_outfile_commit(&of), 0);
    cr_assert_eq(sk__outfile_open_temp_at(&of, fd, other, 0), 0);
    sk_outfile_discard(&of);
    cr_assert_eq(fcntl(fd, F_GETFD), FD_CLOEXEC, "commit and discard left the folder open");
    char buf[8];
    slurp(path, buf, sizeof buf);
    cr_assert_str_eq(buf, "1");
    /* The name now leads to another folder: that one is opened. */
    char aside[128];
    snprintf(aside, sizeof aside, "%s/aside", dir);
    cr_assert_eq(rename(moved, aside), 0);
    cr_assert_eq(mkdir(moved, 0700), 0);
    int fd2 = sk__outdir_get(&d, other);
    cr_assert_geq(fd2, 0);
    cr_assert_eq(sk__outfile_open_temp_at(&of, fd2, other, SK_OUTFILE_NOREPLACE), 0);
    cr_assert_eq(sk_outfile_commit(&of), 0);
    cr_assert_eq(access(other, F_OK), 0, "written in the folder the name leads to now");
    char old_two[160];
    snprintf(old_two, sizeof old_two, "%s/two", aside);
    cr_assert_neq(access(old_two, F_OK), 0);
    /* Another folder's name: the kept fd goes, the new one is kept. */
    cr_assert_geq(sk__outdir_get(&d, "bare-name"), 0);
    cr_assert_str_eq(d.dir, ".");
    sk__outdir_close(&d);
    cr_assert_eq(d.fd, -1);
    /* A name that is no file name at all. */
    snprintf(path, sizeof path, "%s/", dir);
    cr_assert_eq(sk__outdir_get(&d, path), -EISDIR);
}
