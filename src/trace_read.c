/* trace_read.c - reads the workers' trace files and finds holds, appends and lost updates. */
#include "trace_read.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRACE_HEADER "# taskserver-trace "
#define TRACE_READ_MAX_BYTES (1024L * 1024 * 1024) /* a larger file is refused */

static void trace_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void trace_err(char *err, size_t err_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

void trace_set_init(struct trace_set *set)
{
    memset(set, 0, sizeof(*set));
    set->locking = -1;
}

void trace_set_free(struct trace_set *set)
{
    for (size_t i = 0; i < set->num_events; i++) {
        free(set->events[i].titulo);
        free(set->events[i].cliente);
        free(set->events[i].what);
    }
    for (size_t i = 0; i < set->num_workers; i++)
        free(set->workers[i].path);
    free(set->events);
    free(set->workers);
    trace_set_init(set);
}

/* ---- one line ---- */

/* A cursor over one line (no newline inside). */
struct trace_cursor {
    const char *p;
    const char *end;
};

static void trace_skip_spaces(struct trace_cursor *c)
{
    while (c->p < c->end && *c->p == ' ')
        c->p++;
}

/* A decimal integer, optionally negative. Returns 0 or -1. */
static int trace_parse_i64(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    uint64_t v = 0;
    if (len > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == len || len - i > 19)
        return -1;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return -1;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

/* The next word (up to a space or '='). */
static int trace_word(struct trace_cursor *c, const char **w, size_t *w_len)
{
    trace_skip_spaces(c);
    const char *s = c->p;
    while (c->p < c->end && *c->p != ' ' && *c->p != '=')
        c->p++;
    *w = s;
    *w_len = (size_t)(c->p - s);
    return *w_len > 0 ? 0 : -1;
}

static int trace_hexval(char h)
{
    if (h >= '0' && h <= '9')
        return h - '0';
    if (h >= 'a' && h <= 'f')
        return h - 'a' + 10;
    if (h >= 'A' && h <= 'F')
        return h - 'A' + 10;
    return -1;
}

/* A quoted string with \" \\ \xNN; returns a new string, or NULL (bad input sets *bad,
 * out of memory does not). */
static char *trace_quoted(struct trace_cursor *c, int *bad)
{
    if (c->p >= c->end || *c->p != '"') {
        *bad = 1;
        return NULL;
    }
    c->p++;
    char *out = malloc((size_t)(c->end - c->p) + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if (ch == '\\') {
            if (c->p >= c->end)
                break;
            char e = *c->p++;
            if (e == 'x') {
                int hi = c->end - c->p >= 2 ? trace_hexval(c->p[0]) : -1;
                int lo = hi >= 0 ? trace_hexval(c->p[1]) : -1;
                if (lo < 0)
                    break;
                ch = (char)(hi * 16 + lo);
                c->p += 2;
            } else if (e == '"' || e == '\\') {
                ch = e;
            } else {
                break;
            }
        }
        out[n++] = ch;
    }
    if (c->p >= c->end || *c->p != '"') {
        free(out);
        *bad = 1;
        return NULL;
    }
    c->p++;
    out[n] = '\0';
    return out;
}

static const struct {
    const char *name;
    enum trace_kind kind;
} trace_kinds[] = {
    {"lock_wait", TRACE_LOCK_WAIT},
    {"lock_granted", TRACE_LOCK_GRANTED},
    {"lock_timeout", TRACE_LOCK_TIMEOUT},
    {"unlock", TRACE_UNLOCK},
    {"tail_read", TRACE_TAIL_READ},
    {"write", TRACE_WRITE},
    {"fsync", TRACE_FSYNC},
    {"outside", TRACE_OUTSIDE},
    {"response", TRACE_RESPONSE},
};

static int trace_is(const char *w, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(w, lit, len) == 0;
}

/* Parses "T kind key=value ..." into ev. Returns 1 parsed, 0 unknown kind (skip), -1 bad
 * line (errno EBADMSG, or ENOMEM). */
static int trace_parse_event(const char *line, size_t len, struct trace_event *ev)
{
    struct trace_cursor c = {line, line + len};
    const char *w;
    size_t w_len;
    int known = 0;

    memset(ev, 0, sizeof(*ev));
    errno = EBADMSG;
    if (trace_word(&c, &w, &w_len) < 0 || trace_parse_i64(w, w_len, &ev->t_ns) < 0)
        return -1;
    if (trace_word(&c, &w, &w_len) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(trace_kinds) / sizeof(trace_kinds[0]); i++) {
        if (trace_is(w, w_len, trace_kinds[i].name)) {
            ev->kind = trace_kinds[i].kind;
            known = 1;
        }
    }
    while (c.p < c.end) {
        trace_skip_spaces(&c);
        if (c.p >= c.end)
            break;
        if (trace_word(&c, &w, &w_len) < 0 || c.p >= c.end || *c.p != '=')
            goto bad;
        c.p++;
        if (c.p < c.end && *c.p == '"') {
            int bad = 0;
            char *s = trace_quoted(&c, &bad);
            if (s == NULL) {
                if (!bad)
                    errno = ENOMEM;
                goto bad;
            }
            char **slot = trace_is(w, w_len, "titulo")    ? &ev->titulo
                          : trace_is(w, w_len, "cliente") ? &ev->cliente
                          : trace_is(w, w_len, "what")    ? &ev->what
                                                          : NULL;
            if (slot != NULL && *slot == NULL)
                *slot = s;
            else
                free(s); /* an unknown key, or a repeated one */
            continue;
        }
        const char *v = c.p;
        while (c.p < c.end && *c.p != ' ')
            c.p++;
        size_t v_len = (size_t)(c.p - v);
        if (!known)
            continue; /* a later version's event: its values are its own business */
        if (trace_is(w, w_len, "lock")) {
            if (v_len != 1 || (v[0] != 'r' && v[0] != 'w'))
                goto bad;
            ev->lock = v[0];
            continue;
        }
        int64_t num;
        if (trace_parse_i64(v, v_len, &num) < 0)
            goto bad;
        if (trace_is(w, w_len, "offset"))
            ev->offset = num;
        else if (trace_is(w, w_len, "length"))
            ev->length = num;
        else if (trace_is(w, w_len, "id"))
            ev->id = (uint64_t)num;
        else if (trace_is(w, w_len, "wait_ns") || trace_is(w, w_len, "hold_ns") ||
                 trace_is(w, w_len, "dur_ns"))
            ev->dur_ns = num;
        else if (trace_is(w, w_len, "status"))
            ev->status = (int)num;
        else if (trace_is(w, w_len, "error"))
            ev->error = (int)num;
    }
    if (!known)
        goto unknown;
    switch (ev->kind) {
    case TRACE_LOCK_WAIT:
    case TRACE_LOCK_GRANTED:
    case TRACE_LOCK_TIMEOUT:
    case TRACE_UNLOCK:
        if (ev->lock == 0)
            goto bad;
        break;
    case TRACE_TAIL_READ:
        if (ev->offset < 0)
            goto bad;
        break;
    case TRACE_WRITE:
        if (ev->offset < 0 || ev->length <= 0 || ev->id == 0)
            goto bad;
        if (ev->titulo == NULL)
            ev->titulo = strdup("");
        if (ev->cliente == NULL)
            ev->cliente = strdup("");
        if (ev->titulo == NULL || ev->cliente == NULL) {
            errno = ENOMEM;
            goto bad;
        }
        break;
    default:
        break;
    }
    return 1;
unknown:
    free(ev->titulo);
    free(ev->cliente);
    free(ev->what);
    memset(ev, 0, sizeof(*ev));
    return 0;
bad : {
    int saved = errno;
    free(ev->titulo);
    free(ev->cliente);
    free(ev->what);
    memset(ev, 0, sizeof(*ev));
    errno = saved;
}
    return -1;
}

/* "# taskserver-trace 1 pid=N worker=N locking=on ..." Returns 0 or -1 (message in err). */
static int trace_parse_header(const char *name, const char *line, size_t len,
                              struct trace_worker *w, char *err, size_t err_len)
{
    size_t hl = sizeof(TRACE_HEADER) - 1;
    if (len < hl || memcmp(line, TRACE_HEADER, hl) != 0) {
        trace_err(err, err_len,
                  "%s: line 1: not a taskserver trace (expected \"" TRACE_HEADER "1 ...\")", name);
        return -1;
    }
    struct trace_cursor c = {line + hl, line + len};
    const char *wd;
    size_t wl;
    int64_t version = 0, pid = -1, index = -1;
    int have_locking = 0;
    if (trace_word(&c, &wd, &wl) < 0 || trace_parse_i64(wd, wl, &version) < 0) {
        trace_err(err, err_len, "%s: line 1: no format version after \"" TRACE_HEADER "\"", name);
        return -1;
    }
    if (version != 1) {
        trace_err(err, err_len, "%s: trace format version %lld; this taskctl reads version 1", name,
                  (long long)version);
        return -1;
    }
    while (c.p < c.end) {
        if (trace_word(&c, &wd, &wl) < 0)
            break;
        if (c.p >= c.end || *c.p != '=')
            continue;
        c.p++;
        const char *v = c.p;
        while (c.p < c.end && *c.p != ' ')
            c.p++;
        size_t vl = (size_t)(c.p - v);
        if (trace_is(wd, wl, "pid"))
            trace_parse_i64(v, vl, &pid);
        else if (trace_is(wd, wl, "worker"))
            trace_parse_i64(v, vl, &index);
        else if (trace_is(wd, wl, "locking")) {
            have_locking = trace_is(v, vl, "on") || trace_is(v, vl, "off");
            w->locking = trace_is(v, vl, "on");
        }
    }
    if (pid <= 0 || index < 0 || index > 1000000 || !have_locking) {
        trace_err(err, err_len, "%s: line 1: the header lacks pid=, worker= or locking=on|off",
                  name);
        return -1;
    }
    w->pid = (long)pid;
    w->index = (unsigned)index;
    return 0;
}

static int trace_push_event(struct trace_set *set, const struct trace_event *ev)
{
    if (set->num_events == set->cap_events) {
        size_t cap = set->cap_events ? set->cap_events * 2 : 1024;
        struct trace_event *e = realloc(set->events, cap * sizeof(*e));
        if (e == NULL)
            return -1;
        set->events = e;
        set->cap_events = cap;
    }
    set->events[set->num_events++] = *ev;
    return 0;
}

int trace_set_read_text(struct trace_set *set, const char *name, const char *text, size_t text_len,
                        char *err, size_t err_len)
{
    struct trace_worker w;
    size_t first_event = set->num_events;
    const char *p = text, *end = text + text_len;
    size_t line_no = 0;

    memset(&w, 0, sizeof(w));
    w.path = strdup(name);
    struct trace_worker *ws = realloc(set->workers, (set->num_workers + 1) * sizeof(*ws));
    if (w.path == NULL || ws == NULL) {
        free(w.path);
        if (ws != NULL)
            set->workers = ws;
        trace_err(err, err_len, "%s: out of memory", name);
        errno = ENOMEM;
        return -1;
    }
    set->workers = ws;
    size_t widx = set->num_workers;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line = p;
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        p = nl ? nl + 1 : end;
        line_no++;
        if (line_no == 1) {
            if (trace_parse_header(name, line, len, &w, err, err_len) < 0)
                goto bad;
            continue;
        }
        if (len == 0)
            continue;
        if (line[0] == '#') {
            static const char stopped[] = "# stopped:", ended[] = "# end";
            if (len >= sizeof(stopped) - 1 && memcmp(line, stopped, sizeof(stopped) - 1) == 0)
                w.capped = 1;
            else if (len >= sizeof(ended) - 1 && memcmp(line, ended, sizeof(ended) - 1) == 0)
                w.ended = 1;
            continue;
        }
        if (nl == NULL) {
            /* Every line the writer makes ends in a newline: this one was cut short (the
             * worker died inside its last write, or the disk filled up). Skip the stub. */
            w.num_torn_lines++;
            continue;
        }
        struct trace_event ev;
        int rc = trace_parse_event(line, len, &ev);
        if (rc < 0) {
            if (errno == ENOMEM)
                trace_err(err, err_len, "%s: out of memory", name);
            else
                trace_err(err, err_len, "%s: line %zu: malformed event \"%.*s\"", name, line_no,
                          (int)(len < 120 ? len : 120), line);
            goto bad;
        }
        if (rc == 0) {
            w.num_unknown++;
            continue;
        }
        ev.worker = widx;
        ev.line = line_no;
        if (trace_push_event(set, &ev) < 0) {
            free(ev.titulo);
            free(ev.cliente);
            free(ev.what);
            trace_err(err, err_len, "%s: out of memory", name);
            errno = ENOMEM;
            goto bad;
        }
        w.num_events++;
    }
    if (line_no == 0) {
        trace_err(err, err_len, "%s: empty file, not a taskserver trace", name);
        errno = EBADMSG;
        goto bad;
    }
    set->workers[set->num_workers++] = w;
    if (set->num_workers == 1)
        set->locking = w.locking;
    else if (set->locking != w.locking)
        set->locking = -1;
    return 0;
bad : {
    int saved = errno;
    for (size_t i = first_event; i < set->num_events; i++) {
        free(set->events[i].titulo);
        free(set->events[i].cliente);
        free(set->events[i].what);
    }
    set->num_events = first_event;
    free(w.path);
    errno = saved;
}
    return -1;
}

int trace_set_read_file(struct trace_set *set, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0;
    if (f == NULL) {
        trace_err(err, err_len, "open %s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            if (cap >= (size_t)TRACE_READ_MAX_BYTES) {
                trace_err(err, err_len, "%s: larger than 1 GiB: not read", path);
                errno = EFBIG;
                goto fail;
            }
            cap = cap ? cap * 2 : 65536;
            char *t = realloc(text, cap);
            if (t == NULL) {
                trace_err(err, err_len, "%s: out of memory", path);
                errno = ENOMEM;
                goto fail;
            }
            text = t;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                trace_err(err, err_len, "read %s: %s", path, strerror(errno));
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    int rc = trace_set_read_text(set, path, text ? text : "", len, err, err_len);
    int saved = errno;
    free(text);
    errno = saved;
    return rc;
fail : {
    int saved = errno;
    fclose(f);
    free(text);
    errno = saved;
}
    return -1;
}

static int trace_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int trace_set_read_dir(struct trace_set *set, const char *dir, char *err, size_t err_len)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t num = 0, cap = 0;
    int rc = -1;
    if (d == NULL) {
        trace_err(err, err_len, "open directory %s: %s", dir, strerror(errno));
        return -1;
    }
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                trace_err(err, err_len, "read directory %s: %s", dir, strerror(errno));
                goto out;
            }
            break;
        }
        size_t nl = strlen(de->d_name);
        if (nl <= 6 || strcmp(de->d_name + nl - 6, ".trace") != 0)
            continue;
        if (num == cap) {
            cap = cap ? cap * 2 : 16;
            char **n = realloc(names, cap * sizeof(*n));
            if (n == NULL)
                goto nomem;
            names = n;
        }
        if ((names[num] = strdup(de->d_name)) == NULL)
            goto nomem;
        num++;
    }
    if (num == 0) {
        trace_err(err, err_len, "%s: no *.trace files (run taskserver --trace %s)", dir, dir);
        errno = ENOENT;
        goto out;
    }
    qsort(names, num, sizeof(*names), trace_cmp_names);
    for (size_t i = 0; i < num; i++) {
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(plen);
        if (path == NULL)
            goto nomem;
        snprintf(path, plen, "%s/%s", dir, names[i]);
        int r = trace_set_read_file(set, path, err, err_len);
        free(path);
        if (r < 0)
            goto out;
    }
    rc = 0;
    goto out;
