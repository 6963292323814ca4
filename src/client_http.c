/* client_http.c - URL checks, one blocking GET, and the wait for /health, on libcurl easy. */
#include "client_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t client_http_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int client_http_endpoint(const char *base, const char *path, char *out, size_t cap, char *err,
                         size_t err_len)
{
    int rc = -1;
    char *scheme = NULL, *host = NULL, *query = NULL;
    CURLU *u = curl_url();
    if (!u) {
        snprintf(err, err_len, "url %s: out of memory", base);
        return -1;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, base, 0);
    if (uc != CURLUE_OK) {
        snprintf(err, err_len, "bad url \"%s\": %s (expected http://HOST:PORT)", base,
                 curl_url_strerror(uc));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        snprintf(err, err_len, "bad url \"%s\": the scheme must be http or https", base);
        goto done;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
        snprintf(err, err_len, "bad url \"%s\": no host", base);
        goto done;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
        snprintf(err, err_len, "bad url \"%s\": a base url takes no query", base);
        goto done;
    }
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    int w = snprintf(out, cap, "%.*s%s", (int)n, base, path);
    if (w < 0 || (size_t)w >= cap) {
        snprintf(err, err_len, "bad url \"%.64s...\": longer than %zu bytes", base, cap);
        goto done;
    }
    rc = 0;
done:
    curl_free(scheme);
    curl_free(host);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}

void client_http_common_options(void *curl, long timeout_ms)
{
    CURL *c = curl;
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* "" disables proxies from the environment */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
}

struct client_http_sink {
    CURL *curl;
    client_http_body_fn *body;
    void *arg;
};

static size_t client_http_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct client_http_sink *sink = arg;
    size_t len = size * nmemb;
    long status = 0;
    if (!sink->body)
        return len;
    curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
    return sink->body(sink->arg, status, data, len) < 0 ? 0 : len;
}

/* One GET of url; connect_to (a struct curl_slist *, may be NULL) pins the address. */
static int client_http_get_at(const char *url, void *connect_to, long timeout_ms,
                              client_http_body_fn *body, void *arg, long *status, int *curl_code,
                              char *err, size_t err_len)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct client_http_sink sink = {.body = body, .arg = arg};
    *status = 0;
    *curl_code = 0;
    CURL *c = curl_easy_init();
    if (!c) {
        *curl_code = CURLE_OUT_OF_MEMORY;
        snprintf(err, err_len, "GET %s: curl_easy_init failed", url);
        return -1;
    }
    sink.curl = c;
    client_http_common_options(c, timeout_ms);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (connect_to != NULL)
        curl_easy_setopt(c, CURLOPT_CONNECT_TO, (struct curl_slist *)connect_to);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, client_http_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    if (cc != CURLE_OK) {
        *curl_code = (int)cc;
        snprintf(err, err_len, "GET %s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        return -1;
    }
    return 0;
}

int client_http_get(const char *url, long timeout_ms, client_http_body_fn *body, void *arg,
                    long *status, int *curl_code, char *err, size_t err_len)
{
    return client_http_get_at(url, NULL, timeout_ms, body, arg, status, curl_code, err, err_len);
}

int client_http_wait_ok(const char *url, long wait_ms, long timeout_ms, char *err, size_t err_len)
{
    uint64_t start = client_http_now_us();
    uint64_t deadline = start + (uint64_t)wait_ms * 1000u;
    long pause_ms = 50;
    char last[512] = "";
    for (unsigned attempt = 1;; attempt++) {
        long status;
        int code;
        uint64_t now = client_http_now_us();
        long left_ms = now < deadline ? (long)((deadline - now) / 1000u) : 0;
        /* A hung server must not stretch the wait far beyond --wait. */
        long t = left_ms < 200 ? 200 : left_ms;
        if (client_http_get(url, t < timeout_ms ? t : timeout_ms, NULL, NULL, &status, &code, last,
                            sizeof(last)) == 0) {
            if (status == 200)
                return 0;
            snprintf(last, sizeof(last), "GET %s answered HTTP %ld", url, status);
        }
        now = client_http_now_us();
        if (now >= deadline) {
            snprintf(err, err_len, "server not ready after %.1f s and %u attempts: %s",
                     (double)(now - start) / 1e6, attempt, last);
            return -1;
        }
        long sleep_ms = pause_ms;
        if ((uint64_t)sleep_ms * 1000u > deadline - now)
            sleep_ms = (long)((deadline - now) / 1000u) + 1;
        struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        pause_ms = pause_ms * 2 > 1000 ? 1000 : pause_ms * 2;
    }
}

struct client_http_body_buf {
    char *buf;
    size_t len, cap; /* cap includes the NUL */
};

static int client_http_keep_body(void *arg, long status, const char *data, size_t len)
{
    struct client_http_body_buf *b = arg;
    (void)status;
    size_t room = b->cap - 1 - b->len;
    size_t n = len < room ? len : room;
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return 0;
}

/* The integer after "\"name\":" in body, or -1 (the body is our own server's, one line). */
static long long client_http_json_int(const char *body, const char *key)
{
    const char *p = strstr(body, key);
    if (p == NULL)
        return -1;
    p += strlen(key);
    char *end;
    long long v = strtoll(p, &end, 10);
    return end == p || v < 0 ? -1 : v;
}

int client_http_health_get(const char *url, long timeout_ms, struct client_http_health *out,
                           int *curl_code, char *err, size_t err_len)
{
    return client_http_health_get_at(url, NULL, timeout_ms, out, curl_code, err, err_len);
}

int client_http_health_get_at(const char *url, void *connect_to, long timeout_ms,
                              struct client_http_health *out, int *curl_code, char *err,
                              size_t err_len)
{
    long status;
    struct client_http_body_buf b = {.buf = out->body, .cap = sizeof(out->body)};
    out->body[0] = '\0';
    out->locking = -1;
    out->workers = out->tasks = -1;
    if (client_http_get_at(url, connect_to, timeout_ms, client_http_keep_body, &b, &status,
                           curl_code, err, err_len) < 0)
        return -1;
    if (status != 200) {
        snprintf(err, err_len, "GET %s answered HTTP %ld", url, status);
        return -1;
    }
    if (strstr(out->body, "\"locking\":true") != NULL)
        out->locking = 1;
    else if (strstr(out->body, "\"locking\":false") != NULL)
        out->locking = 0;
    out->workers = client_http_json_int(out->body, "\"workers\":");
    out->tasks = client_http_json_int(out->body, "\"tasks\":");
    return 0;
}
