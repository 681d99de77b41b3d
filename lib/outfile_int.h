/* Output files, inside lib/ only: many files of one run in one folder. */
#ifndef SOCKIT_OUTFILE_INT_H
#define SOCKIT_OUTFILE_INT_H

#include <limits.h>
#include <sys/types.h>

#include "sockit/outfile.h"

/* A folder kept open across the files of a run: opened (O_DIRECTORY) once,
 * not once per file, and used while its name still leads to it (a stat(2)
 * of the name: same device and inode). Names in it are still opened
 * relative to its fd with O_NOFOLLOW, as sk_outfile_open_temp does. */
struct sk__outdir {
    int fd;              /* -1: none */
    dev_t dev;           /* the folder's identity, */
    ino_t ino;
    char dir[PATH_MAX];  /* and the name it was opened by */
};

void sk__outdir_init(struct sk__outdir *d);
/* The fd of path's folder: the kept one when the folder's name is the
 * same, else the folder opened now (and kept). Returns it or -errno. */
int sk__outdir_get(struct sk__outdir *d, const char *path);
void sk__outdir_close(struct sk__outdir *d);

/* sk_outfile_open_temp in the folder dirfd (path's, from sk__outdir_get),
 * which stays the caller's: commit and discard do not close it. */
int sk__outfile_open_temp_at(struct sk_outfile *of, int dirfd, const char *path, unsigned flags);

#endif
