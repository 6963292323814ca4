/* test_api_faults.c - the API when the store fails under it (tests/shim_fault.c linked in): a
 * file that cannot be opened and then can, failed writes, syncs and reads, each mapped to its
 * status, body and Retry-After; /health and /metrics while the file is unusable; batches. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "log.h"
#include "shim_fault.h"
#include "task_store.h"
#include "version.h"
#include "test_tmp.h"

static char dir[256];
static char path[300];
static struct config cfg;
static struct api *api;

static const char *no_env(const char *name)
{
    (void)name;
    return NULL;
}

static void setup(void)
{
    char *argv[] = {"test_api_faults", NULL};
    shim_fault_set(NULL);
    ck_assert_int_eq(config_parse(&cfg, 1, argv, no_env), 0);
    test_tmp_dir(dir, sizeof(dir), "api");
    snprintf(path, sizeof(path), "%s/tasks.json", dir);
    snprintf(cfg.file, sizeof(cfg.file), "%s", path);
    char err[512];
    struct task_store_report rep;
    ck_assert_msg(task_store_check(path, TASK_STORE_REPAIR, &rep, err, sizeof(err)) == 0, "%s",
                  err);
    cfg.workers = 2;
    cfg.quiet = 1;
    log_set_quiet(1);
    ck_assert_msg(metrics_init(cfg.workers, err, sizeof(err)) == 0, "%s", err);
    api = NULL;
}

static void teardown(void)
{
    shim_fault_set(NULL);
    api_free(api);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static void open_api(int fsync)
{
    struct task_store_options opts = {
        .lock_timeout_ms = 5000, .crash_after_bytes = -1, .fsync = fsync, .quiet = 1};
    api = api_create(&cfg, &opts);
    ck_assert_ptr_nonnull(api);
}

static struct api_response handle(const char *method, const char *target, const char *body)
{
    struct api_route route;
    struct api_response resp;
    api_route(method, strlen(method), target, strlen(target), &route);
    api_handle(api, &route, body, body != NULL ? strlen(body) : 0, &resp);
    if (resp.stream != NULL)
        api_list_done(api, resp.stream);
    return resp;
}

static bool body_has(const struct api_response *r, const char *needle)
{
    return r->body != NULL && memmem(r->body, r->body_len, needle, strlen(needle)) != NULL;
}

#define assert_answer(r, want_status, needle)                                                      \
    do {                                                                                           \
        ck_assert_msg((r).status == (want_status) && body_has(&(r), (needle)),                     \
                      "expected %d with %s, got %d: %.*s", (want_status), (needle), (r).status,    \
                      (int)(r).body_len, (r).body != NULL ? (r).body : "");                        \
    } while (0)

#define assert_retry_after(r) ck_assert_ptr_nonnull(strstr((r).headers, "Retry-After: 1\r\n"))

static const char task_body[] = "{\"titulo\":\"t\",\"cliente\":\"c\"}";

/* The file cannot be opened: every task endpoint answers 503 with the reason and Retry-After,
 * /health says "unavailable", /metrics still answers (without the count); once the file can
 * be opened again (at most twice a second), everything works and the api says so. */
START_TEST(test_no_file_then_usable)
{
    ck_assert_int_eq(shim_fault_set("open=EACCES,path=tasks.json"), 0);
    open_api(0);
    ck_assert_uint_ge(shim_fault_hits(), 1);
    ck_assert_ptr_null(api_store(api));
    ck_assert_int_ne(api_no_file_since(api), 0);

    const char *want = "tasks.json cannot be used: ";
    struct api_response r = handle("POST", "/tareas", task_body);
    assert_answer(r, 503, want);
    ck_assert_msg(body_has(&r, "Permission denied"), "%.*s", (int)r.body_len, r.body);
    assert_retry_after(r);
    r = handle("GET", "/tareas", NULL);
    assert_answer(r, 503, want);
    assert_retry_after(r);
    ck_assert_int_eq(r.file_fd, -1);
    r = handle("GET", "/tareas/1", NULL);
    assert_answer(r, 503, want);
    r = handle("GET", "/health", NULL);
    assert_answer(r, 503, "{\"status\":\"unavailable\",\"error\":");
    ck_assert_msg(!body_has(&r, "\"tasks\":"), "%.*s", (int)r.body_len, r.body);
    assert_retry_after(r);
    /* Asked while the store is not open: the count is left out, nothing crashes. */
    r = handle("GET", "/metrics", NULL);
    if (METRICS_ENABLED) {
        ck_assert_int_eq(r.status, 200);
        ck_assert_msg(body_has(&r, "taskserver_http_requests_total"), "%.*s", (int)r.body_len,
                      r.body);
        ck_assert_msg(!body_has(&r, "taskserver_tasks "), "%.*s", (int)r.body_len, r.body);
    }

    /* Usable again: the next attempt is at most 500 ms away. Bounded: 3 s. */
    shim_fault_set(NULL);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        r = handle("GET", "/health", NULL);
        if (r.status == 200)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        ck_assert_msg(now.tv_sec - start.tv_sec < 3, "/health still %d after 3 s", r.status);
        usleep(20 * 1000);
    }
    ck_assert_ptr_nonnull(api_store(api));
    ck_assert_int_eq(api_no_file_since(api), 0);
    r = handle("POST", "/tareas", task_body);
    assert_answer(r, 201, "\"id\":1");
}
END_TEST

