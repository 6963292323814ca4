/* api.h - the HTTP API in one place: method + path -> store call -> status and body.
 *
 * Calling sequence (one struct api per worker, after fork):
 *
 *     struct api *api = api_create(cfg, &store_opts);   opens cfg->file as a store
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
 * the store's descriptor, lent until api_list_done(): never close it.
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

struct task_store;
struct task_store_options;
struct api_stream; /* a GET /tareas in progress: the api's, opaque to the caller */

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
    struct api_stream *stream; /* the list being streamed (api_list_intact, api_list_done) */
};

/* Returns an api over the store on cfg->file, or NULL with errno (ENOMEM).
 * cfg must outlive the api. A file that cannot be opened does not make it
 * fail: the api then answers 503 with the reason (and /health 503) and tries
 * to open it again, at most twice a second, until it can. */
struct api *api_create(const struct config *cfg, const struct task_store_options *store_opts);

/* Closes the store too. */
void api_free(struct api *api);

/* Looks at the file as a request would (opening it, following its path),
 * so that api_no_file_since() is true without traffic: the worker calls it
 * about once a second. */
void api_check_file(struct api *api);

/* The store, or NULL while the file cannot be opened (tests). */
struct task_store *api_store(struct api *api);

/* 0 while the file can be used; else since when (monotonic ms) it cannot:
 * it could not be opened, or the path names nothing usable. For the master's
 * board. */
int64_t api_no_file_since(const struct api *api);

/* Routes a request target (origin-form path; a query string is ignored).
 * Always fills route; never fails. */
void api_route(const char *method, size_t method_len, const char *target, size_t target_len,
               struct api_route *route);

/* POST /tareas in batches: every POST that one turn of the event loop brings
 * is queued, then all are stored by one store call (one lock, one write):
 *
 *     if (api_queue_task(api, body, body_len, &resp) == 0)
 *         send resp now (400, 503, ...);
 *     else the answer comes from api_flush(), in queue order;
 *     ... at the end of the turn:
 *     api_flush(api, resps);      resps[i] answers the i-th queued
 *                                 (resps holds api_num_queued() answers)
 *
 * The bodies of the 201s point into the store's memory, valid until the next
 * call that queues or stores: send (or copy) them all first. A failed store
 * call gives every task of the batch the same error (none was stored). */
int api_queue_task(struct api *api, const char *body, size_t body_len, struct api_response *resp);
size_t api_num_queued(const struct api *api);
void api_flush(struct api *api, struct api_response *resps);

/* Runs the request (a store call for the task endpoints) and fills resp.
 * body may be NULL when body_len is 0. Never fails: store failures become
 * 503/507/500 responses, logged with their cause. */
void api_handle(struct api *api, const struct api_route *route, const char *body, size_t body_len,
                struct api_response *resp);

/* After the file part of a GET /tareas response was sent, before its suffix:
 * 1 when those bytes were still the stream's, 0 (logged) when the list was reset
 * meanwhile: the caller then closes the connection short of the promised
 * Content-Length, so that the client sees a broken response, never two lists
 * spliced into one that looks whole. */
int api_list_intact(struct api *api, const struct api_stream *stream);

/* Every GET /tareas response that carried a file part (file_fd >= 0) ends with
 * this, whether it was sent whole, cut short, or not sent at all (HEAD, a
 * closed connection): the store lent the descriptor until then. */
void api_list_done(struct api *api, struct api_stream *stream);

/* Fills resp with status and the body {"error":"message"} (message escaped
 * as JSON). */
void api_error(struct api *api, int status, const char *message, struct api_response *resp);

#endif
