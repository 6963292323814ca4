/* test_conn.c - connections over a socketpair: pipelining, bodies, 100-continue, errors, close. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "conn.h"
#include "event_loop.h"
#include "log.h"
#include "server_fixture.h"
#include "task_store.h"
#include "version.h"
#include "test_tmp.h"

static struct config cfg;
/* tasks.json: server_fixture_config() puts its path in cfg.file. */
static const char *const path = cfg.file;
static struct task_store *store;
static struct api *api;
static struct event_loop *loop;
static struct conn_server *srv;
static int client = -1;

static void setup(void)
{
    int sv[2];

    server_fixture_config(&cfg, "test_conn");
    cfg.max_body = 1000;
    cfg.header_timeout_ms = 1500;
    cfg.quiet = 1;
    api = server_fixture_open(&cfg);
    store = api_store(api);
    loop = event_loop_create();
    ck_assert_ptr_nonnull(loop);
    srv = conn_server_create(loop, api, &cfg);
    ck_assert_ptr_nonnull(srv);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(conn_open(srv, sv[0]), 0);
    client = sv[1];
}

static void teardown(void)
{
    if (client >= 0)
        close(client);
    conn_server_free(srv);
    event_loop_free(loop);
    server_fixture_close(api, &cfg);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the server side for up to ms, collecting what the client receives
 * into out until want_responses status lines arrived or EOF (*eof = 1). */
static size_t pump(char *out, size_t cap, size_t len, int want_responses, long ms, int *eof)
{
    long end = now_ms() + ms;
    *eof = 0;
    do {
        event_loop_poll(loop, 10, NULL);
        conn_server_tick(srv);
        for (;;) {
            ssize_t n = read(client, out + len, cap - 1 - len);
            if (n > 0) {
                len += (size_t)n;
                continue;
            }
            if (n == 0)
                *eof = 1;
            break;
        }
        out[len] = '\0';
        int got = 0;
        for (const char *p = out; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
            got++;
        if (*eof || (want_responses > 0 && got >= want_responses))
            break;
    } while (now_ms() < end);
    return len;
}

static void send_all(const char *data, size_t len)
{
    ck_assert_int_eq(write(client, data, len), (ssize_t)len);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static char buf[1 << 16];

START_TEST(test_pipelined_in_order)
{
    const char req[] = "GET /tareas/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /tareas HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n"
                       "{\"titulo\":\"a\"}"
                       "GET /tareas/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                       "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n";
    int eof;
    send_all(req, sizeof(req) - 1);
    pump(buf, sizeof(buf), 0, 4, 2000, &eof);
    const char *a = strstr(buf, "HTTP/1.1 404");
    const char *b = strstr(buf, "HTTP/1.1 201");
    const char *c = a && b ? strstr(b + 1, "HTTP/1.1 200") : NULL;
    const char *d = c ? strstr(c + 1, "HTTP/1.1 200") : NULL;
    ck_assert_msg(a && b && c && d && a < b, "got %s", buf);
    ck_assert_int_eq(eof, 0);
    ck_assert_msg(strstr(buf, "\r\nLocation: /tareas/1\r\n") != NULL, "got %s", buf);
    ck_assert_int_eq(count(buf, "\r\nDate: "), 4);
    ck_assert_int_eq(count(buf, "\r\nServer: taskserver/"), 4);
    ck_assert_int_eq(count(buf, "Connection: close"), 0);
    /* HEAD: headers only, so the buffer ends with the blank line. */
    ck_assert_msg(strcmp(buf + strlen(buf) - 4, "\r\n\r\n") == 0, "got %s", buf);
}
END_TEST

START_TEST(test_byte_at_a_time_chunked)
{
    const char req[] = "POST /tareas?x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5;ext=1\r\n{\"tit\r\n9\r\nulo\":\"b\"}\r\n0\r\nTrailer: y\r\n\r\n";
    int eof;
    size_t len = 0;
    for (size_t i = 0; i < sizeof(req) - 1; i++) {
        send_all(req + i, 1);
        len = pump(buf, sizeof(buf), len, 1, 0, &eof);
        ck_assert_msg(i == sizeof(req) - 2 || len == 0, "answer before the end, at byte %zu: %s", i,
                      buf);
    }
    len = pump(buf, sizeof(buf), len, 1, 2000, &eof);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 201 ", 13) == 0, "got %s", buf);
    ck_assert_msg(strstr(buf, "\"titulo\":\"b\"") != NULL, "got %s", buf);
}
END_TEST

START_TEST(test_expect_continue)
{
    const char head[] = "POST /tareas HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                        "Content-Length: 14\r\n\r\n";
    int eof;
    send_all(head, sizeof(head) - 1);
    size_t len = pump(buf, sizeof(buf), 0, 1, 2000, &eof);
    ck_assert_str_eq(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    send_all("{\"titulo\":\"c\"}", 14);
    pump(buf, sizeof(buf), len, 2, 2000, &eof);
    ck_assert_msg(strstr(buf, "\r\n\r\nHTTP/1.1 201 Created\r\n") != NULL, "got %s", buf);
}
END_TEST

static const struct refuse_case {
    const char *req;
    const char *status; /* expected status line prefix */
    int closes;
    const char *header;
} refuse_cases[] = {
    /* Refused before the body: final status instead of 100, then close. */
    {"POST /tareas HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n",
     "HTTP/1.1 413 ", 1, NULL},
    {"POST /nada HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
     "HTTP/1.1 404 ", 1, NULL},
    {"PUT /tareas HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", "HTTP/1.1 405 ", 1,
     "\r\nAllow: GET, HEAD, POST\r\n"},
    {"POST /tareas HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     "3e9\r\n",
     "HTTP/1.1 413 ", 1, NULL},
    {"POST /tareas HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     "HTTP/1.1 400 ", 1, NULL},
    {"GET /health HTTP/1.1\r\n\r\n", "HTTP/1.1 400 ", 1, NULL},
    {"POST /tareas HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 411 ", 0, NULL},
    {"DELETE /tareas/1 HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 405 ", 0,
     "\r\nAllow: GET, HEAD\r\n"},
    {"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 ", 1, NULL},
    {"GET /health HTTP/1.0\r\n\r\n", "HTTP/1.1 200 ", 1, NULL},
    {"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "HTTP/1.1 200 ", 0,
     "\r\nConnection: keep-alive\r\n"},
    /* RFC 9110 10.1.1: an expectation we cannot meet: 417 before any body
     * (no 100 first: the status line is the first thing sent), never stored. */
    {"POST /tareas HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 14\r\n\r\n"
     "{\"titulo\":\"e\"}",
     "HTTP/1.1 417 ", 1, "{\"error\":\"unsupported expectation"},
    {"POST /tareas HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, x=y\r\nContent-Length: 14\r\n"
     "\r\n",
     "HTTP/1.1 417 ", 1, NULL},
    {"GET /health HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", "HTTP/1.1 417 ", 0,
     "\r\nContent-Type: application/json\r\n"},
    /* Incomplete head: 408 after the header timeout. */
    {"GET /health HTTP/1.1\r\nHost: x\r\n", "HTTP/1.1 408 ", 1, NULL},
};

START_TEST(test_refusals)
{
    const struct refuse_case *c = &refuse_cases[_i];
    int eof;
    send_all(c->req, strlen(c->req));
    size_t len = pump(buf, sizeof(buf), 0, 1, 2000, &eof);
    ck_assert_msg(strncmp(buf, c->status, strlen(c->status)) == 0, "%s: expected %s, got %s",
                  c->req, c->status, buf);
    ck_assert_msg(strstr(buf, "\r\n\r\n{\"") != NULL, "%s: no JSON body: %s", c->req, buf);
    ck_assert_msg(!!strstr(buf, "\r\nConnection: close\r\n") == c->closes, "%s: close %d: %s",
                  c->req, c->closes, buf);
    if (c->header)
        ck_assert_msg(strstr(buf, c->header) != NULL, "%s: no %s in %s", c->req, c->header, buf);
    /* A connection that says close is closed (after lingering until the
     * client closes too); others stay open. */
    pump(buf, sizeof(buf), len, 0, c->closes ? 1000 : 100, &eof);
    ck_assert_msg(eof == c->closes, "%s: eof %d, expected %d", c->req, eof, c->closes);
    if (c->closes) {
        close(client);
        client = -1;
        for (int i = 0; i < 10 && conn_server_count(srv) > 0; i++) {
            event_loop_poll(loop, 10, NULL);
            conn_server_tick(srv);
        }
    }
    ck_assert_int_eq(conn_server_count(srv), c->closes ? 0u : 1u);
    /* None of these stores anything (a 417 never runs the request). */
    struct task_store_snapshot snap;
    char err[256];
    ck_assert_int_eq(task_store_snapshot(store, &snap, err, sizeof(err)), 0);
    ck_assert_msg(snap.num_tasks == 0, "%s: %llu tasks stored", c->req,
                  (unsigned long long)snap.num_tasks);
}
END_TEST

/* RFC 9110 9.3.2: a response to HEAD never has a body, whatever its status.
 * The body bytes would be read as the start of the next response. */
START_TEST(test_head_error_then_pipelined_get)
{
    const char req[] = "HEAD /health HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n"
                       "GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
    int eof;
    send_all(req, sizeof(req) - 1);
    pump(buf, sizeof(buf), 0, 2, 2000, &eof);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 417 ", 13) == 0, "got %s", buf);
    ck_assert_msg(strstr(buf, "\r\nContent-Length: ") != NULL, "got %s", buf);
    /* The 200 follows the 417's head at once: no body in between. */
    const char *next = strstr(buf, "\r\n\r\n");
    ck_assert_msg(next != NULL && strncmp(next + 4, "HTTP/1.1 200 OK\r\n", 17) == 0,
                  "expected the 200 right after the 417's head, got %s", buf);
    ck_assert_msg(strstr(buf, "\"error\"") == NULL, "a body was sent to HEAD: %s", buf);
    ck_assert_msg(strstr(next, "\"status\":\"ok\"") != NULL, "got %s", buf);
    ck_assert_int_eq(count(buf, "Connection: close"), 0);
    pump(buf, sizeof(buf), strlen(buf), 0, 100, &eof);
    ck_assert_int_eq(eof, 0);
    ck_assert_int_eq(conn_server_count(srv), 1u);
}
END_TEST

static const struct head_fail_case {
    const char *req;
    const char *status; /* expected status line prefix */
} head_fail_cases[] = {
    /* parser error after the method was read */
    {"HEAD /health HTTP/1.1\r\nHost: a b\r\n\r\n", "HTTP/1.1 400 "},
    /* body over --max-body: 413 before the body */
    {"HEAD /tareas HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", "HTTP/1.1 413 "},
    /* refused with a body announced: the final status instead of reading it */
    {"HEAD /nada HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", "HTTP/1.1 404 "},
    /* bad chunked framing, found while reading the body */
    {"HEAD /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     "HTTP/1.1 400 "},
    /* a body and an expectation that cannot be met */
    {"HEAD /health HTTP/1.1\r\nHost: x\r\nExpect: x\r\nContent-Length: 3\r\n\r\n", "HTTP/1.1 417 "},
};

START_TEST(test_head_errors_have_no_body)
{
    const struct head_fail_case *c = &head_fail_cases[_i];
    int eof;
    send_all(c->req, strlen(c->req));
    size_t len = pump(buf, sizeof(buf), 0, 1, 2000, &eof);
    ck_assert_msg(strncmp(buf, c->status, strlen(c->status)) == 0, "%s: expected %s, got %s",
                  c->req, c->status, buf);
    ck_assert_msg(strstr(buf, "\r\nConnection: close\r\n") != NULL, "%s: got %s", c->req, buf);
    /* Wait for the close: every byte the server sent is in buf by then. */
    len = pump(buf, sizeof(buf), len, 0, 1000, &eof);
    ck_assert_msg(eof == 1, "%s: not closed: %s", c->req, buf);
    ck_assert_msg(len >= 4 && strcmp(buf + len - 4, "\r\n\r\n") == 0 &&
                      strstr(buf, "\r\n\r\n") == buf + len - 4,
                  "%s: expected headers only, got %s", c->req, buf);
}
END_TEST

/* Chunk extensions follow --max-request-line, trailers --max-header-bytes
 * (README, Limits): at the limit 201, over it 400. */
static const struct chunk_limit_case {
    size_t ext_len;     /* bytes after the ';' of the first size line, its CR included */
    size_t trailer_len; /* bytes of one trailer field line, its CRLF included */
    const char *status;
} chunk_limit_cases[] = {
    {64, 0, "HTTP/1.1 201 "},
    {65, 0, "HTTP/1.1 400 "},
    {0, 256, "HTTP/1.1 201 "},
    {0, 257, "HTTP/1.1 400 "},
};

START_TEST(test_chunk_limits_follow_flags)
{
    const struct chunk_limit_case *c = &chunk_limit_cases[_i];
    static char req[4096];
    size_t n;
    int eof;

    cfg.max_request_line = 64;
    cfg.max_header_bytes = 258; /* the trailer section: a 256-byte field line, the final CRLF */
    n = (size_t)snprintf(req, sizeof(req),
                         "POST /tareas HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "e%s",
                         c->ext_len ? ";" : "");
    for (size_t i = 1; i < c->ext_len; i++)
        req[n++] = 'x';
    n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n{\"titulo\":\"t\"}\r\n0\r\n");
    if (c->trailer_len > 0) {
        n += (size_t)snprintf(req + n, sizeof(req) - n, "X:");
        for (size_t i = 4; i < c->trailer_len; i++)
            req[n++] = 'v';
        n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n");
    }
    n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n");
    ck_assert(n < sizeof(req));
    send_all(req, n);
    pump(buf, sizeof(buf), 0, 1, 2000, &eof);
    ck_assert_msg(strncmp(buf, c->status, strlen(c->status)) == 0,
                  "extension %zu, trailer %zu bytes: expected %s, got %s", c->ext_len,
                  c->trailer_len, c->status, buf);
}
END_TEST

START_TEST(test_drain_closes_idle)
{
    int eof;
    const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(req, sizeof(req) - 1);
    size_t len = pump(buf, sizeof(buf), 0, 1, 2000, &eof);
    ck_assert_int_eq(count(buf, "HTTP/1.1 200"), 1);
    ck_assert_int_eq(conn_server_count(srv), 1u);
    conn_server_drain(srv);
    ck_assert_int_eq(conn_server_count(srv), 0u);
    pump(buf, sizeof(buf), len, 0, 200, &eof);
    ck_assert_int_eq(eof, 1);
}
END_TEST

/* ---- deadlines against requests already sent (the lost-request bug) ----
 *
 * The sweep runs after a batch of events; a request that arrived meanwhile
 * is still in the kernel. A connection must not be closed as idle while a
 * request sits unread: the client would see a reset for a request the server
 * never logged. These call conn_server_tick() or conn_server_drain() between
 * the client's write and the next poll, where the worker's loop can be. */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

START_TEST(test_expiry_serves_waiting_request)
{
    const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    int eof;
    cfg.keepalive_timeout_ms = 100;
    send_all(req, sizeof(req) - 1);
    size_t len = pump(buf, sizeof(buf), 0, 1, 2000, &eof);
    ck_assert_int_eq(count(buf, "HTTP/1.1 200"), 1);
    /* Past the keep-alive deadline and the sweep interval, no poll in between. */
    sleep_ms(CONN_TICK_MS + 150);
    send_all(req, sizeof(req) - 1);
    conn_server_tick(srv);
    ck_assert_int_eq(conn_server_count(srv), 1u);
    pump(buf, sizeof(buf), len, 2, 2000, &eof);
    ck_assert_msg(count(buf, "HTTP/1.1 200") == 2, "expected 2 responses, eof %d, got %s", eof,
                  buf);
    ck_assert_int_eq(eof, 0);
    /* Really idle now: closed silently once the deadline passes. */
    pump(buf, sizeof(buf), strlen(buf), 0, 1000, &eof);
    ck_assert_int_eq(eof, 1);
    ck_assert_int_eq(count(buf, "HTTP/1.1 "), 2);
    ck_assert_int_eq(conn_server_count(srv), 0u);
}
END_TEST

START_TEST(test_expiry_partial_head_still_408)
{
    /* Catching up must not excuse a slow client: more bytes, still no head. */
    int eof;
    send_all("GET /health HTTP/1.1\r\n", 22);
    pump(buf, sizeof(buf), 0, 0, 100, &eof);
    sleep_ms((long)cfg.header_timeout_ms + CONN_TICK_MS);
    send_all("Host: x\r\n", 9);
    conn_server_tick(srv);
    pump(buf, sizeof(buf), 0, 1, 2000, &eof);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 408 ", 13) == 0, "got %s", buf);
}
END_TEST

/* A body that stops coming: 408 once the body deadline passes, then the connection closes. */
START_TEST(test_expiry_partial_body_408)
{
    int eof;
    cfg.body_timeout_ms = 200;
    const char req[] = "POST /tareas HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\n{\"titulo\":";
    send_all(req, sizeof(req) - 1);
    pump(buf, sizeof(buf), 0, 0, 100, &eof);
    ck_assert_msg(buf[0] == '\0', "answered before the body came: %s", buf);
    sleep_ms((long)cfg.body_timeout_ms + CONN_TICK_MS);
    conn_server_tick(srv);
    pump(buf, sizeof(buf), 0, 0, 3000, &eof);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 408 ", 13) == 0, "got %s", buf);
    ck_assert_msg(strstr(buf, "timed out reading the request body") != NULL, "got %s", buf);
    ck_assert_int_eq(eof, 1);
    uint64_t num = 99;
    char err[256];
    ck_assert_int_eq(task_store_count(store, &num, err, sizeof(err)), 0);
    ck_assert_uint_eq(num, 0);
}
END_TEST

static int statuses[8], num_statuses;

static void note_status(void *arg, int status)
{
    (void)arg;
    if (num_statuses < 8)
        statuses[num_statuses++] = status;
}

/* Over the connection limit: a short 503 that says why, Connection: close, the socket
 * closed, the status reported to the watcher; the server holds no connection for it. */
START_TEST(test_reject)
{
    int sv[2], eof;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    num_statuses = 0;
    conn_server_on_response(srv, note_status, NULL);
    unsigned before = conn_server_count(srv);
    conn_reject(srv, sv[0]);
    ck_assert_uint_eq(conn_server_count(srv), before);
    ck_assert_int_eq(num_statuses, 1);
    ck_assert_int_eq(statuses[0], 503);
    size_t len = 0;
    ssize_t n;
    while ((n = read(sv[1], buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    eof = n == 0;
    ck_assert_int_eq(eof, 1);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 503 ", 13) == 0, "got %s", buf);
    ck_assert_msg(strstr(buf, "\r\nConnection: close\r\n") != NULL, "got %s", buf);
    ck_assert_msg(strstr(buf, "{\"error\":\"too many connections to this worker, retry\"}") != NULL,
                  "got %s", buf);
    close(sv[1]);
}
END_TEST

/* Two POSTs in one batch, one client gone before its answer: its task is stored all the
 * same (nobody to tell), the other client gets its 201, the gone one's socket is closed. */
START_TEST(test_batch_with_client_gone)
{
    int sv[2], eof;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    ck_assert_int_eq(conn_open(srv, sv[0]), 0);
    ck_assert_uint_eq(conn_server_count(srv), 2);
    const char post[] = "POST /tareas HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n"
                        "{\"titulo\":\"a\"}";
    ck_assert_int_eq(write(sv[1], post, sizeof(post) - 1), (ssize_t)(sizeof(post) - 1));
    close(sv[1]); /* gone: its answer has nowhere to go */
    send_all(post, sizeof(post) - 1);
    pump(buf, sizeof(buf), 0, 1, 3000, &eof);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 201 ", 13) == 0, "got %s", buf);
    for (int i = 0; i < 50 && conn_server_count(srv) > 1; i++)
        event_loop_poll(loop, 10, NULL);
    ck_assert_uint_eq(conn_server_count(srv), 1);
    uint64_t num = 0;
    char err[256];
    ck_assert_int_eq(task_store_count(store, &num, err, sizeof(err)), 0);
    ck_assert_uint_eq(num, 2);
}
END_TEST

START_TEST(test_drain_serves_waiting_request)
{
    const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    int eof;
    send_all(req, sizeof(req) - 1);
    size_t len = pump(buf, sizeof(buf), 0, 1, 2000, &eof);
    ck_assert_int_eq(count(buf, "HTTP/1.1 200"), 1);
    /* Sent, not yet read by the worker, when the shutdown begins. */
    send_all(req, sizeof(req) - 1);
    conn_server_drain(srv);
    pump(buf, sizeof(buf), len, 0, 2000, &eof);
    ck_assert_msg(count(buf, "HTTP/1.1 200") == 2, "expected 2 responses, got %s", buf);
    ck_assert_msg(strstr(buf + len, "\r\nConnection: close\r\n") != NULL, "got %s", buf + len);
    ck_assert_int_eq(eof, 1);
}
END_TEST

START_TEST(test_deadline_after_lock_wait)
{
    /* The store call blocks behind another process's lock for longer than
     * the keep-alive timeout: the idle deadline starts after the response,
     * not before the wait. */
    if (!version_locking())
        return; /* -Dlocking=false: the store never waits */
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0 || fcntl(fd, F_SETLKW, &fl) < 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        sleep_ms(700);
        _exit(0);
    }
    char x;
    ck_assert_int_eq(read(ready[0], &x, 1), 1);
    close(ready[0]);
    close(ready[1]);
    cfg.keepalive_timeout_ms = 400;
    const char post[] = "POST /tareas HTTP/1.1\r\nHost: x\r\nContent-Length: 14\r\n\r\n"
                        "{\"titulo\":\"l\"}";
    int eof, status;
    long t0 = now_ms();
    send_all(post, sizeof(post) - 1);
    size_t len = pump(buf, sizeof(buf), 0, 1, 3000, &eof);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 201 ", 13) == 0, "got %s", buf);
    ck_assert_msg(now_ms() - t0 >= 600, "the store did not wait for the lock");
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    /* Well within 400 ms of the response: still open. */
    len = pump(buf, sizeof(buf), len, 0, 100, &eof);
    ck_assert_int_eq(eof, 0);
    ck_assert_int_eq(conn_server_count(srv), 1u);
    send_all("GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 34);
    pump(buf, sizeof(buf), len, 2, 2000, &eof);
    ck_assert_msg(count(buf, "HTTP/1.1 200") == 1, "got %s", buf);
}
END_TEST

START_TEST(test_large_list_sendfile)
{
    /* Many tasks, read slowly: the file part resumes on EPOLLOUT. */
    char body[64];
    struct api_response r;
    struct api_route route;
    api_route("POST", 4, "/tareas", 7, &route);
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(body, sizeof(body), "{\"titulo\":\"task %d\"}", i);
        api_handle(api, &route, body, (size_t)n, &r);
        ck_assert_int_eq(r.status, 201);
    }
    const char req[] = "GET /tareas HTTP/1.1\r\nHost: x\r\n\r\nGET /tareas/3000 HTTP/1.1\r\n"
                       "Host: x\r\nConnection: close\r\n\r\n";
    int eof;
    static char big[1 << 20];
    send_all(req, sizeof(req) - 1);
    size_t len = pump(big, sizeof(big), 0, 0, 3000, &eof);
    ck_assert_int_eq(eof, 1);
    char *p = strstr(big, "Content-Length: ");
    ck_assert_ptr_nonnull(p);
    long cl = atol(p + 16);
    char *body_start = strstr(big, "\r\n\r\n") + 4;
    ck_assert_msg(cl > 3000 * 20, "content-length %ld", cl);
    ck_assert_msg(body_start + cl <= big + len, "short body");
    ck_assert_msg(strncmp(body_start, "[\n{\"id\":1,", 10) == 0, "got %.20s", body_start);
    ck_assert_msg(strncmp(body_start + cl - 4, "}\n]\n", 4) == 0, "end %.4s", body_start + cl - 4);
    ck_assert_msg(strncmp(body_start + cl, "HTTP/1.1 200 OK", 15) == 0, "then %.20s",
                  body_start + cl);
}
END_TEST

/* Responses that do not fit in the socket (pipelined GET /tareas/1 with a long task, the
 * client not reading): the rest of a short write is kept and sent on EPOLLOUT, and every
 * response arrives whole, in order, once the client reads. */
START_TEST(test_short_writes_resume)
{
    enum { NUM = 600 };
    static char body[1000], big[2 << 20];
    struct api_response r;
    struct api_route route;
    char titulo[901];
    memset(titulo, 'x', sizeof(titulo) - 1);
    titulo[sizeof(titulo) - 1] = '\0';
    int n = snprintf(body, sizeof(body), "{\"titulo\":\"%s\"}", titulo);
    api_route("POST", 4, "/tareas", 7, &route);
    api_handle(api, &route, body, (size_t)n, &r);
    ck_assert_int_eq(r.status, 201);
    static char reqs[NUM * 40];
    size_t reqs_len = 0;
    for (int i = 0; i < NUM; i++)
        reqs_len += (size_t)snprintf(reqs + reqs_len, sizeof(reqs) - reqs_len,
                                     "GET /tareas/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    send_all(reqs, reqs_len);
    /* The server fills the socket and waits for room; nothing more happens meanwhile. */
    for (int i = 0; i < 20; i++)
        event_loop_poll(loop, 10, NULL);
    int eof;
    size_t len = pump(big, sizeof(big), 0, NUM, 10000, &eof);
    ck_assert_int_eq(eof, 0);
    ck_assert_int_eq(count(big, "HTTP/1.1 200 OK\r\n"), NUM);
    ck_assert_int_eq(count(big, titulo), NUM);
    /* Whole and in order: every response is head, then exactly its body. */
    const char *p = big;
    for (int i = 0; i < NUM; i++) {
        ck_assert_msg(strncmp(p, "HTTP/1.1 200 OK\r\n", 17) == 0, "response %d: %.40s", i, p);
        const char *cl = strstr(p, "Content-Length: ");
        const char *end = strstr(p, "\r\n\r\n");
        ck_assert_ptr_nonnull(cl);
        ck_assert_ptr_nonnull(end);
        ck_assert(cl < end);
        p = end + 4;
        ck_assert_msg(strncmp(p, "{\"id\":1,", 8) == 0, "response %d body: %.20s", i, p);
        p += atol(cl + 16);
    }
    ck_assert_ptr_eq(p, big + len);
}
END_TEST

/* A reset while GET /tareas is being sent: with or without new tasks past
 * the snapshot's end, the response ends short of its Content-Length, never
 * with the closing "]" of a list spliced from two. */
static const int reset_refills[] = {0, 12000};

START_TEST(test_reset_while_sending_list)
{
    char body[64], err[256];
    struct api_response r;
    struct api_route route;
    api_route("POST", 4, "/tareas", 7, &route);
    for (int i = 0; i < 10000; i++) { /* about 1 MB: more than the socket holds */
        int n = snprintf(body, sizeof(body), "{\"titulo\":\"task %d\"}", i);
        api_handle(api, &route, body, (size_t)n, &r);
        ck_assert_int_eq(r.status, 201);
    }
    const char req[] = "GET /tareas HTTP/1.1\r\nHost: x\r\n\r\n";
    static char big[4 << 20];
    int eof;
    send_all(req, sizeof(req) - 1);
    /* The server fills the socket; the client takes the head and a first part. */
    for (int i = 0; i < 20; i++)
        event_loop_poll(loop, 10, NULL);
    ssize_t got = read(client, big, 64 * 1024);
    ck_assert_int_gt(got, 0);
    size_t len = (size_t)got;
    big[len] = '\0';
    char *p = strstr(big, "Content-Length: ");
    ck_assert_ptr_nonnull(p);
    long cl = atol(p + 16);
    size_t head_len = (size_t)(strstr(big, "\r\n\r\n") + 4 - big);
    ck_assert_msg(len < head_len + (size_t)cl, "all %zu bytes sent before the reset", len);

    ck_assert_msg(task_store_reset(store, err, sizeof(err)) == 0, "%s", err);
    for (int i = 0; i < reset_refills[_i]; i++) {
        int n = snprintf(body, sizeof(body), "{\"titulo\":\"refill task %d\"}", i);
        api_handle(api, &route, body, (size_t)n, &r);
        ck_assert_int_eq(r.status, 201);
    }
    len = pump(big, sizeof(big), len, 0, 5000, &eof);
    ck_assert_int_eq(eof, 1);
    ck_assert_msg(len < head_len + (size_t)cl, "case %d: full body of %ld bytes after a reset", _i,
                  cl);
    ck_assert_msg(len < 3 || memcmp(big + len - 3, "\n]\n", 3) != 0, "case %d: closed list", _i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conn");
    TCase *tc = tcase_create("conn");
    tcase_set_timeout(tc, 30);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pipelined_in_order);
    tcase_add_test(tc, test_byte_at_a_time_chunked);
    tcase_add_test(tc, test_expect_continue);
    tcase_add_loop_test(tc, test_refusals, 0, sizeof(refuse_cases) / sizeof(refuse_cases[0]));
    tcase_add_test(tc, test_head_error_then_pipelined_get);
    tcase_add_loop_test(tc, test_head_errors_have_no_body, 0,
                        sizeof(head_fail_cases) / sizeof(head_fail_cases[0]));
    tcase_add_loop_test(tc, test_chunk_limits_follow_flags, 0,
                        sizeof(chunk_limit_cases) / sizeof(chunk_limit_cases[0]));
    tcase_add_test(tc, test_drain_closes_idle);
    tcase_add_test(tc, test_expiry_serves_waiting_request);
    tcase_add_test(tc, test_expiry_partial_head_still_408);
    tcase_add_test(tc, test_drain_serves_waiting_request);
    tcase_add_test(tc, test_expiry_partial_body_408);
    tcase_add_test(tc, test_reject);
    tcase_add_test(tc, test_batch_with_client_gone);
    tcase_add_test(tc, test_deadline_after_lock_wait);
    tcase_add_test(tc, test_large_list_sendfile);
    tcase_add_test(tc, test_short_writes_resume);
    tcase_add_loop_test(tc, test_reset_while_sending_list, 0,
                        sizeof(reset_refills) / sizeof(reset_refills[0]));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    test_tmp_begin("test_conn");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
