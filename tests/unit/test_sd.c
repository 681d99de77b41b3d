/* Unit tests: socket activation (sk_sd_listen_fds: the LISTEN_* environment
 * read strictly, the passed fds described) with the sockets at fds of the
 * test's choosing; readiness (sk_sd_notify: a datagram on NOTIFY_SOCKET);
 * the server engine's inherited sockets (served, owned, left listening). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "alloc_int.h"
#include "sd_int.h"
#include "sockit.h"

#define START 200 /* the passed fds: clear of the runner's own */

static void set_pid_self(void)
{
    char b[24];
    snprintf(b, sizeof b, "%d", (int)getpid());
    cr_assert_eq(setenv("LISTEN_PID", b, 1), 0);
}

/* Sets or (value NULL) unsets a variable. */
static void put(const char *name, const char *value)
{
    if (value)
        cr_assert_eq(setenv(name, value, 1), 0);
    else
        cr_assert_eq(unsetenv(name), 0);
}

static void assert_env_cleared(void)
{
    cr_assert_null(getenv("LISTEN_PID"));
    cr_assert_null(getenv("LISTEN_FDS"));
    cr_assert_null(getenv("LISTEN_FDNAMES"));
}

/* fd moved to at (without FD_CLOEXEC, as a service manager passes it). */
static void place(int fd, int at)
{
    cr_assert_geq(fd, 0);
    cr_assert_eq(dup2(fd, at), at);
    close(fd);
}

