/* sockit serve under systemd: socket activation and readiness (serve_sd.h). */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cli.h"
#include "serve_sd.h"

/* What serve can serve: TCP (a listening stream socket) and UDP, over IPv4
 * or IPv6. Returns 0, or EXIT_FAIL after one line. */
static int check_socket(const struct sk_sd_socket *s)
{
    if (s->type != SOCK_STREAM && s->type != SOCK_DGRAM) {
        cli_error("serve: socket activation: fd %d (%s) is neither a stream nor a datagram socket",
                  s->fd, s->name);
        return EXIT_FAIL;
    }
    if (s->family != AF_INET && s->family != AF_INET6) {
        cli_error("serve: socket activation: fd %d (%s) is not an IPv4 or IPv6 socket", s->fd,
                  s->name);
        return EXIT_FAIL;
    }
    if (s->type == SOCK_STREAM && !s->listening) {
        cli_error("serve: socket activation: fd %d (%s) is not listening (Accept=yes is not "
                  "supported)", s->fd, s->name);
        return EXIT_FAIL;
    }
    return 0;
}

int serve_sd_listen(struct sk_server_config *cfg, struct serve_sd *sd)
{
    char why[400];
    int n = sk_sd_listen_fds(sd->socks, SK_SERVER_MAX_LISTEN, why, sizeof why);
    if (n < 0) {
        cli_error("serve: socket activation: %s", why);
        return EXIT_FAIL;
    }
    if (n == 0)
        return 0;
    /* --udp means "UDP on the --listen addresses too": a passed datagram
     * socket (ListenDatagram=) is the way here; reuseport needs a socket
     * per worker, which serve cannot bind for systemd. */
    if (cfg->udp || cfg->reuseport) {
        cli_error("serve: %s cannot be used with the sockets systemd passes (LISTEN_FDS)",
                  cfg->udp ? "--udp" : "--reuseport");
        return EXIT_USAGE;
    }
    for (int i = 0; i < n; i++) {
        int rc = check_socket(&sd->socks[i]);
        if (rc != 0)
            return rc;
        cfg->inherited[i] = (struct sk_server_inherited){
            .fd = sd->socks[i].fd, .udp = sd->socks[i].type == SOCK_DGRAM};
    }
    sd->n = (size_t)n;
    cfg->ninherited = (size_t)n;
    return 0;
}

const struct sk_sd_socket *serve_sd_passed(const struct serve_sd *sd, size_t i)
{
    return i < sd->n ? &sd->socks[i] : NULL;
}

void serve_sd_notify(struct serve_sd *sd, const struct serve_log *sl, const char *state,
                     const char *status)
{
    /* STATUS= is for the operator (systemctl status): in their language. A
     * translation is one line, or the service manager reads a second field. */
    char msg[512];
    int len = snprintf(msg, sizeof msg, "%s\nSTATUS=%s", state, status);
    if (len < 0 || (size_t)len >= sizeof msg || strchr(status, '\n'))
        snprintf(msg, sizeof msg, "%s", state);
    int rc = sk_sd_notify(msg);
    if (rc >= 0 || sd->notify_failed)
        return;
    sd->notify_failed = true;
    serve_log_notify_failed(sl, rc == SK_EUSAGE ? "NOTIFY_SOCKET is neither an absolute path nor @NAME"
                                                : serve_log_strerror(sl, rc));
}
