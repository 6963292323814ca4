/* conn.c - one HTTP/1.1 connection: buffers, the request state machine, responses, deadlines. */
#include "conn.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "decimal.h"
#include "http_parser.h"
#include "log.h"
#include "metrics.h"
#include "version.h"

#define CONN_BUF_SIZE 4096          /* first input buffer; most requests fit */
#define CONN_POOL_MAX 64            /* spare CONN_BUF_SIZE buffers kept per worker */
#define CONN_HEAD_MAX 640           /* a response head: status, 5 headers, extras */
#define CONN_LINGER_MS 2000         /* how long to drain a client after an error response */
#define CONN_LINGER_BYTES (1 << 22) /* ... and how much of it to read and drop */
#define CONN_SENDFILE_CHUNK (1 << 20)
#define CONN_CATCH_UP_READS 16 /* reads before a deadline is judged (see conn_catch_up) */

/*
 * One request at a time per connection; the state says what the connection
 * is waiting for, and deadline_ms when it gives up waiting:
 *
 *   accept
 *     |
 *     v            head complete, body announced
 *   READ_HEAD ----------------------------------> READ_BODY
 *     |   ^  \                                      |
 *     |   |   \ head complete, no body              | body complete
 *     |   |    v                                    v
 *     |   |   (api_handle: one response) <----------+
 *     |   |    |   POST /tareas: STORE until the turn's batch is stored
 *     |   |    |                    \ GET /tareas
 *     |   |    v                     v
 *     |   +-- WRITE -- head sent --> SEND_FILE   (file range, then suffix)
 *     |   keep-alive: next request     |
 *     |   (pipelined bytes first)  <---+
 *     |              |
 *     |              | must close, and the client may still be sending
 *     v              v
 *   closed <------ LINGER   (write side shut: read and drop until EOF or deadline)
 *
 * Deadlines: READ_HEAD idle (nothing buffered) -> keep-alive timeout (header
 * timeout before the first request), closed silently; READ_HEAD with bytes
 * buffered -> header timeout from the first byte, 408; READ_BODY -> body
 * timeout, 408; WRITE and SEND_FILE -> send timeout from the last progress,
 * closed (the client stopped reading); LINGER -> CONN_LINGER_MS.
 *
 * While a response is pending the connection does not read (epoll interest
 * is EPOLLOUT only), so a client that pipelines without reading cannot make
 * the worker buffer without bound: the kernel's socket buffers push back.
 *
 * A deadline is judged on what the client sent, not on what the worker has
 * read so far. The sweep runs after a batch of events, and a worker may have
 * been busy (a long batch, the store's lock wait, a descheduled process):
 * bytes that arrived meanwhile sit unread in the kernel, and the connection
 * looks idle although a request is waiting. Closing it then throws the
 * request away with a reset, and the client sees "connection reset" or
 * "empty reply" for a request the server never logged. So an expiring
 * connection in a reading state first reads and serves what the kernel
 * holds (conn_catch_up), and the clock is re-read after every store call,
 * the one place that may block, so a deadline never starts in the past.
 * The same goes for closing after a response: unread input in the kernel
 * means lingering, never a bare close() (which would send RST).
 */
enum conn_state {
    CONN_READ_HEAD,
    CONN_READ_BODY,
    CONN_STORE, /* a POST queued in the api's batch (conn_server_flush answers it) */
    CONN_WRITE,
    CONN_SEND_FILE,
    CONN_LINGER,
};

struct conn {
    struct conn_server *srv;
    struct conn *prev, *next; /* srv->conns */
    int fd;
    enum conn_state state;
    uint64_t deadline_ms;  /* monotonic; meaning depends on state (chart above) */
    unsigned num_requests; /* requests answered on this connection */
    int64_t start_ns;      /* the current request's first byte (monotonic; when timed) */

    char *buf; /* input, NULL while nothing is buffered */
    size_t buf_len;
    size_t buf_cap;
    size_t parse_prev; /* buf_len at the last "need more" from the parser */

    /* The request being served (valid from READ_BODY on). route.head is
     * also set when a head fails to parse after its method was read, and 0
     * while no method is known: no response to HEAD has a body, errors
     * included (RFC 9110 9.3.2). */
    struct api_route route;
    size_t head_len;
    enum http_body_kind body_kind;
    uint64_t content_length;
    struct http_chunked_decoder dec;
    size_t dec_pos;  /* chunked: undecoded input starts here */
    size_t body_len; /* decoded body bytes at buf + head_len */
    size_t req_end;  /* the next request starts here (once the body is complete) */
    int keep_alive;
    int minor_version;

