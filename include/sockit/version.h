/* libsockit's version: the one place it is written down.
 *
 * The Makefile reads the three numbers below for the shared library's file
 * name and the pkg-config file; SOCKIT_VERSION is derived from them. The
 * SONAME is libsockit.so.SOCKIT_VERSION_MAJOR (docs/library.md, "Building
 * against libsockit"). Compare SOCKIT_VERSION_NUMBER at compile time and
 * sk_version() at run time (the library actually loaded). */
#ifndef SOCKIT_VERSION_H
#define SOCKIT_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define SOCKIT_VERSION_MAJOR 0
#define SOCKIT_VERSION_MINOR 1
#define SOCKIT_VERSION_PATCH 0

#define SK__VERSION_STR(x) #x
#define SK__VERSION_XSTR(x) SK__VERSION_STR(x)
/* "MAJOR.MINOR.PATCH", e.g. "0.1.0". */
#define SOCKIT_VERSION                                                                   \
    SK__VERSION_XSTR(SOCKIT_VERSION_MAJOR) "." SK__VERSION_XSTR(SOCKIT_VERSION_MINOR) "." \
        SK__VERSION_XSTR(SOCKIT_VERSION_PATCH)
/* One comparable number: 0x00MMmmpp (0x000100 for 0.1.0). */
#define SOCKIT_VERSION_NUMBER \
    ((SOCKIT_VERSION_MAJOR << 16) | (SOCKIT_VERSION_MINOR << 8) | SOCKIT_VERSION_PATCH)

/* The version of the library linked at run time ("0.1.0"), a static string.
 * Thread-safe. */
const char *sk_version(void);

#ifdef __cplusplus
}
#endif

#endif
