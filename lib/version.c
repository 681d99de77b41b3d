/* sk_version(): the version this library was built as (include/sockit/version.h). */
#include "sockit/version.h"

const char *sk_version(void)
{
    return SOCKIT_VERSION;
}
