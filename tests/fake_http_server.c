/* fake_http_server.c - a tiny HTTP/1.1 server that misbehaves on purpose, for clientemulator's
 * tests.
 *
 *   fake_http_server --mode ok|500|close|partial|mixed|close-second|hang|refuse-posts
 *                    [--list FILE | --list-status CODE] [--max-seconds S]
 *
 * Binds 127.0.0.1 on a free port and prints "listening on 127.0.0.1:PORT" on
 * stderr. GET /health answers 200; GET /tareas answers 200 with FILE (default
 * "[\n]\n"), or CODE with an error body; POST /tareas answers by mode:
 *   ok       201 (nothing is stored)
 *   500      500, keep-alive
 *   close    closes the connection without a response, after reading the request
 *   partial  sends a 201 header promising 100 bytes, one byte, then closes
 *   mixed    odd POSTs 500 with "Connection: close", even POSTs close (an exact
 *            half-and-half split: no connection is reused, so curl never resends)
 *   close-second  the first POST of each connection 201 (keep-alive), the second
 *            closes the connection without a response: the case where libcurl
 *            would silently send the POST again on a fresh connection
 *   hang     reads POSTs and never answers (the client's timeout must fire)
 *   refuse-posts  closes its listening socket as it answers the first GET
 *            /health, so the POSTs that follow find the port closed (refused)
 * Exits on SIGTERM/SIGINT or after --max-seconds (default 120), printing
 * "fake_http_server: N posts" on stderr: every complete POST it received,
 * answered or not, so a test can compare it with what the client says it sent.
 * Single-threaded, poll(2), blocking writes: it serves tests, not load.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

#define FAKE_MAX_CONNS 512
#define FAKE_BUF 16384

struct fake_conn {
    int fd;             /* -1 when free */
    unsigned num_posts; /* POSTs received on this connection */
    size_t len;
    char buf[FAKE_BUF];
};

static volatile sig_atomic_t fake_stop;
static const char *fake_mode = "ok";
static char *fake_list;
static size_t fake_list_len;
static long fake_list_status = 200;
static unsigned long fake_num_posts;
static int fake_lfd = -1; /* the listening socket; -1 once refuse-posts closed it */
static struct fake_conn fake_conns[FAKE_MAX_CONNS];

static void fake_on_signal(int sig)
{
    (void)sig;
    fake_stop = 1;
}

static int fake_respond(int fd, int status, const char *reason, const char *extra, const char *body,
                        size_t body_len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     status, reason, body_len, extra);
    if (driver_send_all(fd, head, (size_t)n) < 0)
        return -1;
    return driver_send_all(fd, body, body_len);
}

static void fake_close(struct fake_conn *c)
{
    close(c->fd);
    c->fd = -1;
    c->len = 0;
    c->num_posts = 0;
}

/* Answers every complete request in c->buf; returns -1 when c was closed. */
static int fake_serve(struct fake_conn *c)
{
    for (;;) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
            return 0;
        size_t head_len = (size_t)(end - c->buf) + 4;
        size_t body_len = 0, v_len;
        const char *v = driver_http_header(c->buf, head_len, "Content-Length", &v_len);
        if (v != NULL)
            body_len = strtoul(v, NULL, 10); /* the value ends at its CR */
        if (head_len + body_len > c->len)
            return 0; /* the body is still coming */
        int is_post = strncmp(c->buf, "POST ", 5) == 0;
        int is_health = strncmp(c->buf, "GET /health ", 12) == 0;
        int is_list = strncmp(c->buf, "GET /tareas ", 12) == 0;
        memmove(c->buf, c->buf + head_len + body_len, c->len - head_len - body_len);
        c->len -= head_len + body_len;
        int rc = 0;
        if (is_health) {
            const char *b = "{\"status\":\"ok\",\"workers\":1,\"locking\":true,\"tasks\":0}";
            /* Closed before the answer goes out: the client cannot connect again
             * before the port is shut, so every POST is refused, never reset. */
            if (strcmp(fake_mode, "refuse-posts") == 0 && fake_lfd >= 0) {
                close(fake_lfd);
                fake_lfd = -1;
            }
            rc = fake_respond(c->fd, 200, "OK", "", b, strlen(b));
        } else if (is_list) {
            if (fake_list_status == 200)
                rc = fake_respond(c->fd, 200, "OK", "", fake_list, fake_list_len);
            else
                rc = fake_respond(c->fd, (int)fake_list_status, "Error", "", "{\"error\":\"fake\"}",
                                  16);
        } else if (!is_post) {
            rc = fake_respond(c->fd, 404, "Not Found", "", "{}", 2);
        } else {
            unsigned long k = ++fake_num_posts;
            const char *mode = fake_mode;
            if (strcmp(mode, "mixed") == 0)
                mode = k % 2 ? "500close" : "close";
            else if (strcmp(mode, "close-second") == 0)
                mode = ++c->num_posts == 1 ? "ok" : "close";
            if (strcmp(mode, "hang") == 0) {
                rc = 0; /* read and forgotten: the client waits for its timeout */
            } else if (strcmp(mode, "ok") == 0) {
                rc = fake_respond(c->fd, 201, "Created", "", "{}", 2);
            } else if (strcmp(mode, "500") == 0) {
                rc = fake_respond(c->fd, 500, "Internal Server Error", "", "{}", 2);
            } else if (strcmp(mode, "500close") == 0) {
                fake_respond(c->fd, 500, "Internal Server Error", "Connection: close\r\n", "{}", 2);
                rc = -1;
            } else if (strcmp(mode, "partial") == 0) {
                const char *h = "HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{";
                driver_send_all(c->fd, h, strlen(h));
                rc = -1;
            } else {
                rc = -1; /* close: no response at all */
            }
        }
        if (rc < 0) {
            fake_close(c);
            return -1;
        }
    }
}

