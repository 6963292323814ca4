/* test_client_barrier.c - clientemulator's barrier (src/client_barrier.c): settings refused,
 * one client alone, an id that arrived twice, clients that never come, files that cannot be
 * written (tests/shim_fault.c linked in), and the overlap arithmetic over hand-written spans. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client_barrier.h"
#include "shim_fault.h"
#include "test_tmp.h"

static char dir[512];

static void setup(void)
{
    shim_fault_set(NULL);
    test_tmp_dir(dir, sizeof(dir), "barrier");
}

static void teardown(void)
{
    shim_fault_set(NULL);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

static const struct {
    const char *dir, *id;
    unsigned parties;
    const char *err; /* NULL: accepted */
} init_cases[] = {
    {"", "a", 1, "barrier folder \"\": must be 1 to "},
    {"/tmp/b", "", 1, "client id \"\": cannot name a barrier file"},
    {"/tmp/b", ".hidden", 1, "client id \".hidden\": cannot name a barrier file"},
    {"/tmp/b", "a", 0, "barrier: the number of clients must be at least 1"},
    {"/tmp/b///", "a/b c", 2, NULL},
};

START_TEST(test_init)
{
    struct client_barrier b;
    char err[256] = "";
    int rc = client_barrier_init(&b, init_cases[_i].dir, init_cases[_i].id, init_cases[_i].parties,
                                 1000, err, sizeof(err));
    if (init_cases[_i].err == NULL) {
        ck_assert_msg(rc == 0, "%s", err);
        ck_assert_str_eq(b.dir, "/tmp/b");
        ck_assert_str_eq(b.name, "a_b_c");
    } else {
        ck_assert_int_eq(rc, -1);
        ck_assert_msg(strncmp(err, init_cases[_i].err, strlen(init_cases[_i].err)) == 0,
                      "expected \"%s...\", got \"%s\"", init_cases[_i].err, err);
    }
}
END_TEST

/* A folder name as long as the struct can hold is refused by init, not cut. */
START_TEST(test_init_long_folder)
{
    static char longdir[CLIENT_BARRIER_PATH_MAX];
    struct client_barrier b;
    char err[256];
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = '\0';
    ck_assert_int_eq(client_barrier_init(&b, longdir, "a", 1, 1000, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "must be 1 to ") != NULL, "%s", err);
}
END_TEST

/* One client: it meets only itself, starts CLIENT_BARRIER_LEAD_MS after arriving; the same
 * id arriving again in that folder is refused, naming the file. */
