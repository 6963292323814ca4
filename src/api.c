/* api.c - routes requests to the task store and turns every outcome into a status and a body. */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "decimal.h"
#include "log.h"
#include "task_json.h"
#include "version.h"

#define API_JSON "application/json"
#define API_ERROR_MAX 1024 /* bytes of message kept in an error body */

#define API_REOPEN_MS 500 /* a worker without a usable file tries again this often */

#define API_LOG_TEXT_MAX 200 /* bytes of a titulo or cliente shown in a log line */
/* Escaped (6 bytes per byte at most), its quotes, "..." when cut, the NUL. */
#define API_LOG_TEXT_BUF (6 * API_LOG_TEXT_MAX + 2 + 3 + 1)

/* A POST waiting in the batch: what its log line says. */
struct api_queued {
    char titulo[API_LOG_TEXT_BUF];
    char cliente[API_LOG_TEXT_BUF];
};

/* A GET /tareas being streamed: the snapshot it came from, whose descriptor
 * the store lent until api_list_done(). */
struct api_stream {
    struct task_store_snapshot snap;
};

struct api {
    struct task_store *store;  /* NULL while tasks.json cannot be opened */
    struct api_queued *queued; /* POSTs waiting for api_flush() */
    struct task_meta *metas;   /* ... and what the store gave them */
    size_t num_queued, queued_cap;
    struct task_store_options store_opts;
    const struct config *cfg;
    long pid;
    int64_t reopen_at_ms;                    /* store == NULL: the next attempt to open it */
    int64_t no_file_since_ms;                /* 0: the file is usable; else since when not */
    char no_file_why[512];                   /* ... and why (logged once per change) */
    struct task task;                        /* decoded POST body (too big for the stack) */
    char body[TASK_JSON_RECORD_MAX + 256];   /* response bodies */
    char error_body[API_ERROR_MAX * 6 + 32]; /* {"error":"..."}, every byte escaped */
    char err[512];                           /* messages from the store and the decoder */
    struct metrics_text metrics;             /* GET /metrics, kept for the next scrape */
};

static int64_t api_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The file became unusable (why) or usable again (why NULL): logged once per
 * change, not once per request. */
static void api_file_state(struct api *api, const char *why)
{
    if (why == NULL) {
        if (api->no_file_since_ms != 0)
            log_info("%s: usable again", api->cfg->file);
        api->no_file_since_ms = 0;
        return;
    }
    if (api->no_file_since_ms == 0 || strcmp(api->no_file_why, why) != 0)
        log_error("%s (answering 503 until it can be used)", why);
    if (api->no_file_since_ms == 0)
        api->no_file_since_ms = api_now_ms();
    snprintf(api->no_file_why, sizeof(api->no_file_why), "%s", why);
}

/* Opens the store if it is not open, at most every API_REOPEN_MS. Returns 1
 * with api->store, 0 without (api->no_file_why says why). */
static int api_open_store(struct api *api)
{
    if (api->store != NULL)
        return 1;
    int64_t now = api_now_ms();
    if (now < api->reopen_at_ms)
        return 0;
    char err[512] = "";
    api->store = task_store_open(api->cfg->file, &api->store_opts, err, sizeof(err));
    if (api->store == NULL) {
        api->reopen_at_ms = now + API_REOPEN_MS;
        api_file_state(api, err[0] ? err : strerror(errno));
        return 0;
    }
    api_file_state(api, NULL);
    return 1;
}

struct api *api_create(const struct config *cfg, const struct task_store_options *store_opts)
{
    struct api *api = calloc(1, sizeof(*api));
    if (api == NULL)
        return NULL;
    api->store_opts = *store_opts;
    api->cfg = cfg;
    api->pid = (long)getpid();
    api_open_store(api);
    return api;
}

void api_free(struct api *api)
{
    if (api == NULL)
        return;
    task_store_close(api->store);
    free(api->queued);
    free(api->metas);
    metrics_text_free(&api->metrics);
    free(api);
}

/* Whether a store error means that the file at the path cannot be used at all
 * (rather than a busy lock, a full disk or damage inside it). */
static int api_no_file_errno(int e)
{
    return e == ENOENT || e == EACCES || e == EPERM || e == EISDIR || e == EINVAL || e == ENOTDIR ||
           e == EROFS || e == ELOOP || e == EMFILE || e == ENFILE || e == EBADF ||
           e == ENAMETOOLONG;
}

void api_check_file(struct api *api)
{
    uint64_t num;
    char err[512] = "";
    if (!api_open_store(api))
        return; /* api_open_store() noted why */
    if (task_store_count(api->store, &num, err, sizeof(err)) == 0)
        api_file_state(api, NULL);
    else if (api_no_file_errno(errno))
        api_file_state(api, err[0] ? err : strerror(errno));
}