static int fake_load_list(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fake_http_server: open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16;
    fake_list = malloc(cap);
    size_t n;
    while (fake_list && (n = fread(fake_list + fake_list_len, 1, cap - fake_list_len, f)) > 0) {
        fake_list_len += n;
        if (fake_list_len == cap)
            fake_list = realloc(fake_list, cap *= 2);
    }
    fclose(f);
    if (!fake_list) {
        fprintf(stderr, "fake_http_server: %s: out of memory\n", path);
        return -1;
    }
    return 0;
}

static const char fake_usage[] =
    "usage: fake_http_server --mode ok|500|close|partial|mixed|close-second|hang|refuse-posts\n"
    "                        [--list FILE | --list-status CODE] [--max-seconds S]\n";

/* Binds 127.0.0.1 on a free port and says which on stderr. Returns the socket or -1. */
static int fake_listen(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 512) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) < 0) {
        fprintf(stderr, "fake_http_server: listen on 127.0.0.1: %s\n", strerror(errno));
        return -1;
    }
    fprintf(stderr, "listening on 127.0.0.1:%u\n", ntohs(sin.sin_port));
    return fd;
}

int main(int argc, char **argv)
{
    long max_seconds = 120;
    const char *list_path = NULL;
    const struct driver_option options[] = {
        {0, "mode", DRIVER_OPT_TEXT, &fake_mode, 0, 0, 0},
        {0, "list", DRIVER_OPT_TEXT, &list_path, 0, 0, 0},
        {0, "list-status", DRIVER_OPT_LONG, &fake_list_status, 100, 599, 0},
        {0, "max-seconds", DRIVER_OPT_LONG, &max_seconds, 1, 86400, 0},
    };
    if (driver_options("fake_http_server", fake_usage, argc, argv, options,
                       sizeof(options) / sizeof(options[0]), 0) != argc) {
        fputs(fake_usage, stderr);
        return 2;
    }
    if (list_path != NULL && fake_load_list(list_path) < 0)
        return 1;
    static const char *const modes[] = {"ok",    "500",          "close", "partial",
                                        "mixed", "close-second", "hang",  "refuse-posts"};
    int known = 0;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        known |= strcmp(fake_mode, modes[i]) == 0;
    if (!known) {
        fprintf(stderr, "fake_http_server: unknown mode \"%s\"\n%s", fake_mode, fake_usage);
        return 2;
    }
    if (!fake_list) {
        fake_list = strdup("[\n]\n");
        fake_list_len = strlen(fake_list);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = fake_on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    fake_lfd = fake_listen();
    if (fake_lfd < 0)
        return 1;

    for (int i = 0; i < FAKE_MAX_CONNS; i++)
        fake_conns[i].fd = -1;
    time_t deadline = time(NULL) + max_seconds;
    struct pollfd pfds[FAKE_MAX_CONNS + 1];
    int idx[FAKE_MAX_CONNS + 1];
    while (!fake_stop && time(NULL) < deadline) {
        nfds_t n = 0;
        pfds[n].fd = fake_lfd; /* poll(2) ignores a negative fd */
        pfds[n++].events = POLLIN;
        for (int i = 0; i < FAKE_MAX_CONNS; i++) {
            if (fake_conns[i].fd >= 0) {
                idx[n] = i;
                pfds[n].fd = fake_conns[i].fd;
                pfds[n++].events = POLLIN;
            }
        }
        int r = poll(pfds, n, 200);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "fake_http_server: poll: %s\n", strerror(errno));
            return 1;
        }
        if (pfds[0].revents & POLLIN) {
            int fd = accept4(fake_lfd, NULL, NULL, SOCK_CLOEXEC);
            int slot = -1;
            for (int i = 0; fd >= 0 && i < FAKE_MAX_CONNS && slot < 0; i++)
                if (fake_conns[i].fd < 0)
                    slot = i;
            if (fd >= 0 && slot < 0)
                close(fd);
            else if (fd >= 0)
                fake_conns[slot].fd = fd;
        }
        for (nfds_t k = 1; k < n; k++) {
            if (!pfds[k].revents)
                continue;
            struct fake_conn *c = &fake_conns[idx[k]];
            ssize_t got = read(c->fd, c->buf + c->len, FAKE_BUF - c->len);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0 || (c->len += (size_t)got) == FAKE_BUF) {
                fake_close(c);
                continue;
            }
            fake_serve(c);
        }
    }
    fprintf(stderr, "fake_http_server: %lu posts\n", fake_num_posts);
    return 0;
}