nomem:
    trace_err(err, err_len, "reading %s: out of memory", dir);
    errno = ENOMEM;
out : {
    int saved = errno;
    for (size_t i = 0; i < num; i++)
        free(names[i]);
    free(names);
    closedir(d);
    errno = saved;
}
    return rc;
}

/* ---- merge ---- */

static int trace_cmp_events(const void *a, const void *b)
{
    const struct trace_event *x = a, *y = b;
    if (x->t_ns != y->t_ns)
        return x->t_ns < y->t_ns ? -1 : 1;
    if (x->worker != y->worker)
        return x->worker < y->worker ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line;
}

void trace_set_merge(struct trace_set *set)
{
    /* Workers by slot, then pid (a replacement worker has its predecessor's slot); the
     * events' worker indices follow the new order. */
    size_t n = set->num_workers;
    size_t *order = malloc((n ? n : 1) * sizeof(*order));
    size_t *where = malloc((n ? n : 1) * sizeof(*where));
    if (order != NULL && where != NULL) {
        for (size_t i = 0; i < n; i++)
            order[i] = i;
        for (size_t i = 1; i < n; i++) { /* insertion sort: a handful of workers */
            size_t k = order[i], j = i;
            while (j > 0 && (set->workers[order[j - 1]].index > set->workers[k].index ||
                             (set->workers[order[j - 1]].index == set->workers[k].index &&
                              set->workers[order[j - 1]].pid > set->workers[k].pid))) {
                order[j] = order[j - 1];
                j--;
            }
            order[j] = k;
        }
        struct trace_worker *sorted = malloc((n ? n : 1) * sizeof(*sorted));
        if (sorted != NULL) {
            for (size_t i = 0; i < n; i++) {
                sorted[i] = set->workers[order[i]];
                where[order[i]] = i;
            }
            memcpy(set->workers, sorted, n * sizeof(*sorted));
            free(sorted);
            for (size_t i = 0; i < set->num_events; i++)
                set->events[i].worker = where[set->events[i].worker];
        }
    }
    free(order);
    free(where);
    if (set->num_events > 1)
        qsort(set->events, set->num_events, sizeof(*set->events), trace_cmp_events);
}