/* The path stops naming a usable file while the store is open: api_check_file() notices it
 * without a request, and notices again when it is back. */
START_TEST(test_check_file)
{
    open_api(0);
    ck_assert_ptr_nonnull(api_store(api));
    api_check_file(api);
    ck_assert_int_eq(api_no_file_since(api), 0);
    ck_assert_int_eq(shim_fault_set("stat=EACCES,path=tasks.json"), 0);
    /* The store follows the path at most every so often: bounded, 3 s. */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (api_no_file_since(api) == 0) {
        api_check_file(api);
        clock_gettime(CLOCK_MONOTONIC, &now);
        ck_assert_msg(now.tv_sec - start.tv_sec < 3, "api_check_file never saw the stat fail");
        usleep(20 * 1000);
    }
    ck_assert_uint_ge(shim_fault_hits(), 1);
    struct api_response r = handle("GET", "/health", NULL);
    assert_answer(r, 503, "{\"status\":\"unavailable\",\"error\":");
    ck_assert_msg(body_has(&r, "Permission denied"), "%.*s", (int)r.body_len, r.body);
    shim_fault_set(NULL);
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (api_no_file_since(api) != 0) {
        api_check_file(api);
        clock_gettime(CLOCK_MONOTONIC, &now);
        ck_assert_msg(now.tv_sec - start.tv_sec < 3, "api_check_file never saw the file back");
        usleep(20 * 1000);
    }
    r = handle("GET", "/health", NULL);
    assert_answer(r, 200, "\"tasks\":0");
}
END_TEST

/* A store call that fails, mapped to its answer (api_store_error): the table of statuses. */
static const struct {
    const char *desc;
    int fsync;
    const char *rule; /* armed after one task was stored */
    const char *method, *target, *body;
    int status;
    const char *needle;
    const char *health; /* /health afterwards (NULL: not asked) */
} store_errors[] = {
    {"a full disk: 507", 0, "pwrite=ENOSPC,path=tasks.json", "POST", "/tareas", task_body, 507,
     "no space left to store the task", "\"status\":\"ok\""},
    {"a failed fdatasync: 500, and /health says failed", 1, "fdatasync=EIO,path=tasks.json", "POST",
     "/tareas", task_body, 500, "could not be made durable", "\"status\":\"failed\""},
    {"a write that fails otherwise: 500", 0, "pwrite=EIO,path=tasks.json", "POST", "/tareas",
     task_body, 500, "internal error storing or reading tasks", NULL},
    {"a lock that is refused: 500", 0, "fcntl=ENOLCK,lock", "POST", "/tareas", task_body, 500,
     "internal error storing or reading tasks", NULL},
    {"a file that cannot be read for a task: 500", 0, "pread=EIO,path=tasks.json", "GET",
     "/tareas/1", NULL, 500, "internal error storing or reading tasks", "\"status\":\"error\""},
    {"a file that cannot be read for the list: 500", 0, "pread=EIO,path=tasks.json", "GET",
     "/tareas", NULL, 500, "internal error storing or reading tasks", NULL},
    {"a path that cannot be followed: 503", 0, "stat=EACCES,path=tasks.json", "POST", "/tareas",
     task_body, 503, "tasks.json cannot be used: ", "\"status\":\"unavailable\""},
};

