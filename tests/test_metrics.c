/* test_metrics.c - the exposition writer (escaping, histograms) and the shared slots across real
 * processes. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client_metrics.h"
#include "metrics.h"

/* ---- label values and HELP text ---- */

static const struct {
    const char *value;
    const char *want; /* the whole sample line */
    const char *what;
} label_cases[] = {
    {"plain", "m{l=\"plain\"} 7\n", "nothing to escape"},
    {"", "m{l=\"\"} 7\n", "empty value"},
    {"a\\b", "m{l=\"a\\\\b\"} 7\n", "backslash doubled"},
    {"say \"hi\"", "m{l=\"say \\\"hi\\\"\"} 7\n", "double quotes escaped"},
    {"two\nlines", "m{l=\"two\\nlines\"} 7\n", "line feed as \\n"},
    {"\\\"\n", "m{l=\"\\\\\\\"\\n\"} 7\n", "all three in a row"},
    {"/tareas/{id}", "m{l=\"/tareas/{id}\"} 7\n", "braces and slashes pass"},
    {"ñandú", "m{l=\"ñandú\"} 7\n", "UTF-8 passes"},
};

START_TEST(test_label_escaping)
{
    struct metrics_text t = {0};
    struct metrics_label l = {"l", label_cases[_i].value};
    metrics_text_sample(&t, "m", &l, 1, 7);
    ck_assert_msg(!t.failed && t.buf != NULL && strcmp(t.buf, label_cases[_i].want) == 0,
                  "%s: expected [%s], got [%s]", label_cases[_i].what, label_cases[_i].want,
                  t.buf ? t.buf : "(null)");
    metrics_text_free(&t);
}
END_TEST

START_TEST(test_samples)
{
    struct metrics_text t = {0};
    struct metrics_label two[] = {{"method", "GET"}, {"code", "200"}};
    metrics_text_sample(&t, "plain_total", NULL, 0, 0);
    metrics_text_sample(&t, "two_total", two, 2, 18446744073709551615ull);
    const char *want = "plain_total 0\n"
                       "two_total{method=\"GET\",code=\"200\"} 18446744073709551615\n";
    ck_assert_msg(strcmp(t.buf, want) == 0, "expected [%s], got [%s]", want, t.buf);
    metrics_text_free(&t);
}
END_TEST

START_TEST(test_family_help_escaping)
{
    struct metrics_text t = {0};
    metrics_text_family(&t, "x_total", "counter", "back\\slash, \"quotes\" stay,\nnew line");
    const char *want = "# HELP x_total back\\\\slash, \"quotes\" stay,\\nnew line\n"
                       "# TYPE x_total counter\n";
    ck_assert_msg(strcmp(t.buf, want) == 0, "expected [%s], got [%s]", want, t.buf);
    metrics_text_free(&t);
}
END_TEST

/* ---- histograms ---- */

static const int64_t bounds3[] = {1000, 1500, 2500000000};

static const struct {
    const char *const *labels; /* name, value pairs, NULL-terminated */
    uint64_t counts[4];
    uint64_t sum_ns;
    const char *want;
    const char *what;
} hist_cases[] = {
    {NULL,
     {2, 0, 3, 1},
     1234567,
     "h_bucket{le=\"0.000001\"} 2\n"
     "h_bucket{le=\"0.0000015\"} 2\n"
     "h_bucket{le=\"2.5\"} 5\n"
     "h_bucket{le=\"+Inf\"} 6\n"
     "h_sum 0.001234567\n"
     "h_count 6\n",
     "no labels: cumulative, +Inf last, count = +Inf"},
    {(const char *const[]){"lock", "write", NULL},
     {0, 0, 0, 0},
     0,
     "h_bucket{lock=\"write\",le=\"0.000001\"} 0\n"
     "h_bucket{lock=\"write\",le=\"0.0000015\"} 0\n"
     "h_bucket{lock=\"write\",le=\"2.5\"} 0\n"
     "h_bucket{lock=\"write\",le=\"+Inf\"} 0\n"
     "h_sum{lock=\"write\"} 0\n"
     "h_count{lock=\"write\"} 0\n",
     "empty histogram with a label: le comes last"},
    {(const char *const[]){"method", "POST", "path", "/tareas", NULL},
     {0, 5, 0, 0},
     3000000000,
     "h_bucket{method=\"POST\",path=\"/tareas\",le=\"0.000001\"} 0\n"
     "h_bucket{method=\"POST\",path=\"/tareas\",le=\"0.0000015\"} 5\n"
     "h_bucket{method=\"POST\",path=\"/tareas\",le=\"2.5\"} 5\n"
     "h_bucket{method=\"POST\",path=\"/tareas\",le=\"+Inf\"} 5\n"
     "h_sum{method=\"POST\",path=\"/tareas\"} 3\n"
     "h_count{method=\"POST\",path=\"/tareas\"} 5\n",
     "two labels, a whole-second sum"},
    {NULL,
     {0, 0, 0, 4},
     40000000001,
     "h_bucket{le=\"0.000001\"} 0\n"
     "h_bucket{le=\"0.0000015\"} 0\n"
     "h_bucket{le=\"2.5\"} 0\n"
     "h_bucket{le=\"+Inf\"} 4\n"
     "h_sum 40.000000001\n"
     "h_count 4\n",
     "everything above the last bound"},
};

