/* LD_PRELOAD shim for tests: getaddrinfo of a host ending in ".slow.test"
 * opens the FIFO $SLOW_RESOLVER_FIFO for reading (so that the test's open
 * for writing returns: the lookup has started) and waits until the test
 * writes a line; then the name does not resolve (at once from then on:
 * the resolver asks twice, with and without AI_ADDRCONFIG). A host ending
 * in ".v6only.test" has one address, ::1 (a name without IPv4). Every other
 * name goes to libc. Built by test_fetch_parallel.py. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    size_t n = node ? strlen(node) : 0;
    const char *fifo = getenv("SLOW_RESOLVER_FIFO");
    static _Atomic int answered;
    if (fifo && n > 10 && strcmp(node + n - 10, ".slow.test") == 0) {
        if (answered)
            return EAI_NONAME;
        int fd = open(fifo, O_RDONLY);
        char c;
        if (fd >= 0) {
            while (read(fd, &c, 1) == 1 && c != '\n')
                ;
            close(fd);
        }
        answered = 1;
        return EAI_NONAME;
    }
    int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
        (int (*)(const char *, const char *, const struct addrinfo *, struct addrinfo **))
            dlsym(RTLD_NEXT, "getaddrinfo");
    if (n > 12 && strcmp(node + n - 12, ".v6only.test") == 0) {
        struct addrinfo h = hints ? *hints : (struct addrinfo){0};
        h.ai_flags = (h.ai_flags & ~AI_ADDRCONFIG) | AI_NUMERICHOST;
        return real("::1", service, &h, res);
    }
    return real(node, service, hints, res);
}
