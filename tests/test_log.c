/* test_log.c - log lines (time stamp, text and JSON, rate limit) and access log lines. */
#include <arpa/inet.h>
#include <check.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "log.h"
#include "test_tmp.h"

static char dir[256];
static char out_path[300];

static void setup(void)
{
    test_tmp_dir(dir, sizeof(dir), "log");
    snprintf(out_path, sizeof(out_path), "%s/out", dir);
}

static void teardown(void)
{
    unlink(out_path);
    rmdir(dir);
}

/* Sends stderr to out_path (each test runs in its own process). */
static void capture_stderr(void)
{
    FILE *f = fopen(out_path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(dup2(fileno(f), STDERR_FILENO), 0);
    fclose(f);
}

/* The captured lines, and how many. */
static char lines[64][4096];

static int read_lines(void)
{
    FILE *f = fopen(out_path, "r");
    int n = 0;
    ck_assert_ptr_nonnull(f);
    while (n < 64 && fgets(lines[n], sizeof(lines[n]), f) != NULL) {
        lines[n][strcspn(lines[n], "\n")] = '\0';
        n++;
    }
    fclose(f);
    return n;
}

static void assert_matches(const char *re, const char *text)
{
    regex_t r;
    ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&r, text, 0, NULL, 0);
    regfree(&r);
    ck_assert_msg(rc == 0, "expected /%s/, got [%s]", re, text);
}

#define TS "[0-9]{4}-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]\\.[0-9]{3}Z"

/* ---- text lines ---- */

static const struct {
    int level; /* 0 info, 1 warn, 2 error, 3 task */
    const char *msg;
    const char *re; /* after "TS prog[pid]: " */
} text_cases[] = {
    {0, "started worker 12", "started worker 12$"},
    {1, "disk nearly full", "warning: disk nearly full$"},
    {2, "open x: No such file", "error: open x: No such file$"},
    {3, "worker 1: stored task 1", "worker 1: stored task 1$"},
};

static void log_at(int level, const char *msg)
{
    switch (level) {
    case 0:
        log_info("%s", msg);
        break;
    case 1:
        log_warn("%s", msg);
        break;
    case 2:
        log_error("%s", msg);
        break;
    default:
        log_task("%s", msg);
        break;
    }
}

START_TEST(test_text_line)
{
    char re[512];
    capture_stderr();
    log_init("prog");
    log_at(text_cases[_i].level, text_cases[_i].msg);
    ck_assert_int_eq(read_lines(), 1);
    snprintf(re, sizeof(re), "^" TS " prog\\[%d\\]: %s", (int)getpid(), text_cases[_i].re);
    assert_matches(re, lines[0]);
}
END_TEST

/* The stamp is UTC and now (within a few seconds of time()). */
START_TEST(test_timestamp_is_utc_now)
{
    capture_stderr();
    log_init("prog");
    time_t before = time(NULL);
    log_info("x");
    ck_assert_int_eq(read_lines(), 1);
    struct tm tm = {0};
    ck_assert_ptr_nonnull(strptime(lines[0], "%Y-%m-%dT%H:%M:%S", &tm));
    time_t t = timegm(&tm);
    ck_assert_msg(t >= before - 1 && t <= before + 2, "stamp %lld, time() %lld", (long long)t,
                  (long long)before);
}
END_TEST

/* ---- JSON lines ---- */

static const struct {
    int level;
    const char *msg;
    const char *want_level;
} json_cases[] = {
    {0, "plain", "info"},
    {1, "quote \" and backslash \\", "warning"},
    {2, "control \x01 and newline \n and tab \t", "error"},
    {3, "utf-8 ñandú", "info"},
};

START_TEST(test_json_line)
{
    capture_stderr();
    log_init("pro\"g");
    log_set_format(LOG_FORMAT_JSON);
    log_at(json_cases[_i].level, json_cases[_i].msg);
    ck_assert_int_eq(read_lines(), 1); /* one line, whatever the message holds */
    cJSON *j = cJSON_Parse(lines[0]);
    ck_assert_msg(j != NULL, "not JSON: [%s]", lines[0]);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "level")->valuestring, json_cases[_i].want_level);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "msg")->valuestring, json_cases[_i].msg);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "prog")->valuestring, "pro\"g");
    ck_assert_int_eq(cJSON_GetObjectItem(j, "pid")->valueint, (int)getpid());
    assert_matches("^" TS "$", cJSON_GetObjectItem(j, "ts")->valuestring);
    cJSON_Delete(j);
}
END_TEST

