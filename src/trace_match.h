/* trace_match.h - finds in a merged trace set (trace_read.h) the lock holds, the appends and
 * the lost updates, with per-worker figures.
 *
 * Calling sequence (after trace_set_merge()):
 *
 *     struct trace_analysis an;
 *     trace_analyze(&set, &an);         holds, appends, lost tasks, overlaps, per-worker figures
 *     ... draw or print (timeline_svg.h, timeline_text.h) ...
 *     trace_analysis_free(&an);
 *
 * Ownership: the analysis owns its arrays and refers to the set's events by index, so the set
 * must outlive it. Errors: trace_analyze() returns 0, or -1 with errno ENOMEM (the analysis is
 * then empty).
 *
 * What "lost" means: the file is a JSON array, one record per line, and an append writes the single
 * buffer ",\n{record}\n]\n" (no ",\n" for id 1) at the offset where it read the end of the list.
 * Its record occupies [offset + 2, offset + length - 3) (from offset for id 1); the last 3 bytes,
 * "\n]\n", are meant to be overwritten by the next append, whose buffer starts exactly there. A
 * write is LOST when a LATER write (in the order of the write events' times: concurrent pwrite()s
 * to one file are serialized by the kernel, and each event is taken right after its pwrite
 * returned) covers any byte of its record: those bytes are gone from the file, whole or in part.
 * Its overwriter is the first such write. This covers two writers that read the same end (same
 * offset: the later one wins), three or more at one offset (each but the last is lost, each to the
 * next one), a shorter record landing last (the longer one is still destroyed: its tail is left as
 * junk that the next append cuts), and a writer that read a tail in the middle of another's write
 * (different offsets, overlapping bytes). Writes that only meet at the "\n]\n" are the normal case,
 * not a loss.
 *
 * A record can also be CUT OFF: in the unlocked build a writer that reads a tail in the middle
 * of another's write takes it for a torn append and repairs it by truncating the file, which
 * reports no write. The trace still shows it: a tail read at offset X means the file was
 * X + 3 bytes long at that moment, so a record written before it that reaches past X is gone
 * (a truncated file never gets those bytes back; a later write past the end leaves zeros).
 * The read reports the size a few microseconds after it looked (and after the repair), so
 * only records written TRACE_CUT_MARGIN_NS before the read count; one written in between
 * may be missed, or in rare cases of a reader preempted after looking, taken for cut off. An
 * append's own failed-write undo (a truncation too) is seen the same way. In the locked build
 * every record ends at or before the next tail read, so nothing is ever taken for cut off.
 *
 * Batches: a worker stores every POST of one event-loop turn with one lock and one write;
 * its trace shows one tail read, then one write event per record (each with its own bytes),
 * then the responses in the same order. The records of a batch share its tail read, and
 * responses pair with writes first in, first out.
 *
 * Only acknowledged tasks can be lost: an overwritten record whose request was answered with
 * an error (the server read its bytes back and saw them overwritten) is "refused", drawn but
 * not counted as lost.
 *
 * Overlapping holds: the store reports a grant after fcntl() returned and a release after
 * the unlock returned, so the times drawn for a hold may overhang the real one by a
 * scheduling delay (a woken waiter can run before the releaser reads the clock). Overlaps are
 * therefore judged on [grant, last event inside the hold], which lies within the real hold:
 * two of these intervals that intersect prove that two processes held conflicting locks at
 * once (one of them a write lock; read locks may share). With working locks the count is 0.
 */
#ifndef TASKSERVER_TRACE_MATCH_H
#define TASKSERVER_TRACE_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "trace_read.h"

#define TRACE_NONE SIZE_MAX       /* "no such event / hold / append" in an index field */
#define TRACE_CUT_MARGIN_NS 50000 /* see "cut off" above */

/* One lock wait and, if granted, its hold. Times are -1 where the trace has none. */
struct trace_hold {
    size_t worker;
    char lock;           /* 'r' or 'w' */
    int64_t t_wait;      /* the wait began */
    int64_t t_grant;     /* granted; -1 after a timeout */
    int64_t t_end;       /* released, or the wait timed out; -1 when the trace stops first */
    int64_t t_inner_end; /* the last event inside the hold (t_grant when none) */
    int timed_out;
    int overlaps; /* intersects a conflicting hold of another worker (see above) */
};

/* One append as one worker saw it: its tail read, its write, its response. */
struct trace_append {
    size_t worker;
    size_t read_ev;        /* index in set->events, or TRACE_NONE */
    size_t write_ev;       /* TRACE_NONE: the append failed or the writer died */
    size_t response_ev;    /* the response that followed, or TRACE_NONE */
    size_t hold;           /* the write lock it ran under (index in an->holds), or TRACE_NONE */
    int lost;              /* a later write covered part of its record, and it was
                              acknowledged (2xx, or no response in the trace) */
    int refused;           /* ... but answered with an error: not a lost task */
    size_t overwritten_by; /* the first such append, or TRACE_NONE */
    size_t cut_by;         /* else: the append whose tail read showed it cut off */
    int section_overlaps;  /* [tail read, write] meets another worker's: the unlocked race */
};

struct trace_stats {
    size_t holds;       /* granted holds */
    size_t write_holds; /* of them, write locks */
    size_t timeouts;    /* waits that ran out (503) */
    int64_t wait_total_ns;
    int64_t hold_total_ns;
    int64_t wait_p50_ns; /* nearest rank over every wait, granted or timed out */
    int64_t wait_p99_ns;
    int64_t wait_max_ns;
    size_t writes;
    size_t lost;
    size_t reads_without_write;
    size_t responses;
    size_t responses_error; /* status >= 500 */
};

struct trace_analysis {
    struct trace_hold *holds; /* by worker, then time */
    size_t num_holds;
    struct trace_append *appends; /* by worker, then time */
    size_t num_appends;
    struct trace_stats *workers; /* one per set->workers */
    struct trace_stats all;
    size_t num_writes;
    size_t num_lost;
    size_t num_overlapping_holds;    /* pairs */
    size_t num_overlapping_sections; /* pairs of appends whose [read, write] intersect */
    int64_t t_first;                 /* what is worth drawing: the appends and their write locks
                                        (else the store's events, else all) */
    int64_t t_last;
};

int trace_analyze(const struct trace_set *set, struct trace_analysis *an);
void trace_analysis_free(struct trace_analysis *an);

#endif
