/* log.c - stderr diagnostics, one write(2) per line, with a time stamp and a rate limit. */
#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048
#define LOG_LIMIT_MS 1000  /* one line per kind per second */
#define LOG_LIMIT_KINDS 16 /* kinds tracked at once; the oldest is evicted */
#define LOG_LIMIT_KEEP 240 /* bytes kept of the last suppressed message */

static const char *log_prog = "taskserver";
static int log_pid;
static int log_quiet;
static int log_rate_limit;
static enum log_format log_format = LOG_FORMAT_TEXT;

/* The time stamp's seconds, formatted once per second. */
static time_t log_ts_sec = -1;
static char log_ts_prefix[32]; /* "2026-11-26T15:00:00" */

/* One kind of warning or error: its format string (the pointer: a call site,
 * or a few sharing a format) and level. */
struct log_kind {
    const char *fmt;   /* NULL: free entry */
    const char *level; /* "warning" or "error" */
    int64_t last_ms;   /* when the last line of this kind was printed */
    unsigned long suppressed;
    char last[LOG_LIMIT_KEEP]; /* the last suppressed message */
};

static struct log_kind log_kinds[LOG_LIMIT_KINDS];
static unsigned log_num_pending; /* kinds with suppressed > 0 */

void log_init(const char *prog)
{
    log_prog = prog;
    log_pid = (int)getpid();
    /* A forked child starts with its own counts. */
    memset(log_kinds, 0, sizeof(log_kinds));
    log_num_pending = 0;
}

void log_set_quiet(int quiet)
{
    log_quiet = quiet;
}

void log_set_rate_limit(int on)
{
    log_rate_limit = on;
}

void log_set_format(enum log_format format)
{
    log_format = format;
}

static int64_t log_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2026-11-26T15:00:00.123Z" (RFC 3339, UTC, milliseconds) into out[32]. */
static size_t log_timestamp(char *out)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != log_ts_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        if (strftime(log_ts_prefix, sizeof(log_ts_prefix), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
            log_ts_prefix[0] = '\0';
        log_ts_sec = ts.tv_sec;
    }
    int n = snprintf(out, 32, "%s.%03ldZ", log_ts_prefix, ts.tv_nsec / 1000000);
    return n > 0 && n < 32 ? (size_t)n : 0;
}

/* Appends s as the inside of a JSON string: quote, backslash and control
 * bytes escaped; other bytes as they are. Returns the new length. */
static size_t log_json_escape(char *line, size_t n, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s != '\0' && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            line[n++] = '\\';
            line[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(line + n, "\\u00", 4);
            line[n + 4] = hex[c >> 4];
            line[n + 5] = hex[c & 15];
            n += 6;
        } else {
            line[n++] = (char)c;
        }
    }
    return n;
}

/* Writes one line: level is "info", "warning" or "error"; msg the message. */
static void log_emit(const char *level, const char *msg)
{
    char line[LOG_LINE_MAX + 512];
    char ts[32];
    size_t n;
    int saved_errno = errno;

    log_timestamp(ts);
    if (log_format == LOG_FORMAT_JSON) {
        int m =
            snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"", ts, level);
        n = m > 0 ? (size_t)m : 0;
        n = log_json_escape(line, n, sizeof(line) - 48, log_prog);
        m = snprintf(line + n, sizeof(line) - n, "\",\"pid\":%d,\"msg\":\"", log_pid);
        n += m > 0 ? (size_t)m : 0;
        n = log_json_escape(line, n, sizeof(line) - 4, msg);
        line[n++] = '"';
        line[n++] = '}';
    } else {
        const char *tag = strcmp(level, "info") == 0 ? "" : level;
        int m = snprintf(line, sizeof(line) - 1, "%s %s[%d]: %s%s%s", ts, log_prog, log_pid, tag,
                         tag[0] ? ": " : "", msg);
        n = m > 0 ? (size_t)m : 0;
        if (n >= sizeof(line) - 1)
            n = sizeof(line) - 2; /* truncated: still end the line */
    }
    line[n++] = '\n';
    /* A short or failed write to stderr has nowhere better to be reported. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
    errno = saved_errno;
}

static void log_format_msg(char *msg, size_t cap, const char *fmt, va_list ap)
{
    int m = vsnprintf(msg, cap, fmt, ap);
    if (m < 0)
        msg[0] = '\0';
}

/* The kind of fmt at level, or a slot for it: a free one, else the one
 * printed longest ago (its pending count is reported first). */
static struct log_kind *log_kind_for(const char *level, const char *fmt)
{
    struct log_kind *oldest = &log_kinds[0];
    struct log_kind *free_kind = NULL;
    for (size_t i = 0; i < LOG_LIMIT_KINDS; i++) {
        struct log_kind *k = &log_kinds[i];
        if (k->fmt == fmt && k->level == level)
            return k;
        if (k->fmt == NULL && free_kind == NULL)
            free_kind = k;
        if (k->last_ms < oldest->last_ms)
            oldest = k;
    }
    if (free_kind != NULL)
        return free_kind;
    if (oldest->suppressed > 0) {
        char msg[LOG_LIMIT_KEEP + 64];
        snprintf(msg, sizeof(msg), "%lu similar lines suppressed, the last: %s", oldest->suppressed,
                 oldest->last);
        log_emit(oldest->level, msg);
        log_num_pending--;
    }
    memset(oldest, 0, sizeof(*oldest));
    return oldest;
}

static void log_limited(const char *level, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX];
    int saved_errno = errno;
    log_format_msg(msg, sizeof(msg), fmt, ap);
    if (!log_rate_limit) {
        log_emit(level, msg);
        errno = saved_errno;
        return;
    }
    int64_t now = log_now_ms();
    struct log_kind *k = log_kind_for(level, fmt);

    if (k->fmt != NULL && now - k->last_ms < LOG_LIMIT_MS) {
        if (k->suppressed++ == 0)
            log_num_pending++;
        snprintf(k->last, sizeof(k->last), "%s", msg);
        errno = saved_errno;
        return;
    }
    if (k->suppressed > 0) {
        size_t len = strlen(msg);
        snprintf(msg + len, sizeof(msg) - len, " (and %lu similar lines suppressed before)",
                 k->suppressed);
        log_num_pending--;
    }
    k->fmt = fmt;
    k->level = level;
    k->last_ms = now;
    k->suppressed = 0;
    log_emit(level, msg);
    errno = saved_errno;
}

void log_flush_suppressed(int force)
{
    if (log_num_pending == 0)
        return;
    int saved_errno = errno;
    int64_t now = log_now_ms();
    for (size_t i = 0; i < LOG_LIMIT_KINDS; i++) {
        struct log_kind *k = &log_kinds[i];
        if (k->suppressed == 0 || (!force && now - k->last_ms < LOG_LIMIT_MS))
            continue;
        char msg[LOG_LIMIT_KEEP + 64];
        snprintf(msg, sizeof(msg), "%lu similar lines suppressed, the last: %s", k->suppressed,
                 k->last);
        log_emit(k->level, msg);
        /* The summary counts as this kind's line of the second. */
        k->suppressed = 0;
        k->last_ms = now;
        log_num_pending--;
    }
    errno = saved_errno;
}

static void log_plain(const char *level, const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX];
    log_format_msg(msg, sizeof(msg), fmt, ap);
    log_emit(level, msg);
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_plain("info", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_limited("warning", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_limited("error", fmt, ap);
    va_end(ap);
}

void log_task(const char *fmt, ...)
{
    if (log_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_plain("info", fmt, ap);
    va_end(ap);
}