    /* The response being sent. */
    char *out; /* unsent head and body bytes (only after a short write) */
    size_t out_len;
    size_t out_off;
    int file_fd; /* SEND_FILE: [file_off, file_end) of file_fd, then suffix */
    off_t file_off;
    off_t file_end;
    const char *suffix;
    size_t suffix_len;
    struct api_stream *stream; /* SEND_FILE: the api's, checked before the suffix */
    int close_after;                 /* close once the response is out */
    int linger;                      /* ... through LINGER: the client may still be sending */
    size_t lingered;                 /* bytes dropped in LINGER */
};

struct conn_server {
    struct event_loop *loop;
    struct api *api;
    const struct config *cfg;
    struct http_limits limits;
    struct conn *conns; /* every open connection */
    unsigned num_conns;
    int draining;
    uint64_t now_ms;
    uint64_t last_sweep_ms;
    time_t date_sec;
    char date[48]; /* "Date: Wed, 26 Nov 2026 15:00:00 GMT\r\n" */
    size_t date_len;
    char server[64]; /* "Server: taskserver/0.1.0\r\n" */
    size_t server_len;
    char *pool[CONN_POOL_MAX]; /* spare input buffers: no malloc per request */
    size_t num_pool;
    struct access_log *access_log; /* NULL: off */
    int timed;                     /* requests are timed: metrics or the access log */
    int64_t clock_ns;              /* timed: the clock as last read in this loop turn, 0 none */
    struct http_request req;       /* parser output, used only within one call */
    struct conn **pending;         /* in CONN_STORE, in the api's queue order */
    size_t num_pending, pending_cap;
    struct api_response *batch_resp; /* pending_cap of them */
    struct conn **flushing;          /* the batch being answered (conn_close clears) */
    size_t num_flushing;
    char head[CONN_HEAD_MAX];
    char discard[16384];           /* LINGER reads */
    conn_response_fn *on_response; /* tracing, metrics: NULL when nobody watches */
    void *on_response_arg;
};

static int conn_process(struct conn *c);

/* ---- clock and headers ---- */

static uint64_t conn_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t conn_monotonic_ns(void)
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
static int64_t conn_clock_ns(struct conn_server *srv)
{
    if (srv->clock_ns == 0)
        srv->clock_ns = conn_monotonic_ns();
    return srv->clock_ns;
}

static void conn_update_date(struct conn_server *srv)
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

static char *conn_put(char *p, const char *s, size_t len)
{
    memcpy(p, s, len);
    return p + len;
}

#define CONN_PUT_LIT(p, lit) conn_put((p), (lit), sizeof(lit) - 1)

