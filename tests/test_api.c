/* test_api.c - the API table: routing, error bodies, and each endpoint over a real store. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "log.h"
#include "server_fixture.h"
#include "task_store.h"
#include "test_tmp.h"

static struct config cfg;
/* tasks.json: server_fixture_config() puts its path in cfg.file. */
static const char *const path = cfg.file;
static struct task_store *store;
static struct api *api;

static void setup(void)
{
    server_fixture_config(&cfg, "test_api");
    cfg.workers = 3;
    api = server_fixture_open(&cfg);
    store = api_store(api);
}

static void teardown(void)
{
    server_fixture_close(api, &cfg);
}

static void body_is(const struct api_response *r, const char *want)
{
    ck_assert_msg(r->body_len == strlen(want) && memcmp(r->body, want, r->body_len) == 0,
                  "body: expected %s, got %.*s", want, (int)r->body_len, r->body);
}

/* Whether the body holds NEEDLE (a body that is NULL holds nothing). */
static bool body_has(const struct api_response *r, const char *needle)
{
    return r->body != NULL && memmem(r->body, r->body_len, needle, strlen(needle)) != NULL;
}

static const struct route_case {
    const char *method, *target;
    enum api_endpoint endpoint;
    int head, wants_body;
    unsigned long long id;
    const char *allow;
} route_cases[] = {
    {"GET", "/tareas", API_TASKS_LIST, 0, 0, 0, "GET, HEAD, POST"},
    {"HEAD", "/tareas", API_TASKS_LIST, 1, 0, 0, "GET, HEAD, POST"},
    {"POST", "/tareas", API_TASKS_CREATE, 0, 1, 0, "GET, HEAD, POST"},
    {"POST", "/tareas?x=1&y", API_TASKS_CREATE, 0, 1, 0, "GET, HEAD, POST"},
    {"DELETE", "/tareas", API_METHOD_NOT_ALLOWED, 0, 0, 0, "GET, HEAD, POST"},
    {"post", "/tareas", API_METHOD_NOT_ALLOWED, 0, 0, 0, "GET, HEAD, POST"},
    {"GET", "/tareas/7", API_TASK_GET, 0, 0, 7, "GET, HEAD"},
    {"HEAD", "/tareas/7?q", API_TASK_GET, 1, 0, 7, "GET, HEAD"},
    {"GET", "/tareas/007", API_NOT_FOUND, 0, 0, 0, NULL}, /* ids are written canonically */
    {"GET", "/tareas/01", API_NOT_FOUND, 0, 0, 0, NULL},
    {"GET", "/tareas/0", API_TASK_GET, 0, 0, 0, "GET, HEAD"}, /* a valid id, never stored: 404 */
    {"GET", "/tareas/18446744073709551615", API_TASK_GET, 0, 0, 18446744073709551615ull,
     "GET, HEAD"},
    {"POST", "/tareas/7", API_METHOD_NOT_ALLOWED, 0, 0, 0, "GET, HEAD"},
    {"GET", "/tareas/18446744073709551616", API_NOT_FOUND, 0, 0, 0, NULL},
    {"GET", "/tareas/7a", API_NOT_FOUND, 0, 0, 0, NULL},
    {"GET", "/tareas/-1", API_NOT_FOUND, 0, 0, 0, NULL},
    {"GET", "/tareas/", API_NOT_FOUND, 0, 0, 0, NULL},
    {"GET", "/tareas/7/x", API_NOT_FOUND, 0, 0, 0, NULL},
    {"GET", "/health", API_HEALTH, 0, 0, 0, "GET, HEAD"},
    {"PUT", "/health", API_METHOD_NOT_ALLOWED, 0, 0, 0, "GET, HEAD"},
    {"GET", "/", API_NOT_FOUND, 0, 0, 0, NULL},
    {"GET", "/tareasx", API_NOT_FOUND, 0, 0, 0, NULL},
    {"GET", "/TAREAS", API_NOT_FOUND, 0, 0, 0, NULL},
};

START_TEST(test_route)
{
    const struct route_case *c = &route_cases[_i];
    struct api_route r;
    api_route(c->method, strlen(c->method), c->target, strlen(c->target), &r);
    ck_assert_msg(r.endpoint == c->endpoint, "%s %s: endpoint expected %d, got %d", c->method,
                  c->target, c->endpoint, r.endpoint);
    ck_assert_int_eq(r.head, c->head);
    ck_assert_int_eq(r.wants_body, c->wants_body);
    if (c->endpoint == API_TASK_GET)
        ck_assert_msg(r.id == c->id, "%s: id expected %llu, got %llu", c->target, c->id,
                      (unsigned long long)r.id);
    if (c->allow)
        ck_assert_str_eq(r.allow, c->allow);
}
END_TEST

