/* sockit fetch: what the command writes while the library transfers:
 * response heads, notices, the progress bar, and a body that goes to
 * standard output or to a device or FIFO named by -o (no temporary file
 * can stand in for those, so the bytes go straight there). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "fetch.h"

static void on_tick(int sig)
{
    (void)sig; /* only there to interrupt a blocking call */
}

void fetch_ticks(bool on)
{
    static bool installed;
    if (!installed) { /* also makes a stray SIGALRM harmless */
        struct sigaction sa = {.sa_handler = on_tick}; /* no SA_RESTART */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        installed = true;
    }
    struct itimerval it = {0};
    if (on)
        it.it_value.tv_usec = it.it_interval.tv_usec = FETCH_TICK_MS * 1000;
    setitimer(ITIMER_REAL, &it, NULL);
}

/* Writes n bytes to fd (`what` names it), bounded by --idle-timeout (no
 * progress) and --max-time, and stopped by a signal if `stoppable`.
 * Returns 0 or a negative code with the reason recorded in fc->f. */
static int write_bounded(struct fetch_cli *fc, int fd, const char *p, size_t n,
                         const char *what, bool stoppable)
{
    char doing[PATH_MAX + 16];
    snprintf(doing, sizeof doing, "writing to %s", what);
    uint64_t deadline = sk_fetch_deadline(fc->f);
    int rc = 0;
    fetch_ticks(true);
    for (size_t off = 0; off < n && rc == 0;) {
        if (fetch_cancel.flag && stoppable) {
            rc = sk_fetch_fail_as(fc->f, SK_ERR(ECANCELED), doing);
            break;
        }
        ssize_t k = write(fd, p + off, n - off);
        if (k > 0) {
            off += (size_t)k;
            deadline = sk_fetch_deadline(fc->f);
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) /* inherited O_NONBLOCK */
            poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1, FETCH_TICK_MS);
        else if (k < 0 && errno != EINTR)
            rc = sk_fetch_set_error(fc->f, SK_EWRITE, "write error on %s: %s", what,
                                    strerror(errno));
        if (rc == 0 && deadline && sk_now_ms() >= deadline) /* no progress */
            rc = sk_fetch_fail_as(fc->f, SK_ETIMEDOUT, doing);
    }
    fetch_ticks(false);
    return rc;
}

/* write_bounded, leaving the reason of the transfer as it was: a lost line
 * on standard error is no failure of its own. */
static int write_quiet(struct fetch_cli *fc, int fd, const char *p, size_t n, const char *what,
                       bool stoppable)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", sk_fetch_error(fc->f));
    int rc = write_bounded(fc, fd, p, n, what, stoppable);
    sk_fetch_set_error(fc->f, 0, "%s", msg);
    return rc;
}

void fetch_notice(struct fetch_cli *fc, const char *fmt, ...)
{
    char line[1024] = "sockit: fetch: ";
    size_t n = strlen(line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    n = strlen(line);
    line[n++] = '\n';
    if (fc->held && fetch_held_add(fc->held, FETCH_HELD_ERR, line, n))
        return;
    (void)fflush(stderr); /* stdio's pending bytes first; the line goes by write() below */
    bool off = fetch_board_off(fc, STDERR_FILENO);
    (void)write_quiet(fc, STDERR_FILENO, line, n, "standard error", false);
    fetch_board_back(fc, off);
}

bool fetch_held_add(struct fetch_held *h, enum fetch_held_to to, const char *p, size_t n)
{
    char **text = to == FETCH_HELD_DUMP ? &h->dump : to == FETCH_HELD_OUT ? &h->out : &h->err;
    size_t *len = to == FETCH_HELD_DUMP  ? &h->dump_len
                  : to == FETCH_HELD_OUT ? &h->out_len
                                         : &h->err_len;
    char *grown = realloc(*text, *len + n);
    if (!grown)
        return false;
    memcpy(grown + *len, p, n);
    *text = grown;
    *len += n;
    return true;
}

bool fetch_board_off(struct fetch_cli *fc, int fd)
{
    if (!fc->board_hide || (fd != STDERR_FILENO && !isatty(fd)))
        return false;
    fc->board_hide(fc->tick_arg, true);
    return true;
}

void fetch_board_back(struct fetch_cli *fc, bool off)
{
    if (off)
        fc->board_hide(fc->tick_arg, false);
}

/* A FIFO another user planted in a shared folder (/tmp) would hand them the
 * body. As the kernel's protected_fifos does for O_CREAT, a FIFO in a sticky
 * world-writable folder must be ours or the folder owner's. (Devices need
 * root to create; a pipe behind /dev/stdout is in no folder.) */
static bool planted_fifo(const char *path, const struct stat *st)
{
    if (!S_ISFIFO(st->st_mode) || st->st_uid == geteuid())
        return false;
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash == path ? 1 : slash - path) : 1,
             slash ? path : ".");
    struct stat ds;
    if (stat(dir, &ds) < 0)
        return true; /* cannot tell: refuse */
    return (ds.st_mode & S_ISVTX) && (ds.st_mode & S_IWOTH) && st->st_uid != ds.st_uid;
}

