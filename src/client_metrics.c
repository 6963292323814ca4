/* client_metrics.c - scrape GET /metrics, sum a histogram's buckets, estimate quantiles. */
#include "client_metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_http.h"

#define CLIENT_METRICS_MAX_TEXT (16u << 20) /* a scrape larger than this is not ours */

/* The le="..." value of a _bucket line's labels, or -1. */
static int client_metrics_le(const char *labels, size_t len, double *le)
{
    const char *p = labels;
    const char *end = labels + len;
    while (p + 4 <= end) {
        if (memcmp(p, "le=\"", 4) == 0 && (p == labels || p[-1] == '{' || p[-1] == ',')) {
            char num[64];
            const char *q = memchr(p + 4, '"', (size_t)(end - p - 4));
            size_t n = q ? (size_t)(q - p - 4) : 0;
            if (q == NULL || n == 0 || n >= sizeof(num))
                return -1;
            memcpy(num, p + 4, n);
            num[n] = '\0';
            if (strcmp(num, "+Inf") == 0) {
                *le = INFINITY;
                return 0;
            }
            char *e;
            *le = strtod(num, &e);
            return *e == '\0' ? 0 : -1;
        }
        p++;
    }
    return -1;
}

int client_metrics_parse(const char *text, size_t len, const char *name,
                         struct client_metrics_hist *h)
{
    char prefix[128];
    int pn = snprintf(prefix, sizeof(prefix), "%s_bucket{", name);
    memset(h, 0, sizeof(*h));
    if (pn < 0 || (size_t)pn >= sizeof(prefix))
        return -1;
    const char *p = text;
    const char *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        size_t line_len = (size_t)(line_end - p);
        if (line_len > (size_t)pn && memcmp(p, prefix, (size_t)pn) == 0) {
            const char *close = memchr(p, '}', line_len);
            double le;
            if (close == NULL || client_metrics_le(p + pn, (size_t)(close - p - pn), &le) < 0)
                return -1;
            uint64_t v = strtoull(close + 1, NULL, 10);
            size_t i;
            for (i = 0; i < h->num_buckets; i++)
                if (h->le[i] == le)
                    break;
            if (i == h->num_buckets) {
                /* A new bound: the series list them in increasing order. */
                if (h->num_buckets == CLIENT_METRICS_MAX_BUCKETS || (i > 0 && !(le > h->le[i - 1])))
                    return -1;
                h->le[i] = le;
                h->num_buckets++;
            }
            h->cum[i] += v;
        }
        p = line_end + 1;
    }
    if (h->num_buckets == 0 || !isinf(h->le[h->num_buckets - 1]))
        return -1;
    h->count = h->cum[h->num_buckets - 1];
    return 0;
}

struct client_metrics_body {
    char *buf;
    size_t len;
    size_t cap;
};

static int client_metrics_collect(void *arg, long status, const char *data, size_t len)
{
    struct client_metrics_body *b = arg;
    (void)status;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + len + 1)
            cap *= 2;
        if (cap > CLIENT_METRICS_MAX_TEXT)
            return -1;
        char *p = realloc(b->buf, cap);
        if (p == NULL)
            return -1;
        b->buf = p;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, len);
    b->len += len;
    return 0;
}

int client_metrics_scrape(const char *url, long timeout_ms, struct client_metrics_hist *h,
                          char *err, size_t err_len)
{
    struct client_metrics_body b = {0};
    long status;
    int code;
    int rc = -1;
    if (client_http_get(url, timeout_ms, client_metrics_collect, &b, &status, &code, err, err_len) <
        0)
        goto out;
    if (status != 200) {
        snprintf(err, err_len, "GET %s answered HTTP %ld%s", url, status,
                 status == 404 ? " (a server built with -Dmetrics=false?)" : "");
        goto out;
    }
    if (client_metrics_parse(b.buf ? b.buf : "", b.len, "taskserver_lock_wait_seconds", h) < 0) {
        snprintf(err, err_len, "GET %s: no taskserver_lock_wait_seconds histogram in the answer",
                 url);
        goto out;
    }
    rc = 0;
out:
    free(b.buf);
    return rc;
}

void client_metrics_diff(const struct client_metrics_hist *before,
                         const struct client_metrics_hist *after, struct client_metrics_hist *run)
{
    *run = *after;
    for (size_t i = 0; i < after->num_buckets; i++) {
        uint64_t b = 0;
        for (size_t j = 0; j < before->num_buckets; j++)
            if (before->le[j] == after->le[i])
                b = before->cum[j];
        run->cum[i] = after->cum[i] >= b ? after->cum[i] - b : 0;
    }
    /* Cumulative again, even if a bucket went down (a restarted server). */
    for (size_t i = 1; i < run->num_buckets; i++)
        if (run->cum[i] < run->cum[i - 1])
            run->cum[i] = run->cum[i - 1];
    run->count = run->num_buckets ? run->cum[run->num_buckets - 1] : 0;
}

double client_metrics_quantile(const struct client_metrics_hist *h, double q)
{
    if (h->count == 0 || h->num_buckets == 0)
        return 0;
    double rank = q * (double)h->count;
    size_t i = 0;
    while (i + 1 < h->num_buckets && (double)h->cum[i] < rank)
        i++;
    if (isinf(h->le[i]))
        return i > 0 ? h->le[i - 1] : 0; /* above every bound: the highest bound */
    double lower = i > 0 ? h->le[i - 1] : 0;
    double below = i > 0 ? (double)h->cum[i - 1] : 0;
    double in = (double)h->cum[i] - below;
    if (in <= 0)
        return h->le[i];
    return lower + (h->le[i] - lower) * (rank - below) / in;
}
