/* conn.c - one HTTP/1.1 connection: buffers, the request state machine, responses, deadlines. */
#include "conn_impl.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "http_parser.h"
#include "log.h"
#include "metrics.h"
#include "version.h"

static int conn_process(struct conn *c);

/* ---- clock and headers ---- */

uint64_t conn_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t conn_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Request times (metrics, access log) cost almost no clock reads of their own:
 * a request starts at the clock's last reading in this loop turn (taken when
 * its first byte is read if there is none yet: the worker may have slept in
 * epoll) and ends at the reading conn_api_handle() takes anyway for the
 * deadlines. Between a reading and the read of a first byte there is only
 * parsing and sending, microseconds, so the times are that close. */
int64_t conn_clock_ns(struct conn_server *srv)
{
    if (srv->clock_ns == 0)
        srv->clock_ns = conn_monotonic_ns();
    return srv->clock_ns;
}

void conn_update_date(struct conn_server *srv)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec == srv->date_sec && srv->date_len > 0)
        return;
    srv->date_sec = ts.tv_sec;
    gmtime_r(&ts.tv_sec, &tm);
    /* No setlocale() anywhere: %a and %b are the English names HTTP wants. */
    srv->date_len =
        strftime(srv->date, sizeof(srv->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

/* Runs the request through the api. The store's locked section may block
 * (up to --lock-timeout): re-read the clock afterwards, so that the deadlines
 * set for the response and the next request do not start in the past. */
static void conn_api_handle(struct conn_server *srv, const struct api_route *route,
                            const char *body, size_t body_len, struct api_response *resp)
{
    api_handle(srv->api, route, body, body_len, resp);
    int64_t ns = conn_monotonic_ns();
    srv->now_ms = (uint64_t)ns / 1000000u;
    srv->clock_ns = ns; /* the end of this request (conn_account) */
    conn_update_date(srv);
}

/* ---- buffers ---- */

/* Idle keep-alive connections hold no buffer: memory follows the requests in
 * flight, not the connections open. (A pool of spare buffers saved 1.6% of a
 * POST's instructions, under 1% of its time: not worth its code.) */
void conn_buf_release(struct conn *c)
{
    if (c->buf == NULL)
        return;
    free(c->buf);
    c->buf = NULL;
    c->buf_len = 0;
    c->buf_cap = 0;
}

/* Makes the input buffer at least want bytes (want > buf_cap grows it). */
static int conn_buf_reserve(struct conn *c, size_t want)
{
    if (c->buf == NULL) {
        size_t cap = want > CONN_BUF_SIZE ? want : CONN_BUF_SIZE;
        c->buf = malloc(cap);
        if (c->buf == NULL)
            return -1;
        c->buf_cap = cap;
        return 0;
    }
    if (want <= c->buf_cap)
        return 0;
    size_t cap = c->buf_cap * 2 > want ? c->buf_cap * 2 : want;
    char *p = realloc(c->buf, cap);
    if (p == NULL)
        return -1;
    c->buf = p;
    c->buf_cap = cap;
    return 0;
}

/* The buffer size the current state may use: a bound on memory per connection. */
static size_t conn_buf_limit(const struct conn *c)
{
    const struct config *cfg = c->srv->cfg;
    if (c->state == CONN_READ_BODY) {
        if (c->body_kind == HTTP_BODY_LENGTH)
            return c->head_len + (size_t)c->content_length;
        /* Chunked: decoded bytes stay below max_body; leave room for framing. */
        return c->head_len + cfg->max_body + 8192;
    }
    /* Slightly above the limit, so the parser sees the excess and answers 431. */
    return cfg->max_header_bytes + 1024;
}

/* ---- life cycle ---- */

void conn_close(struct conn *c)
{
    struct conn_server *srv = c->srv;
    if (event_loop_del(srv->loop, c->fd) < 0)
        log_error("epoll del connection fd %d: %s", c->fd, strerror(errno));
    close(c->fd); /* never retried: the descriptor is gone even on EINTR */
    /* Waiting for the batch, or being answered from it: forget it there (its
     * task is stored anyway; there is nobody to tell). */
    for (size_t i = 0; c->state == CONN_STORE && i < srv->num_pending; i++)
        if (srv->pending[i] == c)
            srv->pending[i] = NULL;
    for (size_t i = 0; i < srv->num_flushing; i++)
        if (srv->flushing[i] == c)
            srv->flushing[i] = NULL;
    if (c->file_fd >= 0)
        api_list_done(srv->api, c->stream); /* a GET /tareas cut off: give its file back */
    conn_buf_release(c);
    free(c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->num_conns--;
    if (METRICS_ENABLED)
        metrics_set_connections(srv->num_conns);
    free(c);
}

void conn_set_interest(struct conn *c, unsigned mask)
{
    if (event_loop_modify(c->srv->loop, c->fd, mask) < 0)
        log_error("epoll mod connection fd %d: %s", c->fd, strerror(errno));
}

/* Back to READ_HEAD for the next request, keeping pipelined bytes. */
void conn_next_request(struct conn *c)
{
    struct conn_server *srv = c->srv;
    size_t rest = c->buf_len - c->req_end;
    if (rest > 0 && c->req_end > 0)
        memmove(c->buf, c->buf + c->req_end, rest);
    c->buf_len = rest;
    c->parse_prev = 0;
    c->req_end = 0;
    /* The next method and path are not known yet: HEAD off, labels other. */
    memset(&c->route, 0, sizeof(c->route));
    c->num_requests++;
    c->state = CONN_READ_HEAD;
    if (rest == 0) {
        conn_buf_release(c); /* idle keep-alive connections hold no buffer */
        c->deadline_ms = srv->now_ms + srv->cfg->keepalive_timeout_ms;
    } else {
        c->deadline_ms = srv->now_ms + srv->cfg->header_timeout_ms;
        if (srv->timed)
            c->start_ns = conn_clock_ns(srv); /* pipelined: it starts now */
    }
}

/* ---- reading and parsing ---- */

/* Reads once. Returns bytes read (> 0), 0 on EAGAIN, -1 on EOF or error. */
static ssize_t conn_read(struct conn *c)
{
    struct conn_server *srv = c->srv;
    size_t limit = conn_buf_limit(c);
    size_t want = c->buf_len + CONN_BUF_SIZE;
    if (c->buf != NULL && c->buf_len < c->buf_cap)
        want = c->buf_cap; /* room left: no need to grow */
    if (want > limit)
        want = limit > c->buf_len ? limit : c->buf_len + 1;
    if (conn_buf_reserve(c, want) < 0) {
        log_error("out of memory for input on connection fd %d", c->fd);
        return -1;
    }
    ssize_t n;
    do {
        n = read(c->fd, c->buf + c->buf_len, c->buf_cap - c->buf_len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (conn_would_block(errno)) {
            if (c->buf_len == 0)
                conn_buf_release(c);
            return 0;
        }
        if (errno != ECONNRESET)
            log_error("read from connection fd %d: %s", c->fd, strerror(errno));
        return -1;
    }
    if (n == 0)
        return -1;
    if (c->state == CONN_READ_HEAD && c->buf_len == 0) {
        c->deadline_ms = srv->now_ms + srv->cfg->header_timeout_ms; /* from the first byte */
        if (srv->timed)
            c->start_ns = conn_clock_ns(srv);
    }
    c->buf_len += (size_t)n;
    return n;
}

/* The head is parsed (head_len bytes): route it and decide about the body.
 * Returns 0, or -1 when the connection is gone. */
static int conn_start_request(struct conn *c, size_t head_len)
{
    struct conn_server *srv = c->srv;
    const struct http_request *req = &srv->req;
    const struct config *cfg = srv->cfg;

    api_route(req->method, req->method_len, req->path, req->path_len, &c->route);
    c->head_len = head_len;
    c->keep_alive = req->keep_alive;
    c->minor_version = req->minor_version;
    c->body_kind = req->body_kind;
    c->content_length = req->body_kind == HTTP_BODY_LENGTH ? req->content_length : 0;
    c->body_len = 0;
    c->dec_pos = head_len;
    memset(&c->dec, 0, sizeof(c->dec));
    /* Extensions are like a request line, trailers like header fields:
     * the same flags bound them (README, Limits). */
    c->dec.max_ext_bytes = cfg->max_request_line;
    c->dec.max_trailer_bytes = cfg->max_header_bytes;
    c->req_end = head_len;

    int has_body = c->body_kind == HTTP_BODY_CHUNKED || c->content_length > 0;
    int refused = c->route.endpoint == API_NOT_FOUND || c->route.endpoint == API_METHOD_NOT_ALLOWED;

    if (req->expect_unsupported) {
        /* RFC 9110 10.1.1: an expectation other than 100-continue (alone or
         * next to it) cannot be met: 417 before the body, which is never
         * read, so a request with a body also ends its connection. */
        struct api_response resp;
        api_error(srv->api, 417, "unsupported expectation: only 100-continue is supported", &resp);
        return conn_respond(c, &resp, !has_body);
    }
    if (has_body && refused) {
        /* Also the Expect: 100-continue refusal: the final status instead
         * of 100, and the body is never read. */
        struct api_response resp;
        conn_api_handle(srv, &c->route, NULL, 0, &resp);
        return conn_respond(c, &resp, 0);
    }
    if (c->body_kind == HTTP_BODY_LENGTH && c->content_length > cfg->max_body)
        return conn_fail(c, 413, "request body larger than the limit");
    if (c->route.wants_body && c->body_kind == HTTP_BODY_NONE) {
        struct api_response resp;
        api_error(srv->api, 411, "a body with content-length or chunked encoding is required",
                  &resp);
        return conn_respond(c, &resp, 1);
    }
    if (!has_body) {
        struct api_response resp;
        conn_api_handle(srv, &c->route, NULL, 0, &resp);
        return conn_respond(c, &resp, 1);
    }
    /* RFC 9110 10.1.1: no 100 to an HTTP/1.0 client; none needed if the body is here. */
    if (req->expect_continue && c->minor_version >= 1 && c->buf_len == head_len) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ssize_t n;
        do {
            n = send(c->fd, cont, sizeof(cont) - 1, MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        /* A full socket (EAGAIN) just skips the optional 100; a partial one
         * would corrupt the stream, and a real error is fatal. */
        if ((n < 0 && !conn_would_block(errno)) || (n >= 0 && (size_t)n != sizeof(cont) - 1)) {
            conn_close(c);
            return -1;
        }
    }
    c->state = CONN_READ_BODY;
    c->deadline_ms = srv->now_ms + cfg->body_timeout_ms;
    return 0;
}

/* Returns 1 when the body is complete (body at buf + head_len, req_end
 * set), 0 when more is needed, -1 when the connection is gone. */
static int conn_read_body(struct conn *c)
{
    struct conn_server *srv = c->srv;
    if (c->body_kind == HTTP_BODY_LENGTH) {
        if (c->buf_len - c->head_len < c->content_length)
            return 0;
        c->body_len = (size_t)c->content_length;
        c->req_end = c->head_len + c->body_len;
        return 1;
    }
    if (c->buf_len <= c->dec_pos)
        return 0;
    size_t orig = c->buf_len - c->dec_pos;
    size_t len = orig;
    long r = http_decode_chunked(&c->dec, c->buf + c->dec_pos, &len, srv->cfg->max_body);
    if (r == -1) {
        int status = c->dec.error_status ? c->dec.error_status : 400;
        return conn_fail(c, status, c->dec.error ? c->dec.error : "bad chunked encoding") < 0 ? -1
                                                                                              : 0;
    }
    /* The decoded bytes sit at dec_pos, right after the body so far. */
    c->body_len += len;
    if (r == -2) {
        c->buf_len = c->dec_pos + len;
        c->dec_pos = c->buf_len;
        return 0;
    }
    c->req_end = c->dec_pos + orig - (size_t)r;
    c->dec_pos += len;
    return 1;
}

/* Room for one more connection waiting for the batch. Returns 0 or -1. */
static int conn_reserve_pending(struct conn_server *srv)
{
    if (srv->num_pending < srv->pending_cap)
        return 0;
    size_t n = srv->pending_cap > 0 ? 2 * srv->pending_cap : 32;
    struct conn **p = realloc(srv->pending, n * sizeof(*p));
    if (p != NULL)
        srv->pending = p;
    struct api_response *r = p != NULL ? realloc(srv->batch_resp, n * sizeof(*r)) : NULL;
    if (r == NULL)
        return -1;
    srv->batch_resp = r;
    srv->pending_cap = n;
    return 0;
}

/* Serves what is buffered: pipelined requests, one at a time, in order.
 * Returns 0, or -1 when the connection is gone. */
static int conn_process(struct conn *c)
{
    struct conn_server *srv = c->srv;
    for (;;) {
        if (c->state == CONN_READ_HEAD) {
            if (c->buf_len == 0)
                return 0;
            int n = http_parse_request(c->buf, c->buf_len, c->parse_prev, &srv->limits, &srv->req);
            if (n == -2) {
                c->parse_prev = c->buf_len;
                if (c->buf_len >= conn_buf_limit(c))
                    return conn_fail(c, 431, "request header section too large");
                return 0;
            }
            if (n < 0) {
                /* The parser keeps the method (and the path) once the request line is
                 * read: HEAD gets no body, and the metrics their labels. */
                const struct http_request *r = &srv->req;
                api_route(r->method_len ? r->method : "", r->method_len, r->path_len ? r->path : "",
                          r->path_len, &c->route);
                return conn_fail(c, srv->req.error_status ? srv->req.error_status : 400,
                                 srv->req.error ? srv->req.error : "bad request");
            }
            if (conn_start_request(c, (size_t)n) < 0)
                return -1;
        } else if (c->state == CONN_READ_BODY) {
            int r = conn_read_body(c);
            if (r < 0)
                return -1;
            if (r == 0)
                return 0;
            struct api_response resp;
            if (c->route.endpoint == API_TASKS_CREATE) {
                if (conn_reserve_pending(srv) < 0) {
                    log_error("out of memory queueing a POST on connection fd %d", c->fd);
                    return conn_fail(c, 503, "out of memory, retry");
                }
                if (api_queue_task(srv->api, c->buf + c->head_len, c->body_len, &resp)) {
                    c->state = CONN_STORE;
                    srv->pending[srv->num_pending++] = c;
                    return 0;
                }
            } else {
                conn_api_handle(srv, &c->route, c->buf + c->head_len, c->body_len, &resp);
            }
            if (conn_respond(c, &resp, 1) < 0)
                return -1;
        } else {
            return 0; /* a response is pending, or LINGER */
        }
    }
}

static void conn_linger_read(struct conn *c)
{
    struct conn_server *srv = c->srv;
    ssize_t n;
    do {
        n = read(c->fd, srv->discard, sizeof(srv->discard));
    } while (n < 0 && errno == EINTR);
    if (n < 0 && conn_would_block(errno))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    c->lingered += (size_t)n;
    if (c->lingered > CONN_LINGER_BYTES)
        conn_close(c);
}

static void conn_on_event(struct event_loop *loop, int fd, void *arg, unsigned events)
{
    struct conn *c = arg;
    (void)loop;
    (void)fd;
    switch (c->state) {
    case CONN_READ_HEAD:
    case CONN_READ_BODY:
        if (events & (EVENT_LOOP_READ | EVENT_LOOP_ERROR)) {
            ssize_t n = conn_read(c);
            if (n < 0) {
                conn_close(c);
                return;
            }
            if (n > 0)
                conn_process(c);
        }
        return;
    case CONN_WRITE:
    case CONN_SEND_FILE:
        if (events & (EVENT_LOOP_WRITE | EVENT_LOOP_ERROR)) {
            int r = conn_flush(c);
            if (r < 0) {
                conn_close(c);
                return;
            }
            if (r > 0 && conn_response_done(c) == 0)
                conn_process(c);
        }
        return;
    case CONN_LINGER:
        conn_linger_read(c);
        return;
    case CONN_STORE:
        return; /* answered at the end of this turn (conn_server_flush) */
    }
}

void conn_server_flush(struct conn_server *srv)
{
    /* Rounds: answering a connection may serve its pipelined requests, which
     * may queue more POSTs. Bounded: each round needs bytes already read. */
    for (int round = 0; round < 16 && srv->num_pending > 0; round++) {
        /* The list is taken whole: queueing below builds the next one. */
        struct conn **batch = srv->pending;
        struct api_response *resp = srv->batch_resp;
        size_t n = srv->num_pending, cap = srv->pending_cap;
        srv->pending = NULL;
        srv->batch_resp = NULL;
        srv->num_pending = srv->pending_cap = 0;
        api_flush(srv->api, resp);
        /* The store may have waited for the lock: deadlines start now. */
        srv->now_ms = conn_monotonic_ms();
        conn_update_date(srv);
        /* Every answer first: their bodies live in the store's memory until
         * the next batch, which a pipelined POST below may start. */
        srv->flushing = batch;
        srv->num_flushing = n;
        for (size_t i = 0; i < n; i++) {
            if (batch[i] == NULL)
                continue;
            batch[i]->state = CONN_READ_BODY; /* the request is read; the answer goes out */
            if (conn_respond(batch[i], &resp[i], 1) < 0)
                batch[i] = NULL;
        }
        for (size_t i = 0; i < n; i++)
            if (batch[i] != NULL && batch[i]->state == CONN_READ_HEAD)
                conn_process(batch[i]);
        srv->flushing = NULL;
        srv->num_flushing = 0;
        /* Keep the bigger arrays for the next batch. */
        if (cap > srv->pending_cap && srv->num_pending == 0) {
            free(srv->pending);
            free(srv->batch_resp);
            srv->pending = batch;
            srv->batch_resp = resp;
            srv->pending_cap = cap;
        } else {
            free(batch);
            free(resp);
        }
    }
}

/* ---- the server ---- */

struct conn_server *conn_server_create(struct event_loop *loop, struct api *api,
                                       const struct config *cfg)
{
    struct conn_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return NULL;
    srv->loop = loop;
    srv->api = api;
    srv->cfg = cfg;
    srv->limits.max_request_line = cfg->max_request_line;
    srv->limits.max_header_bytes = cfg->max_header_bytes;
    srv->limits.max_headers =
        cfg->max_headers < HTTP_MAX_HEADERS_CAP ? cfg->max_headers : HTTP_MAX_HEADERS_CAP;
    int n =
        snprintf(srv->server, sizeof(srv->server), "Server: taskserver/%s\r\n", version_string());
    srv->server_len = n > 0 && (size_t)n < sizeof(srv->server) ? (size_t)n : 0;
    srv->now_ms = conn_monotonic_ms();
    srv->last_sweep_ms = srv->now_ms;
    conn_update_date(srv);
    srv->timed = METRICS_ENABLED;
    return srv;
}

void conn_server_set_access_log(struct conn_server *srv, struct access_log *al)
{
    srv->access_log = al;
    srv->timed = METRICS_ENABLED || al != NULL;
}

void conn_server_free(struct conn_server *srv)
{
    if (srv == NULL)
        return;
    while (srv->conns != NULL)
        conn_close(srv->conns);
    free(srv->pending);
    free(srv->batch_resp);
    free(srv);
}

void conn_server_on_response(struct conn_server *srv, conn_response_fn *fn, void *arg)
{
    srv->on_response = fn;
    srv->on_response_arg = arg;
}

unsigned conn_server_count(const struct conn_server *srv)
{
    return srv->num_conns;
}

static int conn_reading(const struct conn *c)
{
    return c->state == CONN_READ_HEAD || c->state == CONN_READ_BODY;
}

/* Reads and serves what the kernel already holds for c, as the event loop
 * would have on its next poll (see "A deadline is judged" above the state
 * enum). Bounded: a client sending without pause cannot hold the sweep.
 * Returns 0, or -1 when the connection is gone. */
static int conn_catch_up(struct conn *c)
{
    for (int i = 0; i < CONN_CATCH_UP_READS && conn_reading(c); i++) {
        ssize_t n = conn_read(c);
        if (n < 0) {
            conn_close(c);
            return -1;
        }
        if (n == 0)
            return 0;
        if (conn_process(c) < 0)
            return -1;
    }
    return 0;
}

static void conn_expire(struct conn *c)
{
    if (conn_reading(c)) {
        if (conn_catch_up(c) < 0)
            return;
        /* Served a request, or got more of one: the deadline may have moved. */
        if (!conn_reading(c) || c->srv->now_ms < c->deadline_ms)
            return;
    }
    switch (c->state) {
    case CONN_READ_HEAD:
        if (c->buf_len == 0)
            conn_close(c); /* idle keep-alive: nothing to answer */
        else
            conn_fail(c, 408, "timed out reading the request header");
        return;
    case CONN_READ_BODY:
        conn_fail(c, 408, "timed out reading the request body");
        return;
    case CONN_WRITE:
    case CONN_SEND_FILE:
    case CONN_LINGER:
        conn_close(c); /* the client stopped reading, or lingering is over */
        return;
    case CONN_STORE:
        return; /* answered when the sweep's batch is flushed, right after */
    }
}

void conn_server_tick(struct conn_server *srv)
{
    srv->clock_ns = 0; /* the next turn starts with no reading */
    conn_server_flush(srv);
    srv->now_ms = conn_monotonic_ms();
    conn_update_date(srv);
    /* A sweep over all connections every CONN_TICK_MS: a few thousand
     * comparisons, far simpler than keeping ordered timer lists in sync with
     * every state change, and the precision needed is seconds. */
    if (srv->now_ms - srv->last_sweep_ms < CONN_TICK_MS)
        return;
    srv->last_sweep_ms = srv->now_ms;
    struct conn *next;
    for (struct conn *c = srv->conns; c != NULL; c = next) {
        next = c->next;
        if (srv->now_ms >= c->deadline_ms)
            conn_expire(c); /* may free c, never another connection */
    }
    conn_server_flush(srv); /* what the catch-ups queued */
}

void conn_server_drain(struct conn_server *srv)
{
    struct conn *next;
    srv->draining = 1;
    for (struct conn *c = srv->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state != CONN_READ_HEAD || c->buf_len != 0)
            continue;
        /* A request already sent is in flight, not idle: serve it (its
         * response carries Connection: close and ends the connection). */
        if (conn_catch_up(c) < 0)
            continue;
        if (c->state == CONN_READ_HEAD && c->buf_len == 0)
            conn_close(c);
    }
    conn_server_flush(srv); /* what the catch-ups queued */
}

int conn_open(struct conn_server *srv, int fd)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    c->srv = srv;
    c->fd = fd;
    c->file_fd = -1;
    c->state = CONN_READ_HEAD;
    /* The cached clock is refreshed after each poll, but a worker without
     * connections polls without a timeout: its clock may be minutes old. */
    srv->now_ms = conn_monotonic_ms();
    c->deadline_ms = srv->now_ms + srv->cfg->header_timeout_ms;
    if (event_loop_add(srv->loop, fd, EVENT_LOOP_READ, conn_on_event, c) < 0) {
        int saved_errno = errno;
        close(fd);
        free(c);
        errno = saved_errno;
        return -1;
    }
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->num_conns++;
    if (METRICS_ENABLED)
        metrics_set_connections(srv->num_conns);
    return 0;
}

void conn_reject(struct conn_server *srv, int fd)
{
    struct api_response resp;
    if (METRICS_ENABLED)
        metrics_count_refused();
    api_error(srv->api, 503, "too many connections to this worker, retry", &resp);
    size_t head_len = conn_format_head(srv, &resp, resp.body_len, 1, 1);
    if (srv->on_response != NULL)
        srv->on_response(srv->on_response_arg, resp.status);
    struct iovec iov[2] = {{srv->head, head_len}, {(void *)resp.body, resp.body_len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    ssize_t n;
    /* Best effort on a fresh socket: its send buffer is empty. */
    do {
        n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    (void)n;
    shutdown(fd, SHUT_WR);
    close(fd);
}
