/* Unit tests: scoped release (SK_AUTO) and the sk_with context manager. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "sockit.h"

static int released;

static void count_release(int *v)
{
    if (*v >= 0)
        released++;
}

static int body(int path)
{
    SK_AUTO(count_release) int res = 1;
    (void)res;
    if (path == 1)
        return 10; /* early return */
    if (path == 2)
        goto fail; /* error path */
    return 0; /* normal exit */
fail:
    return -1;
}

Test(scope, release_runs_on_every_path)
{
    released = 0;
    cr_assert_eq(body(0), 0);
    cr_assert_eq(released, 1);
    cr_assert_eq(body(1), 10);
    cr_assert_eq(released, 2);
    cr_assert_eq(body(2), -1);
    cr_assert_eq(released, 3);
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static int open_fd_then(bool fail, int *seen)
{
    SK_AUTO_CLOSE int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    *seen = fd;
    if (fail) {
        errno = EPROTO;
        return -1; /* fd closed here, errno kept */
    }
    return SK_TAKE_FD(fd); /* ownership to the caller */
}

Test(scope, auto_close_and_take_fd)
{
    int seen = -1;
    cr_assert_eq(open_fd_then(true, &seen), -1);
    cr_assert_eq(errno, EPROTO, "cleanup must keep errno");
    cr_assert_not(fd_is_open(seen));
    int fd = open_fd_then(false, &seen);
    cr_assert_eq(fd, seen);
    cr_assert(fd_is_open(fd));
    close(fd);
}

Test(scope, auto_free_accepts_null)
{
    SK_AUTO_FREE char *p = NULL;
    SK_AUTO_FREE char *q = malloc(16);
    cr_assert_not_null(q);
    char *r = SK_TAKE_PTR(q);
    cr_assert_null(q);
    free(r);
    (void)p;
}

struct probe {
    int enters, exits, last_err, verdict;
};

static void *probe_enter(void *self)
{
    ((struct probe *)self)->enters++;
    return (char *)"value";
}

static int probe_exit(void *self, int err)
{
    struct probe *p = self;
    p->exits++;
    p->last_err = err;
    return p->verdict;
}

static const struct sk_with_ops probe_ops = {probe_enter, probe_exit};

static int with_body(struct probe *p, int path)
{
    SK_WITH(w, &probe_ops, p);
    cr_assert_eq(p->enters, 1);
    cr_assert_str_eq((char *)w.value, "value");
    if (path == 1)
        return 5; /* early return: exit from the cleanup, as a failure */
    if (path == 2) {
        w.err = SK_ETIMEDOUT; /* error path: exit sees it */
        return sk_with_exit(&w);
    }
    if (path == 3)
        return sk_with_exit(&w); /* the explicit verdict: success */
    return 0;                    /* falls out without a verdict */
}

Test(with, exit_runs_once_on_each_path_and_sees_the_error)
{
    struct probe p = {0};
    cr_assert_eq(with_body(&p, 3), 0);
    cr_assert_eq(p.exits, 1);
    cr_assert_eq(p.last_err, 0, "only sk_with_exit() with err 0 is a success");

    p = (struct probe){.verdict = SK_ETIMEDOUT}; /* exit propagates */
    cr_assert_eq(with_body(&p, 2), SK_ETIMEDOUT);
    cr_assert_eq(p.exits, 1, "explicit exit, then the cleanup: still one call");
    cr_assert_eq(p.last_err, SK_ETIMEDOUT);

    p = (struct probe){.verdict = 0}; /* exit suppresses */
    cr_assert_eq(with_body(&p, 2), 0);
    cr_assert_eq(p.last_err, SK_ETIMEDOUT);
}

/* Failure is the default: leaving the scope without sk_with_exit(), by a
 * plain return or falling off its end, must never look like success. */
Test(with, scope_left_without_a_verdict_exits_as_a_failure)
{
    struct probe p = {0};
    cr_assert_eq(with_body(&p, 1), 5);
    cr_assert_eq(p.exits, 1);
    cr_assert_eq(p.last_err, SK_WITH_UNFINISHED);

    p = (struct probe){0};
    cr_assert_eq(with_body(&p, 0), 0);
    cr_assert_eq(p.exits, 1);
    cr_assert_eq(p.last_err, SK_WITH_UNFINISHED);
    cr_assert_neq(SK_WITH_UNFINISHED, 0);
}
