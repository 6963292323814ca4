/* log.h - one-line diagnostics on stderr: UTC time, program and pid, level, message.
 *
 * Call log_init() once in main() (and again in a forked child, to refresh the
 * pid); log_set_format() once the configuration is read. Messages are
 * lower-case, without a full stop, and name the object that failed:
 * log_error("open %s: %s", path, strerror(errno)). Each line is written with
 * a single write(2), so lines from several processes never interleave.
 *
 *   text: 2026-11-26T15:00:00.123Z taskserver[4123]: error: open tasks.json: ...
 *   json: {"ts":"2026-11-26T15:00:00.123Z","level":"error","prog":"taskserver",
 *          "pid":4123,"msg":"open tasks.json: ..."}
 *
 * Rate limit (once log_set_rate_limit(1), as the workers do: their errors come
 * per request and can flood): a warning or error printed with the same format
 * string as one printed less than a second ago (in this process) is counted,
 * not printed.
 * The next line of that kind says how many were suppressed, and
 * log_flush_suppressed() (call it from a loop now and then, and before exit)
 * reports a count whose second has passed with the last suppressed message.
 * Info and per-task lines are never suppressed.
 */
#ifndef TASKSERVER_LOG_H
#define TASKSERVER_LOG_H

#include <stdarg.h>

enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* Sets the prefix, e.g. "taskserver", and caches getpid(). */
void log_init(const char *prog);

/* Silences log_task() lines (the per-task log); other levels always print. */
void log_set_quiet(int quiet);

/* Turns the rate limit of warnings and errors on (1) or off (0, the default:
 * the master's and the tools' lines are few, and each one counts). */
void log_set_rate_limit(int on);

/* Text (default) or one JSON object per line. */
void log_set_format(enum log_format format);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A per-request line (one per stored task); suppressed by log_set_quiet(1). */
void log_task(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the counts of suppressed lines whose second is over (all of them
 * with force). Cheap when there are none. */
void log_flush_suppressed(int force);

#endif