START_TEST(test_store_error)
{
    if (strstr(store_errors[_i].rule, ",lock") != NULL && !version_locking())
        return; /* no locks to refuse in a -Dlocking=false build */
    open_api(store_errors[_i].fsync);
    struct api_response r = handle("POST", "/tareas", task_body);
    assert_answer(r, 201, "\"id\":1");
    ck_assert_int_eq(shim_fault_set(store_errors[_i].rule), 0);
    /* The store follows the path at most every so often (stat rules): bounded, 3 s. */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        r = handle(store_errors[_i].method, store_errors[_i].target, store_errors[_i].body);
        if (r.status == store_errors[_i].status || strncmp(store_errors[_i].rule, "stat", 4) != 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        ck_assert_msg(now.tv_sec - start.tv_sec < 3, "%s: still %d", store_errors[_i].desc,
                      r.status);
        usleep(20 * 1000);
    }
    ck_assert_msg(shim_fault_hits() >= 1, "%s: the fault never struck", store_errors[_i].desc);
    ck_assert_msg(r.status == store_errors[_i].status && body_has(&r, store_errors[_i].needle),
                  "%s: expected %d with %s, got %d: %.*s", store_errors[_i].desc,
                  store_errors[_i].status, store_errors[_i].needle, r.status, (int)r.body_len,
                  r.body != NULL ? r.body : "");
    ck_assert_int_eq(r.file_fd, -1);
    if (r.status == 503)
        assert_retry_after(r);
    if (store_errors[_i].health != NULL) {
        r = handle("GET", "/health", NULL);
        ck_assert_msg(body_has(&r, store_errors[_i].health), "%s: /health %d %.*s",
                      store_errors[_i].desc, r.status, (int)r.body_len, r.body);
        ck_assert_int_eq(r.status, strstr(store_errors[_i].health, "ok") != NULL ? 200 : 503);
    }
}
END_TEST

/* /metrics while the count fails: still 200, the count left out. */
START_TEST(test_metrics_count_fails)
{
    if (!METRICS_ENABLED)
        return; /* /metrics is 404 in a -Dmetrics=false build (test_api) */
    open_api(0);
    struct api_response r = handle("POST", "/tareas", task_body);
    assert_answer(r, 201, "\"id\":1");
    r = handle("GET", "/metrics", NULL);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(body_has(&r, "taskserver_tasks 1"), "%.*s", (int)r.body_len, r.body);
    ck_assert_int_eq(shim_fault_set("pread=EIO,path=tasks.json"), 0);
    r = handle("GET", "/metrics", NULL);
    ck_assert_uint_ge(shim_fault_hits(), 1);
    ck_assert_int_eq(r.status, 200);
    ck_assert_msg(!body_has(&r, "taskserver_tasks "), "%.*s", (int)r.body_len, r.body);
}
END_TEST

/* Two POSTs queued, one store call: both answered in order; and an error without a message. */
START_TEST(test_batch_and_plain_error)
{
    open_api(0);
    struct api_response resps[2], r;
    ck_assert_int_eq(api_queue_task(api, task_body, strlen(task_body), &r), 1);
    ck_assert_int_eq(api_queue_task(api, "{\"titulo\":\"u\"}", 14, &r), 1);
    ck_assert_uint_eq(api_num_queued(api), 2);
    api_flush(api, resps);
    ck_assert_uint_eq(api_num_queued(api), 0);
    assert_answer(resps[0], 201, "\"id\":1");
    assert_answer(resps[1], 201, "\"id\":2");
    ck_assert_ptr_nonnull(strstr(resps[1].headers, "Location: /tareas/2\r\n"));
    /* A failed batch: every task gets the same answer. */
    ck_assert_int_eq(api_queue_task(api, task_body, strlen(task_body), &r), 1);
    ck_assert_int_eq(api_queue_task(api, task_body, strlen(task_body), &r), 1);
    ck_assert_int_eq(shim_fault_set("pwrite=ENOSPC,path=tasks.json"), 0);
    api_flush(api, resps);
    assert_answer(resps[0], 507, "no space left");
    assert_answer(resps[1], 507, "no space left");
    api_error(api, 500, NULL, &r);
    ck_assert_int_eq(r.status, 500);
    ck_assert_int_eq((int)r.body_len, (int)strlen("{\"error\":\"error\"}"));
    ck_assert_int_eq(memcmp(r.body, "{\"error\":\"error\"}", r.body_len), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api_faults");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_no_file_then_usable);
    tcase_add_test(tc, test_check_file);
    tcase_add_loop_test(tc, test_store_error, 0, sizeof(store_errors) / sizeof(store_errors[0]));
    tcase_add_test(tc, test_metrics_count_fails);
    tcase_add_test(tc, test_batch_and_plain_error);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    test_tmp_begin("test_api_faults");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
