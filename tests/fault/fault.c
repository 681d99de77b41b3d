/* Fault injection for the torture build (make FAULT=1): every function listed
 * in fault.mk is linked with -Wl,--wrap=NAME, so sockit's own calls land here
 * (libc's and OpenSSL's internal calls do not: the counts are deterministic
 * for a single-threaded run). The k-th wrapped call fails once, with the
 * errno a real system gives for that kind of call and descriptor.
 *
 *   SOCKIT_FAULT=k            fail the k-th counted call (unset or 0: none)
 *   SOCKIT_FAULT_ONLY=a,b     count only these functions (or groups: mem,
 *                             net, io, file, loop, thread, tls)
 *   SOCKIT_FAULT_ARM=f[:n]    start counting after the n-th call (default 1)
 *                             of f returned, e.g. accept4 for "mid-load"
 *   SOCKIT_FAULT_COUNT=path   at exit write "calls N", "failed F" (the call
 *                             that was made to fail) and "fds N" (descriptors
 *                             opened since start-up and still open) to path
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

/* __wrap_X and __real_X are bound by the linker (--wrap), not by a header. */
#pragma GCC diagnostic ignored "-Wmissing-prototypes"

/* Each wrapped function: its name and the groups it belongs to. */
#define FAULT_FUNCS(X)                                                                   \
    X(malloc, "mem") X(calloc, "mem") X(realloc, "mem") X(strdup, "mem")                 \
    X(socket, "net") X(bind, "net") X(listen, "net") X(connect, "net")                   \
    X(accept4, "net")                                                                    \
    X(recv, "net,io") X(recvmmsg, "net,io") X(send, "net,io") X(sendmmsg, "net,io")     \
    X(read, "io") X(write, "io") X(pread, "file")                                        \
    X(open, "file") X(openat, "file") X(fopen, "file") X(mkostemp, "file") X(rename, "file")               \
    X(renameat, "file") X(renameat2, "file") X(link, "file") X(linkat, "file") X(fsync, "file") X(ftruncate, "file")           \
    X(fallocate, "file")                                                                 \
    X(epoll_create1, "loop") X(epoll_ctl, "loop") X(eventfd, "loop")                     \
    X(timerfd_create, "loop") X(pthread_create, "thread")                                \
    X(SSL_connect, "tls") X(SSL_do_handshake, "tls") X(SSL_read_ex, "tls")             \
    X(SSL_write_ex, "tls")

#define ENUM(name, groups) F_##name,
enum { FAULT_FUNCS(ENUM) F_COUNT };
#define NAME(name, groups) #name,
static const char *const names[] = {FAULT_FUNCS(NAME)};
#define GROUP(name, groups) groups,
static const char *const groups[] = {FAULT_FUNCS(GROUP)};

static atomic_ulong counted;     /* calls counted so far (eligible and armed) */
static atomic_ulong counted_by[F_COUNT]; /* the same, per function */
static atomic_ulong arm_seen;    /* calls of the arming function so far */
static atomic_int failed = -1;   /* which function was made to fail */
static unsigned long fail_at;    /* k, 0 = never */
static unsigned long arm_after;  /* calls of arm_fn before counting starts */
static int arm_fn = -1;
static _Bool eligible[F_COUNT];
static const char *count_path;
static unsigned char inherited[1024 / 8]; /* fds open at start-up */

/* Is name one of the comma-separated words of list? */
static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

static int find_func(const char *name, size_t n)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strlen(names[i]) == n && strncmp(names[i], name, n) == 0)
            return i;
    return -1;
}

static int open_fds(int note);
static void write_report(int at_exit);
static void report(void);
ssize_t __real_write(int fd, const void *b, size_t n);
int __real_open(const char *p, int fl, ...);

