/* trace.c - a worker's event log for the race timeline, buffered and written outside the lock. */
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "decimal.h"
#include "log.h"
#include "version.h"

#define TRACE_BUF_SIZE (256 * 1024)
#define TRACE_TURN_BYTES (64 * 1024)                /* trace_turn() writes from this much on */
#define TRACE_UNLOCK_BYTES (TRACE_BUF_SIZE / 4 * 3) /* written at an unlock from this much */
#define TRACE_FLUSH_NS (100 * 1000000LL)            /* or when the oldest line is this old */
/* The longest line: the write event with two escaped 64-byte strings (4 bytes per byte at
 * most) and six numbers, or a comment; with room to spare. */
#define TRACE_LINE_MAX 1024

struct trace {
    int fd;
    char path[4096 + 64];
    unsigned long max_events;
    unsigned long num_events;
    int stopped;          /* no more events: the cap, or a write error */
    int write_failed;     /* the file cannot take more */
    int stop_logged;      /* the stop was logged (outside the lock) */
    char stop_reason[96]; /* for that log line */
    int in_section;       /* inside a lock hold, or between a tail read and its write */
    int64_t oldest_ns;    /* time of the first buffered line, 0 when empty */
    size_t len;
    char buf[TRACE_BUF_SIZE];
};

