/* bench_metrics.c - what metrics counting adds to one POST /tareas, in nanoseconds, without the
 * noise of HTTP.
 *
 *   bench_metrics [ITERATIONS]      (default 2000000)
 *
 * Does, ITERATIONS times, the work a metrics build adds to a POST at most: one
 * clock read for the request's start (the connection reads it only when the
 * loop turn has no reading yet, so under load less than once per request; the
 * end reuses the reading taken for the deadlines), the five the store makes
 * only for its observer (lock asked, granted, released, tail read, record
 * written), the observer calls for those events and the request count, and
 * prints the time per POST. bench/metrics.sh compares it with the CPU time
 * of a whole POST measured in the same run. A build with -Dmetrics=false has
 * nothing to measure and says so.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "metrics.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    char err[256];
    if (!METRICS_ENABLED) {
        printf("bench_metrics: built with -Dmetrics=false: nothing is counted\n");
        return 0;
    }
    if (n < 1 || metrics_init(1, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_metrics: %s\n", n < 1 ? "ITERATIONS must be >= 1" : err);
        return 2;
    }
    metrics_worker_start(0);
    /* The observer's indirect call, as the store makes it. */
    void (*volatile observe)(const struct task_store_event *) = metrics_observe_store;
    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        int64_t start = now_ns(); /* conn: the first byte, when the turn has no reading */
        struct task_store_event ev = {.kind = TASK_STORE_EV_LOCK_WAIT, .lock_type = F_WRLCK};
        ev.t_ns = now_ns();
        observe(&ev);
        ev.kind = TASK_STORE_EV_LOCK_GRANTED;
        int64_t granted = now_ns();
        ev.duration_ns = granted - ev.t_ns;
        ev.t_ns = granted;
        observe(&ev);
        ev.kind = TASK_STORE_EV_TAIL_READ;
        ev.t_ns = now_ns();
        observe(&ev);
        ev.kind = TASK_STORE_EV_WRITE;
        ev.t_ns = now_ns();
        observe(&ev);
        ev.kind = TASK_STORE_EV_UNLOCK;
        ev.t_ns = now_ns();
        ev.duration_ns = ev.t_ns - granted;
        observe(&ev);
        /* The end: the store's last reading stands in for conn's deadline reading. */
        metrics_count_request(METRICS_METHOD_POST, METRICS_PATH_TASKS, 201, ev.t_ns - start);
    }
    int64_t t1 = now_ns();
    printf("bench_metrics: %.1f ns of metrics work per POST (%ld iterations)\n",
           (double)(t1 - t0) / (double)n, n);
    return 0;
}