__attribute__((constructor)) static void fault_init(void)
{
    const char *k = getenv("SOCKIT_FAULT");
    const char *only = getenv("SOCKIT_FAULT_ONLY");
    const char *arm = getenv("SOCKIT_FAULT_ARM");
    fail_at = k ? strtoul(k, NULL, 10) : 0;
    count_path = getenv("SOCKIT_FAULT_COUNT");
    for (int i = 0; i < F_COUNT; i++) {
        int hit = !only || !*only || in_list(only, names[i]);
        for (const char *g = groups[i]; !hit && g; g = strchr(g, ',') ? strchr(g, ',') + 1 : NULL) {
            size_t n = strcspn(g, ",");
            char word[16];
            snprintf(word, sizeof word, "%.*s", (int)n, g);
            hit = in_list(only, word);
        }
        eligible[i] = hit;
    }
    if (arm && *arm) {
        size_t n = strcspn(arm, ":");
        arm_fn = find_func(arm, n);
        arm_after = arm[n] == ':' ? strtoul(arm + n + 1, NULL, 10) : 1;
        if (arm_fn < 0) {
            static const char msg[] = "fault: unknown SOCKIT_FAULT_ARM function\n";
            (void)!__real_write(2, msg, sizeof msg - 1);
            _exit(125);
        }
    }
    if (count_path) {
        (void)open_fds(1);
        atexit(report);
    }
}

/* Called after the arming function returned: counts its calls. */
static void armed_by(int fn)
{
    if (fn == arm_fn)
        atomic_fetch_add(&arm_seen, 1);
}

/* Counts a call of fn; true when this call is the one to fail. */
static int should_fail(int fn)
{
    if (!eligible[fn] || (arm_fn >= 0 && atomic_load(&arm_seen) < arm_after))
        return 0;
    atomic_fetch_add(&counted_by[fn], 1);
    unsigned long n = atomic_fetch_add(&counted, 1) + 1;
    if (fail_at == 0 || n != fail_at)
        return 0;
    atomic_store(&failed, fn);
    write_report(0); /* now: a crash after the fault still names the call */
    return 1;
}

/* The errno a real descriptor of this kind gives on a failed read/write. */
static int io_errno(int fd, int writing)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return EBADF;
    if (S_ISSOCK(st.st_mode))
        return writing ? EPIPE : ECONNRESET;
    if (S_ISREG(st.st_mode))
        return writing ? ENOSPC : EIO;
    if (S_ISFIFO(st.st_mode))
        return writing ? EPIPE : EIO;
    if (S_ISCHR(st.st_mode))
        return EIO;
    return EAGAIN; /* eventfd, timerfd: the one error their callers can see */
}

