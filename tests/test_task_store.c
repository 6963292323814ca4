/* test_task_store.c - the store with real files and real processes: appends, repairs, locks,
 * crashes, a full disk. */
#include "task_store.h"

#include "build_config.h"
#include "store_fixture.h"
#include "test_tmp.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- basics ---- */

static long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

START_TEST(test_create_append_find)
{
    struct task_store_report rep;
    char err[512];
    ck_assert_int_eq(task_store_check(tmp_file, 0, &rep, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), 0);
    ck_assert_int_eq(rep.created, 1);
    char *content = read_file(tmp_file, NULL);
    ck_assert_str_eq(content, "[\n]\n");
    free(content);

    struct task_store *s = open_store(&quiet_opts);
    struct task_store_snapshot snap;
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_int_eq(snap.prefix_len, 2);
    ck_assert_str_eq(snap.suffix, "]\n");
    ck_assert_uint_eq(snap.num_tasks, 0);

    /* Lines longer than the tail block exercise the fast path's re-read. */
    struct task t;
    struct task_meta m;
    char line[TASK_JSON_RECORD_MAX];
    size_t line_len;
    for (uint64_t id = 1; id <= 30; id++) {
        make_task(&t, "t\n\"x\"", "c", (int64_t)id);
        if (id % 3 == 0) {
            memset(t.descripcion, 1, TASK_DESCRIPCION_MAX);
            t.descripcion_len = TASK_DESCRIPCION_MAX;
            t.has_descripcion = 1;
        }
        ck_assert_msg(
            task_store_append(s, &t, &m, line, sizeof(line), &line_len, err, sizeof(err)) == 0,
            "append %" PRIu64 ": %s", id, err);
        ck_assert_uint_eq(m.id, id);
        ck_assert_int_eq(m.pid, getpid());
        struct task_record rec;
        size_t end;
        ck_assert_int_eq(task_json_decode_record(line, line_len, &rec, &end, err, sizeof(err)), 0);
        ck_assert_uint_eq(end, line_len);
        ck_assert_uint_eq(rec.id, id);
        ck_assert_str_eq(rec.task.titulo, "t\n\"x\"");
    }
    assert_canonical(30);

    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_uint_eq(snap.num_tasks, 30);
    ck_assert_str_eq(snap.suffix, "\n]\n");
    size_t file_len;
    content = read_file(tmp_file, &file_len);
    ck_assert_uint_eq((size_t)snap.prefix_len + snap.suffix_len, file_len);
    ck_assert_str_eq(content + snap.prefix_len, snap.suffix);
    for (uint64_t id = 1; id <= 30; id++) {
        ck_assert_int_eq(task_store_find(s, &snap, id, line, sizeof(line), &line_len), 1);
        struct task_record rec;
        ck_assert_int_eq(task_json_decode_record(line, line_len, &rec, NULL, err, sizeof(err)), 0);
        ck_assert_uint_eq(rec.id, id);
        line[line_len] = '\0';
        ck_assert_ptr_nonnull(strstr(content, line));
    }
    ck_assert_int_eq(task_store_find(s, &snap, 0, line, sizeof(line), &line_len), 0);
    ck_assert_int_eq(task_store_find(s, &snap, 31, line, sizeof(line), &line_len), 0);
    free(content);

    ck_assert_int_eq(task_store_reset(s, err, sizeof(err)), 0);
    content = read_file(tmp_file, NULL);
    ck_assert_str_eq(content, "[\n]\n");
    free(content);
    ck_assert_uint_eq(append_one(s, "again", NULL, -1), 1);
    task_store_close(s);
    assert_canonical(1);
}
END_TEST

/* Snapshot bytes never change under later appends; find is a binary search
 * that works at every size. */
START_TEST(test_snapshot_find_many)
{
    size_t cap = 2000 * 200;
    char *buf = malloc(cap);
    size_t len = canonical_file(2000, buf, cap);
    write_file(tmp_file, buf, len);
    struct task_store *s = open_store(&quiet_opts);
    struct task_store_snapshot snap;
    char err[512], line[4096], want[4096];
    size_t line_len;
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_uint_eq(snap.num_tasks, 2000);
    ck_assert_int_eq(snap.prefix_len, (off_t)len - 3);
    append_one(s, "later", NULL, -1);
    for (uint64_t id = 1; id <= 2000; id++) {
        int r = task_store_find(s, &snap, id, line, sizeof(line), &line_len);
        ck_assert_msg(r == 1, "find %" PRIu64 ": %d", id, r);
        size_t want_len = record_line(id, want, sizeof(want));
        ck_assert_msg(line_len == want_len && memcmp(line, want, want_len) == 0,
                      "find %" PRIu64 ":\n  expected: %.*s\n  got:      %.*s", id, (int)want_len,
                      want, (int)line_len, line);
    }
    /* Task 2001 exists now, but not in the snapshot. */
    ck_assert_int_eq(task_store_find(s, &snap, 2001, line, sizeof(line), &line_len), 0);
    char *now = read_file(tmp_file, NULL);
    ck_assert_int_eq(memcmp(now, buf, (size_t)snap.prefix_len), 0);
    free(now);
    task_store_close(s);
    free(buf);
}
END_TEST

/* A file of n records whose titulo is padded with pad 'x's: lines grow with
 * the id's digits (twice: in "id" and in the titulo), as in real files. */
static size_t padded_file(uint64_t n, size_t pad, char **out)
{
    size_t cap = (size_t)n * (200 + pad) + 16, o = 2;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, "[\n", 2);
    for (uint64_t id = 1; id <= n; id++) {
        char titulo[TASK_TITULO_MAX + 1];
        int k = snprintf(titulo, sizeof(titulo), "task %" PRIu64 " ", id);
        memset(titulo + k, 'x', pad);
        titulo[(size_t)k + pad] = '\0';
        struct task t;
        make_task(&t, titulo, "c", (int64_t)id);
        struct task_meta m = {id, 1795705200, 4123, NULL};
        long len = task_json_encode_record(&t, &m, buf + o, cap - o);
        ck_assert_int_gt(len, 0);
        o += (size_t)len;
        memcpy(buf + o, id < n ? ",\n" : "\n]\n", id < n ? 2 : 3);
        o += id < n ? 2 : 3;
    }
    *out = buf;
    return o;
}

/* read(2)-family system calls this process has made (pread64 counts). */
static long reads_so_far(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char key[32];
    long v, r = -1;
    if (f == NULL)
        return -1;
    while (fscanf(f, "%31[^:]: %ld\n", key, &v) == 2)
        if (strcmp(key, "syscr") == 0)
            r = v;
    fclose(f);
    return r;
}

/* Looks up every id of the snapshot in a scrambled order and checks each
 * answer against the file's bytes; returns the reads they took. */
static long find_all(struct task_store *s, const struct task_store_snapshot *snap, const char *file)
{
    char line[TASK_JSON_RECORD_MAX];
    size_t line_len;
    uint64_t n = snap->num_tasks;
    /* Where each id's line starts in the file (line i + 1 holds id i). */
    size_t *starts = malloc((n + 1) * sizeof(*starts));
    ck_assert_ptr_nonnull(starts);
    const char *p = file;
    for (uint64_t id = 1; id <= n; id++) {
        p = strchr(p, '\n');
        ck_assert_ptr_nonnull(p);
        starts[id] = (size_t)(++p - file);
    }
    long r0 = reads_so_far();
    for (uint64_t k = 0; k < n; k++) {
        uint64_t id = (k * 7919) % n + 1; /* 7919 is prime and no test's n shares it */
        ck_assert_int_eq(task_store_find(s, snap, id, line, sizeof(line), &line_len), 1);
        char want[64];
        int w = snprintf(want, sizeof(want), "{\"id\":%" PRIu64 ",", id);
        ck_assert_msg(line_len > (size_t)w && memcmp(line, want, (size_t)w) == 0,
                      "find %" PRIu64 " gave %.40s", id, line);
        const char *at = file + starts[id];
        ck_assert_msg(memcmp(at, line, line_len) == 0 &&
                          (at[line_len] == ',' || at[line_len] == '\n'),
                      "find %" PRIu64 ": not the file's line", id);
    }
    long reads = reads_so_far() - r0;
    free(starts);
    return reads;
}

/* Lookups remember where they found lines: on a file whose lines grow with
 * the id, a second pass takes about one read each. Hints made stale by a refill with other lengths,
 * by a shorter file and by a reset never give another task. */
