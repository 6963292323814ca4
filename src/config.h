/* config.h - taskserver's flags and environment -> one validated struct, before fork.
 *
 *   struct config cfg;
 *   int rc = config_parse(&cfg, argc, argv, environ_lookup);
 *     rc == 0   run with cfg
 *     rc == 1   --help or --version was printed: exit 0
 *     rc == -1  a one-line error was printed to stderr: exit 2
 *
 * Every flag has an environment variable (TASKSERVER_<FLAG>, dashes as
 * underscores: TASKSERVER_PORT, TASKSERVER_RACE_WINDOW_US); a flag wins over
 * its variable, the variable over the default.
 */
#ifndef TASKSERVER_CONFIG_H
#define TASKSERVER_CONFIG_H

#include <stddef.h>

struct config {
    char bind[64];                 /* numeric IPv4 or IPv6 address, default "0.0.0.0" */
    unsigned port;                 /* default 9000; 0 picks a free port */
    unsigned workers;              /* default: number of online CPUs */
    char file[4096];               /* default "tasks.json" */
    int fsync;                     /* fdatasync before 201 */
    unsigned race_window_us;       /* store option, default 0 */
    unsigned lock_timeout_ms;      /* default 5000; 0 waits forever */
    size_t max_body;               /* default 65536 -> 413 */
    unsigned max_connections;      /* per worker; 0 (default): from the open file limit */
    size_t max_request_line;       /* default 8192 -> 414 */
    size_t max_header_bytes;       /* default 16384 -> 431 */
    size_t max_headers;            /* default 100 -> 431 */
    unsigned header_timeout_ms;    /* default 10000 -> 408 */
    unsigned body_timeout_ms;      /* default 10000 -> 408 */
    unsigned keepalive_timeout_ms; /* default 5000 -> close */
    unsigned send_timeout_ms;      /* default 30000: a client that stops reading -> close */
    unsigned grace_ms;             /* default 10000: graceful shutdown, then SIGKILL */
    int quiet;                     /* no per-task log lines */
    char trace_dir[4096];          /* "" (default): no trace; else each worker's event log */
    unsigned trace_max_events;     /* per worker, default 100000: then tracing stops */
    unsigned log_format;           /* CONFIG_LOG_TEXT (default) or CONFIG_LOG_JSON */
    char access_log[4096];         /* "" off (default), "-" stdout, or a file appended to */
};

enum { CONFIG_LOG_TEXT, CONFIG_LOG_JSON }; /* --log-format text|json */

/* getenv-like lookup, so tests can pass their own environment. */
typedef const char *config_getenv_fn(const char *name);

int config_parse(struct config *cfg, int argc, char **argv, config_getenv_fn *get_env);

#endif
