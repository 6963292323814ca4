/* api.c - routes requests to the task store and turns every outcome into a status and a body. */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decimal.h"
#include "log.h"
#include "task_json.h"
#include "version.h"

#define API_JSON "application/json"
#define API_ERROR_MAX 1024 /* bytes of message kept in an error body */

struct api {
    struct task_store *store;
    const struct config *cfg;
    long pid;
    struct task task;                        /* decoded POST body (too big for the stack) */
    char body[TASK_JSON_RECORD_MAX + 256];   /* response bodies */
    char error_body[API_ERROR_MAX * 6 + 32]; /* {"error":"..."}, every byte escaped */
    char err[512];                           /* messages from the store and the decoder */
    struct metrics_text metrics;             /* GET /metrics, kept for the next scrape */
};

struct api *api_create(struct task_store *store, const struct config *cfg)
{
    struct api *api = calloc(1, sizeof(*api));
    if (api == NULL)
        return NULL;
    api->store = store;
    api->cfg = cfg;
    api->pid = (long)getpid();
    return api;
}

void api_free(struct api *api)
{
    if (api == NULL)
        return;
    metrics_text_free(&api->metrics);
    free(api);
}

static int api_equals(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

/* Parses 1..20 digits (no sign, no leading '+', no overflow) into *id. */
static int api_parse_id(const char *s, size_t len, uint64_t *id)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *id = v;
    return 0;
}

void api_route(const char *method, size_t method_len, const char *target, size_t target_len,
               struct api_route *route)
{
    static const char prefix[] = "/tareas/";
    const size_t prefix_len = sizeof(prefix) - 1;
    const char *q = memchr(target, '?', target_len);
    size_t path_len = q ? (size_t)(q - target) : target_len;
    int get = api_equals(method, method_len, "GET");
    int head = api_equals(method, method_len, "HEAD");
    int post = api_equals(method, method_len, "POST");

    memset(route, 0, sizeof(*route));
    route->endpoint = API_NOT_FOUND;
    route->method = get    ? METRICS_METHOD_GET
                    : head ? METRICS_METHOD_HEAD
                    : post ? METRICS_METHOD_POST
                           : METRICS_METHOD_OTHER;
    if (api_equals(target, path_len, "/tareas")) {
        route->path = METRICS_PATH_TASKS;
        route->allow = "GET, HEAD, POST";
        if (post) {
            route->endpoint = API_TASKS_CREATE;
            route->wants_body = 1;
        } else if (get || head) {
            route->endpoint = API_TASKS_LIST;
        } else {
            route->endpoint = API_METHOD_NOT_ALLOWED;
        }
    } else if (path_len > prefix_len && memcmp(target, prefix, prefix_len) == 0) {
        if (api_parse_id(target + prefix_len, path_len - prefix_len, &route->id) < 0) {
            route->head = head;
            return; /* /tareas/abc: no such resource */
        }
        route->path = METRICS_PATH_TASK;
        route->allow = "GET, HEAD";
        route->endpoint = (get || head) ? API_TASK_GET : API_METHOD_NOT_ALLOWED;
    } else if (api_equals(target, path_len, "/health")) {
        route->path = METRICS_PATH_HEALTH;
        route->allow = "GET, HEAD";
        route->endpoint = (get || head) ? API_HEALTH : API_METHOD_NOT_ALLOWED;
    } else if (api_equals(target, path_len, "/metrics")) {
        route->path = METRICS_PATH_METRICS;
        route->allow = "GET, HEAD";
        route->endpoint = (get || head) ? API_METRICS : API_METHOD_NOT_ALLOWED;
    }
    route->head = head;
}

static void api_add_header(struct api_response *resp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void api_add_header(struct api_response *resp, const char *fmt, ...)
{
    size_t room = sizeof(resp->headers) - resp->headers_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(resp->headers + resp->headers_len, room, fmt, ap);
    va_end(ap);
    /* Every header we add is short and known; truncation would be a bug. */
    if (n > 0 && (size_t)n < room)
        resp->headers_len += (size_t)n;
}

static void api_reset(struct api_response *resp, int status)
{
    resp->status = status;
    resp->content_type = API_JSON;
    resp->body = NULL;
    resp->body_len = 0;
    resp->headers_len = 0;
    resp->headers[0] = '\0';
    resp->file_fd = -1;
    resp->file_len = 0;
    resp->suffix = NULL;
    resp->suffix_len = 0;
}

void api_error(struct api *api, int status, const char *message, struct api_response *resp)
{
    static const char hex[] = "0123456789abcdef";
    char *out = api->error_body;
    size_t n = 0;

    api_reset(resp, status);
    if (message == NULL)
        message = "error";
    memcpy(out, "{\"error\":\"", 10);
    n = 10;
    for (size_t i = 0; message[i] != '\0' && i < API_ERROR_MAX; i++) {
        unsigned char c = (unsigned char)message[i];
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + n, "\\u00", 4);
            out[n + 4] = hex[c >> 4];
            out[n + 5] = hex[c & 15];
            n += 6;
        } else {
            out[n++] = (char)c; /* UTF-8 passes through; the messages are ours */
        }
    }
    memcpy(out + n, "\"}", 2);
    n += 2;
    resp->body = out;
    resp->body_len = n;
}

