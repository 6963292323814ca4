/* test_task_store_outside.c - the store while people and programs change tasks.json behind it:
 * files replaced, removed and rewritten, lines added by hand, writes that interleave (I4-I7). */
#include "task_store.h"

#include "build_config.h"
#include "store_fixture.h"
#include "test_tmp.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char other_file[320]; /* tmp_dir/new.json: what replaces the file */
static char away_file[320];  /* tmp_dir/away.json: where the old file goes */

static void setup(void)
{
    setup_dir();
    snprintf(other_file, sizeof(other_file), "%s/new.json", tmp_dir);
    snprintf(away_file, sizeof(away_file), "%s/away.json", tmp_dir);
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
    return st.st_ino;
}

/* Appends and expects failure with errno e; returns the store's message. */
static void append_fails(struct task_store *s, int e, const char *in_msg)
{
    struct task t;
    struct task_meta m;
    char err[512] = "";
    make_task(&t, "refused", "c", 1);
    errno = 0;
    ck_assert_msg(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)) == -1,
                  "append succeeded (id %llu), expected errno %d", (unsigned long long)m.id, e);
    ck_assert_msg(errno == e, "errno %d (%s), expected %d; %s", errno, strerror(errno), e, err);
    ck_assert_msg(in_msg == NULL || strstr(err, in_msg) != NULL, "message [%s] lacks [%s]", err,
                  in_msg);
}

/* ---- I4: the file at the path ---- */

/* An editor's save: a new file renamed over the old one. The next append goes
 * to the new file, after its last record; the old inode gets nothing. */
START_TEST(test_follow_rename)
{
    char buf[4096];
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    ck_assert_uint_eq(append_one(s, "old 1", "c", 1), 1);
    ck_assert_uint_eq(append_one(s, "old 2", "c", 2), 2);
    size_t n = canonical_file(3, buf, sizeof(buf));
    write_file(other_file, buf, n);
    ck_assert_int_eq(rename(tmp_file, away_file), 0); /* keep the old inode to look at */
    ck_assert_int_eq(rename(other_file, tmp_file), 0);
    size_t old_len;
    char *old = read_file(away_file, &old_len);
    ck_assert_uint_eq(append_one(s, "new 4", "c", 4), 4);
    assert_canonical(4);
    size_t after_len;
    char *after = read_file(away_file, &after_len);
    ck_assert_msg(after_len == old_len && memcmp(old, after, old_len) == 0,
                  "the old file, renamed away, was written");
    free(old);
    free(after);
    uint64_t num;
    ck_assert_int_eq(task_store_count(s, &num, NULL, 0), 0);
    ck_assert_uint_eq(num, 4);
    /* The new file holds more tasks than the one it replaced: nothing to keep. */
    ck_assert_int_eq(count_files("tasks.json.replaced-", NULL, 0), 0);
    task_store_close(s);
}
END_TEST

/* A stale save: an editor read the list with 2 tasks, the store added 3 more,
 * the editor saved its buffer by rename. The new file is followed, and the
 * replaced one, with the 3 tasks the new one lacks, is kept beside the path,
 * byte for byte. */
START_TEST(test_stale_save_kept)
{
    char kept[512];
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    append_one(s, "uno", "c", 1);
    append_one(s, "dos", "c", 2);
    size_t stale_len;
    char *stale = read_file(tmp_file, &stale_len); /* the editor's buffer */
    append_one(s, "tres", "c", 3);
    append_one(s, "cuatro", "c", 4);
    append_one(s, "cinco", "c", 5);
    size_t old_len;
    char *old = read_file(tmp_file, &old_len);
    write_file(other_file, stale, stale_len);
    ck_assert_int_eq(rename(other_file, tmp_file), 0);
    ck_assert_uint_eq(append_one(s, "seis", "c", 6), 3); /* positions of the new file */
    ck_assert_int_eq(count_files("tasks.json.replaced-", kept, sizeof(kept)), 1);
    size_t kept_len;
    char *copy = read_file(kept, &kept_len);
    ck_assert_msg(copy != NULL && kept_len == old_len && memcmp(copy, old, old_len) == 0,
                  "%s is not the replaced file", kept);
    /* Appends go on in the new file without another copy. */
    ck_assert_uint_eq(append_one(s, "siete", "c", 7), 4);
    ck_assert_int_eq(count_files("tasks.json.replaced-", NULL, 0), 1);
    free(stale);
    free(old);
    free(copy);
    task_store_close(s);
}
END_TEST

