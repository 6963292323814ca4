/* metrics.h - the server's Prometheus counters: per-worker slots in shared memory, summed on
 * scrape.
 *
 * Calling sequence:
 *
 *   master, before the first fork:
 *       metrics_init(workers, err, err_len);   maps workers + 1 slots, MAP_SHARED
 *       metrics_set_workers(num_live);          the master's own slot, on every change
 *       metrics_count_restart();                a worker was replaced
 *   a worker, first thing after fork:
 *       metrics_worker_start(index);            its slot (the same index as the worker it
 *                                               replaces: the counters carry on)
 *   its hot path (no lock, no syscall; each process writes only its own slot):
 *       metrics_count_request(method, path, status, duration_ns);
 *       metrics_observe_store(ev);              from the worker's store observer
 *       metrics_set_connections(n);  metrics_count_refused();
 *   GET /metrics, in whichever worker answers:
 *       struct metrics_text t = {0};
 *       metrics_render(&t, &info);              sums every slot; t.buf, t.len
 *       ... send ...; metrics_text_free(&t)     (or keep t for the next scrape)
 *
 * The region is inherited across fork() and never unmapped: a worker that dies
 * leaves its counts in its slot and its replacement continues them. Every
 * value is a 64-bit counter read and written with relaxed atomics: a scrape
 * never sees a torn value, only a moment that differs a little from slot to
 * slot. A histogram keeps one count per bucket (not cumulative) and its sum;
 * its _count is the sum of the buckets, so a scrape is always consistent
 * with itself even when a worker is killed between two increments.
 *
 * A build with -Dmetrics=false (METRICS_ENABLED 0) counts nothing: callers
 * test METRICS_ENABLED so that even the clock is not read; metrics_init() maps
 * nothing and the counting calls return at once.
 *
 * The text writer (metrics_text_*) is the exposition format 0.0.4 and is used
 * by metrics_render() and the tests. Errors: metrics_init() returns -1 with
 * errno and err; the writer marks t->failed on ENOMEM and the caller answers 500.
 */
#ifndef TASKSERVER_METRICS_H
#define TASKSERVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "build_config.h"
#include "task_store.h"

#define METRICS_ENABLED TASKSERVER_METRICS

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Label values of taskserver_http_requests_total. 0 is "other" in both, so a
 * zeroed route (a request whose head never parsed) counts as other/other. */
enum metrics_method {
    METRICS_METHOD_OTHER,
    METRICS_METHOD_GET,
    METRICS_METHOD_HEAD,
    METRICS_METHOD_POST,
    METRICS_NUM_METHODS
};

enum metrics_path {
    METRICS_PATH_OTHER,
    METRICS_PATH_TASKS,   /* /tareas */
    METRICS_PATH_TASK,    /* /tareas/{id} */
    METRICS_PATH_HEALTH,  /* /health */
    METRICS_PATH_METRICS, /* /metrics */
    METRICS_NUM_PATHS
};

/* What metrics_render() reads outside the slots. */
struct metrics_info {
    int tasks_known; /* 0: the count failed, taskserver_tasks is left out */
    uint64_t tasks;  /* task_store_count() at scrape time */
    const char *version;
    int locking;
};

/* The exposition text, grown as needed. */
struct metrics_text {
    char *buf;
    size_t len;
    size_t cap;
    int failed; /* out of memory: the text is incomplete */
};

/* Maps the region for workers (1..1024) worker slots and the master's. In
 * the master, before fork. Returns 0, or -1 with errno and err. A build
 * without metrics maps nothing and returns 0. */
int metrics_init(unsigned workers, char *err, size_t err_len);

/* In a worker after fork: index is its slot, 0..workers-1. The connection
 * gauge starts over (the old worker's connections died with it). */
void metrics_worker_start(unsigned index);

/* The master: a worker replaced; the number of live workers. */
void metrics_count_restart(void);
void metrics_set_workers(unsigned num_live);
/* The master: a worker is gone; its connections went with it. */
void metrics_worker_gone(unsigned index);

/* One response. status is the HTTP status; duration from the request's first
 * byte to its response handed to the kernel. */
void metrics_count_request(enum metrics_method method, enum metrics_path path, int status,
                           int64_t duration_ns);

/* A store event (lock wait, hold, timeout, append, fsync, outside change). */
void metrics_observe_store(const struct task_store_event *ev);

/* Open connections of this worker; a connection refused at accept. */
void metrics_set_connections(unsigned n);
void metrics_count_refused(void);

/* Writes the whole exposition into t (appending). */
void metrics_render(struct metrics_text *t, const struct metrics_info *info);

/* ---- the text writer ---- */

/* A label: name="value". */
struct metrics_label {
    const char *name;
    const char *value;
};

/* # HELP name help, # TYPE name type ("counter", "gauge", "histogram"). */
void metrics_text_family(struct metrics_text *t, const char *name, const char *type,
                         const char *help);

/* name{labels} value, value an integer. */
void metrics_text_sample(struct metrics_text *t, const char *name,
                         const struct metrics_label *labels, size_t num_labels, uint64_t value);

/* A histogram's series: name_bucket{labels,le="..."} cumulative, ending in
 * le="+Inf", then name_sum (seconds, from sum_ns) and name_count. counts has
 * num_bounds + 1 entries (the last one: above every bound), not cumulative;
 * bounds_ns are increasing upper bounds in nanoseconds. */
void metrics_text_histogram(struct metrics_text *t, const char *name,
                            const struct metrics_label *labels, size_t num_labels,
                            const int64_t *bounds_ns, size_t num_bounds, const uint64_t *counts,
                            uint64_t sum_ns);

void metrics_text_free(struct metrics_text *t);

#endif
