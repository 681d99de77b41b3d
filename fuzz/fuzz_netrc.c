/* Fuzz target: the .netrc lookup and a URL's credentials. The input is a
 * netrc text; its first line is also the host looked up and, as a URL,
 * has its credentials taken out. */
#include <stdint.h>
#include <string.h>

#include "sockit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    char host[256];
    const char *nl = memchr(s, '\n', size);
    size_t hl = nl ? (size_t)(nl - s) : size;
    if (hl >= sizeof host)
        hl = sizeof host - 1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    struct sk_netrc_entry e;
    unsigned long line = 0;
    const char *why = NULL;
    int rc = sk_netrc_find(s, size, host, &e, &line, &why);
    if (rc < 0 && (!why || line == 0))
        __builtin_trap(); /* an error always says why and where */
    if (rc == 1 && (strlen(e.login) >= SK_NETRC_TOKEN_MAX ||
                    strlen(e.password) >= SK_NETRC_TOKEN_MAX))
        __builtin_trap();
    if (sk_netrc_find(s, size, NULL, &e, &line, &why) > 0)
        __builtin_trap(); /* no host: never an entry */
    char rest[512], user[64], password[64];
    rc = sk_url_take_userinfo(host, rest, sizeof rest, user, sizeof user, password,
                              sizeof password);
    const char *auth = rc > 0 ? strstr(rest, "://") : NULL;
    if (auth && memchr(auth + 3, '@', strcspn(auth + 3, "/?#")))
        __builtin_trap(); /* no '@' is left in the authority */
    return 0;
}
