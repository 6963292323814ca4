/* access_log.h - one line per request, common log format plus the request time, buffered per
 * worker.
 *
 * Calling sequence:
 *
 *   before fork (taskserver's main):
 *       if (access_log_open(cfg.access_log, err, sizeof(err)) < 0)   "-" is stdout
 *           refuse to start, print err;
 *   in each worker:
 *       struct access_log *al = access_log_create();   NULL: off, or out of memory (errno)
 *       per response:  access_log_add(al, fd, request, request_len, status, bytes, ns);
 *       per loop turn: access_log_flush(al);           one write(2) per 4 KiB of lines
 *       access_log_free(al);                           flushes what is left
 *
 * A line:
 *
 *   127.0.0.1 - - [26/Nov/2026:15:00:00 +0000] "POST /tareas HTTP/1.1" 201 118 0.000153
 *
 * host (the peer's address), ident and user ("-"), the time (UTC), the request
 * line (quotes, backslashes and bytes outside printable ASCII as \xHH; at most
 * ACCESS_LOG_REQUEST_MAX bytes of it), the status, the body bytes ("-" for
 * none), and the seconds from the request's first byte to its response.
 *
 * Lines are kept in the worker's buffer and written once per loop turn, not
 * once per request: the event loop pays one write(2) per turn, not one per
 * response. (A disk that stalls that write still stalls the worker for it;
 * a full buffer is written before it takes more.) Each write holds whole lines
 * and at most PIPE_BUF bytes, so the workers' lines never interleave, also on a
 * pipe ("-"). The descriptor is opened once with O_APPEND and shared by every
 * worker. Write errors are logged (rate-limited) and the lines dropped.
 */
#ifndef TASKSERVER_ACCESS_LOG_H
#define TASKSERVER_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>

#define ACCESS_LOG_REQUEST_MAX                                                                     \
    960 /* bytes of the request line logged (escaped, a line fits PIPE_BUF) */

struct access_log;

/* Opens path for appending (created 0644), or takes stdout for "-"; "" is
 * off. Returns 0, or -1 with errno and err naming the path. */
int access_log_open(const char *path, char *err, size_t err_len);

/* A worker's buffer over the descriptor access_log_open() left; NULL when
 * the access log is off (errno 0) or on ENOMEM (errno set). */
struct access_log *access_log_create(void);

/* Adds one line. request is the start of the request's bytes (the request
 * line ends at the first CR or LF; request_len bounds it, 0 for none); bytes
 * is the body length sent. */
void access_log_add(struct access_log *al, int fd, const char *request, size_t request_len,
                    int status, uint64_t bytes, int64_t duration_ns);

/* Writes what is buffered. */
void access_log_flush(struct access_log *al);

/* Flushes and frees (NULL is fine). */
void access_log_free(struct access_log *al);

#endif
