/* conn_write.c - responses of a connection: the head, the body or a file range and its
 * suffix, short writes, and what comes after (keep-alive, close, linger). */
#include "conn_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "access_log.h"
#include "decimal.h"
#include "log.h"
#include "metrics.h"

static char *conn_put(char *p, const char *s, size_t len)
{
    memcpy(p, s, len);
    return p + len;
}

#define CONN_PUT_LIT(p, lit) conn_put((p), (lit), sizeof(lit) - 1)

/* Formats the response head into srv->head; returns its length. */
size_t conn_format_head(struct conn_server *srv, const struct api_response *resp,
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

/* ---- writing ---- */

int conn_would_block(int e)
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
int conn_flush(struct conn *c)
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
int conn_response_done(struct conn *c)
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
int conn_respond(struct conn *c, const struct api_response *resp, int complete)
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
int conn_fail(struct conn *c, int status, const char *message)
{
    struct api_response resp;
    api_error(c->srv->api, status, message, &resp);
    return conn_respond(c, &resp, 0);
}
