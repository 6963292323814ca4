/* conn_impl.h - what conn.c and conn_write.c share: the connection, its state chart, the
 * server of one worker. Nothing outside the connection layer includes it. */
#ifndef TASKSERVER_CONN_IMPL_H
#define TASKSERVER_CONN_IMPL_H

#include <stdint.h>
#include <time.h>

#include "conn.h"
#include "http_parser.h"

#define CONN_BUF_SIZE 4096          /* first input buffer; most requests fit */
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
    int close_after;           /* close once the response is out */
    int linger;                /* ... through LINGER: the client may still be sending */
    size_t lingered;           /* bytes dropped in LINGER */
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

/* ---- conn.c ---- */

uint64_t conn_monotonic_ms(void);
int64_t conn_monotonic_ns(void);
int64_t conn_clock_ns(struct conn_server *srv);
void conn_update_date(struct conn_server *srv);
void conn_close(struct conn *c);
void conn_set_interest(struct conn *c, unsigned mask);
void conn_next_request(struct conn *c);
void conn_buf_release(struct conn *c);

/* ---- conn_write.c: responses ---- */

int conn_would_block(int e);
/* Formats the response head into srv->head; returns its length. */
size_t conn_format_head(struct conn_server *srv, const struct api_response *resp,
                        uint64_t content_length, int close_after, int minor_version);
/* Pushes the pending response out. Returns 1 when all of it is sent, 0 when
 * the socket is full (wait for EPOLLOUT), -1 when the connection is broken. */
int conn_flush(struct conn *c);
/* The response is out: close, linger, or go on with the next request.
 * Returns 0, or -1 when the connection is gone. */
int conn_response_done(struct conn *c);
/* Sends resp (to HEAD: headers only). complete: the request's bytes were all
 * read, so the connection may continue. Returns 0, or -1 when it is gone. */
int conn_respond(struct conn *c, const struct api_response *resp, int complete);
/* An error response from the connection layer, through api_error(). */
int conn_fail(struct conn *c, int status, const char *message);

#endif
