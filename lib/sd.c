/* systemd's socket activation (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES) and
 * readiness (NOTIFY_SOCKET) protocols, as sd_listen_fds(3) and sd_notify(3)
 * describe them, without linking libsystemd. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd_int.h"
#include "sockit/err.h"
#include "sockit/scope.h"
#include "sockit/sd.h"

#define SHOWN_MAX 32 /* bytes of a hostile value quoted in a message */

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t len, int rc, const char *fmt, ...)
{
    if (err && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* A value for a message: its first SHOWN_MAX bytes, those that are not
 * printable ASCII as '?' (the message stays one line). */
static const char *shown(const char *v, char buf[SHOWN_MAX + 4])
{
    size_t i = 0;
    for (; i < SHOWN_MAX && v[i]; i++) {
        if (v[i] >= 0x20 && v[i] < 0x7f)
            buf[i] = v[i];
        else
            buf[i] = '?';
    }
    /* v[i] is still inside v: v[0..i) are not its end. */
    if (v[i])
        memcpy(buf + i, "...", 4);
    else
        buf[i] = '\0';
    return buf;
}

/* A plain decimal number (digits only, at most 10 of them), or -1. */
static long long parse_number(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 10 || strspn(s, "0123456789") != n)
        return -1;
    return strtoll(s, NULL, 10);
}

/* LISTEN_FDNAMES: exactly n names, each as systemd allows it (printable
 * ASCII but ':', at most SK_SD_NAME_MAX bytes; empty is allowed). Unset:
 * every socket is "unknown", as sd_listen_fds_with_names(3) says. */
static int take_names(const char *names, struct sk_sd_socket *out, size_t n, char *err, size_t len)
{
    if (!names) {
        for (size_t i = 0; i < n; i++)
            memcpy(out[i].name, "unknown", sizeof "unknown");
        return 0;
    }
    size_t count = 1;
    for (const char *p = names; *p; p++)
        count += *p == ':';
    if (count != n)
        return fail(err, len, SK_EPARSE, "LISTEN_FDNAMES has %zu names for %zu sockets", count, n);
    const char *p = names;
    for (size_t i = 0; i < n; i++) {
        size_t k = strcspn(p, ":");
        bool printable = true;
        for (size_t j = 0; j < k; j++)
            printable &= p[j] >= 0x20 && p[j] < 0x7f;
        if (k > SK_SD_NAME_MAX || !printable)
            return fail(err, len, SK_EPARSE,
                        "LISTEN_FDNAMES: name %zu is not valid (over %d bytes, or not printable ASCII)",
                        i + 1, SK_SD_NAME_MAX);
        memcpy(out[i].name, p, k);
        out[i].name[k] = '\0';
        p += k + (p[k] == ':');
    }
    return 0;
}

/* One passed fd: close-on-exec from now on, and what kind of socket it is. */
static int describe(int fd, struct sk_sd_socket *s, char *err, size_t len)
{
    s->fd = fd;
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0)
        return errno == EBADF ? fail(err, len, SK_ERR(EBADF), "fd %d is not open", fd)
                              : fail(err, len, SK_ERR(errno), "fd %d: %s", fd, sk_strerror(SK_ERR(errno)));
    if (!(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
        return fail(err, len, SK_ERR(errno), "fd %d: %s", fd, sk_strerror(SK_ERR(errno)));
    socklen_t sl = sizeof s->type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &s->type, &sl) < 0)
        return errno == ENOTSOCK ? fail(err, len, SK_ERR(ENOTSOCK), "fd %d is not a socket", fd)
                                 : fail(err, len, SK_ERR(errno), "fd %d: %s", fd, sk_strerror(SK_ERR(errno)));
    struct sockaddr_storage ss = {0};
    sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return fail(err, len, SK_ERR(errno), "fd %d: %s", fd, sk_strerror(SK_ERR(errno)));
    s->family = ss.ss_family;
    int accepting = 0;
    sl = sizeof accepting;
    s->listening = getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &sl) == 0 && accepting;
    return 0;
}

/* The protocol itself; the caller unsets the variables after it. */
static int take_sockets(int start, struct sk_sd_socket *out, size_t max, char *err, size_t len)
{
    char buf[SHOWN_MAX + 4];
    const char *pid = getenv("LISTEN_PID");
    if (!pid)
        return 0;
    long long p = parse_number(pid);
    if (p < 1 || p > INT_MAX)
        return fail(err, len, SK_EPARSE, "LISTEN_PID is not a process id: \"%s\"", shown(pid, buf));
    if (p != getpid())
        return 0; /* for another process (systemd's rule): not activated */
    const char *fds = getenv("LISTEN_FDS");
    if (!fds)
        return fail(err, len, SK_EPARSE, "LISTEN_PID is this process but LISTEN_FDS is not set");
    long long n = parse_number(fds);
    if (n < 1)
        return fail(err, len, SK_EPARSE, "LISTEN_FDS is not a number of sockets (1 or more): \"%s\"",
                    shown(fds, buf));
    if ((unsigned long long)n > max)
        return fail(err, len, SK_ETOOBIG, "LISTEN_FDS is %lld: more than %zu sockets", n, max);
    int rc = take_names(getenv("LISTEN_FDNAMES"), out, (size_t)n, err, len);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = describe(start + i, &out[i], err, len);
    return rc < 0 ? rc : (int)n;
}

int sk__sd_listen_fds_at(int start, struct sk_sd_socket *out, size_t max, char *err, size_t len)
{
    int rc = take_sockets(start, out, max, err, len);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return rc;
}

int sk_sd_listen_fds(struct sk_sd_socket *out, size_t max, char *err, size_t errlen)
{
    return sk__sd_listen_fds_at(SK_SD_LISTEN_FDS_START, out, max, err, errlen);
}

int sk_sd_notify(const char *state)
{
    const char *where = getenv("NOTIFY_SOCKET");
    if (!where)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(where);
    if ((where[0] != '/' && where[0] != '@') || n < 2 || n >= sizeof sa.sun_path)
        return SK_EUSAGE;
    memcpy(sa.sun_path, where, n);
    if (where[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract: the name is exactly the n bytes */
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (where[0] == '/'));
    SK_AUTO_CLOSE int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return SK_ERR(errno);
    if (connect(fd, (struct sockaddr *)&sa, sl) < 0)
        return SK_ERR(errno);
    /* Never blocks the caller: a manager whose queue is full gets EAGAIN. */
    if (send(fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        return SK_ERR(errno);
    return 1;
}
