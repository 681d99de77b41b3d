/* Atomic output files: write aside, rename into place on success only. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sockit/err.h"
#include "sockit/outfile.h"

static void reset(struct sk_outfile *of, const char *path, unsigned flags)
{
    memset(of, 0, sizeof *of);
    of->fd = -1;
    of->flags = flags;
    snprintf(of->path, sizeof of->path, "%s", path);
}

/* Splits path into its folder (at least ".") and base name. */
static int split(const char *path, char *dir, size_t dlen, const char **base)
{
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (**base == '\0')
        return SK_ERR(EISDIR);
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (slash && n == 0)
        n = 1; /* "/name": the root folder */
    if (!slash) {
        snprintf(dir, dlen, ".");
        return 0;
    }
    if (n >= dlen)
        return SK_ERR(ENAMETOOLONG);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

int sk_outfile_open_temp(struct sk_outfile *of, const char *path, unsigned flags)
{
    reset(of, path, flags);
    char dir[PATH_MAX];
    const char *base;
    int rc = split(path, dir, sizeof dir, &base);
    if (rc < 0)
        return rc;
    int n = snprintf(of->tmp, sizeof of->tmp, "%s/.%s.sockit-XXXXXX", dir, base);
    if (n < 0 || (size_t)n >= sizeof of->tmp)
        return SK_ERR(ENAMETOOLONG);
    of->fd = mkostemp(of->tmp, O_CLOEXEC);
    if (of->fd < 0) {
        of->tmp[0] = '\0';
        return SK_ERR(errno);
    }
    /* The mode a new file would get, or the mode of the file we replace. */
    mode_t mask = umask(0);
    umask(mask);
    mode_t mode = 0666 & ~mask;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        mode = st.st_mode & 07777;
    if (fchmod(of->fd, mode) < 0) {
        rc = SK_ERR(errno);
        sk_outfile_discard(of);
        return rc;
    }
    return 0;
}

int sk_outfile_open_part(struct sk_outfile *of, const char *path, const char *part,
                         unsigned flags)
{
    reset(of, path, flags);
    if (snprintf(of->tmp, sizeof of->tmp, "%s", part) >= (int)sizeof of->tmp)
        return SK_ERR(ENAMETOOLONG);
    of->fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (of->fd < 0) {
        of->tmp[0] = '\0';
        return SK_ERR(errno);
    }
    int rc = 0;
    struct stat st;
    if (flock(of->fd, LOCK_EX | LOCK_NB) < 0)
        rc = errno == EWOULDBLOCK ? SK_EBUSY : SK_ERR(errno);
    else if (fstat(of->fd, &st) < 0)
        rc = SK_ERR(errno);
    else if (!S_ISREG(st.st_mode))
        rc = SK_ERR(EINVAL);
    else if (lseek(of->fd, 0, SEEK_END) < 0)
        rc = SK_ERR(errno);
    if (rc < 0) {
        of->tmp[0] = '\0'; /* not ours to delete: someone else's download, or not a file */
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

static void sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *base;
    if (split(path, dir, sizeof dir, &base) < 0)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* rename(2) that, with SK_OUTFILE_NOREPLACE, never replaces an existing
 * target, even one created while we were downloading. */
static int place(const struct sk_outfile *of)
{
    if (!(of->flags & SK_OUTFILE_NOREPLACE))
        return rename(of->tmp, of->path) < 0 ? SK_ERR(errno) : 0;
    if (renameat2(AT_FDCWD, of->tmp, AT_FDCWD, of->path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return SK_ERR(errno);
    /* File systems without RENAME_NOREPLACE: link() fails on an existing name. */
    if (link(of->tmp, of->path) < 0)
        return SK_ERR(errno);
    unlink(of->tmp);
    return 0;
}

int sk_outfile_commit(struct sk_outfile *of)
{
    if (of->done)
        return 0;
    int rc = 0;
    if ((of->flags & SK_OUTFILE_SYNC) && fsync(of->fd) < 0)
        rc = SK_ERR(errno);
    if (rc == 0 && close(of->fd) < 0) /* NFS reports write errors here */
        rc = SK_ERR(errno);
    of->fd = -1;
    if (rc == 0)
        rc = place(of);
    if (rc < 0) {
        sk_outfile_discard(of);
        return rc;
    }
    if (of->flags & SK_OUTFILE_SYNC)
        sync_dir(of->path);
    of->done = true;
    return 0;
}

void sk_outfile_discard(struct sk_outfile *of)
{
    if (of->done)
        return;
    int saved = errno;
    if (of->tmp[0] && !(of->keep_on_error && of->size > 0))
        unlink(of->tmp);
    if (of->fd >= 0)
        close(of->fd);
    of->fd = -1;
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