#define FAIL(fn, err, ret)                \
    do {                                  \
        if (should_fail(F_##fn)) {        \
            errno = (err);                \
            return ret;                   \
        }                                 \
    } while (0)

/* --- memory --- */
void *__real_malloc(size_t n);
void *__real_calloc(size_t m, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n) { FAIL(malloc, ENOMEM, NULL); return __real_malloc(n); }
void *__wrap_calloc(size_t m, size_t n) { FAIL(calloc, ENOMEM, NULL); return __real_calloc(m, n); }
void *__wrap_realloc(void *p, size_t n) { FAIL(realloc, ENOMEM, NULL); return __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { FAIL(strdup, ENOMEM, NULL); return __real_strdup(s); }

/* --- sockets --- */
int __real_socket(int d, int t, int p);
int __real_bind(int fd, const struct sockaddr *a, socklen_t l);
int __real_connect(int fd, const struct sockaddr *a, socklen_t l);
int __real_accept4(int fd, struct sockaddr *a, socklen_t *l, int fl);
ssize_t __real_recv(int fd, void *b, size_t n, int fl);
int __real_recvmmsg(int fd, struct mmsghdr *v, unsigned n, int fl, struct timespec *t);
ssize_t __real_send(int fd, const void *b, size_t n, int fl);
int __real_sendmmsg(int fd, struct mmsghdr *v, unsigned n, int fl);

int __wrap_socket(int d, int t, int p) { FAIL(socket, EMFILE, -1); return __real_socket(d, t, p); }
int __wrap_bind(int fd, const struct sockaddr *a, socklen_t l)
{
    FAIL(bind, EADDRINUSE, -1);
    return __real_bind(fd, a, l);
}
int __real_listen(int fd, int backlog);
int __wrap_listen(int fd, int backlog) { FAIL(listen, EADDRINUSE, -1); return __real_listen(fd, backlog); }
int __wrap_connect(int fd, const struct sockaddr *a, socklen_t l)
{
    FAIL(connect, ECONNREFUSED, -1);
    return __real_connect(fd, a, l);
}
int __wrap_accept4(int fd, struct sockaddr *a, socklen_t *l, int fl)
{
    FAIL(accept4, EMFILE, -1);
    int r = __real_accept4(fd, a, l, fl);
    if (r >= 0)
        armed_by(F_accept4);
    return r;
}
ssize_t __wrap_recv(int fd, void *b, size_t n, int fl)
{
    FAIL(recv, ECONNRESET, -1);
    return __real_recv(fd, b, n, fl);
}
int __wrap_recvmmsg(int fd, struct mmsghdr *v, unsigned n, int fl, struct timespec *t)
{
    FAIL(recvmmsg, ENOMEM, -1);
    return __real_recvmmsg(fd, v, n, fl, t);
}
ssize_t __wrap_send(int fd, const void *b, size_t n, int fl)
{
    FAIL(send, ECONNRESET, -1);
    return __real_send(fd, b, n, fl);
}
int __wrap_sendmmsg(int fd, struct mmsghdr *v, unsigned n, int fl)
{
    FAIL(sendmmsg, ENOBUFS, -1);
    return __real_sendmmsg(fd, v, n, fl);
}

/* --- plain descriptors --- */
ssize_t __real_read(int fd, void *b, size_t n);
ssize_t __real_write(int fd, const void *b, size_t n);
ssize_t __wrap_read(int fd, void *b, size_t n)
{
    FAIL(read, io_errno(fd, 0), -1);
    return __real_read(fd, b, n);
}
ssize_t __real_pread(int fd, void *b, size_t n, off_t off);
ssize_t __wrap_pread(int fd, void *b, size_t n, off_t off)
{
    FAIL(pread, EIO, -1);
    return __real_pread(fd, b, n, off);
}
ssize_t __wrap_write(int fd, const void *b, size_t n)
{
    FAIL(write, io_errno(fd, 1), -1);
    return __real_write(fd, b, n);
}

/* --- files --- */
int __real_open(const char *p, int fl, ...);
FILE *__real_fopen(const char *p, const char *m);
int __real_mkostemp(char *t, int fl);
int __real_openat(int d, const char *p, int fl, ...);
int __real_rename(const char *a, const char *b);
int __real_renameat(int da, const char *a, int db, const char *b);
int __real_linkat(int da, const char *a, int db, const char *b, int fl);
int __real_renameat2(int da, const char *a, int db, const char *b, unsigned fl);
int __real_link(const char *a, const char *b);
int __real_fsync(int fd);
int __real_ftruncate(int fd, off_t n);
int __real_fallocate(int fd, int mode, off_t off, off_t n);

int __wrap_open(const char *p, int fl, ...)
{
    mode_t mode = 0;
    if (fl & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, fl);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    FAIL(open, EMFILE, -1);
    return __real_open(p, fl, mode);
}
int __wrap_openat(int d, const char *p, int fl, ...)
{
    mode_t mode = 0;
    if (fl & (O_CREAT | O_TMPFILE)) {
        va_list ap;
        va_start(ap, fl);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    FAIL(openat, EMFILE, -1);
    return __real_openat(d, p, fl, mode);
}
int __wrap_renameat(int da, const char *a, int db, const char *b)
{
    FAIL(renameat, EIO, -1);
    return __real_renameat(da, a, db, b);
}
int __wrap_linkat(int da, const char *a, int db, const char *b, int fl)
{
    FAIL(linkat, ENOSPC, -1);
    return __real_linkat(da, a, db, b, fl);
}
FILE *__wrap_fopen(const char *p, const char *m) { FAIL(fopen, EMFILE, NULL); return __real_fopen(p, m); }
int __wrap_mkostemp(char *t, int fl) { FAIL(mkostemp, EMFILE, -1); return __real_mkostemp(t, fl); }
int __wrap_rename(const char *a, const char *b) { FAIL(rename, EIO, -1); return __real_rename(a, b); }
int __wrap_renameat2(int da, const char *a, int db, const char *b, unsigned fl)
{
    FAIL(renameat2, EIO, -1);
    return __real_renameat2(da, a, db, b, fl);
}
int __wrap_link(const char *a, const char *b) { FAIL(link, ENOSPC, -1); return __real_link(a, b); }
int __wrap_fsync(int fd) { FAIL(fsync, EIO, -1); return __real_fsync(fd); }
int __wrap_ftruncate(int fd, off_t n) { FAIL(ftruncate, EIO, -1); return __real_ftruncate(fd, n); }
int __wrap_fallocate(int fd, int mode, off_t off, off_t n)
{
    FAIL(fallocate, ENOSPC, -1);
    return __real_fallocate(fd, mode, off, n);
}

/* --- event loop and threads --- */
int __real_epoll_create1(int fl);
int __real_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev);
int __real_eventfd(unsigned v, int fl);
int __real_timerfd_create(int c, int fl);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg);

int __wrap_epoll_create1(int fl) { FAIL(epoll_create1, EMFILE, -1); return __real_epoll_create1(fl); }
int __wrap_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
    /* ENOMEM for an add or a change; a delete does not allocate. */
    if (op != EPOLL_CTL_DEL)
        FAIL(epoll_ctl, ENOMEM, -1);
    return __real_epoll_ctl(ep, op, fd, ev);
}
int __wrap_eventfd(unsigned v, int fl) { FAIL(eventfd, EMFILE, -1); return __real_eventfd(v, fl); }
int __wrap_timerfd_create(int c, int fl) { FAIL(timerfd_create, EMFILE, -1); return __real_timerfd_create(c, fl); }
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*f)(void *), void *arg)
{
    if (should_fail(F_pthread_create))
        return EAGAIN; /* pthreads return the error, errno is untouched */
    return __real_pthread_create(t, a, f, arg);
}

