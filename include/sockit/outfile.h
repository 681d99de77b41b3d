/* An output file that only ever appears complete: the `with` discipline
 * for downloads.
 *
 * Data goes to a temporary file in the target's folder (same file system,
 * so the final rename is atomic). The context manager's exit, given the
 * scope's outcome, commits (flush, optional fsync, rename onto the target)
 * on success and removes the temporary file on error, so the target is
 * either untouched or complete. Only sk_with_exit() with w.err == 0
 * commits; a scope left any other way discards (failure is the default):
 *
 *     struct sk_outfile of;
 *     int rc = sk_outfile_open_temp(&of, "out.bin", 0);
 *     if (rc < 0) return rc;
 *     SK_WITH(w, &sk_outfile_with, &of);
 *     ... if ((rc = sk_outfile_write(&of, p, n)) < 0) return rc; // discarded
 *     return sk_with_exit(&w);   // commit (or roll back if w.err); the verdict
 *
 * Every name is opened relative to the folder's fd with O_NOFOLLOW; the
 * temporary file is created with O_EXCL, so a link or file planted in a
 * shared folder is never written through.
 *
 * A resumable download (sk_outfile_open_part) writes to a stable FILE.part
 * instead and, when keep_on_error is set, leaves it in place on error. */
#ifndef SOCKIT_OUTFILE_H
#define SOCKIT_OUTFILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sockit/scope.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SK_OUTFILE_NOREPLACE = 1 << 0, /* commit fails with -EEXIST if the target exists */
    SK_OUTFILE_SYNC = 1 << 1,      /* fsync the data and the folder on commit */
};

struct sk_outfile {
    int fd;
    int dirfd;             /* the folder of path and tmp */
    unsigned flags;
    bool keep_on_error;    /* leave tmp in place when the scope fails (resume) */
    bool done;             /* committed or discarded */
    bool committed;
    uint64_t size;         /* bytes in the file */
    char path[PATH_MAX];   /* the target */
    char tmp[PATH_MAX];    /* where the data goes until commit */
    size_t name_off, tmp_off; /* where the base names start in path and tmp */
};

/* Creates a fresh temporary file beside path (".NAME.sockit-XXXXXX", NAME
 * shortened so the name fits NAME_MAX) with the permission bits of the file
 * it will replace (a regular file: a link there lends nothing; never setuid,
 * setgid or sticky), else 0666 & ~umask.
 * Returns 0 or -errno. */
int sk_outfile_open_temp(struct sk_outfile *of, const char *path, unsigned flags);
/* Opens or creates the resumable file `part` (in path's folder) for target
 * path, positioned at its end (of->size). It is locked: a second download of
 * the same part gets SK_EBUSY. A symbolic link there gives -ELOOP; a file
 * with other links or another owner -EPERM; not a regular file -EINVAL.
 * Returns 0 or a negative code. */
int sk_outfile_open_part(struct sk_outfile *of, const char *path, const char *part,
                         unsigned flags);
/* Reserves disk space for `total` bytes (the file's size is unchanged), so
 * a full disk is reported before the transfer instead of in the middle.
 * File systems without fallocate(2) are fine. Returns 0 or -errno. */
int sk_outfile_reserve(struct sk_outfile *of, uint64_t total);
/* Appends n bytes. Returns 0 or -errno (ENOSPC, EIO...). */
int sk_outfile_write(struct sk_outfile *of, const void *buf, size_t n);
/* Empties the file (a restart from byte 0). Returns 0 or -errno. */
int sk_outfile_truncate(struct sk_outfile *of);
/* Moves the data onto the target. Returns 0 or a negative code; on failure
 * the temporary file is removed (unless keep_on_error) and closed. After a
 * discard it returns -EBADF: nothing was saved. */
int sk_outfile_commit(struct sk_outfile *of);
/* Removes the temporary file (unless keep_on_error) and closes. */
void sk_outfile_discard(struct sk_outfile *of);

/* The context manager: exit(0) commits, exit(err) discards and returns err. */
extern const struct sk_with_ops sk_outfile_with;

#ifdef __cplusplus
}
#endif

#endif
