/* The server's statistics in the Prometheus text exposition format 0.0.4
 * (what `sockit serve --metrics` answers to GET /metrics). */
#ifndef SOCKIT_METRICS_TEXT_H
#define SOCKIT_METRICS_TEXT_H

#include "sockit.h"

/* The Content-Type of that text. */
#define METRICS_TEXT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends every metric of st to out: a "# HELP" and a "# TYPE" line per
 * family, then its samples. Machine-read: never translated, numbers
 * without the locale. Returns 0 or SK_ERR(ENOMEM) (out then holds a part). */
int metrics_text(struct sk_buf *out, const struct sk_server_stats *st);

#endif