/* Opens -o's device or FIFO. The links were followed when the output was
 * planned: one planted since, or a regular file swapped in, is refused
 * (only a /proc link to a pipe, which no one else can plant, is followed).
 * A FIFO's open waits for a reader: bounded like a read, and by signals. */
static int open_special(struct fetch_cli *fc)
{
    struct sk_fetch *f = fc->f;
    uint64_t deadline = sk_fetch_deadline(f);
    int flags = O_WRONLY | O_CLOEXEC | O_NOCTTY | (fc->out_magic ? 0 : O_NOFOLLOW);
    int fd;
    fetch_ticks(true);
    while ((fd = open(fc->out_path, flags)) < 0 &&
           errno == EINTR && !fetch_cancel.flag && !(deadline && sk_now_ms() >= deadline)) {
        /* woken by the tick: try again until cancelled or out of time */
    }
    int e = errno;
    fetch_ticks(false);
    char doing[PATH_MAX + 16];
    snprintf(doing, sizeof doing, "opening %s", fc->out_path);
    if (fd < 0 && fetch_cancel.flag)
        return sk_fetch_fail_as(f, SK_ERR(ECANCELED), doing);
    if (fd < 0 && e == EINTR)
        return sk_fetch_fail_as(f, SK_ETIMEDOUT, doing);
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) < 0 || S_ISREG(st.st_mode))) {
        close(fd);
        fd = -1;
        e = EEXIST;
    } else if (fd >= 0 && !fc->out_magic && planted_fifo(fc->out_path, &st)) {
        close(fd);
        return sk_fetch_set_error(f, SK_EWRITE,
                                  "refusing %s: a FIFO of another user in a shared folder",
                                  fc->out_path);
    }
    if (fd < 0)
        return sk_fetch_set_error(f, SK_EWRITE, "cannot open %s: %s", fc->out_path, strerror(e));
    fc->out_fd = fd;
    return 0;
}

/* The body begins: open where it goes without a file, and start the bar
 * (for standard output too: it is on standard error, as curl's). */
static int body_begin(struct fetch_cli *fc, const struct sk_fetch_event *ev)
{
    int rc = 0;
    if (fc->out_special) {
        rc = fc->out_fd >= 0 ? 0 : open_special(fc);
    } else if (!fc->out_path) { /* standard output: the head went first, by write() */
        fc->out_fd = STDOUT_FILENO;
        if (fflush(stdout) != 0)
            return sk_fetch_set_error(fc->f, SK_EWRITE, "cannot write to standard output: %s",
                                      strerror(errno));
    }
    fetch_progress_start(&fc->pg,
                         rc == 0 && !fc->silent && !fc->tick && isatty(STDERR_FILENO),
                         ev->total,
                         ev->done);
    return rc;
}

