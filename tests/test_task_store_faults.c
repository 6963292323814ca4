/* test_task_store_faults.c - the store when the system says no: reads, writes, syncs, truncates,
 * stats and locks that fail (tests/shim_fault.c, linked in, makes them fail on demand), opens
 * refused, a file that changes or is replaced at the worst moment (the store's observer, called
 * under the lock, lets a test act there), copies that cannot be saved. Each case checks the
 * errno and the message the caller gets, and what the file holds afterwards. */
#include "task_store.h"

#include "build_config.h"
#include "shim_fault.h"
#include "store_fixture.h"
#include "test_tmp.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define STORE_REGISTRY_MAX 64 /* task_store.c: stores open at once in a process */
#define STORE_RETIRED_MAX 16  /* task_store_impl.h: replaced files still read by snapshots */
#define STORE_FOLLOW_MAX 4    /* task_store_impl.h: changes followed in one call */

static void setup(void)
{
    setup_dir();
    shim_fault_set(NULL);
}

static void teardown(void)
{
    shim_fault_set(NULL);
    teardown_dir();
}

/* Arms rules; the test fails if they do not parse. */
static void arm(const char *rules)
{
    ck_assert_msg(shim_fault_set(rules) == 0, "bad rules: %s", rules);
}

/* Disarms, and checks how many failures were injected. */
static void disarm_expect(unsigned long hits)
{
    unsigned long got = shim_fault_hits();
    shim_fault_set(NULL);
    ck_assert_uint_eq(got, hits);
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

/* "<tmp_file>: TEXT", the form of every message of the store. */
static const char *msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *msg(const char *fmt, ...)
{
    static char buf[1400];
    char text[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    snprintf(buf, sizeof(buf), "%s: %s", tmp_file, text);
    return buf;
}

static void write_canonical(uint64_t n)
{
    static char buf[1 << 20];
    size_t len = canonical_file(n, buf, sizeof(buf));
    write_file(tmp_file, buf, len);
}

/* The file at tmp_file replaced by a new one (renamed over it) with records 1..n. */
static void replace_file(uint64_t n)
{
    static char buf[1 << 20];
    char tmp[400];
    snprintf(tmp, sizeof(tmp), "%s.new", tmp_file);
    size_t len = canonical_file(n, buf, sizeof(buf));
    write_file(tmp, buf, len);
    ck_assert_int_eq(rename(tmp, tmp_file), 0);
}

static int try_append(struct task_store *s, const char *titulo, struct task_meta *m, char *err,
                      size_t err_len)
{
    struct task t;
    make_task(&t, titulo, "f", 1);
    err[0] = '\0';
    errno = 0;
    return task_store_append(s, &t, m, NULL, 0, NULL, err, err_len);
}

/* The store's log lines (stderr) while capturing. */
static int capture_saved = -1;
static char capture_path[400];

static void capture_start(void)
{
    snprintf(capture_path, sizeof(capture_path), "%s/stderr.log", tmp_dir);
    int fd = open(capture_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_int_ge(fd, 0);
    capture_saved = dup(STDERR_FILENO);
    ck_assert_int_ge(capture_saved, 0);
    ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
}

/* Stops capturing; returns what was logged (free it). */
static char *capture_end(void)
{
    ck_assert_int_eq(dup2(capture_saved, STDERR_FILENO), STDERR_FILENO);
    close(capture_saved);
    capture_saved = -1;
    char *text = read_file(capture_path, NULL);
    ck_assert_ptr_nonnull(text);
    unlink(capture_path);
    return text;
}

#define assert_contains(hay, needle)                                                               \
    ck_assert_msg(strstr((hay), (needle)) != NULL, "expected \"%s\" in \"%s\"", (needle), (hay))

/* ---- opening ---- */

/* No write permission: opened read-only; reads work, writes are refused with EBADF. */
START_TEST(test_open_read_only)
{
    write_canonical(2);
    char *before = read_file(tmp_file, NULL);
    arm("open=EACCES,write,path=tasks.json");
    struct task_store *s = open_store(&quiet_opts);
    disarm_expect(1);
    char err[512];
    struct task_meta m;
    struct task_store_snapshot snap;
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_uint_eq(snap.num_tasks, 2);
    task_store_snapshot_release(s, &snap);
    ck_assert_int_eq(try_append(s, "no", &m, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_str_eq(err, msg("opened read-only (no write permission): cannot append"));
    ck_assert_int_eq(task_store_reset(s, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_str_eq(err, msg("opened read-only: cannot reset"));
    task_store_close(s);
    char *after = read_file(tmp_file, NULL);
    ck_assert_str_eq(after, before);
    free(before);
    free(after);
}
END_TEST

static const struct {
    const char *rules;
    int errno_value;
    const char *text; /* NULL: errno only (see test_open_fails) */
} open_failures[] = {
    {"open=EACCES,path=tasks.json", EACCES, "Permission denied"}, /* read-only too */
    {"open=ENFILE,path=tasks.json", ENFILE, "Too many open files in system"},
    {"open=ELOOP,path=tasks.json", ELOOP, "Too many levels of symbolic links"},
    /* fstat after the open: its own error, not "not a regular file" (that read a struct
     * stat fstat never filled; found by valgrind). */
    {"fstat=EIO,path=tasks.json", EIO, "fstat: Input/output error"},
};

START_TEST(test_open_fails)
{
    write_canonical(1);
    int before = open_fds();
    char err[512] = "";
    arm(open_failures[_i].rules);
    errno = 0;
    struct task_store *s = task_store_open(tmp_file, &quiet_opts, err, sizeof(err));
    int e = errno;
    unsigned long hits = shim_fault_hits();
    shim_fault_set(NULL);
    ck_assert_ptr_null(s);
    ck_assert_uint_ge(hits, 1);
    ck_assert_int_ne(e, 0);
    if (open_failures[_i].text != NULL) {
        ck_assert_int_eq(e, open_failures[_i].errno_value);
        ck_assert_str_eq(err, msg("%s", open_failures[_i].text));
    } else {
        ck_assert_msg(strncmp(err, tmp_file, strlen(tmp_file)) == 0, "err names the file: %s", err);
    }
    ck_assert_int_eq(open_fds(), before); /* the descriptor of a failed open is closed */
    /* Nothing is left registered: the file opens once the fault is gone. */
    s = open_store(&quiet_opts);
    task_store_close(s);
}
END_TEST

/* Something at the path that opens but is not a regular file. */
START_TEST(test_not_regular)
{
    char err[512];
    int before = open_fds();
    ck_assert_int_eq(mkfifo(tmp_file, 0644), 0);
    errno = 0;
    ck_assert_ptr_null(task_store_open(tmp_file, &quiet_opts, err, sizeof(err)));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_str_eq(err, msg("not a regular file"));
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, NULL, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_str_eq(err, msg("not a regular file"));
    unlink(tmp_file);
    ck_assert_int_eq(symlink("/dev/null", tmp_file), 0);
    ck_assert_ptr_null(task_store_open(tmp_file, &quiet_opts, err, sizeof(err)));
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(task_store_check(tmp_file, 0, NULL, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_str_eq(err, msg("not a regular file"));
    ck_assert_int_eq(open_fds(), before);
}
END_TEST

/* A process keeps a table of the files it has open as stores: it has a size. */
START_TEST(test_too_many_stores)
{
    struct task_store *s[STORE_REGISTRY_MAX + 1];
    char path[400], err[512];
    int n;
    for (n = 0; n <= STORE_REGISTRY_MAX; n++) {
        snprintf(path, sizeof(path), "%s/f%d.json", tmp_dir, n);
        write_file(path, "[\n]\n", 4);
        s[n] = task_store_open(path, &quiet_opts, err, sizeof(err));
        if (s[n] == NULL)
            break;
    }
    ck_assert_int_eq(n, STORE_REGISTRY_MAX);
    ck_assert_int_eq(errno, EMFILE);
    char want[512];
    snprintf(want, sizeof(want), "%s: too many stores open", path);
    ck_assert_str_eq(err, want);
    task_store_close(s[0]);
    s[0] = task_store_open(path, &quiet_opts, err, sizeof(err));
    ck_assert_msg(s[0] != NULL, "after a close: %s", err);
    for (int i = 0; i < n; i++)
        task_store_close(s[i]);
}
END_TEST

/* No options: the defaults (in particular no crash hook). */
START_TEST(test_null_options)
{
    char err[512];
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = task_store_open(tmp_file, NULL, err, sizeof(err));
    ck_assert_msg(s != NULL, "open: %s", err);
    ck_assert_uint_eq(append_one(s, "uno", NULL, 1), 1);
    ck_assert_uint_eq(append_one(s, "dos", NULL, 2), 2);
    task_store_close(s);
    assert_canonical(2);
}
END_TEST

/* Closing a store closes the replaced files its snapshots still held. */
START_TEST(test_close_with_retired)
{
    write_canonical(1);
    int before = open_fds();
    struct task_store *s = open_store(&quiet_opts);
    char err[512];
    struct task_store_snapshot snap;
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    replace_file(3);
    ck_assert_uint_eq(append_one(s, "tras el cambio", NULL, 1), 4);
    ck_assert_int_eq(open_fds(), before + 2); /* the new file, and the old one for snap */
    task_store_close(s);                      /* snap never released */
    ck_assert_int_eq(open_fds(), before);
}
END_TEST

/* ---- writing ---- */

/* A failed write is taken back: the file is what it was, and the next append works. */
START_TEST(test_write_fails)
{
    static const struct {
        const char *rules;
        int errno_value;
        const char *text;
    } cases[] = {
        {"pwrite=EIO,path=tasks.json,times=1", EIO, "Input/output error"},
        {"pwrite=ENOSPC,path=tasks.json,times=1", ENOSPC, "No space left on device"},
        /* A write of nothing: counts as a full disk, not as a loop. */
        {"pwrite=0,path=tasks.json,times=1", ENOSPC, "No space left on device"},
    };
    write_canonical(1);
    size_t size;
    char *before = read_file(tmp_file, &size);
    struct task_store *s = open_store(&quiet_opts);
    char err[512], want[512];
    struct task_meta m;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        arm(cases[i].rules);
        ck_assert_int_eq(try_append(s, "falla", &m, err, sizeof(err)), -1);
        int e = errno;
        disarm_expect(1);
        ck_assert_int_eq(e, cases[i].errno_value);
        snprintf(want, sizeof(want), " at byte %zu: %s", size - 3, cases[i].text);
        ck_assert_msg(strncmp(err, msg("write "), strlen(msg("write "))) == 0 &&
                          strstr(err, want) != NULL,
                      "%s: %s", cases[i].rules, err);
        char *after = read_file(tmp_file, NULL);
        ck_assert_str_eq(after, before);
        free(after);
    }
    ck_assert_uint_eq(append_one(s, "ahora si", NULL, 2), 2);
    task_store_close(s);
    free(before);
    assert_canonical(2);
}
END_TEST

/* The undo of a failed write fails too: said in the log, with the byte. */
START_TEST(test_undo_fails)
{
    write_canonical(1);
    size_t size;
    char *before = read_file(tmp_file, &size);
    struct task_store *s = open_store(&quiet_opts);
    char err[512];
    struct task_meta m;
    capture_start();
    arm("pwrite=EIO,path=tasks.json,times=1;ftruncate=EIO,path=tasks.json");
    int rc = try_append(s, "falla", &m, err, sizeof(err));
    int e = errno;
    disarm_expect(2);
    char *log = capture_end();
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(e, EIO);
    char want[512];
    snprintf(want, sizeof(want), "%s: cannot undo a failed append at byte %zu: %s", tmp_file, size,
             strerror(EIO));
    assert_contains(log, want);
    free(log);
    /* Nothing was written (the write itself failed): the file is intact. */
    char *after = read_file(tmp_file, NULL);
    ck_assert_str_eq(after, before);
    free(after);
    free(before);
    task_store_close(s);
}
END_TEST

/* EINTR is tried again, never reported: each call in turn. */
static const struct {
    const char *rules;
    unsigned long hits;
    int fsync;
    int needs_locks;
} eintr_cases[] = {
    {"pread=EINTR,path=tasks.json,times=1", 1, 0, 0},
    {"pwrite=EINTR,path=tasks.json,times=1", 1, 0, 0},
    {"fdatasync=EINTR,path=tasks.json,times=2", 2, 1, 0},
    /* F_SETLK interrupted, then F_SETLKW interrupted: waiting without a deadline */
    {"fcntl=EINTR,lock,path=tasks.json,times=2", 2, 0, 1},
};

START_TEST(test_eintr_retried)
{
    if (eintr_cases[_i].needs_locks && !locking_build())
        return;
    write_canonical(1);
    struct task_store_options opts = quiet_opts;
    opts.fsync = eintr_cases[_i].fsync;
    struct task_store *s = open_store(&opts);
    /* Twice: on a fresh store (the size from fstat) and after an append (the size from
     * one read around the end seen last). */
    for (uint64_t id = 2; id <= 3; id++) {
        arm(eintr_cases[_i].rules);
        uint64_t got = append_one(s, "interrumpida", NULL, (int64_t)id);
        disarm_expect(eintr_cases[_i].hits);
        ck_assert_uint_eq(got, id);
    }
    arm("ftruncate=EINTR,path=tasks.json,times=1");
    char err[512];
    ck_assert_int_eq(task_store_reset(s, err, sizeof(err)), 0);
    disarm_expect(1);
    task_store_close(s);
    assert_canonical(0);
}
END_TEST

/* A file that cannot be read: the append, the snapshot and the count say so. */
START_TEST(test_read_fails)
{
    write_canonical(2);
    struct task_store *s = open_store(&quiet_opts);
    char err[512];
    struct task_meta m;
    struct task_store_snapshot snap;
    uint64_t num;

    /* A fresh store: the size from fstat, then a read of the end. */
    arm("pread=EIO,path=tasks.json");
    ck_assert_int_eq(try_append(s, "x", &m, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EIO);
    ck_assert_str_eq(err, msg("read: Input/output error"));
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EIO);
    ck_assert_int_eq(task_store_count(s, &num, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EIO);
    shim_fault_set(NULL);

    /* After an append: one read around the end seen last. */
    ck_assert_uint_eq(append_one(s, "bien", NULL, 3), 3);
    arm("pread=EIO,path=tasks.json");
    ck_assert_int_eq(try_append(s, "x", &m, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EIO);
    ck_assert_str_eq(err, msg("read: Input/output error"));
    shim_fault_set(NULL);

    /* fstat failing where the size is needed. */
    task_store_close(s);
    s = open_store(&quiet_opts);
    arm("fstat=EIO,path=tasks.json");
    ck_assert_int_eq(try_append(s, "x", &m, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EIO);
    ck_assert_str_eq(err, msg("fstat: Input/output error"));
    shim_fault_set(NULL);
    ck_assert_uint_eq(append_one(s, "bien", NULL, 4), 4);
    task_store_close(s);
    assert_canonical(4);
}
END_TEST

/* A torn tail (a writer died mid-append) whose scan cannot be read. */
START_TEST(test_scan_read_fails)
{
    static char buf[1 << 16];
    size_t len = canonical_file(2, buf, sizeof(buf));
    /* The closing "\n]\n" overwritten by the start of record 3. */
    len -= 3;
    len += (size_t)snprintf(buf + len, sizeof(buf) - len, ",\n{\"id\":3,\"titulo\":\"med");
    write_file(tmp_file, buf, len);
    struct task_store *s = open_store(&quiet_opts);
    char err[512];
    struct task_meta m;
    /* The first read (the fast path) passes and finds no clean end; the scan fails. */
    arm("pread=EIO,path=tasks.json,after=1");
    ck_assert_int_eq(try_append(s, "x", &m, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EIO);
    ck_assert_str_eq(err, msg("read: Input/output error"));
    disarm_expect(1);
    char *after = read_file(tmp_file, NULL);
    ck_assert_mem_eq(after, buf, len); /* not cut: nothing was written */
    free(after);
    ck_assert_uint_eq(append_one(s, "tras el corte", NULL, 3), 3);
    task_store_close(s);
    assert_canonical(3);
}
END_TEST

/* GET /tareas/ID's lookup: a file cut below the snapshot, a read error, a small buffer. */
START_TEST(test_find_errors)
{
    write_canonical(50);
    struct task_store *s = open_store(&quiet_opts);
    char err[512], line[4096];
    size_t line_len;
    struct task_store_snapshot snap;
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_int_eq(task_store_find(s, &snap, 40, line, sizeof(line), &line_len), 1);
    /* A record longer than the caller's buffer. */
    errno = 0;
    ck_assert_int_eq(task_store_find(s, &snap, 40, line, 10, &line_len), -1);
    ck_assert_int_eq(errno, ENOBUFS);
    arm("pread=EIO,path=tasks.json");
    ck_assert_int_eq(task_store_find(s, &snap, 40, line, sizeof(line), &line_len), -1);
    ck_assert_int_eq(errno, EIO);
    shim_fault_set(NULL);
    /* Cut below the snapshot by another program: a short read is an error, not a miss. */
    ck_assert_int_eq(truncate(tmp_file, 200), 0);
    errno = 0;
    ck_assert_int_eq(task_store_find(s, &snap, 40, line, sizeof(line), &line_len), -1);
    ck_assert_int_eq(errno, EIO);
    task_store_snapshot_release(s, &snap);
    task_store_close(s);
}
END_TEST

/* Records longer than the lookup's block: the record-by-record scan, and its errors. */
START_TEST(test_find_long_records_errors)
{
    struct task_store *s;
    char err[512], line[8192];
    size_t line_len;
    write_file(tmp_file, "[\n]\n", 4);
    s = open_store(&quiet_opts);
    struct task t;
    struct task_meta m;
    for (int i = 1; i <= 6; i++) {
        make_task(&t, "larga", "c", i);
        memset(t.descripcion, 'd', TASK_DESCRIPCION_MAX);
        t.descripcion_len = TASK_DESCRIPCION_MAX;
        t.has_descripcion = 1;
        ck_assert_int_eq(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)), 0);
    }
    struct task_store_snapshot snap;
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_int_eq(task_store_find(s, &snap, 5, line, sizeof(line), &line_len), 1);
    ck_assert_uint_gt(line_len, TASK_DESCRIPCION_MAX);
    /* The line does not fit: the scan says so rather than return a piece. */
    errno = 0;
    ck_assert_int_eq(task_store_find(s, &snap, 5, line, 100, &line_len), -1);
    ck_assert_int_eq(errno, ENOBUFS);
    /* The first block read passes; the scan's read fails. */
    arm("pread=EIO,path=tasks.json,after=1");
    errno = 0;
    ck_assert_int_eq(task_store_find(s, &snap, 5, line, sizeof(line), &line_len), -1);
    ck_assert_int_eq(errno, EIO);
    disarm_expect(1);
    task_store_snapshot_release(s, &snap);
    task_store_close(s);
}
END_TEST

/* A caller's line buffer smaller than the record: stored all the same, the line cut. */
START_TEST(test_append_small_line_buffer)
{
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    struct task t;
    struct task_meta m;
    char err[512], line[10];
    size_t line_len = 0;
    make_task(&t, "corta", "c", 1);
    ck_assert_int_eq(task_store_append(s, &t, &m, line, sizeof(line), &line_len, err, sizeof(err)),
                     0);
    ck_assert_uint_eq(line_len, sizeof(line));
    ck_assert_int_eq(memcmp(line, "{\"id\":1,\"t", sizeof(line)), 0);
    task_store_close(s);
    assert_canonical(1);
}
END_TEST

/* ---- locks ---- */

/* A lock that cannot be taken at all (ENOLCK: an NFS mount without its lock daemon): every
 * call says which lock, nothing is written. */
START_TEST(test_lock_fails)
{
    if (!locking_build())
        return;
    write_canonical(2);
    char *before = read_file(tmp_file, NULL);
    struct task_store *s = open_store(&quiet_opts);
    char err[512];
    struct task_meta m;
    struct task_store_snapshot snap;
    uint64_t num;
    arm("fcntl=ENOLCK,lock,path=tasks.json");
    ck_assert_int_eq(try_append(s, "x", &m, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ENOLCK);
    ck_assert_str_eq(err, msg("write lock: No locks available"));
    ck_assert_int_eq(task_store_reset(s, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ENOLCK);
    ck_assert_str_eq(err, msg("write lock: No locks available"));
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ENOLCK);
    ck_assert_str_eq(err, msg("read lock: No locks available"));
    /* The count reads the end without a lock: /health still counts. */
    ck_assert_int_eq(task_store_count(s, &num, err, sizeof(err)), 0);
    ck_assert_uint_eq(num, 2);
    shim_fault_set(NULL);
    task_store_close(s);
    arm("fcntl=ENOLCK,lock,path=tasks.json");
    errno = 0;
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, NULL, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ENOLCK);
    ck_assert_str_eq(err, msg("lock: No locks available"));
    shim_fault_set(NULL);
    char *after = read_file(tmp_file, NULL);
    ck_assert_str_eq(after, before);
    free(before);
    free(after);
}
END_TEST

/* An unlock that fails is logged; the append it ends has succeeded. */
START_TEST(test_unlock_fails)
{
    if (!locking_build())
        return;
    write_canonical(1);
    struct task_store *s = open_store(&quiet_opts);
    capture_start();
    arm("fcntl=EBADF,lock,path=tasks.json,after=1,times=1");
    uint64_t id = append_one(s, "desbloqueo", NULL, 1);
    disarm_expect(1);
    char *log = capture_end();
    ck_assert_uint_eq(id, 2);
    assert_contains(log, msg("unlock: Bad file descriptor"));
    free(log);
    task_store_close(s);
    assert_canonical(2);
}
END_TEST

/* ---- reset ---- */

START_TEST(test_reset_fails)
{
    write_canonical(3);
    char *before = read_file(tmp_file, NULL);
    struct task_store *s = open_store(&quiet_opts);
    char err[512];
    arm("ftruncate=EIO,path=tasks.json");
    ck_assert_int_eq(task_store_reset(s, err, sizeof(err)), -1);
    disarm_expect(1);
    ck_assert_str_eq(err, msg("reset: Input/output error"));
    char *after = read_file(tmp_file, NULL);
    ck_assert_str_eq(after, before); /* the truncate came first, and did not happen */
    free(after);
    free(before);
    task_store_close(s);

    struct task_store_options opts = quiet_opts;
    opts.fsync = 1;
    s = open_store(&opts);
    arm("fdatasync=EIO,path=tasks.json");
    ck_assert_int_eq(task_store_reset(s, err, sizeof(err)), -1);
    disarm_expect(1);
    ck_assert_str_eq(err, msg("fdatasync: Input/output error"));
    task_store_close(s);
}
END_TEST

/* ---- --fsync ---- */

/* A failed fdatasync is final: that append fails, and so does every later one. */
START_TEST(test_sync_fails_then_refused)
{
    write_canonical(1);
    struct task_store_options opts = quiet_opts;
    opts.fsync = 1;
    struct task_store *s = open_store(&opts);
    char err[512];
    struct task_meta m;
    ck_assert_uint_eq(append_one(s, "durable", NULL, 1), 2);
    capture_start();
    arm("fdatasync=EIO,path=tasks.json,times=1");
    int rc = try_append(s, "perdida", &m, err, sizeof(err));
    int e = errno;
    disarm_expect(1);
    char *log = capture_end();
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(e, EIO);
    ck_assert_str_eq(err, msg("fdatasync: Input/output error"));
    assert_contains(log, msg("fdatasync: Input/output error: no task is stored from now on"));
    free(log);
    ck_assert_int_eq(try_append(s, "rechazada", &m, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EIO);
    assert_contains(err, msg("an earlier fdatasync failed (Input/output error): the disk may "
                             "have lost acknowledged writes"));
    task_store_close(s);
}
END_TEST

/* ---- the file changed or replaced at the worst moment ---- */

/* An observer that plays another program: at the tail read (under our lock), it appends
 * records the way the store would, without the lock, up to max times. */
struct intruder {
    int fd;
    uint64_t next_id;
    int times, max;
};

static void intruder_append(void *arg, const struct task_store_event *ev)
{
    struct intruder *in = arg;
    if (ev->kind != TASK_STORE_EV_TAIL_READ || in->times >= in->max)
        return;
    char buf[8192];
    struct stat st;
    ck_assert_int_eq(fstat(in->fd, &st), 0);
    size_t n = 0;
    memcpy(buf, ",\n", 2);
    n = 2;
    n += record_line(in->next_id++, buf + n, sizeof(buf) - n);
    memcpy(buf + n, "\n]\n", 3);
    n += 3;
    ck_assert_int_eq(pwrite(in->fd, buf, n, st.st_size - 3), (ssize_t)n);
    in->times++;
}

/* The file grew between our tail read and our write: read it again, write after it. */
START_TEST(test_changed_before_write)
{
    write_canonical(1);
    /* Opened before the store and closed after it: closing a descriptor on the file would
     * drop the store's locks. */
    struct intruder in = {open(tmp_file, O_RDWR | O_CLOEXEC), 2, 0, 1};
    ck_assert_int_ge(in.fd, 0);
    struct task_store_options opts = quiet_opts;
    opts.observe = intruder_append;
    opts.observe_arg = &in;
    struct task_store *s = open_store(&opts);
    ck_assert_uint_eq(append_one(s, "despues del intruso", NULL, 1), 3);
    ck_assert_int_eq(in.times, 1);
    task_store_close(s);
    close(in.fd);
    assert_canonical(3);
}
END_TEST

/* ... and again and again: the store gives up (EAGAIN) instead of looping. */
START_TEST(test_keeps_changing)
{
    write_canonical(1);
    struct intruder in = {open(tmp_file, O_RDWR | O_CLOEXEC), 2, 0, 100};
    ck_assert_int_ge(in.fd, 0);
    struct task_store_options opts = quiet_opts;
    opts.observe = intruder_append;
    opts.observe_arg = &in;
    struct task_store *s = open_store(&opts);
    char err[512];
    struct task_meta m;
    ck_assert_int_eq(try_append(s, "nunca", &m, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_str_eq(err, msg("keeps being replaced during appends; try again"));
    ck_assert_int_eq(in.times, STORE_FOLLOW_MAX);
    task_store_close(s);
    close(in.fd);
    assert_canonical(1 + STORE_FOLLOW_MAX);
}
END_TEST

/* An observer that replaces the file each time the store follows it (up to max). */
struct replacer {
    int times, max;
};

static void replacer_on_outside(void *arg, const struct task_store_event *ev)
{
    struct replacer *r = arg;
    if (ev->kind != TASK_STORE_EV_OUTSIDE || strcmp(ev->what, "replaced") != 0 ||
        r->times >= r->max)
        return;
    r->times++;
    replace_file((uint64_t)r->times + 1);
}

START_TEST(test_keeps_replaced)
{
    write_canonical(1);
    struct replacer r = {0, 20};
    struct task_store_options opts = quiet_opts;
    opts.observe = replacer_on_outside;
    opts.observe_arg = &r;
    struct task_store *s = open_store(&opts);
    replace_file(1);
    char err[512];
    struct task_meta m;
    ck_assert_int_eq(try_append(s, "nunca", &m, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_str_eq(err, msg("keeps being replaced; try again"));
    ck_assert_int_eq(r.times, STORE_FOLLOW_MAX);
    /* Once it holds still: followed and written. */
    r.max = 0;
    ck_assert_uint_gt(append_one(s, "por fin", NULL, 1), 1);
    task_store_close(s);
}
END_TEST

/* Replaced by a file we may only read: followed, and the append refused. */
START_TEST(test_replaced_read_only)
{
    write_canonical(1);
    struct task_store *s = open_store(&quiet_opts);
    replace_file(2);
    char err[512];
    struct task_meta m;
    arm("open=EACCES,write,path=tasks.json");
    ck_assert_int_eq(try_append(s, "x", &m, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EBADF);
    disarm_expect(1);
    /* With locks, the write lock on a read-only descriptor fails first (EBADF), and the
     * message says so rather than why (reported); without, the store says why. */
    if (locking_build())
        ck_assert_str_eq(err, msg("lock: Bad file descriptor"));
    else
        ck_assert_str_eq(err, msg("the file now at the path is read-only: cannot append"));
    /* Without locks the adopted file is read (with them, its whole-file check wants the
     * write lock, which a read-only descriptor cannot have: reported). */
    if (!locking_build()) {
        struct task_store_snapshot snap;
        ck_assert_msg(task_store_snapshot(s, &snap, err, sizeof(err)) == 0, "snapshot: %s", err);
        ck_assert_uint_eq(snap.num_tasks, 2); /* the new file is the one read */
        task_store_snapshot_release(s, &snap);
    }
    task_store_close(s);
    assert_canonical(2);
}
END_TEST

/* The path cannot be looked at, or the new file not locked. */
START_TEST(test_follow_fails)
{
    write_canonical(1);
    struct task_store *s = open_store(&quiet_opts);
    char err[512];
    struct task_meta m;
    arm("stat=EIO,path=tasks.json");
    ck_assert_int_eq(try_append(s, "x", &m, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EIO);
    ck_assert_str_eq(err, msg("stat: Input/output error"));
    shim_fault_set(NULL);
    if (locking_build()) {
        /* Only the new file's path ends in tasks.json: the old one's is "... (deleted)". */
        replace_file(2);
        arm("fcntl=ENOLCK,lock,path=tasks.json");
        ck_assert_int_eq(try_append(s, "x", &m, err, sizeof(err)), -1);
        ck_assert_int_eq(errno, ENOLCK);
        ck_assert_str_eq(err, msg("lock: No locks available"));
        shim_fault_set(NULL);
    }
    ck_assert_uint_gt(append_one(s, "bien", NULL, 1), 1);
    task_store_close(s);
}
END_TEST

/* The file was removed and making it again fails: said, and the next append repairs what
 * was left (an empty file). */
static const struct {
    const char *rules;
    const char *text;
    int fsync;
    int needs_locks;
} recreate_failures[] = {
    {"open=EACCES,path=tasks.json", "was removed, and creating it again failed: Permission denied",
     0, 0},
    {"fstat=EIO,path=tasks.json,times=1", "creating it again: Input/output error", 0, 0},
    {"fcntl=ENOLCK,lock,path=tasks.json,times=1", "creating it again: No locks available", 0, 1},
    {"fsync=EIO,path=DIR,times=1", "creating it again: Input/output error", 1, 0},
    {"pwrite=ENOSPC,path=tasks.json,times=1", "write: No space left on device", 0, 0},
};

START_TEST(test_recreate_fails)
{
    if (recreate_failures[_i].needs_locks && !locking_build())
        return;
    write_canonical(2);
    struct task_store_options opts = quiet_opts;
    opts.fsync = recreate_failures[_i].fsync;
    struct task_store *s = open_store(&opts);
    ck_assert_int_eq(unlink(tmp_file), 0);
    char rules[600], err[512];
    struct task_meta m;
    const char *r = recreate_failures[_i].rules;
    const char *dir = strstr(r, "DIR");
    if (dir != NULL)
        snprintf(rules, sizeof(rules), "%.*s%s%s", (int)(dir - r), r, tmp_dir, dir + 3);
    else
        snprintf(rules, sizeof(rules), "%s", r);
    int before = open_fds();
    arm(rules);
    ck_assert_int_eq(try_append(s, "x", &m, err, sizeof(err)), -1);
    disarm_expect(1);
    ck_assert_str_eq(err, msg("%s", recreate_failures[_i].text));
    ck_assert_int_eq(open_fds(), before); /* what was made of the new file is closed */
    ck_assert_uint_eq(append_one(s, "de nuevo", NULL, 1), 1);
    task_store_close(s);
    assert_canonical(1);
}
END_TEST

/* Snapshots of many replaced files still being read: there is a bound. */
START_TEST(test_too_many_replaced)
{
    write_canonical(1);
    struct task_store *s = open_store(&quiet_opts);
    struct task_store_snapshot snaps[STORE_RETIRED_MAX + 1];
    char err[512];
    struct task_meta m;
    int i;
    int before = 0;
    for (i = 0; i <= STORE_RETIRED_MAX; i++) {
        ck_assert_int_eq(task_store_snapshot(s, &snaps[i], err, sizeof(err)), 0);
        replace_file((uint64_t)i + 1);
        before = open_fds();
        if (try_append(s, "x", &m, err, sizeof(err)) < 0)
            break;
        ck_assert_uint_eq(m.id, (uint64_t)i + 2);
    }
    ck_assert_int_eq(i, STORE_RETIRED_MAX);
    ck_assert_int_eq(errno, EMFILE);
    ck_assert_str_eq(err, msg("too many replaced files still being read"));
    ck_assert_int_eq(open_fds(), before); /* the new file, not adopted, is closed */
    for (int k = 0; k <= i; k++)
        task_store_snapshot_release(s, &snaps[k]);
    ck_assert_uint_eq(append_one(s, "liberados", NULL, 1), (uint64_t)i + 2);
    task_store_close(s);
    assert_canonical((uint64_t)i + 2);
}
END_TEST

/* ---- repairs: a torn tail cut, another layout rewritten ---- */

/* A file with records 1..2 and the torn start of record 3 after them; its length. */
static size_t write_torn(char *buf, size_t cap)
{
    size_t len = canonical_file(2, buf, cap) - 3;
    len += (size_t)snprintf(buf + len, cap - len, ",\n{\"id\":3,\"titulo\":\"med");
    write_file(tmp_file, buf, len);
    return len;
}

static int count_copies(const char *kind)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "tasks.json.%s-", kind);
    return count_files(prefix, NULL, 0);
}

static const struct {
    const char *rules;
    int flags;
    const char *text; /* after "<file>: " */
    int copies_left;  /* .torn- copies afterwards */
} cut_failures[] = {
    {"open=EACCES,has=.torn-", TASK_STORE_REPAIR, "cannot save torn tail to ", 0},
    {"fsync=EIO,has=.torn-", TASK_STORE_REPAIR, "cannot save torn tail to ", 0},
    {"fsync=EIO,path=DIR", TASK_STORE_REPAIR | TASK_STORE_FSYNC, "cannot save torn tail to ", 0},
    {"pwrite=EIO,path=tasks.json", TASK_STORE_REPAIR, "repair torn tail at byte ", 1},
};

START_TEST(test_cut_fails)
{
    static char buf[1 << 16];
    size_t len = write_torn(buf, sizeof(buf));
    char rules[600], err[1024];
    const char *r = cut_failures[_i].rules;
    const char *dir = strstr(r, "DIR");
    if (dir != NULL)
        snprintf(rules, sizeof(rules), "%.*s%s%s", (int)(dir - r), r, tmp_dir, dir + 3);
    else
        snprintf(rules, sizeof(rules), "%s", r);
    struct task_store_report rep;
    arm(rules);
    ck_assert_int_eq(task_store_check(tmp_file, cut_failures[_i].flags, &rep, err, sizeof(err)),
                     -1);
    disarm_expect(1);
    const char *want = msg("%s", cut_failures[_i].text);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "expected \"%s...\", got \"%s\"", want,
                  err);
    ck_assert_int_eq(count_copies("torn"), cut_failures[_i].copies_left);
    char *after = read_file(tmp_file, NULL);
    ck_assert_mem_eq(after, buf, len);
    free(after);
    /* Without the fault: cut, the cut bytes saved once. */
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), 0);
    ck_assert_int_eq(rep.torn_cut, 1);
    ck_assert_int_eq(count_copies("torn"), cut_failures[_i].copies_left + 1);
    assert_canonical(2);
}
END_TEST

/* Saved copies never overwrite earlier ones: -1, -2, ... and at most 100 a second. */
START_TEST(test_copy_names_taken)
{
    static char buf[1 << 16];
    write_torn(buf, sizeof(buf));
    char name[512], err[1024];
    struct task_store_report rep;
    /* The names of this second and the next are taken (a check takes well under a second). */
    time_t now = time(NULL);
    for (int k = 0; k < 2; k++) {
        time_t t = now + k;
        struct tm tm;
        char stamp[32];
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
        snprintf(name, sizeof(name), "%s.torn-%s", tmp_file, stamp);
        write_file(name, "earlier", 7);
    }
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), 0);
    size_t n = strlen(rep.saved_path);
    ck_assert_msg(n > 2 && strcmp(rep.saved_path + n - 2, "-1") == 0, "saved in %s",
                  rep.saved_path);
    ck_assert_int_eq(count_copies("torn"), 3);
    /* The earlier copies untouched. */
    char *earlier = read_file(name, NULL);
    ck_assert_str_eq(earlier, "earlier");
    free(earlier);
}
END_TEST

START_TEST(test_copy_names_exhausted)
{
    static char buf[1 << 16];
    size_t len = write_torn(buf, sizeof(buf));
    char name[512], err[1024];
    struct task_store_report rep;
    time_t now = time(NULL);
    for (int k = 0; k < 2; k++) {
        time_t t = now + k;
        struct tm tm;
        char stamp[32];
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
        for (int i = 0; i < 100; i++) {
            if (i == 0)
                snprintf(name, sizeof(name), "%s.torn-%s", tmp_file, stamp);
            else
                snprintf(name, sizeof(name), "%s.torn-%s-%d", tmp_file, stamp, i);
            write_file(name, "earlier", 7);
        }
    }
    errno = 0;
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EEXIST);
    const char *want = msg("cannot save torn tail to ");
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0 && strstr(err, ": File exists") != NULL,
                  "%s", err);
    char *after = read_file(tmp_file, NULL);
    ck_assert_mem_eq(after, buf, len);
    free(after);
}
END_TEST

/* Another layout (pretty-printed): rewritten in place after a copy of the original. */
static const char pretty[] = "[\n"
                             "  {\"titulo\": \"uno\", \"cliente\": \"a\", \"seq\": 1},\n"
                             "  {\"titulo\": \"dos\", \"cliente\": \"b\", \"seq\": 2}\n"
                             "]\n";

START_TEST(test_rewrite_fails_restored)
{
    write_file(tmp_file, pretty, strlen(pretty));
    char err[1024];
    struct task_store_report rep;
    arm("pwrite=ENOSPC,path=tasks.json,times=1");
    errno = 0;
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ENOSPC);
    disarm_expect(1);
    ck_assert_str_eq(err, msg("rewrite failed, original bytes put back: No space left on device"));
    ck_assert_int_eq(rep.restore_failed, 0);
    ck_assert_int_eq(count_copies("orig"), 0); /* the copy is dropped: the file has it all */
    char *after = read_file(tmp_file, NULL);
    ck_assert_str_eq(after, pretty);
    free(after);
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), 0);
    ck_assert_int_eq(rep.canonicalized, 1);
    assert_canonical(2);
}
END_TEST

START_TEST(test_rewrite_and_restore_fail)
{
    write_file(tmp_file, pretty, strlen(pretty));
    char err[1024], saved[4096];
    struct task_store_report rep;
    arm("pwrite=EIO,path=tasks.json");
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EIO);
    shim_fault_set(NULL);
    ck_assert_int_eq(rep.restore_failed, 1);
    ck_assert_int_eq(count_files("tasks.json.orig-", saved, sizeof(saved)), 1);
    ck_assert_str_eq(rep.saved_path, saved);
    char want[4096 + 1024];
    snprintf(want, sizeof(want),
             "%s: rewrite failed (Input/output error) and putting the original back failed "
             "(Input/output error): restore it from %s",
             tmp_file, saved);
    ck_assert_str_eq(err, want);
    char *copy = read_file(saved, NULL);
    ck_assert_str_eq(copy, pretty);
    free(copy);
}
END_TEST

START_TEST(test_rewrite_copy_fails)
{
    write_file(tmp_file, pretty, strlen(pretty));
    char err[1024];
    struct task_store_report rep;
    arm("open=EACCES,has=.orig-");
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EACCES);
    disarm_expect(1);
    const char *want = msg("cannot save the original to ");
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0 &&
                      strstr(err, ": Permission denied") != NULL,
                  "%s", err);
    char *after = read_file(tmp_file, NULL);
    ck_assert_str_eq(after, pretty);
    free(after);
}
END_TEST

/* Over 64 MiB and not canonical: refused, not read into memory (a sparse file: no disk). */
START_TEST(test_too_large_to_rewrite)
{
    write_file(tmp_file, "[\n", 2);
    ck_assert_int_eq(truncate(tmp_file, (64L << 20) + 4096), 0);
    char err[1024];
    struct task_store_report rep;
    errno = 0;
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EBADMSG);
    assert_contains(err, "(and too large to rewrite: over 67108864 bytes)");
    struct stat st;
    ck_assert_int_eq(stat(tmp_file, &st), 0);
    ck_assert_int_eq(st.st_size, (64L << 20) + 4096);
}
END_TEST

/* ---- task_store_check(): opening, the empty file, reading ---- */

static const struct {
    const char *rules;
    const char *content; /* NULL: no file */
    int flags;
    int errno_value;
    const char *text;
} check_failures[] = {
    {"fsync=EIO,path=DIR", NULL, TASK_STORE_REPAIR | TASK_STORE_FSYNC, EIO,
     "fsync of its directory: Input/output error"},
    {"open=EACCES,path=tasks.json", "[\n]\n", TASK_STORE_REPAIR, EACCES, "permission denied"},
    {"open=EIO,path=tasks.json", "[\n]\n", 0, EIO, "Input/output error"},
    {"fstat=EIO,path=tasks.json", "[\n]\n", TASK_STORE_REPAIR, EIO, "fstat: Input/output error"},
    {"pwrite=ENOSPC,path=tasks.json", "", TASK_STORE_REPAIR, ENOSPC,
     "write: No space left on device"},
    {"fdatasync=EIO,path=tasks.json", "", TASK_STORE_REPAIR | TASK_STORE_FSYNC, EIO,
     "fdatasync: Input/output error"},
    {"pread=EIO,path=tasks.json", "[\n]\n", TASK_STORE_REPAIR, EIO, "read: Input/output error"},
};

START_TEST(test_check_fails)
{
    char rules[600], err[1024];
    const char *r = check_failures[_i].rules;
    const char *dir = strstr(r, "DIR");
    if (dir != NULL)
        snprintf(rules, sizeof(rules), "%.*s%s%s", (int)(dir - r), r, tmp_dir, dir + 3);
    else
        snprintf(rules, sizeof(rules), "%s", r);
    if (check_failures[_i].content != NULL)
        write_file(tmp_file, check_failures[_i].content, strlen(check_failures[_i].content));
    int before = open_fds();
    struct task_store_report rep;
    arm(rules);
    errno = 0;
    int rc = task_store_check(tmp_file, check_failures[_i].flags, &rep, err, sizeof(err));
    int e = errno;
    unsigned long hits = shim_fault_hits();
    shim_fault_set(NULL);
    ck_assert_int_eq(rc, -1);
    ck_assert_uint_ge(hits, 1);
    ck_assert_int_eq(e, check_failures[_i].errno_value);
    ck_assert_str_eq(err, msg("%s", check_failures[_i].text));
    ck_assert_int_eq(open_fds(), before);
    /* Without the fault the same check passes (and repairs what it must). */
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), 0);
    assert_canonical(0);
}
END_TEST

