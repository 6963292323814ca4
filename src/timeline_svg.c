/* timeline_svg.c - draws a trace as an SVG timeline (and an HTML page around it), by hand. */
#include "timeline_svg.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TL_LEFT 190.0       /* lane labels */
#define TL_PAD 20.0         /* before the first and after the last event */
#define TL_TOP 118.0        /* title, summary, legend, axis */
#define TL_LANE_H 150.0     /* one worker */
#define TL_BAR_Y 86.0       /* the bars' top, from the lane's top */
#define TL_BAR_H 24.0       /* a hold */
#define TL_BREAK_PX 44.0    /* an idle stretch cut out */
#define TL_TYPICAL_PX 24.0  /* a typical hold (or section) */
#define TL_MIN_PLOT 800.0   /* px of plot at least */
#define TL_MAX_PLOT 40000.0 /* and at most */
#define TL_GAP_TYPICALS 20  /* an idle stretch longer than this many typical durations is cut */
#define TL_GAP_MIN_NS 2000000
#define TL_LABEL_MAX 24 /* bytes of titulo in a write's label */

/* A stretch of time drawn at the common scale; the gaps between stretches are cut out. */
struct tl_seg {
    int64_t t0;
    int64_t t1;
    double x0;
};

struct tl {
    FILE *out;
    const struct trace_set *set;
    const struct trace_analysis *an;
    double scale; /* px per ns */
    struct tl_seg *segs;
    size_t num_segs;
    double width;
    double height;
    int64_t origin; /* time 0 on the axis: the first store event */
};

/* ---- text ---- */

/* Writes s as XML character data: escaped, control bytes and invalid UTF-8 as '?', at most
 * max bytes (then an ellipsis). */
static void tl_text(FILE *out, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;
    while (i < n) {
        if (i >= max) {
            fputs("\xe2\x80\xa6", out);
            return;
        }
        unsigned char c = p[i];
        if (c < 0x80) {
            if (c == '&')
                fputs("&amp;", out);
            else if (c == '<')
                fputs("&lt;", out);
            else if (c == '>')
                fputs("&gt;", out);
            else if (c == '"')
                fputs("&quot;", out);
            else if (c < 0x20 || c == 0x7f)
                fputc('?', out);
            else
                fputc(c, out);
            i++;
            continue;
        }
        size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
        if (c >= 0xf5)
            len = 0;
        size_t k = 1;
        while (len > 0 && k < len && i + k < n && (p[i + k] & 0xc0) == 0x80)
            k++;
        if (len == 0 || k != len) {
            fputc('?', out);
            i++;
            continue;
        }
        fwrite(p + i, 1, len, out);
        i += len;
    }
}

static const char *tl_ns(int64_t ns, char *buf, size_t len)
{
    return trace_format_ns(ns, buf, len);
}

/* ---- scale ---- */

static int tl_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The median hold, else the median section (tail read to write), else 100 us. */
static int64_t tl_typical(const struct trace_set *set, const struct trace_analysis *an)
{
    size_t cap = an->num_holds > an->num_appends ? an->num_holds : an->num_appends;
    int64_t *d = malloc((cap ? cap : 1) * sizeof(*d));
    size_t n = 0;
    int64_t typ = 100000;
    if (d == NULL)
        return typ;
    for (size_t i = 0; i < an->num_holds; i++)
        if (an->holds[i].t_grant >= 0 && an->holds[i].t_end >= 0)
            d[n++] = an->holds[i].t_end - an->holds[i].t_grant;
    if (n == 0) {
        for (size_t i = 0; i < an->num_appends; i++) {
            const struct trace_append *a = &an->appends[i];
            if (a->read_ev != TRACE_NONE && a->write_ev != TRACE_NONE)
                d[n++] = set->events[a->write_ev].t_ns - set->events[a->read_ev].t_ns;
        }
    }
    if (n > 0) {
        qsort(d, n, sizeof(*d), tl_cmp_i64);
        typ = d[n / 2];
    }
    free(d);
    return typ < 1000 ? 1000 : typ;
}

