/* sk_stream_connect_list: Happy Eyeballs on the loop. The plan (order and
 * pacing) is addr_int.h's, the same as sk_connect_until's; here each
 * pending attempt is an io of its own and the pacing a timer, held in an
 * allocation that lives only while the stream connects. The winner's fd
 * becomes the stream's; the group's connect deadline bounds the whole. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr_int.h"
#include "alloc_int.h"
#include "sockit/err.h"
#include "stream_int.h"

struct he_attempt {
    struct sk_io io;
    struct sk__he_run *run;
};

struct sk__he_run {
    struct sk__he plan;
    struct sk_stream *s;
    struct sk_timer timer; /* the next attempt is due */
    unsigned live;
    struct he_attempt att[SK__HE_MAX];
};

void sk__stream_he_free(struct sk_stream *s)
{
    struct sk__he_run *run = s->x->he;
    if (!run)
        return;
    struct sk_loop *loop = s->g->loop;
    for (unsigned i = 0; i < SK__HE_MAX; i++)
        if (run->att[i].io.active)
            sk_io_close(loop, &run->att[i].io);
    sk_timer_stop(loop, &run->timer);
    free(run);
    s->x->he = NULL;
}

/* fd connected: it becomes the stream's, the other attempts end. */
static void he_won(struct sk__he_run *run, int fd)
{
    struct sk_stream *s = run->s;
    struct sk_loop *loop = s->g->loop;
    sk__stream_he_free(s); /* closes the losers; fd is no attempt's any more */
    int rc = sk_io_start(loop, &s->io, fd, 0, sk__stream_io_cb);
    if (rc < 0) {
        close(fd);
        s->io.fd = -1;
        sk__stream_setup_fail(s, rc, SK_CLOSE_ERROR);
        return;
    }
    s->connecting = false;
    sk__stream_connect_ok(s);
}

static void he_pump(struct sk__he_run *run);

static void he_io_cb(struct sk_loop *loop, struct sk_io *io, unsigned events)
{
    (void)events;
    struct he_attempt *a = SK_CONTAINER_OF(io, struct he_attempt, io);
    struct sk__he_run *run = a->run;
    struct sk_stream_group *g = run->s->g;
    int rc = sk__connect_result(io->fd);
    if (rc == 0) {
        int fd = io->fd;
        sk_io_stop(loop, io);
        io->fd = -1;
        run->live--;
        he_won(run, fd);
    } else {
        sk_io_close(loop, io);
        run->live--;
        sk__he_failed(&run->plan, rc);
        he_pump(run);
    }
    sk__stream_group_reap(g);
}

static void he_timer_cb(struct sk_loop *loop, struct sk_timer *t)
{
    (void)loop;
    struct sk__he_run *run = SK_CONTAINER_OF(t, struct sk__he_run, timer);
    struct sk_stream_group *g = run->s->g;
    he_pump(run);
    sk__stream_group_reap(g);
}

/* Starts the attempts that are due; ends the connect when none is left. */
static void he_pump(struct sk__he_run *run)
{
    struct sk_stream *s = run->s;
    struct sk_loop *loop = s->g->loop;
    for (;;) {
        bool pending;
        int fd = sk__he_step(&run->plan, sk_now_ms(), run->live > 0, &pending);
        if (fd == SK_EAGAIN_MORE)
            break;
        if (fd < 0)
            continue; /* failed at once: the next one now */
        if (!pending) {
            he_won(run, fd);
            return;
        }
        struct he_attempt *a = NULL;
        for (unsigned i = 0; i < SK__HE_MAX && !a; i++)
            if (!run->att[i].io.active)
                a = &run->att[i];
        int rc = a ? sk_io_start(loop, &a->io, fd, SK_WRITE, he_io_cb) : SK_ERR(EMFILE);
        if (rc < 0) {
            close(fd);
            sk__he_failed(&run->plan, rc);
            continue;
        }
        a->run = run;
        run->live++;
    }
    if (run->live == 0) {
        char text[128];
        snprintf(text, sizeof text, "connect: %s", sk_strerror(run->plan.last));
        sk__stream_set_error(s, text);
        sk__stream_setup_fail(s, run->plan.last, SK_CLOSE_RESET);
        return;
    }
    if (sk__he_more(&run->plan))
        sk_timer_start_at(loop, &run->timer, run->plan.next_start, he_timer_cb);
}

int sk_stream_connect_list(struct sk_stream_group *g, struct sk_stream *s,
                           const struct addrinfo *ai)
{
    memset(s, 0, sizeof *s);
    s->io.fd = -1;
    struct sk__he_run *run = sk__calloc(1, sizeof *run);
    if (!run)
        return SK_ERR(ENOMEM);
    if (sk__he_init(&run->plan, ai) == 0) {
        free(run);
        return SK_EUSAGE;
    }
    if (!(s->x = sk__calloc(1, sizeof *s->x))) {
        free(run);
        return SK_ERR(ENOMEM);
    }
    s->x->he = run;
    run->s = s;
    for (unsigned i = 0; i < SK__HE_MAX; i++)
        run->att[i].io.fd = -1;
    sk__stream_attach(g, s);
    s->connecting = true;
    sk__stream_setup_enter(s, SK__SETUP_CONNECT);
    /* The first attempt starts from the loop: the outcome (even a refusal
     * at once) is the connected callback's, never this call's. */
    sk_timer_start_at(g->loop, &run->timer, sk_loop_now(g->loop), he_timer_cb);
    return 0;
}
