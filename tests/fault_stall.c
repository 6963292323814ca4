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
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    unsigned port = 0;
    const char *path = "/tareas";
    long read_bytes = 65536, stall_ms = 6000, drain_ms = 10000;
    int opt;
    while ((opt = getopt(argc, argv, "p:P:r:s:w:")) != -1) {
        switch (opt) {
        case 'p':
            port = (unsigned)atoi(optarg);
            break;
        case 'P':
            path = optarg;
            break;
        case 'r':
            read_bytes = atol(optarg);
            break;
        case 's':
            stall_ms = atol(optarg);
            break;
        case 'w':
            drain_ms = atol(optarg);
            break;
        default:
            port = 0;
            optind = argc + 1;
            break;
        }
    }
    if (port == 0 || port > 65535 || read_bytes < 1 || stall_ms < 0 || drain_ms < 0 ||
        optind != argc || strlen(path) > 1000) {
        fputs("usage: fault_stall -p PORT [-P PATH] [-r READ_BYTES] [-s STALL_MS] [-w DRAIN_MS]\n",
              stderr);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "fault_stall: socket: %s\n", strerror(errno));
        return 3;
    }
    /* Set before connect so that the window scale is small and the stall bites. */
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        fprintf(stderr, "fault_stall: connect 127.0.0.1:%u: %s\n", port, strerror(errno));
        close(fd);
        return 3;
    }
    char req[1200];
    int req_len =
        snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n", path, port);
    for (int off = 0; off < req_len;) {
        ssize_t w = send(fd, req + off, (size_t)(req_len - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            fprintf(stderr, "fault_stall: send to 127.0.0.1:%u: %s\n", port, strerror(errno));
            close(fd);
            return 3;
        }
        off += (int)w;
    }
    /* The head is kept whole (it is small); the body is only counted. */
    char head[8192];
    size_t head_len = 0;
    long long total = 0, body_start = -1, content_length = -1;
    int status = 0;
    const char *end = "timeout";
    int phase = 0; /* 0 reading the first READ_BYTES, 1 stalled, 2 draining */
    long long phase_end = now_ms() + drain_ms;
    for (;;) {
        long long now = now_ms();
        if (phase == 0 && total >= read_bytes) {
            phase = 1;
            phase_end = now + stall_ms;
            fprintf(stderr, "fault_stall: stalled after %lld bytes\n", total);
            fflush(stderr);
        }
        if (phase == 1 && now >= phase_end) {
            phase = 2;
            phase_end = now + drain_ms;
        }
        if (phase != 1 && content_length >= 0 && total - body_start >= content_length) {
            end = "complete";
            break;
        }
        if (now >= phase_end) {
            if (phase == 1)
                continue;
            break;
        }
        if (phase == 1) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)(phase_end - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        char buf[65536];
        size_t want = sizeof(buf);
        if (phase == 0 && (long long)want > read_bytes - total)
            want = (size_t)(read_bytes - total);
        ssize_t r = recv(fd, buf, want, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            end = "eof";
            break;
        }
        if (r < 0) {
            end = errno == ECONNRESET ? "reset" : "error";
            break;
        }
        if (body_start < 0) {
            size_t take =
                (size_t)r < sizeof(head) - 1 - head_len ? (size_t)r : sizeof(head) - 1 - head_len;
            memcpy(head + head_len, buf, take);
            head_len += take;
            head[head_len] = '\0';
            char *h_end = strstr(head, "\r\n\r\n");
            if (h_end != NULL) {
                body_start = (h_end - head) + 4;
                sscanf(head, "HTTP/1.%*d %d", &status);
                for (char *line = strstr(head, "\r\n"); line != NULL && line < h_end;
                     line = strstr(line + 2, "\r\n"))
                    if (strncasecmp(line + 2, "Content-Length:", 15) == 0)
                        content_length = atoll(line + 17);
            }
        }
        total += r;
    }
    printf("status=%d content_length=%lld received=%lld end=%s\n", status, content_length,
           body_start < 0 ? 0 : total - body_start, end);
    close(fd);
    return 0;
}