/* A snapshot taken before the rename keeps reading the old file through the
 * descriptor it borrowed, however many appends go to the new one; released,
 * that descriptor is closed. */
START_TEST(test_snapshot_survives_rename)
{
    char buf[4096], err[512];
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    append_one(s, "old", "c", 1);
    struct task_store_snapshot snap;
    ck_assert_msg(task_store_snapshot(s, &snap, err, sizeof(err)) == 0, "%s", err);
    size_t n = canonical_file(5, buf, sizeof(buf));
    write_file(other_file, buf, n);
    ck_assert_int_eq(rename(other_file, tmp_file), 0);
    for (int i = 0; i < 3; i++)
        append_one(s, "new", "c", 10 + i);
    char got[256];
    ck_assert_int_eq(pread(snap.fd, got, (size_t)snap.prefix_len, 0), snap.prefix_len);
    ck_assert_msg(memcmp(got, "[\n{\"id\":1,\"titulo\":\"old\"", 24) == 0, "snapshot reads %.*s",
                  (int)snap.prefix_len, got);
    ck_assert_int_eq(task_store_snapshot_intact(s, &snap), 1);
    int fd = snap.fd;
    task_store_snapshot_release(s, &snap);
    ck_assert_int_eq(snap.fd, -1);
    errno = 0;
    ck_assert_msg(fcntl(fd, F_GETFD) == -1 && errno == EBADF,
                  "the old file's descriptor is still open after its last snapshot");
    assert_canonical(8);
    task_store_close(s);
}
END_TEST

/* Renamed away and back (mv a b; mv b a): the same inode again, never a second
 * descriptor on it. */
START_TEST(test_rename_away_and_back)
{
    char buf[4096], err[512];
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    append_one(s, "uno", "c", 1);
    ino_t first = inode_of(tmp_file);
    struct task_store_snapshot snap;
    ck_assert_msg(task_store_snapshot(s, &snap, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(rename(tmp_file, away_file), 0);
    size_t n = canonical_file(2, buf, sizeof(buf));
    write_file(tmp_file, buf, n);
    ck_assert_uint_eq(append_one(s, "tres", "c", 3), 3); /* in the second file */
    ck_assert_int_eq(rename(away_file, tmp_file), 0);    /* the first one is back */
    ck_assert_uint_eq(inode_of(tmp_file), first);
    ck_assert_uint_eq(append_one(s, "dos", "c", 2), 2); /* after "uno" */
    task_store_snapshot_release(s, &snap);
    assert_canonical(2);
    task_store_close(s);
}
END_TEST

/* rm tasks.json: the next append makes a new empty list there and is its task 1. */
START_TEST(test_follow_removed)
{
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    append_one(s, "uno", "c", 1);
    append_one(s, "dos", "c", 2);
    ck_assert_int_eq(unlink(tmp_file), 0);
    uint64_t num = 99;
    ck_assert_int_eq(task_store_count(s, &num, NULL, 0), 0);
    ck_assert_uint_eq(num, 0);
    ck_assert_uint_eq(append_one(s, "otra vez", "c", 1), 1);
    assert_canonical(1);
    task_store_close(s);
}
END_TEST

/* The path names something that is not a regular file: refused, loudly. */
START_TEST(test_replaced_by_directory)
{
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    append_one(s, "uno", "c", 1);
    ck_assert_int_eq(rename(tmp_file, away_file), 0);
    ck_assert_int_eq(mkdir(tmp_file, 0755), 0);
    append_fails(s, EISDIR, "not a regular file");
    ck_assert_int_eq(rmdir(tmp_file), 0);
    ck_assert_int_eq(rename(away_file, tmp_file), 0);
    ck_assert_uint_eq(append_one(s, "dos", "c", 2), 2);
    task_store_close(s);
}
END_TEST

/* ---- I5: any JSON array of tasks is a list, at run time too ---- */

static const struct {
    const char *content;
    uint64_t next_id;
    int orig_saved;
    const char *description;
} rewrite_cases[] = {
    {"[]\n", 1, 0, "echo \"[]\" > tasks.json"},
    {"[]", 1, 0, "printf '[]'"},
    {"", 1, 0, "> tasks.json (truncated, nothing written)"},
    {"[\n  {\n    \"id\": 1,\n    \"titulo\": \"a\"\n  },\n  {\n    \"titulo\": \"b\"\n  }\n]", 3,
     1, "json.dump(indent=2)"},
    {"[{\"titulo\": \"a\"}, {\"titulo\": \"b\", \"id\": 7}]", 3, 1, "json.dump, one line"},
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":3,\"titulo\":\"b\"}\n]\n", 3, 1,
     "our layout with an id skipped: renumbered"},
    /* Its tail looks complete ("\n]\n" after a record) but is not this store's: not a torn
     * tail to cut (that would cut nothing, and append behind it), a layout to rewrite. */
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\": 2, \"titulo\": \"b\"}\n]\n", 3, 1,
     "our layout but the last record spaced (an editor's reformat)"},
};

