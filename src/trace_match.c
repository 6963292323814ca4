/* trace_match.c - finds holds, appends and lost updates in a merged trace set (trace_match.h). */
#include "trace_match.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*
 * trace_analyze() runs in phases, each over what the one before built:
 *
 *   1. walk      each worker's events in its own line order -> an->holds, an->appends
 *   2. match     every write against the later writes and tail reads -> lost, cut off;
 *                an error answer turns a lost append into a refused one
 *   3. overlaps  holds of different workers, and unprotected sections, that intersect
 *   4. figures   per worker and in all: holds, waits (p50, p99, max), writes, lost
 *   5. span      the stretch of time worth drawing
 */

static int trace_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest value with at least p percent of the values at or below it. */
static int64_t trace_percentile(const int64_t *sorted, size_t n, unsigned p)
{
    if (n == 0)
        return 0;
    size_t rank = (n * p + 99) / 100;
    if (rank == 0)
        rank = 1;
    return sorted[rank - 1];
}

/* ---- 1. walk: holds and appends, one worker at a time ---- */

/* The state of the walk: the arrays being built, and where one worker's events stand. */
struct trace_walk {
    const struct trace_set *set;
    struct trace_analysis *an;
    size_t hold_cap;   /* of an->holds */
    size_t append_cap; /* of an->appends */
    size_t worker;
    size_t hold;       /* open: waiting or held */
    size_t append;     /* tail read, no write yet */
    size_t batch_read; /* the tail read of the current hold's batch */
    /* Appends waiting for their responses: the worker answers a batch in the order it wrote
     * it, so responses pair with them first in, first out. */
    size_t pend_lo;
    size_t pend_hi;
};

/* Growable arrays of holds and appends: the new one's index in *out. Returns 0 or -1. */
static int trace_new_hold(struct trace_walk *wk, char lock, size_t *out)
{
    struct trace_analysis *an = wk->an;
    if (an->num_holds == wk->hold_cap) {
        size_t c = wk->hold_cap ? wk->hold_cap * 2 : 256;
        struct trace_hold *h = realloc(an->holds, c * sizeof(*h));
        if (h == NULL)
            return -1;
        an->holds = h;
        wk->hold_cap = c;
    }
    struct trace_hold *h = &an->holds[an->num_holds];
    memset(h, 0, sizeof(*h));
    h->worker = wk->worker;
    h->lock = lock;
    h->t_wait = h->t_grant = h->t_end = h->t_inner_end = -1;
    *out = an->num_holds++;
    return 0;
}

static int trace_new_append(struct trace_walk *wk, size_t *out)
{
    struct trace_analysis *an = wk->an;
    if (an->num_appends == wk->append_cap) {
        size_t c = wk->append_cap ? wk->append_cap * 2 : 256;
        struct trace_append *a = realloc(an->appends, c * sizeof(*a));
        if (a == NULL)
            return -1;
        an->appends = a;
        wk->append_cap = c;
    }
    struct trace_append *a = &an->appends[an->num_appends];
    memset(a, 0, sizeof(*a));
    a->worker = wk->worker;
    a->read_ev = a->write_ev = a->response_ev = a->hold = a->overwritten_by = TRACE_NONE;
    a->cut_by = TRACE_NONE;
    *out = an->num_appends++;
    return 0;
}

/* The hold that is granted and not yet released, or NULL. */
static struct trace_hold *trace_held(struct trace_walk *wk)
{
    if (wk->hold == TRACE_NONE || wk->an->holds[wk->hold].t_grant < 0)
        return NULL;
    return &wk->an->holds[wk->hold];
}

static int trace_walk_wait(struct trace_walk *wk, const struct trace_event *ev)
{
    if (trace_new_hold(wk, ev->lock, &wk->hold) < 0)
        return -1;
    wk->an->holds[wk->hold].t_wait = ev->t_ns;
    return 0;
}