/* Maps a failed store call to 503 (lock timeout), 507 (disk full) or 500,
 * logging the cause with the store's message (which names the file). */
static void api_store_error(struct api *api, const char *what, struct api_response *resp)
{
    int e = errno;
    const char *cause = api->err[0] ? api->err : strerror(e);
    if (e == ETIMEDOUT) { /* a busy lock is expected under load: a warning */
        log_warn("%s: %s", what, cause);
        api_error(api, 503, "tasks.json is busy: lock not granted in time, retry", resp);
        api_add_header(resp, "Retry-After: 1\r\n");
        return;
    }
    log_error("%s: %s", what, cause);
    if (e == ENOSPC || e == EDQUOT)
        api_error(api, 507, "no space left to store the task", resp);
    else if (e == EBADMSG) /* where the damage is goes to the log, not on the wire */
        api_error(api, 500, "tasks.json is damaged: the server log and taskctl verify say where",
                  resp);
    else
        api_error(api, 500, "internal error storing or reading tasks", resp);
}

/* Copies s for a log line: at most 200 bytes, control characters as '?', so
 * a titulo cannot forge or split log lines. */
static const char *api_log_text(const char *s, size_t len, char *out, size_t out_len)
{
    size_t n = len < out_len - 1 ? len : out_len - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c == 0x7f || c == '"') ? '?' : (char)c;
    }
    out[n] = '\0';
    return out;
}

static void api_create_task(struct api *api, const char *body, size_t body_len,
                            struct api_response *resp)
{
    struct task_meta meta;
    size_t line_len = 0;

    api->err[0] = '\0';
    if (task_json_decode_input(body ? body : "", body_len, &api->task, api->err, sizeof(api->err)) <
        0) {
        api_error(api, 400, api->err, resp);
        return;
    }
    api->err[0] = '\0';
    if (task_store_append(api->store, &api->task, &meta, api->body, sizeof(api->body), &line_len,
                          api->err, sizeof(api->err)) < 0) {
        api_store_error(api, "append", resp);
        return;
    }
    api_reset(resp, 201);
    resp->body = api->body;
    resp->body_len = line_len;
    /* By hand, not api_add_header(): vsnprintf was 6% of a POST's CPU time. */
    static const char loc[] = "Location: /tareas/";
    char *h = resp->headers;
    memcpy(h, loc, sizeof(loc) - 1);
    h = decimal_put_u64(h + sizeof(loc) - 1, meta.id);
    memcpy(h, "\r\n", 3); /* NUL-terminated, as api_add_header() leaves it */
    resp->headers_len = (size_t)(h + 2 - resp->headers);

    char titulo[201], cliente[201];
    log_task("worker %ld: stored task %" PRIu64 " \"%s\" from %s", api->pid, meta.id,
             api_log_text(api->task.titulo, api->task.titulo_len, titulo, sizeof(titulo)),
             api->task.has_cliente
                 ? api_log_text(api->task.cliente, api->task.cliente_len, cliente, sizeof(cliente))
                 : "-");
}

static int api_snapshot(struct api *api, struct task_store_snapshot *snap,
                        struct api_response *resp)
{
    api->err[0] = '\0';
    if (task_store_snapshot(api->store, snap, api->err, sizeof(api->err)) < 0) {
        api_store_error(api, "snapshot", resp);
        return -1;
    }
    return 0;
}

static void api_list_tasks(struct api *api, struct api_response *resp)
{
    struct task_store_snapshot snap;
    if (api_snapshot(api, &snap, resp) < 0)
        return;
    api_reset(resp, 200);
    resp->file_fd = task_store_fd(api->store);
    resp->file_len = snap.prefix_len;
    resp->suffix = snap.suffix;
    resp->suffix_len = snap.suffix_len;
    resp->snap = snap;
}

