/* sd.c's protocol with its first fd as a parameter: the unit tests pass
 * sockets at fds of their own choosing (3, 4... may be the test runner's). */
#ifndef SOCKIT_SD_INT_H
#define SOCKIT_SD_INT_H

#include <stddef.h>

#include "sockit/sd.h"

/* sk_sd_listen_fds with the passed fds at start, start + 1, ... */
int sk__sd_listen_fds_at(int start, struct sk_sd_socket *out, size_t max, char *err, size_t len);

#endif
