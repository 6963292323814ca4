/* raw_http.c - a raw-socket HTTP client for end-to-end tests: exact bytes out, checked responses
 * in.
 *
 * curl cannot send malformed requests, pipeline, drip a request one byte at a
 * time or stall half-way, so the shell tests use this driver for those cases.
 *
 * Script mode: one connection, actions run in order:
 *
 *     raw_http -p PORT [-h ADDR] [-t TIMEOUT_MS] [-q] ACTION...
 *
 *     send:TEXT        write TEXT (escapes: \r \n \t \0 \\ \xHH)
 *     drip:TEXT        write TEXT one byte per write(2)
 *     file:PATH        write the file's bytes
 *     sleep:MS         pause
 *     mark:TEXT        print "raw_http: mark: TEXT" on stderr at once, for a test to
 *                      wait on (the actions before it are done)
 *     shut             shutdown(SHUT_WR): no more request bytes
 *     status:NNN       read the next response; its status must be NNN
 *     status:NNN:head  the same for a response without body (HEAD)
 *     status-or-close:NNN  a NNN response, or the server closing without one
 *     close[:MS]       the server must close (EOF or reset) with no more bytes,
 *                      within MS ms (default: the -t timeout). An immediate close
 *                      must be told from an idle keep-alive close (5 s by default),
 *                      so it gets a shorter wait than that.
 *     open:MS          the server must neither send nor close for MS ms
 *     header:NAME[:SUB]  the last response has header NAME (containing SUB)
 *     std-headers      the last response has Date, Server, Content-Type, Content-Length
 *     body:SUB         the last response's body contains SUB (escapes allowed)
 *
 * Hold mode, for slow and idle clients (timeouts and the fault suite):
 *
 *     raw_http hold -p PORT -n COUNT -d HOLD_MS [-s PREFIX] [-i DRIP_MS] [-R]
 *
 * opens COUNT connections, sends PREFIX on each (whole, or one byte every
 * DRIP_MS on every connection), then waits HOLD_MS (or until every connection
 * is closed), reading whatever arrives unless -R (never read: a client that
 * stops reading). Once every connection is made and has been sent its prefix
 * (its first byte, when dripping), it says so on stderr, for tests to wait on:
 *     raw_http: hold: ready, C connected
 * At the end it prints one line:
 *     connected=C failed=F closed=K answered=A statuses=408:3,400:1 close_ms=MIN..MAX
 * close_ms: over the connections the server closed, the time from the first
 * byte sent (from the connect without a prefix) to the end of file seen on
 * the socket, so a test times the server rather than its own loop (empty if
 * none was closed). The wait between two looks at the sockets is at most 10 ms.
 *
 * Exit status: 0 every check passed, 1 a check failed (with expected and got
 * on stderr), 2 usage error, 3 connect or system error.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver.h"

#define RAW_HTTP_IN_MAX (8 * 1024 * 1024) /* the largest transcript a test reads */
#define RAW_HTTP_MAX_STATUSES 16

static const char *raw_http_addr = "127.0.0.1";
static long raw_http_port;
static long raw_http_timeout_ms = 5000;
static int raw_http_quiet;

/* What the server sent on the script connection, parsed from the front. */
static char *in_buf;
static size_t in_len;  /* bytes received */
static size_t in_pos;  /* bytes consumed by parsed responses */
static int in_eof;     /* the server closed (or reset) the connection */
static int in_reset;   /* ... with a reset */
static int out_closed; /* a write failed: the server no longer reads */

/* The last parsed response, as offsets into in_buf. */
static size_t last_start, last_head_len, last_body_start, last_body_len;
static int last_status;

