/* fuzz_store_check.c - libFuzzer harness: the start-up check either makes any file canonical,
 * keeping what it replaced, or refuses and leaves the file exactly as it was.
 *
 * Build and run with tools/fuzz store_check SECONDS. Each input becomes the
 * content of tasks.json in a private directory (on tmpfs when there is one:
 * the repair fsyncs what it saves, and a disk would make that the cost of
 * every run). Then task_store_check(REPAIR) runs, and:
 *
 *   -1  the file is byte for byte the input, and nothing was saved beside it;
 *    0  the file is canonical by an independent reading here, a plain check
 *       agrees and changes nothing, what the report says was done matches
 *       the bytes (created, cut, rewritten or left alone), the saved copy
 *       holds the original (canonicalized) or the cut bytes (torn), and the
 *       store then opens, appends id n + 1, snapshots and finds it.
 *
 * A broken promise is a crash (__builtin_trap), so libFuzzer saves the input.
 * The store never waits for a lock here (no other process), so its SIGALRM
 * timer is never armed. The log module is replaced by the stubs below: a
 * warning for every repaired input would drown libFuzzer's own output.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "task_json.h"
#include "task_store.h"

#define FUZZ_FILE_NAME "tasks.json"

static char fuzz_dir[256];
static char fuzz_path[512];

/* ---- log stubs: warnings are expected here, errors are not ---- */

void log_init(const char *prog)
{
    (void)prog;
}

void log_set_quiet(int quiet)
{
    (void)quiet;
}

void log_info(const char *fmt, ...)
{
    (void)fmt;
}

void log_warn(const char *fmt, ...)
{
    (void)fmt;
}

void log_task(const char *fmt, ...)
{
    (void)fmt;
}

/* The store logs an error only when a system call it cannot recover from
 * fails (unlock, undo of an append): on a private tmpfs file that is a bug. */
void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_store_check: unexpected log_error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    __builtin_trap();
}

static void check(int ok)
{
    if (!ok)
        __builtin_trap();
}

static void die(const char *what, const char *path)
{
    fprintf(stderr, "fuzz_store_check: %s %s: %s\n", what, path, strerror(errno));
    abort();
}

/* ---- the private directory ---- */

static void remove_dir(void)
{
    DIR *d = opendir(fuzz_dir);
    struct dirent *e;
    char p[1024];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", fuzz_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(fuzz_dir);
}

/* Created once per process, removed at exit (libFuzzer exits through exit()
 * at the end of -max_total_time; after a crash it may stay behind). */
static void setup_dir(void)
{
    struct stat st;
    const char *base = getenv("FUZZ_TMPDIR");

    if (base == NULL)
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                   ? "/dev/shm"
                   : (getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fuzz_store_check.XXXXXX", base);
    if (mkdtemp(fuzz_dir) == NULL)
        die("mkdtemp", fuzz_dir);
    snprintf(fuzz_path, sizeof(fuzz_path), "%s/%s", fuzz_dir, FUZZ_FILE_NAME);
    atexit(remove_dir);
}

static void write_whole(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t done = 0;

    if (fd < 0)
        die("open", path);
    while (done < size) {
        ssize_t w = write(fd, data + done, size - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write", path);
        done += (size_t)w;
    }
    if (close(fd) < 0)
        die("close", path);
}

/* Reads a whole file into a heap buffer (NUL added); NULL if it is missing. */
static char *read_whole(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf;
    size_t got = 0;

    if (fd < 0) {
        if (errno == ENOENT)
            return NULL;
        die("open", path);
    }
    if (fstat(fd, &st) < 0)
        die("fstat", path);
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL)
        abort();
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die("read", path);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *len = got;
    return buf;
}

/* Removes everything beside tasks.json; returns how many files there were
 * and checks that the one saved file, if any, is the one the report names. */
static int remove_saved(const char *saved_path)
{
    DIR *d = opendir(fuzz_dir);
    struct dirent *e;
    char p[1024];
    int n = 0;

    if (d == NULL)
        die("opendir", fuzz_dir);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            strcmp(e->d_name, FUZZ_FILE_NAME) == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", fuzz_dir, e->d_name);
        check(saved_path != NULL && strcmp(p, saved_path) == 0);
        if (unlink(p) < 0)
            die("unlink", p);
        n++;
    }
    closedir(d);
    return n;
}

/* ---- what canonical means, read independently of task_store.c ---- */

/* "[\n]\n", or "[\n" + records joined by ",\n" + "\n]\n", the records one per
 * line with ids 1..n, each exactly one JSON object. Returns n. */
static uint64_t canonical_count(const char *f, size_t len)
{
    struct task_record *rec = malloc(sizeof(*rec));
    char err[128];
    uint64_t n = 0;
    size_t at = 2;

    if (rec == NULL)
        abort();
    check(len >= 4 && memcmp(f, "[\n", 2) == 0 && memcmp(f + len - 2, "]\n", 2) == 0);
    if (len == 4) {
        free(rec);
        return 0;
    }
    for (;;) {
        const char *nl = memchr(f + at, '\n', len - at);
        check(nl != NULL);
        size_t line_len = (size_t)(nl - (f + at));
        int comma = line_len > 0 && f[at + line_len - 1] == ',';
        size_t rec_len = line_len - (size_t)comma;
        size_t end = 0;
        check(rec_len > 0 && rec_len <= TASK_JSON_RECORD_MAX);
        check(task_json_decode_record(f + at, rec_len, rec, &end, err, sizeof(err)) == 0);
        check(end == rec_len);
        check(rec->id == ++n);
        at += line_len + 1;
        if (!comma)
            break;
    }
    check(len - at == 2); /* only "]\n" after the last record */
    free(rec);
    return n;
}

