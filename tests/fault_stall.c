/* fault_stall.c - a client that stops reading in the middle of a large response, for the fault
 * suite.
 *
 *     fault_stall -p PORT [-P PATH] [-r READ_BYTES] [-s STALL_MS] [-w DRAIN_MS]
 *
 * Sends one GET PATH (default /tareas) with a 4 KB receive buffer, reads the
 * first READ_BYTES (default 65536) of the response, then reads nothing for
 * STALL_MS (default 6000): the server's send buffer fills and its write would
 * block. The test watches the server's side of the connection meanwhile.
 * When the stall begins it says so on stderr ("fault_stall: stalled after N
 * bytes"), for the test to wait on.
 * Then it drains for at most DRAIN_MS (default 10000) to learn how the
 * response ended, and prints one line:
 *     status=200 content_length=N received=M end=eof|reset|timeout|complete
 * received counts body bytes; complete means all of Content-Length arrived
 * (the server never gave up on the stalled reader).
 * Exit status: 0 line printed, 2 usage error, 3 connect or system error.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "driver.h"

static const char stall_usage[] =
    "usage: fault_stall -p PORT [-P PATH] [-r READ_BYTES] [-s STALL_MS] [-w DRAIN_MS]\n";

/* What came back, and how the response ended. */
struct stall {
    char head[8192]; /* kept whole (it is small); the body is only counted */
    size_t head_len;
    long long total, body_start, content_length;
    int status;
    const char *end;
};

/* Keeps the first bytes until the head is complete, then reads status and length. */
static void stall_head(struct stall *st, const char *buf, size_t n)
{
    size_t room = sizeof(st->head) - 1 - st->head_len;
    size_t take = n < room ? n : room;
    memcpy(st->head + st->head_len, buf, take);
    st->head_len += take;
    st->head[st->head_len] = '\0';
    char *h_end = strstr(st->head, "\r\n\r\n");
    if (h_end == NULL)
        return;
    size_t head_len = (size_t)(h_end - st->head) + 4, v_len;
    st->body_start = (long long)head_len;
    int status = driver_http_status(st->head, head_len);
    st->status = status > 0 ? status : 0;
    const char *v = driver_http_header(st->head, head_len, "Content-Length", &v_len);
    if (v != NULL)
        st->content_length = atoll(v);
}

/* Reads READ_BYTES, stalls STALL_MS, then drains for at most DRAIN_MS; fills st. */
static void stall_run(int fd, long read_bytes, long stall_ms, long drain_ms, struct stall *st)
{
    int phase = 0; /* 0 reading the first READ_BYTES, 1 stalled, 2 draining */
    long long phase_end = driver_now_ms() + drain_ms;
    st->end = "timeout";
    for (;;) {
        long long now = driver_now_ms();
        if (phase == 0 && st->total >= read_bytes) {
            phase = 1;
            phase_end = now + stall_ms;
            fprintf(stderr, "fault_stall: stalled after %lld bytes\n", st->total);
            fflush(stderr);
        }
        if (phase == 1 && now >= phase_end) {
            phase = 2;
            phase_end = now + drain_ms;
        }
        if (phase != 1 && st->content_length >= 0 &&
            st->total - st->body_start >= st->content_length) {
            st->end = "complete";
            return;
        }
        if (now >= phase_end)
            return;
        if (phase == 1) {
            driver_sleep_ms(20);
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)(phase_end - now));
        if (n <= 0)
            continue; /* EINTR, or the deadline: looked at above */
        char buf[65536];
        size_t want = sizeof(buf);
        if (phase == 0 && (long long)want > read_bytes - st->total)
            want = (size_t)(read_bytes - st->total);
        ssize_t r = recv(fd, buf, want, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            st->end = r == 0 ? "eof" : errno == ECONNRESET ? "reset" : "error";
            return;
        }
        if (st->body_start < 0)
            stall_head(st, buf, (size_t)r);
        st->total += r;
    }
}

int main(int argc, char **argv)
{
    long port = 0, read_bytes = 65536, stall_ms = 6000, drain_ms = 10000;
    const char *path = "/tareas";
    const struct driver_option options[] = {
        {'p', NULL, DRIVER_OPT_LONG, &port, 1, 65535, 1},
        {'P', NULL, DRIVER_OPT_TEXT, &path, 0, 0, 0},
        {'r', NULL, DRIVER_OPT_LONG, &read_bytes, 1, 1L << 40, 0},
        {'s', NULL, DRIVER_OPT_LONG, &stall_ms, 0, 3600000, 0},
        {'w', NULL, DRIVER_OPT_LONG, &drain_ms, 0, 3600000, 0},
    };
    if (driver_options("fault_stall", stall_usage, argc, argv, options,
                       sizeof(options) / sizeof(options[0]), 0) != argc ||
        strlen(path) > 1000) {
        fputs(stall_usage, stderr);
        return 2;
    }
    /* A 4 KB receive buffer set before the handshake: the window scale stays small and
     * the stall bites. */
    int fd = driver_connect("127.0.0.1", port, 4096);
    if (fd < 0) {
        fprintf(stderr, "fault_stall: connect 127.0.0.1:%ld: %s\n", port, strerror(errno));
        return 3;
    }
    char req[1200];
    int req_len =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%ld\r\n\r\n", path, port);
    if (driver_send_all(fd, req, (size_t)req_len) < 0) {
        fprintf(stderr, "fault_stall: send to 127.0.0.1:%ld: %s\n", port, strerror(errno));
        close(fd);
        return 3;
    }
    struct stall st = {.body_start = -1, .content_length = -1};
    stall_run(fd, read_bytes, stall_ms, drain_ms, &st);
    printf("status=%d content_length=%lld received=%lld end=%s\n", st.status, st.content_length,
           st.body_start < 0 ? 0 : st.total - st.body_start, st.end);
    close(fd);
    return 0;
}
