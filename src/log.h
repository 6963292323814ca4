/* log.h - one-line diagnostics on stderr, prefixed with the program and pid.
 *
 * Call log_init() once in main() (and again in a forked child, to refresh the
 * pid). Messages are lower-case, without a full stop, and name the object that
 * failed: log_error("open %s: %s", path, strerror(errno)). Each line is written
 * with a single write(2), so lines from several processes never interleave.
 */
#ifndef TASKSERVER_LOG_H
#define TASKSERVER_LOG_H

#include <stdarg.h>

/* Sets the prefix, e.g. "taskserver", and caches getpid(). */
void log_init(const char *prog);

/* Silences log_task() lines (the per-task log); other levels always print. */
void log_set_quiet(int quiet);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A per-request line (one per stored task); suppressed by log_set_quiet(1). */
void log_task(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
