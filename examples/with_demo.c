/* The seed's two `with` demos, in C with libsockit's scoped form.
 *
 *   build/examples/with_demo          prints exactly what the seed's Python prints
 *   build/examples/with_demo --error  the body fails; DBManager's exit suppresses
 *                                     the error (returns True in Python), With_work's
 *                                     does not, so the program exits 1
 *
 * SK_WITH(w, ops, self) is `with EXPR as w.value:` for the rest of the block:
 * ops->enter runs now, ops->exit runs on every path out of the block and
 * receives w.err, the error the block ended with. Success must be said:
 * sk_with_exit(&w) with w.err == 0; leaving the block any other way hands
 * exit SK_WITH_UNFINISHED (failure is the default). */
#include <stdio.h>
#include <string.h>

#include "sockit.h"

/* ---- demo 1: class DBManager, whose __exit__ returns True ---- */

static void *db_enter(void *self)
{
    puts("__enter__");
    return self; /* return self */
}

static int db_exit(void *self, int err)
{
    (void)self;
    puts("__exit__");
    if (err)
        printf("(DBManager suppresses: %s)\n", sk_strerror(err));
    return 0; /* return True: any error is suppressed */
}

static const struct sk_with_ops db_manager = {db_enter, db_exit};

static int demo_db(bool fail)
{
    int self = 0;
    SK_WITH(w, &db_manager, &self);
    puts("with demo");
    if (fail)
        w.err = SK_EPROTO; /* the body "raises" */
    return sk_with_exit(&w); /* the verdict: 0, the error was suppressed */
}

/* ---- demo 2: class With_work, whose __exit__ returns None ---- */

static void *work_enter(void *self)
{
    (void)self;
    puts("enter called");
    return "xxt";
}

static int work_exit(void *self, int err)
{
    (void)self;
    puts("exit called");
    return err; /* returns None: an error propagates */
}

static const struct sk_with_ops with_work = {work_enter, work_exit};

static int demo_work(bool fail)
{
    SK_WITH(f, &with_work, NULL);
    puts((const char *)f.value);
    if (fail) {
        f.err = SK_EPROTO;
        return sk_with_exit(&f); /* exit runs before we leave, and sees the error */
    }
    puts("hello with");
    return sk_with_exit(&f); /* the verdict: success, so exit sees 0 */
}

int main(int argc, char **argv)
{
    bool fail = argc > 1 && strcmp(argv[1], "--error") == 0;
    int rc1 = demo_db(fail);
    int rc2 = demo_work(fail);
    if (rc1 || rc2) {
        fprintf(stderr, "with_demo: error propagated: %s\n", sk_strerror(rc1 ? rc1 : rc2));
        return 1;
    }
    return 0;
}