START_TEST(test_histogram)
{
    struct metrics_label labels[4];
    size_t n = 0;
    const char *const *l = hist_cases[_i].labels;
    for (; l != NULL && l[2 * n] != NULL; n++)
        labels[n] = (struct metrics_label){l[2 * n], l[2 * n + 1]};
    struct metrics_text t = {0};
    metrics_text_histogram(&t, "h", labels, n, bounds3, 3, hist_cases[_i].counts,
                           hist_cases[_i].sum_ns);
    ck_assert_msg(!t.failed && strcmp(t.buf, hist_cases[_i].want) == 0,
                  "%s:\nexpected:\n%sgot:\n%s", hist_cases[_i].what, hist_cases[_i].want, t.buf);
    metrics_text_free(&t);
}
END_TEST

/* Appending grows the buffer past its first size; the text stays whole. */
START_TEST(test_text_grows)
{
    struct metrics_text t = {0};
    for (int i = 0; i < 5000; i++)
        metrics_text_sample(&t, "grow_total", NULL, 0, (uint64_t)i);
    ck_assert(!t.failed);
    ck_assert_uint_gt(t.cap, 16384);
    ck_assert_ptr_nonnull(strstr(t.buf, "grow_total 0\ngrow_total 1\n"));
    ck_assert_ptr_nonnull(strstr(t.buf, "grow_total 4999\n"));
    ck_assert_uint_eq(strlen(t.buf), t.len);
    metrics_text_free(&t);
}
END_TEST

/* ---- the shared slots, across processes ---- */

/* The value of the line that starts with series followed by a space, or -1. */
static long long value_of(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return atoll(p + n + 1);
    }
    return -1;
}

static void render(struct metrics_text *t)
{
    struct metrics_info info = {.tasks_known = 1, .tasks = 42, .version = "9.9", .locking = 1};
    t->len = 0;
    metrics_render(t, &info);
    ck_assert(!t->failed);
}

/* Runs fn in a child that took slot index, and waits for it. */
static void in_worker(unsigned index, void (*fn)(unsigned), unsigned arg)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        metrics_worker_start(index);
        fn(arg);
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void post_n(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        metrics_count_request(METRICS_METHOD_POST, METRICS_PATH_TASKS, 201, 30000);
    metrics_count_request(METRICS_METHOD_POST, METRICS_PATH_TASKS, 400, 5000);
    metrics_count_request(METRICS_METHOD_OTHER, METRICS_PATH_OTHER, 999, 1);
    metrics_set_connections(2);
}

static void lock_events(unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        struct task_store_event ev = {.kind = TASK_STORE_EV_LOCK_GRANTED, .lock_type = F_WRLCK};
        ev.duration_ns = 3000; /* 3 us: the 5 us bucket */
        metrics_observe_store(&ev);
        ev.kind = TASK_STORE_EV_UNLOCK;
        ev.duration_ns = 2000000; /* 2 ms */
        metrics_observe_store(&ev);
        ev.kind = TASK_STORE_EV_WRITE;
        metrics_observe_store(&ev);
    }
    struct task_store_event t = {.kind = TASK_STORE_EV_LOCK_TIMEOUT, .lock_type = F_RDLCK};
    metrics_observe_store(&t);
    struct task_store_event o = {.kind = TASK_STORE_EV_OUTSIDE, .what = "replaced"};
    metrics_observe_store(&o);
    o.what = "something new";
    o.error = EBADMSG;
    metrics_observe_store(&o);
}

