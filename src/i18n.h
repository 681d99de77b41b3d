/* The program's messages through gettext (the library has none: it returns
 * codes and English detail that the program quotes). English is in the
 * source; po/NAME.po translates it (make pot, then edit po/zh_CN.po).
 *   _("text")   the translation, at run time
 *   N_("text")  marks text translated later (static tables: --help) */
#ifndef SOCKIT_I18N_H
#define SOCKIT_I18N_H

#include <libintl.h>

#define _(s) gettext(s) /* NOLINT(bugprone-reserved-identifier,cert-dcl37-c,cert-dcl51-cpp): gettext's own name */
#define N_(s) s

/* Takes the messages' language from the environment (LANGUAGE, LC_ALL,
 * LC_MESSAGES, LANG): call first in main(). Only LC_MESSAGES and LC_CTYPE
 * change: numbers keep the C locale, so "1.5s" and --json read and print the
 * same everywhere. */
void i18n_init(void);

#endif