/* ---- the background check of a large file's body ---- */

/* The reader of taskctl verify (task_store_reader_open): every refusal names the file and
 * leaks nothing; EINTR is retried; the read lock waits for a writer in another process. */
START_TEST(test_reader_open)
{
    char err[512];
    int before = open_fds();

    ck_assert_int_eq(task_store_reader_open(tmp_file, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_str_eq(err, msg("No such file or directory"));

    ck_assert_int_eq(mkdir(tmp_file, 0755), 0);
    ck_assert_int_eq(task_store_reader_open(tmp_file, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EISDIR);
    ck_assert_str_eq(err, msg("is a directory"));
    ck_assert_int_eq(rmdir(tmp_file), 0);

    ck_assert_int_eq(task_store_reader_open("/dev/null", err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_str_eq(err, "/dev/null: not a regular file");

    write_canonical(3);
    arm("fstat=EIO,path=tasks.json");
    ck_assert_int_eq(task_store_reader_open(tmp_file, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EIO);
    disarm_expect(1);
    ck_assert_str_eq(err, msg("Input/output error"));

    if (locking_build()) {
        arm("fcntl=ENOLCK,path=tasks.json,lock");
        ck_assert_int_eq(task_store_reader_open(tmp_file, err, sizeof(err)), -1);
        ck_assert_int_eq(errno, ENOLCK);
        disarm_expect(1);
        ck_assert_str_eq(err, msg("read lock: No locks available"));
    }
    ck_assert_int_eq(open_fds(), before);

    /* A store open on it in this process: its locks would be dropped by our close. */
    struct task_store *s = open_store(&quiet_opts);
    ck_assert_int_eq(task_store_reader_open(tmp_file, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EBUSY);
    ck_assert_str_eq(err, msg("a store is open on it in this process"));
    task_store_close(s);

    arm("open=EINTR,path=tasks.json,times=1");
    int fd = task_store_reader_open(tmp_file, err, sizeof(err));
    disarm_expect(1);
    ck_assert_msg(fd >= 0, "%s", err);
    char head[2];
    ck_assert_int_eq(pread(fd, head, 2, 0), 2);
    ck_assert_int_eq(memcmp(head, "[\n", 2), 0);
    task_store_reader_close(fd);
    ck_assert_int_eq(open_fds(), before);
}
END_TEST

/* With locks: the reader waits for a write lock held by another process ("L": locked, then
 * "U" just before it unlocks), and holds its read lock until it closes. */
START_TEST(test_reader_waits_for_writer)
{
    if (!locking_build())
        return;
    char err[512];
    int pipe_fds[2];
    write_canonical(3);
    ck_assert_int_eq(pipe(pipe_fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(tmp_file, O_RDWR);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fd < 0 || fcntl(fd, F_SETLKW, &fl) < 0 || write(pipe_fds[1], "L", 1) != 1)
            _exit(1);
        usleep(300 * 1000);
        if (write(pipe_fds[1], "U", 1) != 1)
            _exit(1);
        _exit(0); /* the lock goes with the process */
    }
    close(pipe_fds[1]);
    char c = 0;
    ck_assert_int_eq(read(pipe_fds[0], &c, 1), 1);
    ck_assert_int_eq(c, 'L');
    int fd = task_store_reader_open(tmp_file, err, sizeof(err));
    ck_assert_msg(fd >= 0, "%s", err);
    /* Granted only after the writer said it was letting go: its "U" is there already. */
    ck_assert_int_eq(fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK), 0);
    ck_assert_msg(read(pipe_fds[0], &c, 1) == 1,
                  "the read lock was granted while the writer held its lock");
    ck_assert_int_eq(c, 'U');
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Held: another process cannot write-lock now. */
    struct flock probe = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int fd2 = open(tmp_file, O_RDWR);
    ck_assert_int_ge(fd2, 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fcntl(fd2, F_SETLK, &probe) < 0 && (errno == EAGAIN || errno == EACCES) ? 0 : 1);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the read lock was not held");
    close(fd2);
    close(pipe_fds[0]);
    task_store_reader_close(fd);
}
END_TEST

START_TEST(test_check_body)
{
    struct task_store_shared *sh = calloc(1, task_store_shared_size());
    ck_assert_ptr_nonnull(sh);
    task_store_shared_init(sh);
    char err[512], why[512];
    write_canonical(30);
    task_store_body_pending(sh, tmp_file);
    struct task_store_options opts = quiet_opts;
    opts.shared = sh;
    struct task_store *s = open_store(&opts);
    ck_assert_int_eq(task_store_body_state(s, why, sizeof(why)), 0); /* pending: wait */
    ck_assert_int_eq(task_store_check_body(tmp_file, sh, err, sizeof(err)), 0);
    ck_assert_int_eq(task_store_body_state(s, why, sizeof(why)), 1);
    task_store_close(s);

    /* Damage in the middle: the verdict says where, to every store that shares it. */
    char *text = read_file(tmp_file, NULL);
    char *mid = strstr(text, "{\"id\":15,");
    ck_assert_ptr_nonnull(mid);
    mid[1] = 'X';
    write_file(tmp_file, text, strlen(text));
    free(text);
    task_store_body_pending(sh, tmp_file);
    s = open_store(&opts);
    ck_assert_int_eq(task_store_check_body(tmp_file, sh, err, sizeof(err)), -1);
    ck_assert_msg(strncmp(err, msg("byte "), strlen(msg("byte "))) == 0, "%s", err);
    ck_assert_int_eq(task_store_body_state(s, why, sizeof(why)), -1);
    ck_assert_str_eq(why, err);

    /* A body that cannot be read. */
    write_canonical(30);
    arm("pread=EIO,path=tasks.json,after=1");
    ck_assert_int_eq(task_store_check_body(tmp_file, sh, err, sizeof(err)), -1);
    disarm_expect(1);
    ck_assert_str_eq(err, msg("read: Input/output error"));
    task_store_close(s);

    /* No file at all. */
    unlink(tmp_file);
    ck_assert_int_eq(task_store_check_body(tmp_file, sh, err, sizeof(err)), -1);
    ck_assert_str_eq(err, msg("No such file or directory"));
    free(sh);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("task_store_faults");
    TCase *tc = tcase_create("faults");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_open_read_only);
    tcase_add_loop_test(tc, test_open_fails, 0, sizeof(open_failures) / sizeof(open_failures[0]));
    tcase_add_test(tc, test_not_regular);
    tcase_add_test(tc, test_too_many_stores);
    tcase_add_test(tc, test_null_options);
    tcase_add_test(tc, test_close_with_retired);
    tcase_add_test(tc, test_write_fails);
    tcase_add_test(tc, test_undo_fails);
    tcase_add_loop_test(tc, test_eintr_retried, 0, sizeof(eintr_cases) / sizeof(eintr_cases[0]));
    tcase_add_test(tc, test_read_fails);
    tcase_add_test(tc, test_scan_read_fails);
    tcase_add_test(tc, test_find_errors);
    tcase_add_test(tc, test_find_long_records_errors);
    tcase_add_test(tc, test_append_small_line_buffer);
    tcase_add_test(tc, test_lock_fails);
    tcase_add_test(tc, test_unlock_fails);
    tcase_add_test(tc, test_reset_fails);
    tcase_add_test(tc, test_sync_fails_then_refused);
    tcase_add_test(tc, test_changed_before_write);
    tcase_add_test(tc, test_keeps_changing);
    tcase_add_test(tc, test_keeps_replaced);
    tcase_add_test(tc, test_replaced_read_only);
    tcase_add_test(tc, test_follow_fails);
    tcase_add_loop_test(tc, test_recreate_fails, 0,
                        sizeof(recreate_failures) / sizeof(recreate_failures[0]));
    tcase_add_test(tc, test_too_many_replaced);
    tcase_add_loop_test(tc, test_cut_fails, 0, sizeof(cut_failures) / sizeof(cut_failures[0]));
    tcase_add_test(tc, test_copy_names_taken);
    tcase_add_test(tc, test_copy_names_exhausted);
    tcase_add_test(tc, test_rewrite_fails_restored);
    tcase_add_test(tc, test_rewrite_and_restore_fail);
    tcase_add_test(tc, test_rewrite_copy_fails);
    tcase_add_test(tc, test_too_large_to_rewrite);
    tcase_add_loop_test(tc, test_check_fails, 0,
                        sizeof(check_failures) / sizeof(check_failures[0]));
    tcase_add_test(tc, test_check_body);
    tcase_add_test(tc, test_reader_open);
    tcase_add_test(tc, test_reader_waits_for_writer);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    test_tmp_begin("test_task_store_faults");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