START_TEST(test_find_hints)
{
    char *file;
    uint64_t n = 30000;
    size_t len = padded_file(n, 0, &file);
    write_file(tmp_file, file, len);
    struct task_store *s = open_store(&quiet_opts);
    struct task_store_snapshot snap;
    char err[512];
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_uint_eq(snap.num_tasks, n);
    long cold = find_all(s, &snap, file);
    long warm = find_all(s, &snap, file);
    task_store_snapshot_release(s, &snap);
    /* Without hints, 89% of this file's ids lie more than 2 KiB from where
     * the whole file's bounds put them (a first block misses): 2 reads or
     * more. The first pass leaves a hint in every run of ids. */
    /* Valgrind reads files of its own, and /proc/self/io counts them too. */
    if (cold >= 0 && warm >= 0 && getenv("TASKSERVER_UNDER_VALGRIND") == NULL)
        ck_assert_msg(warm * 10 < (long)n * 12,
                      "%ld reads for %" PRIu64 " lookups with hints (%ld in the first pass)", warm,
                      n, cold);
    free(file);

    /* The same ids at other places: every line longer by 40 bytes. */
    len = padded_file(n, 40, &file);
    write_file(tmp_file, file, len);
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_uint_eq(snap.num_tasks, n);
    find_all(s, &snap, file);
    task_store_snapshot_release(s, &snap);
    free(file);

    /* Fewer tasks, shorter lines: hints past the end and ids gone. */
    len = padded_file(n / 3, 0, &file);
    write_file(tmp_file, file, len);
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_uint_eq(snap.num_tasks, n / 3);
    find_all(s, &snap, file);
    char line[TASK_JSON_RECORD_MAX];
    size_t line_len;
    ck_assert_int_eq(task_store_find(s, &snap, n / 3 + 1, line, sizeof(line), &line_len), 0);
    ck_assert_int_eq(task_store_find(s, &snap, n, line, sizeof(line), &line_len), 0);
    task_store_snapshot_release(s, &snap);
    free(file);

    /* A reset: id 1 is the new task, not the old one. */
    ck_assert_int_eq(task_store_reset(s, err, sizeof(err)), 0);
    ck_assert_uint_eq(append_one(s, "after the reset", NULL, -1), 1);
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_int_eq(task_store_find(s, &snap, 1, line, sizeof(line), &line_len), 1);
    line[line_len] = '\0';
    ck_assert_ptr_nonnull(strstr(line, "after the reset"));
    task_store_snapshot_release(s, &snap);
    task_store_close(s);
}
END_TEST

/* A snapshot stays intact through appends; a reset, with or without a refill
 * past its end (same number of tasks, other titles), is seen. */
START_TEST(test_snapshot_intact)
{
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    struct task_store_snapshot snap, empty, after;
    char err[512], title[32];
    ck_assert_int_eq(task_store_snapshot(s, &empty, err, sizeof(err)), 0);
    for (int i = 1; i <= 50; i++) {
        snprintf(title, sizeof(title), "first %d", i);
        append_one(s, title, "a", i);
    }
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_uint_eq(snap.num_tasks, 50);
    ck_assert_int_eq(task_store_snapshot_intact(s, &snap), 1);
    append_one(s, "later", "a", 51);
    ck_assert_int_eq(task_store_snapshot_intact(s, &snap), 1);
    ck_assert_int_eq(task_store_snapshot(s, &after, err, sizeof(err)), 0);

    ck_assert_int_eq(task_store_reset(s, err, sizeof(err)), 0);
    ck_assert_int_eq(task_store_snapshot_intact(s, &snap), 0);  /* cut */
    ck_assert_int_eq(task_store_snapshot_intact(s, &empty), 1); /* "[" never changes */
    for (int i = 1; i <= 60; i++) {                             /* past snap's end */
        snprintf(title, sizeof(title), "second %d", i);
        append_one(s, title, "a", i);
    }
    ck_assert_int_eq(task_store_snapshot_intact(s, &snap), 0); /* rewritten */
    ck_assert_int_eq(task_store_snapshot_intact(s, &after), 0);
    ck_assert_int_eq(task_store_snapshot(s, &after, err, sizeof(err)), 0);
    ck_assert_uint_eq(after.num_tasks, 60);
    ck_assert_int_eq(task_store_snapshot_intact(s, &after), 1);
    task_store_close(s);
}
END_TEST

START_TEST(test_second_open_refused)
{
    char err[512];
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    ck_assert_ptr_null(task_store_open(tmp_file, &quiet_opts, err, sizeof(err)));
    ck_assert_int_eq(errno, EBUSY);
    ck_assert_msg(strstr(err, tmp_file) != NULL, "message must name the file: %s", err);
    task_store_close(s);
    s = open_store(&quiet_opts);
    task_store_close(s);
}
END_TEST

/* ---- torn tails: the last record cut at every byte offset ---- */

static void check_torn_case(uint64_t base_n, size_t k, int via_append)
{
    char base[8192], rec[1024], torn[8192], expected[8192], err[512];
    size_t base_len = canonical_file(base_n, base, sizeof(base));
    size_t rec_len = record_line(base_n + 1, rec, sizeof(rec));
    /* What the append of record base_n+1 writes, and where. */
    char wbuf[1200];
    size_t wlen = 0;
    off_t at;
    if (base_n > 0) {
        memcpy(wbuf, ",\n", 2);
        wlen = 2;
        at = (off_t)base_len - 3;
    } else {
        at = 2;
    }
    memcpy(wbuf + wlen, rec, rec_len);
    wlen += rec_len;
    size_t rec_end = wlen; /* the record complete from here */
    memcpy(wbuf + wlen, "\n]\n", 3);
    wlen += 3;
    ck_assert_uint_le(k, wlen);
    memcpy(torn, base, base_len);
    memcpy(torn + at, wbuf, k);
    size_t torn_len = (size_t)at + k > base_len ? (size_t)at + k : base_len;
    write_file(tmp_file, torn, torn_len);

    uint64_t kept = k >= rec_end ? base_n + 1 : base_n;
    size_t expected_len = canonical_file(kept, expected, sizeof(expected));
    /* The bytes cut: whatever followed the last complete record. */
    size_t kept_end = kept > 0 ? expected_len - 3 : 2;
    const char *cut = torn + kept_end;
    size_t cut_len = torn_len > kept_end ? torn_len - kept_end : 0;
    int changed = !(torn_len == expected_len && memcmp(torn, expected, expected_len) == 0);

    if (via_append) {
        struct task_store *s = open_store(&quiet_opts);
        uint64_t id = append_one(s, "next", NULL, -1);
        task_store_close(s);
        ck_assert_msg(id == kept + 1, "k=%zu: expected id %" PRIu64 ", got %" PRIu64, k, kept + 1,
                      id);
        assert_canonical(kept + 1);
        char *now = read_file(tmp_file, NULL);
        ck_assert_msg(memcmp(now, expected, kept_end) == 0, "k=%zu: records before the cut changed",
                      k);
        free(now);
    } else {
        struct task_store_report rep;
        ck_assert_msg(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)) == 0,
                      "k=%zu: %s", k, err);
        ck_assert_uint_eq(rep.num_tasks, kept);
        ck_assert_int_eq(rep.torn_cut, changed);
        size_t now_len;
        char *now = read_file(tmp_file, &now_len);
        ck_assert_msg(now_len == expected_len && memcmp(now, expected, now_len) == 0,
                      "k=%zu:\n  expected: [%s]\n  got:      [%s]", k, expected, now);
        free(now);
        if (changed && cut_len > 0) {
            ck_assert_int_eq(rep.torn_offset, (off_t)kept_end);
            ck_assert_uint_eq(rep.torn_bytes, cut_len);
        }
    }
    char saved_path[600];
    int num_saved = count_files("tasks.json.torn-", saved_path, sizeof(saved_path));
    if (changed && cut_len > 0) {
        ck_assert_msg(num_saved == 1, "k=%zu: expected one torn file, got %d", k, num_saved);
        size_t saved_len;
        char *saved = read_file(saved_path, &saved_len);
        ck_assert_msg(saved_len == cut_len && memcmp(saved, cut, cut_len) == 0,
                      "k=%zu: saved bytes differ (%zu vs %zu)", k, saved_len, cut_len);
        free(saved);
        unlink(saved_path);
    } else {
        ck_assert_msg(num_saved == 0, "k=%zu: nothing to save, got %d files", k, num_saved);
    }
}

START_TEST(test_torn_every_offset)
{
    /* _i: 0/1 = three records before, by check / by append; 2/3 = none. */
    uint64_t base_n = _i < 2 ? 3 : 0;
    int via_append = _i % 2;
    char rec[1024];
    size_t wlen = record_line(base_n + 1, rec, sizeof(rec)) + 3 + (base_n > 0 ? 2 : 0);
    for (size_t k = 0; k <= wlen; k++)
        check_torn_case(base_n, k, via_append);
}
END_TEST

/* ---- start-up repairs and refusals, as a table ---- */

