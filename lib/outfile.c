/* Atomic output files: write aside, rename into place on success only.
 *
 * Every name is opened relative to the folder's fd, never by path, and only
 * with O_NOFOLLOW: a link planted in a shared folder cannot redirect a write
 * elsewhere. The temporary file is created with O_EXCL (it is ours alone);
 * a resumable part is reopened only if it is a plain file with one link,
 * owned by us. */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "outfile_int.h"
#include "sockit/err.h"
#include "sockit/outfile.h"
#include "sockit/scope.h"

#define TMP_SUFFIX ".sockit-XXXXXX"

static void reset(struct sk_outfile *of, unsigned flags)
{
    memset(of, 0, sizeof *of);
    of->fd = -1;
    of->dirfd = -1;
    of->flags = flags;
}

/* Copies path into dst; *base_off is where its base name starts. */
static int name_of(const char *path, char *dst, size_t *base_off)
{
    if (snprintf(dst, PATH_MAX, "%s", path) >= PATH_MAX)
        return SK_ERR(ENAMETOOLONG);
    const char *slash = strrchr(dst, '/');
    const char *base = slash ? slash + 1 : dst;
    if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return SK_ERR(EISDIR);
    if (strlen(base) > NAME_MAX)
        return SK_ERR(ENAMETOOLONG);
    *base_off = (size_t)(base - dst);
    return 0;
}

/* The folder part of name (base name at base_off) into dir: "." for none. */
static void dir_of(const char *name, size_t base_off, char *dir)
{
    memcpy(dir, ".", 2);
    if (base_off > 0) {
        size_t n = base_off == 1 ? 1 : base_off - 1; /* "/name": the root */
        memcpy(dir, name, n);
        dir[n] = '\0';
    }
}

static int open_folder(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? SK_ERR(errno) : fd;
}

/* name_of(), then opens the folder: returns its fd or -errno. */
static int open_dir(const char *path, char *dst, size_t *base_off)
{
    int rc = name_of(path, dst, base_off);
    if (rc < 0)
        return rc;
    char dir[PATH_MAX];
    dir_of(dst, *base_off, dir);
    return open_folder(dir);
}

void sk__outdir_init(struct sk__outdir *d)
{
    d->fd = -1;
    d->dir[0] = '\0';
}

int sk__outdir_get(struct sk__outdir *d, const char *path)
{
    char name[PATH_MAX], dir[PATH_MAX];
    size_t base_off;
    int rc = name_of(path, name, &base_off);
    if (rc < 0)
        return rc;
    dir_of(name, base_off, dir);
    /* The name still leads to the folder kept (a chdir, a rename or a link
     * swapped in since: opened anew, as open_dir would). */
    struct stat st;
    if (d->fd >= 0 && strcmp(d->dir, dir) == 0 && stat(dir, &st) == 0 && st.st_dev == d->dev &&
        st.st_ino == d->ino)
        return d->fd;
    sk__outdir_close(d);
    if ((rc = open_folder(dir)) < 0)
        return rc;
    if (fstat(rc, &st) < 0) {
        int err = SK_ERR(errno);
        close(rc);
        return err;
    }
    d->fd = rc;
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    memcpy(d->dir, dir, sizeof d->dir);
    return d->fd;
}

void sk__outdir_close(struct sk__outdir *d)
{
    sk_closep(&d->fd);
    d->dir[0] = '\0';
}

/* The folder's fd is the caller's (sk__outfile_open_temp_at): never closed here. */
#define BORROWED_DIR (1u << 31)

static void close_dir(struct sk_outfile *of)
{
    if (of->flags & BORROWED_DIR)
        of->dirfd = -1;
    else
        sk_closep(&of->dirfd);
}

/* 6 random bytes into r: from a per-thread pool refilled 32 names at a
 * time (one getrandom(2) per 32 files of a run, not one per file). */
static bool random6(unsigned char *r)
{
    static _Thread_local unsigned char pool[6 * 32];
    static _Thread_local size_t left;
    if (left == 0) {
        if (getrandom(pool, sizeof pool, GRND_NONBLOCK) != (ssize_t)sizeof pool)
            return false;
        left = sizeof pool;
    }
    left -= 6;
    memcpy(r, pool + left, 6);
    return true;
}

