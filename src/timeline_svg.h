/* timeline_svg.h - draws a trace as a timeline: one lane per worker, time on the x axis.
 *
 * Calling sequence (after trace_set_merge() and trace_analyze(): trace_read.h, trace_match.h):
 *
 *     timeline_svg_write(out, &set, &an);    a standalone SVG document
 *     timeline_html_write(out, &set, &an);   an HTML page: the same SVG, a legend, the figures
 *
 * The picture: lock waits (pale orange), lock holds (blue; red when one overlaps another
 * worker's), tail reads (green triangles), writes (dark ticks labelled with the task's titulo),
 * responses (dots: green 2xx, red 5xx); in a build without locks, each append's unprotected
 * section from tail read to write (dashed). Every lost task is circled in red, with an arrow
 * to the write that overwrote it and a dashed line between the two tail reads. The scale gives
 * a typical hold (or section) about 24 px; idle stretches longer than 20 of those (at least
 * 2 ms) are cut out and marked. The width is capped at 40000 px (the browser zooms).
 *
 * Markup for styling and checks: root <svg class="timeline">; each lane <g class="lane">;
 * each hold class "hold", each write <g class="write">, each wait class "wait", each tail read
 * class "read"; each lost task one <g class="lost"> whose first child is a <title> naming the
 * task; the summary <text class="summary">. Nothing else carries the class "lost".
 *
 * Ownership: nothing is kept. Errors: returns 0, or -1 when writing to out failed (errno).
 */
#ifndef TASKSERVER_TIMELINE_SVG_H
#define TASKSERVER_TIMELINE_SVG_H

#include <stdio.h>

#include "trace_match.h"

int timeline_svg_write(FILE *out, const struct trace_set *set, const struct trace_analysis *an);
int timeline_html_write(FILE *out, const struct trace_set *set, const struct trace_analysis *an);

#endif