/* ---- analysis ---- */

static int trace_is_store_event(enum trace_kind k)
{
    return k != TRACE_RESPONSE;
}

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

/* Growable arrays of holds and appends. */
static int trace_new_hold(struct trace_analysis *an, size_t *cap, size_t worker, char lock,
                          size_t *out)
{
    if (an->num_holds == *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        struct trace_hold *h = realloc(an->holds, c * sizeof(*h));
        if (h == NULL)
            return -1;
        an->holds = h;
        *cap = c;
    }
    struct trace_hold *h = &an->holds[an->num_holds];
    memset(h, 0, sizeof(*h));
    h->worker = worker;
    h->lock = lock;
    h->t_wait = h->t_grant = h->t_end = h->t_inner_end = -1;
    *out = an->num_holds++;
    return 0;
}

static int trace_new_append(struct trace_analysis *an, size_t *cap, size_t worker, size_t *out)
{
    if (an->num_appends == *cap) {
        size_t c = *cap ? *cap * 2 : 256;
        struct trace_append *a = realloc(an->appends, c * sizeof(*a));
        if (a == NULL)
            return -1;
        an->appends = a;
        *cap = c;
    }
    struct trace_append *a = &an->appends[an->num_appends];
    memset(a, 0, sizeof(*a));
    a->worker = worker;
    a->read_ev = a->write_ev = a->response_ev = a->hold = a->overwritten_by = TRACE_NONE;
    a->cut_by = TRACE_NONE;
    *out = an->num_appends++;
    return 0;
}