START_TEST(test_slots_sum_over_processes)
{
    char err[256];
    struct metrics_text t = {0};
    if (!METRICS_ENABLED) {
        ck_assert_int_eq(metrics_init(3, err, sizeof(err)), 0);
        render(&t);
        ck_assert_uint_eq(t.len, 0); /* nothing mapped, nothing counted */
        metrics_text_free(&t);
        return;
    }
    ck_assert_int_eq(metrics_init(0, err, sizeof(err)), -1);
    ck_assert_int_eq(metrics_init(1025, err, sizeof(err)), -1);
    ck_assert_msg(metrics_init(3, err, sizeof(err)) == 0, "%s", err);
    in_worker(0, post_n, 100);
    in_worker(1, post_n, 50);
    in_worker(2, lock_events, 7);
    render(&t);
    const char *ok =
        "taskserver_http_requests_total{method=\"POST\",path=\"/tareas\",code=\"201\"}";
    ck_assert_int_eq(value_of(t.buf, ok), 150);
    ck_assert_int_eq(
        value_of(t.buf,
                 "taskserver_http_requests_total{method=\"POST\",path=\"/tareas\",code=\"400\"}"),
        2);
    ck_assert_int_eq(
        value_of(t.buf,
                 "taskserver_http_requests_total{method=\"other\",path=\"other\",code=\"other\"}"),
        2);
    ck_assert_int_eq(value_of(t.buf, "taskserver_http_request_duration_seconds_count{method="
                                     "\"POST\",path=\"/tareas\"}"),
                     152);
    /* 30 us: in the 50 us bucket, as is 5 us. */
    ck_assert_int_eq(value_of(t.buf, "taskserver_http_request_duration_seconds_bucket{method="
                                     "\"POST\",path=\"/tareas\",le=\"0.00005\"}"),
                     152);
    ck_assert_int_eq(value_of(t.buf, "taskserver_connections"), 4);
    ck_assert_int_eq(value_of(t.buf, "taskserver_tasks"), 42);
    ck_assert_int_eq(value_of(t.buf, "taskserver_build_info{version=\"9.9\",locking=\"true\"}"), 1);
    ck_assert_int_eq(value_of(t.buf, "taskserver_appends_total"), 7);
    ck_assert_int_eq(
        value_of(t.buf, "taskserver_lock_wait_seconds_bucket{lock=\"write\",le=\"0.0000025\"}"), 0);
    ck_assert_int_eq(
        value_of(t.buf, "taskserver_lock_wait_seconds_bucket{lock=\"write\",le=\"0.000005\"}"), 7);
    ck_assert_int_eq(value_of(t.buf, "taskserver_lock_wait_seconds_count{lock=\"write\"}"), 7);
    ck_assert_int_eq(value_of(t.buf, "taskserver_lock_hold_seconds_bucket{lock=\"write\",le="
                                     "\"0.001\"}"),
                     0);
    ck_assert_int_eq(value_of(t.buf, "taskserver_lock_hold_seconds_bucket{lock=\"write\",le="
                                     "\"0.0025\"}"),
                     7);
    ck_assert_int_eq(value_of(t.buf, "taskserver_lock_timeouts_total{lock=\"read\"}"), 1);
    ck_assert_int_eq(
        value_of(t.buf, "taskserver_outside_changes_total{kind=\"replaced\",action=\"adopted\"}"),
        1);
    ck_assert_int_eq(
        value_of(t.buf, "taskserver_outside_changes_total{kind=\"other\",action=\"refused\"}"), 1);

    /* A replacement worker in slot 1 continues its counts; the master counts
     * the restart; the connections of the dead one are gone. */
    metrics_worker_gone(1);
    metrics_count_restart();
    metrics_set_workers(3);
    in_worker(1, post_n, 10);
    render(&t);
    ck_assert_int_eq(value_of(t.buf, ok), 160);
    ck_assert_int_eq(value_of(t.buf, "taskserver_worker_restarts_total"), 1);
    ck_assert_int_eq(value_of(t.buf, "taskserver_workers"), 3);
    ck_assert_int_eq(value_of(t.buf, "taskserver_connections"), 4);
    metrics_worker_gone(0);
    render(&t);
    ck_assert_int_eq(value_of(t.buf, "taskserver_connections"), 2);
    metrics_text_free(&t);
}
END_TEST

/* ---- clientemulator --metrics: parse, difference, quantile estimates ---- */

static const char scrape_before[] =
    "# TYPE taskserver_lock_wait_seconds histogram\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"read\",le=\"0.000001\"} 1\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"read\",le=\"0.000002\"} 2\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"read\",le=\"0.000004\"} 2\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"read\",le=\"+Inf\"} 2\n"
    "taskserver_lock_wait_seconds_sum{lock=\"read\"} 0.000003\n"
    "taskserver_lock_wait_seconds_count{lock=\"read\"} 2\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"write\",le=\"0.000001\"} 0\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"write\",le=\"0.000002\"} 0\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"write\",le=\"0.000004\"} 1\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"write\",le=\"+Inf\"} 1\n"
    "taskserver_lock_hold_seconds_bucket{lock=\"write\",le=\"+Inf\"} 99\n";

