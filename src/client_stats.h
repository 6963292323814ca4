/* client_stats.h - what clientemulator counts: outcomes by kind, latencies, the summary.
 *
 * Calling sequence:
 *
 *   struct client_stats st;
 *   if (client_stats_init(&st, num_tasks) < 0) ...        (errno ENOMEM)
 *   for each finished request:
 *       client_stats_add(&st, curl_code, http_status, latency_us);
 *   client_stats_finish(&st, elapsed_us);                  (sorts the latencies)
 *   client_stats_print_text(&st, stdout, url) or client_stats_print_json_fields(...)
 *   client_stats_release(&st);
 *
 * The struct owns one array of num_tasks latencies (4 bytes each): memory is
 * O(tasks sent). Nothing here does I/O except the print functions.
 *
 * Error kinds. A request that did not end in 201 is counted once, in exactly
 * one kind: refused (connect failed), reset (the connection was reset or
 * closed before a complete response), timeout, other (any other curl error,
 * kept by CURLcode), or by HTTP status when a response arrived. No request is
 * ever retried by us: a retry would hide what the class is meant to see.
 */
#ifndef TASKSERVER_CLIENT_STATS_H
#define TASKSERVER_CLIENT_STATS_H

#include <stdint.h>
#include <stdio.h>

#define CLIENT_STATS_NUM_CURLCODES 128 /* CURLcode values we keep apart */

enum client_stats_kind {
    CLIENT_STATS_OK,      /* 201 Created */
    CLIENT_STATS_HTTP,    /* a response with another status */
    CLIENT_STATS_REFUSED, /* could not connect */
    CLIENT_STATS_RESET,   /* reset or closed before a complete response */
    CLIENT_STATS_TIMEOUT, /* --timeout elapsed */
    CLIENT_STATS_OTHER    /* any other curl error */
};

struct client_stats {
    uint64_t num_tasks; /* planned */
    uint64_t num_sent;  /* requests finished, whatever the outcome */
    uint64_t num_acked; /* 201 */
    uint64_t num_refused;
    uint64_t num_reset;
    uint64_t num_timeout;
    uint64_t num_other;
    uint64_t num_http[600];                               /* responses by status, 201 included */
    uint64_t num_by_curlcode[CLIENT_STATS_NUM_CURLCODES]; /* failures by CURLcode */
    char first_error[256];                                /* the first failure, as curl worded it */
    uint32_t *latency_us; /* one per finished request, sorted by finish() */
    uint64_t elapsed_us;
    uint64_t start_ns, end_ns; /* CLOCK_REALTIME: first request handed to curl, last answer */
    uint64_t min_acked_id;     /* the lowest id a 201 answered with; 0 when none */
};

/* Prepares st for num_tasks requests. Returns 0, or -1 with errno ENOMEM. */
int client_stats_init(struct client_stats *st, uint64_t num_tasks);

/* Maps a curl result (an int CURLcode) and HTTP status to its kind. */
enum client_stats_kind client_stats_classify(int curl_code, long http_status);

/* Counts one finished request; err is curl's message (may be "" or NULL).
 * Returns its kind. At most num_tasks calls. */
enum client_stats_kind client_stats_add(struct client_stats *st, int curl_code, long http_status,
                                        uint64_t latency_us, const char *err);

/* Number of requests that did not end in 201. */
uint64_t client_stats_num_failed(const struct client_stats *st);

/* Records the elapsed wall time and sorts the latencies. */
void client_stats_finish(struct client_stats *st, uint64_t elapsed_us);

/* The p-th percentile (0 < p <= 100, nearest rank) in microseconds; 0 when no
 * request finished. Only after client_stats_finish(). */
uint64_t client_stats_percentile(const struct client_stats *st, double p);

/* The human summary, several lines. */
void client_stats_print_text(const struct client_stats *st, FILE *out);

/* The summary as JSON members without the enclosing braces, e.g.
 * "sent":100,"acknowledged":100,... so the caller can add its own. */
void client_stats_print_json_fields(const struct client_stats *st, FILE *out);

void client_stats_release(struct client_stats *st);

#endif