/* ---- rate limit ---- */

static void same_error(int i)
{
    log_error("append: attempt %d failed", i);
}

START_TEST(test_rate_limit)
{
    capture_stderr();
    log_init("prog");
    log_set_rate_limit(1);
    for (int i = 1; i <= 10; i++)
        same_error(i);
    log_error("another kind %d", 1); /* not the same format: printed */
    for (int i = 0; i < 3; i++)
        log_info("info %d is never suppressed", i);
    log_flush_suppressed(0); /* the second is not over: nothing yet */
    ck_assert_int_eq(read_lines(), 5);
    ck_assert_ptr_nonnull(strstr(lines[0], "error: append: attempt 1 failed"));
    ck_assert_ptr_nonnull(strstr(lines[1], "error: another kind 1"));
    log_flush_suppressed(1);
    ck_assert_int_eq(read_lines(), 6);
    ck_assert_msg(strstr(lines[5], "error: 9 similar lines suppressed, the last: append: attempt "
                                   "10 failed") != NULL,
                  "got [%s]", lines[5]);
    /* Within the second of the summary: counted again; after it, printed with the count. */
    same_error(11);
    same_error(12);
    struct timespec pause = {1, 100000000};
    nanosleep(&pause, NULL);
    same_error(13);
    ck_assert_int_eq(read_lines(), 7);
    ck_assert_msg(strstr(lines[6], "error: append: attempt 13 failed (and 2 similar lines "
                                   "suppressed before)") != NULL,
                  "got [%s]", lines[6]);
}
END_TEST

/* Off (the default, and the master's setting): every line is printed. */
START_TEST(test_rate_limit_off)
{
    capture_stderr();
    log_init("prog");
    for (int i = 1; i <= 5; i++)
        same_error(i);
    log_flush_suppressed(1);
    ck_assert_int_eq(read_lines(), 5);
}
END_TEST

/* More kinds than the table holds: an evicted kind's count is printed, not lost. */
START_TEST(test_rate_limit_eviction)
{
    static const char *const fmts[] = {"k0 %d", "k1 %d", "k2 %d", "k3 %d", "k4 %d", "k5 %d",
                                       "k6 %d", "k7 %d", "k8 %d", "k9 %d", "kA %d", "kB %d",
                                       "kC %d", "kD %d", "kE %d", "kF %d", "kG %d"};
    capture_stderr();
    log_init("prog");
    log_set_rate_limit(1);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    log_warn(fmts[0], 1);
    log_warn(fmts[0], 2); /* suppressed */
    for (size_t i = 1; i < sizeof(fmts) / sizeof(fmts[0]); i++)
        log_warn(fmts[i], 1);
#pragma GCC diagnostic pop
    int n = read_lines();
    int found = 0;
    for (int i = 0; i < n; i++)
        found += strstr(lines[i], "warning: 1 similar lines suppressed, the last: k0 2") != NULL;
    ck_assert_msg(found == 1, "no summary of the evicted kind in %d lines", n);
}
END_TEST

/* ---- access log ---- */

