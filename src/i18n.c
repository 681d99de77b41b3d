/* gettext set-up: see i18n.h. */
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "i18n.h"
#include "localedir.h" /* generated: SOCKIT_LOCALEDIR, from LOCALEDIR */

/* The first of the variables that name the messages' locale, as setlocale
 * reads them. */
static const char *messages_locale(void)
{
    static const char *const vars[] = {"LC_ALL", "LC_MESSAGES", "LANG"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return v;
    }
    return NULL;
}

void i18n_init(void)
{
    if (!setlocale(LC_MESSAGES, "")) {
        /* LANG=zh_CN.UTF-8 on a machine where that locale was never
         * generated (a fresh Debian has only C.UTF-8): glibc refuses it and
         * would stay in English. The catalogue needs no locale data, only
         * a language: keep the UTF-8 C locale and name the language
         * through LANGUAGE (unless the user already set it). */
        const char *want = messages_locale();
        if (setlocale(LC_MESSAGES, "C.UTF-8") && want && !getenv("LANGUAGE")) {
            char lang[64];
            size_t n = strcspn(want, ".@");
            if (n > 0 && n < sizeof lang) {
                memcpy(lang, want, n);
                lang[n] = '\0';
                setenv("LANGUAGE", lang, 0);
            }
        }
        setlocale(LC_CTYPE, "C.UTF-8");
    } else if (!setlocale(LC_CTYPE, "")) {
        setlocale(LC_CTYPE, "C.UTF-8");
    }
    /* SOCKIT_LOCALEDIR: the catalogues of a build tree (the tests use it). */
    const char *dir = getenv("SOCKIT_LOCALEDIR");
    bindtextdomain("sockit", dir && *dir ? dir : SOCKIT_LOCALEDIR);
    textdomain("sockit");
}
