/* download URL FILE: saves URL to FILE with libsockit's HTTP client.
 *
 * Certificates are verified (the system's CA store); FILE appears only
 * complete: the body goes to a temporary file beside it, renamed onto FILE
 * once its end is proven. Exit 0 on success, else 1 with one line on
 * standard error. Build: cc download.c $(pkg-config --cflags --libs sockit) */
#include <signal.h>
#include <stdio.h>

#include <sockit.h>

static struct sk_fetch_cancel cancel = SK_FETCH_CANCEL_INIT;

static void on_signal(int sig)
{
    sk_fetch_cancel_raise(&cancel, sig); /* the temporary file is removed */
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: download URL FILE\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct sk_fetch_opts o;
    sk_fetch_opts_init(&o);
    o.output = argv[2];
    o.cancel = &cancel;
    struct sk_fetch *f;
    int rc = sk_fetch_new(&o, &f);
    if (rc == 0)
        rc = sk_fetch_run(f, argv[1]);
    if (rc < 0)
        fprintf(stderr, "download: %s\n", f && *sk_fetch_error(f) ? sk_fetch_error(f)
                                                                  : sk_strerror(rc));
    sk_fetch_free(f);
    return rc < 0;
}