int fetch_on_event(void *arg, const struct sk_fetch_event *ev)
{
    struct fetch_cli *fc = arg;
    fetch_report_event(fc, ev);
    switch (ev->kind) {
    case SK_FETCH_EV_HEAD: {
        int named = fetch_name_head(fc, ev);
        if (named < 0 || fc->hdr_fd < 0)
            return named;
        /* bounded like the body: standard output may be a stalled pipe */
        bool out = fc->hdr_fd == STDOUT_FILENO;
        bool dump = !out && fc->hdr_fd == fc->dump_fd; /* -D FILE */
        if ((out || dump) && fc->heads_held && ev->len <= *fc->heads_room &&
            fetch_held_add(fc->heads_held, out ? FETCH_HELD_OUT : FETCH_HELD_DUMP, ev->data,
                           ev->len)) {
            fc->heads_held->heads_len += ev->len; /* said in the URL's turn */
            *fc->heads_room -= ev->len;
            return 0;
        }
        if (out && fflush(stdout) != 0)
            return sk_fetch_set_error(fc->f, SK_EWRITE, "cannot write to standard output: %s",
                                      strerror(errno));
        bool off = fetch_board_off(fc, fc->hdr_fd);
        int rc;
        if (out)
            rc = write_bounded(fc, fc->hdr_fd, ev->data, ev->len, "standard output", true);
        else if (dump)
            rc = write_bounded(fc, fc->hdr_fd, ev->data, ev->len, fc->dump_path, true);
        else if ((rc = write_quiet(fc, fc->hdr_fd, ev->data, ev->len, "standard error", true)) ==
                 SK_EWRITE)
            rc = 0; /* a lost stderr is no failure */
        fetch_board_back(fc, off);
        return rc;
    }
    case SK_FETCH_EV_BODY_BEGIN:
        return body_begin(fc, ev);
    case SK_FETCH_EV_PROGRESS:
        fetch_progress_update(&fc->pg, ev->done);
        if (fc->tick)
            fc->tick(fc->tick_arg);
        return 0;
    case SK_FETCH_EV_BODY_END:
        fetch_progress_end(&fc->pg);
        return 0;
    case SK_FETCH_EV_NOTICE:
        if (!fc->silent)
            fetch_notice(fc, "%.*s", (int)ev->len, ev->data);
        return 0;
    case SK_FETCH_EV_CONNECTED:
    case SK_FETCH_EV_REUSED:
    case SK_FETCH_EV_TLS:
    case SK_FETCH_EV_PROTOCOL:
    case SK_FETCH_EV_RESOLVED:
    case SK_FETCH_EV_REQUEST: return 0; /* -v's and -w's: fetch_report_event */
    }
    return 0;
}

int fetch_write_out(void *arg, const void *p, size_t n)
{
    struct fetch_cli *fc = arg;
    return write_bounded(fc, fc->out_fd, p, n,
                         fc->out_fd == STDOUT_FILENO ? "standard output" : fc->out_path, true);
}

/* n bytes to fd (what: its name in a message), bounded by the transfer's
 * deadline when one began. */
static int write_fd(struct fetch_cli *fc, int fd, const char *what, const char *p, size_t n)
{
    if (fc->f)
        return write_bounded(fc, fd, p, n, what, true);
    for (size_t off = 0; off < n;) { /* no transfer began: nothing to bound it by */
        ssize_t k = write(fd, p + off, n - off);
        if (k < 0 && errno != EINTR)
            return SK_EWRITE;
        off += k > 0 ? (size_t)k : 0;
    }
    return 0;
}

int fetch_write_stdout(struct fetch_cli *fc, const char *p, size_t n)
{
    if (fflush(stdout) != 0)
        return SK_EWRITE;
    return write_fd(fc, STDOUT_FILENO, "standard output", p, n);
}

int fetch_write_dump(struct fetch_cli *fc, const char *p, size_t n)
{
    return write_fd(fc, fc->dump_fd, fc->dump_path, p, n);
}

void fetch_stderr(struct fetch_cli *fc, const char *p, size_t n)
{
    (void)fflush(stderr);
    if (fc->f)
        (void)write_quiet(fc, STDERR_FILENO, p, n, "standard error", false);
    else
        (void)fwrite(p, 1, n, stderr);
}
