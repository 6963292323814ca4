/* log.c - stderr diagnostics, one write(2) per line. */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *log_prog = "taskserver";
static int log_pid;
static int log_quiet;

void log_init(const char *prog)
{
    log_prog = prog;
    log_pid = (int)getpid();
}

void log_set_quiet(int quiet)
{
    log_quiet = quiet;
}

static void log_write(const char *level, const char *fmt, va_list ap)
{
    char line[2048];
    int saved_errno = errno;
    int n = snprintf(line, sizeof(line), "%s[%d]: %s", log_prog, log_pid, level);
    if (n < 0)
        n = 0;
    if ((size_t)n < sizeof(line)) {
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2; /* truncated: still end the line */
    line[n++] = '\n';
    /* A short or failed write to stderr has nowhere better to be reported. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
    errno = saved_errno;
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write("", fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write("warning: ", fmt, ap);
    va_end(ap);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_write("error: ", fmt, ap);
    va_end(ap);
}

void log_task(const char *fmt, ...)
{
    if (log_quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write("", fmt, ap);
    va_end(ap);
}