struct task_store *api_store(struct api *api)
{
    return api->store;
}

int64_t api_no_file_since(const struct api *api)
{
    return api->no_file_since_ms;
}

static int api_equals(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

/* Parses 1..20 digits (no sign, no leading '+' or '0', no overflow) into *id:
 * ids are written canonically, so /tareas/01 names nothing. */
static int api_parse_id(const char *s, size_t len, uint64_t *id)
{
    uint64_t v = 0;
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
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
    resp->stream = NULL;
}

void api_error(struct api *api, int status, const char *message, struct api_response *resp)
{
    char *out = api->error_body;
    api_reset(resp, status);
    if (message == NULL)
        message = "error";
    size_t len = strnlen(message, API_ERROR_MAX);
    memcpy(out, "{\"error\":", 9);
    long n = task_json_escape(message, len, out + 9, sizeof(api->error_body) - 10);
    n = n < 0 ? 0 : n; /* cannot happen: the buffer holds 6 bytes per byte */
    out[9 + n] = '}';
    resp->body = out;
    resp->body_len = 9 + (size_t)n + 1;
}

/* Maps a failed store call to a status, in one place, logging the cause with
 * the store's message (which names the file, and the byte for damage):
 *   503  the lock was not granted in time, the file keeps being replaced, or
 *        it cannot be used (missing and not creatable, a directory, no
 *        permission, read-only): Retry-After, and the reason on the wire
 *   507  the disk is full (the task was not stored, the file is intact)
 *   500  damage the store refuses to write behind; another program wrote the
 *        file while the task was written (not acknowledged); anything else */
static void api_store_error(struct api *api, const char *what, struct api_response *resp)
{
    int e = errno;
    const char *cause = api->err[0] ? api->err : strerror(e);
    char msg[640];
    if (e == ETIMEDOUT || e == EAGAIN) { /* expected under load: a warning */
        log_warn("%s: %s", what, cause);
        api_error(api, 503,
                  e == ETIMEDOUT ? "tasks.json is busy: lock not granted in time, retry"
                                 : "tasks.json keeps being replaced, retry",
                  resp);
        api_add_header(resp, "Retry-After: 1\r\n");
        return;
    }
    if (api_no_file_errno(e)) {
        api_file_state(api, cause); /* logs it, once */
        snprintf(msg, sizeof(msg), "tasks.json cannot be used: %s", cause);
        api_error(api, 503, msg, resp);
        api_add_header(resp, "Retry-After: 1\r\n");
        return;
    }
    if (e != EBADMSG) /* damage was logged by the store, once per change of the file */
        log_error("%s: %s", what, cause);
    if (e == ENOSPC || e == EDQUOT)
        api_error(api, 507, "no space left to store the task", resp);
    else if (e == EBADMSG) /* where the damage is: the log, /health, taskctl check */
        api_error(api, 500,
                  "tasks.json is damaged, nothing was stored: GET /health, the server log and "
                  "taskctl check say where",
                  resp);
    else if (e == EIO && strstr(cause, "fdatasync") != NULL)
        api_error(api, 500,
                  "tasks.json could not be made durable (an fdatasync failed): nothing is "
                  "stored until the server is restarted",
                  resp);
    else if (e == ESTALE)
        api_error(api, 500,
                  "tasks.json was changed by another program while the task was written: "
                  "not stored, or not for sure; check with GET /tareas before sending it again",
                  resp);
    else
        api_error(api, 500, "internal error storing or reading tasks", resp);
}

/* The answer while tasks.json cannot be opened at all. */
static void api_no_file(struct api *api, struct api_response *resp)
{
    char msg[640];
    snprintf(msg, sizeof(msg), "tasks.json cannot be used: %s", api->no_file_why);
    api_error(api, 503, msg, resp);
    api_add_header(resp, "Retry-After: 1\r\n");
}

/* Writes s into out (API_LOG_TEXT_BUF bytes) for a log line: its first
 * API_LOG_TEXT_MAX bytes (cut at a UTF-8 boundary, then "..."), as a JSON
 * string, so that a titulo can neither split nor forge log lines and reads
 * back unambiguously; quoted 0: without the quotes (the cliente ends the line). */
static void api_log_text(const char *s, size_t len, int quoted, char *out)
{
    size_t n = len;
    int cut = 0;
    if (n > API_LOG_TEXT_MAX) {
        n = API_LOG_TEXT_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
        cut = 1;
    }
    long m = task_json_escape(s, n, out, API_LOG_TEXT_BUF - 4); /* cannot fail: 6 * n + 2 */
    if (m < 2) {
        strcpy(out, "?");
        return;
    }
    if (!quoted) {
        memmove(out, out + 1, (size_t)m - 2);
        m -= 2;
    }
    if (cut) {
        memcpy(out + m, "...", 3);
        m += 3;
    }
    out[m] = '\0';
}

/* The answer to a stored task: 201, the record as stored, its Location. */
static void api_created(struct api_response *resp, const struct task_meta *meta, const char *line,
                        size_t line_len)
{
    api_reset(resp, 201);
    resp->body = line;
    resp->body_len = line_len;
    /* By hand, not api_add_header(): vsnprintf was 6% of a POST's CPU time. */
    static const char loc[] = "Location: /tareas/";
    char *h = resp->headers;
    memcpy(h, loc, sizeof(loc) - 1);
    h = decimal_put_u64(h + sizeof(loc) - 1, meta->id);
    memcpy(h, "\r\n", 3); /* NUL-terminated, as api_add_header() leaves it */
    resp->headers_len = (size_t)(h + 2 - resp->headers);
}

/* Room for one more queued POST. Returns 0 or -1 (ENOMEM). */
static int api_reserve_queue(struct api *api)
{
    if (api->num_queued < api->queued_cap)
        return 0;
    size_t n = api->queued_cap > 0 ? 2 * api->queued_cap : 32;
    struct api_queued *q = realloc(api->queued, n * sizeof(*q));
    if (q != NULL)
        api->queued = q;
    struct task_meta *m = q != NULL ? realloc(api->metas, n * sizeof(*m)) : NULL;
    if (m == NULL)
        return -1;
    api->metas = m;
    api->queued_cap = n;
    return 0;
}

int api_queue_task(struct api *api, const char *body, size_t body_len, struct api_response *resp)
{
    api->err[0] = '\0';
    if (task_json_decode_input(body ? body : "", body_len, &api->task, api->err, sizeof(api->err)) <
        0) {
        api_error(api, 400, api->err, resp);
        return 0;
    }
    if (!api_open_store(api)) {
        api_no_file(api, resp);
        return 0;
    }
    if (api_reserve_queue(api) < 0) {
        log_error("out of memory queueing a task");
        api_error(api, 503, "out of memory, retry", resp);
        api_add_header(resp, "Retry-After: 1\r\n");
        return 0;
    }
    if (task_store_stage(api->store, &api->task, api->err, sizeof(api->err)) < 0) {
        api_store_error(api, "append", resp);
        return 0;
    }
    struct api_queued *q = &api->queued[api->num_queued++];
    if (!api->cfg->quiet) {
        api_log_text(api->task.titulo, api->task.titulo_len, 1, q->titulo);
        if (api->task.has_cliente)
            api_log_text(api->task.cliente, api->task.cliente_len, 0, q->cliente);
        else
            strcpy(q->cliente, "-");
    }
    return 1;
}

size_t api_num_queued(const struct api *api)
{
    return api->num_queued;
}

void api_flush(struct api *api, struct api_response *resp)
{
    size_t n = api->num_queued;
    struct task_meta *metas = api->metas;
    api->num_queued = 0;
    if (n == 0)
        return;
    api->err[0] = '\0';
    if (task_store_commit(api->store, metas, api->err, sizeof(api->err)) < 0) {
        /* All or nothing: every task of the batch gets the same answer. */
        api_store_error(api, "append", &resp[0]);
        for (size_t i = 1; i < n; i++)
            resp[i] = resp[0];
        return;
    }
    api_file_state(api, NULL);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *line = task_store_line(api->store, i, &len);
        api_created(&resp[i], &metas[i], line, len);
        log_task("worker %ld: stored task %" PRIu64 " %s from %s", api->pid, metas[i].id,
                 api->queued[i].titulo, api->queued[i].cliente);
    }
}

