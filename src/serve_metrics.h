/* sockit serve --metrics HOST:PORT: the Prometheus endpoint. */
#ifndef SOCKIT_SERVE_METRICS_H
#define SOCKIT_SERVE_METRICS_H

#include "serve_log.h"
#include "sockit.h"

struct serve_metrics;

/* Binds ep, logs "metrics on http://ADDR/metrics" (serve_log_metrics) and starts the
 * endpoint's thread, which answers GET /metrics with srv's statistics
 * (srv must outlive it: free this first). Returns 0 and *out, or a
 * negative code (nothing left running). */
int serve_metrics_start(const struct sk_endpoint *ep, struct sk_server *srv,
                        const struct serve_log *sl, struct serve_metrics **out);
/* Stops the thread, closes the scrapes and the socket. NULL is accepted. */
void serve_metrics_free(struct serve_metrics *m);

#endif
