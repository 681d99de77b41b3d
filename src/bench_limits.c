/* sockit bench: pre-flight checks of the limits a run will hit.
 *
 * A load generator that fails after ten thousand connections with EMFILE
 * or EADDRNOTAVAIL wastes the run and hides the cause; these checks say
 * what is needed and what to change before anything starts. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"
#include "cli.h"

/* fds besides the connections: stdio, epoll and eventfd per thread, slack. */
#define FD_SLACK 32

static int check_nofile(const struct bench_opts *o)
{
    rlim_t need = (rlim_t)o->conns + FD_SLACK + 2u * o->threads;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 0; /* cannot tell: let the run find out */
    if (rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        cli_error("-c %u needs %llu open files, but the hard limit is %llu: raise it "
                  "(ulimit -Hn, or LimitNOFILE= / limits.conf) or lower -c",
                  o->conns, (unsigned long long)need, (unsigned long long)rl.rlim_max);
        return SK_EUSAGE;
    }
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        cli_error("-c %u needs %llu open files; the limit is %llu and raising it failed: %s",
                  o->conns, (unsigned long long)need, (unsigned long long)old, strerror(errno));
        return SK_EUSAGE;
    }
    if (!o->quiet)
        fprintf(stderr, "sockit: bench: raised the open-file limit from %llu to %llu for -c %u\n",
                (unsigned long long)old, (unsigned long long)need, o->conns);
    return 0;
}

/* Every connection to one HOST:PORT needs its own local port. */
static int check_ports(const struct bench_opts *o)
{
    if (o->mode == BENCH_UDP)
        return 0;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (!f)
        return 0;
    unsigned lo = 0, hi = 0;
    int got = fscanf(f, "%u %u", &lo, &hi); // NOLINT(cert-err34-c): kernel-written, checked below
    (void)fclose(f); /* read-only: nothing to lose */
    if (got != 2 || hi < lo)
        return 0;
    unsigned ports = hi - lo + 1;
    if (o->conns > ports) {
        cli_error("-c %u is more than the %u local ports in ip_local_port_range (%u-%u): "
                  "widen it (sysctl net.ipv4.ip_local_port_range) or lower -c",
                  o->conns, ports, lo, hi);
        return SK_EUSAGE;
    }
    if (!o->quiet && o->conns > ports / 2)
        fprintf(stderr, "sockit: bench: warning: -c %u uses over half of the %u local ports; "
                "other programs may fail to connect meanwhile\n", o->conns, ports);
    /* --connect closes with a reset, which leaves no TIME_WAIT on our side;
     * a server that closes first keeps its TIME_WAIT, which costs us no port. */
    return 0;
}

int bench_limits_check(const struct bench_opts *o)
{
    int rc = check_nofile(o);
    if (rc == 0)
        rc = check_ports(o);
    return rc;
}