/* Fills the trailing X's of name with random letters and digits. */
static void randomize(char *name)
{
    static const char set[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char r[6];
    if (!random6(r)) {
        static unsigned long counter;
        unsigned long v = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16) ^ ++counter;
        for (size_t i = 0; i < sizeof r; i++, v >>= 5)
            r[i] = (unsigned char)(v ^ (v >> 29));
    }
    char *x = name + strlen(name) - sizeof r;
    for (size_t i = 0; i < sizeof r; i++)
        x[i] = set[r[i] % (sizeof set - 1)];
}

/* open_temp with of->dirfd and of->path set. */
static int make_temp(struct sk_outfile *of)
{
    int rc;
    /* ".NAME.sockit-XXXXXX", NAME cut so that the whole stays a legal
     * name: a 255-byte NAME must not make the download fail. */
    const char *base = of->path + of->name_off;
    int keep = (int)(NAME_MAX - 1 - strlen(TMP_SUFFIX));
    char name[NAME_MAX + 1];
    snprintf(name, sizeof name, ".%.*s" TMP_SUFFIX, keep, base);
    int n = snprintf(of->tmp, sizeof of->tmp, "%.*s%s", (int)of->name_off, of->path, name);
    if (n < 0 || (size_t)n >= sizeof of->tmp) {
        sk_outfile_discard(of);
        return SK_ERR(ENAMETOOLONG);
    }
    of->tmp_off = (size_t)n - strlen(name);
    char *tmpname = of->tmp + of->tmp_off;
    for (int tries = 0; tries < 100; tries++) {
        randomize(tmpname);
        /* 0666 & ~umask: the mode a new file gets. */
        of->fd = openat(of->dirfd, tmpname,
                        O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (of->fd >= 0 || errno != EEXIST)
            break;
    }
    if (of->fd < 0) {
        rc = SK_ERR(errno);
        of->tmp[0] = '\0';
        sk_outfile_discard(of);
        return rc;
    }
    /* The file we replace keeps its permissions, but never setuid, setgid
     * or sticky: those belonged to other bytes. A link at the name is
     * replaced, not followed: its target (anyone's 0777 file) lends nothing.
     * NOREPLACE replaces nothing: no file to look at. */
    struct stat st;
    if (!(of->flags & SK_OUTFILE_NOREPLACE) &&
        fstatat(of->dirfd, of->path + of->name_off, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISREG(st.st_mode) &&
        fchmod(of->fd, st.st_mode & 0777) < 0) {
        rc = SK_ERR(errno);
        sk_outfile_discard(of);
        return rc;
    }
    return 0;
}

int sk_outfile_open_temp(struct sk_outfile *of, const char *path, unsigned flags)
{
    reset(of, flags);
    int rc = open_dir(path, of->path, &of->name_off);
    if (rc < 0)
        return rc;
    of->dirfd = rc;
    return make_temp(of);
}

int sk__outfile_open_temp_at(struct sk_outfile *of, int dirfd, const char *path, unsigned flags)
{
    reset(of, flags | BORROWED_DIR);
    int rc = name_of(path, of->path, &of->name_off);
    if (rc < 0)
        return rc;
    of->dirfd = dirfd;
    return make_temp(of);
}

int sk_outfile_open_part(struct sk_outfile *of, const char *path, const char *part,
                         unsigned flags)
{
    reset(of, flags);
    size_t part_off;
    int rc = open_dir(part, of->tmp, &part_off);
    if (rc < 0) {
        of->tmp[0] = '\0';
        return rc;
    }
    of->dirfd = rc;
    of->tmp_off = part_off;
    /* FILE.part sits beside FILE: one folder for both. */
    if ((rc = name_of(path, of->path, &of->name_off)) < 0 ||
        of->name_off != part_off || strncmp(of->path, of->tmp, part_off) != 0) {
        of->tmp[0] = '\0';
        sk_outfile_discard(of);
        return rc < 0 ? rc : SK_ERR(EXDEV);
    }
    /* O_NONBLOCK: a FIFO or a device planted there must not block or act. */
    of->fd = openat(of->dirfd, of->tmp + of->tmp_off,
                    O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0666);
    if (of->fd < 0) {
        rc = SK_ERR(errno);
        of->tmp[0] = '\0';
        sk_outfile_discard(of);
        return rc;
    }
    struct stat st = {0}; /* read only when every step succeeded (rc >= 0) */
    if (flock(of->fd, LOCK_EX | LOCK_NB) < 0)
        rc = errno == EWOULDBLOCK ? SK_EBUSY : SK_ERR(errno);
    else if (fstat(of->fd, &st) < 0)
        rc = SK_ERR(errno); // NOLINT(bugprone-branch-clone): one arm per step; st is read between
    else if (!S_ISREG(st.st_mode))
        rc = SK_ERR(EINVAL);
    else if (st.st_nlink != 1 || st.st_uid != geteuid())
        rc = SK_ERR(EPERM); /* a hard link, or a file someone else made: not ours */
    else if (fcntl(of->fd, F_SETFL, 0) < 0 || lseek(of->fd, 0, SEEK_END) < 0)
        rc = SK_ERR(errno);
    if (rc < 0) {
        of->tmp[0] = '\0'; /* not ours to delete: someone else's download, or not ours at all */
        sk_outfile_discard(of);
        return rc;
    }
    of->size = (uint64_t)st.st_size;
    return 0;
}

int sk_outfile_reserve(struct sk_outfile *of, uint64_t total)
{
    if (total <= of->size || total > (uint64_t)INT64_MAX)
        return 0;
    if (fallocate(of->fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)total) == 0)
        return 0;
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)
        return 0;
    return SK_ERR(errno);
}