/* 2 more waits in (1, 2] us... see the cases: after - before is the run. */
static const char scrape_after[] =
    "taskserver_lock_wait_seconds_bucket{lock=\"read\",le=\"0.000001\"} 1\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"read\",le=\"0.000002\"} 12\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"read\",le=\"0.000004\"} 12\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"read\",le=\"+Inf\"} 12\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"write\",le=\"0.000001\"} 0\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"write\",le=\"0.000002\"} 0\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"write\",le=\"0.000004\"} 1\n"
    "taskserver_lock_wait_seconds_bucket{lock=\"write\",le=\"+Inf\"} 2\n";

START_TEST(test_client_parse_and_diff)
{
    struct client_metrics_hist b, a, run;
    ck_assert_int_eq(client_metrics_parse(scrape_before, strlen(scrape_before),
                                          "taskserver_lock_wait_seconds", &b),
                     0);
    ck_assert_uint_eq(b.num_buckets, 4);
    ck_assert_uint_eq(b.cum[0], 1); /* read 1 + write 0 */
    ck_assert_uint_eq(b.cum[2], 3);
    ck_assert_uint_eq(b.count, 3);
    ck_assert_int_eq(client_metrics_parse(scrape_after, strlen(scrape_after),
                                          "taskserver_lock_wait_seconds", &a),
                     0);
    client_metrics_diff(&b, &a, &run);
    ck_assert_uint_eq(run.count, 11); /* 10 reads in (1, 2] us, 1 write above 4 us */
    ck_assert_uint_eq(run.cum[0], 0);
    ck_assert_uint_eq(run.cum[1], 10);
    ck_assert_uint_eq(run.cum[2], 10);
    /* p50: rank 5.5 of 10 in (1, 2] us -> 1.55 us; p99: above the last bound -> 4 us. */
    ck_assert_double_eq_tol(client_metrics_quantile(&run, 0.5), 1.55e-6, 1e-12);
    ck_assert_double_eq_tol(client_metrics_quantile(&run, 0.99), 4e-6, 1e-12);
    /* Not there, or not a histogram. */
    ck_assert_int_eq(client_metrics_parse(scrape_before, strlen(scrape_before), "nope", &a), -1);
    ck_assert_int_eq(client_metrics_parse("x_bucket{le=\"1\"} 3\n", 16, "x", &a), -1);
}
END_TEST

static const struct {
    uint64_t cum[4]; /* bounds 1, 2, 4 s and +Inf */
    double q;
    double want;
    const char *what;
} quantile_cases[] = {
    {{0, 10, 10, 10}, 0.5, 1.5, "middle of the (1, 2] bucket"},
    {{10, 10, 10, 10}, 0.5, 0.5, "first bucket: from 0"},
    {{0, 0, 0, 5}, 0.5, 4, "all above the bounds: the highest bound"},
    {{0, 0, 0, 0}, 0.99, 0, "no waits: 0"},
    {{50, 99, 100, 100}, 0.99, 2, "p99 at the top of (1, 2]"},
    {{25, 50, 75, 100}, 0.75, 4, "p75 at the top of (2, 4]"},
};

START_TEST(test_client_quantile)
{
    struct client_metrics_hist h = {.num_buckets = 4, .le = {1, 2, 4, INFINITY}};
    memcpy(h.cum, quantile_cases[_i].cum, sizeof(quantile_cases[_i].cum));
    h.count = h.cum[3];
    double got = client_metrics_quantile(&h, quantile_cases[_i].q);
    ck_assert_msg(got > quantile_cases[_i].want - 1e-9 && got < quantile_cases[_i].want + 1e-9,
                  "%s: expected %g, got %g", quantile_cases[_i].what, quantile_cases[_i].want, got);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_loop_test(tc, test_label_escaping, 0, sizeof(label_cases) / sizeof(label_cases[0]));
    tcase_add_test(tc, test_samples);
    tcase_add_test(tc, test_family_help_escaping);
    tcase_add_loop_test(tc, test_histogram, 0, sizeof(hist_cases) / sizeof(hist_cases[0]));
    tcase_add_test(tc, test_text_grows);
    tcase_add_test(tc, test_slots_sum_over_processes);
    tcase_add_test(tc, test_client_parse_and_diff);
    tcase_add_loop_test(tc, test_client_quantile, 0,
                        sizeof(quantile_cases) / sizeof(quantile_cases[0]));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