static const struct {
    const char *content; /* NULL: no file */
    size_t content_len;  /* 0: strlen */
    int expect_rc;
    int expect_errno;
    const char *expected; /* file afterwards (rc 0), or a substring of the message */
    int created, canonicalized, torn_cut;
    const char *description;
} repair_cases[] = {
    {NULL, 0, 0, 0, "[\n]\n", 1, 0, 0, "missing file"},
    {"", 0, 0, 0, "[\n]\n", 1, 0, 0, "0 bytes"},
    {"[\n]\n", 0, 0, 0, "[\n]\n", 0, 0, 0, "canonical empty"},
    {"[]", 0, 0, 0, "[\n]\n", 0, 1, 0, "[] without newline"},
    {"[]\n", 0, 0, 0, "[\n]\n", 0, 1, 0, "echo [] > tasks.json"},
    {" [ ] ", 0, 0, 0, "[\n]\n", 0, 1, 0, "spaced empty array"},
    {"[\n  {\n    \"id\": 4,\n    \"titulo\": \"a\"\n  },\n  {\n    \"titulo\": \"b\",\n    "
     "\"id\": 9\n  }\n]\n",
     0, 0, 0, "[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2,\"titulo\":\"b\"}\n]\n", 0, 1, 0,
     "pretty-printed, odd ids"},
    {"[{\"titulo\": \"comprar pan\", \"descripcion\": \"\\u00e9\", \"creada\": \"2024-01-01 "
     "10:00:00\"}, {\"titulo\": \"b\"}]",
     0, 0, 0,
     "[\n{\"id\":1,\"titulo\":\"comprar pan\",\"descripcion\":\"\xc3\xa9\",\"creada\":\"2024-01-01 "
     "10:00:00\"},\n{\"id\":2,\"titulo\":\"b\"}\n]\n",
     0, 1, 0, "python json.dump, no ids"},
    {"[{\"id\": 1, \"titulo\": \"a\"}, {\"id\": 2, \"titulo\": \"b\"}]", 0, 0, 0,
     "[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2,\"titulo\":\"b\"}\n]\n", 0, 1, 0,
     "python json.dump with ids"},
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":3,\"titulo\":\"b\"}\n]\n", 0, 0, 0,
     "[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2,\"titulo\":\"b\"}\n]\n", 0, 1, 0,
     "one id skipped: renumbered"},
    {"[\n{\"id\":1,\"titulo\":\"a\"}\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 40, 0, 0,
     "[\n{\"id\":1,\"titulo\":\"a\"}\n]\n", 0, 0, 1, "NUL-filled tail"},
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2,\"titulo\":\"b\"}\n]", 0, 0, 0,
     "[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2,\"titulo\":\"b\"}\n]\n", 0, 0, 1,
     "final newline missing"},
    {"[", 0, 0, 0, "[\n]\n", 0, 0, 1, "only ["},
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2,\"ti@@@\"b\"},\n{\"id\":3,\"titulo\":\"c\"}\n]\n",
     0, -1, EBADMSG, "tasks.json: byte 40: record 2: invalid JSON", 0, 0, 0,
     "damage in the middle"},
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2,\"titulo\":\"b\"},\n]\n", 0, -1, EBADMSG,
     "tasks.json: byte 48: expected a record {\"id\":3,...}", 0, 0, 0, "trailing comma"},
    {"[\n  {\"id\": 1}\n]", 0, 0, 0, "[\n{\"id\":1}\n]\n", 0, 1, 0,
     "indented, no final newline: rewritten, not cut"},
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2,\"titulo\":\"b\"}\n]\nextra\nlines\nhere\n", 0, -1,
     EBADMSG, "tasks.json: byte 49: data after the closing", 0, 0, 0, "lines after the array"},
    /* Found by tools/mutate: a torn record is one partial line; a line added
     * after it (a newline in the remains) is damage, never cut. */
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2,\"ti\nhand\n", 0, -1, EBADMSG, "tasks.json: byte ",
     0, 0, 0, "a line added after a torn record"},
    /* A last record in another layout before "\n]\n" is not torn: rewritten. */
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\": 2, \"titulo\": \"b\"}\n]\n", 0, 0, 0,
     "[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2,\"titulo\":\"b\"}\n]\n", 0, 1, 0,
     "last record spaced, one per line"},
    /* Two writers without the lock wrote at the same offset and the shorter
     * record landed last: the end of the longer one trails the array. Only the
     * unlocked build's own writers do that, so only it cuts such a tail; the
     * locked build sees bytes it never writes there (invariant I6). */
#if TASKSERVER_LOCKING
    {"[\n{\"id\":1,\"titulo\":\"a\"}\n]\n\n", 0, 0, 0, "[\n{\"id\":1,\"titulo\":\"a\"}\n]\n", 0, 1,
     0, "a blank line after the array: valid JSON, rewritten"},
    {"[\n{\"id\":1,\"titulo\":\"a\"}\n]\n]\n", 0, -1, EBADMSG,
     "tasks.json: byte 26: data after the closing", 0, 0, 0, "a bracket after the array"},
    {"[\n{\"id\":1,\"titulo\":\"a\"}\n]\n\",\"pid\":77}\n]\n", 0, -1, EBADMSG,
     "tasks.json: byte 26: data after the closing", 0, 0, 0, "the end of a record after the array"},
#else
    {"[\n{\"id\":1,\"titulo\":\"a\"}\n]\n\n", 0, 0, 0, "[\n{\"id\":1,\"titulo\":\"a\"}\n]\n", 0, 0,
     1, "racing writers: 1 byte longer"},
    {"[\n{\"id\":1,\"titulo\":\"a\"}\n]\n]\n", 0, 0, 0, "[\n{\"id\":1,\"titulo\":\"a\"}\n]\n", 0, 0,
     1, "racing writers: 2 bytes longer"},
    {"[\n{\"id\":1,\"titulo\":\"a\"}\n]\n\n]\n", 0, 0, 0, "[\n{\"id\":1,\"titulo\":\"a\"}\n]\n", 0,
     0, 1, "racing writers: 3 bytes longer"},
    {"[\n{\"id\":1,\"titulo\":\"a\"}\n]\n\",\"pid\":77}\n]\n", 0, 0, 0,
     "[\n{\"id\":1,\"titulo\":\"a\"}\n]\n", 0, 0, 1, "racing writers: many bytes longer"},
    {"[\n{\"id\":1,\"titulo\":\"a\"}\n]\n]\n\"pid\":77}\n]\n9}\n]\n", 0, 0, 0,
     "[\n{\"id\":1,\"titulo\":\"a\"}\n]\n", 0, 0, 1, "three racing writers"},
#endif
    /* A crash after the file grew but before its data reached the disk. */
    {"[\n{\"id\":1,\"titulo\":\"a\"}\n]\n\0\0\0\0\0\0\0", 33, 0, 0,
     "[\n{\"id\":1,\"titulo\":\"a\"}\n]\n", 0, 0, 1, "NULs after the array"},
    {"[\n{\"id\":1,\"titulo\":\"a\"},\n\0\0\0\0\0\0\0\0\n{\"id\":2,\"titulo\":\"c\"}\n]\n", 58, -1,
     EBADMSG, "tasks.json: byte ", 0, 0, 0, "NULs in the middle (cJSON reads NUL as space)"},
    {"hello\n", 0, -1, EBADMSG, "tasks.json: byte 0: ", 0, 0, 0, "not JSON"},
    {"{\"titulo\":\"a\"}\n", 0, -1, EBADMSG, "tasks.json: byte 0: ", 0, 0, 0, "an object"},
    {"[1,2,3]\n", 0, -1, EBADMSG, "element 1: not a JSON object", 0, 0, 0, "array of numbers"},
    {"[\n{\"titulo\":\"a\",\"id\":1}\n]\n", 0, 0, 0, "[\n{\"id\":1,\"titulo\":\"a\"}\n]\n", 0, 1, 0,
     "id not first"},
    /* Found by fuzz/fuzz_store_check.c: a tail that looks torn after a last
     * record that is itself out of place. The cut would not make the file
     * canonical, so the check must refuse before writing anything. (An append
     * reads only the tail and may still cut the NULs: for it the damage is in
     * the middle.) */
    {"[\n{\"id\":2,\"titulo\":\"a\"}\n]\n\0\0\0\0\0\0\0", 33, -1, EBADMSG,
     "tasks.json: byte 2: record id 2, expected 1", 0, 0, 0,
     "wrong first id, NUL tail: damage in the middle for an append"},
    {"[\n]\n{\"id\":1,\"titulo\":\"a\"}\n]\n\0", 29, -1, EBADMSG,
     "tasks.json: byte 4: data after the closing", 0, 0, 0,
     "a record after the array, NUL tail: damage in the middle for an append"},
};

