/* systemd's socket activation and readiness protocols, without libsystemd.
 *
 * Socket activation (sd_listen_fds(3)): the service manager passes the
 * sockets it bound as fds 3, 4, ... and says so in the environment:
 * LISTEN_PID (the process they are for), LISTEN_FDS (how many) and
 * LISTEN_FDNAMES (their names, colon-separated: FileDescriptorName=).
 * Readiness (sd_notify(3)): NOTIFY_SOCKET names an AF_UNIX datagram socket
 * (a path, or "@name" in the abstract namespace) that takes "READY=1",
 * "STOPPING=1", "STATUS=..." lines (Type=notify). */
#ifndef SOCKIT_SD_H
#define SOCKIT_SD_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SK_SD_LISTEN_FDS_START 3
#define SK_SD_NAME_MAX 255 /* systemd's bound on a FileDescriptorName= */

/* One passed socket, as the kernel describes it. */
struct sk_sd_socket {
    int fd;
    int family;     /* AF_INET, AF_INET6, AF_UNIX... (getsockname) */
    int type;       /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET (SO_TYPE) */
    bool listening; /* SO_ACCEPTCONN: a listening stream socket (not Accept=yes's) */
    char name[SK_SD_NAME_MAX + 1]; /* its LISTEN_FDNAMES entry; "unknown" without one */
};

/* The sockets passed to this process: returns their number (0: none, that
 * is LISTEN_PID unset or another process's, which is not an error), with
 * their descriptions in out[0..n), or a negative code with one line of
 * English in err: SK_EPARSE (a LISTEN_* variable malformed, LISTEN_FDS
 * missing or 0, names that do not match the count), SK_ETOOBIG (more than
 * max sockets), SK_ERR(EBADF) (an fd that is not open), SK_ERR(ENOTSOCK).
 * The fds get FD_CLOEXEC; the caller owns them (also on an error). Strict:
 * numbers are plain decimal, names systemd's (printable ASCII but ':', at
 * most SK_SD_NAME_MAX bytes). As sd_listen_fds(1), it unsets LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES in every case, so that no child inherits
 * them: call it once, before starting threads (unsetenv is not
 * thread-safe). */
int sk_sd_listen_fds(struct sk_sd_socket *out, size_t max, char *err, size_t errlen);

/* Sends state ("READY=1", "STOPPING=1", "STATUS=serving", several lines
 * joined by '\n') to NOTIFY_SOCKET in one datagram. Returns 1 when sent, 0
 * when NOTIFY_SOCKET is unset (not run by a service manager that asked for
 * it: nothing to do), or a negative code: SK_EUSAGE (NOTIFY_SOCKET neither
 * an absolute path nor "@name", or too long for an AF_UNIX address),
 * -errno of the socket calls (the manager's socket is gone: ENOENT,
 * ECONNREFUSED). NOTIFY_SOCKET stays set. Thread-safe. */
int sk_sd_notify(const char *state);

#ifdef __cplusplus
}
#endif

#endif