START_TEST(test_rewrite_at_run_time)
{
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    append_one(s, "before", "c", 1);
    append_one(s, "before", "c", 2);
    const char *c = rewrite_cases[_i].content;
    write_file(tmp_file, c, strlen(c)); /* in place: the same inode, as the shell's > */
    ck_assert_msg(append_one(s, "after", "c", 3) == rewrite_cases[_i].next_id, "case %d (%s)", _i,
                  rewrite_cases[_i].description);
    assert_canonical(rewrite_cases[_i].next_id);
    ck_assert_msg(count_files("tasks.json.orig-", NULL, 0) == rewrite_cases[_i].orig_saved,
                  "case %d (%s): %d copies of the original", _i, rewrite_cases[_i].description,
                  count_files("tasks.json.orig-", NULL, 0));
    task_store_close(s);
}
END_TEST

/* ---- I6: never write behind what cannot be parsed ---- */

static const struct {
    const char *content;
    size_t len; /* 0: strlen */
    const char *in_msg;
    const char *description;
} damage_cases[] = {
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2,\"titulo\":\"b\"}\n]\n{\"id\":3,\"titulo\":\"a "
     "mano\"}\n",
     0, "data after the closing", "a record line appended by hand after the ]"},
    {"[\n{\"id\":1,\"titulo\":\"a\"}\n]\n{\"titulo\":\"x\"}\n", 0, "data after the closing",
     "an object appended by hand"},
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n\0\0\0\0\0\0\0\0\0\0,\n{\"id\":2,\"titulo\":\"b\"}\n]\n", 49,
     "byte", "a hole of zeros before the last record"},
    {"[]\n\"id\":1,\"titulo\":\"a\"}\n]\n", 0, "byte", "echo's [] over the start of a record"},
    {"[\n{\"id\":1,\"titulo\":\"a\"}\n]\n[\n{\"id\":1,\"titulo\":\"b\"}\n]\n", 0,
     "data after the closing", "two lists one after the other (cat a.json b.json >)"},
    {"hola\n", 0, "byte 0", "not JSON"},
};

START_TEST(test_refuse_damage)
{
    char err[512];
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    append_one(s, "before", "c", 1);
    const char *c = damage_cases[_i].content;
    size_t len = damage_cases[_i].len ? damage_cases[_i].len : strlen(c);
    write_file(tmp_file, c, len);
    for (int k = 0; k < 2; k++) /* twice: the second answer comes from the remembered damage */
        append_fails(s, EBADMSG, damage_cases[_i].in_msg);
    uint64_t num;
    errno = 0;
    ck_assert_int_eq(task_store_count(s, &num, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EBADMSG);
    struct task_store_snapshot snap;
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), -1);
    size_t now_len;
    char *now = read_file(tmp_file, &now_len);
    ck_assert_msg(now_len == len && memcmp(now, c, len) == 0, "case %d (%s): the file was changed",
                  _i, damage_cases[_i].description);
    free(now);
    ck_assert_int_eq(count_files("tasks.json.", NULL, 0), 0); /* no .torn, no .orig */
    task_store_close(s);
}
END_TEST

