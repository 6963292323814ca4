/* timeline_text.c - a trace's figures as text: per worker lock waits and holds, lost tasks. */
#include "timeline_text.h"

/* A titulo or cliente on one line: control bytes as '?'. */
static void timeline_text_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++)
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
    fputc('"', out);
}

static void timeline_text_row(FILE *out, const char *name, const char *pid,
                              const struct trace_stats *st)
{
    char a[32], b[32], c[32], d[32], e[32];
    fprintf(out, "%-6s %8s %6zu %8zu %11s %11s %10s %10s %10s %7zu %5zu\n", name, pid, st->holds,
            st->timeouts, trace_format_ns(st->wait_total_ns, a, sizeof(a)),
            trace_format_ns(st->hold_total_ns, b, sizeof(b)),
            trace_format_ns(st->wait_p50_ns, c, sizeof(c)),
            trace_format_ns(st->wait_p99_ns, d, sizeof(d)),
            trace_format_ns(st->wait_max_ns, e, sizeof(e)), st->writes, st->lost);
}

int timeline_text_write(FILE *out, const struct trace_set *set, const struct trace_analysis *an)
{
    const char *locking = set->locking == 1 ? "on" : set->locking == 0 ? "off" : "mixed";
    char span[32];
    fprintf(out, "trace: %zu workers, locking %s, %zu events over %s\n", set->num_workers, locking,
            set->num_events, trace_format_ns(an->t_last - an->t_first, span, sizeof(span)));
    fprintf(out, "%-6s %8s %6s %8s %11s %11s %10s %10s %10s %7s %5s\n", "worker", "pid", "holds",
            "timeouts", "wait total", "hold total", "wait p50", "wait p99", "wait max", "writes",
            "lost");
    for (size_t w = 0; w < set->num_workers; w++) {
        char name[16], pid[24];
        snprintf(name, sizeof(name), "%u", set->workers[w].index);
        snprintf(pid, sizeof(pid), "%ld", set->workers[w].pid);
        timeline_text_row(out, name, pid, &an->workers[w]);
    }
    timeline_text_row(out, "all", "", &an->all);
    for (size_t w = 0; w < set->num_workers; w++) {
        const struct trace_worker *tw = &set->workers[w];
        if (tw->capped)
            fprintf(out, "note: worker %u (pid %ld): trace stopped at its event cap\n", tw->index,
                    tw->pid);
        if (tw->num_torn_lines > 0)
            fprintf(out, "note: worker %u (pid %ld): a torn last line was skipped\n", tw->index,
                    tw->pid);
        if (!tw->ended)
            fprintf(out, "note: worker %u (pid %ld): no end line (still running, or killed)\n",
                    tw->index, tw->pid);
    }
    for (size_t i = 0; i < an->num_appends; i++) {
        const struct trace_append *ap = &an->appends[i];
        if (!ap->lost)
            continue;
        const struct trace_event *w = &set->events[ap->write_ev];
        fputs("lost: ", out);
        timeline_text_str(out, w->titulo);
        fputs(" from ", out);
        timeline_text_str(out, w->cliente);
        fprintf(out, " (id %llu) written by worker %u at byte %lld", (unsigned long long)w->id,
                set->workers[w->worker].index, (long long)w->offset);
        if (ap->overwritten_by != TRACE_NONE) {
            const struct trace_append *by = &an->appends[ap->overwritten_by];
            const struct trace_event *bw = &set->events[by->write_ev];
            fputs(", overwritten by ", out);
            timeline_text_str(out, bw->titulo);
            fprintf(out, " (id %llu) of worker %u at byte %lld", (unsigned long long)bw->id,
                    set->workers[bw->worker].index, (long long)bw->offset);
            if (ap->read_ev != TRACE_NONE && by->read_ev != TRACE_NONE) {
                const struct trace_event *r = &set->events[ap->read_ev];
                const struct trace_event *br = &set->events[by->read_ev];
                if (r->offset == br->offset)
                    fprintf(out, "; both read the end at byte %lld", (long long)r->offset);
                else
                    fprintf(out, "; they read the end at bytes %lld and %lld", (long long)r->offset,
                            (long long)br->offset);
            }
        }
        if (ap->overwritten_by == TRACE_NONE && ap->cut_by != TRACE_NONE &&
            an->appends[ap->cut_by].read_ev != TRACE_NONE) {
            const struct trace_event *cr = &set->events[an->appends[ap->cut_by].read_ev];
            fprintf(out, ", cut off: worker %u then found the end at byte %lld (truncated)",
                    set->workers[cr->worker].index, (long long)cr->offset);
        }
        fputc('\n', out);
    }
    fprintf(out,
            "summary: workers=%zu writes=%zu lost=%zu overlapping_holds=%zu "
            "overlapping_sections=%zu locking=%s\n",
            set->num_workers, an->num_writes, an->num_lost, an->num_overlapping_holds,
            an->num_overlapping_sections, locking);
    return ferror(out) ? -1 : 0;
}