static bool is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* A listening TCP socket on 127.0.0.1, blocking (systemd's default). */
static int tcp_listener(unsigned short *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(listen(fd, 16), 0);
    socklen_t sl = sizeof sa;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    if (port)
        *port = ntohs(sa.sin_port);
    return fd;
}

static int udp_socket(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static int take(struct sk_sd_socket *s, size_t max, char *err, size_t len)
{
    err[0] = '\0';
    return sk__sd_listen_fds_at(START, s, max, err, len);
}

/* ---- sk_sd_listen_fds ---- */

Test(sd_listen, without_listen_pid_nothing_is_passed)
{
    put("LISTEN_PID", NULL);
    put("LISTEN_FDS", "1");
    struct sk_sd_socket s[4];
    char err[200];
    cr_assert_eq(take(s, 4, err, sizeof err), 0);
    assert_env_cleared();
    cr_assert_eq(sk_sd_listen_fds(s, 4, err, sizeof err), 0); /* the public one: fd 3 on */
}

Test(sd_listen, another_process_s_sockets_are_ignored_and_unset)
{
    char b[24];
    snprintf(b, sizeof b, "%d", (int)getpid() + 1);
    put("LISTEN_PID", b);
    put("LISTEN_FDS", "1");
    put("LISTEN_FDNAMES", "x");
    struct sk_sd_socket s[4];
    char err[200];
    cr_assert_eq(take(s, 4, err, sizeof err), 0);
    assert_env_cleared();
}

struct hostile {
    const char *pid;   /* "self": this process */
    const char *fds;   /* NULL: unset */
    const char *names; /* NULL: unset */
    int rc;
    const char *says;
};

static const struct hostile hostile[] = {
    {"abc", "1", NULL, SK_EPARSE, "LISTEN_PID is not a process id: \"abc\""},
    {"", "1", NULL, SK_EPARSE, "LISTEN_PID is not a process id"},
    {"-1", "1", NULL, SK_EPARSE, "LISTEN_PID is not a process id"},
    {"0", "1", NULL, SK_EPARSE, "LISTEN_PID is not a process id"},
    {" 1", "1", NULL, SK_EPARSE, "LISTEN_PID is not a process id"},
    {"12345678901", "1", NULL, SK_EPARSE, "LISTEN_PID is not a process id"},
    {"9999999999", "1", NULL, SK_EPARSE, "LISTEN_PID is not a process id"},
    {"1\n2\x1b", "1", NULL, SK_EPARSE, "\"1?2?\""},
    {"self", NULL, NULL, SK_EPARSE, "LISTEN_FDS is not set"},
    {"self", "0", NULL, SK_EPARSE, "LISTEN_FDS is not a number of sockets (1 or more): \"0\""},
    {"self", "", NULL, SK_EPARSE, "LISTEN_FDS is not a number"},
    {"self", "x", NULL, SK_EPARSE, "LISTEN_FDS is not a number"},
    {"self", "+1", NULL, SK_EPARSE, "LISTEN_FDS is not a number"},
    {"self", "1x", NULL, SK_EPARSE, "LISTEN_FDS is not a number"},
    {"self", "1 ", NULL, SK_EPARSE, "LISTEN_FDS is not a number"},
    {"self", "99999999999", NULL, SK_EPARSE, "LISTEN_FDS is not a number"},
    {"self", "17", NULL, SK_ETOOBIG, "LISTEN_FDS is 17: more than 16 sockets"},
    {"self", "2147483647", NULL, SK_ETOOBIG, "more than 16 sockets"},
    {"self", "1", "a:b", SK_EPARSE, "LISTEN_FDNAMES has 2 names for 1 sockets"},
    {"self", "2", "a", SK_EPARSE, "LISTEN_FDNAMES has 1 names for 2 sockets"},
    {"self", "1", "bad\x01", SK_EPARSE, "LISTEN_FDNAMES: name 1 is not valid"},
    {"self", "2", "ok:\xc3\xa9t\xc3\xa9", SK_EPARSE, "LISTEN_FDNAMES: name 2 is not valid"},
    {"self", "1", "del\x7f", SK_EPARSE, "LISTEN_FDNAMES: name 1 is not valid"},
};

Test(sd_listen, hostile_environment_is_one_line_and_unset)
{
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        const struct hostile *h = &hostile[i];
        if (strcmp(h->pid, "self") == 0)
            set_pid_self();
        else
            put("LISTEN_PID", h->pid);
        put("LISTEN_FDS", h->fds);
        put("LISTEN_FDNAMES", h->names);
        struct sk_sd_socket s[SK_SERVER_MAX_LISTEN];
        char err[200];
        int rc = take(s, SK_SERVER_MAX_LISTEN, err, sizeof err);
        cr_assert_eq(rc, h->rc, "case %zu: rc %d, want %d (%s)", i, rc, h->rc, err);
        cr_assert(strstr(err, h->says), "case %zu: \"%s\" does not say \"%s\"", i, err, h->says);
        cr_assert_null(strchr(err, '\n'), "case %zu: more than one line", i);
        assert_env_cleared();
    }
}

Test(sd_listen, a_long_hostile_value_is_cut_short)
{
    char big[1000];
    memset(big, '7', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    put("LISTEN_PID", big);
    struct sk_sd_socket s[1];
    char err[200];
    cr_assert_eq(take(s, 1, err, sizeof err), SK_EPARSE);
    cr_assert(strstr(err, "\"77777777777777777777777777777777...\""), "%s", err);
    cr_assert_lt(strlen(err), 100);
}

Test(sd_listen, names_of_systemd_s_longest_are_taken_longer_refused)
{
    char names[SK_SD_NAME_MAX + 2];
    memset(names, 'n', SK_SD_NAME_MAX);
    names[SK_SD_NAME_MAX] = '\0';
    place(tcp_listener(NULL), START);
    struct sk_sd_socket s[1];
    char err[200];
    set_pid_self();
    put("LISTEN_FDS", "1");
    put("LISTEN_FDNAMES", names);
    cr_assert_eq(take(s, 1, err, sizeof err), 1, "%s", err);
    cr_assert_str_eq(s[0].name, names);
    strcat(names, "n");
    set_pid_self();
    put("LISTEN_FDS", "1");
    put("LISTEN_FDNAMES", names);
    cr_assert_eq(take(s, 1, err, sizeof err), SK_EPARSE);
    cr_assert(strstr(err, "name 1 is not valid (over 255 bytes"), "%s", err);
}

Test(sd_listen, a_closed_fd_is_named)
{
    close(START);
    set_pid_self();
    put("LISTEN_FDS", "1");
    struct sk_sd_socket s[1];
    char err[200];
    cr_assert_eq(take(s, 1, err, sizeof err), SK_ERR(EBADF));
    cr_assert_str_eq(err, "fd 200 is not open");
    assert_env_cleared();
}

Test(sd_listen, a_file_is_not_a_socket)
{
    place(tcp_listener(NULL), START);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    place(p[0], START + 1);
    close(p[1]);
    set_pid_self();
    put("LISTEN_FDS", "2");
    struct sk_sd_socket s[2];
    char err[200];
    cr_assert_eq(take(s, 2, err, sizeof err), SK_ERR(ENOTSOCK));
    cr_assert_str_eq(err, "fd 201 is not a socket");
}

Test(sd_listen, passed_sockets_are_described_and_close_on_exec)
{
    place(tcp_listener(NULL), START);
    place(udp_socket(), START + 1);
    int pair[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    place(pair[0], START + 2);
    set_pid_self();
    put("LISTEN_FDS", "3");
    put("LISTEN_FDNAMES", "web:dns:");
    struct sk_sd_socket s[SK_SERVER_MAX_LISTEN];
    char err[200];
    cr_assert_eq(take(s, SK_SERVER_MAX_LISTEN, err, sizeof err), 3, "%s", err);
    assert_env_cleared();
    cr_assert_eq(s[0].fd, START);
    cr_assert_eq(s[0].family, AF_INET);
    cr_assert_eq(s[0].type, SOCK_STREAM);
    cr_assert(s[0].listening);
    cr_assert_str_eq(s[0].name, "web");
    cr_assert_eq(s[1].fd, START + 1);
    cr_assert_eq(s[1].family, AF_INET6);
    cr_assert_eq(s[1].type, SOCK_DGRAM);
    cr_assert_not(s[1].listening);
    cr_assert_str_eq(s[1].name, "dns");
    cr_assert_eq(s[2].family, AF_UNIX);
    cr_assert_eq(s[2].type, SOCK_STREAM);
    cr_assert_not(s[2].listening); /* a connected socket: Accept=yes's kind */
    cr_assert_str_eq(s[2].name, "");
    for (int i = 0; i < 3; i++)
        cr_assert(fcntl(START + i, F_GETFD) & FD_CLOEXEC, "fd %d", START + i);
    close(pair[1]);
}

Test(sd_listen, without_names_each_is_unknown)
{
    place(tcp_listener(NULL), START);
    place(udp_socket(), START + 1);
    set_pid_self();
    put("LISTEN_FDS", "2");
    put("LISTEN_FDNAMES", NULL);
    struct sk_sd_socket s[2];
    char err[200];
    cr_assert_eq(take(s, 2, err, sizeof err), 2, "%s", err);
    cr_assert_str_eq(s[0].name, "unknown");
    cr_assert_str_eq(s[1].name, "unknown");
}

/* ---- sk_sd_notify ---- */

/* A datagram socket bound to where (a path, or "@name"), as systemd's. */
static int notify_receiver(const char *where)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(where);
    memcpy(sa.sun_path, where, n);
    socklen_t sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (where[0] == '@')
        sa.sun_path[0] = '\0';
    else
        unlink(where);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sl), 0, "bind %s: %s", where, strerror(errno));
    return fd;
}

