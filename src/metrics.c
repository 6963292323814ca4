/* metrics.c - per-worker counters in one shared mapping, and their Prometheus text on scrape. */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "decimal.h"

/* The slots live in memory shared by processes: an atomic that is not lock-free
 * would take a lock private to each process, which protects nothing here. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");

#define METRICS_MAX_WORKERS 1024 /* the --workers limit (config.c) */

/* Request durations: 50 us .. 10 s. */
static const int64_t metrics_http_bounds[] = {
    50000,     100000,     250000,     500000,     1000000,     2500000,
    5000000,   10000000,   25000000,   50000000,   100000000,   250000000,
    500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};
#define METRICS_HTTP_BOUNDS (sizeof(metrics_http_bounds) / sizeof(metrics_http_bounds[0]))

/* Lock waits and holds, fsyncs: 1 us .. 1 s. */
static const int64_t metrics_lock_bounds[] = {
    1000,     2500,      5000,      10000,     25000,      50000,    100000,
    250000,   500000,    1000000,   2500000,   5000000,    10000000, 25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000,
};
#define METRICS_LOCK_BOUNDS (sizeof(metrics_lock_bounds) / sizeof(metrics_lock_bounds[0]))

#define METRICS_MAX_BOUNDS 20
_Static_assert(METRICS_HTTP_BOUNDS <= METRICS_MAX_BOUNDS, "METRICS_MAX_BOUNDS");
_Static_assert(METRICS_LOCK_BOUNDS <= METRICS_MAX_BOUNDS, "METRICS_MAX_BOUNDS");

/* Every status the server answers (http_status_text), and one for anything else. */
static const int metrics_codes[] = {200, 201, 204, 400, 404, 405, 408, 411, 413,
                                    414, 415, 417, 431, 500, 501, 503, 505, 507};
#define METRICS_NUM_CODES (sizeof(metrics_codes) / sizeof(metrics_codes[0]) + 1)

static const char *const metrics_method_names[METRICS_NUM_METHODS] = {"other", "GET", "HEAD",
                                                                      "POST"};
static const char *const metrics_path_names[METRICS_NUM_PATHS] = {
    "other", "/tareas", "/tareas/{id}", "/health", "/metrics"};

/* TASK_STORE_EV_OUTSIDE's `what`: the kinds the store reports; anything new
 * is counted as "other" until it is added here. */
/* The store's TASK_STORE_EV_OUTSIDE kinds (task_store.c): a file replaced by
 * rename, removed, rewritten from another layout, a torn tail cut, an empty
 * file made a list, damage refused, another program's write during an append. */
static const char *const metrics_outside_kinds[] = {"replaced", "removed", "rewritten",   "torn",
                                                    "emptied",  "damaged", "interleaved", "other"};
#define METRICS_NUM_OUTSIDE (sizeof(metrics_outside_kinds) / sizeof(metrics_outside_kinds[0]))

enum { METRICS_LOCK_READ, METRICS_LOCK_WRITE, METRICS_NUM_LOCKS };
static const char *const metrics_lock_names[METRICS_NUM_LOCKS] = {"read", "write"};

struct metrics_hist {
    _Atomic uint64_t counts[METRICS_MAX_BOUNDS + 1]; /* per bucket, the last above all */
    _Atomic uint64_t sum_ns;
};

/* One process's counts. Aligned so that two slots never share a cache line
 * (false sharing between workers on the hot path). */
struct metrics_slot {
    _Atomic uint64_t requests[METRICS_NUM_METHODS][METRICS_NUM_PATHS][METRICS_NUM_CODES];
    struct metrics_hist duration[METRICS_NUM_METHODS][METRICS_NUM_PATHS];
    struct metrics_hist lock_wait[METRICS_NUM_LOCKS];
    struct metrics_hist lock_hold[METRICS_NUM_LOCKS];
    _Atomic uint64_t lock_timeouts[METRICS_NUM_LOCKS];
    struct metrics_hist fsync;
    _Atomic uint64_t fsync_errors;
    _Atomic uint64_t appends;
    _Atomic uint64_t connections; /* a gauge: this worker's open connections */
    _Atomic uint64_t refused;
    _Atomic uint64_t outside[METRICS_NUM_OUTSIDE][2]; /* [kind][0 adopted, 1 refused] */
    /* The master's slot only. */
    _Atomic uint64_t restarts;
    _Atomic uint64_t workers_live;
} __attribute__((aligned(128)));