/* Cuts the idle stretches out and fits the scale. Returns 0 or -1 (ENOMEM). */
static int tl_layout(struct tl *tl)
{
    const struct trace_set *set = tl->set;
    const struct trace_analysis *an = tl->an;
    int64_t typ = tl_typical(set, an);
    int64_t gap = typ * TL_GAP_TYPICALS;
    if (gap < TL_GAP_MIN_NS)
        gap = TL_GAP_MIN_NS;

    size_t cap = 16;
    tl->segs = malloc(cap * sizeof(*tl->segs));
    if (tl->segs == NULL)
        return -1;
    tl->num_segs = 1;
    tl->segs[0].t0 = tl->segs[0].t1 = an->t_first;
    for (size_t i = 0; i < set->num_events; i++) {
        int64_t t = set->events[i].t_ns;
        if (t < an->t_first || t > an->t_last)
            continue;
        struct tl_seg *last = &tl->segs[tl->num_segs - 1];
        if (t - last->t1 > gap) {
            if (tl->num_segs == cap) {
                cap *= 2;
                struct tl_seg *s = realloc(tl->segs, cap * sizeof(*s));
                if (s == NULL)
                    return -1;
                tl->segs = s;
            }
            tl->segs[tl->num_segs].t0 = tl->segs[tl->num_segs].t1 = t;
            tl->num_segs++;
        } else if (t > last->t1) {
            last->t1 = t;
        }
    }
    int64_t busy = 0;
    for (size_t i = 0; i < tl->num_segs; i++)
        busy += tl->segs[i].t1 - tl->segs[i].t0;
    if (busy < 1000)
        busy = 1000;
    double breaks = TL_BREAK_PX * (double)(tl->num_segs - 1);
    tl->scale = TL_TYPICAL_PX / (double)typ;
    if ((double)busy * tl->scale + breaks < TL_MIN_PLOT)
        tl->scale = (TL_MIN_PLOT - breaks) / (double)busy;
    if ((double)busy * tl->scale + breaks > TL_MAX_PLOT)
        tl->scale = (TL_MAX_PLOT - breaks > TL_MIN_PLOT ? TL_MAX_PLOT - breaks : TL_MIN_PLOT) /
                    (double)busy;
    double x = TL_LEFT + TL_PAD;
    for (size_t i = 0; i < tl->num_segs; i++) {
        tl->segs[i].x0 = x;
        x += (double)(tl->segs[i].t1 - tl->segs[i].t0) * tl->scale;
        if (i + 1 < tl->num_segs)
            x += TL_BREAK_PX;
    }
    tl->width = x + TL_PAD + 20;
    tl->height = TL_TOP + TL_LANE_H * (double)set->num_workers + 40;
    tl->origin = an->t_first;
    return 0;
}

static double tl_seg_end(const struct tl *tl, size_t i)
{
    return tl->segs[i].x0 + (double)(tl->segs[i].t1 - tl->segs[i].t0) * tl->scale;
}