START_TEST(test_repair_table)
{
    char err[512] = "";
    const char *c = repair_cases[_i].content;
    size_t c_len =
        repair_cases[_i].content_len ? repair_cases[_i].content_len : (c != NULL ? strlen(c) : 0);
    if (c != NULL)
        write_file(tmp_file, c, c_len);
    struct task_store_report rep;
    errno = 0;
    int rc = task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err));
    ck_assert_msg(rc == repair_cases[_i].expect_rc, "case %d (%s): rc expected %d got %d (%s)", _i,
                  repair_cases[_i].description, repair_cases[_i].expect_rc, rc, err);
    size_t now_len = 0;
    char *now = read_file(tmp_file, &now_len);
    if (rc == 0) {
        ck_assert_msg(strcmp(now, repair_cases[_i].expected) == 0,
                      "case %d (%s):\n  expected: [%s]\n  got:      [%s]", _i,
                      repair_cases[_i].description, repair_cases[_i].expected, now);
        ck_assert_int_eq(rep.created, repair_cases[_i].created);
        ck_assert_int_eq(rep.canonicalized, repair_cases[_i].canonicalized);
        ck_assert_int_eq(rep.torn_cut, repair_cases[_i].torn_cut);
        if (rep.canonicalized && rep.num_tasks == 0) {
            /* An empty list in another layout ("[]" from echo): a reset, no copy. */
            ck_assert_msg(rep.saved_path[0] == '\0', "case %d: saved %s for an empty list", _i,
                          rep.saved_path);
        } else if (rep.canonicalized) {
            /* The original, byte for byte, beside the file. */
            size_t orig_len;
            char *orig = read_file(rep.saved_path, &orig_len);
            ck_assert_msg(orig != NULL, "case %d: saved original %s missing", _i, rep.saved_path);
            ck_assert_msg(orig_len == c_len && memcmp(orig, c, c_len) == 0,
                          "case %d: saved original differs", _i);
            free(orig);
        }
        /* Repaired means canonical, and a second check changes nothing. */
        struct task_store_report rep2;
        ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep2, err, sizeof(err)), 0);
        ck_assert_int_eq(rep2.canonicalized + rep2.torn_cut + rep2.created, 0);
        struct task_store *s = open_store(&quiet_opts);
        uint64_t id = append_one(s, "after", NULL, -1);
        ck_assert_uint_eq(id, rep2.num_tasks + 1);
        task_store_close(s);
    } else {
        ck_assert_int_eq(errno, repair_cases[_i].expect_errno);
        ck_assert_msg(strstr(err, repair_cases[_i].expected) != NULL,
                      "case %d (%s):\n  expected message containing: %s\n  got: %s", _i,
                      repair_cases[_i].description, repair_cases[_i].expected, err);
        ck_assert_msg(strstr(err, tmp_file) != NULL, "message must name the file: %s", err);
        ck_assert_msg(now_len == c_len && memcmp(now, c, c_len) == 0, "case %d (%s): file modified",
                      _i, repair_cases[_i].description);
        ck_assert_int_eq(count_files("tasks.json.", NULL, 0), 0);
        /* An append refuses too (damage is not a torn tail), and leaves it alone. */
        struct task_store *s = open_store(&quiet_opts);
        struct task t;
        struct task_meta m;
        make_task(&t, "x", NULL, -1);
        int arc = task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err));
        task_store_close(s);
        free(now);
        now = read_file(tmp_file, &now_len);
        if (arc == 0) {
            /* Only acceptable when the tail itself was fine. */
            ck_assert_msg(strstr(repair_cases[_i].description, "middle") != NULL,
                          "case %d (%s): append succeeded on a damaged file", _i,
                          repair_cases[_i].description);
        } else {
            ck_assert_msg(now_len == c_len && memcmp(now, c, c_len) == 0,
                          "case %d (%s): failed append modified the file", _i,
                          repair_cases[_i].description);
        }
    }
    free(now);
}
END_TEST

/* Without TASK_STORE_REPAIR nothing is written, whatever the file. */
/* A child that takes a lock of type (F_RDLCK, F_WRLCK) on the whole file
 * with raw fcntl and holds it until release_lock(): the stopped lock holder
 * of the tests below. */
struct lock_holder {
    pid_t pid;
    int release_fd;
};

static struct lock_holder hold_lock(short type)
{
    int pfd[2], qfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    ck_assert_int_eq(pipe(qfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct flock fl = {.l_type = type, .l_whence = SEEK_SET};
        int fd = open(tmp_file, type == F_RDLCK ? O_RDONLY : O_RDWR);
        char c = 'x';
        if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0 || write(pfd[1], &c, 1) != 1)
            _exit(1);
        _exit(read(qfd[0], &c, 1) == 1 ? 0 : 1); /* holds the lock until told */
    }
    char c;
    ck_assert_int_eq(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    close(pfd[1]);
    close(qfd[0]);
    return (struct lock_holder){pid, qfd[1]};
}

/* Tells the holder to let go; asserts that it held the lock until then. */
static void release_lock(struct lock_holder h)
{
    ck_assert_int_eq(write(h.release_fd, "x", 1), 1);
    close(h.release_fd);
    int status;
    ck_assert_int_eq(waitpid(h.pid, &status, 0), h.pid);
    ck_assert_int_eq(status, 0);
}

/* The start-up check of a canonical file takes only the read lock: a second
 * server starting, or a taskctl repair, does not stop running writers for
 * the length of its scan. A reader holds the read lock here; a check that
 * asked for the write lock would wait until alarm() ends it. */
START_TEST(test_check_canonical_read_lock_only)
{
    static const char canonical[] = "[\n{\"id\":1,\"titulo\":\"a\"}\n]\n";
    write_file(tmp_file, canonical, sizeof(canonical) - 1);
    struct lock_holder reader = hold_lock(F_RDLCK);
    pid_t checker = fork();
    ck_assert_int_ge(checker, 0);
    if (checker == 0) {
        char err[512];
        struct task_store_report rep;
        alarm(10);
        int rc = task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err));
        _exit(rc == 0 && rep.num_tasks == 1 ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(checker, &status, 0), checker);
    release_lock(reader);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the check of a canonical file did not finish beside a reader (status %d)",
                  status);
}
END_TEST

START_TEST(test_check_only_writes_nothing)
{
    static const char *contents[] = {"[]\n", "[\n{\"id\":1,\"titulo\":\"a\"},\n{\"id\":2", "",
                                     "junk"};
    for (size_t i = 0; i < sizeof(contents) / sizeof(contents[0]); i++) {
        char err[512];
        struct task_store_report rep;
        size_t len = strlen(contents[i]);
        write_file(tmp_file, contents[i], len);
        ck_assert_int_eq(task_store_check(tmp_file, 0, &rep, err, sizeof(err)), -1);
        size_t now_len;
        char *now = read_file(tmp_file, &now_len);
        ck_assert_msg(now_len == len && memcmp(now, contents[i], len) == 0,
                      "content %zu modified by a check without repair", i);
        free(now);
        ck_assert_int_eq(count_files("tasks.json.", NULL, 0), 0);
    }
}
END_TEST

START_TEST(test_damaged_long_tail)
{
    /* More garbage than one torn record can leave: damage, not a torn tail. */
    size_t cap = 200000;
    char *buf = malloc(cap);
    size_t len = canonical_file(3, buf, cap);
    len -= 3;
    memset(buf + len, 'x', TASK_JSON_RECORD_MAX + 100);
    len += TASK_JSON_RECORD_MAX + 100;
    write_file(tmp_file, buf, len);
    char err[512];
    struct task_store_report rep;
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EBADMSG);
    ck_assert_msg(strstr(err, "byte ") != NULL, "message must give the offset: %s", err);
    struct task_store *s = open_store(&quiet_opts);
    struct task t;
    struct task_meta m;
    make_task(&t, "x", NULL, -1);
    ck_assert_int_eq(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EBADMSG);
    task_store_close(s);
    size_t now_len;
    char *now = read_file(tmp_file, &now_len);
    ck_assert(now_len == len && memcmp(now, buf, len) == 0);
    free(now);
    free(buf);
}
END_TEST

/* The longest remains a torn append can leave (a record of TASK_JSON_RECORD_MAX
 * bytes and its framing, STORE_JUNK_MAX = TASK_JSON_RECORD_MAX + 16) are cut;
 * one byte more is damage. Found by tools/mutate: no test sent a partial
 * record near the bound. */
START_TEST(test_torn_tail_length_bound)
{
    for (size_t extra = 0; extra <= 1; extra++) {
        size_t junk = TASK_JSON_RECORD_MAX + 16 + extra, cap = 200000;
        char *buf = malloc(cap);
        size_t len = canonical_file(3, buf, cap);
        len -= 3; /* "\n]\n" */
        size_t kept = len;
        memcpy(buf + len, ",\n{", 3);
        memset(buf + len + 3, 'x', junk - 3);
        len += junk;
        write_file(tmp_file, buf, len);
        char err[512] = "";
        struct task_store_report rep;
        int rc = task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err));
        size_t now_len;
        char *now = read_file(tmp_file, &now_len);
        if (extra == 0) {
            ck_assert_msg(rc == 0, "%zu bytes of remains: not cut (%s)", junk, err);
            ck_assert_int_eq(rep.torn_cut, 1);
            ck_assert_uint_eq(rep.torn_bytes, junk);
            ck_assert(now_len == kept + 3 && memcmp(now, buf, kept) == 0 &&
                      memcmp(now + kept, "\n]\n", 3) == 0);
        } else {
            ck_assert_msg(rc == -1 && errno == EBADMSG, "%zu bytes of remains: cut as torn", junk);
            ck_assert(now_len == len && memcmp(now, buf, len) == 0);
            ck_assert_int_eq(count_files("tasks.json.", NULL, 0), 0);
        }
        free(now);
        free(buf);
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "rm -f %s/tasks.json.torn-*", tmp_dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* Canonical files whose last line ends near the store's 4096-byte tail block,
 * so that the "\n" or the ',' before the line falls on the block's first byte.
 * Found by fuzz/fuzz_store_check.c: with that "\n" first in the block (a last
 * line of 4092 bytes) a valid file read as damaged, and every append and
 * snapshot failed. */
static const struct {
    uint64_t num_before; /* records before the long one */
    size_t line_len;     /* length of the last record line */
} edge_cases[] = {{0, 4090}, {0, 4091}, {0, 4092}, {0, 4093}, {0, 4094},
                  {1, 4090}, {1, 4091}, {1, 4092}, {1, 4093}, {1, 4094}};