static struct metrics_slot *metrics_region; /* workers + 1 slots; the last is the master's */
static unsigned metrics_num_workers;
static struct metrics_slot *metrics_slot; /* this process's own slot, or NULL */

/* ---- counting: single writer per slot, so load + store, never a locked RMW ---- */

static inline void metrics_add(_Atomic uint64_t *p, uint64_t n)
{
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t metrics_get(const _Atomic uint64_t *p)
{
    return atomic_load_explicit((_Atomic uint64_t *)p, memory_order_relaxed);
}

static void metrics_hist_observe(struct metrics_hist *h, const int64_t *bounds, size_t num_bounds,
                                 int64_t ns)
{
    size_t i = 0;
    if (ns < 0)
        ns = 0;
    while (i < num_bounds && ns > bounds[i])
        i++;
    metrics_add(&h->counts[i], 1);
    metrics_add(&h->sum_ns, (uint64_t)ns);
}

static size_t metrics_code_index(int status)
{
    size_t i;
    for (i = 0; i < METRICS_NUM_CODES - 1; i++)
        if (metrics_codes[i] == status)
            break;
    return i;
}

int metrics_init(unsigned workers, char *err, size_t err_len)
{
    if (!METRICS_ENABLED)
        return 0;
    if (workers == 0 || workers > METRICS_MAX_WORKERS) {
        errno = EINVAL;
        snprintf(err, err_len, "metrics for %u workers: 1 to %d", workers, METRICS_MAX_WORKERS);
        return -1;
    }
    size_t size = sizeof(struct metrics_slot) * ((size_t)workers + 1);
    /* Anonymous and shared: inherited by every fork, zero-filled, never written
     * to disk. At 1024 workers this is about 8 MB of address space, touched
     * only where a worker counts. */
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        snprintf(err, err_len, "mmap %zu bytes for metrics: %s", size, strerror(errno));
        return -1;
    }
    metrics_region = p;
    metrics_num_workers = workers;
    metrics_slot = &metrics_region[workers]; /* the master's, until a worker picks its own */
    return 0;
}

void metrics_worker_start(unsigned index)
{
    if (metrics_region == NULL || index >= metrics_num_workers)
        return;
    metrics_slot = &metrics_region[index];
    atomic_store_explicit(&metrics_slot->connections, 0, memory_order_relaxed);
}

void metrics_count_restart(void)
{
    if (metrics_region != NULL)
        metrics_add(&metrics_region[metrics_num_workers].restarts, 1);
}

void metrics_set_workers(unsigned num_live)
{
    if (metrics_region != NULL)
        atomic_store_explicit(&metrics_region[metrics_num_workers].workers_live, num_live,
                              memory_order_relaxed);
}

void metrics_worker_gone(unsigned index)
{
    if (metrics_region != NULL && index < metrics_num_workers)
        atomic_store_explicit(&metrics_region[index].connections, 0, memory_order_relaxed);
}

void metrics_count_request(enum metrics_method method, enum metrics_path path, int status,
                           int64_t duration_ns)
{
    struct metrics_slot *s = metrics_slot;
    if (s == NULL)
        return;
    metrics_add(&s->requests[method][path][metrics_code_index(status)], 1);
    metrics_hist_observe(&s->duration[method][path], metrics_http_bounds, METRICS_HTTP_BOUNDS,
                         duration_ns);
}