/* Walks one worker's events in its own order and builds its holds and appends. */
static int trace_walk_worker(const struct trace_set *set, const size_t *evs, size_t n,
                             size_t worker, struct trace_analysis *an, size_t *hold_cap,
                             size_t *append_cap)
{
    size_t hold = TRACE_NONE;       /* open: waiting or held */
    size_t append = TRACE_NONE;     /* tail read, no write yet */
    size_t batch_read = TRACE_NONE; /* the tail read of the current hold's batch */
    /* Appends waiting for their responses: the worker answers a batch in the
     * order it wrote it, so responses pair with them first in, first out. */
    size_t pend_lo = an->num_appends, pend_hi = an->num_appends;

    for (size_t k = 0; k < n; k++) {
        size_t ei = evs[k];
        const struct trace_event *ev = &set->events[ei];
        switch (ev->kind) {
        case TRACE_LOCK_WAIT:
            if (trace_new_hold(an, hold_cap, worker, ev->lock, &hold) < 0)
                return -1;
            an->holds[hold].t_wait = ev->t_ns;
            break;
        case TRACE_LOCK_GRANTED:
        case TRACE_LOCK_TIMEOUT:
            if (hold == TRACE_NONE || an->holds[hold].t_grant >= 0 ||
                an->holds[hold].lock != ev->lock) {
                /* The wait line is missing (the trace began or was cut in between). */
                if (trace_new_hold(an, hold_cap, worker, ev->lock, &hold) < 0)
                    return -1;
                an->holds[hold].t_wait = ev->t_ns - ev->dur_ns;
            }
            if (ev->kind == TRACE_LOCK_GRANTED) {
                an->holds[hold].t_grant = ev->t_ns;
                an->holds[hold].t_inner_end = ev->t_ns;
            } else {
                an->holds[hold].timed_out = 1;
                an->holds[hold].t_end = ev->t_ns;
                hold = TRACE_NONE;
            }
            break;
        case TRACE_UNLOCK:
            if (hold == TRACE_NONE || an->holds[hold].t_grant < 0) {
                if (trace_new_hold(an, hold_cap, worker, ev->lock, &hold) < 0)
                    return -1;
                an->holds[hold].t_grant = ev->t_ns - ev->dur_ns;
                an->holds[hold].t_wait = an->holds[hold].t_grant;
                an->holds[hold].t_inner_end = an->holds[hold].t_grant;
            }
            an->holds[hold].t_end = ev->t_ns;
            hold = TRACE_NONE;
            batch_read = TRACE_NONE;
            if (append != TRACE_NONE) { /* read, never wrote: the append failed */
                pend_hi = append + 1;
                append = TRACE_NONE;
            }
            break;
        case TRACE_TAIL_READ:
        case TRACE_WRITE: {
            int held = hold != TRACE_NONE && an->holds[hold].t_grant >= 0;
            if (held)
                an->holds[hold].t_inner_end = ev->t_ns;
            if (ev->kind == TRACE_TAIL_READ || append == TRACE_NONE) {
                if (ev->kind == TRACE_TAIL_READ && append != TRACE_NONE)
                    pend_hi = append + 1; /* read again without a write: that one failed */
                if (trace_new_append(an, append_cap, worker, &append) < 0)
                    return -1;
                if (held && an->holds[hold].lock == 'w')
                    an->appends[append].hold = hold;
            }
            if (ev->kind == TRACE_TAIL_READ) {
                an->appends[append].read_ev = ei;
                batch_read = ei;
            } else {
                /* The second and later records of a batch share its tail read. */
                if (an->appends[append].read_ev == TRACE_NONE)
                    an->appends[append].read_ev = batch_read;
                an->appends[append].write_ev = ei;
                pend_hi = append + 1;
                append = TRACE_NONE;
            }
            break;
        }
        case TRACE_FSYNC:
        case TRACE_OUTSIDE:
            if (hold != TRACE_NONE && an->holds[hold].t_grant >= 0)
                an->holds[hold].t_inner_end = ev->t_ns;
            break;
        case TRACE_RESPONSE:
            if (pend_lo == pend_hi && append != TRACE_NONE) {
                pend_hi = append + 1; /* unlocked build: read, then an error answered */
                append = TRACE_NONE;
                batch_read = TRACE_NONE;
            }
            if (pend_lo < pend_hi)
                an->appends[pend_lo++].response_ev = ei;
            break;
        }
    }
    return 0;
}

