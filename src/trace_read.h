/* trace_read.h - reads the workers' trace files (src/trace.h) into one set of events.
 *
 * Calling sequence:
 *
 *     struct trace_set set;
 *     trace_set_init(&set);
 *     trace_set_read_dir(&set, dir, err, sizeof(err));        every *.trace file in dir
 *       (or trace_set_read_file() per file, trace_set_read_text() for text in memory)
 *     trace_set_merge(&set);            all events in one array, by time, then worker, then line
 *     ... analyze (trace_match.h), draw or print (timeline_svg.h, timeline_text.h) ...
 *     trace_set_free(&set);
 *
 * Ownership: the set owns its events and their strings. Errors: the read calls return 0, or
 * -1 with errno and a message in err naming the file and the line (EBADMSG: not a trace, or a
 * malformed line; ENOMEM). A last line cut short (a worker killed in the middle of a write)
 * is not an error: it is skipped and counted in the worker's num_torn_lines.
 */
#ifndef TASKSERVER_TRACE_READ_H
#define TASKSERVER_TRACE_READ_H

#include <stddef.h>
#include <stdint.h>

enum trace_kind {
    TRACE_LOCK_WAIT,
    TRACE_LOCK_GRANTED,
    TRACE_LOCK_TIMEOUT,
    TRACE_UNLOCK,
    TRACE_TAIL_READ,
    TRACE_WRITE,
    TRACE_FSYNC,
    TRACE_OUTSIDE,
    TRACE_RESPONSE,
};

struct trace_event {
    int64_t t_ns;
    enum trace_kind kind;
    size_t worker;  /* index in set->workers */
    size_t line;    /* line number in its file: the worker's own order */
    char lock;      /* 'r' or 'w' (lock events) */
    int64_t offset; /* tail_read, write */
    int64_t length; /* write */
    uint64_t id;    /* tail_read, write */
    int64_t dur_ns; /* wait_ns, hold_ns, dur_ns */
    int status;     /* response */
    int error;      /* fsync, outside */
    char *titulo;   /* write: owned, never NULL for a write */
    char *cliente;  /* write: owned, "" when none */
    char *what;     /* outside: owned */
};

struct trace_worker {
    char *path; /* owned */
    long pid;
    unsigned index;        /* the worker's slot in the master */
    int locking;           /* the build: 1 locks, 0 does not */
    int capped;            /* "# stopped: event cap" seen */
    int ended;             /* "# end" seen: the worker exited cleanly */
    size_t num_events;     /* events read from its file */
    size_t num_torn_lines; /* a last line cut short, skipped */
    size_t num_unknown;    /* events of a kind this reader does not know, skipped */
};

struct trace_set {
    struct trace_worker *workers;
    size_t num_workers;
    struct trace_event *events;
    size_t num_events;
    size_t cap_events;
    int locking; /* 1 or 0 as the workers say; -1 when they disagree (or no file) */
};

void trace_set_init(struct trace_set *set);
void trace_set_free(struct trace_set *set);

/* Adds the events of one trace file (text of text_len bytes, named name for messages). */
int trace_set_read_text(struct trace_set *set, const char *name, const char *text, size_t text_len,
                        char *err, size_t err_len);
int trace_set_read_file(struct trace_set *set, const char *path, char *err, size_t err_len);

/* Reads every file named *.trace in dir, in name order. ENOENT also when there is none. */
int trace_set_read_dir(struct trace_set *set, const char *dir, char *err, size_t err_len);

/* Sorts the events by time (then worker, then line) and the workers by slot and pid;
 * call after the reads, before trace_analyze() (trace_match.h). Never fails. */
void trace_set_merge(struct trace_set *set);

/* "850 ns", "12.3 us", "1.93 ms", "2.50 s" into buf. Returns buf. */
const char *trace_format_ns(int64_t ns, char *buf, size_t buf_len);

#endif