int sk_outfile_write(struct sk_outfile *of, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(of->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return SK_ERR(errno);
        p += k;
        n -= (size_t)k;
        of->size += (uint64_t)k;
    }
    return 0;
}

int sk_outfile_truncate(struct sk_outfile *of)
{
    if (ftruncate(of->fd, 0) < 0 || lseek(of->fd, 0, SEEK_SET) < 0)
        return SK_ERR(errno);
    of->size = 0;
    return 0;
}

/* renameat(2) that, with SK_OUTFILE_NOREPLACE, never replaces an existing
 * target, even one created while we were downloading. */
static int place(const struct sk_outfile *of)
{
    const char *from = of->tmp + of->tmp_off, *to = of->path + of->name_off;
    if (!(of->flags & SK_OUTFILE_NOREPLACE))
        return renameat(of->dirfd, from, of->dirfd, to) < 0 ? SK_ERR(errno) : 0;
    if (renameat2(of->dirfd, from, of->dirfd, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return SK_ERR(errno);
    /* File systems without RENAME_NOREPLACE: link() fails on an existing name. */
    if (linkat(of->dirfd, from, of->dirfd, to, 0) < 0)
        return SK_ERR(errno);
    unlinkat(of->dirfd, from, 0);
    return 0;
}

int sk_outfile_commit(struct sk_outfile *of)
{
    if (of->done)
        return of->committed ? 0 : SK_ERR(EBADF); /* a discarded file is not saved */
    int rc = 0;
    if ((of->flags & SK_OUTFILE_SYNC) && fsync(of->fd) < 0)
        rc = SK_ERR(errno);
    int fd = sk_take_fd(&of->fd);
    if (close(fd) < 0 && rc == 0) /* NFS reports write errors here */
        rc = SK_ERR(errno);
    if (rc == 0)
        rc = place(of);
    if (rc < 0) {
        sk_outfile_discard(of);
        return rc;
    }
    if (of->flags & SK_OUTFILE_SYNC)
        (void)fsync(of->dirfd); /* the rename itself */
    close_dir(of);
    of->done = of->committed = true;
    return 0;
}

void sk_outfile_discard(struct sk_outfile *of)
{
    if (of->done)
        return;
    int saved = errno;
    if (of->tmp[0] && of->dirfd >= 0 && !(of->keep_on_error && of->size > 0))
        unlinkat(of->dirfd, of->tmp + of->tmp_off, 0);
    sk_closep(&of->fd);
    close_dir(of);
    of->done = true;
    errno = saved;
}

static void *outfile_enter(void *self)
{
    return self;
}

static int outfile_exit(void *self, int err)
{
    struct sk_outfile *of = self;
    if (err == 0)
        return sk_outfile_commit(of);
    sk_outfile_discard(of);
    return err;
}

const struct sk_with_ops sk_outfile_with = {.enter = outfile_enter, .exit = outfile_exit};
