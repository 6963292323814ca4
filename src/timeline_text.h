/* timeline_text.h - a trace's figures as text: per worker lock waits and holds, lost tasks.
 *
 * Calling sequence (after trace_set_merge() and trace_analyze(): trace_read.h, trace_match.h):
 *
 *     timeline_text_write(stdout, &set, &an);
 *
 * Prints one header line, a table with one row per worker and a row "all" (holds, lock
 * timeouts, wait total, hold total, wait p50, p99 and max, writes, lost), one line per lost
 * task, and a last line "summary: workers=N writes=N lost=N overlapping_holds=N
 * overlapping_sections=N locking=on|off" for scripts. The numbers are the ones the picture
 * shows (timeline_svg.h). Returns 0, or -1 when writing failed (errno).
 */
#ifndef TASKSERVER_TIMELINE_TEXT_H
#define TASKSERVER_TIMELINE_TEXT_H

#include <stdio.h>

#include "trace_match.h"

int timeline_text_write(FILE *out, const struct trace_set *set, const struct trace_analysis *an);

#endif