static size_t metrics_outside_index(const char *what)
{
    size_t i;
    for (i = 0; i < METRICS_NUM_OUTSIDE - 1; i++)
        if (what != NULL && strcmp(what, metrics_outside_kinds[i]) == 0)
            break;
    return i;
}

void metrics_observe_store(const struct task_store_event *ev)
{
    struct metrics_slot *s = metrics_slot;
    if (s == NULL)
        return;
    int lock = ev->lock_type == F_WRLCK ? METRICS_LOCK_WRITE : METRICS_LOCK_READ;
    switch (ev->kind) {
    case TASK_STORE_EV_LOCK_GRANTED:
        metrics_hist_observe(&s->lock_wait[lock], metrics_lock_bounds, METRICS_LOCK_BOUNDS,
                             ev->duration_ns);
        break;
    case TASK_STORE_EV_LOCK_TIMEOUT:
        metrics_add(&s->lock_timeouts[lock], 1);
        break;
    case TASK_STORE_EV_UNLOCK:
        metrics_hist_observe(&s->lock_hold[lock], metrics_lock_bounds, METRICS_LOCK_BOUNDS,
                             ev->duration_ns);
        break;
    case TASK_STORE_EV_WRITE:
        metrics_add(&s->appends, 1);
        break;
    case TASK_STORE_EV_FSYNC:
        if (ev->error != 0)
            metrics_add(&s->fsync_errors, 1);
        else
            metrics_hist_observe(&s->fsync, metrics_lock_bounds, METRICS_LOCK_BOUNDS,
                                 ev->duration_ns);
        break;
    case TASK_STORE_EV_OUTSIDE:
        metrics_add(&s->outside[metrics_outside_index(ev->what)][ev->error != 0], 1);
        break;
    case TASK_STORE_EV_LOCK_WAIT:
    case TASK_STORE_EV_TAIL_READ:
        break;
    }
}

void metrics_set_connections(unsigned n)
{
    if (metrics_slot != NULL)
        atomic_store_explicit(&metrics_slot->connections, n, memory_order_relaxed);
}

void metrics_count_refused(void)
{
    if (metrics_slot != NULL)
        metrics_add(&metrics_slot->refused, 1);
}

/* ---- the text writer ---- */

static void metrics_text_put(struct metrics_text *t, const char *s, size_t len)
{
    if (t->failed)
        return;
    if (t->len + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 16384;
        while (cap < t->len + len + 1)
            cap *= 2;
        char *p = realloc(t->buf, cap);
        if (p == NULL) {
            t->failed = 1;
            return;
        }
        t->buf = p;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, len);
    t->len += len;
    t->buf[t->len] = '\0';
}

static void metrics_text_str(struct metrics_text *t, const char *s)
{
    metrics_text_put(t, s, strlen(s));
}

static void metrics_text_u64(struct metrics_text *t, uint64_t v)
{
    char num[24];
    char *end = decimal_put_u64(num, v);
    metrics_text_put(t, num, (size_t)(end - num));
}

/* Nanoseconds as decimal seconds, trailing zeros dropped: 1500 -> "0.0000015".
 * out holds at least 32 bytes; returns the length. */
static size_t metrics_format_seconds(char *out, uint64_t ns)
{
    char *p = decimal_put_u64(out, ns / 1000000000u);
    uint64_t rest = ns % 1000000000u;
    if (rest != 0) {
        *p++ = '.';
        for (int i = 8; i >= 0; i--) {
            p[i] = (char)('0' + rest % 10);
            rest /= 10;
        }
        p += 9;
        while (p[-1] == '0')
            p--;
    }
    *p = '\0';
    return (size_t)(p - out);
}

static void metrics_text_seconds(struct metrics_text *t, uint64_t ns)
{
    char num[32];
    metrics_text_put(t, num, metrics_format_seconds(num, ns));
}

/* Label values escape backslash, double quote and line feed (format 0.0.4);
 * HELP text only backslash and line feed. */
