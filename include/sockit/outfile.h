/* An output file that only ever appears complete: the `with` discipline
 * for downloads.
 *
 * Data goes to a temporary file in the target's folder (same file system,
 * so the final rename is atomic). The context manager's exit, given the
 * scope's outcome, commits (flush, optional fsync, rename onto the target)
 * on success and removes the temporary file on error, so the target is
 * either untouched or complete:
 *
 *     struct sk_outfile of;
 *     int rc = sk_outfile_open_temp(&of, "out.bin", 0);
 *     if (rc < 0) return rc;
 *     SK_WITH(w, &sk_outfile_with, &of);
 *     ... w.err = sk_outfile_write(&of, p, n) ... on any error: w.err = rc;
 *     return sk_with_exit(&w);   // commit or roll back; the verdict
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

enum {
    SK_OUTFILE_NOREPLACE = 1 << 0, /* commit fails with -EEXIST if the target exists */
    SK_OUTFILE_SYNC = 1 << 1,      /* fsync the data and the folder on commit */
};

struct sk_outfile {
    int fd;
    unsigned flags;
    bool keep_on_error;    /* leave tmp in place when the scope fails (resume) */
    bool done;             /* committed or discarded */
    uint64_t size;         /* bytes in the file */
    char path[PATH_MAX];   /* the target */
    char tmp[PATH_MAX];    /* where the data goes until commit */
};

/* Creates a fresh temporary file beside path (".NAME.sockit-XXXXXX") with
 * the mode of the file it will replace, else 0666 & ~umask. Returns 0 or
 * -errno. */
int sk_outfile_open_temp(struct sk_outfile *of, const char *path, unsigned flags);
/* Opens or creates the resumable file `part` for target path, positioned at
 * its end (of->size). It is locked: a second download of the same part gets
 * SK_EBUSY. Returns 0 or a negative code. */
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
 * the temporary file is removed (unless keep_on_error). */
int sk_outfile_commit(struct sk_outfile *of);
/* Removes the temporary file (unless keep_on_error) and closes. */
void sk_outfile_discard(struct sk_outfile *of);

/* The context manager: exit(0) commits, exit(err) discards and returns err. */
extern const struct sk_with_ops sk_outfile_with;

#endif