static void assert_received(int fd, const char *want)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
    cr_assert_eq(n, (ssize_t)strlen(want), "received %zd bytes", n);
    buf[n] = '\0';
    cr_assert_str_eq(buf, want);
}

Test(sd_notify, without_notify_socket_nothing_is_sent)
{
    put("NOTIFY_SOCKET", NULL);
    cr_assert_eq(sk_sd_notify("READY=1"), 0);
}

Test(sd_notify, a_path_socket_receives_each_state)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/sockit-sd-test-%d.sock", (int)getpid());
    int fd = notify_receiver(path);
    put("NOTIFY_SOCKET", path);
    cr_assert_eq(sk_sd_notify("READY=1\nSTATUS=serving"), 1);
    assert_received(fd, "READY=1\nSTATUS=serving");
    cr_assert_eq(sk_sd_notify("STOPPING=1"), 1);
    assert_received(fd, "STOPPING=1");
    cr_assert_str_eq(getenv("NOTIFY_SOCKET"), path); /* kept for the next one */
    close(fd);
    /* The manager's socket gone: the error, not silence. */
    cr_assert_eq(sk_sd_notify("STOPPING=1"), SK_ERR(ECONNREFUSED));
    unlink(path);
    cr_assert_eq(sk_sd_notify("STOPPING=1"), SK_ERR(ENOENT));
}