static void metrics_text_escaped(struct metrics_text *t, const char *s, int quote)
{
    const char *run = s;
    for (; *s != '\0'; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (*s == '"' && quote)
            rep = "\\\"";
        if (rep == NULL)
            continue;
        metrics_text_put(t, run, (size_t)(s - run));
        metrics_text_str(t, rep);
        run = s + 1;
    }
    metrics_text_put(t, run, (size_t)(s - run));
}

void metrics_text_family(struct metrics_text *t, const char *name, const char *type,
                         const char *help)
{
    metrics_text_str(t, "# HELP ");
    metrics_text_str(t, name);
    metrics_text_put(t, " ", 1);
    metrics_text_escaped(t, help, 0);
    metrics_text_str(t, "\n# TYPE ");
    metrics_text_str(t, name);
    metrics_text_put(t, " ", 1);
    metrics_text_str(t, type);
    metrics_text_put(t, "\n", 1);
}

/* name{a="x",b="y"[,le="..."]} without the value. */
static void metrics_text_series(struct metrics_text *t, const char *name, const char *suffix,
                                const struct metrics_label *labels, size_t num_labels,
                                const char *le)
{
    metrics_text_str(t, name);
    metrics_text_str(t, suffix);
    if (num_labels == 0 && le == NULL)
        return;
    metrics_text_put(t, "{", 1);
    for (size_t i = 0; i < num_labels; i++) {
        if (i > 0)
            metrics_text_put(t, ",", 1);
        metrics_text_str(t, labels[i].name);
        metrics_text_str(t, "=\"");
        metrics_text_escaped(t, labels[i].value, 1);
        metrics_text_put(t, "\"", 1);
    }
    if (le != NULL) {
        if (num_labels > 0)
            metrics_text_put(t, ",", 1);
        metrics_text_str(t, "le=\"");
        metrics_text_str(t, le);
        metrics_text_put(t, "\"", 1);
    }
    metrics_text_put(t, "}", 1);
}

void metrics_text_sample(struct metrics_text *t, const char *name,
                         const struct metrics_label *labels, size_t num_labels, uint64_t value)
{
    metrics_text_series(t, name, "", labels, num_labels, NULL);
    metrics_text_put(t, " ", 1);
    metrics_text_u64(t, value);
    metrics_text_put(t, "\n", 1);
}

void metrics_text_histogram(struct metrics_text *t, const char *name,
                            const struct metrics_label *labels, size_t num_labels,
                            const int64_t *bounds_ns, size_t num_bounds, const uint64_t *counts,
                            uint64_t sum_ns)
{
    uint64_t cum = 0;
    char le[32];
    for (size_t i = 0; i <= num_bounds; i++) {
        cum += counts[i];
        if (i < num_bounds)
            metrics_format_seconds(le, (uint64_t)bounds_ns[i]);
        else
            memcpy(le, "+Inf", 5);
        metrics_text_series(t, name, "_bucket", labels, num_labels, le);
        metrics_text_put(t, " ", 1);
        metrics_text_u64(t, cum);
        metrics_text_put(t, "\n", 1);
    }
    metrics_text_series(t, name, "_sum", labels, num_labels, NULL);
    metrics_text_put(t, " ", 1);
    metrics_text_seconds(t, sum_ns);
    metrics_text_put(t, "\n", 1);
    metrics_text_series(t, name, "_count", labels, num_labels, NULL);
    metrics_text_put(t, " ", 1);
    metrics_text_u64(t, cum);
    metrics_text_put(t, "\n", 1);
}

void metrics_text_free(struct metrics_text *t)
{
    free(t->buf);
    t->buf = NULL;
    t->len = t->cap = 0;
    t->failed = 0;
}

/* ---- the scrape: sum the slots ---- */

struct metrics_hist_sum {
    uint64_t counts[METRICS_MAX_BOUNDS + 1];
    uint64_t sum_ns;
    uint64_t total;
};

