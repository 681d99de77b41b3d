/* Fuzz target: fetch_cd_filename (src/fetch_cdisp.c), the file name of a
 * Content-Disposition value, as sockit fetch -J reads it from the network.
 * Besides the sanitizers' checks: an accepted name is a single path segment
 * of 1..255 bytes, not hidden, free of control bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_cdisp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = malloc(size ? size : 1); /* exact: reads past it are seen */
    if (!v)
        return 0;
    memcpy(v, data, size);
    char out[FETCH_CD_NAME_MAX + 1];
    const char *why = NULL;
    int r = fetch_cd_filename(v, size, out, &why);
    free(v);
    if (r < 0 && !why)
        __builtin_trap();
    if (r > 0) {
        size_t n = strnlen(out, sizeof out);
        if (n == 0 || n > FETCH_CD_NAME_MAX || out[0] == '.' || strpbrk(out, "/\\"))
            __builtin_trap();
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
                __builtin_trap();
        }
    }
    return 0;
}