/* A grant or a timeout ends the wait. */
static int trace_walk_granted(struct trace_walk *wk, const struct trace_event *ev)
{
    struct trace_hold *holds = wk->an->holds;
    if (wk->hold == TRACE_NONE || holds[wk->hold].t_grant >= 0 ||
        holds[wk->hold].lock != ev->lock) {
        /* The wait line is missing (the trace began or was cut in between). */
        if (trace_new_hold(wk, ev->lock, &wk->hold) < 0)
            return -1;
        holds = wk->an->holds;
        holds[wk->hold].t_wait = ev->t_ns - ev->dur_ns;
    }
    if (ev->kind == TRACE_LOCK_GRANTED) {
        holds[wk->hold].t_grant = ev->t_ns;
        holds[wk->hold].t_inner_end = ev->t_ns;
    } else {
        holds[wk->hold].timed_out = 1;
        holds[wk->hold].t_end = ev->t_ns;
        wk->hold = TRACE_NONE;
    }
    return 0;
}

static int trace_walk_unlock(struct trace_walk *wk, const struct trace_event *ev)
{
    if (trace_held(wk) == NULL) {
        if (trace_new_hold(wk, ev->lock, &wk->hold) < 0)
            return -1;
        struct trace_hold *h = &wk->an->holds[wk->hold];
        h->t_grant = ev->t_ns - ev->dur_ns;
        h->t_wait = h->t_grant;
        h->t_inner_end = h->t_grant;
    }
    wk->an->holds[wk->hold].t_end = ev->t_ns;
    wk->hold = TRACE_NONE;
    wk->batch_read = TRACE_NONE;
    if (wk->append != TRACE_NONE) { /* read, never wrote: the append failed */
        wk->pend_hi = wk->append + 1;
        wk->append = TRACE_NONE;
    }
    return 0;
}

/* A tail read opens an append, a write closes it; the second and later writes of a batch
 * open their own and share the batch's tail read. */
static int trace_walk_read_write(struct trace_walk *wk, const struct trace_event *ev, size_t ei)
{
    struct trace_hold *held = trace_held(wk);
    if (held != NULL)
        held->t_inner_end = ev->t_ns;
    if (ev->kind == TRACE_TAIL_READ || wk->append == TRACE_NONE) {
        if (ev->kind == TRACE_TAIL_READ && wk->append != TRACE_NONE)
            wk->pend_hi = wk->append + 1; /* read again without a write: that one failed */
        if (trace_new_append(wk, &wk->append) < 0)
            return -1;
        if (held != NULL && held->lock == 'w')
            wk->an->appends[wk->append].hold = wk->hold;
    }
    struct trace_append *a = &wk->an->appends[wk->append];
    if (ev->kind == TRACE_TAIL_READ) {
        a->read_ev = ei;
        wk->batch_read = ei;
        return 0;
    }
    if (a->read_ev == TRACE_NONE)
        a->read_ev = wk->batch_read;
    a->write_ev = ei;
    wk->pend_hi = wk->append + 1;
    wk->append = TRACE_NONE;
    return 0;
}

static void trace_walk_response(struct trace_walk *wk, size_t ei)
{
    if (wk->pend_lo == wk->pend_hi && wk->append != TRACE_NONE) {
        wk->pend_hi = wk->append + 1; /* unlocked build: read, then an error answered */
        wk->append = TRACE_NONE;
        wk->batch_read = TRACE_NONE;
    }
    if (wk->pend_lo < wk->pend_hi)
        wk->an->appends[wk->pend_lo++].response_ev = ei;
}