START_TEST(test_error_body_escaped)
{
    struct api_response r;
    api_error(api, 400, "field \"titulo\": bad\\ \x01", &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_int_eq(r.file_fd, -1);
    ck_assert_str_eq(r.content_type, "application/json");
    body_is(&r, "{\"error\":\"field \\\"titulo\\\": bad\\\\ \\u0001\"}");
}
END_TEST

static void handle(const char *method, const char *target, const char *body, struct api_response *r)
{
    struct api_route route;
    api_route(method, strlen(method), target, strlen(target), &route);
    api_handle(api, &route, body, body ? strlen(body) : 0, r);
}

START_TEST(test_post_get_list_health)
{
    struct api_response r;
    char want[256];

    handle("POST", "/tareas", "{\"titulo\":\"uno\",\"cliente\":\"c\"}", &r);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(r.headers, "Location: /tareas/1\r\n");
    ck_assert_msg(r.body_len > 20 && memcmp(r.body, "{\"id\":1,\"titulo\":\"uno\"", 22) == 0,
                  "got %.*s", (int)r.body_len, r.body);
    snprintf(want, sizeof(want), "%.*s", (int)r.body_len, r.body);

    handle("POST", "/tareas", "{\"titulo\":\"dos\"}", &r);
    ck_assert_int_eq(r.status, 201);
    ck_assert_str_eq(r.headers, "Location: /tareas/2\r\n");

    handle("GET", "/tareas/1", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    body_is(&r, want);

    handle("GET", "/tareas/3", NULL, &r);
    ck_assert_int_eq(r.status, 404);
    body_is(&r, "{\"error\":\"task 3 not found\"}");
    handle("GET", "/tareas/0", NULL, &r);
    body_is(&r, "{\"error\":\"task 0 not found\"}");

    handle("GET", "/tareas", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_ge(r.file_fd, 0);
    ck_assert_ptr_nonnull(r.stream); /* lent until api_list_done() */
    ck_assert_int_eq(r.body_len, 0);
    ck_assert_int_eq(api_list_intact(api, r.stream), 1);
    /* The prefix plus the suffix is exactly the file when no append runs. */
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    ck_assert_int_eq((long)r.file_len + (long)r.suffix_len, size);
    api_list_done(api, r.stream);

    handle("GET", "/health", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    snprintf(want, sizeof(want),
             "{\"status\":\"ok\",\"workers\":3,\"locking\":%s,\"tasks\":2,\"pid\":%ld}",
             getenv("LOCKING") && strcmp(getenv("LOCKING"), "0") == 0 ? "false" : "true",
             (long)getpid());
    body_is(&r, want);
}
END_TEST

/* A file damaged while the server runs (edited by hand): every endpoint
 * that reads the tail says 500 with a message about the damage, and no POST
 * writes into it. */
START_TEST(test_damaged_file)
{
    static const char damaged[] = "[\n{\"id\":1,\"titulo\":\"uno\"},\nnot a record\n]\n";
    struct api_response r;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(damaged, 1, sizeof(damaged) - 1, f), sizeof(damaged) - 1);
    ck_assert_int_eq(fclose(f), 0);
    const char *const targets[][2] = {{"POST", "/tareas"}, {"GET", "/tareas"}, {"GET", "/tareas/1"}};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        handle(targets[i][0], targets[i][1], "{\"titulo\":\"tres\"}", &r);
        ck_assert_msg(r.status == 500, "%s %s: expected 500, got %d", targets[i][0], targets[i][1],
                      r.status);
        body_is(&r, "{\"error\":\"tasks.json is damaged, nothing was stored: GET /health, the "
                    "server log and taskctl check say where\"}");
    }
    /* /health says where, with 503: orchestrators see it, people read it. */
    handle("GET", "/health", NULL, &r);
    ck_assert_int_eq(r.status, 503);
    ck_assert_msg(body_has(&r, "\"status\":\"damaged\"") &&
                      body_has(&r, "byte 27: expected a record"),
                  "health body: %.*s", (int)r.body_len, r.body);
    char buf[256];
    f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    ck_assert_msg(n == sizeof(damaged) - 1 && memcmp(buf, damaged, n) == 0, "file changed: %.*s",
                  (int)n, buf);
}
END_TEST

static const struct bad_case {
    const char *method, *target, *body;
    int status;
    const char *header; /* expected extra headers */
} bad_cases[] = {
    {"POST", "/tareas", "{\"titulo\":\"\"}", 400, ""},
    {"POST", "/tareas", "not json", 400, ""},
    {"POST", "/tareas", "", 400, ""},
    {"POST", "/tareas", "{\"titulo\":\"a\",\"x\":1}", 400, ""},
    {"DELETE", "/tareas", NULL, 405, "Allow: GET, HEAD, POST\r\n"},
    {"POST", "/health", NULL, 405, "Allow: GET, HEAD\r\n"},
    {"GET", "/nada", NULL, 404, ""},
};

START_TEST(test_bad_requests)
{
    const struct bad_case *c = &bad_cases[_i];
    struct api_response r;
    handle(c->method, c->target, c->body, &r);
    ck_assert_msg(r.status == c->status, "%s %s %s: expected %d, got %d %.*s", c->method, c->target,
                  c->body ? c->body : "", c->status, r.status, (int)r.body_len, r.body);
    ck_assert_str_eq(r.headers, c->header);
    ck_assert_msg(r.body_len > 11 && memcmp(r.body, "{\"error\":\"", 10) == 0, "got %.*s",
                  (int)r.body_len, r.body);
    /* Nothing was stored. */
    handle("GET", "/tareas/1", NULL, &r);
    ck_assert_int_eq(r.status, 404);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_route, 0, sizeof(route_cases) / sizeof(route_cases[0]));
    tcase_add_test(tc, test_error_body_escaped);
    tcase_add_test(tc, test_post_get_list_health);
    tcase_add_test(tc, test_damaged_file);
    tcase_add_loop_test(tc, test_bad_requests, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    test_tmp_begin("test_api");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