START_TEST(test_last_line_at_block_edge)
{
    uint64_t before = edge_cases[_i].num_before;
    size_t want = edge_cases[_i].line_len;
    size_t cap = 3 * TASK_JSON_RECORD_MAX;
    char *buf = malloc(cap);
    char err[512];
    struct task t;
    struct task_meta m = {before + 1, 1795705200, 4123, NULL};

    /* All records but the last as canonical_file() writes them, then a last
     * one padded through descripcion to exactly want bytes. */
    size_t len = canonical_file(before, buf, cap);
    len -= before > 0 ? 3 : 2;
    if (before > 0) {
        memcpy(buf + len, ",\n", 2);
        len += 2;
    }
    make_task(&t, "long", NULL, -1);
    t.has_descripcion = 1;
    long base = task_json_encode_record(&t, &m, buf + len, cap - len);
    ck_assert_int_gt(base, 0);
    t.descripcion_len = want - (size_t)base;
    ck_assert_uint_le(t.descripcion_len, TASK_DESCRIPCION_MAX);
    memset(t.descripcion, 'd', t.descripcion_len);
    t.descripcion[t.descripcion_len] = '\0';
    ck_assert_int_eq(task_json_encode_record(&t, &m, buf + len, cap - len), (long)want);
    len += want;
    memcpy(buf + len, "\n]\n", 3);
    len += 3;
    write_file(tmp_file, buf, len);

    struct task_store_report rep;
    ck_assert_msg(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)) == 0,
                  "case %d: check: %s", _i, err);
    ck_assert_int_eq(rep.canonicalized + rep.torn_cut + rep.created, 0);
    ck_assert_uint_eq(rep.num_tasks, before + 1);
    struct task_store *s = open_store(&quiet_opts);
    struct task_store_snapshot snap;
    ck_assert_msg(task_store_snapshot(s, &snap, err, sizeof(err)) == 0, "case %d: snapshot: %s", _i,
                  err);
    ck_assert_uint_eq(snap.num_tasks, before + 1);
    ck_assert_uint_eq((size_t)snap.prefix_len + snap.suffix_len, len);
    ck_assert_uint_eq(append_one(s, "after", NULL, -1), before + 2);
    task_store_close(s);
    assert_canonical(before + 2);
    free(buf);
}
END_TEST

START_TEST(test_directory_and_permission)
{
    char err[512];
    struct task_store_report rep;
    ck_assert_int_eq(mkdir(tmp_file, 0755), 0);
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EISDIR);
    ck_assert_msg(strstr(err, tmp_file) != NULL, "message must name the file: %s", err);
    ck_assert_ptr_null(task_store_open(tmp_file, &quiet_opts, err, sizeof(err)));
    ck_assert_int_eq(errno, EISDIR);
    rmdir(tmp_file);

    /* No permission: tests run as root, who may read anything, so a child
     * drops to an unprivileged user first. */
    write_file(tmp_file, "[\n]\n", 4);
    ck_assert_int_eq(chmod(tmp_file, 0600), 0);
    ck_assert_int_eq(chmod(tmp_dir, 0755), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
            _exit(77);
        int rc = task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err));
        int ok = rc == -1 && errno == EACCES && strstr(err, tmp_file) != NULL &&
                 strstr(err, "permission denied") != NULL;
        if (!ok)
            fprintf(stderr, "expected EACCES naming the file, got rc %d: %s\n", rc, err);
        struct task_store *s = task_store_open(tmp_file, &quiet_opts, err, sizeof(err));
        ok = ok && s == NULL && errno == EACCES;
        _exit(ok ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        fprintf(stderr, "skipped: cannot drop privileges to test EACCES\n");
    else
        ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* ---- processes fighting over the lock ---- */

#define NUM_PROCS 8
#define PER_PROC 2000

/* Child p appends PER_PROC tasks (cliente "p<p>", seq 0..) and writes the
 * seqs it got acknowledged to <dir>/acked-<p>, one byte per seq. */
static void appender_child(int p, unsigned race_window_us)
{
    char err[512], cliente[16], path[400];
    struct task_store_options opts = {.fsync = 0,
                                      .race_window_us = race_window_us,
                                      .lock_timeout_ms = 0,
                                      .crash_after_bytes = -1,
                                      .quiet = 1};
    struct task_store *s = task_store_open(tmp_file, &opts, err, sizeof(err));
    if (s == NULL)
        _exit(2);
    char acked[PER_PROC];
    snprintf(cliente, sizeof(cliente), "p%d", p);
    for (int i = 0; i < PER_PROC; i++) {
        struct task t;
        struct task_meta m;
        make_task(&t, "concurrent", cliente, i);
        acked[i] = task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)) == 0;
    }
    task_store_close(s);
    snprintf(path, sizeof(path), "%s/acked-%d", tmp_dir, p);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, acked, sizeof(acked)) != (ssize_t)sizeof(acked))
        _exit(3);
    close(fd);
    _exit(0);
}

/* Runs the appenders; returns how many acknowledged tasks are missing from
 * the file, reading it line by line and tolerating damage. */
static long run_appenders(unsigned race_window_us, long *num_acked, long *num_found)
{
    pid_t pids[NUM_PROCS];
    for (int p = 0; p < NUM_PROCS; p++) {
        pids[p] = fork();
        ck_assert_int_ge(pids[p], 0);
        if (pids[p] == 0)
            appender_child(p, race_window_us);
    }
    for (int p = 0; p < NUM_PROCS; p++) {
        int status;
        ck_assert_int_eq(waitpid(pids[p], &status, 0), pids[p]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "appender %d failed", p);
    }
    static char found[NUM_PROCS][PER_PROC];
    memset(found, 0, sizeof(found));
    size_t len;
    char *content = read_file(tmp_file, &len);
    struct task_record *rec = malloc(sizeof(*rec));
    *num_found = 0;
    for (char *l = content; l < content + len;) {
        char *nl = memchr(l, '\n', (size_t)(content + len - l));
        size_t l_len = nl != NULL ? (size_t)(nl - l) : (size_t)(content + len - l);
        size_t end;
        char err[256];
        int p;
        if (l_len > 0 && l[0] == '{' &&
            task_json_decode_record(l, l_len, rec, &end, err, sizeof(err)) == 0 &&
            sscanf(rec->task.cliente, "p%d", &p) == 1 && p >= 0 && p < NUM_PROCS &&
            rec->task.seq >= 0 && rec->task.seq < PER_PROC) {
            found[p][rec->task.seq]++;
            (*num_found)++;
        }
        l = nl != NULL ? nl + 1 : content + len;
    }
    long lost = 0;
    *num_acked = 0;
    for (int p = 0; p < NUM_PROCS; p++) {
        char path[400];
        snprintf(path, sizeof(path), "%s/acked-%d", tmp_dir, p);
        size_t alen;
        char *acked = read_file(path, &alen);
        ck_assert_uint_eq(alen, PER_PROC);
        for (int i = 0; i < PER_PROC; i++) {
            *num_acked += acked[i];
            if (acked[i] && found[p][i] == 0)
                lost++;
        }
        free(acked);
    }
    free(rec);
    free(content);
    return lost;
}

START_TEST(test_concurrent_appends)
{
    write_file(tmp_file, "[\n]\n", 4);
    long acked, found;
    if (locking_build()) {
        long lost = run_appenders(0, &acked, &found);
        ck_assert_int_eq(acked, NUM_PROCS * PER_PROC);
        ck_assert_int_eq(lost, 0);
        ck_assert_int_eq(found, NUM_PROCS * PER_PROC);
        assert_canonical(NUM_PROCS * PER_PROC); /* ids 1..16000 in order, valid JSON */
    } else {
        /* Without locks, a race window between reading the tail and writing
         * makes two processes write the same id at the same offset. */
        long lost = run_appenders(200, &acked, &found);
        fprintf(stderr, "locking off: %ld acknowledged, %ld found, %ld lost\n", acked, found, lost);
        ck_assert_msg(lost > 0, "expected lost tasks without locking, found none");
    }
}
END_TEST

/* The pitfall, with raw fcntl: closing ANY descriptor drops the lock taken
 * through another one. A child asks the kernel who holds the lock. */
static short lock_seen_by_child(const char *path, pid_t *holder)
{
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int fd = open(path, O_RDWR);
        if (fd < 0 || fcntl(fd, F_GETLK, &fl) < 0)
            _exit(1);
        if (write(pfd[1], &fl, sizeof(fl)) != (ssize_t)sizeof(fl))
            _exit(1);
        _exit(0);
    }
    close(pfd[1]);
    struct flock fl;
    ck_assert_int_eq(read(pfd[0], &fl, sizeof(fl)), (ssize_t)sizeof(fl));
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    if (holder != NULL)
        *holder = fl.l_pid;
    return fl.l_type;
}

struct slow_append {
    struct task_store *s;
    int rc;
};

