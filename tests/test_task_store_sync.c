/* test_task_store_sync.c - --fsync as group commit: one fdatasync spares another worker's, and
 * only within the epoch it covered (task_store_sync.c). */
#include "task_store.h"

#include "build_config.h"
#include "store_fixture.h"
#include "test_tmp.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* What a store's observer saw, and a hook to run at its unlock. */
struct watch {
    int fsyncs;
    int unlocks;
    void (*at_unlock)(void);
};

static void watch_event(void *arg, const struct task_store_event *ev)
{
    struct watch *w = arg;
    if (ev->kind == TASK_STORE_EV_FSYNC)
        w->fsyncs++;
    if (ev->kind == TASK_STORE_EV_UNLOCK && ev->lock_type == F_WRLCK && w->at_unlock != NULL) {
        void (*fn)(void) = w->at_unlock;
        w->at_unlock = NULL; /* once */
        fn();
    }
}

static struct task_store_shared *shared_page(void)
{
    void *p = mmap(NULL, task_store_shared_size(), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(p, MAP_FAILED);
    task_store_shared_init(p);
    return p;
}

static struct task_store_shared *page;
static int go[2], done[2]; /* parent -> child: append now; child -> parent: appended */

/* At the parent's unlock, before its sync: the child appends and syncs a task
 * after the parent's; the parent's bytes end before the child's, so the
 * child's sync covered them. */
static void let_child_append(void)
{
    char c = 'g';
    ck_assert_int_eq(write(go[1], &c, 1), 1);
    ck_assert_int_eq(read(done[0], &c, 1), 1);
}

START_TEST(test_one_sync_spares_another)
{
    if (!locking_build())
        return; /* no lock, no "after the lock": nothing to spare */
    page = shared_page();
    write_file(tmp_file, "[\n]\n", 4);
    ck_assert_int_eq(pipe(go), 0);
    ck_assert_int_eq(pipe(done), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct watch w = {0, 0, NULL};
        struct task_store_options opts = quiet_opts;
        opts.fsync = 1;
        opts.shared = page;
        opts.observe = watch_event;
        opts.observe_arg = &w;
        struct task_store *s = open_store(&opts);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(10);
        append_one(s, "child", "c", 2);
        task_store_close(s);
        _exit(w.fsyncs == 1 && write(done[1], "d", 1) == 1 ? 0 : 11);
    }
    struct watch w = {0, 0, let_child_append};
    struct task_store_options opts = quiet_opts;
    opts.fsync = 1;
    opts.shared = page;
    opts.observe = watch_event;
    opts.observe_arg = &w;
    struct task_store *s = open_store(&opts);
    ck_assert_uint_eq(append_one(s, "parent", "c", 1), 1);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: status %d", status);
    ck_assert_msg(w.fsyncs == 0, "the parent synced %d times: the child's sync covered it",
                  w.fsyncs);
    /* The next append of the parent is past the child's: it syncs itself. */
    ck_assert_uint_eq(append_one(s, "parent again", "c", 2), 3);
    ck_assert_int_eq(w.fsyncs, 1);
    assert_canonical(3);
    task_store_close(s);
    munmap(page, task_store_shared_size());
}
END_TEST

/* Syncs take turns under the sync lock: a worker that waits for the sync in
 * progress, whose fstat() came after the waiter's write, finds its bytes
 * covered when the lock is its turn, and flushes nothing. Here the parent
 * plays the syncer in progress: it holds the sync byte while the child
 * appends, then appends and syncs itself, covering both. */
START_TEST(test_sync_waiter_is_covered)
{
    if (!locking_build())
        return; /* no sync lock: the child syncs at once */
    page = shared_page();
    write_file(tmp_file, "[\n]\n", 4);
    int raw = open(tmp_file, O_RDWR);
    ck_assert_int_ge(raw, 0);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = TASK_STORE_SYNC_BYTE,
                       .l_len = 1};
    ck_assert_int_eq(fcntl(raw, F_SETLK, &fl), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct watch w = {0, 0, NULL};
        struct task_store_options opts = quiet_opts;
        opts.fsync = 1;
        opts.lock_timeout_ms = 20000; /* never hang the test */
        opts.shared = page;
        opts.observe = watch_event;
        opts.observe_arg = &w;
        struct task_store *s = open_store(&opts);
        append_one(s, "child", "c", 1);
        task_store_close(s);
        _exit(w.fsyncs == 0 ? 0 : 11);
    }
    /* Wait (at most 10 s) until the child's record is in the file: the child
     * then waits for the sync byte. */
    for (int i = 0; i < 1000; i++) {
        struct stat st;
        ck_assert_int_eq(fstat(raw, &st), 0);
        if (st.st_size > 4)
            break;
        usleep(10000);
    }
    usleep(50000); /* from its write to its wait: the read-back, a stat */
    struct watch w = {0, 0, NULL};
    struct task_store_options opts = quiet_opts;
    opts.fsync = 1;
    opts.shared = page;
    opts.observe = watch_event;
    opts.observe_arg = &w;
    struct task_store *s = open_store(&opts);
    ck_assert_uint_eq(append_one(s, "parent", "c", 2), 2);
    ck_assert_int_eq(w.fsyncs, 1);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child: status %d (11: it flushed bytes the parent's sync covered)", status);
    assert_canonical(2);
    task_store_close(s);
    close(raw);
    munmap(page, task_store_shared_size());
}
END_TEST

/* A sync covers the file as it was: after a reset, a new append that ends
 * below the old durable mark must still be synced. */
START_TEST(test_reset_starts_an_epoch)
{
    char err[512];
    page = shared_page();
    write_file(tmp_file, "[\n]\n", 4);
    struct watch w = {0, 0, NULL};
    struct task_store_options opts = quiet_opts;
    opts.fsync = 1;
    opts.shared = page;
    opts.observe = watch_event;
    opts.observe_arg = &w;
    struct task_store *s = open_store(&opts);
    for (int i = 0; i < 5; i++)
        append_one(s, "a long titulo to make the file long", "c", i + 1);
    ck_assert_int_eq(w.fsyncs, 5);
    ck_assert_msg(task_store_reset(s, err, sizeof(err)) == 0, "%s", err);
    append_one(s, "after the reset", "c", 1);
    ck_assert_int_eq(w.fsyncs, 6);
    /* The same after a rewrite by someone else (in place, another layout). */
    write_file(tmp_file, "[]\n", 3);
    append_one(s, "after echo", "c", 1);
    ck_assert_int_eq(w.fsyncs, 7);
    /* And after a shorter file in our own layout written in place (cp backup.json
     * tasks.json): nothing looks wrong at the tail, only the size tells. */
    for (int i = 0; i < 5; i++)
        append_one(s, "a long titulo to make the file long", "c", i + 2);
    ck_assert_int_eq(w.fsyncs, 12);
    char buf[1024];
    size_t n = canonical_file(1, buf, sizeof(buf));
    write_file(tmp_file, buf, n);
    append_one(s, "after cp", "c", 2);
    ck_assert_int_eq(w.fsyncs, 13);
    task_store_close(s);
    munmap(page, task_store_shared_size());
}
END_TEST

int main(void)
{
    Suite *su = suite_create("task_store_sync");
    TCase *tc = tcase_create("sync");
    tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_one_sync_spares_another);
    tcase_add_test(tc, test_reset_starts_an_epoch);
    tcase_add_test(tc, test_sync_waiter_is_covered);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    test_tmp_begin("test_task_store_sync");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