/* Time -> x: linear inside a stretch, squeezed across a cut. */
static double tl_x(const struct tl *tl, int64_t t)
{
    size_t lo = 0, hi = tl->num_segs;
    while (lo < hi) { /* the first stretch that starts after t */
        size_t mid = lo + (hi - lo) / 2;
        if (tl->segs[mid].t0 <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    double x;
    if (lo == 0) {
        x = tl->segs[0].x0 - (double)(tl->segs[0].t0 - t) * tl->scale;
    } else {
        size_t i = lo - 1;
        const struct tl_seg *s = &tl->segs[i];
        if (t <= s->t1 || i + 1 == tl->num_segs) {
            x = s->x0 + (double)(t - s->t0) * tl->scale;
        } else {
            double xe = tl_seg_end(tl, i), xn = tl->segs[i + 1].x0;
            x = xe + (xn - xe) * (double)(t - s->t1) / (double)(tl->segs[i + 1].t0 - s->t1);
        }
    }
    if (x < TL_LEFT + 2)
        x = TL_LEFT + 2;
    if (x > tl->width - 2)
        x = tl->width - 2;
    return x;
}

static double tl_lane_y(size_t worker)
{
    return TL_TOP + TL_LANE_H * (double)worker;
}

/* ---- the parts ---- */

static const char tl_style[] =
    "text{font-family:'DejaVu Sans',Arial,sans-serif;font-size:11px;fill:#222}"
    ".title{font-size:18px;font-weight:bold}.summary{font-size:13px}"
    ".warning{font-size:12px;fill:#b00}.lane-bg{fill:#f6f6f6}.lane-alt{fill:#ececec}"
    ".lane-name{font-size:13px;font-weight:bold}.grid{stroke:#d4d4d4;stroke-width:1}"
    ".axis text{font-size:10px;fill:#555}.break{fill:#fff;stroke:#bbb;stroke-dasharray:2 2}"
    ".break-label{font-size:9px;fill:#777}"
    ".wait{fill:#f5c58c}.hold{fill:#3b6fb6;stroke:#fff;stroke-width:1.5}"
    ".hold.overlap{fill:#d62728}.section{fill:#e2e2e2;stroke:#777;stroke-dasharray:3 2}"
    ".section.race{fill:#f6d5d5;stroke:#c33}"
    ".read{fill:#2ca02c}.write rect{fill:#222}.write text{font-size:10px}"
    ".write.overwritten rect{fill:#d62728}.write.overwritten text{fill:#d62728}"
    ".response{fill:#2ca02c}.response.error{fill:#d62728}.response.other{fill:#999}"
    ".lost circle{fill:none;stroke:#d62728;stroke-width:2.5}"
    ".lost .overwrite{fill:none;stroke:#d62728;stroke-width:1.8}"
    ".lost .same-end{fill:none;stroke:#ff7f0e;stroke-width:1.6;stroke-dasharray:4 3}";

/* A trace cut short says less than the run did: one line under the legend. */
static void tl_warnings(struct tl *tl)
{
    const struct trace_set *set = tl->set;
    FILE *out = tl->out;
    int warned = 0;
    for (size_t w = 0; w < set->num_workers; w++) {
        const struct trace_worker *tw = &set->workers[w];
        if (!tw->capped && tw->num_torn_lines == 0)
            continue;
        if (!warned++)
            fputs("<text class=\"warning\" x=\"12\" y=\"92\">incomplete:", out);
        fprintf(out, " worker %u (pid %ld) %s;", tw->index, tw->pid,
                tw->capped ? "stopped at its event cap" : "has a torn last line");
    }
    if (warned)
        fputs("</text>\n", out);
}

/* The key to the marks, in one row under the summary. */
static void tl_legend(FILE *out)
{
    double x = 12, y = 70;
    fputs("<g class=\"legend\">\n", out);
    fprintf(out, "<rect fill=\"#f5c58c\" x=\"%.0f\" y=\"%.0f\" width=\"22\" height=\"8\"/>", x,
            y - 8);
    fprintf(out, "<text x=\"%.0f\" y=\"%.0f\">lock wait</text>\n", x + 26, y);
    x += 90;
    fprintf(out, "<rect fill=\"#3b6fb6\" x=\"%.0f\" y=\"%.0f\" width=\"22\" height=\"12\"/>", x,
            y - 10);
    fprintf(out, "<text x=\"%.0f\" y=\"%.0f\">lock held</text>\n", x + 26, y);
    x += 90;
    fprintf(out,
            "<rect fill=\"#e2e2e2\" stroke=\"#777\" stroke-dasharray=\"3 2\" x=\"%.0f\" "
            "y=\"%.0f\" width=\"22\" height=\"10\"/>",
            x, y - 9);
    fprintf(out, "<text x=\"%.0f\" y=\"%.0f\">tail read to write, no lock</text>\n", x + 26, y);
    x += 190;
    fprintf(out, "<path fill=\"#2ca02c\" d=\"M%.0f,%.0f l10,0 l-5,8 z\"/>", x, y - 9);
    fprintf(out, "<text x=\"%.0f\" y=\"%.0f\">tail read (end of list)</text>\n", x + 14, y);
    x += 160;
    fprintf(out, "<rect fill=\"#222\" x=\"%.0f\" y=\"%.0f\" width=\"3\" height=\"14\"/>", x,
            y - 11);
    fprintf(out, "<text x=\"%.0f\" y=\"%.0f\">write (task's titulo above)</text>\n", x + 8, y);
    x += 190;
    fprintf(out, "<circle fill=\"#2ca02c\" cx=\"%.0f\" cy=\"%.0f\" r=\"3.5\"/>", x + 4, y - 4);
    fprintf(out, "<circle fill=\"#d62728\" cx=\"%.0f\" cy=\"%.0f\" r=\"3.5\"/>", x + 13, y - 4);
    fprintf(out, "<text x=\"%.0f\" y=\"%.0f\">response 2xx / 5xx</text>\n", x + 22, y);
    x += 150;
    fprintf(out,
            "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"7\" fill=\"none\" stroke=\"#d62728\" "
            "stroke-width=\"2.5\"/><path d=\"M%.0f,%.0f l26,0\" stroke=\"#d62728\" "
            "stroke-width=\"1.8\" marker-end=\"url(#arrow)\"/>",
            x + 7, y - 4, x + 14, y - 4);
    fprintf(out,
            "<text x=\"%.0f\" y=\"%.0f\">lost task, arrow to the write that overwrote it"
            "</text>\n",
            x + 46, y);
    x += 330;
    fprintf(out,
            "<path d=\"M%.0f,%.0f l26,0\" stroke=\"#ff7f0e\" stroke-width=\"1.6\" "
            "stroke-dasharray=\"4 3\"/>",
            x, y - 4);
    fprintf(out, "<text x=\"%.0f\" y=\"%.0f\">the two tail reads that saw the same end</text>\n",
            x + 32, y);
    fputs("</g>\n", out);
}

/* The document's start: size, style, arrow head, title, summary, warnings, legend. */
static void tl_header(struct tl *tl)
{
    const struct trace_set *set = tl->set;
    const struct trace_analysis *an = tl->an;
    FILE *out = tl->out;
    char a[32], b[32];

    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"%.0f\" "
            "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\">\n",
            tl->width, tl->height, tl->width, tl->height);
    fprintf(out, "<style>%s</style>\n", tl_style);
    fputs("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
          "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" "
          "fill=\"#d62728\"/></marker></defs>\n",
          out);
    fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#fff\"/>\n",
            tl->width, tl->height);
    fprintf(out,
            "<text class=\"title\" x=\"12\" y=\"26\">taskserver race timeline: locking %s</text>\n",
            set->locking == 1   ? "ON"
            : set->locking == 0 ? "OFF"
                                : "MIXED (files disagree)");
    fprintf(out,
            "<text class=\"summary\" x=\"12\" y=\"48\">%zu worker%s, %zu writes, %zu task%s "
            "lost, ",
            set->num_workers, set->num_workers == 1 ? "" : "s", an->num_writes, an->num_lost,
            an->num_lost == 1 ? "" : "s");
    if (an->all.holds > 0 || set->locking == 1)
        fprintf(out, "%zu overlapping holds, lock wait p50 %s, p99 %s", an->num_overlapping_holds,
                tl_ns(an->all.wait_p50_ns, a, sizeof(a)), tl_ns(an->all.wait_p99_ns, b, sizeof(b)));
    else
        fprintf(out,
                "overlapping holds: none (no locks in this build), %zu overlapping "
                "read-to-write sections",
                an->num_overlapping_sections);
    fputs("</text>\n", out);
    tl_warnings(tl);
    tl_legend(out);
}