/* The live records: disjoint byte ranges still intact in the file, by offset. */
struct trace_live {
    int64_t start;
    int64_t end;
    int64_t t_written;
    size_t append;
};

/* Marks every write whose record a later write covers, or that a tail read shows cut off
 * (see trace_read.h). */
static int trace_match_lost(const struct trace_set *set, struct trace_analysis *an)
{
    size_t num = 0;
    size_t n_alloc = an->num_appends ? 2 * an->num_appends : 1;
    size_t *acts = malloc(n_alloc * sizeof(*acts)); /* 2 * append + (0 read, 1 write) */
    struct trace_live *live = malloc(n_alloc * sizeof(*live));
    size_t num_live = 0;
    if (acts == NULL || live == NULL) {
        free(acts);
        free(live);
        return -1;
    }
    for (size_t i = 0; i < an->num_appends; i++) {
        if (an->appends[i].read_ev != TRACE_NONE)
            acts[num++] = 2 * i;
        if (an->appends[i].write_ev != TRACE_NONE)
            acts[num++] = 2 * i + 1;
    }
    /* In event order, which is time order: the events are merged by time. Insertion sort on
     * an array that is nearly sorted already (appends are grouped by worker). */
#define TRACE_ACT_EV(a) ((a) % 2 ? an->appends[(a) / 2].write_ev : an->appends[(a) / 2].read_ev)
    for (size_t i = 1; i < num; i++) {
        size_t k = acts[i], j = i;
        while (j > 0 && TRACE_ACT_EV(acts[j - 1]) > TRACE_ACT_EV(k)) {
            acts[j] = acts[j - 1];
            j--;
        }
        acts[j] = k;
    }
    for (size_t i = 0; i < num; i++) {
        size_t ai = acts[i] / 2;
        const struct trace_event *ev = &set->events[TRACE_ACT_EV(acts[i])];
        if (acts[i] % 2 == 0) {
            /* A tail read saw the list end at ev->offset: the file was ev->offset + 3 bytes
             * long then. A record written well before (the margin covers the reader's own
             * work between looking at the size and reporting it) that reaches past that end
             * was cut off by a truncation (a torn-tail repair), which reports no write. */
            size_t lo = 0, hi = num_live;
            while (lo < hi) { /* only the ranges from the first that ends past the end */
                size_t mid = lo + (hi - lo) / 2;
                if (live[mid].end <= ev->offset)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            size_t k = lo;
            for (size_t j = lo; j < num_live; j++) {
                if (live[j].end > ev->offset &&
                    live[j].t_written < ev->t_ns - TRACE_CUT_MARGIN_NS) {
                    struct trace_append *victim = &an->appends[live[j].append];
                    victim->lost = 1;
                    victim->cut_by = ai;
                    continue;
                }
                live[k++] = live[j];
            }
            num_live = k;
            continue;
        }
        int64_t b_start = ev->offset, b_end = ev->offset + ev->length;
        /* First live range that ends after b_start (ends increase with starts). */
        size_t lo = 0, hi = num_live;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (live[mid].end <= b_start)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t first = lo, last = lo;
        while (last < num_live && live[last].start < b_end) {
            struct trace_append *victim = &an->appends[live[last].append];
            victim->lost = 1;
            victim->overwritten_by = ai;
            last++;
        }
        /* Replace the covered ranges by this write's record. */
        int64_t head = ev->id > 1 ? 2 : 0;
        int64_t r_start = ev->offset + head, r_end = ev->offset + ev->length - 3;
        int add = r_end > r_start;
        size_t removed = last - first;
        if (add && removed == 0) {
            memmove(&live[first + 1], &live[first], (num_live - first) * sizeof(*live));
            num_live++;
        } else if (!add || removed > 1) {
            size_t keep = add ? 1 : 0;
            memmove(&live[first + keep], &live[last], (num_live - last) * sizeof(*live));
            num_live -= removed - keep;
        }
        if (add)
            live[first] = (struct trace_live){r_start, r_end, ev->t_ns, ai};
    }
#undef TRACE_ACT_EV
    free(acts);
    free(live);
    return 0;
}

/* A lost task is one the server acknowledged: an overwritten write answered with an error
 * (the server read its record back and saw it overwritten, I7 in task_store_lock.c) was
 * refused, not lost. Such writes are counted apart. Returns 0. */
static int trace_keep_acknowledged(const struct trace_set *set, struct trace_analysis *an)
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
    return 0;
}

