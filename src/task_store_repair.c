/* task_store_repair.c - checking tasks.json whole: the canonical layout, torn tails, other
 * layouts of a JSON array rewritten in place, and everything else refused. */
#include "task_store_impl.h"

#include "log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Streams the file and checks the canonical layout line by line, with a
 * bounded line buffer: memory does not depend on the file's size. With limit
 * >= 0 it checks the file as a cut would leave it, without writing: bytes
 * [0, limit), then the bytes of tail (at most 4). Returns 0 (canonical, *num
 * set), 1 (not canonical: *bad_off and reason set), -1 read error. */
static int store_stream_check(int fd, off_t limit, const char *tail, char *line_buf, uint64_t *num,
                              off_t *bad_off, char *reason, size_t reason_cap)
{
    enum { EXPECT_OPEN, EXPECT_RECORD_OR_CLOSE, EXPECT_RECORD, EXPECT_CLOSE, EXPECT_EOF } state;
    char chunk[65536];
    size_t line_len = 0;
    off_t off = 0, line_off = 0;
    uint64_t n = 0;
    int tail_added = limit < 0;
    state = EXPECT_OPEN;
    for (;;) {
        size_t want = sizeof(chunk) - 4; /* room for the tail */
        ssize_t r = 0;
        if (limit >= 0 && limit - off < (off_t)want)
            want = off < limit ? (size_t)(limit - off) : 0;
        if (want > 0 && (r = store_pread_full(fd, chunk, want, off)) < 0)
            return -1;
        if (!tail_added && off + r == limit) {
            memcpy(chunk + r, tail, strlen(tail));
            r += (ssize_t)strlen(tail);
            tail_added = 1;
        }
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++) {
            char c = chunk[i];
            if (state == EXPECT_EOF) {
                *bad_off = off + i;
                snprintf(reason, reason_cap, "data after the closing \"]\"");
                return 1;
            }
            if (c != '\n') {
                if (line_len >= TASK_JSON_RECORD_MAX + 2) {
                    *bad_off = line_off;
                    snprintf(reason, reason_cap, "line longer than %d bytes", TASK_JSON_RECORD_MAX);
                    return 1;
                }
                line_buf[line_len++] = c;
                continue;
            }
            /* A complete line [line_off, line_off + line_len): one item, nothing around it. */
            struct task_json_line it;
            enum task_json_line_kind kind = task_json_line_read(line_buf, line_len, 0, NULL, &it);
            if (state == EXPECT_OPEN) {
                if (kind != TASK_JSON_LINE_OPEN) {
                    *bad_off = line_off;
                    snprintf(reason, reason_cap, "expected \"[\" alone on the first line");
                    return 1;
                }
                state = EXPECT_RECORD_OR_CLOSE;
            } else if (kind == TASK_JSON_LINE_CLOSE && state != EXPECT_RECORD) {
                state = EXPECT_EOF;
            } else if (state == EXPECT_CLOSE) {
                *bad_off = line_off;
                snprintf(reason, reason_cap, "expected \"]\" after the last record");
                return 1;
            } else {
                /* The canonical head {"id":N first: its id is checked before the JSON. */
                if (it.head_id != n + 1) {
                    *bad_off = line_off;
                    if (it.head_id == 0)
                        snprintf(reason, reason_cap, "expected a record {\"id\":%" PRIu64 ",...}",
                                 n + 1);
                    else
                        snprintf(reason, reason_cap, "record id %" PRIu64 ", expected %" PRIu64,
                                 it.head_id, n + 1);
                    return 1;
                }
                if (kind != TASK_JSON_LINE_RECORD) {
                    *bad_off = line_off + (off_t)it.at;
                    snprintf(reason, reason_cap, "record %" PRIu64 ": invalid JSON", n + 1);
                    return 1;
                }
                n++;
                state = it.comma ? EXPECT_RECORD : EXPECT_CLOSE;
            }
            line_len = 0;
            line_off = off + i + 1;
        }
        off += r;
    }
    if (state != EXPECT_EOF || line_len > 0) {
        *bad_off = line_len > 0 ? line_off : off;
        snprintf(reason, reason_cap,
                 off == 0 ? "empty file" : "unexpected end of file (no closing \"]\")");
        return 1;
    }
    *num = n;
    return 0;
}