/* Nice tick step: 1, 2 or 5 times a power of ten ns, at least 90 px apart. */
static int64_t tl_tick_step(double scale)
{
    int64_t step = 1000;
    for (;;) {
        for (int m = 0; m < 3; m++) {
            int64_t s = step * (m == 0 ? 1 : m == 1 ? 2 : 5);
            if ((double)s * scale >= 90)
                return s;
        }
        if (step > INT64_MAX / 100)
            return step;
        step *= 10;
    }
}

static void tl_axis(struct tl *tl)
{
    FILE *out = tl->out;
    double y_top = TL_TOP - 6, y_bottom = tl->height - 34;
    int64_t step = tl_tick_step(tl->scale);
    char buf[32];

    fputs("<g class=\"axis\">\n", out);
    for (size_t i = 0; i < tl->num_segs; i++) {
        const struct tl_seg *s = &tl->segs[i];
        int64_t rel0 = s->t0 - tl->origin;
        int64_t first = (rel0 + step - 1) / step * step;
        for (int64_t rel = first; rel + tl->origin <= s->t1; rel += step) {
            double x = tl_x(tl, rel + tl->origin);
            fprintf(out, "<line class=\"grid\" x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\"/>",
                    x, y_top, x, y_bottom);
            fprintf(out, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", x,
                    y_top - 4, rel == 0 ? "0" : tl_ns(rel, buf, sizeof(buf)));
        }
        if (i + 1 < tl->num_segs) {
            double xe = tl_seg_end(tl, i), xn = tl->segs[i + 1].x0;
            fprintf(out,
                    "<rect class=\"break\" x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\"/>",
                    xe + 6, y_top, xn - xe - 12, y_bottom - y_top);
            fprintf(out,
                    "<text class=\"break-label\" x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">"
                    "%s</text>\n",
                    (xe + xn) / 2, y_bottom + 12,
                    tl_ns(tl->segs[i + 1].t0 - s->t1, buf, sizeof(buf)));
        }
    }
    fprintf(out,
            "<text x=\"%.0f\" y=\"%.0f\">time since the first store event (idle stretches cut "
            "out: dashed boxes, their length below); hover a mark for details</text>\n",
            TL_LEFT, tl->height - 10);
    fputs("</g>\n", out);
}

static void tl_lane_label(struct tl *tl, size_t w, double y)
{
    const struct trace_worker *tw = &tl->set->workers[w];
    const struct trace_stats *st = &tl->an->workers[w];
    FILE *out = tl->out;
    char a[32], b[32];
    fprintf(out, "<text class=\"lane-name\" x=\"10\" y=\"%.0f\">worker %u</text>\n", y + 24,
            tw->index);
    fprintf(out, "<text x=\"10\" y=\"%.0f\">pid %ld</text>\n", y + 42, tw->pid);
    fprintf(out, "<text x=\"10\" y=\"%.0f\">%zu writes, %zu lost</text>\n", y + 60, st->writes,
            st->lost);
    if (st->holds > 0 || st->timeouts > 0) {
        fprintf(out, "<text x=\"10\" y=\"%.0f\">wait p50 %s, p99 %s</text>\n", y + 78,
                tl_ns(st->wait_p50_ns, a, sizeof(a)), tl_ns(st->wait_p99_ns, b, sizeof(b)));
        fprintf(out, "<text x=\"10\" y=\"%.0f\">waited %s, held %s</text>\n", y + 96,
                tl_ns(st->wait_total_ns, a, sizeof(a)), tl_ns(st->hold_total_ns, b, sizeof(b)));
        if (st->timeouts > 0)
            fprintf(out, "<text class=\"warning\" x=\"10\" y=\"%.0f\">%zu lock timeouts</text>\n",
                    y + 114, st->timeouts);
    } else if (tw->capped) {
        fprintf(out, "<text class=\"warning\" x=\"10\" y=\"%.0f\">trace capped</text>\n", y + 78);
    }
}