Test(sd_notify, an_abstract_socket_receives_ready)
{
    char name[64];
    snprintf(name, sizeof name, "@sockit-sd-test-%d", (int)getpid());
    int fd = notify_receiver(name);
    put("NOTIFY_SOCKET", name);
    cr_assert_eq(sk_sd_notify("READY=1"), 1);
    assert_received(fd, "READY=1");
    close(fd);
}

Test(sd_notify, a_bad_address_is_a_usage_error)
{
    char long_path[200];
    memset(long_path, 'p', sizeof long_path - 1);
    long_path[0] = '/';
    long_path[sizeof long_path - 1] = '\0';
    const char *bad[] = {"", "@", "/", "relative/path", "vsock:2:1234", long_path};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put("NOTIFY_SOCKET", bad[i]);
        cr_assert_eq(sk_sd_notify("READY=1"), SK_EUSAGE, "case %zu", i);
    }
}

/* ---- inherited sockets in the server engine ---- */

static int greet(void *user, struct sk_server_conn *c)
{
    (void)user;
    return sk_server_conn_write(c, "hi\n", 3);
}

static int no_reply(void *user, struct sk_server_conn *c, const char *msg, size_t n)
{
    (void)user, (void)c, (void)msg, (void)n;
    return 0;
}

static bool echo_dgram(void *user, struct sk_datagram *d)
{
    (void)user, (void)d;
    return true;
}

static struct sk_server_config inherited_config(int tcp, int udp)
{
    struct sk_server_config cfg = {0};
    cfg.proto.open = greet;
    cfg.proto.message = no_reply;
    cfg.proto.datagram = echo_dgram;
    cfg.workers = 2;
    cfg.inherited[cfg.ninherited++] = (struct sk_server_inherited){.fd = tcp};
    if (udp >= 0)
        cfg.inherited[cfg.ninherited++] = (struct sk_server_inherited){.fd = udp, .udp = true};
    return cfg;
}