START_TEST(test_alone_then_twice)
{
    struct client_barrier b;
    char err[512], path[700];
    ck_assert_int_eq(client_barrier_init(&b, dir, "uno", 1, 2000, err, sizeof(err)), 0);
    uint64_t before = now_ns();
    ck_assert_msg(client_barrier_start(&b, err, sizeof(err)) == 0, "%s", err);
    uint64_t after = now_ns();
    ck_assert_uint_eq(b.num_ready, 1);
    ck_assert_uint_ge(b.start_ns, before + CLIENT_BARRIER_LEAD_MS * 1000000u);
    ck_assert_uint_ge(after, b.start_ns);
    snprintf(path, sizeof(path), "%s/ready/uno", dir);
    ck_assert_int_eq(access(path, F_OK), 0);

    ck_assert_int_eq(client_barrier_start(&b, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EEXIST);
    char want[800];
    snprintf(want, sizeof(want), "%s exists: a client with this id already arrived", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);

    ck_assert_int_eq(client_barrier_result(&b, "exit=0\n", err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/result/uno", dir);
    ck_assert_int_eq(access(path, F_OK), 0);
}
END_TEST

/* Two expected, one comes: it gives up at the timeout, saying how many came. */
START_TEST(test_others_never_come)
{
    struct client_barrier b;
    char err[512], want[700];
    ck_assert_int_eq(client_barrier_init(&b, dir, "solo", 2, 100, err, sizeof(err)), 0);
    ck_assert_int_eq(client_barrier_start(&b, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "barrier %s/ready: only 1 of 2 clients arrived within 0.1 s", dir);
    ck_assert_str_eq(err, want);
}
END_TEST

/* The folder cannot be made; the arrival file cannot be opened or written (and its
 * temporary file does not stay behind). */
START_TEST(test_files_fail)
{
    struct client_barrier b;
    char err[512], want[800], sub[600];
    snprintf(sub, sizeof(sub), "%s/plain", dir);
    write_text(sub, "x");
    snprintf(sub, sizeof(sub), "%s/plain/b", dir);
    ck_assert_int_eq(client_barrier_init(&b, sub, "a", 1, 1000, err, sizeof(err)), 0);
    ck_assert_int_eq(client_barrier_start(&b, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "mkdir %s: Not a directory", sub);
    ck_assert_str_eq(err, want);

    ck_assert_int_eq(client_barrier_init(&b, dir, "a", 1, 1000, err, sizeof(err)), 0);
    ck_assert_int_eq(shim_fault_set("open=EACCES,has=/ready/"), 0);
    ck_assert_int_eq(client_barrier_start(&b, err, sizeof(err)), -1);
    ck_assert_uint_eq(shim_fault_hits(), 1);
    snprintf(want, sizeof(want), "open %s/ready/.a.%ld: Permission denied", dir, (long)getpid());
    ck_assert_str_eq(err, want);

    ck_assert_int_eq(shim_fault_set("write=EIO,has=/ready/"), 0);
    ck_assert_int_eq(client_barrier_start(&b, err, sizeof(err)), -1);
    ck_assert_uint_eq(shim_fault_hits(), 1);
    shim_fault_set(NULL);
    snprintf(want, sizeof(want), "write %s/ready/.a.%ld: Input/output error", dir, (long)getpid());
    ck_assert_str_eq(err, want);
    snprintf(sub, sizeof(sub), "%s/ready/.a.%ld", dir, (long)getpid());
    ck_assert_int_eq(access(sub, F_OK), -1);
    /* Nothing half-written blocks the same id afterwards. */
    ck_assert_msg(client_barrier_start(&b, err, sizeof(err)) == 0, "%s", err);
}
END_TEST

/* The overlap, from spans written by hand (ns): mine [150,300]; others [100,200], [160,170],
 * [250,260], [400,500], and one that ends before it starts (counted as [600,600]):
 * union 300 (100..300 and 400..500), shared 60 (150..200 and 250..260), no instant when
 * all were sending. With one span missing, finish waits for it, then says so. */
START_TEST(test_overlap)
{
    static const char *const others[][2] = {
        {"b", "start_ns=100\nend_ns=200\nsent=1\nacked=1\n"},
        {"d", "start_ns=160\nend_ns=170\nsent=1\nacked=1\n"},
        {"e", "start_ns=250\nend_ns=260\nsent=1\nacked=1\n"},
        {"c", "start_ns=400\nend_ns=500\nsent=1\nacked=1\n"},
        {"f", "start_ns=600\nend_ns=500\nsent=1\nacked=0\n"},
    };
    struct client_barrier b;
    struct client_barrier_overlap ov;
    char err[512], path[700], want[700];
    snprintf(path, sizeof(path), "%s/done", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        snprintf(path, sizeof(path), "%s/done/%s", dir, others[i][0]);
        write_text(path, others[i][1]);
    }
    struct client_barrier_span mine = {150, 300, 5, 5};
    ck_assert_int_eq(client_barrier_init(&b, dir, "a", 7, 100, err, sizeof(err)), 0);
    ck_assert_int_eq(client_barrier_finish(&b, &mine, &ov, err, sizeof(err)), 1);
    snprintf(want, sizeof(want), "barrier %s/done: only 6 of 7 clients finished within 0.1 s", dir);
    ck_assert_str_eq(err, want);
    ck_assert_uint_eq(ov.num_spans, 6);
    ck_assert_uint_eq(ov.mine_ns, 150);
    ck_assert_uint_eq(ov.union_ns, 300);
    ck_assert_uint_eq(ov.shared_ns, 60);
    ck_assert_uint_eq(ov.all_ns, 0);

    /* All there (this client's span again, under another id): every one counted. */
    ck_assert_int_eq(client_barrier_init(&b, dir, "a2", 7, 100, err, sizeof(err)), 0);
    ck_assert_msg(client_barrier_finish(&b, &mine, &ov, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(ov.num_spans, 7);
    ck_assert_uint_eq(ov.shared_ns, 150); /* the twin covers all of it */
    ck_assert_uint_eq(ov.union_ns, 300);
}
END_TEST

/* More spans than the overlap keeps (64): the rest are left out, not overrun. */
START_TEST(test_many_spans)
{
    struct client_barrier b;
    struct client_barrier_overlap ov;
    char err[512], path[700];
    snprintf(path, sizeof(path), "%s/done", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    for (int i = 0; i < 70; i++) {
        snprintf(path, sizeof(path), "%s/done/c%d", dir, i);
        write_text(path, "start_ns=10\nend_ns=20\nsent=1\nacked=1\n");
    }
    struct client_barrier_span mine = {10, 20, 1, 1};
    ck_assert_int_eq(client_barrier_init(&b, dir, "me", 71, 1000, err, sizeof(err)), 0);
    ck_assert_msg(client_barrier_finish(&b, &mine, &ov, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(ov.num_spans, 64);
    ck_assert_uint_eq(ov.all_ns, 10);
    ck_assert_uint_eq(ov.union_ns, 10);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_barrier");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_init, 0, sizeof(init_cases) / sizeof(init_cases[0]));
    tcase_add_test(tc, test_init_long_folder);
    tcase_add_test(tc, test_alone_then_twice);
    tcase_add_test(tc, test_others_never_come);
    tcase_add_test(tc, test_files_fail);
    tcase_add_test(tc, test_overlap);
    tcase_add_test(tc, test_many_spans);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    test_tmp_begin("test_client_barrier");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
