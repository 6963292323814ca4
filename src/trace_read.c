/* trace_read.c - reads the workers' trace files into one set of events (trace_read.h). */
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

/* Returns -1 with errno EBADMSG: the line is not what the writer makes. */
static int trace_bad(void)
{
    errno = EBADMSG;
    return -1;
}

/* Frees the event's strings and zeroes it; errno is kept. */
static void trace_event_clear(struct trace_event *ev)
{
    int saved = errno;
    free(ev->titulo);
    free(ev->cliente);
    free(ev->what);
    memset(ev, 0, sizeof(*ev));
    errno = saved;
}

/* Sets *kind from its name. Returns 1, or 0 for a kind this reader does not know. */
static int trace_kind_of(const char *w, size_t w_len, enum trace_kind *kind)
{
    for (size_t i = 0; i < sizeof(trace_kinds) / sizeof(trace_kinds[0]); i++) {
        if (trace_is(w, w_len, trace_kinds[i].name)) {
            *kind = trace_kinds[i].kind;
            return 1;
        }
    }
    return 0;
}

/* key="quoted value" at the cursor: kept in ev if the key names one of its strings (the
 * first time), else read and dropped. Returns 0 or -1 (errno EBADMSG, ENOMEM). */
static int trace_take_string(struct trace_cursor *c, const char *key, size_t key_len,
                             struct trace_event *ev)
{
    int bad = 0;
    char *s = trace_quoted(c, &bad);
    if (s == NULL) {
        errno = bad ? EBADMSG : ENOMEM;
        return -1;
    }
    char **slot = trace_is(key, key_len, "titulo")    ? &ev->titulo
                  : trace_is(key, key_len, "cliente") ? &ev->cliente
                  : trace_is(key, key_len, "what")    ? &ev->what
                                                      : NULL;
    if (slot != NULL && *slot == NULL)
        *slot = s;
    else
        free(s); /* an unknown key, or a repeated one */
    return 0;
}

/* key=value (unquoted) of a known event into ev; unknown keys are skipped. Returns 0 or -1
 * (EBADMSG). */
static int trace_take_value(const char *key, size_t key_len, const char *v, size_t v_len,
                            struct trace_event *ev)
{
    int64_t num;

    if (trace_is(key, key_len, "lock")) {
        if (v_len != 1 || (v[0] != 'r' && v[0] != 'w'))
            return trace_bad();
        ev->lock = v[0];
        return 0;
    }
    if (trace_parse_i64(v, v_len, &num) < 0)
        return trace_bad();
    if (trace_is(key, key_len, "offset"))
        ev->offset = num;
    else if (trace_is(key, key_len, "length"))
        ev->length = num;
    else if (trace_is(key, key_len, "id"))
        ev->id = (uint64_t)num;
    else if (trace_is(key, key_len, "wait_ns") || trace_is(key, key_len, "hold_ns") ||
             trace_is(key, key_len, "dur_ns"))
        ev->dur_ns = num;
    else if (trace_is(key, key_len, "status"))
        ev->status = (int)num;
    else if (trace_is(key, key_len, "error"))
        ev->error = (int)num;
    return 0;
}

/* The next key=value pair at the cursor (spaces skipped) into ev. Returns 0 or -1 (errno
 * EBADMSG, ENOMEM). */
static int trace_take_pair(struct trace_cursor *c, int known, struct trace_event *ev)
{
    const char *key;
    size_t key_len;

    if (trace_word(c, &key, &key_len) < 0 || c->p >= c->end || *c->p != '=')
        return trace_bad();
    c->p++;
    if (c->p < c->end && *c->p == '"')
        return trace_take_string(c, key, key_len, ev);
    const char *v = c->p;
    while (c->p < c->end && *c->p != ' ')
        c->p++;
    if (!known)
        return 0; /* a later version's event: its values are its own business */
    return trace_take_value(key, key_len, v, (size_t)(c->p - v), ev);
}

/* What each kind must carry; a write's missing strings become "". Returns 0 or -1 (errno
 * EBADMSG, ENOMEM). */