static void metrics_hist_add(struct metrics_hist_sum *sum, const struct metrics_hist *h)
{
    for (size_t i = 0; i <= METRICS_MAX_BOUNDS; i++) {
        uint64_t c = metrics_get(&h->counts[i]);
        sum->counts[i] += c;
        sum->total += c;
    }
    sum->sum_ns += metrics_get(&h->sum_ns);
}

/* One histogram summed over the workers' slots; field is its offset in a slot. */
static void metrics_hist_over_workers(struct metrics_hist_sum *sum, size_t offset)
{
    memset(sum, 0, sizeof(*sum));
    for (unsigned w = 0; w < metrics_num_workers; w++)
        metrics_hist_add(sum,
                         (const struct metrics_hist *)((const char *)&metrics_region[w] + offset));
}

static uint64_t metrics_over_workers(size_t offset)
{
    uint64_t v = 0;
    for (unsigned w = 0; w < metrics_num_workers; w++)
        v += metrics_get((const _Atomic uint64_t *)((const char *)&metrics_region[w] + offset));
    return v;
}

#define METRICS_OFF(field) offsetof(struct metrics_slot, field)

static void metrics_render_http(struct metrics_text *t)
{
    metrics_text_family(t, "taskserver_http_requests_total", "counter",
                        "HTTP responses by method, path and status code.");
    for (size_t m = 0; m < METRICS_NUM_METHODS; m++) {
        for (size_t p = 0; p < METRICS_NUM_PATHS; p++) {
            for (size_t c = 0; c < METRICS_NUM_CODES; c++) {
                uint64_t n = metrics_over_workers(METRICS_OFF(requests[m][p][c]));
                if (n == 0)
                    continue; /* a series appears once it has happened */
                char code[16];
                if (c < METRICS_NUM_CODES - 1)
                    snprintf(code, sizeof(code), "%d", metrics_codes[c]);
                else
                    snprintf(code, sizeof(code), "other");
                struct metrics_label l[] = {{"method", metrics_method_names[m]},
                                            {"path", metrics_path_names[p]},
                                            {"code", code}};
                metrics_text_sample(t, "taskserver_http_requests_total", l, 3, n);
            }
        }
    }
    metrics_text_family(t, "taskserver_http_request_duration_seconds", "histogram",
                        "From a request's first byte to its response handed to the kernel.");
    for (size_t m = 0; m < METRICS_NUM_METHODS; m++) {
        for (size_t p = 0; p < METRICS_NUM_PATHS; p++) {
            struct metrics_hist_sum h;
            metrics_hist_over_workers(&h, METRICS_OFF(duration[m][p]));
            if (h.total == 0)
                continue;
            struct metrics_label l[] = {{"method", metrics_method_names[m]},
                                        {"path", metrics_path_names[p]}};
            metrics_text_histogram(t, "taskserver_http_request_duration_seconds", l, 2,
                                   metrics_http_bounds, METRICS_HTTP_BOUNDS, h.counts, h.sum_ns);
        }
    }
}

