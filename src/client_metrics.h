/* client_metrics.h - the server's lock waits during a client run, from its /metrics before and
 * after.
 *
 * Calling sequence (clientemulator --metrics URL; curl_global_init() done):
 *
 *     struct client_metrics_hist before, after, run;
 *     if (client_metrics_scrape(url, timeout_ms, &before, err, n) < 0)  ... report err
 *     ... the run ...
 *     if (client_metrics_scrape(url, timeout_ms, &after, err, n) < 0)   ... report err
 *     client_metrics_diff(&before, &after, &run);
 *     run.count waits; client_metrics_quantile(&run, 0.5), (&run, 0.99) in seconds
 *
 * The histogram is taskserver_lock_wait_seconds summed over its series (read
 * and write locks). The quantiles are estimates from the buckets, as
 * Prometheus's histogram_quantile() makes them: linear within the bucket that
 * holds the rank, the highest finite bound when the rank is in +Inf. Only
 * text from the caller is parsed (client_metrics_parse), so the tests need no
 * server. Errors: -1 with a message naming the URL in err.
 */
#ifndef TASKSERVER_CLIENT_METRICS_H
#define TASKSERVER_CLIENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define CLIENT_METRICS_MAX_BUCKETS 40

struct client_metrics_hist {
    size_t num_buckets;                       /* 0: the histogram was not in the text */
    double le[CLIENT_METRICS_MAX_BUCKETS];    /* increasing; the last is +Inf (INFINITY) */
    uint64_t cum[CLIENT_METRICS_MAX_BUCKETS]; /* cumulative counts */
    uint64_t count;                           /* the +Inf bucket */
};

/* Sums the _bucket series of name in the exposition text. Returns 0, or -1
 * when text holds no bucket of it or they do not line up. */
int client_metrics_parse(const char *text, size_t len, const char *name,
                         struct client_metrics_hist *h);

/* GETs url and parses taskserver_lock_wait_seconds. Returns 0 or -1 with err. */
int client_metrics_scrape(const char *url, long timeout_ms, struct client_metrics_hist *h,
                          char *err, size_t err_len);

/* run = after - before, bucket by bucket (a counter that went down, a
 * restarted server, gives 0 there). */
void client_metrics_diff(const struct client_metrics_hist *before,
                         const struct client_metrics_hist *after, struct client_metrics_hist *run);

/* The q-quantile (0 < q < 1) in seconds, estimated from the buckets; 0 when
 * count is 0. */
double client_metrics_quantile(const struct client_metrics_hist *h, double q);

#endif
