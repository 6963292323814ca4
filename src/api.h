/* api.h - the HTTP API in one place: method + path -> store call -> status and body.
 *
 * Calling sequence (one struct api per worker, after fork):
 *
 *     struct api *api = api_create(store, cfg);
 *     per request, once the head is parsed:
 *         struct api_route route;
 *         api_route(method, method_len, target, target_len, &route);
 *             route.endpoint says whether the request can succeed (404 and
 *             405 are known before any body is read: Expect: 100-continue)
 *             and route.wants_body whether it takes a body;
 *     once the body (if any) is complete:
 *         struct api_response resp;
 *         api_handle(api, &route, body, body_len, &resp);
 *     any error the connection layer detects (parser, limits, timeouts):
 *         api_error(api, status, message, &resp);
 *     api_free(api);
 *
 * Ownership: resp.body points into the api's own scratch memory (or static
 * storage) and stays valid until the next call on the same api; the caller
 * sends it (or copies it) before handling another request. resp.file_fd is
 * the store's descriptor: never close it.
 *
 * Every error, whatever its origin, gets its status and its JSON body
 * {"error":"..."} from api_error(): the one place where errors become HTTP.
 */
#ifndef TASKSERVER_API_H
#define TASKSERVER_API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "metrics.h"
#include "task_store.h"

enum api_endpoint {
    API_NOT_FOUND,          /* 404 */
    API_METHOD_NOT_ALLOWED, /* 405 with Allow */
    API_TASKS_LIST,         /* GET or HEAD /tareas */
    API_TASKS_CREATE,       /* POST /tareas */
    API_TASK_GET,           /* GET or HEAD /tareas/ID */
    API_HEALTH,             /* GET or HEAD /health */
    API_METRICS,            /* GET or HEAD /metrics (Prometheus text) */
};

struct api_route {
    enum api_endpoint endpoint;
    int head;                   /* HEAD: the same headers as GET, no body */
    int wants_body;             /* POST /tareas: a request without a body length gets 411 */
    uint64_t id;                /* API_TASK_GET */
    const char *allow;          /* API_METHOD_NOT_ALLOWED: the Allow value */
    enum metrics_method method; /* labels of the request's metrics (0: other, other) */
    enum metrics_path path;
};

struct api_response {
    int status;
    const char *content_type;
    const char *body; /* body_len bytes; see ownership above */
    size_t body_len;
    char headers[160]; /* extra header lines, each ending in CRLF (Location, Allow, ...) */
    size_t headers_len;
    /* GET /tareas: the body is [0, file_len) of file_fd, then the suffix bytes. */
    int file_fd; /* -1: no file part */
    off_t file_len;
    const char *suffix;
    size_t suffix_len;
    struct task_store_snapshot snap; /* what file_len and suffix came from */
};

/* Returns an api over an open store, or NULL with errno (ENOMEM). cfg must
 * outlive the api. */
struct api *api_create(struct task_store *store, const struct config *cfg);

void api_free(struct api *api);

/* Routes a request target (origin-form path; a query string is ignored).
 * Always fills route; never fails. */
void api_route(const char *method, size_t method_len, const char *target, size_t target_len,
               struct api_route *route);

/* Runs the request (a store call for the task endpoints) and fills resp.
 * body may be NULL when body_len is 0. Never fails: store failures become
 * 503/507/500 responses, logged with their cause. */
void api_handle(struct api *api, const struct api_route *route, const char *body, size_t body_len,
                struct api_response *resp);

/* After the file part of a GET /tareas response was sent, before its suffix:
 * 1 when those bytes were still snap's, 0 (logged) when the list was reset
 * meanwhile: the caller then closes the connection short of the promised
 * Content-Length, so that the client sees a broken response, never two lists
 * spliced into one that looks whole. */
int api_list_intact(struct api *api, const struct task_store_snapshot *snap);

/* Fills resp with status and the body {"error":"message"} (message escaped
 * as JSON). */
void api_error(struct api *api, int status, const char *message, struct api_response *resp);

#endif