/* One hold: its wait (pale) and, if granted, the hold itself (a bar, red when it overlaps). */
static void tl_hold(struct tl *tl, const struct trace_hold *h, double yb)
{
    const struct trace_analysis *an = tl->an;
    FILE *out = tl->out;
    char a[32], b[32];

    /* Outside the span drawn: a list or a count before or after the load. */
    int64_t last = h->t_end >= 0 ? h->t_end : h->t_inner_end;
    if (h->t_wait > an->t_last || (last >= 0 && last < an->t_first))
        return;
    int64_t wait_end = h->t_grant >= 0 ? h->t_grant : h->t_end;
    if (h->t_wait >= 0 && wait_end >= 0) {
        double x0 = tl_x(tl, h->t_wait), x1 = tl_x(tl, wait_end);
        fprintf(out,
                "<rect class=\"wait\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"8\">"
                "<title>waited %s for the %s lock%s, from %s</title></rect>\n",
                x0, yb + 8, x1 - x0 > 0.5 ? x1 - x0 : 0.5, tl_ns(wait_end - h->t_wait, a, 32),
                h->lock == 'w' ? "write" : "read",
                h->timed_out ? " and gave up (timeout: 503)" : "",
                tl_ns(h->t_wait - tl->origin, b, 32));
    }
    if (h->t_grant >= 0) {
        int64_t end = h->t_end >= 0 ? h->t_end : h->t_inner_end;
        double x0 = tl_x(tl, h->t_grant), x1 = tl_x(tl, end);
        fprintf(out,
                "<rect class=\"hold%s\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%.0f\">"
                "<title>%s lock held %s from %s%s</title></rect>\n",
                h->overlaps ? " overlap" : "", x0, h->lock == 'w' ? yb : yb + 4,
                x1 - x0 > 1 ? x1 - x0 : 1, h->lock == 'w' ? TL_BAR_H : TL_BAR_H - 8,
                h->lock == 'w' ? "write" : "read (a list or a count)",
                tl_ns(end - h->t_grant, a, 32), tl_ns(h->t_grant - tl->origin, b, 32),
                h->overlaps ? ": OVERLAPS another worker's hold" : "");
    }
}

/* An append's write: a tick labelled with the task's titulo, red when overwritten. */
static void tl_write(struct tl *tl, const struct trace_append *ap, const struct trace_event *wr,
                     double yb)
{
    FILE *out = tl->out;
    char a[32];
    double x = tl_x(tl, wr->t_ns);

    fprintf(out, "<g class=\"write%s\"><title>write at %s: \"", ap->lost ? " overwritten" : "",
            tl_ns(wr->t_ns - tl->origin, a, 32));
    tl_text(out, wr->titulo, 200);
    fprintf(out, "\"%s", wr->cliente[0] ? " from " : "");
    tl_text(out, wr->cliente, 200);
    fprintf(out, " as id %llu, bytes %lld to %lld%s</title>", (unsigned long long)wr->id,
            (long long)wr->offset, (long long)(wr->offset + wr->length),
            ap->lost ? ": OVERWRITTEN (lost)" : "");
    fprintf(out,
            "<rect x=\"%.2f\" y=\"%.1f\" width=\"3\" height=\"%.0f\"/>"
            "<text transform=\"translate(%.2f,%.1f) rotate(-90)\">",
            x - 1.5, yb - 6, TL_BAR_H + 12, x + 3.5, yb - 10);
    tl_text(out, wr->titulo, TL_LABEL_MAX);
    fputs("</text></g>\n", out);
}

/* One append: its unprotected section (no lock), its tail read, its response, its write. */
static void tl_append(struct tl *tl, const struct trace_append *ap, double yb)
{
    const struct trace_set *set = tl->set;
    FILE *out = tl->out;
    char a[32];
    const struct trace_event *r = ap->read_ev != TRACE_NONE ? &set->events[ap->read_ev] : NULL;
    const struct trace_event *wr = ap->write_ev != TRACE_NONE ? &set->events[ap->write_ev] : NULL;

    if (r != NULL && wr != NULL && ap->hold == TRACE_NONE) {
        double x0 = tl_x(tl, r->t_ns), x1 = tl_x(tl, wr->t_ns);
        fprintf(out,
                "<rect class=\"section%s\" x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"16\">"
                "<title>no lock: %s from reading the end of the list to writing%s</title>"
                "</rect>\n",
                ap->section_overlaps ? " race" : "", x0, yb + 4, x1 - x0 > 2 ? x1 - x0 - 1 : 1,
                tl_ns(wr->t_ns - r->t_ns, a, 32),
                ap->section_overlaps ? "; another worker did the same meanwhile" : "");
    }
    if (r != NULL)
        fprintf(out,
                "<path class=\"read\" d=\"M%.2f,%.1f l-5,-8 l10,0 z\"><title>tail read at %s: "
                "the list ends at byte %lld, last id %llu</title></path>\n",
                tl_x(tl, r->t_ns), yb - 1, tl_ns(r->t_ns - tl->origin, a, 32), (long long)r->offset,
                (unsigned long long)r->id);
    if (ap->response_ev != TRACE_NONE) {
        const struct trace_event *rs = &set->events[ap->response_ev];
        fprintf(out,
                "<circle class=\"response%s\" cx=\"%.2f\" cy=\"%.1f\" r=\"3.5\">"
                "<title>response %d at %s</title></circle>\n",
                rs->status >= 500   ? " error"
                : rs->status >= 300 ? " other"
                                    : "",
                tl_x(tl, rs->t_ns), yb + TL_BAR_H + 14, rs->status,
                tl_ns(rs->t_ns - tl->origin, a, 32));
    }
    if (wr != NULL)
        tl_write(tl, ap, wr, yb);
}

