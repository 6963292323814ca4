/* client_load.h - sends one client's tasks through one libcurl multi handle.
 *
 *   struct client_load_config cfg = {.url = ".../tareas", .id = "c1", .num_tasks = 100,
 *                                    .concurrency = 100, .timeout_ms = 30000};
 *   unsigned char *acked = calloc(num_tasks / 8 + 1, 1);
 *   client_stats_init(&st, num_tasks);
 *   if (client_load_run(&cfg, &st, acked) < 0) ...   (curl could not be set up)
 *
 * POSTs {"titulo":"<id>-<seq>","cliente":"<id>","seq":<seq>} for seq 1..N,
 * at most `concurrency` in flight, over at most `concurrency` keep-alive
 * connections. There are exactly `concurrency` easy handles, each reused for
 * request after request (no handle churn); their connections live in the
 * multi handle's cache and are reused too. A request that fails is counted
 * in st and never retried, not even by libcurl's own resend on a reused
 * connection (client_load.c explains how). Bit seq-1 of acked is set for
 * each 201, and st->min_acked_id keeps the lowest id the 201s carried (the
 * tasks of this run are the ones at or above it: see client_verify.h).
 * st->start_ns and st->end_ns get the span of the run on CLOCK_REALTIME.
 * With cfg->spread holding addresses (client_spread.h), task seq is sent to
 * address (seq - 1) mod n, and each address counts its requests and 201s.
 *
 * Call curl_global_init() first. Bounded: every request has timeout_ms.
 * Needs libcurl 7.80.0 or later (checked when built and when run).
 */
#ifndef TASKSERVER_CLIENT_LOAD_H
#define TASKSERVER_CLIENT_LOAD_H

#include "client_spread.h"
#include "client_stats.h"

#include <stdint.h>

/* Called once, after every connection handle is set up and just before the first request:
 * the place for a start barrier. Returns 0 to go on, -1 to give up (nothing was sent). */
typedef int client_load_ready_fn(void *arg);

struct client_load_config {
    const char *url;      /* the POST endpoint, e.g. "http://127.0.0.1:9000/tareas" */
    const char *id;       /* the client id: "cliente" and the prefix of "titulo" */
    uint64_t num_tasks;   /* seq 1..num_tasks */
    unsigned concurrency; /* transfers in flight and connections, >= 1 */
    long timeout_ms;      /* per request */
    uint64_t interval_us; /* 0: as fast as the concurrency allows; else task seq is sent at
                             start + (seq - 1) / burst * interval_us (start: after cfg->ready) */
    unsigned burst;       /* tasks sent together at each tick (0 counts as 1) */
    int progress;         /* draw a progress bar on stderr (the caller checks it is wanted) */
    client_load_ready_fn *ready; /* may be NULL */
    void *ready_arg;
    struct client_spread *spread; /* may be NULL: libcurl picks the address */
};

/* Returns 0 when every task was attempted (failures are in st), or -1 with
 * a message logged when curl could not be set up (errno ENOMEM, or ENOTSUP
 * when the libcurl found at run time is older than 7.80.0) or cfg->ready gave
 * up (errno as it left it; nothing was sent). */
int client_load_run(const struct client_load_config *cfg, struct client_stats *st,
                    unsigned char *acked);

#endif