/* ---- the store, after a successful check ---- */

static void check_store_works(uint64_t num_tasks, size_t file_len)
{
    struct task_store_options opts;
    struct task_store_snapshot snap;
    struct task_meta meta;
    struct task *t = calloc(1, sizeof(*t));
    char err[512];
    char line[TASK_JSON_RECORD_MAX];
    char found[TASK_JSON_RECORD_MAX];
    size_t line_len = 0, found_len = 0, now_len = 0;

    if (t == NULL)
        abort();
    memset(&opts, 0, sizeof(opts));
    opts.crash_after_bytes = -1;
    opts.quiet = 1;
    memcpy(t->titulo, "fuzz", 5);
    t->titulo_len = 4;
    t->seq = 7;

    struct task_store *s = task_store_open(fuzz_path, &opts, err, sizeof(err));
    check(s != NULL);
    check(task_store_snapshot(s, &snap, err, sizeof(err)) == 0);
    check(snap.num_tasks == num_tasks);
    check((size_t)snap.prefix_len + snap.suffix_len == file_len);

    check(task_store_append(s, t, &meta, line, sizeof(line), &line_len, err, sizeof(err)) == 0);
    check(meta.id == num_tasks + 1);

    check(task_store_snapshot(s, &snap, err, sizeof(err)) == 0);
    check(snap.num_tasks == num_tasks + 1);
    check(task_store_find(s, &snap, meta.id, found, sizeof(found), &found_len) == 1);
    check(found_len == line_len && memcmp(found, line, line_len) == 0);
    if (num_tasks > 0) {
        check(task_store_find(s, &snap, 1, found, sizeof(found), &found_len) == 1);
        check(task_store_find(s, &snap, num_tasks, found, sizeof(found), &found_len) == 1);
    }
    check(task_store_find(s, &snap, meta.id + 1, found, sizeof(found), &found_len) == 0);
    task_store_close(s);

    char *now = read_whole(fuzz_path, &now_len);
    check(now != NULL && canonical_count(now, now_len) == num_tasks + 1);
    free(now);
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct task_store_report rep, rep2;
    char err[1024];
    size_t now_len = 0, saved_len = 0;

    if (fuzz_dir[0] == '\0')
        setup_dir();
    write_whole(fuzz_path, data, size);
    memset(err, 0, sizeof(err));
    errno = 0;
    int rc = task_store_check(fuzz_path, TASK_STORE_REPAIR, &rep, err, sizeof(err));
    int check_errno = errno;
    char *now = read_whole(fuzz_path, &now_len);
    check(now != NULL);

    if (rc != 0) {
        check(rc == -1);
        /* Refused: the file untouched, nothing beside it, a message naming it. */
        check(now_len == size && memcmp(now, data, size) == 0);
        check(remove_saved(NULL) == 0);
        check(strstr(err, fuzz_path) != NULL && memchr(err, '\n', strlen(err)) == NULL);
        check(check_errno == EBADMSG);
        free(now);
        return 0;
    }

    uint64_t n = canonical_count(now, now_len);
    check(rep.num_tasks == n);
    check(rep.created + rep.canonicalized + rep.torn_cut <= 1);
    if (rep.created) {
        check(size == 0 && now_len == 4);
        check(rep.saved_path[0] == '\0');
    } else if (rep.canonicalized && n == 0 && rep.saved_path[0] == '\0') {
        /* An empty list in another layout ("[]", "[ ]"): rewritten with no copy, as
         * there is nothing in it to keep. */
        check(now_len == 4 && memcmp(now, "[\n]\n", 4) == 0);
    } else if (rep.canonicalized) {
        /* The original, byte for byte, beside the file. */
        char *orig = read_whole(rep.saved_path, &saved_len);
        check(orig != NULL && saved_len == size && memcmp(orig, data, size) == 0);
        free(orig);
    } else if (rep.torn_cut) {
        /* Everything before the cut kept, then the closing bracket; the cut
         * bytes saved (none to save when the file was shorter than "[\n"). */
        size_t off = (size_t)rep.torn_offset;
        check(rep.torn_offset >= 2);
        size_t keep = off < size ? off : size;
        check(rep.torn_bytes == size - keep);
        if (n > 0)
            check(now_len == off + 3 && memcmp(now, data, off) == 0 &&
                  memcmp(now + off, "\n]\n", 3) == 0);
        else
            check(now_len == 4 && memcmp(now, data, keep) == 0);
        if (rep.torn_bytes > 0) {
            char *cut = read_whole(rep.saved_path, &saved_len);
            check(cut != NULL && saved_len == rep.torn_bytes &&
                  memcmp(cut, data + keep, saved_len) == 0);
            free(cut);
        } else {
            check(rep.saved_path[0] == '\0');
        }
    } else {
        /* Already canonical: not a byte written. */
        check(now_len == size && memcmp(now, data, size) == 0);
        check(rep.saved_path[0] == '\0');
    }
    check(remove_saved(rep.saved_path[0] ? rep.saved_path : NULL) == (rep.saved_path[0] != '\0'));

    /* Canonical now: a plain check agrees and would do nothing. */
    check(task_store_check(fuzz_path, 0, &rep2, err, sizeof(err)) == 0);
    check(rep2.num_tasks == n && rep2.created + rep2.canonicalized + rep2.torn_cut == 0);
    check_store_works(n, now_len);
    check(remove_saved(NULL) == 0);
    free(now);
    return 0;
}