/* One worker's lane: background, label, its holds, then its appends on top. */
static void tl_lane(struct tl *tl, size_t w)
{
    const struct trace_set *set = tl->set;
    const struct trace_analysis *an = tl->an;
    FILE *out = tl->out;
    double y = tl_lane_y(w), yb = y + TL_BAR_Y;

    fprintf(out, "<g class=\"lane\" id=\"lane-%zu\" data-pid=\"%ld\" data-worker=\"%u\">\n", w,
            set->workers[w].pid, set->workers[w].index);
    fprintf(out, "<rect class=\"%s\" x=\"0\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\"/>\n",
            w % 2 ? "lane-alt" : "lane-bg", y, tl->width, TL_LANE_H - 4);
    tl_lane_label(tl, w, y);
    for (size_t i = 0; i < an->num_holds; i++)
        if (an->holds[i].worker == w)
            tl_hold(tl, &an->holds[i], yb);
    for (size_t i = 0; i < an->num_appends; i++)
        if (an->appends[i].worker == w)
            tl_append(tl, &an->appends[i], yb);
    fputs("</g>\n", out);
}

/* A lost task and what it met: the events its picture joins. */
struct tl_loss {
    const struct trace_event *w;  /* its write */
    const struct trace_event *r;  /* its tail read, or NULL */
    const struct trace_event *bw; /* the write that overwrote it, or NULL */
    const struct trace_event *br; /* that write's tail read, or NULL */
    const struct trace_event *cr; /* not overwritten: the tail read that found it cut off */
};

static struct tl_loss tl_loss_of(const struct tl *tl, const struct trace_append *ap)
{
    const struct trace_set *set = tl->set;
    const struct trace_analysis *an = tl->an;
    const struct trace_append *by =
        ap->overwritten_by != TRACE_NONE ? &an->appends[ap->overwritten_by] : NULL;
    const struct trace_append *cut =
        by == NULL && ap->cut_by != TRACE_NONE ? &an->appends[ap->cut_by] : NULL;
    struct tl_loss l = {
        .w = &set->events[ap->write_ev],
        .r = ap->read_ev != TRACE_NONE ? &set->events[ap->read_ev] : NULL,
        .bw = by != NULL ? &set->events[by->write_ev] : NULL,
        .br = by != NULL && by->read_ev != TRACE_NONE ? &set->events[by->read_ev] : NULL,
        .cr = cut != NULL && cut->read_ev != TRACE_NONE ? &set->events[cut->read_ev] : NULL,
    };
    return l;
}

/* The group's <title>: the task, who wrote it where, what destroyed it. */
static void tl_lost_title(struct tl *tl, const struct tl_loss *l)
{
    const struct trace_set *set = tl->set;
    FILE *out = tl->out;

    tl_text(out, l->w->titulo, 200);
    fputs("\"", out);
    if (l->w->cliente[0]) {
        fputs(" from ", out);
        tl_text(out, l->w->cliente, 200);
    }
    fprintf(out, " (id %llu), written by worker %u at byte %lld", (unsigned long long)l->w->id,
            set->workers[l->w->worker].index, (long long)l->w->offset);
    if (l->bw != NULL) {
        fputs(", overwritten by \"", out);
        tl_text(out, l->bw->titulo, 200);
        fprintf(out, "\" (id %llu) of worker %u at byte %lld", (unsigned long long)l->bw->id,
                set->workers[l->bw->worker].index, (long long)l->bw->offset);
    }
    if (l->cr != NULL)
        fprintf(out,
                ", cut off: worker %u then found the end of the list at byte %lld "
                "(the file had been truncated by a repair of what looked like a torn write)",
                set->workers[l->cr->worker].index, (long long)l->cr->offset);
    if (l->r != NULL && l->br != NULL) {
        if (l->r->offset == l->br->offset)
            fprintf(out, "; both read the end of the list at byte %lld", (long long)l->r->offset);
        else
            fprintf(out, "; they read the end of the list at bytes %lld and %lld",
                    (long long)l->r->offset, (long long)l->br->offset);
    }
    fputs("</title>\n", out);
}

/* The marks: a ring on the write, an arrow to its overwriter (or, dotted, to the tail read
 * that found it cut off), a dashed line between the two tail reads. */