static void *slow_append_thread(void *arg)
{
    struct slow_append *sa = arg;
    struct task t;
    struct task_meta m;
    char err[512];
    make_task(&t, "slow", NULL, -1);
    sa->rc = task_store_append(sa->s, &t, &m, NULL, 0, NULL, err, sizeof(err));
    return NULL;
}

START_TEST(test_close_drops_lock)
{
    write_file(tmp_file, "[\n]\n", 4);
    pid_t holder;

    /* 1. The hazard itself. */
    int fd1 = open(tmp_file, O_RDWR);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    ck_assert_int_eq(fcntl(fd1, F_SETLK, &fl), 0);
    ck_assert_int_eq(lock_seen_by_child(tmp_file, &holder), F_WRLCK);
    ck_assert_int_eq(holder, getpid());
    int fd2 = open(tmp_file, O_RDONLY); /* e.g. a library peeking at the file */
    close(fd2);
    ck_assert_msg(lock_seen_by_child(tmp_file, NULL) == F_UNLCK,
                  "expected the lock to be gone after closing another descriptor");
    close(fd1);

    /* 2. The store's API cannot do that: while an append holds the lock (in a
     * thread, inside its race window), a second open and a check are refused
     * before they open anything, and the lock stays held. */
    struct task_store_options opts = {.fsync = 0,
                                      .race_window_us = 600000,
                                      .lock_timeout_ms = 0,
                                      .crash_after_bytes = -1,
                                      .quiet = 1};
    struct task_store *s = open_store(&opts);
    struct slow_append sa = {s, -1};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, slow_append_thread, &sa), 0);
    struct timespec ts = {0, 150 * 1000000};
    nanosleep(&ts, NULL);
    char err[512];
    struct task_store_report rep;
    ck_assert_ptr_null(task_store_open(tmp_file, &quiet_opts, err, sizeof(err)));
    ck_assert_int_eq(errno, EBUSY);
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EBUSY);
    if (locking_build()) {
        ck_assert_int_eq(lock_seen_by_child(tmp_file, &holder), F_WRLCK);
        ck_assert_int_eq(holder, getpid());
    }
    pthread_join(th, NULL);
    ck_assert_int_eq(sa.rc, 0);
    task_store_close(s);
    assert_canonical(1);
}
END_TEST

/* A writer killed mid-append (after k bytes): the next append repairs. */
START_TEST(test_killed_writer)
{
    static const long ks[] = {0, 1, 2, 3, 10, 40, -3, -2, -1, 1000};
    for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++) {
        write_file(tmp_file, "[\n]\n", 4);
        struct task_store *s = open_store(&quiet_opts);
        for (int j = 1; j <= 3; j++)
            append_one(s, "before", "c", j);
        task_store_close(s);
        struct stat st;
        stat(tmp_file, &st);
        /* The record for task 4 is ",\n" + line + "\n]\n"; negative k counts
         * from its end. */
        char line[1024];
        struct task t;
        make_task(&t, "victim", "c", 4);
        /* The record's length depends on the writer's pid, the time and the host name
         * (the store records all three). */
        char host[TASK_HOST_MAX + 1] = "";
        if (gethostname(host, sizeof(host)) < 0)
            host[0] = '\0';
        struct task_meta m = {4, time(NULL), 0, host};
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        m.pid = pid == 0 ? getpid() : pid;
        long wlen = 2 + task_json_encode_record(&t, &m, line, sizeof(line)) + 3;
        long k = ks[i] < 0 ? wlen + ks[i] : ks[i];
        if (pid == 0) {
            struct task_store_options opts = {.fsync = 0,
                                              .race_window_us = 0,
                                              .lock_timeout_ms = 0,
                                              .crash_after_bytes = k,
                                              .quiet = 1};
            char err[512];
            struct task_store *cs = task_store_open(tmp_file, &opts, err, sizeof(err));
            struct task_meta cm;
            if (cs != NULL)
                task_store_append(cs, &t, &cm, NULL, 0, NULL, err, sizeof(err));
            _exit(1); /* not reached: the hook kills us */
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                      "k=%ld: writer was not killed", k);
        int complete = k >= wlen - 3; /* the whole record reached the file */
        s = open_store(&quiet_opts);
        uint64_t id = append_one(s, "after", "c", 5);
        task_store_close(s);
        ck_assert_msg(id == (uint64_t)(complete ? 5 : 4), "k=%ld: next id %" PRIu64, k, id);
        assert_canonical(id);
        char *content = read_file(tmp_file, NULL);
        ck_assert_int_eq(complete, strstr(content, "\"victim\"") != NULL);
        free(content);
        int torn_files = count_files("tasks.json.torn-", NULL, 0);
        int expect_torn = k > 0 && k != wlen - 3 && k < wlen;
        ck_assert_msg(torn_files == expect_torn, "k=%ld: torn files expected %d got %d", k,
                      expect_torn, torn_files);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -f %s/tasks.json.torn-*", tmp_dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

/* A child holds the lock with raw fcntl; appends time out, snapshots do not
 * wait behind it (GET /tareas must stay served behind a stopped writer). */
START_TEST(test_lock_timeout)
{
    write_file(tmp_file, "[\n]\n", 4);
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        int fd = open(tmp_file, O_RDWR);
        if (fd < 0 || fcntl(fd, F_SETLK, &fl) < 0)
            _exit(1);
        char c = 'x';
        if (write(pfd[1], &c, 1) != 1)
            _exit(1);
        for (int i = 0; i < 300; i++) /* bounded: 30 s at most */
            usleep(100000);
        _exit(0);
    }
    char c;
    ck_assert_int_eq(read(pfd[0], &c, 1), 1);
    struct task_store_options opts = {.fsync = 0,
                                      .race_window_us = 0,
                                      .lock_timeout_ms = 1000,
                                      .crash_after_bytes = -1,
                                      .quiet = 1};
    struct task_store *s = open_store(&opts);
    struct task t;
    struct task_meta m;
    char err[512];
    make_task(&t, "waits", NULL, -1);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    long ms = ms_since(&t0);
    ck_assert_msg(ms >= 990, "gave up after %ld ms, before the 1000 ms timeout", ms);
    ck_assert_msg(strstr(err, tmp_file) != NULL, "message must name the file: %s", err);
    /* The requests queued behind it must not wait a full timeout each (five
     * would take 5 s): within the busy time each waits one short tick. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)), -1);
        ck_assert_int_eq(errno, ETIMEDOUT);
    }
    ms = ms_since(&t0);
    ck_assert_msg(ms < 2500, "5 appends in the busy time took %ld ms", ms);
    struct task_store_snapshot snap;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ms = ms_since(&t0);
    /* Its read lock waits 100 ms at most, and less in the busy time after the
     * append's timeout; waiting for the holder would take its 30 s. */
    ck_assert_msg(ms < 5000, "snapshot waited %ld ms behind the lock holder", ms);
    ck_assert_int_eq(snap.prefix_len, 2);
    ck_assert_uint_eq(snap.num_tasks, 0);
    /* The timer is restored (the handler stays, as task_store.h says). */
    struct sigaction sa;
    sigaction(SIGALRM, NULL, &sa);
    ck_assert(sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
    struct itimerval it;
    getitimer(ITIMER_REAL, &it);
    ck_assert(it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0);
    /* Past the busy time, one request waits in full again: the holder may be back. */
    usleep(1100000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ms = ms_since(&t0);
    ck_assert_msg(ms >= 990, "after the busy time, gave up after %ld ms", ms);
    char *content = read_file(tmp_file, NULL);
    ck_assert_str_eq(content, "[\n]\n");
    free(content);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ck_assert_int_eq(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)), 0);
    ck_assert_uint_eq(m.id, 1);
    task_store_close(s);
}
END_TEST

/* Behind a stopped reader (a taskctl verify on Ctrl-Z), a read lock is still
 * granted at once: that must not end the writers' busy time, or every POST
 * after a GET would wait the full timeout again. */
START_TEST(test_busy_time_survives_shared_read)
{
    write_file(tmp_file, "[\n]\n", 4);
    struct lock_holder reader = hold_lock(F_RDLCK);
    struct task_store_options opts = {.fsync = 0,
                                      .race_window_us = 0,
                                      .lock_timeout_ms = 1000,
                                      .crash_after_bytes = -1,
                                      .quiet = 1};
    struct task_store *s = open_store(&opts);
    struct task t;
    struct task_meta m;
    struct task_store_snapshot snap;
    char err[512];
    struct timespec t0;
    make_task(&t, "waits", NULL, -1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    long ms = ms_since(&t0);
    ck_assert_msg(ms >= 990, "gave up after %ld ms, before the 1000 ms timeout", ms);
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, ETIMEDOUT);
    ms = ms_since(&t0);
    ck_assert_msg(ms < 500, "after a shared read lock, an append waited %ld ms again", ms);
    release_lock(reader);
    ck_assert_int_eq(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)), 0);
    ck_assert_uint_eq(m.id, 1);
    task_store_close(s);
}
END_TEST

/* ---- the size hint: appends and counts without fstat() ---- */

enum { OTHER_APPEND, OTHER_RESET, OTHER_CRASH, OTHER_REPAIR };

/* Another process acts on the file while this one keeps its store open: n
 * appends (each must get the next id and record its own pid), a reset, an
 * append killed after n bytes, or a repair by task_store_check(). */