/* --- TLS: a failure is an SSL error on the thread's queue, as OpenSSL
 * reports a bad record or an internal error (SSL_get_error: SSL_ERROR_SSL). */
int __real_SSL_connect(SSL *s);
int __real_SSL_do_handshake(SSL *s);
int __real_SSL_read_ex(SSL *s, void *b, size_t n, size_t *got);
int __real_SSL_write_ex(SSL *s, const void *b, size_t n, size_t *put);

static int ssl_fail(int fn)
{
    if (!should_fail(fn))
        return 0;
    ERR_raise(ERR_LIB_SSL, SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC);
    return 1;
}
int __wrap_SSL_connect(SSL *s) { return ssl_fail(F_SSL_connect) ? -1 : __real_SSL_connect(s); }
int __wrap_SSL_do_handshake(SSL *s)
{
    return ssl_fail(F_SSL_do_handshake) ? -1 : __real_SSL_do_handshake(s);
}
int __wrap_SSL_read_ex(SSL *s, void *b, size_t n, size_t *got)
{
    return ssl_fail(F_SSL_read_ex) ? 0 : __real_SSL_read_ex(s, b, n, got);
}
int __wrap_SSL_write_ex(SSL *s, const void *b, size_t n, size_t *put)
{
    return ssl_fail(F_SSL_write_ex) ? 0 : __real_SSL_write_ex(s, b, n, put);
}

/* --- the report at exit --- */
/* Counts the descriptors open now that were not open at start-up; with
 * note set, records the ones open now as the start-up set instead. */
static int open_fds(int note)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == dirfd(d))
            continue;
        int known = fd < 1024 && (inherited[fd / 8] & (1u << fd % 8));
        if (note && fd < 1024)
            inherited[fd / 8] |= (unsigned char)(1u << fd % 8);
        n += !known;
    }
    closedir(d);
    return n;
}

/* "failed F" when the fault fires; at exit also "calls N", "fds N" and
 * "by F=N ..." (the counted calls of each function called). */
static void write_report(int at_exit)
{
    char buf[2048];
    if (!count_path)
        return;
    int f = atomic_load(&failed);
    int n = snprintf(buf, sizeof buf, "failed %s\n", f >= 0 ? names[f] : "-");
    if (at_exit) {
        n += snprintf(buf + n, sizeof buf - (size_t)n, "calls %lu\nfds %d\nby",
                      atomic_load(&counted), open_fds(0));
        for (int i = 0; i < F_COUNT; i++)
            if (atomic_load(&counted_by[i]) && n < (int)sizeof buf)
                n += snprintf(buf + n, sizeof buf - (size_t)n, " %s=%lu", names[i],
                              atomic_load(&counted_by[i]));
        n += n < (int)sizeof buf ? snprintf(buf + n, sizeof buf - (size_t)n, "\n") : 0;
        if (n > (int)sizeof buf)
            n = (int)sizeof buf;
    }
    int fd = __real_open(count_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    (void)!__real_write(fd, buf, (size_t)n);
    close(fd);
}

static void report(void)
{
    write_report(1);
}
