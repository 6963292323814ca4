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
 * Hold mode, for slow and idle clients (issue 3 and the fault suite):
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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RAW_HTTP_IN_MAX (8 * 1024 * 1024) /* the largest transcript a test reads */
#define RAW_HTTP_MAX_STATUSES 16

static const char *raw_http_addr = "127.0.0.1";
static unsigned raw_http_port;
static int raw_http_timeout_ms = 5000;
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

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the escapes of an action argument into a malloc'd buffer. Returns it
 * (never NULL: exits on allocation failure) and its length in *out_len. */
static char *unescape(const char *s, size_t *out_len)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    size_t o = 0;
    if (out == NULL) {
        perror("raw_http: malloc");
        exit(3);
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 == n) {
            out[o++] = s[i];
            continue;
        }
        char c = s[++i];
        if (c == 'x' && i + 2 < n && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
            out[o++] = (char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
            i += 2;
            continue;
        }
        switch (c) {
        case 'r':
            out[o++] = '\r';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case '0':
            out[o++] = '\0';
            break;
        case '\\':
            out[o++] = '\\';
            break;
        default: /* not an escape: kept literally */
            out[o++] = '\\';
            out[o++] = c;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

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

/* Connects to the server. blocking: wait for the handshake. Returns the
 * descriptor (non-blocking) or -1 with a message naming the address. */
static int connect_server(int blocking)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)raw_http_port);
    if (inet_pton(AF_INET, raw_http_addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "raw_http: bad address %s\n", raw_http_addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK), 0);
    if (fd < 0) {
        fprintf(stderr, "raw_http: socket: %s\n", strerror(errno));
        return -1;
    }
    int one = 1;
    /* Without NODELAY a drip would be coalesced by Nagle and prove nothing. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && !(errno == EINPROGRESS && !blocking)) {
        fprintf(stderr, "raw_http: connect %s:%u: %s\n", raw_http_addr, raw_http_port,
                strerror(errno));
        close(fd);
        return -1;
    }
    if (blocking && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
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
    long long deadline = now_ms() + raw_http_timeout_ms;
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
            if (now_ms() > deadline) {
                fprintf(stderr, "raw_http: send stalled for %d ms after %zu of %zu bytes\n",
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

/* The value of header name within [start, end) of in_buf, or NULL; *vlen its length. */
static const char *find_header(size_t start, size_t end, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    size_t i = start;
    /* skip the status line */
    while (i + 1 < end && memcmp(in_buf + i, "\r\n", 2) != 0)
        i++;
    i += 2;
    while (i + 2 <= end) {
        size_t eol = i;
        while (eol + 1 < end && memcmp(in_buf + eol, "\r\n", 2) != 0)
            eol++;
        if (eol == i)
            break;
        if (eol - i > nlen && in_buf[i + nlen] == ':' && strncasecmp(in_buf + i, name, nlen) == 0) {
            size_t v = i + nlen + 1;
            while (v < eol && (in_buf[v] == ' ' || in_buf[v] == '\t'))
                v++;
            size_t ve = eol;
            while (ve > v && (in_buf[ve - 1] == ' ' || in_buf[ve - 1] == '\t'))
                ve--;
            *vlen = ve - v;
            return in_buf + v;
        }
        i = eol + 2;
    }
    return NULL;
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
    long long deadline = now_ms() + raw_http_timeout_ms;
    for (;;) {
        size_t head_end = find_head_end(in_pos);
        if (head_end != 0) {
            int status = 0;
            if (head_end - in_pos < 12 || memcmp(in_buf + in_pos, "HTTP/1.", 7) != 0 ||
                sscanf(in_buf + in_pos + 9, "%3d", &status) != 1) {
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
        long long left = deadline - now_ms();
        if (left <= 0) {
            fprintf(stderr, "raw_http: no complete response within %d ms\n", raw_http_timeout_ms);
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
    fprintf(stderr, "raw_http: port %u, action %d (%.80s): ", raw_http_port, step, action);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

/* Runs one action. Returns 0 when it passed, 1 when it failed. */
static int run_action(int fd, int step, const char *a)
{
    if (strncmp(a, "send:", 5) == 0 || strncmp(a, "drip:", 5) == 0) {
        size_t len;
        char *p = unescape(a + 5, &len);
        send_bytes(fd, p, len, a[0] == 'd' ? 1 : len ? len : 1);
        free(p);
        return 0;
    }
    if (strncmp(a, "file:", 5) == 0) {
        int ffd = open(a + 5, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (ffd < 0 || fstat(ffd, &st) < 0) {
            fprintf(stderr, "raw_http: open %s: %s\n", a + 5, strerror(errno));
            exit(3);
        }
        char *p = malloc((size_t)st.st_size + 1);
        ssize_t r = p ? read(ffd, p, (size_t)st.st_size) : -1;
        if (r != st.st_size) {
            fprintf(stderr, "raw_http: read %s: %s\n", a + 5, r < 0 ? strerror(errno) : "short");
            exit(3);
        }
        close(ffd);
        send_bytes(fd, p, (size_t)r, (size_t)r ? (size_t)r : 1);
        free(p);
        return 0;
    }
    if (strncmp(a, "sleep:", 6) == 0) {
        sleep_ms(atol(a + 6));
        read_available(fd);
        return 0;
    }
    if (strncmp(a, "mark:", 5) == 0) {
        fprintf(stderr, "raw_http: mark: %s\n", a + 5);
        fflush(stderr);
        return 0;
    }
    if (strcmp(a, "shut") == 0) {
        shutdown(fd, SHUT_WR);
        return 0;
    }
    if (strncmp(a, "status:", 7) == 0 || strncmp(a, "status-or-close:", 16) == 0) {
        int or_close = a[6] == '-';
        const char *arg = a + (or_close ? 16 : 7);
        int want = atoi(arg);
        int head = strstr(arg, ":head") != NULL;
        if (or_close) {
            /* Wait for either: a response, or EOF with nothing unparsed. */
            long long deadline = now_ms() + raw_http_timeout_ms;
            while (!in_eof && in_len == in_pos && now_ms() < deadline)
                wait_input(fd, deadline - now_ms());
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
    if (strcmp(a, "close") == 0 || strncmp(a, "close:", 6) == 0) {
        long wait_ms = a[5] == ':' ? atol(a + 6) : raw_http_timeout_ms;
        if (wait_ms <= 0) {
            fprintf(stderr, "raw_http: bad wait in \"%s\"\n", a);
            exit(2);
        }
        long long deadline = now_ms() + wait_ms;
        while (!in_eof && now_ms() < deadline)
            wait_input(fd, deadline - now_ms());
        if (in_len != in_pos) {
            dump("unexpected bytes", in_buf + in_pos, in_len - in_pos, 400);
            return fail(step, a, "expected the connection closed, got %zu more bytes",
                        in_len - in_pos);
        }
        if (!in_eof)
            return fail(step, a, "expected the connection closed, still open after %ld ms",
                        wait_ms);
        return 0;
    }
    if (strncmp(a, "open:", 5) == 0) {
        long long deadline = now_ms() + atol(a + 5);
        while (!in_eof && in_len == in_pos && now_ms() < deadline)
            wait_input(fd, deadline - now_ms());
        if (in_len != in_pos) {
            dump("unexpected bytes", in_buf + in_pos, in_len - in_pos, 400);
            return fail(step, a, "expected silence, got %zu bytes", in_len - in_pos);
        }
        if (in_eof)
            return fail(step, a, "expected the connection open, got it %s",
                        in_reset ? "reset" : "closed");
        return 0;
    }
    if (last_status == 0 && (strncmp(a, "header:", 7) == 0 || strcmp(a, "std-headers") == 0 ||
                             strncmp(a, "body:", 5) == 0))
        return fail(step, a, "no response parsed yet");
    if (strncmp(a, "header:", 7) == 0 || strcmp(a, "std-headers") == 0) {
        static const char *const std[] = {"Date", "Server", "Content-Type", "Content-Length"};
        char name[128];
        const char *sub = NULL;
        const char *const *names = std;
        size_t num_names = 4;
        const char *one = name;
        if (a[0] == 'h') {
            snprintf(name, sizeof(name), "%s", a + 7);
            char *colon = strchr(name, ':');
            if (colon != NULL) {
                *colon = '\0';
                sub = a + 7 + (colon - name) + 1;
            }
            names = &one;
            num_names = 1;
        }
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
    if (strncmp(a, "body:", 5) == 0) {
        size_t len;
        char *want = unescape(a + 5, &len);
        int ok = len == 0 || memmem(in_buf + last_body_start, last_body_len, want, len) != NULL;
        free(want);
        if (!ok) {
            dump("body", in_buf + last_body_start, last_body_len, 600);
            return fail(step, a, "expected the body to contain \"%s\"", a + 5);
        }
        return 0;
    }
    fprintf(stderr, "raw_http: unknown action \"%s\"\n", a);
    exit(2);
}

static void usage(void)
{
    fputs("usage: raw_http -p PORT [-h ADDR] [-t TIMEOUT_MS] [-q] ACTION...\n"
          "       raw_http hold -p PORT -n COUNT -d HOLD_MS [-s PREFIX] [-i DRIP_MS] [-R]\n"
          "actions: send:TEXT drip:TEXT file:PATH sleep:MS mark:TEXT shut status:NNN[:head]\n"
          "         status-or-close:NNN close[:MS] open:MS header:NAME[:SUB] std-headers\n"
          "         body:SUB\n",
          stderr);
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
            c->closed_ms = now_ms();
        } else if (errno != EINTR) {
            break;
        }
    }
}

static int hold_main(int argc, char **argv)
{
    long count = 0, hold_ms = -1, drip_ms = 0;
    const char *prefix = "";
    int no_read = 0;
    int opt;
    while ((opt = getopt(argc, argv, "p:h:n:d:s:i:R")) != -1) {
        switch (opt) {
        case 'p':
            raw_http_port = (unsigned)atoi(optarg);
            break;
        case 'h':
            raw_http_addr = optarg;
            break;
        case 'n':
            count = atol(optarg);
            break;
        case 'd':
            hold_ms = atol(optarg);
            break;
        case 's':
            prefix = optarg;
            break;
        case 'i':
            drip_ms = atol(optarg);
            break;
        case 'R':
            no_read = 1;
            break;
        default:
            usage();
        }
    }
    if (raw_http_port == 0 || count <= 0 || hold_ms < 0 || optind != argc)
        usage();
    if (raise_fd_limit() < 0)
        fprintf(stderr, "raw_http: setrlimit RLIMIT_NOFILE: %s\n", strerror(errno));
    size_t prefix_len;
    char *pre = unescape(prefix, &prefix_len);
    struct hold_conn *conns = calloc((size_t)count, sizeof(*conns));
    if (conns == NULL) {
        perror("raw_http: calloc");
        return 3;
    }
    long connected = 0, failed = 0;
    for (long i = 0; i < count; i++) {
        conns[i].fd = connect_server(1);
        if (conns[i].fd < 0) {
            failed++;
            conns[i].closed = 1;
            continue;
        }
        connected++;
        if (no_read) {
            /* A small window makes a stopped reader stall the server sooner. */
            int small = 4096;
            setsockopt(conns[i].fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
        }
    }
    /* One poll() over the open connections between rounds: a close is seen
     * when it happens (not at the next round), and idle connections cost
     * nothing. */
    struct pollfd *pfds = calloc((size_t)count, sizeof(*pfds));
    long *pconn = calloc((size_t)count, sizeof(*pconn));
    if (pfds == NULL || pconn == NULL) {
        perror("raw_http: calloc");
        return 3;
    }
    long long start = now_ms();
    long long next_drip = start;
    int ready = 0;
    int first = 1;
    long num_pfds = 0;
    for (;;) {
        long long now = now_ms();
        int drip_now = now >= next_drip;
        int sending = first || (drip_ms != 0 && drip_now);
        /* Reads: the connections poll() found readable (all of them the first time). */
        for (long k = 0; k < num_pfds; k++)
            if (pfds[k].revents != 0)
                hold_poll_conn(&conns[pconn[k]], no_read);
        int all_closed = 1;
        for (long i = 0; i < count; i++) {
            struct hold_conn *c = &conns[i];
            if (c->closed)
                continue;
            if (c->started_ms == 0 && prefix_len == 0)
                c->started_ms = now;
            if (sending && c->sent < prefix_len) {
                size_t n = drip_ms ? 1 : prefix_len - c->sent;
                ssize_t w = send(c->fd, pre + c->sent, n, MSG_NOSIGNAL);
                if (w > 0) {
                    if (c->sent == 0)
                        c->started_ms = now_ms();
                    c->sent += (size_t)w;
                } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    c->closed = 1;
                    c->closed_ms = now_ms();
                }
            }
            if (first)
                hold_poll_conn(c, no_read);
            if (!c->closed)
                all_closed = 0;
        }
        first = 0;
        if (drip_now && drip_ms)
            next_drip = now + drip_ms;
        if (!ready) {
            /* Every connection has its prefix (or first byte): the stall is in place.
             * A prefix stuck behind a full socket is sent again at the next round. */
            long pending = 0;
            for (long i = 0; i < count; i++)
                pending += !conns[i].closed && conns[i].sent < (drip_ms ? 1 : prefix_len) &&
                           prefix_len > 0;
            if (pending == 0) {
                fprintf(stderr, "raw_http: hold: ready, %ld connected\n", connected);
                fflush(stderr);
                ready = 1;
            } else {
                first = drip_ms == 0; /* a whole prefix still to send: again soon */
            }
        }
        now = now_ms();
        if (all_closed || now - start >= hold_ms)
            break;
        long long until = start + hold_ms;
        if (drip_ms != 0 && next_drip < until)
            until = next_drip;
        long wait = (long)(until - now);
        if (first && wait > 10)
            wait = 10;
        if (wait < 0)
            wait = 0;
        num_pfds = 0;
        for (long i = 0; i < count && !no_read; i++) {
            if (conns[i].closed)
                continue;
            pfds[num_pfds].fd = conns[i].fd;
            pfds[num_pfds].events = POLLIN;
            pfds[num_pfds].revents = 0;
            pconn[num_pfds++] = i;
        }
        if (num_pfds == 0) {
            sleep_ms(wait < 50 ? wait : 50);
            continue;
        }
        if (poll(pfds, (nfds_t)num_pfds, (int)wait) < 0 && errno != EINTR) {
            fprintf(stderr, "raw_http: poll: %s\n", strerror(errno));
            return 3;
        }
    }
    free(pfds);
    free(pconn);
    long closed = 0, answered = 0;
    long long close_min = -1, close_max = -1;
    char statuses[512] = "";
    int codes[RAW_HTTP_MAX_STATUSES], code_counts[RAW_HTTP_MAX_STATUSES];
    int num_codes = 0;
    for (long i = 0; i < count; i++) {
        struct hold_conn *c = &conns[i];
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
    printf("connected=%ld failed=%ld closed=%ld answered=%ld statuses=%s close_ms=%s\n", connected,
           failed, closed, answered, statuses, close_ms);
    free(conns);
    free(pre);
    return failed ? 3 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "hold") == 0)
        return hold_main(argc - 1, argv + 1);
    int opt;
    while ((opt = getopt(argc, argv, "+p:h:t:q")) != -1) {
        switch (opt) {
        case 'p':
            raw_http_port = (unsigned)atoi(optarg);
            break;
        case 'h':
            raw_http_addr = optarg;
            break;
        case 't':
            raw_http_timeout_ms = atoi(optarg);
            break;
        case 'q':
            raw_http_quiet = 1;
            break;
        default:
            usage();
        }
    }
    if (raw_http_port == 0 || raw_http_port > 65535 || raw_http_timeout_ms <= 0 || optind == argc)
        usage();
    in_buf = malloc(RAW_HTTP_IN_MAX);
    if (in_buf == NULL) {
        perror("raw_http: malloc");
        return 3;
    }
    int fd = connect_server(1);
    if (fd < 0)
        return 3;
    int rc = 0;
    for (int i = optind; i < argc && rc == 0; i++)
        rc = run_action(fd, i - optind + 1, argv[i]);
    close(fd);
    free(in_buf);
    fflush(stdout);
    return rc;
}