static char *read_file(const char *path)
{
    static char buf[65536];
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const struct {
    const char *request;
    int status;
    uint64_t bytes;
    int64_t ns;
    const char *want; /* after "PEER - - [time] " */
} access_cases[] = {
    {"POST /tareas HTTP/1.1\r\nHost: x\r\n\r\n{}", 201, 118, 153000,
     "\"POST /tareas HTTP/1.1\" 201 118 0.000153"},
    {"HEAD /metrics HTTP/1.1\r\n", 200, 0, 1500000000, "\"HEAD /metrics HTTP/1.1\" 200 - 1.500000"},
    {"GET /a\"b\\c HTTP/1.1\r\n", 404, 27, 999, "\"GET /a\\x22b\\x5cc HTTP/1.1\" 404 27 0.000000"},
    {"\x16\x03\x01\xff\n", 400, 40, 1, "\"\\x16\\x03\\x01\\xff\" 400 40 0.000000"},
    {"", 408, 50, 10000000000, "\"\" 408 50 10.000000"},
};

START_TEST(test_access_log_lines)
{
    char path[400], err[256];
    int sv[2];
    snprintf(path, sizeof(path), "%s/access.log", dir);
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_msg(access_log_open(path, err, sizeof(err)) == 0, "%s", err);
    struct access_log *al = access_log_create();
    ck_assert_ptr_nonnull(al);
    for (size_t i = 0; i < sizeof(access_cases) / sizeof(access_cases[0]); i++)
        access_log_add(al, sv[0], access_cases[i].request, strlen(access_cases[i].request),
                       access_cases[i].status, access_cases[i].bytes, access_cases[i].ns);
    ck_assert_str_eq(read_file(path), ""); /* buffered until the flush */
    access_log_flush(al);
    char *text = read_file(path);
    char *line = text;
    for (size_t i = 0; i < sizeof(access_cases) / sizeof(access_cases[0]); i++) {
        char *end = strchr(line, '\n');
        ck_assert_ptr_nonnull(end);
        *end = '\0';
        /* A Unix socket has no address to show: "-". */
        assert_matches("^- - - \\[[0-3][0-9]/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} \\+0000\\] ", line);
        const char *rest = strchr(line, ']') + 2;
        ck_assert_msg(strcmp(rest, access_cases[i].want) == 0, "case %zu: expected [%s], got [%s]",
                      i, access_cases[i].want, rest);
        line = end + 1;
    }
    ck_assert_str_eq(line, "");
    access_log_free(al);
    close(sv[0]);
    close(sv[1]);
    unlink(path);
}
END_TEST

/* The peer of a TCP connection, and a long request line cut at the limit. */
START_TEST(test_access_log_peer_and_limit)
{
    char path[400], err[256];
    snprintf(path, sizeof(path), "%s/access.log", dir);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    ck_assert_int_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(ls, 1), 0);
    ck_assert_int_eq(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    int s = accept(ls, NULL, NULL);
    ck_assert_int_ge(s, 0);

    char req[3000];
    memset(req, 'a', sizeof(req));
    memcpy(req, "GET /", 5);
    ck_assert_msg(access_log_open(path, err, sizeof(err)) == 0, "%s", err);
    struct access_log *al = access_log_create();
    access_log_add(al, s, req, sizeof(req), 414, 60, 0);
    access_log_free(al); /* flushes */
    char *text = read_file(path);
    assert_matches("^127\\.0\\.0\\.1 - - \\[", text);
    char *q = strchr(text, '"');
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq((int)(strchr(q + 1, '"') - q - 1), ACCESS_LOG_REQUEST_MAX);
    close(s);
    close(c);
    close(ls);
    unlink(path);
}
END_TEST

START_TEST(test_access_log_off_and_errors)
{
    char err[256];
    ck_assert_int_eq(access_log_open("", err, sizeof(err)), 0);
    ck_assert_ptr_null(access_log_create());    /* off */
    access_log_add(NULL, 0, "x", 1, 200, 0, 0); /* no-ops */
    access_log_flush(NULL);
    access_log_free(NULL);
    ck_assert_int_eq(access_log_open("/nonexistent-dir/a.log", err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "access log /nonexistent-dir/a.log: No such file") != NULL, "%s",
                  err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_text_line, 0, sizeof(text_cases) / sizeof(text_cases[0]));
    tcase_add_test(tc, test_timestamp_is_utc_now);
    tcase_add_loop_test(tc, test_json_line, 0, sizeof(json_cases) / sizeof(json_cases[0]));
    tcase_add_test(tc, test_rate_limit);
    tcase_add_test(tc, test_rate_limit_eviction);
    tcase_add_test(tc, test_rate_limit_off);
    tcase_add_test(tc, test_access_log_lines);
    tcase_add_test(tc, test_access_log_peer_and_limit);
    tcase_add_test(tc, test_access_log_off_and_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    test_tmp_begin("test_log");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
