/* Replays a fuzz corpus without libFuzzer: feeds every regular file under
 * the folder argv[1] (recursively) to LLVMFuzzerTestOneInput, so `make test`
 * runs the corpus in the normal and sanitizer builds. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || st.st_size < 0) {
        (void)fclose(f); /* read-only: nothing to lose */
        return -1;
    }
    size_t n = (size_t)st.st_size;
    /* An exact-size heap copy: the sanitizers see any read past the end. */
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf || fread(buf, 1, n, f) != n) {
        free(buf);
        (void)fclose(f); /* read-only: nothing to lose */
        return -1;
    }
    (void)fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static int replay_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        int k = snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (k < 0 || (size_t)k >= sizeof path) {
            fprintf(stderr, "%s/%s: path too long\n", dir, e->d_name);
            rc = -1;
            break;
        }
        struct stat st;
        if (stat(path, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode))
            rc = replay_dir(path, count);
        else if (S_ISREG(st.st_mode) && (rc = replay_file(path)) == 0)
            (*count)++;
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    int count = 0;
    if (replay_dir(argv[1], &count) < 0)
        return 1;
    printf("%s: %d inputs replayed\n", argv[1], count);
    return 0;
}