/* Emits canonical lines into the file being rewritten, through a buffer. */
struct store_rewrite {
    int fd; /* -1: a dry run, which only counts */
    off_t off;
    char *buf;
    size_t len;
    size_t cap;
    long count;
    off_t bytes; /* dry run: the size the rewritten file will have */
};

static int rewrite_flush(struct store_rewrite *w)
{
    if (store_pwrite_full(w->fd, w->buf, w->len, w->off) < 0)
        return -1;
    w->off += (off_t)w->len;
    w->len = 0;
    return 0;
}

static int rewrite_put(struct store_rewrite *w, const char *data, size_t n)
{
    assert(n <= w->cap); /* lines are at most TASK_JSON_RECORD_MAX == cap */
    if (w->cap - w->len < n && rewrite_flush(w) < 0)
        return -1;
    memcpy(w->buf + w->len, data, n);
    w->len += n;
    return 0;
}

static int rewrite_emit(void *arg, const char *line, size_t line_len)
{
    struct store_rewrite *w = arg;
    if (w->fd < 0) { /* dry run: only count */
        w->bytes += (off_t)line_len + (w->count > 0 ? 2 : 0);
        w->count++;
        return 0;
    }
    if (rewrite_put(w, w->count > 0 ? ",\n" : "", w->count > 0 ? 2 : 0) < 0 ||
        rewrite_put(w, line, line_len) < 0)
        return -1;
    w->count++;
    return 0;
}

/* Makes sure the file has room for size bytes before a rewrite writes any:
 * a rewrite may be longer than the original ("[]" of the original server
 * becomes "[\n]\n", every record gains its id), and running out of space
 * half-way would leave neither the old file nor the new one. Where the file
 * system cannot reserve space (EOPNOTSUPP: posix_fallocate is then emulated
 * by glibc, or refused), the rewrite goes ahead and store_restore() is the
 * fallback. Returns 0, or -1 with errno and the file at its old size. */
static int store_reserve(int fd, off_t old_size, off_t size)
{
    if (size <= old_size)
        return 0;
    int e = posix_fallocate(fd, old_size, size - old_size);
    if (e == 0 || e == EOPNOTSUPP || e == EINVAL)
        return 0;
    store_ftruncate(fd, old_size); /* a partial reservation may have grown it */
    errno = e;
    return -1;
}

/* Puts the original bytes back after a failed rewrite. The original's own
 * blocks are still allocated (in place, and ext4, xfs and tmpfs do not copy
 * on write), so this does not need new space. Returns 0 or -1 with errno. */
static int store_restore(int fd, const char *text, off_t size)
{
    if (store_pwrite_full(fd, text, (size_t)size, 0) < 0 || store_ftruncate(fd, size) < 0)
        return -1;
    return store_fdatasync(fd);
}

/* Removes the copy of the original saved for a rewrite that did not happen:
 * the file itself still holds those bytes. */
static void store_drop_saved(struct task_store_report *rep)
{
    int saved = errno;
    if (rep->saved_path[0] == '\0')
        return;
    if (unlink(rep->saved_path) < 0)
        log_warn("%s: removing the unneeded copy: %s", rep->saved_path, strerror(errno));
    else
        rep->saved_path[0] = '\0';
    errno = saved;
}

/* Reads a non-canonical file whole (bounded by STORE_CANON_MAX) and, if it is
 * a JSON array of objects, rewrites it canonically in place after saving a
 * byte-exact copy. Ids become the records' positions, 1..n: in this store an
 * id is a position, which is what lets an append read only the tail and a
 * lookup search by offset; rep->renumbered counts the records whose id
 * changed (or that had none), and the saved copy keeps the old ones.
 * Returns 0, 1 (not such an array: err set, nothing written), or -1 (error:
 * err set; the file holds its original bytes, unless err says the restore
 * failed too). */