static void metrics_render_store(struct metrics_text *t)
{
    static const struct {
        const char *name;
        const char *help;
        size_t offset;
    } lock_hists[] = {
        {"taskserver_lock_wait_seconds", "Waits for the tasks.json lock that ended with the lock.",
         METRICS_OFF(lock_wait)},
        {"taskserver_lock_hold_seconds", "How long the tasks.json lock was held.",
         METRICS_OFF(lock_hold)},
    };
    for (size_t k = 0; k < sizeof(lock_hists) / sizeof(lock_hists[0]); k++) {
        metrics_text_family(t, lock_hists[k].name, "histogram", lock_hists[k].help);
        for (size_t l = 0; l < METRICS_NUM_LOCKS; l++) {
            struct metrics_hist_sum h;
            metrics_hist_over_workers(&h, lock_hists[k].offset + l * sizeof(struct metrics_hist));
            struct metrics_label lab = {"lock", metrics_lock_names[l]};
            metrics_text_histogram(t, lock_hists[k].name, &lab, 1, metrics_lock_bounds,
                                   METRICS_LOCK_BOUNDS, h.counts, h.sum_ns);
        }
    }
    metrics_text_family(t, "taskserver_lock_timeouts_total", "counter",
                        "Lock waits that ran out (--lock-timeout): answered 503.");
    for (size_t l = 0; l < METRICS_NUM_LOCKS; l++) {
        struct metrics_label lab = {"lock", metrics_lock_names[l]};
        metrics_text_sample(t, "taskserver_lock_timeouts_total", &lab, 1,
                            metrics_over_workers(METRICS_OFF(lock_timeouts[l])));
    }
    metrics_text_family(t, "taskserver_appends_total", "counter",
                        "Tasks written to tasks.json by this server.");
    metrics_text_sample(t, "taskserver_appends_total", NULL, 0,
                        metrics_over_workers(METRICS_OFF(appends)));
    struct metrics_hist_sum h;
    metrics_hist_over_workers(&h, METRICS_OFF(fsync));
    metrics_text_family(t, "taskserver_fsync_seconds", "histogram",
                        "fdatasync of tasks.json before a 201 (--fsync).");
    metrics_text_histogram(t, "taskserver_fsync_seconds", NULL, 0, metrics_lock_bounds,
                           METRICS_LOCK_BOUNDS, h.counts, h.sum_ns);
    metrics_text_family(t, "taskserver_fsync_errors_total", "counter",
                        "fdatasync calls that failed (the task was not acknowledged).");
    metrics_text_sample(t, "taskserver_fsync_errors_total", NULL, 0,
                        metrics_over_workers(METRICS_OFF(fsync_errors)));
    metrics_text_family(t, "taskserver_outside_changes_total", "counter",
                        "Changes to tasks.json made by someone else, adopted or refused.");
    for (size_t k = 0; k < METRICS_NUM_OUTSIDE; k++) {
        for (int r = 0; r < 2; r++) {
            struct metrics_label l[] = {{"kind", metrics_outside_kinds[k]},
                                        {"action", r ? "refused" : "adopted"}};
            metrics_text_sample(t, "taskserver_outside_changes_total", l, 2,
                                metrics_over_workers(METRICS_OFF(outside[k][r])));
        }
    }
}

void metrics_render(struct metrics_text *t, const struct metrics_info *info)
{
    if (metrics_region == NULL)
        return;
    const struct metrics_slot *master = &metrics_region[metrics_num_workers];
    struct metrics_label build[] = {{"version", info->version},
                                    {"locking", info->locking ? "true" : "false"}};

    metrics_text_family(t, "taskserver_build_info", "gauge",
                        "Always 1; the labels say which build.");
    metrics_text_sample(t, "taskserver_build_info", build, 2, 1);
    metrics_render_http(t);
    metrics_render_store(t);
    if (info->tasks_known) {
        metrics_text_family(t, "taskserver_tasks", "gauge", "Tasks in tasks.json.");
        metrics_text_sample(t, "taskserver_tasks", NULL, 0, info->tasks);
    }
    metrics_text_family(t, "taskserver_connections", "gauge", "Open client connections.");
    metrics_text_sample(t, "taskserver_connections", NULL, 0,
                        metrics_over_workers(METRICS_OFF(connections)));
    metrics_text_family(t, "taskserver_connections_refused_total", "counter",
                        "Connections answered 503 at once: --max-connections or no descriptors.");
    metrics_text_sample(t, "taskserver_connections_refused_total", NULL, 0,
                        metrics_over_workers(METRICS_OFF(refused)));
    metrics_text_family(t, "taskserver_workers", "gauge", "Worker processes running.");
    metrics_text_sample(t, "taskserver_workers", NULL, 0, metrics_get(&master->workers_live));
    metrics_text_family(t, "taskserver_worker_restarts_total", "counter",
                        "Workers that died and were replaced.");
    metrics_text_sample(t, "taskserver_worker_restarts_total", NULL, 0,
                        metrics_get(&master->restarts));
}
