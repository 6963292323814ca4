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
static int go[2], done[2]; /* parent -> child: go on; child -> parent: it got there */

/* Every test's start: a shared page, an empty list, the pipes. */
static void begin(void)
{
    page = shared_page();
    write_file(tmp_file, "[\n]\n", 4);
    ck_assert_int_eq(pipe(go), 0);
    ck_assert_int_eq(pipe(done), 0);
}

/* A store's options: --fsync, the shared page, its events to fn(arg). */
static struct task_store_options sync_opts(task_store_observe_fn *fn, void *arg)
{
    struct task_store_options opts = quiet_opts;
    opts.fsync = 1;
    opts.shared = page;
    opts.observe = fn;
    opts.observe_arg = arg;
    return opts;
}

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
    begin();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct watch w = {0, 0, NULL};
        struct task_store_options opts = sync_opts(watch_event, &w);
        struct task_store *s = open_store(&opts);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(10);
        append_one(s, "child", "c", 2);
        task_store_close(s);
        _exit(w.fsyncs == 1 && write(done[1], "d", 1) == 1 ? 0 : 11);
    }
    struct watch w = {0, 0, let_child_append};
    struct task_store_options opts = sync_opts(watch_event, &w);
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

/* What another process holds of [start, start + len) of fd's file, probed as a lock of type
 * probe would conflict with it: F_UNLCK (nothing), or the lock's type and *pid. */
static short lock_held(int fd, short probe, off_t start, off_t len, pid_t *pid)
{
    struct flock q = {.l_type = probe, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    ck_assert_int_eq(fcntl(fd, F_GETLK, &q), 0);
    *pid = q.l_pid;
    return q.l_type;
}

/* The sync byte is held as type by process pid (type F_UNLCK: by nobody else). */
static void assert_sync_byte(int fd, short type, pid_t pid, const char *when)
{
    pid_t holder;
    short held = lock_held(fd, F_RDLCK, TASK_STORE_SYNC_BYTE, 1, &holder);
    if (held == F_UNLCK) /* a read lock conflicts with no F_RDLCK probe: look again */
        held = lock_held(fd, F_WRLCK, TASK_STORE_SYNC_BYTE, 1, &holder);
    ck_assert_msg(held == type && (type == F_UNLCK || holder == pid),
                  "%s: the sync byte is %s (process %ld), expected %s", when,
                  held == F_WRLCK   ? "write-locked"
                  : held == F_RDLCK ? "read-locked"
                                    : "free",
                  (long)holder, type == F_WRLCK ? "write-locked by the syncer" : "free");
}

/* The child's observer: at its FSYNC event (after the fdatasync, before the sync lock goes)
 * it tells the parent and waits for it. */
static void pause_at_fsync(void *arg, const struct task_store_event *ev)
{
    (void)arg;
    char c;
    if (ev->kind == TASK_STORE_EV_FSYNC && (write(done[1], "s", 1) != 1 || read(go[0], &c, 1) != 1))
        _exit(10);
}

/* In a child: appends task 1, says so ('a') and waits for the parent before it closes the
 * store (closing drops every lock of the process on the file, one it kept too). */
static void child_append_then_wait(struct task_store *s)
{
    append_one(s, "child", "c", 1);
    char c;
    if (write(done[1], "a", 1) != 1 || read(go[0], &c, 1) != 1)
        _exit(10);
    task_store_close(s);
}

/* A sync in progress holds the sync byte, for writing, and nothing of the data range: appends
 * and readers go on while the disk flushes, and syncs take turns. Seen from another process
 * while the child's sync is under way, and after its append returned (all let go). */
START_TEST(test_sync_lock_during_sync)
{
    if (!locking_build())
        return; /* no locks at all */
    begin();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct task_store_options opts = sync_opts(pause_at_fsync, NULL);
        child_append_then_wait(open_store(&opts));
        _exit(0);
    }
    int fd = open(tmp_file, O_RDWR);
    ck_assert_int_ge(fd, 0);
    char c;
    ck_assert_int_eq(read(done[0], &c, 1), 1);
    ck_assert_int_eq(c, 's');
    pid_t holder;
    ck_assert_msg(lock_held(fd, F_WRLCK, 0, TASK_STORE_SYNC_BYTE, &holder) == F_UNLCK,
                  "during a sync, process %ld holds a lock on the data range", (long)holder);
    assert_sync_byte(fd, F_WRLCK, pid, "during a sync");
    ck_assert_int_eq(write(go[1], "c", 1), 1);
    ck_assert_int_eq(read(done[0], &c, 1), 1);
    ck_assert_int_eq(c, 'a');
    ck_assert_msg(lock_held(fd, F_WRLCK, 0, 0, &holder) == F_UNLCK,
                  "after an append with its sync, process %ld still holds a lock", (long)holder);
    ck_assert_int_eq(write(go[1], "c", 1), 1);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: status %d", status);
    assert_canonical(1);
    close(fd);
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
    begin();
    int raw = open(tmp_file, O_RDWR);
    ck_assert_int_ge(raw, 0);
    struct flock fl = {
        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = TASK_STORE_SYNC_BYTE, .l_len = 1};
    ck_assert_int_eq(fcntl(raw, F_SETLK, &fl), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct watch w = {0, 0, NULL};
        struct task_store_options opts = sync_opts(watch_event, &w);
        opts.lock_timeout_ms = 20000; /* never hang the test */
        child_append_then_wait(open_store(&opts));
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
    struct task_store_options opts = sync_opts(watch_event, &w);
    struct task_store *s = open_store(&opts);
    ck_assert_uint_eq(append_one(s, "parent", "c", 2), 2);
    ck_assert_int_eq(w.fsyncs, 1);
    /* The child found its bytes covered once the sync lock was its turn: it let the lock go
     * on that path too, or every other worker's next sync would wait for its timeout. */
    char c;
    ck_assert_int_eq(read(done[0], &c, 1), 1);
    assert_sync_byte(raw, F_UNLCK, 0, "after a sync found covered under the sync lock");
    ck_assert_int_eq(write(go[1], "c", 1), 1);
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
    begin();
    struct watch w = {0, 0, NULL};
    struct task_store_options opts = sync_opts(watch_event, &w);
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
    tcase_add_test(tc, test_sync_lock_during_sync);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    test_tmp_begin("test_task_store_sync");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