static int connect_to(unsigned short port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

Test(server_inherited, serves_them_and_leaves_them_listening_after_a_stop)
{
    unsigned short port;
    int tcp = tcp_listener(&port);
    int udp = udp_socket();
    int keep = dup(tcp); /* the service manager's copy */
    struct sk_server_config cfg = inherited_config(tcp, udp);
    struct sk_server *srv = NULL;
    cr_assert_eq(sk_server_new(&cfg, &srv, NULL), 0);
    cr_assert(fcntl(tcp, F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(udp, F_GETFL) & O_NONBLOCK);
    cr_assert_eq(sk_server_nsockets(srv), 2);
    char addr[SK_ADDRSTR_MAX];
    bool is_udp = true;
    cr_assert_eq(sk_server_socket_addr(srv, 0, addr, sizeof addr, &is_udp), 0);
    cr_assert_not(is_udp);
    char want[32];
    snprintf(want, sizeof want, "127.0.0.1:%u", port);
    cr_assert_str_eq(addr, want);
    cr_assert_eq(sk_server_socket_addr(srv, 1, addr, sizeof addr, &is_udp), 0);
    cr_assert(is_udp);
    cr_assert_eq(sk_server_start(srv), 0);

    int c = connect_to(port);
    char buf[8];
    cr_assert_eq(recv(c, buf, sizeof buf, 0), 3);
    cr_assert_eq(memcmp(buf, "hi\n", 3), 0);
    close(c);

    sk_server_stop(srv);
    struct sk_server_stats st;
    cr_assert_eq(sk_server_wait(srv, &st), 0);
    cr_assert_eq(st.conns, 1);
    sk_server_free(srv);
    cr_assert_not(is_open(tcp), "the server closes its sockets");
    cr_assert_not(is_open(udp));
    /* Not shut down: a client connecting now waits in the backlog for the
     * next process (a plain listener would refuse it). */
    int accepting = 0;
    socklen_t sl = sizeof accepting;
    cr_assert_eq(getsockopt(keep, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &sl), 0);
    cr_assert(accepting);
    c = connect_to(port);
    close(c);
    close(keep);
}

Test(server_inherited, a_bad_config_still_takes_them)
{
    for (int k = 0; k < 5; k++) {
        int tcp = tcp_listener(NULL);
        int udp = udp_socket();
        struct sk_server_config cfg = inherited_config(tcp, udp);
        switch (k) {
        case 0: cfg.reuseport = true; break;
        case 1: cfg.udp = true; break;
        case 2: cfg.proto.datagram = NULL; break;
        case 3: /* both addresses and inherited sockets */
            cr_assert_eq(sk_endpoint_parse("127.0.0.1:0", &cfg.listen[0]), 0);
            cfg.nlisten = 1;
            break;
        case 4: cfg.proto.message = NULL; break;
        }
        struct sk_server *srv = NULL;
        cr_assert_eq(sk_server_new(&cfg, &srv, NULL), SK_EUSAGE, "case %d", k);
        cr_assert_not(is_open(tcp), "case %d: tcp left open", k);
        cr_assert_not(is_open(udp), "case %d: udp left open", k);
    }
}

Test(server_inherited, an_fd_that_is_not_open_is_named)
{
    int tcp = tcp_listener(NULL);
    close(START);
    struct sk_server_config cfg = inherited_config(tcp, START);
    struct sk_server *srv = NULL;
    size_t failed = 99;
    cr_assert_eq(sk_server_new(&cfg, &srv, &failed), SK_ERR(EBADF));
    cr_assert_eq(failed, 1);
    cr_assert_not(is_open(tcp));
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    cr_assert_not_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

Test(server_inherited, every_allocation_failure_releases_them)
{
    int base = open_fds();
    unsigned long k;
    for (k = 1; k < 10000; k++) {
        struct sk_server_config cfg = inherited_config(tcp_listener(NULL), udp_socket());
        struct sk_server *srv = NULL;
        sk__alloc_fail_at(k);
        int rc = sk_server_new(&cfg, &srv, NULL);
        if (rc == 0 && (rc = sk_server_start(srv)) == 0) {
            sk_server_stop(srv);
            struct sk_server_stats st;
            cr_assert_eq(sk_server_wait(srv, &st), 0);
        }
        sk_server_free(srv);
        unsigned long made = sk__alloc_count();
        sk__alloc_fail_at(0);
        cr_assert_eq(open_fds(), base, "k=%lu: fds leaked", k);
        if (made < k) {
            cr_assert_eq(rc, 0, "k=%lu: failed with no allocation failing", k);
            break;
        }
        cr_assert_eq(rc, SK_ERR(ENOMEM), "k=%lu: rc %d (%s)", k, rc, sk_strerror(rc));
    }
    cr_assert_gt(k, 3);
    cr_assert_lt(k, 10000);
}