/* ---- I7: a 201 only for bytes that are there ---- */

/* A child changes the file while the parent's append sleeps in its race
 * window, between reading the tail and writing. */
static pid_t spoil_during_window(unsigned delay_ms, const char *how)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct timespec ts = {0, (long)delay_ms * 1000000L};
        nanosleep(&ts, NULL);
        int rc = 0;
        if (strcmp(how, "echo") == 0) { /* the shell's truncate-then-write, in two steps */
            int fd = open(tmp_file, O_WRONLY | O_TRUNC);
            rc = fd >= 0 && write(fd, "[]\n", 3) == 3 ? 0 : 1;
            close(fd);
        } else if (strcmp(how, "rename") == 0) { /* mv tasks.json away; mv new tasks.json */
            rc = rename(tmp_file, away_file) == 0 && rename(other_file, tmp_file) == 0 ? 0 : 1;
        }
        _exit(rc);
    }
    return pid;
}

START_TEST(test_interleaved_writer_not_acknowledged)
{
    struct task_store_options opts = quiet_opts;
    opts.race_window_us = 300000; /* the spoiler lands inside it */
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&opts);
    append_one(s, "uno", "c", 1);
    append_one(s, "dos", "c", 2);
    pid_t pid = spoil_during_window(100, "echo");
    append_fails(s, ESTALE, "changed by another program");
    int status;
    waitpid(pid, &status, 0);
    ck_assert_int_eq(status, 0);
    /* Our write landed past the shorter file, behind zeros: it was taken back,
     * and the other program's file ("[]") is whole and taken as the list. */
    size_t len;
    char *now = read_file(tmp_file, &len);
    ck_assert_msg(len == 3 && memcmp(now, "[]\n", 3) == 0, "left behind: %zu bytes", len);
    free(now);
    ck_assert_uint_eq(append_one(s, "after echo", "c", 1), 1);
    assert_canonical(1);
    task_store_close(s);
}
END_TEST

/* The same, but the other program is not done when we look: never cut then. */
START_TEST(test_interleaved_writer_still_writing)
{
    struct task_store_options opts = quiet_opts;
    opts.race_window_us = 300000;
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&opts);
    append_one(s, "uno", "c", 1);
    append_one(s, "dos", "c", 2);
    /* Truncated to "[", then nothing more: not a complete list. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
        int fd = open(tmp_file, O_WRONLY | O_TRUNC);
        _exit(fd >= 0 && write(fd, "[\n{", 3) == 3 ? 0 : 1);
    }
    append_fails(s, ESTALE, "changed by another program");
    int status;
    waitpid(pid, &status, 0);
    ck_assert_int_eq(status, 0);
    append_fails(s, EBADMSG, NULL); /* damage: never a 201 behind it */
    task_store_close(s);
}
END_TEST

/* The path moves while the append sleeps: the write to the old file is undone,
 * and the task lands in the new one. */
START_TEST(test_path_moved_during_write)
{
    char buf[4096];
    struct task_store_options opts = quiet_opts;
    opts.race_window_us = 300000;
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&opts);
    append_one(s, "uno", "c", 1);
    size_t n = canonical_file(4, buf, sizeof(buf));
    write_file(other_file, buf, n);
    size_t old_len;
    char *old = read_file(tmp_file, &old_len);
    pid_t pid = spoil_during_window(100, "rename");
    ck_assert_uint_eq(append_one(s, "cinco", "c", 5), 5);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_int_eq(status, 0);
    size_t away_len;
    char *away = read_file(away_file, &away_len);
    ck_assert_msg(away_len == old_len && memcmp(away, old, old_len) == 0,
                  "the old file keeps the undone write:\n%s", away);
    free(old);
    free(away);
    assert_canonical(5);
    task_store_close(s);
}
END_TEST