static int trace_event_check(struct trace_event *ev)
{
    switch (ev->kind) {
    case TRACE_LOCK_WAIT:
    case TRACE_LOCK_GRANTED:
    case TRACE_LOCK_TIMEOUT:
    case TRACE_UNLOCK:
        return ev->lock == 0 ? trace_bad() : 0;
    case TRACE_TAIL_READ:
        return ev->offset < 0 ? trace_bad() : 0;
    case TRACE_WRITE:
        if (ev->offset < 0 || ev->length <= 0 || ev->id == 0)
            return trace_bad();
        if (ev->titulo == NULL)
            ev->titulo = strdup("");
        if (ev->cliente == NULL)
            ev->cliente = strdup("");
        if (ev->titulo == NULL || ev->cliente == NULL) {
            errno = ENOMEM;
            return -1;
        }
        return 0;
    default:
        return 0;
    }
}

/* Parses "T kind key=value ..." into ev. Returns 1 parsed, 0 unknown kind (skip), -1 bad
 * line (errno EBADMSG, or ENOMEM). */
static int trace_parse_event(const char *line, size_t len, struct trace_event *ev)
{
    struct trace_cursor c = {line, line + len};
    const char *w;
    size_t w_len;

    memset(ev, 0, sizeof(*ev));
    if (trace_word(&c, &w, &w_len) < 0 || trace_parse_i64(w, w_len, &ev->t_ns) < 0 ||
        trace_word(&c, &w, &w_len) < 0)
        return trace_bad();
    int known = trace_kind_of(w, w_len, &ev->kind);
    for (trace_skip_spaces(&c); c.p < c.end; trace_skip_spaces(&c)) {
        if (trace_take_pair(&c, known, ev) < 0) {
            trace_event_clear(ev);
            return -1;
        }
    }
    if (!known) {
        trace_event_clear(ev);
        return 0;
    }
    if (trace_event_check(ev) < 0) {
        trace_event_clear(ev);
        return -1;
    }
    return 1;
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

/* One file being read: the worker it describes, where the reading stands. */
struct trace_file {
    const char *name; /* for messages */
    struct trace_worker w;
    size_t widx; /* its index in set->workers once read */
    size_t line_no;
    char *err;
    size_t err_len;
};

/* Makes room for one more worker and copies its name. Returns 0 or -1 (ENOMEM, message). */
static int trace_new_worker(struct trace_set *set, struct trace_file *f)
{
    memset(&f->w, 0, sizeof(f->w));
    f->w.path = strdup(f->name);
    struct trace_worker *ws = realloc(set->workers, (set->num_workers + 1) * sizeof(*ws));
    if (ws != NULL)
        set->workers = ws;
    if (f->w.path == NULL || ws == NULL) {
        free(f->w.path);
        f->w.path = NULL;
        trace_err(f->err, f->err_len, "%s: out of memory", f->name);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* "# stopped: ..." and "# end" tell how the worker's trace ended; other comments say
 * nothing to the reader. */
static void trace_take_comment(struct trace_worker *w, const char *line, size_t len)
{
    static const char stopped[] = "# stopped:", ended[] = "# end";
    if (len >= sizeof(stopped) - 1 && memcmp(line, stopped, sizeof(stopped) - 1) == 0)
        w->capped = 1;
    else if (len >= sizeof(ended) - 1 && memcmp(line, ended, sizeof(ended) - 1) == 0)
        w->ended = 1;
}

/* An event line: parsed and added to the set, or counted as unknown. Returns 0 or -1
 * (message in f->err). */
static int trace_take_event(struct trace_set *set, struct trace_file *f, const char *line,
                            size_t len)
{
    struct trace_event ev;
    int rc = trace_parse_event(line, len, &ev);
    if (rc < 0) {
        if (errno == ENOMEM)
            trace_err(f->err, f->err_len, "%s: out of memory", f->name);
        else
            trace_err(f->err, f->err_len, "%s: line %zu: malformed event \"%.*s\"", f->name,
                      f->line_no, (int)(len < 120 ? len : 120), line);
        return -1;
    }
    if (rc == 0) {
        f->w.num_unknown++;
        return 0;
    }
    ev.worker = f->widx;
    ev.line = f->line_no;
    if (trace_push_event(set, &ev) < 0) {
        trace_event_clear(&ev);
        trace_err(f->err, f->err_len, "%s: out of memory", f->name);
        errno = ENOMEM;
        return -1;
    }
    f->w.num_events++;
    return 0;
}

/* One line without its newline (torn: none followed it). Returns 0 or -1 (message). */
static int trace_take_line(struct trace_set *set, struct trace_file *f, const char *line,
                           size_t len, int torn)
{
    if (f->line_no == 1)
        return trace_parse_header(f->name, line, len, &f->w, f->err, f->err_len);
    if (len == 0)
        return 0;
    if (line[0] == '#') {
        trace_take_comment(&f->w, line, len);
        return 0;
    }
    if (torn) {
        /* Every line the writer makes ends in a newline: this one was cut short (the worker
         * died inside its last write, or the disk filled up). Skip the stub. */
        f->w.num_torn_lines++;
        return 0;
    }
    return trace_take_event(set, f, line, len);
}

/* Takes back the events from index first on (a file that failed half-way). */
static void trace_drop_events(struct trace_set *set, size_t first)
{
    for (size_t i = first; i < set->num_events; i++) {
        free(set->events[i].titulo);
        free(set->events[i].cliente);
        free(set->events[i].what);
    }
    set->num_events = first;
}

int trace_set_read_text(struct trace_set *set, const char *name, const char *text, size_t text_len,
                        char *err, size_t err_len)
{
    struct trace_file f = {.name = name, .widx = set->num_workers, .err = err, .err_len = err_len};
    size_t first_event = set->num_events;
    const char *p = text, *end = text + text_len;

    if (trace_new_worker(set, &f) < 0)
        return -1;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line = p;
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        p = nl ? nl + 1 : end;
        f.line_no++;
        if (trace_take_line(set, &f, line, len, nl == NULL) < 0)
            goto bad;
    }
    if (f.line_no == 0) {
        trace_err(err, err_len, "%s: empty file, not a taskserver trace", name);
        errno = EBADMSG;
        goto bad;
    }
    set->workers[set->num_workers++] = f.w;
    if (set->num_workers == 1)
        set->locking = f.w.locking;
    else if (set->locking != f.w.locking)
        set->locking = -1;
    return 0;
bad : {
    int saved = errno;
    trace_drop_events(set, first_event);
    free(f.w.path);
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

/* Adds the names of the *.trace files in d (opened from dir) to *names. Returns 0 or -1
 * (message); the names gathered so far are the caller's to free either way. */
static int trace_list_dir(DIR *d, const char *dir, char ***names, size_t *num, char *err,
                          size_t err_len)
{
    size_t cap = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (de == NULL) {
            if (errno == 0)
                return 0;
            trace_err(err, err_len, "read directory %s: %s", dir, strerror(errno));
            return -1;
        }
        size_t nl = strlen(de->d_name);
        if (nl <= 6 || strcmp(de->d_name + nl - 6, ".trace") != 0)
            continue;
        if (*num == cap) {
            cap = cap ? cap * 2 : 16;
            char **n = realloc(*names, cap * sizeof(*n));
            if (n == NULL)
                goto nomem;
            *names = n;
        }
        if (((*names)[*num] = strdup(de->d_name)) == NULL)
            goto nomem;
        (*num)++;
    }
nomem:
    trace_err(err, err_len, "reading %s: out of memory", dir);
    errno = ENOMEM;
    return -1;
}

/* Reads dir/name. Returns 0 or -1 (message). */
static int trace_read_entry(struct trace_set *set, const char *dir, const char *name, char *err,
                            size_t err_len)
{
    size_t plen = strlen(dir) + strlen(name) + 2;
    char *path = malloc(plen);
    if (path == NULL) {
        trace_err(err, err_len, "reading %s: out of memory", dir);
        errno = ENOMEM;
        return -1;
    }
    snprintf(path, plen, "%s/%s", dir, name);
    int r = trace_set_read_file(set, path, err, err_len);
    int saved = errno;
    free(path);
    errno = saved;
    return r;
}

int trace_set_read_dir(struct trace_set *set, const char *dir, char *err, size_t err_len)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t num = 0;
    int rc = -1;
    if (d == NULL) {
        trace_err(err, err_len, "open directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (trace_list_dir(d, dir, &names, &num, err, err_len) < 0)
        goto out;
    if (num == 0) {
        trace_err(err, err_len, "%s: no *.trace files (run taskserver --trace %s)", dir, dir);
        errno = ENOENT;
        goto out;
    }
    qsort(names, num, sizeof(*names), trace_cmp_names);
    for (size_t i = 0; i < num; i++)
        if (trace_read_entry(set, dir, names[i], err, err_len) < 0)
            goto out;
    rc = 0;
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

/* ---- formatting ---- */

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