/* POST /tareas outside a batch (api_handle): a batch of one. */
static void api_create_task(struct api *api, const char *body, size_t body_len,
                            struct api_response *resp)
{
    if (api_queue_task(api, body, body_len, resp))
        api_flush(api, resp);
}

static int api_snapshot(struct api *api, struct task_store_snapshot *snap,
                        struct api_response *resp)
{
    if (!api_open_store(api)) {
        api_no_file(api, resp);
        return -1;
    }
    api->err[0] = '\0';
    if (task_store_snapshot(api->store, snap, api->err, sizeof(api->err)) < 0) {
        api_store_error(api, "snapshot", resp);
        return -1;
    }
    api_file_state(api, NULL);
    return 0;
}

static void api_list_tasks(struct api *api, struct api_response *resp)
{
    struct task_store_snapshot snap;
    char msg[640];
    if (api_snapshot(api, &snap, resp) < 0)
        return;
    /* A file whose body is still being checked (a large one, at start), or
     * was found damaged there: the list is refused, never streamed. */
    int body = task_store_body_state(api->store, api->err, sizeof(api->err));
    if (body <= 0) {
        task_store_snapshot_release(api->store, &snap);
        if (body == 0) {
            api_error(api, 503, "tasks.json is still being checked after the start, retry", resp);
            api_add_header(resp, "Retry-After: 1\r\n");
        } else {
            snprintf(msg, sizeof(msg), "tasks.json is damaged: %s", api->err);
            api_error(api, 500, msg, resp);
        }
        return;
    }
    api_reset(resp, 200);
    struct api_stream *st = malloc(sizeof(*st));
    if (st == NULL) {
        task_store_snapshot_release(api->store, &snap);
        log_error("GET /tareas: out of memory");
        api_error(api, 503, "out of memory, retry", resp);
        api_add_header(resp, "Retry-After: 1\r\n");
        return;
    }
    st->snap = snap;
    resp->file_fd = snap.fd;
    resp->file_len = snap.prefix_len;
    resp->suffix = snap.suffix;
    resp->suffix_len = snap.suffix_len;
    resp->stream = st;
}