static void other_process(int what, long n)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char err[512];
        struct task_store_options opts = quiet_opts;
        if (what == OTHER_REPAIR) {
            struct task_store_report rep;
            _exit(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)) == 0 &&
                          rep.torn_cut
                      ? 0
                      : 1);
        }
        if (what == OTHER_CRASH)
            opts.crash_after_bytes = n;
        /* Its own store: the inherited one belongs to the parent. */
        struct task_store *cs = task_store_open(tmp_file, &opts, err, sizeof(err));
        if (cs == NULL)
            _exit(2);
        int rc = 0;
        if (what == OTHER_RESET && task_store_reset(cs, err, sizeof(err)) < 0)
            rc = 3;
        struct task t;
        struct task_meta m;
        uint64_t prev = 0;
        make_task(&t, "other", "c", 1);
        for (long i = 0; what != OTHER_RESET && i < (what == OTHER_CRASH ? 1 : n); i++) {
            if (task_store_append(cs, &t, &m, NULL, 0, NULL, err, sizeof(err)) < 0) {
                rc = 4;
                break;
            }
            if (m.pid != (long)getpid() || (prev != 0 && m.id != prev + 1)) {
                rc = 5;
                break;
            }
            prev = m.id;
        }
        task_store_close(cs);
        _exit(what == OTHER_CRASH ? 6 : rc);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (what == OTHER_CRASH)
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                      "the crashing writer was not killed (status %d)", status);
    else
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "other process (%d, %ld) failed with status %d", what, n, status);
}

static off_t file_size(void)
{
    struct stat st;
    ck_assert_int_eq(stat(tmp_file, &st), 0);
    return st.st_size;
}

/* Which way the window read around the size hint must go (task_store.c). */
enum { HINT_INSIDE, HINT_PAST, HINT_SHRANK };

static const struct {
    long before;  /* appends by another process */
    int reset;    /* then a reset */
    long after;   /* then appends */
    long crash_k; /* then a writer killed after this many bytes, if >= 0 */
    int repair;   /* then a repair by the start-up check */
    int where;    /* where the file's end lies from the hint */
    const char *description;
} hint_cases[] = {
    {3, 0, 0, -1, 0, HINT_INSIDE, "3 appends by another process: inside the window"},
    {400, 0, 0, -1, 0, HINT_PAST, "400 appends by another process: past the window"},
    {0, 1, 0, -1, 0, HINT_SHRANK, "a reset to [\\n]\\n"},
    {0, 1, 5, -1, 0, HINT_SHRANK, "a reset, 5 appends"},
    {0, 1, 60, -1, 0, HINT_INSIDE, "a reset, 60 appends: all bytes new, the end past the hint"},
    {0, 1, 400, -1, 0, HINT_PAST, "a reset, 400 appends"},
    {3, 0, 0, 40, 0, HINT_INSIDE, "3 appends, a writer killed mid-append: a torn tail to cut"},
    {3, 0, 0, 40, 1, HINT_INSIDE, "3 appends, a killed writer, a repair"},
    {0, 0, 0, 40, 1, HINT_INSIDE, "a killed writer, a repair: back to the hint's size"},
    {400, 1, 60, 60, 0, HINT_INSIDE, "400 appends, a reset, 60, a killed writer"},
};

START_TEST(test_size_hint)
{
    char err[512];
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    for (int j = 1; j <= 50; j++)
        ck_assert_uint_eq(append_one(s, "mine", "c", j), (uint64_t)j);
    uint64_t num = 0;
    ck_assert_int_eq(task_store_count(s, &num, err, sizeof(err)), 0);
    ck_assert_uint_eq(num, 50);
    off_t hint = file_size();

    if (hint_cases[_i].before > 0)
        other_process(OTHER_APPEND, hint_cases[_i].before);
    if (hint_cases[_i].reset)
        other_process(OTHER_RESET, 0);
    if (hint_cases[_i].after > 0)
        other_process(OTHER_APPEND, hint_cases[_i].after);
    uint64_t expected = (hint_cases[_i].reset ? 0 : 50 + (uint64_t)hint_cases[_i].before) +
                        (uint64_t)hint_cases[_i].after;
    if (hint_cases[_i].crash_k >= 0)
        other_process(OTHER_CRASH, hint_cases[_i].crash_k);
    if (hint_cases[_i].repair)
        other_process(OTHER_REPAIR, 0);

    /* The case must take the path it is meant for. */
    off_t size = file_size();
    int where = size < hint ? HINT_SHRANK : size < hint + 12288 ? HINT_INSIDE : HINT_PAST;
    ck_assert_msg(where == hint_cases[_i].where, "case %d (%s): size %lld, hint %lld: where %d", _i,
                  hint_cases[_i].description, (long long)size, (long long)hint, where);

    /* A count first (no lock, a torn tail not counted), then an append. */
    struct task_store_snapshot snap;
    ck_assert_msg(task_store_count(s, &num, err, sizeof(err)) == 0, "count: %s", err);
    ck_assert_msg(num == expected, "case %d (%s): count expected %" PRIu64 " got %" PRIu64, _i,
                  hint_cases[_i].description, expected, num);
    struct task t;
    struct task_meta m;
    make_task(&t, "mine again", "c", 1);
    ck_assert_msg(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)) == 0, "append: %s",
                  err);
    ck_assert_msg(m.id == expected + 1, "case %d (%s): id expected %" PRIu64 " got %" PRIu64, _i,
                  hint_cases[_i].description, expected + 1, m.id);
    ck_assert_int_eq(m.pid, getpid());
    ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
    ck_assert_uint_eq(snap.num_tasks, expected + 1);
    ck_assert_int_eq(task_store_count(s, &num, err, sizeof(err)), 0);
    ck_assert_uint_eq(num, expected + 1);
    ck_assert_int_eq(snap.prefix_len + (off_t)snap.suffix_len, file_size());
    /* Once more after the other process, from the new hint. */
    other_process(OTHER_APPEND, 2);
    ck_assert_uint_eq(append_one(s, "last", "c", 2), expected + 4);
    task_store_close(s);
    assert_canonical(expected + 4);
}
END_TEST

/* task_store_count() agrees with the snapshot, never writes, and reports
 * damage as the snapshot does. */
START_TEST(test_count)
{
    char err[512], serr[512];
    uint64_t num = 99;
    struct task_store_snapshot snap;
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    ck_assert_int_eq(task_store_count(s, &num, err, sizeof(err)), 0);
    ck_assert_uint_eq(num, 0);
    for (uint64_t id = 1; id <= 30; id++) {
        append_one(s, "t", NULL, -1);
        ck_assert_int_eq(task_store_count(s, &num, err, sizeof(err)), 0);
        ck_assert_int_eq(task_store_snapshot(s, &snap, err, sizeof(err)), 0);
        ck_assert_uint_eq(num, id);
        ck_assert_uint_eq(snap.num_tasks, id);
    }
    task_store_close(s);

    /* A torn tail: counted up to the last complete record, left in place. */
    size_t len;
    char *before = read_file(tmp_file, &len);
    char *torn = malloc(len + 64);
    memcpy(torn, before, len - 3);
    memcpy(torn + len - 3, ",\n{\"id\":31,\"titu", 16);
    write_file(tmp_file, torn, len - 3 + 16);
    s = open_store(&quiet_opts);
    ck_assert_int_eq(task_store_count(s, &num, err, sizeof(err)), 0);
    ck_assert_uint_eq(num, 30);
    size_t after_len;
    char *after = read_file(tmp_file, &after_len);
    ck_assert_uint_eq(after_len, len - 3 + 16);
    ck_assert_int_eq(memcmp(after, torn, after_len), 0);
    free(after);
    task_store_close(s);

    /* Damage: the same error as the snapshot's. */
    memcpy(torn + len - 3, "\nxx\n]\n", 6);
    write_file(tmp_file, torn, len + 3);
    s = open_store(&quiet_opts);
    ck_assert_int_eq(task_store_snapshot(s, &snap, serr, sizeof(serr)), -1);
    ck_assert_int_eq(errno, EBADMSG);
    ck_assert_int_eq(task_store_count(s, &num, err, sizeof(err)), -1);
    ck_assert_int_eq(errno, EBADMSG);
    ck_assert_str_eq(err, serr);
    ck_assert_msg(strstr(err, tmp_file) != NULL, "message must name the file: %s", err);
    task_store_close(s);
    free(torn);
    free(before);
}
END_TEST

/* A count does not wait behind a writer that holds the lock (a stopped one):
 * /health stays served. */