int trace_prepare_dir(const char *dir, char *err, size_t err_len)
{
    struct stat st;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        snprintf(err, err_len, "trace directory %s: mkdir: %s", dir, strerror(errno));
        return -1;
    }
    if (stat(dir, &st) < 0) {
        snprintf(err, err_len, "trace directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        snprintf(err, err_len, "trace directory %s: not a directory", dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) < 0) {
        snprintf(err, err_len, "trace directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static int64_t trace_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Writes the whole buffer. On an error the trace stops (logged later, once). */
static void trace_flush(struct trace *tr)
{
    size_t off = 0;
    while (off < tr->len) {
        ssize_t n = write(tr->fd, tr->buf + off, tr->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            tr->write_failed = 1;
            if (!tr->stopped)
                snprintf(tr->stop_reason, sizeof(tr->stop_reason), "write: %s",
                         n < 0 ? strerror(errno) : "wrote nothing");
            tr->stopped = 1;
            break;
        }
        off += (size_t)n;
    }
    tr->len = 0;
    tr->oldest_ns = 0;
}

static char *trace_put(char *p, const char *s, size_t len)
{
    memcpy(p, s, len);
    return p + len;
}

#define TRACE_PUT_LIT(p, lit) trace_put((p), (lit), sizeof(lit) - 1)

static char *trace_put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return decimal_put_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return decimal_put_u64(p, (uint64_t)v);
}

/* " key=" followed by the number. */
static char *trace_put_field(char *p, const char *key, int64_t v)
{
    *p++ = ' ';
    p = trace_put(p, key, strlen(key));
    *p++ = '=';
    return trace_put_i64(p, v);
}

/* " key=\"...\"": at most TRACE_TEXT_MAX bytes of s, cut at a UTF-8 boundary, escaped. */
static char *trace_put_text(char *p, const char *key, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (len > TRACE_TEXT_MAX) {
        len = TRACE_TEXT_MAX;
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
            len--; /* s[len] continues a character: cut before that character */
    }
    *p++ = ' ';
    p = trace_put(p, key, strlen(key));
    *p++ = '=';
    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    *p++ = '"';
    return p;
}

/* Room for one more line; writes the buffer first when full (even inside the lock: only when
 * the 256 KiB are used up between two loop turns). Returns the write position. */
static char *trace_line_start(struct trace *tr, int64_t t_ns)
{
    if (TRACE_BUF_SIZE - tr->len < TRACE_LINE_MAX)
        trace_flush(tr);
    if (tr->oldest_ns == 0)
        tr->oldest_ns = t_ns;
    return tr->buf + tr->len;
}

static void trace_line_end(struct trace *tr, char *p)
{
    *p++ = '\n';
    tr->len = (size_t)(p - tr->buf);
}

/* Counts an event; at the cap, writes the stop line instead. Returns 1 to record it. */
static int trace_admit(struct trace *tr, int64_t t_ns)
{
    if (tr->stopped)
        return 0;
    if (tr->num_events < tr->max_events) {
        tr->num_events++;
        return 1;
    }
    char *p = trace_line_start(tr, t_ns);
    int n = snprintf(p, TRACE_LINE_MAX, "# stopped: event cap %lu reached", tr->max_events);
    trace_line_end(tr, p + n);
    snprintf(tr->stop_reason, sizeof(tr->stop_reason), "event cap %lu reached (--trace-max-events)",
             tr->max_events);
    tr->stopped = 1;
    return 0;
}

struct trace *trace_open(const char *dir, unsigned index, unsigned long max_events, char *err,
                         size_t err_len)
{
    struct trace *tr = malloc(sizeof(*tr));
    if (tr == NULL) {
        snprintf(err, err_len, "trace in %s: out of memory", dir);
        return NULL;
    }
    memset(tr, 0, offsetof(struct trace, buf));
    tr->max_events = max_events > 0 ? max_events : 1;
    snprintf(tr->path, sizeof(tr->path), "%s/worker-%ld.trace", dir, (long)getpid());
    tr->fd = open(tr->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (tr->fd < 0) {
        int saved = errno;
        snprintf(err, err_len, "open %s: %s", tr->path, strerror(saved));
        free(tr);
        errno = saved;
        return NULL;
    }
    int n = snprintf(tr->buf, TRACE_LINE_MAX,
                     "# taskserver-trace %d pid=%ld worker=%u locking=%s max_events=%lu\n",
                     TRACE_FORMAT_VERSION, (long)getpid(), index, version_locking() ? "on" : "off",
                     tr->max_events);
    tr->len = (size_t)n;
    trace_flush(tr); /* the header at once: an empty trace still says whose it is */
    if (tr->stopped) {
        snprintf(err, err_len, "%s: %s", tr->path, tr->stop_reason);
        close(tr->fd);
        free(tr);
        errno = EIO;
        return NULL;
    }
    return tr;
}

void trace_store_event(struct trace *tr, const struct task_store_event *ev)
{
    if (!trace_admit(tr, ev->t_ns))
        return;
    char *p = trace_line_start(tr, ev->t_ns);
    p = trace_put_i64(p, ev->t_ns);
    const char lock = ev->lock_type == F_RDLCK ? 'r' : 'w';
    switch (ev->kind) {
    case TASK_STORE_EV_LOCK_WAIT:
        p = TRACE_PUT_LIT(p, " lock_wait lock=");
        *p++ = lock;
        break;
    case TASK_STORE_EV_LOCK_GRANTED:
        p = TRACE_PUT_LIT(p, " lock_granted lock=");
        *p++ = lock;
        p = trace_put_field(p, "wait_ns", ev->duration_ns);
        tr->in_section = 1;
        break;
    case TASK_STORE_EV_LOCK_TIMEOUT:
        p = TRACE_PUT_LIT(p, " lock_timeout lock=");
        *p++ = lock;
        p = trace_put_field(p, "wait_ns", ev->duration_ns);
        break;
    case TASK_STORE_EV_UNLOCK:
        p = TRACE_PUT_LIT(p, " unlock lock=");
        *p++ = lock;
        p = trace_put_field(p, "hold_ns", ev->duration_ns);
        tr->in_section = 0;
        break;
    case TASK_STORE_EV_TAIL_READ:
        p = TRACE_PUT_LIT(p, " tail_read");
        p = trace_put_field(p, "offset", (int64_t)ev->offset);
        p = trace_put_field(p, "id", (int64_t)ev->id);
        tr->in_section = 1; /* the unlocked build's critical section starts here */
        break;
    case TASK_STORE_EV_WRITE: {
        char titulo[TRACE_TEXT_MAX + 1], cliente[TRACE_TEXT_MAX + 1];
        long tl = task_json_record_string(ev->line, ev->line_len, "titulo", titulo, sizeof(titulo));
        long cl =
            task_json_record_string(ev->line, ev->line_len, "cliente", cliente, sizeof(cliente));
        p = TRACE_PUT_LIT(p, " write");
        p = trace_put_field(p, "offset", (int64_t)ev->offset);
        p = trace_put_field(p, "length", (int64_t)ev->length);
        p = trace_put_field(p, "id", (int64_t)ev->id);
        p = trace_put_text(p, "titulo", titulo, tl > 0 ? (size_t)tl : 0);
        p = trace_put_text(p, "cliente", cliente, cl > 0 ? (size_t)cl : 0);
        if (!version_locking())
            tr->in_section = 0;
        break;
    }
    case TASK_STORE_EV_FSYNC:
        p = TRACE_PUT_LIT(p, " fsync");
        p = trace_put_field(p, "dur_ns", ev->duration_ns);
        p = trace_put_field(p, "error", ev->error);
        break;
    case TASK_STORE_EV_OUTSIDE:
        p = TRACE_PUT_LIT(p, " outside");
        p = trace_put_text(p, "what", ev->what ? ev->what : "", ev->what ? strlen(ev->what) : 0);
        p = trace_put_field(p, "error", ev->error);
        break;
    }
    trace_line_end(tr, p);
    /* Right after a lock is released (or, unlocked, a record written) is the best moment to
     * write a well-filled buffer: no other worker waits on this one. */
    if (!tr->in_section && tr->len >= TRACE_UNLOCK_BYTES)
        trace_flush(tr);
}

void trace_response(struct trace *tr, int status)
{
    int64_t t = trace_now_ns();
    if (!trace_admit(tr, t))
        return;
    char *p = trace_line_start(tr, t);
    p = trace_put_i64(p, t);
    p = TRACE_PUT_LIT(p, " response status=");
    p = trace_put_i64(p, status);
    trace_line_end(tr, p);
    tr->in_section = 0; /* an append that failed between its tail read and its write ends here */
}

void trace_turn(struct trace *tr, int idle)
{
    if (tr->len > 0 && !tr->in_section && idle) {
        trace_flush(tr);
    } else if (tr->len > 0 && !tr->in_section) {
        struct timespec ts;
        /* The coarse clock is enough for "100 ms have passed" and costs a few ns. */
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
        if (tr->len >= TRACE_TURN_BYTES || now - tr->oldest_ns >= TRACE_FLUSH_NS)
            trace_flush(tr);
    }
    if (tr->stopped && !tr->stop_logged) {
        tr->stop_logged = 1;
        log_warn("trace %s: %s: tracing stopped", tr->path, tr->stop_reason);
    }
}

void trace_close(struct trace *tr)
{
    if (tr == NULL)
        return;
    if (!tr->write_failed) {
        /* Written after a stop at the cap too: the file is whole, only shorter than the run. */
        char *p = trace_line_start(tr, 1);
        int n = snprintf(p, TRACE_LINE_MAX, "# end events=%lu", tr->num_events);
        trace_line_end(tr, p + n);
        trace_flush(tr);
    }
    if (tr->stopped && !tr->stop_logged)
        log_warn("trace %s: %s: tracing stopped", tr->path, tr->stop_reason);
    if (close(tr->fd) < 0 && errno != EINTR)
        log_error("close %s: %s", tr->path, strerror(errno));
    free(tr);
}
