/* Fuzz target: the command line's number syntax (cli_parse_num,
 * cli_parse_real, and the durations: cli_parse_seconds, cli_parse_ms).
 * Properties: anything accepted is plain decimal (digits, at most one '.'
 * for fractions; a duration may end in one unit, ms s m h), within the
 * bounds asked for, and means what strtoll/strtod read in it (times the
 * unit); anything else is refused. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool plain_decimal(const char *s, bool fraction)
{
    size_t digits = strspn(s, "0123456789");
    if (s[digits] == '\0')
        return digits > 0;
    if (!fraction || s[digits] != '.')
        return false;
    size_t f = strspn(s + digits + 1, "0123456789");
    return f > 0 && s[digits + 1 + f] == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 64)
        return 0;
    /* First byte: which bounds; the rest: the text. */
    static const long long imax[] = {0, 1, 65536, 1000000, INT64_MAX};
    static const double smax[] = {0.001, 1, 3600, 86400.0 * 24, 1e9};
    unsigned sel = data[0];
    char s[65];
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    if (strlen(s) != size - 1)
        return 0; /* argv strings have no NUL inside */

    long long lo = sel & 1, hi = imax[(sel >> 1) % 5], v = -1;
    bool ok = cli_parse_num("n", s, lo, hi, &v);
    if (ok) {
        if (!plain_decimal(s, false) || v < lo || v > hi || strtoll(s, NULL, 10) != v)
            abort();
    } else if (plain_decimal(s, false)) {
        /* Refused plain digits must be out of range. */
        char *end;
        long long w = strtoll(s, &end, 10);
        if (w >= lo && w <= hi && w != LLONG_MAX)
            abort();
    }

    double dlo = (sel & 1) ? 0.001 : 0, dhi = smax[(sel >> 4) % 5], d = -1;
    bool plain = plain_decimal(s, true) || (s[0] == '.' && plain_decimal(s + 1, false));
    ok = cli_parse_real("r", s, dlo, dhi, &d);
    double ref = strtod(s, NULL);
    if (ok && (!plain || !(d >= dlo && d <= dhi) || fabs(d - ref) > 1e-9 * (ref > 1 ? ref : 1)))
        abort();
    if (!ok && plain && ref > dlo * (1 + 1e-12) && ref < dhi * (1 - 1e-12))
        abort(); /* refused plain decimals must be out of range */

    /* A duration: the number, then at most one unit. */
    char num[65];
    snprintf(num, sizeof num, "%s", s);
    size_t n = strlen(num);
    double unit = 1;
    static const struct {
        const char *name;
        double seconds;
    } units[] = {{"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t k = strlen(units[i].name);
        if (n > k && strcmp(num + n - k, units[i].name) == 0) {
            num[n - k] = '\0';
            unit = units[i].seconds;
            break;
        }
    }
    ok = cli_parse_seconds("s", s, dlo, dhi, &d);
    plain = plain_decimal(num, true) || (num[0] == '.' && plain_decimal(num + 1, false));
    ref = strtod(num, NULL) * unit;
    if (ok && (!plain || !(d >= dlo && d <= dhi) || fabs(d - ref) > 1e-9 * (ref > 1 ? ref : 1)))
        abort();
    if (!ok && plain && ref > dlo * (1 + 1e-12) && ref < dhi * (1 - 1e-12))
        abort();
    int ms = -1;
    if (cli_parse_ms("ms", s, dlo, dhi, &ms) != ok)
        abort();
    if (ok && (ms < 0 || (d > 0 && ms == 0)))
        abort();
    if (ok && d * 1000 < INT_MAX && fabs(ms - d * 1000) > (ms == 1 ? 1 : 0.5 + 1e-6))
        abort();
    return 0;
}
