/* client_stats.c - clientemulator's counters, latency percentiles and summary. */
#include "client_stats.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int client_stats_init(struct client_stats *st, uint64_t num_tasks)
{
    memset(st, 0, sizeof(*st));
    st->num_tasks = num_tasks;
    /* calloc(0) may return NULL: allocate at least one slot. */
    st->latency_us = calloc(num_tasks ? num_tasks : 1, sizeof(st->latency_us[0]));
    if (!st->latency_us) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

enum client_stats_kind client_stats_classify(int curl_code, long http_status)
{
    switch (curl_code) {
    case CURLE_OK:
        if (http_status == 201)
            return CLIENT_STATS_OK;
        return http_status >= 100 && http_status < 600 ? CLIENT_STATS_HTTP : CLIENT_STATS_OTHER;
    case CURLE_COULDNT_CONNECT:
        return CLIENT_STATS_REFUSED;
    case CURLE_OPERATION_TIMEDOUT:
        return CLIENT_STATS_TIMEOUT;
    /* The peer went away before a complete response: RST (recv/send error),
     * FIN before the status line (got nothing) or inside the body (partial). */
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    /* The same, seen one step later: a reused connection closed without an
     * answer and libcurl was about to send the POST again, which the load
     * loop refuses (client_load_prereq()); no other callback aborts a POST. */
    case CURLE_ABORTED_BY_CALLBACK:
        return CLIENT_STATS_RESET;
    default:
        return CLIENT_STATS_OTHER;
    }
}

enum client_stats_kind client_stats_add(struct client_stats *st, int curl_code, long http_status,
                                        uint64_t latency_us, const char *err)
{
    enum client_stats_kind kind = client_stats_classify(curl_code, http_status);

    if (st->num_sent < st->num_tasks)
        st->latency_us[st->num_sent] = latency_us > UINT32_MAX ? UINT32_MAX : (uint32_t)latency_us;
    st->num_sent++;
    switch (kind) {
    case CLIENT_STATS_OK:
        st->num_acked++;
        st->num_http[201]++;
        return kind;
    case CLIENT_STATS_HTTP:
        st->num_http[http_status]++;
        break;
    case CLIENT_STATS_REFUSED:
        st->num_refused++;
        break;
    case CLIENT_STATS_RESET:
        st->num_reset++;
        break;
    case CLIENT_STATS_TIMEOUT:
        st->num_timeout++;
        break;
    case CLIENT_STATS_OTHER:
        st->num_other++;
        break;
    }
    if (curl_code > 0 && curl_code < CLIENT_STATS_NUM_CURLCODES)
        st->num_by_curlcode[curl_code]++;
    if (!st->first_error[0]) {
        if (kind == CLIENT_STATS_HTTP)
            snprintf(st->first_error, sizeof(st->first_error), "HTTP status %ld", http_status);
        else
            snprintf(st->first_error, sizeof(st->first_error), "%s",
                     err && *err ? err : curl_easy_strerror((CURLcode)curl_code));
    }
    return kind;
}

uint64_t client_stats_num_failed(const struct client_stats *st)
{
    return st->num_sent - st->num_acked;
}

static int client_stats_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

void client_stats_finish(struct client_stats *st, uint64_t elapsed_us)
{
    uint64_t n = st->num_sent < st->num_tasks ? st->num_sent : st->num_tasks;
    st->elapsed_us = elapsed_us;
    qsort(st->latency_us, n, sizeof(st->latency_us[0]), client_stats_cmp_u32);
}

uint64_t client_stats_percentile(const struct client_stats *st, double p)
{
    uint64_t n = st->num_sent < st->num_tasks ? st->num_sent : st->num_tasks;
    if (n == 0)
        return 0;
    /* Nearest rank: the smallest value with at least p% of the values <= it. */
    /* p * n first: p / 100 is inexact in binary (0.07 * 100 > 7), and ceil()
     * would then go one rank too far. */
    double rank = ceil(p * (double)n / 100.0);
    uint64_t i = rank < 1 ? 0 : (uint64_t)rank - 1;
    if (i >= n)
        i = n - 1;
    return st->latency_us[i];
}

static double client_stats_rate(const struct client_stats *st)
{
    return st->elapsed_us ? (double)st->num_sent * 1e6 / (double)st->elapsed_us : 0.0;
}

/* Why acknowledged < sent, kind by kind, for a reader who expected sent = acknowledged:
 * what each failure means for the task (stored or not) and what usually causes it. */
static void client_stats_explain(const struct client_stats *st, FILE *out)
{
    static const struct {
        int status;
        const char *why;
    } statuses[] = {
        {500, "the server could not store the task (the unlocked build answers so once racing "
              "writes have damaged tasks.json, see the server's log); it is not in the file"},
        {503, "the file lock was not granted within --lock-timeout, or the worker had "
              "--max-connections; not stored"},
        {507, "the disk is full; not stored"},
        {400, "the server refused the request as invalid; not stored"},
    };
    fprintf(out,
            "acknowledged < sent: %llu requests got no 201, so the server promised nothing "
            "for them:\n",
            (unsigned long long)client_stats_num_failed(st));
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
        if (st->num_http[statuses[i].status])
            fprintf(out, "  http %d: %llu, %s\n", statuses[i].status,
                    (unsigned long long)st->num_http[statuses[i].status], statuses[i].why);
    for (int s = 100; s < 600; s++) {
        int known = s == 201 || s == 500 || s == 503 || s == 507 || s == 400;
        if (!known && st->num_http[s])
            fprintf(out, "  http %d: %llu, an answer other than 201; not stored\n", s,
                    (unsigned long long)st->num_http[s]);
    }
    if (st->num_reset)
        fprintf(out,
                "  reset: %llu, the connection closed before a whole answer came: the task may "
                "or may not be in the file (nobody told this client)\n",
                (unsigned long long)st->num_reset);
    if (st->num_timeout)
        fprintf(out, "  timeout: %llu, no answer within --timeout: may or may not be in the file\n",
                (unsigned long long)st->num_timeout);
    if (st->num_refused)
        fprintf(out, "  refused: %llu, no connection: never sent to the server\n",
                (unsigned long long)st->num_refused);
    if (st->num_other)
        fprintf(out, "  other: %llu, another curl error (listed above)\n",
                (unsigned long long)st->num_other);
}

void client_stats_print_text(const struct client_stats *st, FILE *out)
{
    fprintf(out, "sent %llu, acknowledged (201) %llu, failed %llu\n",
            (unsigned long long)st->num_sent, (unsigned long long)st->num_acked,
            (unsigned long long)client_stats_num_failed(st));
    if (client_stats_num_failed(st)) {
        fprintf(out, "failed by kind: refused %llu, reset %llu, timeout %llu, other %llu",
                (unsigned long long)st->num_refused, (unsigned long long)st->num_reset,
                (unsigned long long)st->num_timeout, (unsigned long long)st->num_other);
        for (int s = 100; s < 600; s++)
            if (s != 201 && st->num_http[s])
                fprintf(out, ", http %d: %llu", s, (unsigned long long)st->num_http[s]);
        fputc('\n', out);
        for (int c = 1; c < CLIENT_STATS_NUM_CURLCODES; c++)
            if (st->num_by_curlcode[c])
                fprintf(out, "  curl error %d (%s): %llu\n", c, curl_easy_strerror((CURLcode)c),
                        (unsigned long long)st->num_by_curlcode[c]);
        fprintf(out, "first failure: %s\n", st->first_error);
        client_stats_explain(st, out);
    }
    fprintf(out, "elapsed %.3f s, %.1f requests/s\n", (double)st->elapsed_us / 1e6,
            client_stats_rate(st));
    fprintf(out, "latency ms: p50 %.3f, p90 %.3f, p99 %.3f, max %.3f\n",
            (double)client_stats_percentile(st, 50) / 1e3,
            (double)client_stats_percentile(st, 90) / 1e3,
            (double)client_stats_percentile(st, 99) / 1e3,
            (double)client_stats_percentile(st, 100) / 1e3);
}

void client_stats_print_json_fields(const struct client_stats *st, FILE *out)
{
    fprintf(out,
            "\"sent\":%llu,\"acknowledged\":%llu,\"failed\":%llu,"
            "\"errors\":{\"refused\":%llu,\"reset\":%llu,\"timeout\":%llu,\"other\":%llu,"
            "\"http\":{",
            (unsigned long long)st->num_sent, (unsigned long long)st->num_acked,
            (unsigned long long)client_stats_num_failed(st), (unsigned long long)st->num_refused,
            (unsigned long long)st->num_reset, (unsigned long long)st->num_timeout,
            (unsigned long long)st->num_other);
    const char *sep = "";
    for (int s = 100; s < 600; s++) {
        if (s != 201 && st->num_http[s]) {
            fprintf(out, "%s\"%d\":%llu", sep, s, (unsigned long long)st->num_http[s]);
            sep = ",";
        }
    }
    fputs("},\"curl\":{", out);
    sep = "";
    for (int c = 1; c < CLIENT_STATS_NUM_CURLCODES; c++) {
        if (st->num_by_curlcode[c]) {
            fprintf(out, "%s\"%d\":%llu", sep, c, (unsigned long long)st->num_by_curlcode[c]);
            sep = ",";
        }
    }
    fprintf(out,
            "}},\"elapsed_s\":%.6f,\"requests_per_s\":%.1f,"
            "\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}",
            (double)st->elapsed_us / 1e6, client_stats_rate(st),
            (double)client_stats_percentile(st, 50) / 1e3,
            (double)client_stats_percentile(st, 90) / 1e3,
            (double)client_stats_percentile(st, 99) / 1e3,
            (double)client_stats_percentile(st, 100) / 1e3);
}

void client_stats_release(struct client_stats *st)
{
    free(st->latency_us);
    st->latency_us = NULL;
}
