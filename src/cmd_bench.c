/* sockit bench: a load generator for the greeting protocol (and, raw, for
 * any request/reply protocol). This file runs the show: options, limits,
 * worker threads, the live line, the report. The load itself is generated
 * in bench_tcp.c and bench_udp.c, one event loop per thread, in the manner
 * of redis-benchmark on ae. */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"
#include "reply.h"

#define POLL_MS 50
#define TICK_MS 100 /* workers: timeouts, the live line's counters */

static struct bench_shared *g_shared; /* for the signal handler only */

static void on_signal(int sig)
{
    if (g_shared) /* lock-free atomics: async-signal-safe */
        atomic_store(sig == SIGUSR1 ? &g_shared->probe_now : &g_shared->stop, true);
}

static int resolve(const struct bench_opts *o, struct bench_shared *sh)
{
    struct addrinfo *ai = NULL;
    int rc = sk_endpoint_resolve(&o->ep, o->mode == BENCH_UDP ? SOCK_DGRAM : SOCK_STREAM, 0, &ai);
    if (rc == SK_ERESOLVE)
        cli_error("could not resolve host %s", o->ep.host);
    else if (rc < 0)
        cli_error("cannot resolve %s: %s", o->ep.host, cli_strerror(rc));
    if (rc < 0)
        return rc;
    memcpy(&sh->addr, ai->ai_addr, ai->ai_addrlen);
    sh->addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

/* Splits -c, --rate and -n between the workers and prepares each. *touched
 * is how many workers the release must see: those set up, and the one that
 * failed half-way (its fields are each either NULL or valid). */
static int workers_init(const struct bench_opts *o, struct bench_shared *sh,
                        struct bench_worker *ws, unsigned *touched)
{
    for (unsigned i = 0; i < o->threads; i++) {
        struct bench_worker *w = &ws[i];
        *touched = i + 1;
        w->pace.fd = -1;
        w->framing_seen = -1;
        w->o = o;
        w->sh = sh;
        w->id = i;
        w->nconns = o->conns / o->threads + (i < o->conns % o->threads);
        w->nprobe = o->probe / o->threads + (i < o->probe % o->threads); /* <= nconns */
        w->rate = o->rate * w->nconns / o->conns;
        w->has_quota = o->requests > 0;
        w->quota = o->requests / o->threads + (i < o->requests % o->threads);
        int rc = 0;
        w->loop = sk_loop_new(&rc);
        if (!w->loop)
            return rc;
        if ((rc = sk_hist_init(&w->lat)) < 0 || (rc = sk_hist_init(&w->svc)) < 0)
            return rc;
        rc = o->mode == BENCH_UDP ? bench_udp_init(w) : bench_tcp_init(w);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static void workers_free(const struct bench_opts *o, struct bench_worker *ws, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct bench_worker *w = &ws[i];
        if (o->mode == BENCH_UDP)
            bench_udp_free(w);
        else
            bench_tcp_free(w);
        sk_hist_free(&w->lat);
        sk_hist_free(&w->svc);
        if (w->loop && sk_loop_free(w->loop) < 0)
            cli_error("internal error: worker %u left handles registered", i);
    }
}

void bench_timer_start(struct bench_worker *w, struct sk_timer *t, uint64_t delay_ms,
                       sk_timer_cb cb)
{
    sk_timer_start(w->loop, t, delay_ms, cb);
}

void bench_publish(struct bench_worker *w)
{
    atomic_store_explicit(&w->pub_replies, w->st.replies, memory_order_relaxed);
    atomic_store_explicit(&w->pub_errors, bench_errors_total(&w->st), memory_order_relaxed);
}

static void tick_cb(struct sk_loop *loop, struct sk_timer *t)
{
    (void)loop;
    struct bench_worker *w = SK_CONTAINER_OF(t, struct bench_worker, tick);
    bench_publish(w);
    bool stop = atomic_load(&w->sh->stop);
    uint64_t now = sk_now_ns(), limit = (uint64_t)(w->o->timeout_s * 1e9);
    if (w->o->mode == BENCH_UDP)
        bench_udp_tick(w, stop, now, limit);
    else
        bench_tcp_tick(w, stop, now, limit);
    if (!w->finishing)
        bench_timer_start(w, t, TICK_MS, tick_cb);
}

void bench_tick_start(struct bench_worker *w)
{
    bench_timer_start(w, &w->tick, TICK_MS, tick_cb);
}

static void *worker_main(void *arg)
{
    struct bench_worker *w = arg;
    if (w->o->mode == BENCH_UDP)
        bench_udp_run(w);
    else
        bench_tcp_run(w);
    atomic_store(&w->done, true);
    return NULL;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* EINTR (a signal) just ends the nap early */
}

/* Waits for the workers, printing the live line and the idle-mode notice. */
static void watch(const struct bench_opts *o, struct bench_shared *sh, struct bench_worker *ws)
{
    uint64_t last_print = sh->t0_ns, last_replies = 0;
    bool held = false, probed = false;
    for (;;) {
        unsigned done = 0, settled = 0, probes_over = 0;
        uint64_t replies = 0, errors = 0;
        for (unsigned i = 0; i < o->threads; i++) {
            done += atomic_load(&ws[i].done);
            probes_over += atomic_load(&ws[i].pub_probed); /* after done: set before it */
            settled += atomic_load(&ws[i].pub_settled);
            replies += atomic_load_explicit(&ws[i].pub_replies, memory_order_relaxed);
            errors += atomic_load_explicit(&ws[i].pub_errors, memory_order_relaxed);
        }
        if (o->probe && !probed && probes_over == o->threads) {
            probed = true;
            fprintf(stderr, "sockit: bench: probe: %llu of %u answered\n",
                    (unsigned long long)replies, o->probe);
        }
        if (done == o->threads)
            return;
        if (o->mode == BENCH_IDLE && !held && settled == o->threads) {
            held = true;
            fprintf(stderr, "sockit: bench: holding connections for %.3g s\n", o->idle_s);
        }
        uint64_t now = sk_now_ns();
        if (o->live && o->mode != BENCH_IDLE && now - last_print >= 1000000000u) {
            double dt = (double)(now - last_print) / 1e9;
            fprintf(stderr, "[%6.1fs] %12.1f/s  total %llu  errors %llu%s\n",
                    (double)(now - sh->t0_ns) / 1e9, (double)(replies - last_replies) / dt,
                    (unsigned long long)replies, (unsigned long long)errors,
                    now < sh->measure_ns ? "  (warm-up)" : "");
            last_print = now;
            last_replies = replies;
        }
        sleep_ms(POLL_MS);
    }
}

/* The wall clock (microseconds since the epoch) at the sk_now_ns() time t,
 * from one reading of both clocks at t0: a result's window can then be
 * lined up with another host's (bench merge). */
static int64_t wall_us(const struct bench_shared *sh, int64_t wall0_us, uint64_t t)
{
    return wall0_us + (int64_t)(t / 1000) - (int64_t)(sh->t0_ns / 1000);
}

static void collect(const struct bench_opts *o, const struct bench_shared *sh,
                    struct bench_worker *ws, struct bench_result *r, uint64_t stopped_ns,
                    int64_t wall0_us)
{
    uint64_t first = 0, last = 0, hold_start = 0;
    double hold = 0;
    for (unsigned i = 0; i < o->threads; i++) {
        struct bench_worker *w = &ws[i];
        sk_hist_merge(&r->lat, &w->lat);
        sk_hist_merge(&r->svc, &w->svc);
        r->st.sent += w->st.sent;
        r->st.replies += w->st.replies;
        for (int k = 0; k < BERR__COUNT; k++)
            r->st.errors[k] += w->st.errors[k];
        r->st.connects += w->st.connects;
        r->st.bytes_in += w->st.bytes_in;
        r->st.bytes_out += w->st.bytes_out;
        r->st.open += w->st.open;
        r->st.sessions_failed += w->st.sessions_failed;
        r->st.reconnects += w->st.reconnects;
        r->st.resumed += w->st.resumed;
        r->gave_up |= w->gave_up;
        if (w->first_ns && (first == 0 || w->first_ns < first))
            first = w->first_ns;
        if (w->last_ns > last)
            last = w->last_ns;
        if (w->hold_start_ns > hold_start)
            hold_start = w->hold_start_ns;
        if (w->hold_end_ns > w->hold_start_ns && w->hold_start_ns)
            hold += (double)(w->hold_end_ns - w->hold_start_ns) / 1e9 / o->threads;
    }
    r->interrupted = atomic_load(&sh->stop);
    r->sources = 1;
    if (o->mode == BENCH_IDLE) {
        r->open_s = hold_start ? (double)(hold_start - sh->t0_ns) / 1e9 : 0;
        r->hold_s = hold;
        r->elapsed_s = hold;
        r->start_us = wall_us(sh, wall0_us, hold_start ? hold_start : sh->t0_ns);
        r->end_us = r->start_us + (int64_t)(hold * 1e6);
        r->common_start_us = r->start_us;
        r->common_end_us = r->end_us;
        return;
    }
    uint64_t begin = first > sh->measure_ns ? first : sh->measure_ns;
    uint64_t end = sh->end_ns && !r->interrupted ? sh->end_ns : last;
    if (sh->end_ns && r->interrupted && stopped_ns < sh->end_ns)
        end = stopped_ns;
    if (first == 0)
        end = begin;
    if (end < begin)
        end = begin;
    r->elapsed_s = (double)(end - begin) / 1e9;
    r->throughput = r->elapsed_s > 0 ? (double)r->st.replies / r->elapsed_s : 0;
    r->start_us = r->common_start_us = wall_us(sh, wall0_us, begin);
    r->end_us = r->common_end_us = wall_us(sh, wall0_us, end);
}

/* A run that gave up could not work: its status is that of its one cause,
 * where every error was of one class (all timeouts: 9, as a client's); a
 * mix is 1. *what: the cause in words, or "". */
static int gave_up_status(const struct bench_stats *st, const char **what)
{
    static const struct {
        enum bench_err cls;
        int status;
        const char *what;
    } causes[] = {{BERR_TIMEOUT, EXIT_TIMEOUT, ", all timed out"},
                  {BERR_PROTOCOL, EXIT_PROTO, ", all wrong replies"},
                  {BERR_CONNECT, EXIT_CONNECT, ", all failed connects"}};
    uint64_t total = bench_errors_total(st);
    *what = "";
    for (size_t i = 0; i < sizeof causes / sizeof causes[0]; i++)
        if (total && st->errors[causes[i].cls] == total) {
            *what = causes[i].what;
            return causes[i].status;
        }
    return EXIT_FAIL;
}

static int run(const struct bench_opts *o, struct bench_shared *sh, struct bench_worker *ws)
{
    sh->t0_ns = sk_now_ns();
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    int64_t wall0_us = (int64_t)rt.tv_sec * 1000000 + rt.tv_nsec / 1000;
    sh->measure_ns = sh->t0_ns + (uint64_t)(o->warmup_s * 1e9);
    if (!o->requests && o->mode != BENCH_IDLE)
        sh->end_ns = sh->measure_ns + (uint64_t)(o->duration_s * 1e9);
    unsigned started = 0;
    int rc = 0;
    for (; started < o->threads; started++) {
        rc = pthread_create(&ws[started].thread, NULL, worker_main, &ws[started]);
        if (rc != 0) {
            cli_error("cannot start thread: %s", strerror(rc));
            atomic_store(&sh->stop, true);
            break;
        }
    }
    if (rc == 0)
        watch(o, sh, ws);
    uint64_t stopped = sk_now_ns();
    for (unsigned i = 0; i < started; i++)
        pthread_join(ws[i].thread, NULL);
    if (rc != 0)
        return EXIT_FAIL;
    for (unsigned i = 0; i < o->threads; i++)
        if (ws[i].framing_seen >= 0) {
            cli_error("%s: %s", o->target,
                      reply_framing_advice((enum sk_framing)ws[i].framing_seen));
            return EXIT_PROTO;
        }
    for (unsigned i = 0; i < o->threads; i++)
        if (ws[i].fatal) {
            bool tls = ws[i].fatal == SK_ETLS || ws[i].fatal == SK_ETLSVERIFY;
            cli_error("%s: %s", ws[i].fatal_what,
                      tls && ws[i].tls_err[0] ? ws[i].tls_err : cli_strerror(ws[i].fatal));
            return cli_exit_status(ws[i].fatal);
        }
    struct bench_result r = {0};
    if (sk_hist_init(&r.lat) < 0 || sk_hist_init(&r.svc) < 0) {
        sk_hist_free(&r.lat);
        cli_error("out of memory");
        return EXIT_FAIL;
    }
    collect(o, sh, ws, &r, stopped, wall0_us);
    const char *cause;
    int gave_up = gave_up_status(&r.st, &cause);
    if (r.gave_up)
        cli_error("gave up: every connection kept failing (%llu errors%s); "
                  "is the target a %s server?", (unsigned long long)bench_errors_total(&r.st),
                  cause, o->raw ? "matching" : "greeting-protocol, same --framing,");
    /* No measured request at all (e.g. every connection still waiting for
     * a greeting in the other framing when -d ended) is no clean run. */
    bool nothing = o->mode != BENCH_IDLE && r.st.sent == 0 && !r.interrupted && !r.gave_up;
    if (nothing)
        cli_error("nothing was measured: no request was sent in the measured window "
                  "(%llu connections made); is the target a %s server?",
                  (unsigned long long)r.st.connects,
                  o->raw ? "matching" : "greeting-protocol, same --framing,");
    if (o->json)
        bench_report_json(stdout, o, &r);
    else
        bench_report_text(o, &r);
    bool clean = bench_errors_total(&r.st) == 0 && !r.interrupted && !r.gave_up && !nothing;
    if (o->mode == BENCH_IDLE) /* --probe: every one sent and answered */
        clean = clean && r.st.open == o->conns && r.st.replies == o->probe;
    sk_hist_free(&r.lat);
    sk_hist_free(&r.svc);
    if (!cli_stdout_ok())
        return EXIT_FAIL;
    if (clean)
        return EXIT_OK;
    return r.gave_up ? gave_up : EXIT_FAIL;
}

int cmd_bench(int argc, char **argv)
{
    cli_reserve_stdio();
    if (argc >= 2 && strcmp(argv[1], "merge") == 0)
        return bench_merge_main(argc - 1, argv + 1);
    struct bench_opts o;
    int rc = bench_parse(argc, argv, &o);
    if (rc != 0) {
        bench_opts_free(&o);
        return rc == CLI_DONE ? EXIT_OK : rc;
    }
    struct bench_shared sh = {0};
    struct bench_worker *ws = NULL;
    unsigned touched = 0;
    if (match_prepare(&o.reply) < 0) {
        cli_error("out of memory");
        rc = EXIT_FAIL;
        goto out;
    }
    if (bench_limits_check(&o) < 0) {
        rc = EXIT_FAIL;
        goto out;
    }
    if ((rc = resolve(&o, &sh)) < 0) {
        rc = cli_exit_status(rc);
        goto out;
    }
    if (o.tls.on && (rc = cli_tls_ctx_new(&o.tls, o.quiet, &sh.tls)) != 0)
        goto out;
    sh.tls_name = cli_tls_name(&o.tls, o.ep.host);
    ws = calloc(o.threads, sizeof *ws);
    if (!ws) {
        cli_error("out of memory");
        rc = EXIT_FAIL;
        goto out;
    }
    rc = workers_init(&o, &sh, ws, &touched);
    if (rc < 0) {
        cli_error("cannot set up: %s", cli_strerror(rc));
        rc = EXIT_FAIL;
        goto out;
    }
    g_shared = &sh;
    struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct sigaction usr1 = {.sa_handler = on_signal}; /* not reset: a second one is harmless */
    sigemptyset(&usr1.sa_mask);
    if (o.probe)
        sigaction(SIGUSR1, &usr1, NULL);
    rc = run(&o, &sh, ws);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (o.probe)
        signal(SIGUSR1, SIG_DFL);
    g_shared = NULL;
out:
    if (ws)
        workers_free(&o, ws, touched);
    free(ws);
    sk_tls_ctx_free(sh.tls); /* after every stream's reference */
    bench_opts_free(&o);
    return rc;
}
