/* sockit fetch: the file name a Content-Disposition field proposes
 * (RFC 6266), for -J / --content-disposition. Self-contained (no other
 * part of the program but lib/chars_int.h), so tests/unit links it too. */
#ifndef SOCKIT_CLI_FETCH_CDISP_H
#define SOCKIT_CLI_FETCH_CDISP_H

#include <stddef.h>

#define FETCH_CD_NAME_MAX 255 /* bytes of a saved name (NAME_MAX) */

/* From the field's value (n bytes, not NUL-terminated): filename*=UTF-8''...
 * (percent-decoded) when present and in UTF-8, else filename= (a token or
 * a quoted-string with backslash escapes). Parameter names are matched
 * without regard to case. Only the last path segment is kept (after the
 * last '/' or '\'). Returns 1 with the name in out (FETCH_CD_NAME_MAX + 1
 * bytes), 0 when the field names no file, or -1 when the name is refused
 * (*why says why: a static English phrase marked for gettext): malformed, bad percent-encoding,
 * not UTF-8, control bytes, empty, ".", "..", starting with '.', or longer
 * than FETCH_CD_NAME_MAX bytes. */
int fetch_cd_filename(const char *v, size_t n, char out[FETCH_CD_NAME_MAX + 1],
                      const char **why);

#endif