static int store_canonicalize(int fd, off_t size, const char *path, int flags,
                              struct task_store_report *rep, char *reason, size_t reason_cap,
                              off_t *bad_off, char *err, size_t err_len)
{
    char jerr[160];
    size_t jerr_off = 0;
    int rc = -1;
    char *text = malloc((size_t)size + 1);
    struct store_rewrite w = {-1, 0, NULL, 0, 0, 0, 0};
    if (text == NULL) {
        store_err(err, err_len, "%s: out of memory reading %lld bytes", path, (long long)size);
        return -1;
    }
    if (store_pread_full(fd, text, (size_t)size, 0) != (ssize_t)size) {
        if (errno == 0)
            errno = EIO;
        store_err(err, err_len, "%s: read: %s", path, strerror(errno));
        goto out;
    }
    size_t renumbered = 0;
    if (task_json_canonicalize(text, (size_t)size, rewrite_emit, &w, jerr, sizeof(jerr), &jerr_off,
                               &renumbered) < 0) {
        *bad_off = (off_t)jerr_off;
        snprintf(reason, reason_cap, "%s", jerr);
        rc = 1;
        goto out;
    }
    rep->num_tasks = (uint64_t)w.count;
    rep->renumbered = (uint64_t)renumbered;
    rep->canonicalized = 1;
    if (!(flags & TASK_STORE_REPAIR)) {
        rc = 0;
        goto out;
    }
    off_t new_size = 2 + w.bytes + (w.count > 0 ? 3 : 2);
    w.cap = TASK_JSON_RECORD_MAX;
    w.buf = malloc(w.cap); /* before anything is written: nothing to undo if it fails */
    if (w.buf == NULL) {
        errno = ENOMEM;
        store_err(err, err_len, "%s: out of memory", path);
        goto out;
    }
    /* A copy of the original, unless it held no task: "[]" from `echo "[]" >
     * tasks.json` is a reset, and a copy of it per reset would only be clutter. */
    if (w.count > 0 &&
        store_save_beside(path, "orig", text, (size_t)size, (flags & TASK_STORE_FSYNC) != 0,
                          rep->saved_path, sizeof(rep->saved_path)) < 0) {
        store_err(err, err_len, "%s: cannot save the original to %s: %s", path, rep->saved_path,
                  strerror(errno));
        goto out;
    }
    if (store_reserve(fd, size, new_size) < 0) {
        store_err(err, err_len,
                  "%s: no room to rewrite it in the canonical layout (%lld bytes): %s", path,
                  (long long)new_size, strerror(errno));
        store_drop_saved(rep);
        goto out;
    }
    w.fd = fd;
    w.count = 0;
    /* The original is in memory and saved beside: the file may be overwritten
     * from offset 0 as we go; a failure half-way puts it back. */
    if (rewrite_put(&w, "[\n", 2) < 0 ||
        task_json_canonicalize(text, (size_t)size, rewrite_emit, &w, jerr, sizeof(jerr), &jerr_off,
                               NULL) < 0 ||
        rewrite_put(&w, w.count > 0 ? "\n]\n" : "]\n", w.count > 0 ? 3 : 2) < 0 ||
        rewrite_flush(&w) < 0 || store_ftruncate(fd, w.off) < 0 || store_fdatasync(fd) < 0) {
        int e = errno;
        if (store_restore(fd, text, size) == 0) {
            store_err(err, err_len, "%s: rewrite failed, original bytes put back: %s", path,
                      strerror(e));
            store_drop_saved(rep);
        } else {
            rep->restore_failed = 1;
            store_err(err, err_len,
                      "%s: rewrite failed (%s) and putting the original back failed (%s): "
                      "restore it from %s",
                      path, strerror(e), strerror(errno), rep->saved_path);
        }
        errno = e;
        goto out;
    }
    if (w.count == 0)
        log_warn("%s: an empty list in another layout: rewrote it as \"[\\n]\\n\"", path);
    else
        log_warn("%s: not in the canonical layout: rewrote %ld tasks in place (%" PRIu64
                 " of them got a new id), original saved in %s",
                 path, w.count, rep->renumbered, rep->saved_path);
    rc = 0;
out:
    free(w.buf);
    free(text);
    return rc;
}

