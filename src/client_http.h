/* client_http.h - clientemulator's single requests: URL checks, GET, waiting for /health.
 *
 * Call curl_global_init() once before any of these. Every function is
 * blocking (curl_easy_perform) and bounded by its timeout. Errors are
 * returned as text in err (lower-case, naming the URL), never printed here.
 *
 *   char health[CLIENT_HTTP_URL_MAX];
 *   if (client_http_endpoint(base, "/health", health, sizeof(health), err, n) < 0)
 *       usage error (exit 2)
 *   if (client_http_wait_ok(health, wait_ms, timeout_ms, err, n) < 0)
 *       unreachable (exit 3)
 *
 * No proxy is ever used, whatever the environment says: the point is to talk
 * to the server itself.
 */
#ifndef TASKSERVER_CLIENT_HTTP_H
#define TASKSERVER_CLIENT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define CLIENT_HTTP_URL_MAX 2048

/* Receives the body of a response as it arrives, with the response's status.
 * Returns 0 to go on, -1 to abort the transfer. */
typedef int client_http_body_fn(void *arg, long status, const char *data, size_t len);

/* Checks base (an http:// or https:// URL with a host; no query) and writes
 * base + path into out, with one '/' between them. Returns 0, or -1 with err
 * saying what is wrong with base. */
int client_http_endpoint(const char *base, const char *path, char *out, size_t cap, char *err,
                         size_t err_len);

/* Sets on a curl easy handle (a CURL *) the options every request shares:
 * HTTP/1.1, no proxy, no signals, the timeout. */
void client_http_common_options(void *curl, long timeout_ms);

/* One GET of url. The body goes to body(arg, ...) when body is not NULL,
 * else it is discarded. Returns 0 when a complete response arrived (*status
 * set), or -1 with *curl_code and err when it did not (or body aborted). */
int client_http_get(const char *url, long timeout_ms, client_http_body_fn *body, void *arg,
                    long *status, int *curl_code, char *err, size_t err_len);

/* GETs url until it answers 200, retrying with a doubling pause (50 ms up to
 * 1 s) for up to wait_ms (0: one attempt). Returns 0, or -1 with err naming
 * the URL, the attempts and the last failure. */
int client_http_wait_ok(const char *url, long wait_ms, long timeout_ms, char *err, size_t err_len);

/* What GET /health says about the server; -1 where the body did not say. */
struct client_http_health {
    int locking; /* 1 the locked build, 0 the unlocked one */
    long long workers;
    long long tasks; /* tasks in the file when it answered */
    char body[256];  /* the body as received, cut to fit, NUL-terminated */
};

/* One GET of url (a /health endpoint). Returns 0 when it answered 200 (*out filled from
 * the body), or -1 with err naming the url and what went wrong (*curl_code as in
 * client_http_get, 0 when an answer came with another status). */
int client_http_health_get(const char *url, long timeout_ms, struct client_http_health *out,
                           int *curl_code, char *err, size_t err_len);

/* The same, at one address of url's host: connect_to is a struct curl_slist * for
 * CURLOPT_CONNECT_TO (client_spread.h), NULL for libcurl's own choice. */
int client_http_health_get_at(const char *url, void *connect_to, long timeout_ms,
                              struct client_http_health *out, int *curl_code, char *err,
                              size_t err_len);

/* Microseconds on the monotonic clock. */
uint64_t client_http_now_us(void);

#endif