static void tl_lost_marks(struct tl *tl, const struct tl_loss *l)
{
    FILE *out = tl->out;
    double xa = tl_x(tl, l->w->t_ns), ya = tl_lane_y(l->w->worker) + TL_BAR_Y + TL_BAR_H / 2;

    fprintf(out, "<circle cx=\"%.2f\" cy=\"%.1f\" r=\"8\"/>\n", xa, ya);
    if (l->bw != NULL) {
        double xb = tl_x(tl, l->bw->t_ns), yb = tl_lane_y(l->bw->worker) + TL_BAR_Y + TL_BAR_H / 2;
        if (l->bw->worker == l->w->worker)
            fprintf(out,
                    "<path class=\"overwrite\" d=\"M%.2f,%.1f Q%.2f,%.1f %.2f,%.1f\" "
                    "marker-end=\"url(#arrow)\"/>\n",
                    xa, ya + 10, (xa + xb) / 2, ya + 50, xb, yb + 6);
        else
            fprintf(out,
                    "<path class=\"overwrite\" d=\"M%.2f,%.1f C%.2f,%.1f %.2f,%.1f %.2f,%.1f\" "
                    "marker-end=\"url(#arrow)\"/>\n",
                    xa, ya + (yb > ya ? 10 : -10), xa, (ya + yb) / 2, xb, (ya + yb) / 2, xb,
                    yb + (yb > ya ? -6 : 6));
    }
    if (l->cr != NULL) {
        double xb = tl_x(tl, l->cr->t_ns), yb = tl_lane_y(l->cr->worker) + TL_BAR_Y - 5;
        fprintf(out,
                "<path class=\"overwrite\" d=\"M%.2f,%.1f Q%.2f,%.1f %.2f,%.1f\" "
                "stroke-dasharray=\"2 2\" marker-end=\"url(#arrow)\"/>\n",
                xa, ya - 10, (xa + xb) / 2, (ya < yb ? ya : yb) - 40, xb, yb - 4);
    }
    if (l->r != NULL && l->br != NULL) {
        double x1 = tl_x(tl, l->r->t_ns), y1 = tl_lane_y(l->r->worker) + TL_BAR_Y - 5;
        double x2 = tl_x(tl, l->br->t_ns), y2 = tl_lane_y(l->br->worker) + TL_BAR_Y - 5;
        if (l->r->worker == l->br->worker)
            fprintf(out, "<path class=\"same-end\" d=\"M%.2f,%.1f Q%.2f,%.1f %.2f,%.1f\"/>\n", x1,
                    y1, (x1 + x2) / 2, y1 - 30, x2, y2);
        else
            fprintf(out, "<path class=\"same-end\" d=\"M%.2f,%.1f L%.2f,%.1f\"/>\n", x1, y1, x2,
                    y2);
    }
}

/* One group per lost task: its title, then its marks. */
static void tl_lost(struct tl *tl)
{
    const struct trace_analysis *an = tl->an;
    FILE *out = tl->out;
    size_t n = 0;

    fputs("<g class=\"losses\">\n", out);
    for (size_t i = 0; i < an->num_appends; i++) {
        const struct trace_append *ap = &an->appends[i];
        if (!ap->lost || ap->write_ev == TRACE_NONE)
            continue;
        struct tl_loss l = tl_loss_of(tl, ap);
        fprintf(out, "<g class=\"lost\" id=\"lost-%zu\"><title>lost task \"", ++n);
        tl_lost_title(tl, &l);
        tl_lost_marks(tl, &l);
        fputs("</g>\n", out);
    }
    fputs("</g>\n", out);
}

static int tl_draw(FILE *out, const struct trace_set *set, const struct trace_analysis *an)
{
    struct tl tl = {.out = out, .set = set, .an = an};
    if (tl_layout(&tl) < 0) {
        free(tl.segs);
        errno = ENOMEM;
        return -1;
    }
    tl_header(&tl);
    for (size_t w = 0; w < set->num_workers; w++)
        tl_lane(&tl, w);
    tl_axis(&tl);
    tl_lost(&tl);
    fputs("</svg>\n", out);
    free(tl.segs);
    return 0;
}

int timeline_svg_write(FILE *out, const struct trace_set *set, const struct trace_analysis *an)
{
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
    if (tl_draw(out, set, an) < 0)
        return -1;
    return ferror(out) ? -1 : 0;
}

/* A swatch for the HTML legend. */
static void tl_swatch(FILE *out, const char *shape, const char *text)
{
    fprintf(out, "<li><svg width=\"34\" height=\"18\" viewBox=\"0 0 34 18\">%s</svg> %s</li>\n",
            shape, text);
}

/* The page up to the picture: title, style, the summary line. */
static void tl_html_head(FILE *out, const struct trace_set *set, const struct trace_analysis *an)
{
    const char *locking = set->locking == 1 ? "ON" : set->locking == 0 ? "OFF" : "MIXED";
    fprintf(out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>taskserver race timeline: locking %s</title>\n"
            "<style>body{font-family:'DejaVu Sans',Arial,sans-serif;margin:1em 2em;color:#222}"
            ".scroll{overflow-x:auto;border:1px solid #ccc}ul.legend{list-style:none;padding:0;"
            "columns:2}ul.legend li{margin:.2em 0}ul.legend svg{vertical-align:middle}"
            "table{border-collapse:collapse;margin:1em 0}th,td{padding:.2em .7em;"
            "border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child"
            "{text-align:left}</style>\n</head>\n<body>\n",
            locking);
    fprintf(out, "<h1>taskserver race timeline: locking %s</h1>\n", locking);
    fprintf(out, "<p>%zu workers, %zu writes, <strong>%zu tasks lost</strong>, ", set->num_workers,
            an->num_writes, an->num_lost);
    if (an->all.holds > 0 || set->locking == 1)
        fprintf(out, "<strong>%zu overlapping holds</strong>.</p>\n", an->num_overlapping_holds);
    else
        fprintf(out,
                "overlapping holds: none (no locks in this build); %zu overlapping "
                "read-to-write sections.</p>\n",
                an->num_overlapping_sections);
}