START_TEST(test_count_lock_free)
{
    char err[512];
    write_file(tmp_file, "[\n]\n", 4);
    struct task_store *s = open_store(&quiet_opts);
    for (int j = 1; j <= 3; j++)
        append_one(s, "t", NULL, j);
    task_store_close(s); /* the child must not inherit it */
    struct lock_holder writer = hold_lock(F_WRLCK);
    struct timespec t0;
    uint64_t num = 0, num2 = 0;
    s = open_store(&quiet_opts);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(task_store_count(s, &num, err, sizeof(err)), 0); /* fstat(), no hint */
    for (int i = 0; i < 39; i++)                                      /* then from the hint */
        ck_assert_int_eq(task_store_count(s, &num2, err, sizeof(err)), 0);
    long ms = ms_since(&t0);
    release_lock(writer);
    ck_assert_uint_eq(num, 3);
    ck_assert_uint_eq(num2, 3);
    /* Forty counts through the read lock would wait at least 1,000 ms behind
     * the holder (100 ms, then 25 ms each in the busy time, then 100 again);
     * without a lock they take microseconds: a wide gap on a busy machine. */
    ck_assert_msg(ms < 800, "40 counts took %ld ms behind the lock holder", ms);
    task_store_close(s);
}
END_TEST

/* Mounts a 64 KiB tmpfs on dir in a private mount namespace of this process. */
static int mount_small_tmpfs(const char *dir)
{
    if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", dir, "tmpfs", 0, "size=64k") < 0)
        return -1;
    return 0;
}

/* A full disk: a 64 KiB tmpfs. Runs as its own meson test (argument "disk-full"),
 * which main() skips with exit 77 where mounting is not allowed. */
START_TEST(test_disk_full)
{
    ck_assert_msg(mount_small_tmpfs(tmp_dir) == 0, "mount a small tmpfs on %s: %s", tmp_dir,
                  strerror(errno));
    char err[512];
    struct task_store_report rep;
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), 0);
    struct task_store_options opts = {
        .fsync = 1, .race_window_us = 0, .lock_timeout_ms = 0, .crash_after_bytes = -1, .quiet = 1};
    struct task_store *s = open_store(&opts);
    uint64_t acked = 0;
    int failed_errno = 0;
    for (int i = 0; i < 1000; i++) {
        struct task t;
        struct task_meta m;
        make_task(&t, "fills the disk", "c", i);
        memset(t.descripcion, 'd', 3000);
        t.descripcion_len = 3000;
        t.has_descripcion = 1;
        if (task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)) < 0) {
            failed_errno = errno;
            break;
        }
        ck_assert_uint_eq(m.id, ++acked);
    }
    ck_assert_msg(failed_errno == ENOSPC, "expected ENOSPC, got %s (%s)", strerror(failed_errno),
                  err);
    ck_assert_msg(strstr(err, tmp_file) != NULL, "message must name the file: %s", err);
    ck_assert_uint_gt(acked, 5);
    /* Every acknowledged task is there and the file is valid. */
    assert_canonical(acked);
    /* A smaller task may still fit; whatever happens, the rule holds. */
    struct task t;
    struct task_meta m;
    make_task(&t, "small", "c", 9999);
    if (task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)) == 0)
        acked++;
    assert_canonical(acked);
    task_store_close(s);
    umount2(tmp_dir, MNT_DETACH);
}
END_TEST

/* A rewrite into the canonical layout that does not fit: the file keeps its
 * original bytes (before the space was reserved, a half-done rewrite was
 * left behind, and the next start-up cut it as a torn tail: tasks lost),
 * and the same repair succeeds once there is room. */
START_TEST(test_canonicalize_disk_full)
{
    ck_assert_msg(mount_small_tmpfs(tmp_dir) == 0, "mount a small tmpfs on %s: %s", tmp_dir,
                  strerror(errno));
    /* An array written by another program, records without ids: the
     * canonical layout is longer (each record gains "id":N and a line). */
    enum { N = 1200 };
    size_t cap = 64 * 1024, len = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    text[len++] = '[';
    for (int i = 1; i <= N; i++)
        len +=
            (size_t)snprintf(text + len, cap - len, "%s{\"titulo\":\"t%d\"}", i > 1 ? "," : "", i);
    text[len++] = ']';
    ck_assert_uint_lt(len, 24 * 1024);
    write_file(tmp_file, text, len);

    /* Leave room for the saved copy of the original, not for the growth. */
    char filler[4200];
    snprintf(filler, sizeof(filler), "%s/filler", tmp_dir);
    struct statvfs vfs;
    ck_assert_int_eq(statvfs(tmp_dir, &vfs), 0);
    size_t page = 4096, keep = (len + page - 1) / page * page + 2 * page;
    size_t free_bytes = (size_t)vfs.f_bavail * vfs.f_frsize;
    ck_assert_uint_gt(free_bytes, keep);
    char *zeros = calloc(1, free_bytes - keep);
    ck_assert_ptr_nonnull(zeros);
    write_file(filler, zeros, free_bytes - keep);
    free(zeros);

    char err[512];
    struct task_store_report rep;
    memset(&rep, 0, sizeof(rep));
    ck_assert_int_eq(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)), -1);
    ck_assert_msg(errno == ENOSPC, "expected ENOSPC, got %s: %s", strerror(errno), err);
    ck_assert_msg(strstr(err, tmp_file) != NULL, "message must name the file: %s", err);
    ck_assert_int_eq(rep.restore_failed, 0);
    ck_assert_msg(count_files("tasks.json.orig-", NULL, 0) == 0,
                  "the copy of an untouched original was left behind");
    size_t now_len = 0;
    char *now = read_file(tmp_file, &now_len);
    ck_assert_msg(now_len == len && memcmp(now, text, len) == 0,
                  "the file changed: %zu bytes, was %zu", now_len, len);
    free(now);

    /* Room again: the repair goes through, every record kept. */
    ck_assert_int_eq(unlink(filler), 0);
    memset(&rep, 0, sizeof(rep));
    ck_assert_msg(task_store_check(tmp_file, TASK_STORE_REPAIR, &rep, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_int_eq(rep.canonicalized, 1);
    ck_assert_uint_eq(rep.num_tasks, N);
    ck_assert_uint_eq(rep.renumbered, N);
    assert_canonical(N);
    free(text);
    umount2(tmp_dir, MNT_DETACH);
}
END_TEST

/* Whether this process may mount a tmpfs (root, or a user namespace that allows it):
 * probed in a child, so that the probe's mount namespace dies with it. */
static int can_mount_tmpfs(void)
{
    char dir[] = "/tmp/test_task_store-probe-XXXXXX";
    if (mkdtemp(dir) == NULL)
        return 0;
    pid_t pid = fork();
    if (pid == 0)
        _exit(mount_small_tmpfs(dir) == 0 ? 0 : 1);
    int status = 0;
    int ok =
        pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    rmdir(dir);
    return ok;
}

/* Only the disk-full case: exit 77 (skipped) where no tmpfs can be mounted. */
static int run_disk_full(void)
{
    if (!can_mount_tmpfs()) {
        fprintf(stderr, "skipped: cannot mount a small tmpfs here (needs root or "
                        "CAP_SYS_ADMIN)\n");
        return 77;
    }
    Suite *su = suite_create("task_store_disk_full");
    TCase *tc = tcase_create("disk_full");
    tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_disk_full);
    tcase_add_test(tc, test_canonicalize_disk_full);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    test_tmp_begin("test_task_store");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "disk-full") == 0)
        return run_disk_full();
    Suite *su = suite_create("task_store");
    TCase *tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup_dir, teardown_dir);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_create_append_find);
    tcase_add_test(tc, test_snapshot_find_many);
    tcase_add_test(tc, test_find_hints);
    tcase_add_test(tc, test_snapshot_intact);
    tcase_add_test(tc, test_second_open_refused);
    tcase_add_loop_test(tc, test_torn_every_offset, 0, 4);
    tcase_add_loop_test(tc, test_repair_table, 0,
                        (int)(sizeof(repair_cases) / sizeof(repair_cases[0])));
    tcase_add_test(tc, test_check_only_writes_nothing);
    if (TASKSERVER_LOCKING) /* no locks: nothing to tell a read lock from a write lock */
        tcase_add_test(tc, test_check_canonical_read_lock_only);
    tcase_add_test(tc, test_damaged_long_tail);
    tcase_add_test(tc, test_torn_tail_length_bound);
    tcase_add_loop_test(tc, test_last_line_at_block_edge, 0,
                        (int)(sizeof(edge_cases) / sizeof(edge_cases[0])));
    tcase_add_test(tc, test_directory_and_permission);
    suite_add_tcase(su, tc);

    TCase *tp = tcase_create("processes");
    tcase_add_checked_fixture(tp, setup_dir, teardown_dir);
    tcase_set_timeout(tp, 120);
    tcase_add_test(tp, test_concurrent_appends);
    tcase_add_test(tp, test_close_drops_lock);
    tcase_add_test(tp, test_killed_writer);
    tcase_add_loop_test(tp, test_size_hint, 0, (int)(sizeof(hint_cases) / sizeof(hint_cases[0])));
    tcase_add_test(tp, test_count);
    if (TASKSERVER_LOCKING)
        tcase_add_test(tp, test_count_lock_free); /* no locks, nothing to wait behind */
    if (TASKSERVER_LOCKING) {                     /* no locks, no timeout to test */
        tcase_add_test(tp, test_lock_timeout);
        tcase_add_test(tp, test_busy_time_survives_shared_read);
    }
    suite_add_tcase(su, tp);

    SRunner *sr = srunner_create(su);
    test_tmp_begin("test_task_store");
    srunner_run_all(sr, CK_NORMAL);
    test_tmp_end();
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