void api_list_done(struct api *api, struct api_stream *stream)
{
    if (stream == NULL)
        return;
    task_store_snapshot_release(api->store, &stream->snap);
    free(stream);
}

int api_list_intact(struct api *api, const struct api_stream *stream)
{
    int rc = task_store_snapshot_intact(api->store, &stream->snap);
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
    }
    int saved = errno;
    task_store_snapshot_release(api->store, &snap);
    errno = saved;
    if (found < 0) {
        api_store_error(api, "find", resp);
        return;
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

/* The count comes from task_store_count(): a stat(), no lock, usually one
 * pread(), and a count that misses an append in flight is fine for a health
 * check. It follows the path like every store call, so /health tells the
 * truth about the file there now. The body is written by hand (snprintf was a
 * visible share of this request). A file that cannot be used or is damaged
 * answers 503 with the reason, for orchestrators and people alike. */
static void api_health(struct api *api, struct api_response *resp)
{
    static const char head[] = "{\"status\":\"ok\",\"workers\":";
    uint64_t num_tasks = 0;
    api->err[0] = '\0';
    const char *why = NULL;
    const char *status = NULL;
    if (!api_open_store(api)) {
        why = api->no_file_why;
        status = "unavailable";
    } else if (task_store_count(api->store, &num_tasks, api->err, sizeof(api->err)) < 0) {
        int e = errno;
        why = api->err[0] ? api->err : strerror(e);
        status = e == EBADMSG               ? "damaged"
                 : api_no_file_errno(e)     ? "unavailable"
                 : strstr(why, "fdatasync") ? "failed"
                                            : "error";
        if (api_no_file_errno(e))
            api_file_state(api, why);
    } else if (task_store_body_state(api->store, api->err, sizeof(api->err)) < 0) {
        why = api->err;
        status = "damaged";
    } else {
        api_file_state(api, NULL);
    }
    char *p = api->body;
    if (why != NULL) {
        p += sprintf(p, "{\"status\":\"%s\",\"error\":", status);
        long n = task_json_escape(why, strnlen(why, 512), p, 6 * 512 + 2);
        p += n > 0 ? n : 0;
        p += sprintf(p, ",\"workers\":");
    } else {
        memcpy(p, head, sizeof(head) - 1);
        p += sizeof(head) - 1;
    }
    p = decimal_put_u64(p, api->cfg->workers);
    const char *mid = version_locking() ? ",\"locking\":true" : ",\"locking\":false";
    size_t mid_len = strlen(mid);
    memcpy(p, mid, mid_len);
    p += mid_len;
    if (why == NULL) {
        memcpy(p, ",\"tasks\":", 9);
        p = decimal_put_u64(p + 9, num_tasks);
    }
    memcpy(p, ",\"pid\":", 7);
    p = decimal_put_u64(p + 7, (uint64_t)api->pid);
    *p++ = '}';
    api_reset(resp, why == NULL ? 200 : 503);
    if (why != NULL)
        api_add_header(resp, "Retry-After: 1\r\n");
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
    /* A file that cannot be opened: no store to count with, the rest is still worth a scrape. */
    if (!api_open_store(api))
        log_error("count for /metrics: %s", api->no_file_why);
    else if (task_store_count(api->store, &info.tasks, api->err, sizeof(api->err)) == 0)
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