/* Counts intersecting pairs among n intervals sorted by start, of different workers, that
 * conflict; marks both. Intervals are [start, end] with strict comparisons. */
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

static void trace_fill_stats(struct trace_stats *st, int64_t *waits, size_t num_waits)
{
    qsort(waits, num_waits, sizeof(*waits), trace_cmp_i64);
    st->wait_p50_ns = trace_percentile(waits, num_waits, 50);
    st->wait_p99_ns = trace_percentile(waits, num_waits, 99);
    st->wait_max_ns = num_waits ? waits[num_waits - 1] : 0;
}

int trace_analyze(const struct trace_set *set, struct trace_analysis *an)
{
    size_t hold_cap = 0, append_cap = 0;
    size_t nw = set->num_workers;
    size_t *by_worker = NULL, *starts = NULL;
    int64_t *waits = NULL;
    struct trace_span *spans = NULL;

    memset(an, 0, sizeof(*an));
    an->workers = calloc(nw ? nw : 1, sizeof(*an->workers));
    by_worker = malloc((set->num_events ? set->num_events : 1) * sizeof(*by_worker));
    starts = calloc(nw + 1, sizeof(*starts));
    if (an->workers == NULL || by_worker == NULL || starts == NULL)
        goto nomem;

    /* Each worker's events in its own line order (a counting sort by worker, then by line:
     * merged by time they are nearly in line order already). */
    for (size_t i = 0; i < set->num_events; i++)
        starts[set->events[i].worker + 1]++;
    for (size_t w = 0; w < nw; w++)
        starts[w + 1] += starts[w];
    {
        size_t *fill = calloc(nw ? nw : 1, sizeof(*fill));
        if (fill == NULL)
            goto nomem;
        for (size_t i = 0; i < set->num_events; i++) {
            size_t w = set->events[i].worker;
            by_worker[starts[w] + fill[w]++] = i;
        }
        free(fill);
    }
    for (size_t w = 0; w < nw; w++) {
        size_t *e = by_worker + starts[w];
        size_t n = starts[w + 1] - starts[w];
        for (size_t i = 1; i < n; i++) {
            size_t k = e[i], j = i;
            while (j > 0 && set->events[e[j - 1]].line > set->events[k].line) {
                e[j] = e[j - 1];
                j--;
            }
            e[j] = k;
        }
        if (trace_walk_worker(set, e, n, w, an, &hold_cap, &append_cap) < 0)
            goto nomem;
    }

    if (trace_match_lost(set, an) < 0 || trace_keep_acknowledged(set, an) < 0)
        goto nomem;

    /* Overlapping holds, judged on [grant, last event inside] (see trace_read.h). */
    size_t span_cap = an->num_holds > an->num_appends ? an->num_holds : an->num_appends;
    spans = malloc((span_cap ? span_cap : 1) * sizeof(*spans));
    if (spans == NULL)
        goto nomem;
    size_t ns = 0;
    for (size_t i = 0; i < an->num_holds; i++) {
        struct trace_hold *h = &an->holds[i];
        if (h->t_grant < 0)
            continue;
        spans[ns++] = (struct trace_span){h->t_grant, h->t_inner_end, h->worker, h->lock == 'w',
                                          &h->overlaps};
    }
    an->num_overlapping_holds = trace_count_overlaps(spans, ns);
    /* The unprotected sections: tail read to write. */
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

    /* Figures per worker and in all. */
    waits = malloc((an->num_holds ? an->num_holds : 1) * sizeof(*waits));
    if (waits == NULL)
        goto nomem;
    size_t num_all = 0;
    for (size_t w = 0; w < nw; w++) {
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
            int64_t wait_end = h->t_grant >= 0 ? h->t_grant : h->t_end;
            if (h->t_wait >= 0 && wait_end >= 0) {
                st->wait_total_ns += wait_end - h->t_wait;
                waits[nwaits++] = wait_end - h->t_wait;
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
    for (size_t i = 0; i < set->num_events; i++) {
        const struct trace_event *ev = &set->events[i];
        if (ev->kind != TRACE_RESPONSE)
            continue;
        an->workers[ev->worker].responses++;
        an->workers[ev->worker].responses_error += ev->status >= 500;
    }
    for (size_t i = 0; i < an->num_holds; i++) {
        const struct trace_hold *h = &an->holds[i];
        int64_t wait_end = h->t_grant >= 0 ? h->t_grant : h->t_end;
        if (h->t_wait >= 0 && wait_end >= 0)
            waits[num_all++] = wait_end - h->t_wait;
    }
    for (size_t w = 0; w < nw; w++) {
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

    /* The time span worth drawing: the appends and their write locks (a list or a health
     * check before or after the load would only stretch it); without any, the store's
     * events; without those, everything. */
    an->t_first = an->t_last = -1;
    for (size_t i = 0; i < an->num_appends; i++) {
        const struct trace_append *a = &an->appends[i];
        size_t evs[3] = {a->read_ev, a->write_ev, a->response_ev};
        for (int k = 0; k < 3; k++) {
            if (evs[k] == TRACE_NONE)
                continue;
            int64_t t = set->events[evs[k]].t_ns;
            if (an->t_first < 0 || t < an->t_first)
                an->t_first = t;
            if (t > an->t_last)
                an->t_last = t;
        }
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
            const struct trace_event *ev = &set->events[i];
            if (pass == 0 && !trace_is_store_event(ev->kind))
                continue;
            if (an->t_first < 0 || ev->t_ns < an->t_first)
                an->t_first = ev->t_ns;
            if (ev->t_ns > an->t_last)
                an->t_last = ev->t_ns;
        }
    }
    if (an->t_first < 0)
        an->t_first = an->t_last = 0;

    free(by_worker);
    free(starts);
    free(waits);
    free(spans);
    return 0;
nomem:
    free(by_worker);
    free(starts);
    free(waits);
    free(spans);
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

const char *trace_format_ns(int64_t ns, char *buf, size_t buf_len)
{
    double v = (double)ns;
    if (ns < 0)
        v = -v;
    const char *sign = ns < 0 ? "-" : "";
    if (v < 1e3)
        snprintf(buf, buf_len, "%s%.0f ns", sign, v);
    else if (v < 1e6)
        snprintf(buf, buf_len, "%s%.*f us", sign, v < 1e4 ? 2 : v < 1e5 ? 1 : 0, v / 1e3);
    else if (v < 1e9)
        snprintf(buf, buf_len, "%s%.*f ms", sign, v < 1e7 ? 2 : v < 1e8 ? 1 : 0, v / 1e6);
    else
        snprintf(buf, buf_len, "%s%.2f s", sign, v / 1e9);
    return buf;
}