int api_list_intact(struct api *api, const struct task_store_snapshot *snap)
{
    int rc = task_store_snapshot_intact(api->store, snap);
    if (rc < 0)
        log_error("GET /tareas: reading %s again: %s; response cut short", api->cfg->file,
                  strerror(errno));
    else if (rc == 0)
        log_error("GET /tareas: %s was reset while the list was sent; response cut short",
                  api->cfg->file);
    return rc == 1;
}

static void api_get_task(struct api *api, uint64_t id, struct api_response *resp)
{
    struct task_store_snapshot snap;
    size_t line_len = 0;
    char msg[64];

    if (api_snapshot(api, &snap, resp) < 0)
        return;
    int found = 0;
    if (id >= 1 && id <= snap.num_tasks) {
        api->err[0] = '\0';
        found = task_store_find(api->store, &snap, id, api->body, sizeof(api->body), &line_len);
        if (found < 0) {
            api_store_error(api, "find", resp);
            return;
        }
    }
    if (!found) {
        snprintf(msg, sizeof(msg), "task %" PRIu64 " not found", id);
        api_error(api, 404, msg, resp);
        return;
    }
    api_reset(resp, 200);
    resp->body = api->body;
    resp->body_len = line_len;
}

/* The count comes from task_store_count(): no lock, usually one pread(), and
 * a count that misses an append in flight is fine for a health check. The
 * body is written by hand (snprintf was a visible share of this request). */
static void api_health(struct api *api, struct api_response *resp)
{
    static const char head[] = "{\"status\":\"ok\",\"workers\":";
    uint64_t num_tasks = 0;
    api->err[0] = '\0';
    if (task_store_count(api->store, &num_tasks, api->err, sizeof(api->err)) < 0) {
        api_store_error(api, "count", resp);
        return;
    }
    char *p = api->body;
    memcpy(p, head, sizeof(head) - 1);
    p = decimal_put_u64(p + sizeof(head) - 1, api->cfg->workers);
    const char *mid =
        version_locking() ? ",\"locking\":true,\"tasks\":" : ",\"locking\":false,\"tasks\":";
    size_t mid_len = strlen(mid);
    memcpy(p, mid, mid_len);
    p = decimal_put_u64(p + mid_len, num_tasks);
    memcpy(p, ",\"pid\":", 7);
    p = decimal_put_u64(p + 7, (uint64_t)api->pid);
    *p++ = '}';
    api_reset(resp, 200);
    resp->body = api->body;
    resp->body_len = (size_t)(p - api->body);
}

/* The Prometheus text: every worker's slot summed, and the task count read now
 * (left out when the count fails: a scrape should not fail with the file). */
static void api_metrics(struct api *api, struct api_response *resp)
{
    if (!METRICS_ENABLED) {
        api_error(api, 404, "metrics are not built in (meson -Dmetrics=false)", resp);
        return;
    }
    struct metrics_info info = {.version = version_string(), .locking = version_locking()};
    api->err[0] = '\0';
    if (task_store_count(api->store, &info.tasks, api->err, sizeof(api->err)) == 0)
        info.tasks_known = 1;
    else
        log_error("count for /metrics: %s", api->err[0] ? api->err : strerror(errno));
    api->metrics.len = 0;
    api->metrics.failed = 0;
    metrics_render(&api->metrics, &info);
    if (api->metrics.failed) {
        log_error("GET /metrics: out of memory for %zu bytes of text", api->metrics.cap * 2);
        api_error(api, 500, "out of memory writing the metrics", resp);
        return;
    }
    api_reset(resp, 200);
    resp->content_type = METRICS_CONTENT_TYPE;
    resp->body = api->metrics.buf;
    resp->body_len = api->metrics.len;
}

void api_handle(struct api *api, const struct api_route *route, const char *body, size_t body_len,
                struct api_response *resp)
{
    switch (route->endpoint) {
    case API_TASKS_CREATE:
        api_create_task(api, body, body_len, resp);
        return;
    case API_TASKS_LIST:
        api_list_tasks(api, resp);
        return;
    case API_TASK_GET:
        api_get_task(api, route->id, resp);
        return;
    case API_HEALTH:
        api_health(api, resp);
        return;
    case API_METRICS:
        api_metrics(api, resp);
        return;
    case API_METHOD_NOT_ALLOWED:
        api_error(api, 405, "method not allowed", resp);
        api_add_header(resp, "Allow: %s\r\n", route->allow);
        return;
    case API_NOT_FOUND:
        break;
    }
    api_error(api, 404, "not found", resp);
}