/* Walks one worker's events evs[0..n) in its own order and builds its holds and appends. */
static int trace_walk_worker(struct trace_walk *wk, size_t worker, const size_t *evs, size_t n)
{
    wk->worker = worker;
    wk->hold = wk->append = wk->batch_read = TRACE_NONE;
    wk->pend_lo = wk->pend_hi = wk->an->num_appends;
    for (size_t k = 0; k < n; k++) {
        const struct trace_event *ev = &wk->set->events[evs[k]];
        int rc = 0;
        switch (ev->kind) {
        case TRACE_LOCK_WAIT:
            rc = trace_walk_wait(wk, ev);
            break;
        case TRACE_LOCK_GRANTED:
        case TRACE_LOCK_TIMEOUT:
            rc = trace_walk_granted(wk, ev);
            break;
        case TRACE_UNLOCK:
            rc = trace_walk_unlock(wk, ev);
            break;
        case TRACE_TAIL_READ:
        case TRACE_WRITE:
            rc = trace_walk_read_write(wk, ev, evs[k]);
            break;
        case TRACE_FSYNC:
        case TRACE_OUTSIDE:
            if (trace_held(wk) != NULL)
                trace_held(wk)->t_inner_end = ev->t_ns;
            break;
        case TRACE_RESPONSE:
            trace_walk_response(wk, evs[k]);
            break;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Sorts one worker's event indices by line (merged by time, they are nearly in line order
 * already: insertion sort). */
static void trace_sort_by_line(const struct trace_set *set, size_t *e, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        size_t k = e[i], j = i;
        while (j > 0 && set->events[e[j - 1]].line > set->events[k].line) {
            e[j] = e[j - 1];
            j--;
        }
        e[j] = k;
    }
}

/* Phase 1: every worker's events in its own line order (a counting sort by worker, then by
 * line), walked into holds and appends. Returns 0 or -1 (ENOMEM). */
static int trace_walk_all(const struct trace_set *set, struct trace_analysis *an)
{
    size_t nw = set->num_workers;
    size_t *by_worker = malloc((set->num_events ? set->num_events : 1) * sizeof(*by_worker));
    size_t *starts = calloc(nw + 1, sizeof(*starts));
    size_t *fill = calloc(nw ? nw : 1, sizeof(*fill));
    struct trace_walk wk = {.set = set, .an = an};
    int rc = -1;

    if (by_worker == NULL || starts == NULL || fill == NULL)
        goto out;
    for (size_t i = 0; i < set->num_events; i++)
        starts[set->events[i].worker + 1]++;
    for (size_t w = 0; w < nw; w++)
        starts[w + 1] += starts[w];
    for (size_t i = 0; i < set->num_events; i++) {
        size_t w = set->events[i].worker;
        by_worker[starts[w] + fill[w]++] = i;
    }
    for (size_t w = 0; w < nw; w++) {
        size_t n = starts[w + 1] - starts[w];
        trace_sort_by_line(set, by_worker + starts[w], n);
        if (trace_walk_worker(&wk, w, by_worker + starts[w], n) < 0)
            goto out;
    }
    rc = 0;
out:
    free(by_worker);
    free(starts);
    free(fill);
    return rc;
}

/* ---- 2. match: lost, cut off, refused ---- */

/* The live records: disjoint byte ranges still intact in the file, by offset. */
struct trace_live {
    int64_t start;
    int64_t end;
    int64_t t_written;
    size_t append;
};

/* An action is 2 * append + 0 for its tail read, + 1 for its write: the event it stands for. */
static size_t trace_act_event(const struct trace_analysis *an, size_t act)
{
    return act % 2 ? an->appends[act / 2].write_ev : an->appends[act / 2].read_ev;
}

/* Every tail read and write of the appends, in event order, which is time order: the events
 * are merged by time. Returns the array (*num entries) or NULL (ENOMEM). */
static size_t *trace_actions(const struct trace_analysis *an, size_t *num)
{
    size_t *acts = malloc((an->num_appends ? 2 * an->num_appends : 1) * sizeof(*acts));
    size_t n = 0;
    if (acts == NULL)
        return NULL;
    for (size_t i = 0; i < an->num_appends; i++) {
        if (an->appends[i].read_ev != TRACE_NONE)
            acts[n++] = 2 * i;
        if (an->appends[i].write_ev != TRACE_NONE)
            acts[n++] = 2 * i + 1;
    }
    /* Insertion sort on an array that is nearly sorted already (appends are grouped by
     * worker). */
    for (size_t i = 1; i < n; i++) {
        size_t k = acts[i], j = i;
        while (j > 0 && trace_act_event(an, acts[j - 1]) > trace_act_event(an, k)) {
            acts[j] = acts[j - 1];
            j--;
        }
        acts[j] = k;
    }
    *num = n;
    return acts;
}

/* The first live range that ends after offset (ends increase with starts). */
static size_t trace_live_after(const struct trace_live *live, size_t num_live, int64_t offset)
{
    size_t lo = 0, hi = num_live;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (live[mid].end <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Append ai's tail read saw the list end at ev->offset: the file was ev->offset + 3 bytes
 * long then. A record written well before (the margin covers the reader's own work between
 * looking at the size and reporting it) that reaches past that end was cut off by a
 * truncation (a torn-tail repair), which reports no write. */
static void trace_apply_read(struct trace_analysis *an, struct trace_live *live, size_t *num_live,
                             const struct trace_event *ev, size_t ai)
{
    size_t lo = trace_live_after(live, *num_live, ev->offset);
    size_t k = lo;
    for (size_t j = lo; j < *num_live; j++) {
        if (live[j].end > ev->offset && live[j].t_written < ev->t_ns - TRACE_CUT_MARGIN_NS) {
            struct trace_append *victim = &an->appends[live[j].append];
            victim->lost = 1;
            victim->cut_by = ai;
            continue;
        }
        live[k++] = live[j];
    }
    *num_live = k;
}

/* Append ai's write: every live record it covers is lost to it, and its own record (without
 * the ",\n" before and the "\n]\n" after) takes their place. */
static void trace_apply_write(struct trace_analysis *an, struct trace_live *live, size_t *num_live,
                              const struct trace_event *ev, size_t ai)
{
    int64_t b_end = ev->offset + ev->length;
    size_t first = trace_live_after(live, *num_live, ev->offset), last = first;
    while (last < *num_live && live[last].start < b_end) {
        struct trace_append *victim = &an->appends[live[last].append];
        victim->lost = 1;
        victim->overwritten_by = ai;
        last++;
    }
    int64_t head = ev->id > 1 ? 2 : 0;
    int64_t r_start = ev->offset + head, r_end = ev->offset + ev->length - 3;
    int add = r_end > r_start;
    size_t removed = last - first;
    if (add && removed == 0) {
        memmove(&live[first + 1], &live[first], (*num_live - first) * sizeof(*live));
        (*num_live)++;
    } else if (!add || removed > 1) {
        size_t keep = add ? 1 : 0;
        memmove(&live[first + keep], &live[last], (*num_live - last) * sizeof(*live));
        *num_live -= removed - keep;
    }
    if (add)
        live[first] = (struct trace_live){r_start, r_end, ev->t_ns, ai};
}

/* Marks every write whose record a later write covers, or that a tail read shows cut off
 * (see trace_match.h). Returns 0 or -1 (ENOMEM). */
static int trace_match_lost(const struct trace_set *set, struct trace_analysis *an)
{
    size_t num = 0;
    size_t *acts = trace_actions(an, &num);
    struct trace_live *live = malloc((an->num_appends ? 2 * an->num_appends : 1) * sizeof(*live));
    size_t num_live = 0;
    if (acts == NULL || live == NULL) {
        free(acts);
        free(live);
        return -1;
    }
    for (size_t i = 0; i < num; i++) {
        const struct trace_event *ev = &set->events[trace_act_event(an, acts[i])];
        if (acts[i] % 2 == 0)
            trace_apply_read(an, live, &num_live, ev, acts[i] / 2);
        else
            trace_apply_write(an, live, &num_live, ev, acts[i] / 2);
    }
    free(acts);
    free(live);
    return 0;
}

/* A lost task is one the server acknowledged: an overwritten write answered with an error
 * (the server read its record back and saw it overwritten, I7 in task_store_lock.c) was
 * refused, not lost. Such writes are counted apart. */
static void trace_keep_acknowledged(const struct trace_set *set, struct trace_analysis *an)
{
    for (size_t i = 0; i < an->num_appends; i++) {
        struct trace_append *a = &an->appends[i];
        if (!a->lost || a->response_ev == TRACE_NONE)
            continue;
        if (set->events[a->response_ev].status >= 300) {
            a->lost = 0;
            a->refused = 1;
        }
    }
}

/* ---- 3. overlaps ---- */

/* An interval [start, end] of one worker; two that intersect (strict comparisons) and
 * conflict are both marked. */
struct trace_span {
    int64_t start;
    int64_t end;
    size_t worker;
    int writes; /* a write lock (or an append): conflicts with anything */
    int *mark;
};

static int trace_cmp_spans(const void *a, const void *b)
{
    const struct trace_span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

/* Counts the intersecting pairs of different workers that conflict among s[0..n); marks both
 * of each. */
static size_t trace_count_overlaps(struct trace_span *s, size_t n)
{
    size_t pairs = 0;
    qsort(s, n, sizeof(*s), trace_cmp_spans);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n && s[j].start < s[i].end; j++) {
            if (s[j].worker == s[i].worker || (!s[i].writes && !s[j].writes))
                continue;
            if (s[i].start < s[j].end && s[j].start < s[i].end) {
                pairs++;
                *s[i].mark = 1;
                *s[j].mark = 1;
            }
        }
    }
    return pairs;
}

/* Phase 3: holds judged on [grant, last event inside] (see trace_match.h), then the
 * unprotected sections from tail read to write. Returns 0 or -1 (ENOMEM). */
static int trace_find_overlaps(const struct trace_set *set, struct trace_analysis *an)
{
    size_t cap = an->num_holds > an->num_appends ? an->num_holds : an->num_appends;
    struct trace_span *spans = malloc((cap ? cap : 1) * sizeof(*spans));
    size_t ns = 0;
    if (spans == NULL)
        return -1;
    for (size_t i = 0; i < an->num_holds; i++) {
        struct trace_hold *h = &an->holds[i];
        if (h->t_grant < 0)
            continue;
        spans[ns++] = (struct trace_span){h->t_grant, h->t_inner_end, h->worker, h->lock == 'w',
                                          &h->overlaps};
    }
    an->num_overlapping_holds = trace_count_overlaps(spans, ns);
    ns = 0;
    for (size_t i = 0; i < an->num_appends; i++) {
        struct trace_append *a = &an->appends[i];
        if (a->read_ev == TRACE_NONE || a->write_ev == TRACE_NONE)
            continue;
        spans[ns++] =
            (struct trace_span){set->events[a->read_ev].t_ns, set->events[a->write_ev].t_ns,
                                a->worker, 1, &a->section_overlaps};
    }
    an->num_overlapping_sections = trace_count_overlaps(spans, ns);
    free(spans);
    return 0;
}

/* ---- 4. figures ---- */

static void trace_fill_stats(struct trace_stats *st, int64_t *waits, size_t num_waits)
{
    qsort(waits, num_waits, sizeof(*waits), trace_cmp_i64);
    st->wait_p50_ns = trace_percentile(waits, num_waits, 50);
    st->wait_p99_ns = trace_percentile(waits, num_waits, 99);
    st->wait_max_ns = num_waits ? waits[num_waits - 1] : 0;
}

/* How long the hold's wait lasted (to its grant or its timeout) into *wait. Returns 0, or -1
 * when the trace does not show both ends. */
static int trace_wait_ns(const struct trace_hold *h, int64_t *wait)
{
    int64_t wait_end = h->t_grant >= 0 ? h->t_grant : h->t_end;
    if (h->t_wait < 0 || wait_end < 0)
        return -1;
    *wait = wait_end - h->t_wait;
    return 0;
}

/* One worker's figures; waits is scratch room for every hold. */
static void trace_worker_figures(struct trace_analysis *an, size_t w, int64_t *waits)
{
    struct trace_stats *st = &an->workers[w];
    size_t nwaits = 0;
    for (size_t i = 0; i < an->num_holds; i++) {
        const struct trace_hold *h = &an->holds[i];
        if (h->worker != w)
            continue;
        if (h->t_grant >= 0) {
            st->holds++;
            st->write_holds += h->lock == 'w';
            if (h->t_end >= 0)
                st->hold_total_ns += h->t_end - h->t_grant;
        }
        st->timeouts += h->timed_out != 0;
        int64_t wait;
        if (trace_wait_ns(h, &wait) == 0) {
            st->wait_total_ns += wait;
            waits[nwaits++] = wait;
        }
    }
    trace_fill_stats(st, waits, nwaits);
    for (size_t i = 0; i < an->num_appends; i++) {
        const struct trace_append *a = &an->appends[i];
        if (a->worker != w)
            continue;
        st->writes += a->write_ev != TRACE_NONE;
        st->lost += a->lost != 0;
        st->reads_without_write += a->write_ev == TRACE_NONE && a->read_ev != TRACE_NONE;
    }
}

/* Phase 4: the figures per worker, then in all (the percentiles over every wait, not
 * combined from the workers'). Returns 0 or -1 (ENOMEM). */
static int trace_count_figures(const struct trace_set *set, struct trace_analysis *an)
{
    int64_t *waits = malloc((an->num_holds ? an->num_holds : 1) * sizeof(*waits));
    size_t num_all = 0;
    if (waits == NULL)
        return -1;
    for (size_t w = 0; w < set->num_workers; w++)
        trace_worker_figures(an, w, waits);
    for (size_t i = 0; i < set->num_events; i++) {
        const struct trace_event *ev = &set->events[i];
        if (ev->kind != TRACE_RESPONSE)
            continue;
        an->workers[ev->worker].responses++;
        an->workers[ev->worker].responses_error += ev->status >= 500;
    }
    for (size_t i = 0; i < an->num_holds; i++)
        if (trace_wait_ns(&an->holds[i], &waits[num_all]) == 0)
            num_all++;
    for (size_t w = 0; w < set->num_workers; w++) {
        const struct trace_stats *st = &an->workers[w];
        an->all.holds += st->holds;
        an->all.write_holds += st->write_holds;
        an->all.timeouts += st->timeouts;
        an->all.wait_total_ns += st->wait_total_ns;
        an->all.hold_total_ns += st->hold_total_ns;
        an->all.writes += st->writes;
        an->all.lost += st->lost;
        an->all.reads_without_write += st->reads_without_write;
        an->all.responses += st->responses;
        an->all.responses_error += st->responses_error;
    }
    trace_fill_stats(&an->all, waits, num_all);
    an->num_writes = an->all.writes;
    an->num_lost = an->all.lost;
    free(waits);
    return 0;
}

/* ---- 5. span ---- */

static void trace_widen(struct trace_analysis *an, int64_t t)
{
    if (an->t_first < 0 || t < an->t_first)
        an->t_first = t;
    if (t > an->t_last)
        an->t_last = t;
}

/* Phase 5: the time span worth drawing: the appends and their write locks (a list or a
 * health check before or after the load would only stretch it); without any, the store's
 * events; without those, everything. */
static void trace_drawn_span(const struct trace_set *set, struct trace_analysis *an)
{
    an->t_first = an->t_last = -1;
    for (size_t i = 0; i < an->num_appends; i++) {
        const struct trace_append *a = &an->appends[i];
        size_t evs[3] = {a->read_ev, a->write_ev, a->response_ev};
        for (int k = 0; k < 3; k++)
            if (evs[k] != TRACE_NONE)
                trace_widen(an, set->events[evs[k]].t_ns);
    }
    for (size_t i = 0; i < an->num_holds && an->t_first >= 0; i++) {
        const struct trace_hold *h = &an->holds[i];
        if (h->lock != 'w')
            continue;
        if (h->t_wait >= 0 && h->t_wait < an->t_first)
            an->t_first = h->t_wait;
        if (h->t_end > an->t_last)
            an->t_last = h->t_end;
    }
    for (int pass = 0; pass < 2 && an->t_first < 0; pass++) {
        for (size_t i = 0; i < set->num_events; i++) {
            /* The first pass: the store's events, that is all but the responses. */
            if (pass == 0 && set->events[i].kind == TRACE_RESPONSE)
                continue;
            trace_widen(an, set->events[i].t_ns);
        }
    }
    if (an->t_first < 0)
        an->t_first = an->t_last = 0;
}

int trace_analyze(const struct trace_set *set, struct trace_analysis *an)
{
    memset(an, 0, sizeof(*an));
    an->workers = calloc(set->num_workers ? set->num_workers : 1, sizeof(*an->workers));
    if (an->workers == NULL || trace_walk_all(set, an) < 0 || trace_match_lost(set, an) < 0)
        goto nomem;
    trace_keep_acknowledged(set, an);
    if (trace_find_overlaps(set, an) < 0 || trace_count_figures(set, an) < 0)
        goto nomem;
    trace_drawn_span(set, an);
    return 0;
nomem:
    trace_analysis_free(an);
    errno = ENOMEM;
    return -1;
}

void trace_analysis_free(struct trace_analysis *an)
{
    free(an->holds);
    free(an->appends);
    free(an->workers);
    memset(an, 0, sizeof(*an));
}