/* ---- other programs' bytes exactly between our write and its checks ----
 *
 * The store tells its observer of each record right after the pwrite() and
 * before the checks of I7 (store_commit_locked), so an observer that writes to
 * the file by itself is another program landing in that very gap, every time.
 * Found by tools/mutate: the race-window tests above never isolate one check. */

enum spoil_how { SPOIL_PAST, SPOIL_OURS, SPOIL_HOLE_AND_PAST, SPOIL_HOLE_STILL_WRITING };

static pid_t spoil_child = -1;

static void spoil_after_write(void *arg, const struct task_store_event *ev)
{
    if (ev->kind != TASK_STORE_EV_WRITE)
        return;
    enum spoil_how how = *(enum spoil_how *)arg;
    int fd = open(tmp_file, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    off_t end = ev->offset + (off_t)ev->length;
    if (how == SPOIL_PAST) { /* another program's bytes right after ours */
        ck_assert_int_eq(pwrite(fd, "{\"x\":1}\n", 8, end), 8);
    } else if (how == SPOIL_OURS) { /* one byte of our record, same size */
        ck_assert_int_eq(pwrite(fd, "#", 1, ev->offset + 4), 1);
    } else { /* cp of a shorter list that began before our write and goes on past it */
        char zeros[256];
        memset(zeros, 0, sizeof(zeros));
        ck_assert_int_lt(ev->offset, (off_t)sizeof(zeros));
        ck_assert_int_eq(pwrite(fd, zeros, (size_t)ev->offset, 0), ev->offset);
        ck_assert_int_eq(pwrite(fd, "[\n]\n", 4, 0), 4);
        if (how == SPOIL_HOLE_AND_PAST) {
            ck_assert_int_eq(pwrite(fd, "more", 4, end), 4);
        } else {
            /* ... and is still at it: its next bytes come 100 ms later. Its mtime is
             * pushed 600 ms ahead so that the store's wait for a quiet file (50 ms
             * after the last change, store_settle) surely spans them. */
            struct timespec t[2];
            ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &t[0]), 0);
            t[0].tv_nsec += 600000000L;
            if (t[0].tv_nsec >= 1000000000L) {
                t[0].tv_sec++;
                t[0].tv_nsec -= 1000000000L;
            }
            t[1] = t[0];
            ck_assert_int_eq(futimens(fd, t), 0);
            spoil_child = fork();
            ck_assert_int_ge(spoil_child, 0);
            if (spoil_child == 0) {
                struct timespec ts = {0, 100000000L};
                nanosleep(&ts, NULL);
                _exit(pwrite(fd, "more", 4, end) == 4 ? 0 : 1);
            }
        }
    }
    close(fd);
}

START_TEST(test_spoiled_after_write)
{
    static const enum spoil_how hows[] = {SPOIL_PAST, SPOIL_OURS, SPOIL_HOLE_AND_PAST,
                                          SPOIL_HOLE_STILL_WRITING};
    enum spoil_how how = hows[_i];
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    append_one(s, "uno", "c", 1);
    task_store_close(s);
    struct task_store_options opts = quiet_opts;
    opts.observe = spoil_after_write;
    opts.observe_arg = &how;
    s = open_store(&opts);
    append_fails(s, ESTALE, "changed by another program");
    task_store_close(s);
    if (how == SPOIL_HOLE_STILL_WRITING) {
        int status;
        ck_assert_int_eq(waitpid(spoil_child, &status, 0), spoil_child);
        ck_assert_int_eq(status, 0);
        /* Judged once the other program was done: our record stays, nothing is cut. */
        size_t len;
        char *now = read_file(tmp_file, &len);
        ck_assert_msg(len > 8 && memcmp(now + len - 4, "more", 4) == 0 && now[len - 5] == '\n' &&
                          now[len - 6] == ']',
                      "our record was cut while the other program was still writing");
        free(now);
    }
    if (how == SPOIL_HOLE_AND_PAST) {
        /* The other program wrote past our record: nothing of the file is cut. */
        size_t len;
        char *now = read_file(tmp_file, &len);
        ck_assert_msg(len >= 4 && memcmp(now + len - 4, "more", 4) == 0,
                      "the other program's bytes after ours were cut (%zu bytes left)", len);
        free(now);
    }
}
END_TEST