/* How to read the picture: one swatch per kind of mark. */
static void tl_html_legend(FILE *out)
{
    fputs("<p>One lane per worker process; time runs to the right. Hover a mark for its "
          "details; zoom with the browser (Ctrl and + or -) and scroll sideways.</p>\n"
          "<ul class=\"legend\">\n",
          out);
    tl_swatch(out, "<rect fill=\"#f5c58c\" x=\"2\" y=\"5\" width=\"30\" height=\"8\"/>",
              "<b>lock wait</b>: the worker asked for the file lock and waits for it");
    tl_swatch(out, "<rect fill=\"#3b6fb6\" x=\"2\" y=\"2\" width=\"30\" height=\"14\"/>",
              "<b>lock held</b>: it read the end of the list and wrote its task; with working "
              "locks no two holds overlap (an overlap would be drawn red)");
    tl_swatch(out,
              "<rect fill=\"#e2e2e2\" stroke=\"#777\" stroke-dasharray=\"3 2\" x=\"2\" y=\"4\" "
              "width=\"30\" height=\"10\"/>",
              "<b>tail read to write without a lock</b> (unlocked build): red when another "
              "worker was in the same stretch");
    tl_swatch(out, "<path fill=\"#2ca02c\" d=\"M12,4 l10,0 l-5,9 z\"/>",
              "<b>tail read</b>: where the worker found the end of the list (byte offset)");
    tl_swatch(out, "<rect fill=\"#222\" x=\"15\" y=\"1\" width=\"3\" height=\"16\"/>",
              "<b>write</b> of one task at that offset, labelled with its titulo (red when "
              "overwritten)");
    tl_swatch(out,
              "<circle fill=\"#2ca02c\" cx=\"10\" cy=\"9\" r=\"4\"/><circle fill=\"#d62728\" "
              "cx=\"24\" cy=\"9\" r=\"4\"/>",
              "<b>response</b> to the client: green 2xx (201: the client believes it is "
              "stored), red 5xx");
    tl_swatch(out,
              "<circle cx=\"8\" cy=\"9\" r=\"6\" fill=\"none\" stroke=\"#d62728\" "
              "stroke-width=\"2.5\"/><path d=\"M14,9 l16,0\" stroke=\"#d62728\" "
              "stroke-width=\"1.8\"/>",
              "<b>lost task</b>: its bytes were overwritten; the arrow points to the write "
              "that overwrote it");
    tl_swatch(out,
              "<path d=\"M2,9 l30,0\" stroke=\"#ff7f0e\" stroke-width=\"1.6\" "
              "stroke-dasharray=\"4 3\"/>",
              "the two <b>tail reads that saw the same end</b> of the list: the cause");
    fputs("</ul>\n", out);
}

/* The figures per worker and in all, as the text report has them. */
static void tl_html_table(FILE *out, const struct trace_set *set, const struct trace_analysis *an)
{
    char a[32], b[32], c[32], d[32];
    fputs("<table>\n<tr><th>worker</th><th>pid</th><th>holds</th><th>timeouts</th>"
          "<th>wait total</th><th>hold total</th><th>wait p50</th><th>wait p99</th>"
          "<th>writes</th><th>lost</th></tr>\n",
          out);
    for (size_t w = 0; w <= set->num_workers; w++) {
        const struct trace_stats *st = w < set->num_workers ? &an->workers[w] : &an->all;
        if (w < set->num_workers)
            fprintf(out, "<tr><td>%u</td><td>%ld</td>", set->workers[w].index, set->workers[w].pid);
        else
            fputs("<tr><td><b>all</b></td><td></td>", out);
        fprintf(out,
                "<td>%zu</td><td>%zu</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                "<td>%zu</td><td>%zu</td></tr>\n",
                st->holds, st->timeouts, tl_ns(st->wait_total_ns, a, 32),
                tl_ns(st->hold_total_ns, b, 32), tl_ns(st->wait_p50_ns, c, 32),
                tl_ns(st->wait_p99_ns, d, 32), st->writes, st->lost);
    }
    fputs("</table>\n", out);
}

int timeline_html_write(FILE *out, const struct trace_set *set, const struct trace_analysis *an)
{
    tl_html_head(out, set, an);
    tl_html_legend(out);
    fputs("<div class=\"scroll\">\n", out);
    if (tl_draw(out, set, an) < 0)
        return -1;
    fputs("</div>\n", out);
    tl_html_table(out, set, an);
    fputs("</body>\n</html>\n", out);
    return ferror(out) ? -1 : 0;
}
