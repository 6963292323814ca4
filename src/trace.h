/* trace.h - a worker's event log for the race timeline: one text file per worker, no locks.
 *
 * Calling sequence:
 *
 *   Master, before any worker exists (a bad directory stops the start-up):
 *       if (trace_prepare_dir(cfg.trace_dir, err, sizeof(err)) < 0) refuse to start;
 *
 *   Each worker, after fork():
 *       struct trace *tr = trace_open(dir, index, max_events, err, sizeof(err));
 *       store observer:           trace_store_event(tr, ev);     (may run under the file lock)
 *       each response:            trace_response(tr, status);
 *       end of each loop turn:    trace_turn(tr, idle);          (writes when due)
 *       before the worker exits:  trace_close(tr);               (writes the rest, "# end")
 *
 * Each worker writes only its own file, DIR/worker-PID.trace (created, or truncated when a
 * pid is reused). Events are formatted into a memory buffer and written with write(2) outside
 * the file lock: by trace_turn() once 64 KiB are buffered, 100 ms have passed or the worker
 * goes idle, when a lock
 * is released with the buffer three quarters full, and only when the buffer is truly full
 * (never in practice: it holds hundreds of requests) under the lock. A worker killed by
 * SIGKILL loses what is still buffered (at most about 100 ms of events). After max_events
 * events the worker writes "# stopped: ..." and traces no more; trace_turn() logs it once.
 * A failed write (disk full) also stops the trace, logged once; serving goes on regardless.
 *
 * The file format, version 1 (plain text, one event per line, for `less` and for
 * src/trace_read.c):
 *
 *   # taskserver-trace 1 pid=4242 worker=0 locking=on max_events=100000
 *   T lock_wait lock=w
 *   T lock_granted lock=w wait_ns=N
 *   T lock_timeout lock=w wait_ns=N
 *   T tail_read offset=N id=N
 *   T write offset=N length=N id=N titulo="..." cliente="..."
 *   T fsync dur_ns=N error=N
 *   T unlock lock=w hold_ns=N
 *   T outside what="..." error=N
 *   T response status=N
 *   # stopped: event cap 100000 reached          (only when the cap was reached)
 *   # end events=N                               (only after a clean exit)
 *
 * T is CLOCK_MONOTONIC in nanoseconds (comparable across the workers of one machine). lock is
 * r or w. tail_read: offset is where the next record goes, id the last id seen (0: empty
 * list). write: the bytes [offset, offset+length) were written with one pwrite(); they are
 * ",\n{record}\n]\n" (no ",\n" when id is 1). titulo and cliente are at most 64 bytes of the
 * task's fields (cut at a UTF-8 boundary), in double quotes, with \" \\ and \xNN for control
 * bytes; cliente="" when the task had none. Lines starting with '#' are comments; a reader
 * ignores unknown keys (later versions may add some). The unlocked build writes no lock
 * lines: its store takes no locks.
 *
 * Errors: trace_prepare_dir() and trace_open() return -1 / NULL with errno and a message
 * naming the path in err. The other calls cannot fail (trouble stops the trace, logged).
 */
#ifndef TASKSERVER_TRACE_H
#define TASKSERVER_TRACE_H

#include <stddef.h>

#include "task_store.h"

#define TRACE_FORMAT_VERSION 1
#define TRACE_TEXT_MAX 64 /* bytes of titulo and cliente kept per write event */

struct trace;

/* Creates dir if it is missing (one level, mode 0755) and checks that this process can write
 * there. Returns 0, or -1 with errno and err. */
int trace_prepare_dir(const char *dir, char *err, size_t err_len);

/* Creates dir/worker-PID.trace and writes its header. index is the worker's slot,
 * max_events > 0 the cap. Returns NULL with errno and err on failure. */
struct trace *trace_open(const char *dir, unsigned index, unsigned long max_events, char *err,
                         size_t err_len);

/* Records a store event (the store's observer calls this). Quick: formats into memory. */
void trace_store_event(struct trace *tr, const struct task_store_event *ev);

/* Records the status of a response about to be sent (reads the clock). */
void trace_response(struct trace *tr, int status);

/* End of an event-loop turn: writes the buffer when due (always when idle: the worker is
 * about to wait with no connection open, maybe for long), logs a stop once. */
void trace_turn(struct trace *tr, int idle);

/* Writes what is buffered and "# end events=N", closes the file, frees tr. NULL is a no-op. */
void trace_close(struct trace *tr);

#endif