/* ---- the phases of a check, with the lock held ---- */

/* Phase 1: an empty file (just created, or truncated by someone) is an empty list. */
static int store_check_empty(int fd, const char *path, int flags, struct task_store_report *rep,
                             char *err, size_t err_len)
{
    rep->created = 1;
    if (!(flags & TASK_STORE_REPAIR)) {
        errno = EBADMSG;
        store_err(err, err_len, "%s: byte 0: empty file (repair would write an empty list)", path);
        return -1;
    }
    if (store_pwrite_full(fd, "[\n]\n", 4, 0) < 0) {
        store_err(err, err_len, "%s: write: %s", path, strerror(errno));
        return -1;
    }
    if ((flags & TASK_STORE_FSYNC) && store_fdatasync(fd) < 0) {
        store_err(err, err_len, "%s: fdatasync: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Phase 3: a torn tail? Only if the stream check got at least as far as the
 * line of the last complete record (damage before it is damage), and only if
 * the file the cut would leave is canonical: that last record may itself be
 * out of place (a wrong id, after the closing "]"), and a refusal must leave
 * the file untouched, so this is proved before the cut (found by
 * fuzz/fuzz_store_check.c). sc->scan keeps the tail read by the scan, which
 * the cut saves. Returns 1 not torn, 0 cut (or would be, without repair: then
 * -1 EBADMSG), -1 error. */
static int store_check_torn(int fd, const char *path, struct store_scratch *sc, off_t size,
                            off_t bad_off, int flags, struct task_store_report *rep, char *err,
                            size_t err_len)
{
    struct store_tail ti;
    char terr[512];
    uint64_t cut_num = 0;
    off_t cut_bad = 0;
    if (store_read_tail(fd, path, sc, NULL, &ti, terr, sizeof(terr)) < 0 || !ti.torn ||
        bad_off < ti.line_start)
        return 1;
    int sc_rc =
        store_stream_check(fd, ti.last_id > 0 ? ti.end : 0, ti.last_id > 0 ? "\n]\n" : "[\n]\n",
                           sc->line, &cut_num, &cut_bad, terr, sizeof(terr));
    if (sc_rc < 0) {
        store_err(err, err_len, "%s: read: %s", path, strerror(errno));
        return -1;
    }
    if (sc_rc != 0)
        return 1;
    rep->torn_cut = 1;
    rep->torn_offset = ti.end;
    rep->torn_bytes = ti.size > ti.end ? (size_t)(ti.size - ti.end) : 0;
    rep->num_tasks = cut_num;
    (void)size;
    if (!(flags & TASK_STORE_REPAIR)) {
        errno = EBADMSG;
        store_err(err, err_len, "%s: byte %lld: torn tail of %zu bytes (repair would cut it)", path,
                  (long long)ti.end, rep->torn_bytes);
        return -1;
    }
    return store_cut_tail(fd, path, sc, &ti, 0, (flags & TASK_STORE_FSYNC) != 0, rep->saved_path,
                          sizeof(rep->saved_path), err, err_len);
}

/* Phase 4: another layout of a JSON array, rewritten; anything else is damage,
 * reported where the stream check stopped (in our layout it knows the line;
 * otherwise the JSON parser's position is more telling). */
static int store_check_layout(int fd, const char *path, off_t size, off_t bad_off,
                              const char *reason, int flags, struct task_store_report *rep,
                              char *err, size_t err_len)
{
    char creason[256];
    off_t cbad = 0;
    if (size > STORE_CANON_MAX) {
        errno = EBADMSG;
        store_err(err, err_len, "%s: byte %lld: %s (and too large to rewrite: over %ld bytes)",
                  path, (long long)bad_off, reason, STORE_CANON_MAX);
        return -1;
    }
    int cc = store_canonicalize(fd, size, path, flags, rep, creason, sizeof(creason), &cbad, err,
                                err_len);
    if (cc < 0)
        return -1;
    if (cc == 1) {
        errno = EBADMSG;
        if (bad_off > 0)
            store_err(err, err_len, "%s: byte %lld: %s", path, (long long)bad_off, reason);
        else
            store_err(err, err_len, "%s: byte %lld: %s", path, (long long)cbad, creason);
        return -1;
    }
    if (!(flags & TASK_STORE_REPAIR)) {
        errno = EBADMSG;
        store_err(err, err_len,
                  "%s: byte %lld: %s (repair would rewrite %" PRIu64
                  " tasks in the canonical layout)",
                  path, (long long)bad_off, reason, rep->num_tasks);
        return -1;
    }
    return 0;
}

int store_repair_locked(int fd, const char *path, struct store_scratch *sc, int flags,
                        struct task_store_report *rep, char *err, size_t err_len)
{
    struct stat st;
    char reason[256];
    off_t bad_off = 0;

    if (fstat(fd, &st) < 0) {
        store_err(err, err_len, "%s: fstat: %s", path, strerror(errno));
        return -1;
    }
    if (st.st_size == 0)
        return store_check_empty(fd, path, flags, rep, err, err_len);
    /* Phase 2: the canonical layout, streamed. */
    int sc_rc = store_stream_check(fd, -1, NULL, sc->line, &rep->num_tasks, &bad_off, reason,
                                   sizeof(reason));
    if (sc_rc < 0) {
        store_err(err, err_len, "%s: read: %s", path, strerror(errno));
        return -1;
    }
    if (sc_rc == 0)
        return 0;
    int torn = store_check_torn(fd, path, sc, st.st_size, bad_off, flags, rep, err, err_len);
    if (torn <= 0)
        return torn;
    return store_check_layout(fd, path, st.st_size, bad_off, reason, flags, rep, err, err_len);
}

/* ---- task_store_check() ---- */

/* Opens the file to check, creating it (empty) when repairing and it is
 * missing. Refuses a file this process has open as a store: closing this
 * second descriptor would drop that store's locks. Returns the descriptor or
 * -1 with err. */
static int store_check_open(const char *path, int flags, struct task_store_report *rep, char *err,
                            size_t err_len)
{
    int repair = (flags & TASK_STORE_REPAIR) != 0;
    struct stat st;
    int fd = -1;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            errno = EISDIR;
            store_err(err, err_len, "%s: is a directory, not a task list", path);
            return -1;
        }
        if (store_registered(st.st_dev, st.st_ino)) {
            errno = EBUSY;
            store_err(err, err_len,
                      "%s: open as a store in this process; check it before "
                      "opening (closing a second descriptor drops the locks)",
                      path);
            return -1;
        }
    }
    for (int tries = 0; fd < 0 && tries < 10; tries++) {
        fd = open(path, (repair ? O_RDWR : O_RDONLY) | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT)
            break;
        if (!repair) {
            rep->created = 1;
            store_err(err, err_len, "%s: no such file (repair would create an empty list)", path);
            return -1;
        }
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            rep->created = 1;
            if ((flags & TASK_STORE_FSYNC) && store_fsync_dir(path) < 0) {
                store_err(err, err_len, "%s: fsync of its directory: %s", path, strerror(errno));
                close(fd);
                return -1;
            }
        } else if (errno != EEXIST) {
            break;
        }
    }
    if (fd < 0) {
        if (errno == EACCES)
            store_err(err, err_len, "%s: permission denied", path);
        else
            store_err(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        int e = errno;
        store_err(err, err_len, "%s: fstat: %s", path, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        store_err(err, err_len, "%s: not a regular file", path);
        close(fd);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return -1;
    }
    return fd;
}

/* With repair, a first pass under the read lock: the usual answer is
 * "canonical", and readers (snapshots, other checks) need not wait out an O(n)
 * scan under the write lock for it. Writers still do: an append's write lock
 * waits for the scan (about 0.3 s per million tasks here), so a second server
 * started on a busy file costs running servers that pause once. Returns 1
 * canonical, 0 needs the full check. */
static int store_check_quick(int fd, const char *path, struct store_scratch *sc,
                             struct task_store_report *rep)
{
    struct stat st;
    off_t bad_off = 0;
    char reason[256];
    if (store_lock(fd, F_RDLCK, 0) < 0)
        return 0;
    int canonical = fstat(fd, &st) == 0 && st.st_size > 0 &&
                    store_stream_check(fd, -1, NULL, sc->line, &rep->num_tasks, &bad_off, reason,
                                       sizeof(reason)) == 0;
    store_unlock(fd, path);
    if (!canonical)
        rep->num_tasks = 0;
    return canonical;
}

/* TASK_STORE_TAIL_ONLY: under the read lock, the tail alone; 1 when it is
 * this store's fast-path tail (the body is left for later). */
static int store_check_tail(int fd, const char *path, struct store_scratch *sc,
                            struct task_store_report *rep)
{
    struct store_tail ti;
    if (store_lock(fd, F_RDLCK, 0) < 0)
        return 0;
    int ok = store_read_tail(fd, path, sc, NULL, &ti, NULL, 0) == 0 && !ti.torn;
    store_unlock(fd, path);
    if (ok) {
        rep->num_tasks = ti.last_id;
        rep->body_unchecked = 1;
    }
    return ok;
}

int task_store_check_body(const char *path, struct task_store_shared *sh, char *err, size_t err_len)
{
    struct stat st;
    struct store_tail ti;
    char reason[256] = "";
    off_t bad_off = 0;
    uint64_t num = 0;
    int rc = -1;
    struct store_scratch *sc = malloc(sizeof(*sc));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (sc == NULL || fd < 0 || fstat(fd, &st) < 0) {
        store_err(err, err_len, "%s: %s", path, strerror(errno));
        goto out;
    }
    /* The end of the last complete record now; bytes before it never change. */
    if (store_read_tail(fd, path, sc, NULL, &ti, err, err_len) < 0)
        goto out;
    int sc_rc =
        store_stream_check(fd, ti.last_id > 0 ? ti.end : 0, ti.last_id > 0 ? "\n]\n" : "[\n]\n",
                           sc->line, &num, &bad_off, reason, sizeof(reason));
    if (sc_rc < 0) {
        store_err(err, err_len, "%s: read: %s", path, strerror(errno));
        goto out;
    }
    if (sc_rc > 0) {
        store_err(err, err_len, "%s: byte %lld: %s", path, (long long)bad_off, reason);
        goto out;
    }
    rc = 0;
out:
    store_body_verdict(sh, fd >= 0 ? st.st_ino : 0, rc == 0, err);
    if (fd >= 0)
        close(fd);
    free(sc);
    return rc;
}

int task_store_check(const char *path, int flags, struct task_store_report *report, char *err,
                     size_t err_len)
{
    struct task_store_report dummy;
    struct task_store_report *rep = report != NULL ? report : &dummy;
    int repair = (flags & TASK_STORE_REPAIR) != 0;
    struct store_scratch *sc = NULL;
    int rc = -1;

    memset(rep, 0, sizeof(*rep));
    int fd = store_check_open(path, flags, rep, err, err_len);
    if (fd < 0)
        return -1;
    sc = malloc(sizeof(*sc));
    if (sc == NULL) {
        errno = ENOMEM;
        store_err(err, err_len, "%s: out of memory", path);
        goto out;
    }
    if (repair && (flags & TASK_STORE_TAIL_ONLY) && store_check_tail(fd, path, sc, rep)) {
        rc = 0;
        goto out;
    }
    if (repair && store_check_quick(fd, path, sc, rep)) {
        rc = 0;
        goto out;
    }
    /* Only a file that needs work is checked again, under the write lock,
     * from the start: it may have changed in between. */
    if (store_lock(fd, repair ? F_WRLCK : F_RDLCK, 0) < 0) {
        store_err(err, err_len, "%s: lock: %s", path, strerror(errno));
        goto out;
    }
    rc = store_repair_locked(fd, path, sc, flags, rep, err, err_len);
    store_unlock(fd, path);
out:
    free(sc);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}