/* Formats the response head into srv->head; returns its length. */
static size_t conn_format_head(struct conn_server *srv, const struct api_response *resp,
                               uint64_t content_length, int close_after, int minor_version)
{
    const char *text = http_status_text(resp->status);
    size_t text_len = strlen(text);
    char *p = srv->head;
    /* Fixed parts: ~150 bytes plus the reason phrase; extras are bounded by their array. */
    if (text_len > 64)
        text_len = 64;
    p = CONN_PUT_LIT(p, "HTTP/1.1 ");
    p = decimal_put_u64(p, (uint64_t)resp->status);
    *p++ = ' ';
    p = conn_put(p, text, text_len);
    p = CONN_PUT_LIT(p, "\r\n");
    p = conn_put(p, srv->server, srv->server_len);
    p = conn_put(p, srv->date, srv->date_len);
    p = CONN_PUT_LIT(p, "Content-Type: ");
    p = conn_put(p, resp->content_type, strlen(resp->content_type));
    p = CONN_PUT_LIT(p, "\r\nContent-Length: ");
    p = decimal_put_u64(p, content_length);
    p = CONN_PUT_LIT(p, "\r\n");
    p = conn_put(p, resp->headers, resp->headers_len);
    if (close_after)
        p = CONN_PUT_LIT(p, "Connection: close\r\n");
    else if (minor_version == 0)
        p = CONN_PUT_LIT(p, "Connection: keep-alive\r\n");
    p = CONN_PUT_LIT(p, "\r\n");
    return (size_t)(p - srv->head);
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

static void conn_buf_release(struct conn *c)
{
    struct conn_server *srv = c->srv;
    if (c->buf == NULL)
        return;
    if (c->buf_cap == CONN_BUF_SIZE && srv->num_pool < CONN_POOL_MAX)
        srv->pool[srv->num_pool++] = c->buf;
    else
        free(c->buf);
    c->buf = NULL;
    c->buf_len = 0;
    c->buf_cap = 0;
}

/* Makes the input buffer at least want bytes (want > buf_cap grows it). */
static int conn_buf_reserve(struct conn *c, size_t want)
{
    struct conn_server *srv = c->srv;
    if (c->buf == NULL) {
        if (want <= CONN_BUF_SIZE && srv->num_pool > 0) {
            c->buf = srv->pool[--srv->num_pool];
        } else {
            size_t cap = want > CONN_BUF_SIZE ? want : CONN_BUF_SIZE;
            c->buf = malloc(cap);
            if (c->buf == NULL)
                return -1;
            c->buf_cap = cap;
            return 0;
        }
        c->buf_cap = CONN_BUF_SIZE;
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

static void conn_close(struct conn *c)
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

static void conn_set_interest(struct conn *c, unsigned mask)
{
    if (event_loop_modify(c->srv->loop, c->fd, mask) < 0)
        log_error("epoll mod connection fd %d: %s", c->fd, strerror(errno));
}

/* Back to READ_HEAD for the next request, keeping pipelined bytes. */
static void conn_next_request(struct conn *c)
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

/* ---- writing ---- */

static int conn_would_block(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK;
}

/* After a failed send(): 0 when the socket is merely full, else -1 (logged
 * unless the client simply went away). */
static int conn_flush_error(const struct conn *c)
{
    if (conn_would_block(errno))
        return 0;
    if (errno != EPIPE && errno != ECONNRESET)
        log_error("send to connection fd %d: %s", c->fd, strerror(errno));
    return -1;
}

/* Pushes the pending response out. Returns 1 when all of it is sent, 0 when
 * the socket is full (wait for EPOLLOUT), -1 when the connection is broken. */
static int conn_flush(struct conn *c)
{
    struct conn_server *srv = c->srv;
    int progress = 0;
    int rc = 1;

    while (c->out_off < c->out_len) {
        int more = c->file_fd >= 0 || c->suffix_len > 0;
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = conn_flush_error(c);
            goto out;
        }
        c->out_off += (size_t)n;
        progress = 1;
    }
    while (c->file_fd >= 0 && c->file_off < c->file_end) {
        off_t left = c->file_end - c->file_off;
        size_t count = left > CONN_SENDFILE_CHUNK ? CONN_SENDFILE_CHUNK : (size_t)left;
        ssize_t n = sendfile(c->fd, c->file_fd, &c->file_off, count);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (conn_would_block(errno)) {
                rc = 0;
                goto out;
            }
            if (errno != EPIPE && errno != ECONNRESET)
                log_error("sendfile %s to connection fd %d: %s", srv->cfg->file, c->fd,
                          strerror(errno));
            rc = -1;
            goto out;
        }
        if (n == 0) {
            /* The snapshot's bytes never change, unless someone truncated the
             * file (taskctl reset): the promised length cannot be sent. */
            log_error("sendfile %s: file shorter than its snapshot (%lld < %lld bytes)",
                      srv->cfg->file, (long long)c->file_off, (long long)c->file_end);
            rc = -1;
            goto out;
        }
        progress = 1;
    }
    /* The bytes just sent are the snapshot's unless a reset rewrote them
     * meanwhile: then end the response short, never with a closing "]". */
    if (c->file_fd >= 0) {
        int intact = api_list_intact(srv->api, c->stream);
        api_list_done(srv->api, c->stream);
        c->stream = NULL;
        c->file_fd = -1;
        if (!intact) {
            rc = -1;
            goto out;
        }
    }
    while (c->suffix_len > 0) {
        ssize_t n = send(c->fd, c->suffix, c->suffix_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = conn_flush_error(c);
            goto out;
        }
        c->suffix += n;
        c->suffix_len -= (size_t)n;
        progress = 1;
    }
out:
    if (progress)
        c->deadline_ms = srv->now_ms + srv->cfg->send_timeout_ms;
    return rc;
}

/* Whether the kernel holds input for c that the worker has not read yet
 * (in doubt: yes, the safe answer for the callers). */
static int conn_input_pending(const struct conn *c)
{
    int n = 0;
    if (ioctl(c->fd, FIONREAD, &n) < 0)
        return 1;
    return n > 0;
}

/* The response is out: close, linger, or go on with the next request.
 * Returns 0, or -1 when the connection is gone. */
static int conn_response_done(struct conn *c)
{
    struct conn_server *srv = c->srv;
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    if (c->close_after) {
        /* Input may have arrived after the last read (a pipelining client
         * that asked for close, a request racing our drain): lingering then
         * too, or the RST of close() could overtake the response. */
        if (!c->linger && !conn_input_pending(c)) {
            conn_close(c);
            return -1;
        }
        /* Closing with unread input makes the kernel send RST, which can
         * destroy the response before the client reads it: shut the write
         * side (FIN after the response) and drop input until the client
         * closes or the deadline passes. */
        if (shutdown(c->fd, SHUT_WR) < 0) {
            conn_close(c);
            return -1;
        }
        conn_buf_release(c);
        c->state = CONN_LINGER;
        c->deadline_ms = srv->now_ms + CONN_LINGER_MS;
        conn_set_interest(c, EVENT_LOOP_READ);
        return 0;
    }
    conn_next_request(c);
    if (c->buf_len == 0 && srv->draining) {
        conn_close(c);
        return -1;
    }
    conn_set_interest(c, EVENT_LOOP_READ);
    return 0;
}

/* Counts a response (metrics) and logs it (access log), once per request.
 * The request line is at the start of the buffer: a request is always moved
 * there before it is parsed (conn_next_request). */
static void conn_account(struct conn *c, int status, uint64_t body_bytes)
{
    struct conn_server *srv = c->srv;
    /* conn_api_handle() has just read the clock, unless the response is an
     * error from the connection layer: then read it now. */
    int64_t end = srv->clock_ns != 0 ? srv->clock_ns : conn_monotonic_ns();
    int64_t ns = c->start_ns != 0 ? end - c->start_ns : 0;
    if (METRICS_ENABLED)
        metrics_count_request(c->route.method, c->route.path, status, ns);
    if (srv->access_log != NULL)
        access_log_add(srv->access_log, c->fd, c->buf, c->buf != NULL ? c->buf_len : 0, status,
                       body_bytes, ns);
    c->start_ns = 0;
}

/* Sends resp (to HEAD: headers only, whatever the status). complete: the
 * request's bytes were all read (req_end is valid), so the connection may
 * continue. Returns 0, or -1 when the connection is gone. */
static int conn_respond(struct conn *c, const struct api_response *resp, int complete)
{
    struct conn_server *srv = c->srv;
    int head_only = c->route.head;
    uint64_t length =
        resp->file_fd >= 0 ? (uint64_t)resp->file_len + resp->suffix_len : resp->body_len;

    if (srv->timed)
        conn_account(c, resp->status, head_only ? 0 : length);

    c->close_after = !complete || !c->keep_alive || srv->draining;
    c->linger = !complete || (c->close_after && c->buf_len > c->req_end);
    size_t head_len = conn_format_head(srv, resp, length, c->close_after, c->minor_version);
    if (srv->on_response != NULL)
        srv->on_response(srv->on_response_arg, resp->status);

    struct iovec iov[2] = {{srv->head, head_len}, {(void *)resp->body, 0}};
    size_t total = head_len;
    if (!head_only && resp->file_fd < 0 && resp->body_len > 0) {
        iov[1].iov_len = resp->body_len;
        total += resp->body_len;
    }
    c->file_fd = -1;
    c->suffix = NULL;
    c->suffix_len = 0;
    if (!head_only && resp->file_fd >= 0) {
        c->file_fd = resp->file_fd;
        c->file_off = 0;
        c->file_end = resp->file_len;
        c->suffix = resp->suffix;
        c->suffix_len = resp->suffix_len;
        c->stream = resp->stream;
    } else if (resp->file_fd >= 0) {
        api_list_done(srv->api, resp->stream); /* HEAD: nothing to stream */
    }

    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};
    int flags = MSG_NOSIGNAL | (c->file_fd >= 0 ? MSG_MORE : 0);
    ssize_t n;
    do {
        n = sendmsg(c->fd, &msg, flags);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (!conn_would_block(errno)) {
            if (errno != EPIPE && errno != ECONNRESET)
                log_error("send to connection fd %d: %s", c->fd, strerror(errno));
            conn_close(c);
            return -1;
        }
        n = 0;
    }
    c->deadline_ms = srv->now_ms + srv->cfg->send_timeout_ms;
    c->state = c->file_fd >= 0 ? CONN_SEND_FILE : CONN_WRITE;
    if ((size_t)n < total) {
        /* Short write: keep the rest (the api's body is only valid until its
         * next call, and the head scratch is shared). */
        size_t rest = total - (size_t)n;
        c->out = malloc(rest);
        if (c->out == NULL) {
            log_error("out of memory for a response on connection fd %d", c->fd);
            conn_close(c);
            return -1;
        }
        size_t skip = (size_t)n;
        size_t o = 0;
        for (int i = 0; i < 2; i++) {
            size_t len = iov[i].iov_len;
            if (skip >= len) {
                skip -= len;
                continue;
            }
            memcpy(c->out + o, (char *)iov[i].iov_base + skip, len - skip);
            o += len - skip;
            skip = 0;
        }
        c->out_len = rest;
        c->out_off = 0;
    }
    int r = conn_flush(c);
    if (r < 0) {
        conn_close(c);
        return -1;
    }
    if (r == 0) {
        conn_set_interest(c, EVENT_LOOP_WRITE);
        return 0;
    }
    return conn_response_done(c);
}

/* An error response from the connection layer (parser, limits, timeouts):
 * the status and body come from api_error(), the one place for errors. */
static int conn_fail(struct conn *c, int status, const char *message)
{
    struct api_response resp;
    api_error(c->srv->api, status, message, &resp);
    return conn_respond(c, &resp, 0);
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
    while (srv->num_pool > 0)
        free(srv->pool[--srv->num_pool]);
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