/* Prints bytes on stderr with control characters escaped, at most max of them. */
static void dump(const char *what, const char *p, size_t len, size_t max)
{
    fprintf(stderr, "raw_http: %s (%zu bytes): \"", what, len);
    for (size_t i = 0; i < len && i < max; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r')
            fputs("\\r", stderr);
        else if (c == '\n')
            fputs("\\n", stderr);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fprintf(stderr, "\"%s\n", len > max ? " ..." : "");
}

static int raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

/* Connects to the server and makes the descriptor non-blocking. Returns it, or -1 with a
 * message naming the address. */
static int connect_server(void)
{
    int fd = driver_connect(raw_http_addr, raw_http_port, 0);
    if (fd < 0) {
        fprintf(stderr, "raw_http: connect %s:%ld: %s\n", raw_http_addr, raw_http_port,
                strerror(errno));
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        fprintf(stderr, "raw_http: fcntl O_NONBLOCK: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads whatever is available into in_buf without blocking. Returns 1 if bytes
 * arrived, 0 if none, and sets in_eof on EOF or reset. */
static int read_available(int fd)
{
    int got = 0;
    while (!in_eof) {
        if (in_len == RAW_HTTP_IN_MAX) {
            fprintf(stderr, "raw_http: more than %d bytes received\n", RAW_HTTP_IN_MAX);
            exit(3);
        }
        ssize_t r = recv(fd, in_buf + in_len, RAW_HTTP_IN_MAX - in_len, 0);
        if (r > 0) {
            in_len += (size_t)r;
            got = 1;
        } else if (r == 0) {
            in_eof = 1;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            in_eof = 1;
            in_reset = 1;
        }
    }
    return got;
}

/* Waits up to ms for more bytes or EOF. Returns 1 if something happened. */
static int wait_input(int fd, long ms)
{
    if (in_eof)
        return 0;
    struct pollfd p = {fd, POLLIN, 0};
    int rc = poll(&p, 1, (int)ms);
    if (rc < 0 && errno != EINTR) {
        fprintf(stderr, "raw_http: poll: %s\n", strerror(errno));
        exit(3);
    }
    size_t before = in_len;
    read_available(fd);
    return in_len != before || in_eof;
}

/* Writes p[0..len) in chunks of step bytes (1 for a drip), reading replies as
 * they come so that a server that answers and closes early cannot make the
 * kernel discard its answer with a reset. Stops quietly when the server no
 * longer reads: what it sent is then checked by the next actions. */
static void send_bytes(int fd, const char *p, size_t len, size_t step)
{
    size_t off = 0;
    long long deadline = driver_now_ms() + raw_http_timeout_ms;
    while (off < len && !out_closed) {
        read_available(fd);
        size_t n = len - off < step ? len - off : step;
        ssize_t w = send(fd, p + off, n, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (driver_now_ms() > deadline) {
                fprintf(stderr, "raw_http: send stalled for %ld ms after %zu of %zu bytes\n",
                        raw_http_timeout_ms, off, len);
                exit(1);
            }
            struct pollfd pf = {fd, POLLOUT | POLLIN, 0};
            poll(&pf, 1, 100);
            continue;
        }
        out_closed = 1;
        if (!raw_http_quiet)
            fprintf(stderr, "raw_http: server stopped reading after %zu of %zu bytes: %s\n", off,
                    len, w < 0 ? strerror(errno) : "short write");
    }
    read_available(fd);
}

/* Finds "\r\n\r\n" at or after from. Returns the offset just past it, or 0. */
static size_t find_head_end(size_t from)
{
    for (size_t i = from; i + 4 <= in_len; i++)
        if (memcmp(in_buf + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return 0;
}

/* The value of header name in the head at [start, end) of in_buf, or NULL; *vlen its length. */
static const char *find_header(size_t start, size_t end, const char *name, size_t *vlen)
{
    return driver_http_header(in_buf + start, end - start, name, vlen);
}

/* Length of a chunked body starting at off, or -2 if incomplete, -1 if bad. */
static long chunked_length(size_t off)
{
    size_t i = off;
    for (;;) {
        size_t eol = i;
        while (eol + 1 < in_len && memcmp(in_buf + eol, "\r\n", 2) != 0)
            eol++;
        if (eol + 1 >= in_len)
            return -2;
        char *end;
        unsigned long size = strtoul(in_buf + i, &end, 16);
        if (end == in_buf + i)
            return -1;
        i = eol + 2;
        if (size == 0) {
            /* trailers up to an empty line */
            for (;;) {
                size_t t = i;
                while (t + 1 < in_len && memcmp(in_buf + t, "\r\n", 2) != 0)
                    t++;
                if (t + 1 >= in_len)
                    return -2;
                if (t == i)
                    return (long)(t + 2 - off);
                i = t + 2;
            }
        }
        if (i + size + 2 > in_len)
            return -2;
        i += size + 2;
    }
}

/* Parses the next response from in_pos, reading as needed. no_body: the
 * request was HEAD. Returns 0 with last_* set, -1 on EOF before a complete
 * response (or a bad one), with what was received dumped. */
static int next_response(int fd, int no_body)
{
    long long deadline = driver_now_ms() + raw_http_timeout_ms;
    for (;;) {
        size_t head_end = find_head_end(in_pos);
        if (head_end != 0) {
            int status = driver_http_status(in_buf + in_pos, head_end - in_pos);
            if (status < 0) {
                dump("not an HTTP/1.x response", in_buf + in_pos, head_end - in_pos, 400);
                return -1;
            }
            size_t vlen;
            const char *cl = find_header(in_pos, head_end, "Content-Length", &vlen);
            const char *te = find_header(in_pos, head_end, "Transfer-Encoding", &vlen);
            long body_len;
            if (no_body || (status >= 100 && status < 200) || status == 204 || status == 304)
                body_len = 0;
            else if (te != NULL)
                body_len = chunked_length(head_end);
            else if (cl != NULL)
                body_len = strtol(cl, NULL, 10);
            else
                body_len = in_eof ? (long)(in_len - head_end) : -2; /* until close */
            if (body_len == -1) {
                dump("bad chunked body", in_buf + head_end, in_len - head_end, 400);
                return -1;
            }
            if (body_len >= 0 && head_end + (size_t)body_len <= in_len) {
                last_start = in_pos;
                last_head_len = head_end - in_pos;
                last_body_start = head_end;
                last_body_len = (size_t)body_len;
                last_status = status;
                in_pos = head_end + (size_t)body_len;
                if (!raw_http_quiet)
                    fwrite(in_buf + last_start, 1, last_head_len, stdout);
                return 0;
            }
        }
        if (in_eof) {
            dump(in_reset ? "connection reset; unparsed bytes"
                          : "connection closed; unparsed bytes",
                 in_buf + in_pos, in_len - in_pos, 400);
            return -1;
        }
        long long left = deadline - driver_now_ms();
        if (left <= 0) {
            fprintf(stderr, "raw_http: no complete response within %ld ms\n", raw_http_timeout_ms);
            dump("unparsed bytes", in_buf + in_pos, in_len - in_pos, 400);
            return -1;
        }
        wait_input(fd, left);
    }
}

static int fail(int step, const char *action, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(int step, const char *action, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "raw_http: port %ld, action %d (%.80s): ", raw_http_port, step, action);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

/* ---- the actions: each returns 0 when it passed, 1 when it failed ---- */

static int act_send(int fd, int step, const char *a, const char *arg)
{
    size_t len;
    char *p = driver_unescape(arg, &len);
    (void)step;
    send_bytes(fd, p, len, a[0] == 'd' ? 1 : len ? len : 1); /* drip: one byte per write */
    free(p);
    return 0;
}

static int act_file(int fd, int step, const char *a, const char *path)
{
    (void)step;
    (void)a;
    int ffd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (ffd < 0 || fstat(ffd, &st) < 0) {
        fprintf(stderr, "raw_http: open %s: %s\n", path, strerror(errno));
        exit(3);
    }
    char *p = malloc((size_t)st.st_size + 1);
    ssize_t r = p ? read(ffd, p, (size_t)st.st_size) : -1;
    if (r != st.st_size) {
        fprintf(stderr, "raw_http: read %s: %s\n", path, r < 0 ? strerror(errno) : "short");
        exit(3);
    }
    close(ffd);
    send_bytes(fd, p, (size_t)r, (size_t)r ? (size_t)r : 1);
    free(p);
    return 0;
}

static int act_sleep(int fd, int step, const char *a, const char *ms)
{
    (void)step;
    (void)a;
    driver_sleep_ms(atol(ms));
    read_available(fd);
    return 0;
}

static int act_mark(int fd, int step, const char *a, const char *text)
{
    (void)fd;
    (void)step;
    (void)a;
    fprintf(stderr, "raw_http: mark: %s\n", text);
    fflush(stderr);
    return 0;
}

static int act_shut(int fd, int step, const char *a, const char *arg)
{
    (void)step;
    (void)a;
    (void)arg;
    shutdown(fd, SHUT_WR);
    return 0;
}

/* status:NNN[:head] and status-or-close:NNN. */
static int act_status(int fd, int step, const char *a, const char *arg)
{
    int want = atoi(arg);
    int head = strstr(arg, ":head") != NULL;
    if (a[6] == '-') {
        /* Wait for either: a response, or EOF with nothing unparsed. */
        long long deadline = driver_now_ms() + raw_http_timeout_ms;
        while (!in_eof && in_len == in_pos && driver_now_ms() < deadline)
            wait_input(fd, deadline - driver_now_ms());
        if (in_eof && in_len == in_pos)
            return 0;
    }
    if (next_response(fd, head) < 0)
        return fail(step, a, "expected status %d, got no complete response", want);
    if (last_status != want) {
        dump("response", in_buf + last_start, last_head_len + last_body_len, 600);
        return fail(step, a, "expected status %d, got %d", want, last_status);
    }
    return 0;
}

static int act_close(int fd, int step, const char *a, const char *ms)
{
    long wait_ms = ms != NULL ? atol(ms) : raw_http_timeout_ms;
    if (wait_ms <= 0) {
        fprintf(stderr, "raw_http: bad wait in \"%s\"\n", a);
        exit(2);
    }
    long long deadline = driver_now_ms() + wait_ms;
    while (!in_eof && driver_now_ms() < deadline)
        wait_input(fd, deadline - driver_now_ms());
    if (in_len != in_pos) {
        dump("unexpected bytes", in_buf + in_pos, in_len - in_pos, 400);
        return fail(step, a, "expected the connection closed, got %zu more bytes", in_len - in_pos);
    }
    if (!in_eof)
        return fail(step, a, "expected the connection closed, still open after %ld ms", wait_ms);
    return 0;
}

static int act_open(int fd, int step, const char *a, const char *ms)
{
    long long deadline = driver_now_ms() + atol(ms);
    while (!in_eof && in_len == in_pos && driver_now_ms() < deadline)
        wait_input(fd, deadline - driver_now_ms());
    if (in_len != in_pos) {
        dump("unexpected bytes", in_buf + in_pos, in_len - in_pos, 400);
        return fail(step, a, "expected silence, got %zu bytes", in_len - in_pos);
    }
    if (in_eof)
        return fail(step, a, "expected the connection open, got it %s",
                    in_reset ? "reset" : "closed");
    return 0;
}

/* The last response has each of names (with sub in its value, unless NULL). */
static int check_headers(int step, const char *a, const char *const *names, size_t num_names,
                         const char *sub)
{
    for (size_t i = 0; i < num_names; i++) {
        size_t vlen;
        const char *v = find_header(last_start, last_start + last_head_len, names[i], &vlen);
        if (v == NULL) {
            dump("response head", in_buf + last_start, last_head_len, 600);
            return fail(step, a, "expected header %s, got none", names[i]);
        }
        if (sub != NULL && (vlen < strlen(sub) || memmem(v, vlen, sub, strlen(sub)) == NULL))
            return fail(step, a, "expected header %s containing \"%s\", got \"%.*s\"", names[i],
                        sub, (int)vlen, v);
    }
    return 0;
}

/* header:NAME[:SUB] */
static int act_header(int fd, int step, const char *a, const char *arg)
{
    char name[128];
    const char *one = name, *colon = strchr(arg, ':');
    (void)fd;
    snprintf(name, sizeof(name), "%.*s", colon != NULL ? (int)(colon - arg) : (int)strlen(arg),
             arg);
    return check_headers(step, a, &one, 1, colon != NULL ? colon + 1 : NULL);
}

static int act_std_headers(int fd, int step, const char *a, const char *arg)
{
    static const char *const std[] = {"Date", "Server", "Content-Type", "Content-Length"};
    (void)fd;
    (void)arg;
    return check_headers(step, a, std, 4, NULL);
}

static int act_body(int fd, int step, const char *a, const char *text)
{
    size_t len;
    char *want = driver_unescape(text, &len);
    (void)fd;
    int ok = len == 0 || memmem(in_buf + last_body_start, last_body_len, want, len) != NULL;
    free(want);
    if (!ok) {
        dump("body", in_buf + last_body_start, last_body_len, 600);
        return fail(step, a, "expected the body to contain \"%s\"", text);
    }
    return 0;
}

enum { ARG_NONE, ARG_REQUIRED, ARG_OPTIONAL };

static const struct raw_action {
    const char *name;   /* the text before the first ':' */
    int arg;            /* whether ":ARG" follows */
    int needs_response; /* looks at the last response parsed */
    int (*run)(int fd, int step, const char *action, const char *arg);
} raw_actions[] = {
    {"send", ARG_REQUIRED, 0, act_send},     {"drip", ARG_REQUIRED, 0, act_send},
    {"file", ARG_REQUIRED, 0, act_file},     {"sleep", ARG_REQUIRED, 0, act_sleep},
    {"mark", ARG_REQUIRED, 0, act_mark},     {"shut", ARG_NONE, 0, act_shut},
    {"status", ARG_REQUIRED, 0, act_status}, {"status-or-close", ARG_REQUIRED, 0, act_status},
    {"close", ARG_OPTIONAL, 0, act_close},   {"open", ARG_REQUIRED, 0, act_open},
    {"header", ARG_REQUIRED, 1, act_header}, {"std-headers", ARG_NONE, 1, act_std_headers},
    {"body", ARG_REQUIRED, 1, act_body},
};

/* Runs one action. Returns 0 when it passed, 1 when it failed. */
static int run_action(int fd, int step, const char *a)
{
    const char *colon = strchr(a, ':');
    size_t name_len = colon != NULL ? (size_t)(colon - a) : strlen(a);
    for (size_t i = 0; i < sizeof(raw_actions) / sizeof(raw_actions[0]); i++) {
        const struct raw_action *r = &raw_actions[i];
        if (strlen(r->name) != name_len || memcmp(r->name, a, name_len) != 0 ||
            (colon != NULL && r->arg == ARG_NONE) || (colon == NULL && r->arg == ARG_REQUIRED))
            continue;
        if (r->needs_response && last_status == 0)
            return fail(step, a, "no response parsed yet");
        return r->run(fd, step, a, colon != NULL ? colon + 1 : NULL);
    }
    fprintf(stderr, "raw_http: unknown action \"%s\"\n", a);
    exit(2);
}

static const char raw_http_usage[] =
    "usage: raw_http -p PORT [-h ADDR] [-t TIMEOUT_MS] [-q] ACTION...\n"
    "       raw_http hold -p PORT -n COUNT -d HOLD_MS [-s PREFIX] [-i DRIP_MS] [-R]\n"
    "actions: send:TEXT drip:TEXT file:PATH sleep:MS mark:TEXT shut status:NNN[:head]\n"
    "         status-or-close:NNN close[:MS] open:MS header:NAME[:SUB] std-headers\n"
    "         body:SUB\n";

static void usage(void)
{
    fputs(raw_http_usage, stderr);
    exit(2);
}

/* One connection of hold mode. */
struct hold_conn {
    int fd;
    size_t sent;          /* prefix bytes written */
    long long started_ms; /* first byte written (or connected, without a prefix) */
    long long closed_ms;  /* EOF or reset seen */
    int closed;           /* EOF or reset seen */
    int status;           /* status of the first response, 0 if none */
    char head[16];        /* first bytes received, for the status */
    size_t head_len;
};

/* Reads what a held connection has received (unless no_read); records its
 * first status code and whether it was closed. */
static void hold_poll_conn(struct hold_conn *c, int no_read)
{
    char buf[65536];
    while (!c->closed && !no_read) {
        ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
        if (r > 0) {
            size_t n = (size_t)r;
            size_t room = sizeof(c->head) - 1 - c->head_len;
            memcpy(c->head + c->head_len, buf, n < room ? n : room);
            c->head_len += n < room ? n : room;
            c->head[c->head_len] = '\0';
            if (c->status == 0 && c->head_len >= 12 && strncmp(c->head, "HTTP/1.", 7) == 0)
                c->status = atoi(c->head + 9);
        } else if (r == 0 || (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)) {
            c->closed = 1;
            c->closed_ms = driver_now_ms();
        } else if (errno != EINTR) {
            break;
        }
    }
}

/* Hold mode: COUNT connections, their prefixes, what came back. */
struct hold {
    struct hold_conn *conns;
    long count;
    char *pre; /* the prefix, unescaped */
    size_t prefix_len;
    long drip_ms, hold_ms;
    int no_read;
    struct pollfd *pfds; /* the open connections of the last poll() */
    long *pconn;         /* pfds[k] is conns[pconn[k]] */
    long num_pfds;
    long connected, failed;
};

static void hold_connect_all(struct hold *h)
{
    for (long i = 0; i < h->count; i++) {
        h->conns[i].fd = connect_server();
        if (h->conns[i].fd < 0) {
            h->failed++;
            h->conns[i].closed = 1;
            continue;
        }
        h->connected++;
        if (h->no_read) {
            /* A small window makes a stopped reader stall the server sooner. */
            int small = 4096;
            setsockopt(h->conns[i].fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        }
    }
}

/* One round: reads what poll() found (everything on the first round), sends the prefix
 * (or the next byte of it). Returns 1 when every connection is closed. */
static int hold_round(struct hold *h, long long now, int sending, int first)
{
    for (long k = 0; k < h->num_pfds; k++)
        if (h->pfds[k].revents != 0)
            hold_poll_conn(&h->conns[h->pconn[k]], h->no_read);
    int all_closed = 1;
    for (long i = 0; i < h->count; i++) {
        struct hold_conn *c = &h->conns[i];
        if (c->closed)
            continue;
        if (c->started_ms == 0 && h->prefix_len == 0)
            c->started_ms = now;
        if (sending && c->sent < h->prefix_len) {
            size_t n = h->drip_ms ? 1 : h->prefix_len - c->sent;
            ssize_t w = send(c->fd, h->pre + c->sent, n, MSG_NOSIGNAL);
            if (w > 0) {
                if (c->sent == 0)
                    c->started_ms = driver_now_ms();
                c->sent += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                c->closed = 1;
                c->closed_ms = driver_now_ms();
            }
        }
        if (first)
            hold_poll_conn(c, h->no_read);
        if (!c->closed)
            all_closed = 0;
    }
    return all_closed;
}

/* 1 once every open connection has its prefix (its first byte, when dripping). */
static int hold_ready(const struct hold *h)
{
    long pending = 0;
    for (long i = 0; i < h->count; i++)
        pending += !h->conns[i].closed && h->conns[i].sent < (h->drip_ms ? 1 : h->prefix_len) &&
                   h->prefix_len > 0;
    return pending == 0;
}

/* One poll() over the open connections, for at most wait ms: a close is seen when it
 * happens (not at the next round), and idle connections cost nothing. */
static void hold_wait(struct hold *h, long wait)
{
    h->num_pfds = 0;
    for (long i = 0; i < h->count && !h->no_read; i++) {
        if (h->conns[i].closed)
            continue;
        h->pfds[h->num_pfds].fd = h->conns[i].fd;
        h->pfds[h->num_pfds].events = POLLIN;
        h->pfds[h->num_pfds].revents = 0;
        h->pconn[h->num_pfds++] = i;
    }
    if (h->num_pfds == 0) {
        driver_sleep_ms(wait < 50 ? wait : 50);
        return;
    }
    if (poll(h->pfds, (nfds_t)h->num_pfds, (int)wait) < 0 && errno != EINTR) {
        fprintf(stderr, "raw_http: poll: %s\n", strerror(errno));
        exit(3);
    }
}

/* Sends the prefixes and holds the connections for hold_ms, or until all are closed. */
static void hold_run(struct hold *h)
{
    long long start = driver_now_ms(), next_drip = start;
    int ready = 0, first = 1;
    for (;;) {
        long long now = driver_now_ms();
        int drip_now = now >= next_drip;
        int all_closed = hold_round(h, now, first || (h->drip_ms != 0 && drip_now), first);
        first = 0;
        if (drip_now && h->drip_ms)
            next_drip = now + h->drip_ms;
        if (!ready && hold_ready(h)) {
            fprintf(stderr, "raw_http: hold: ready, %ld connected\n", h->connected);
            fflush(stderr);
            ready = 1;
        } else if (!ready) {
            first = h->drip_ms == 0; /* a prefix stuck behind a full socket: again soon */
        }
        now = driver_now_ms();
        if (all_closed || now - start >= h->hold_ms)
            return;
        long long until = start + h->hold_ms;
        if (h->drip_ms != 0 && next_drip < until)
            until = next_drip;
        long wait = (long)(until - now);
        if (first && wait > 10)
            wait = 10;
        hold_wait(h, wait < 0 ? 0 : wait);
    }
}

/* Drains, closes and counts the connections; prints the summary line. */
static void hold_report(struct hold *h)
{
    long closed = 0, answered = 0;
    long long close_min = -1, close_max = -1;
    char statuses[512] = "";
    int codes[RAW_HTTP_MAX_STATUSES], code_counts[RAW_HTTP_MAX_STATUSES];
    int num_codes = 0;
    for (long i = 0; i < h->count; i++) {
        struct hold_conn *c = &h->conns[i];
        if (c->fd < 0)
            continue;
        /* A reader that stopped: did the server give up on it? Drain to find out. */
        int was_closed = c->closed;
        hold_poll_conn(c, 0);
        closed += c->closed;
        if (was_closed && c->started_ms > 0) {
            /* Closed while held: timed. (One found closed only by this last
             * drain closed at some unknown moment: not timed.) */
            long long ms = c->closed_ms - c->started_ms;
            if (close_min < 0 || ms < close_min)
                close_min = ms;
            if (ms > close_max)
                close_max = ms;
        }
        if (c->status != 0) {
            answered++;
            int k;
            for (k = 0; k < num_codes && codes[k] != c->status; k++)
                ;
            if (k == num_codes && num_codes < RAW_HTTP_MAX_STATUSES) {
                codes[num_codes] = c->status;
                code_counts[num_codes++] = 0;
            }
            if (k < num_codes)
                code_counts[k]++;
        }
        close(c->fd);
    }
    for (int k = 0; k < num_codes; k++) {
        size_t used = strlen(statuses);
        snprintf(statuses + used, sizeof(statuses) - used, "%s%d:%d", k ? "," : "", codes[k],
                 code_counts[k]);
    }
    char close_ms[64] = "";
    if (close_min >= 0)
        snprintf(close_ms, sizeof(close_ms), "%lld..%lld", close_min, close_max);
    printf("connected=%ld failed=%ld closed=%ld answered=%ld statuses=%s close_ms=%s\n",
           h->connected, h->failed, closed, answered, statuses, close_ms);
}

static int hold_main(int argc, char **argv)
{
    struct hold h = {.hold_ms = -1};
    const char *prefix = "";
    const struct driver_option options[] = {
        {'p', NULL, DRIVER_OPT_LONG, &raw_http_port, 1, 65535, 1},
        {'h', NULL, DRIVER_OPT_TEXT, &raw_http_addr, 0, 0, 0},
        {'n', NULL, DRIVER_OPT_LONG, &h.count, 1, 1000000, 1},
        {'d', NULL, DRIVER_OPT_LONG, &h.hold_ms, 0, 3600000, 1},
        {'s', NULL, DRIVER_OPT_TEXT, &prefix, 0, 0, 0},
        {'i', NULL, DRIVER_OPT_LONG, &h.drip_ms, 0, 3600000, 0},
        {'R', NULL, DRIVER_OPT_FLAG, &h.no_read, 0, 0, 0},
    };
    if (driver_options("raw_http hold", raw_http_usage, argc, argv, options,
                       sizeof(options) / sizeof(options[0]), 0) != argc)
        usage();
    if (raise_fd_limit() < 0)
        fprintf(stderr, "raw_http: setrlimit RLIMIT_NOFILE: %s\n", strerror(errno));
    h.pre = driver_unescape(prefix, &h.prefix_len);
    h.conns = calloc((size_t)h.count, sizeof(*h.conns));
    h.pfds = calloc((size_t)h.count, sizeof(*h.pfds));
    h.pconn = calloc((size_t)h.count, sizeof(*h.pconn));
    if (h.conns == NULL || h.pfds == NULL || h.pconn == NULL) {
        perror("raw_http: calloc");
        return 3;
    }
    hold_connect_all(&h);
    hold_run(&h);
    hold_report(&h);
    free(h.pfds);
    free(h.pconn);
    free(h.conns);
    free(h.pre);
    return h.failed ? 3 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "hold") == 0)
        return hold_main(argc - 1, argv + 1);
    const struct driver_option options[] = {
        {'p', NULL, DRIVER_OPT_LONG, &raw_http_port, 1, 65535, 1},
        {'h', NULL, DRIVER_OPT_TEXT, &raw_http_addr, 0, 0, 0},
        {'t', NULL, DRIVER_OPT_LONG, &raw_http_timeout_ms, 1, 3600000, 0},
        {'q', NULL, DRIVER_OPT_FLAG, &raw_http_quiet, 0, 0, 0},
    };
    /* Stops at the first action: "send:-x" is not an option. */
    int first = driver_options("raw_http", raw_http_usage, argc, argv, options,
                               sizeof(options) / sizeof(options[0]), 1);
    if (first == argc)
        usage();
    in_buf = malloc(RAW_HTTP_IN_MAX);
    if (in_buf == NULL) {
        perror("raw_http: malloc");
        return 3;
    }
    int fd = connect_server();
    if (fd < 0)
        return 3;
    int rc = 0;
    for (int i = first; i < argc && rc == 0; i++)
        rc = run_action(fd, i - first + 1, argv[i]);
    close(fd);
    free(in_buf);
    fflush(stdout);
    return rc;
}