/* ---- I4: a file that replaced ours is judged whole, under the lock ---- */

/* A file renamed over ours with damage in its body (its tail is fine): the
 * append refuses; trusting its tail would append behind the damage. */
START_TEST(test_adopted_body_checked)
{
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    append_one(s, "uno", "c", 1);
    static const char damaged[] = "[\n{\"id\":1,\"titulo\":\"a\"x},\n{\"id\":2,\"titulo\":\"b\"},\n"
                                  "{\"id\":3,\"titulo\":\"c\"}\n]\n";
    write_file(other_file, damaged, strlen(damaged));
    ck_assert_int_eq(rename(other_file, tmp_file), 0);
    append_fails(s, EBADMSG, NULL);
    size_t len;
    char *now = read_file(tmp_file, &len);
    ck_assert_msg(len == strlen(damaged) && memcmp(now, damaged, len) == 0,
                  "the damaged file was written");
    free(now);
    /* None of the new file's tasks can be read: the replaced one's task is kept. */
    ck_assert_int_eq(count_files("tasks.json.replaced-", NULL, 0), 1);
    task_store_close(s);
}
END_TEST

/* The file that replaced ours is locked by another process: the append waits
 * for that lock (and gives up at the timeout), never writes without it. */
START_TEST(test_adopted_file_locked)
{
    if (!locking_build())
        return;
    char buf[4096];
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store_options opts = quiet_opts;
    opts.lock_timeout_ms = 300;
    struct task_store *s = open_store(&opts);
    append_one(s, "uno", "c", 1);
    size_t n = canonical_file(2, buf, sizeof(buf));
    write_file(other_file, buf, n);
    ck_assert_int_eq(rename(other_file, tmp_file), 0);
    int ready[2];
    ck_assert_int_eq(pipe(ready), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(tmp_file, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0 || write(ready[1], "x", 1) != 1)
            _exit(1);
        struct timespec ts = {3, 0};
        nanosleep(&ts, NULL);
        _exit(0);
    }
    char c;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    append_fails(s, ETIMEDOUT, NULL);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    size_t len;
    char *now = read_file(tmp_file, &len);
    ck_assert_msg(len == n && memcmp(now, buf, n) == 0, "the locked file was written");
    free(now);
    close(ready[0]);
    close(ready[1]);
    task_store_close(s);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("task_store_outside");
    TCase *tc = tcase_create("outside");
    tcase_add_checked_fixture(tc, setup, teardown_dir);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_follow_rename);
    tcase_add_test(tc, test_stale_save_kept);
    tcase_add_test(tc, test_snapshot_survives_rename);
    tcase_add_test(tc, test_rename_away_and_back);
    tcase_add_test(tc, test_follow_removed);
    tcase_add_test(tc, test_replaced_by_directory);
    tcase_add_loop_test(tc, test_rewrite_at_run_time, 0,
                        (int)(sizeof(rewrite_cases) / sizeof(rewrite_cases[0])));
    tcase_add_loop_test(tc, test_refuse_damage, 0,
                        (int)(sizeof(damage_cases) / sizeof(damage_cases[0])));
    tcase_add_test(tc, test_interleaved_writer_not_acknowledged);
    tcase_add_test(tc, test_interleaved_writer_still_writing);
    tcase_add_test(tc, test_path_moved_during_write);
    tcase_add_loop_test(tc, test_spoiled_after_write, 0, 4);
    tcase_add_test(tc, test_adopted_body_checked);
    tcase_add_test(tc, test_adopted_file_locked);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    test_tmp_begin("test_task_store_outside");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
