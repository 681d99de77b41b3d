/* sockit client: the one wait of the TCP and UDP halves (see client.h).
 * Each step (a greeting, a send, a reply, a datagram's attempt) runs the
 * loop until a callback ends it or its deadline passes. */
#include <errno.h>

#include "client.h"

/* Deadlines are kept on sk_now_ms() and armed relative to the loop's
 * clock: that clock is refreshed only by the loop's own iterations, and
 * between steps we block on stdin and stdout, so it may be stale here. A
 * timer that fires early (the clock was refreshed under it) is moved to
 * the real time that is left. */
static void wait_timer_cb(struct sk_loop *loop, struct sk_timer *t);

static void arm(struct client_wait *w)
{
    uint64_t due = w->early && w->early < w->deadline ? w->early : w->deadline;
    uint64_t now = sk_now_ms();
    uint64_t left = due > now ? due - now : 0;
    sk_timer_start_at(w->loop, &w->timer, sk_loop_now(w->loop) + left, wait_timer_cb);
}

static void wait_timer_cb(struct sk_loop *loop, struct sk_timer *t)
{
    (void)loop;
    struct client_wait *w = SK_CONTAINER_OF(t, struct client_wait, timer);
    uint64_t now = sk_now_ms();
    if (w->early && now >= w->early)
        client_wait_done(w, w->early_rc);
    else if (now >= w->deadline)
        client_wait_done(w, SK_ETIMEDOUT);
    else
        arm(w);
}

int client_wait_init(struct client_wait *w)
{
    int rc = 0;
    *w = (struct client_wait){.loop = sk_loop_new(&rc)};
    return w->loop ? 0 : rc;
}

void client_wait_fini(struct client_wait *w)
{
    if (!w->loop)
        return;
    sk_timer_stop(w->loop, &w->timer);
    sk_loop_free(w->loop); /* every handle was stopped by its owner first */
    w->loop = NULL;
}

void client_wait_begin(struct client_wait *w, uint64_t deadline)
{
    w->done = false;
    w->rc = 0;
    w->deadline = deadline;
    w->early = 0;
}

void client_wait_done(struct client_wait *w, int rc)
{
    if (w->done)
        return;
    w->done = true;
    w->rc = rc;
    sk_timer_stop(w->loop, &w->timer);
    if (w->running)
        sk_loop_stop(w->loop);
}

void client_wait_early(struct client_wait *w, uint64_t until, int rc)
{
    if (until && (w->early || until >= w->deadline))
        return; /* set already, or the deadline comes first (a timeout) */
    if (!until && !w->early)
        return;
    w->early = until;
    w->early_rc = rc;
    if (w->running && !w->done)
        arm(w);
}

int client_wait_run(struct client_wait *w)
{
    while (!w->done) {
        arm(w);
        w->running = true;
        int rc = sk_loop_run(w->loop);
        w->running = false;
        if (rc < 0) {
            sk_timer_stop(w->loop, &w->timer);
            return rc;
        }
    }
    return w->rc;
}
