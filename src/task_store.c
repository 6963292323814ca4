/* task_store.c - tasks.json for one process: open and close, append (in batches), reset. */
#include "task_store_impl.h"

#include "build_config.h"
#include "decimal.h"
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_REGISTRY_MAX 64

/* Open stores of this process, by inode: see "Closing ANY descriptor" in
 * task_store_lock.c. Entries carry the pid that opened them: a child of fork()
 * inherits the array and the descriptors but none of the locks, and the store
 * holds a lock only inside a call, so in the child the inherited stores are no
 * hazard to a store it opens itself (each worker opens its own after fork). */
static struct {
    dev_t dev;
    ino_t ino;
    pid_t pid;
} store_registry[STORE_REGISTRY_MAX];
static int store_num_registered;

int store_registered(dev_t dev, ino_t ino)
{
    pid_t me = getpid();
    for (int i = 0; i < store_num_registered; i++)
        if (store_registry[i].dev == dev && store_registry[i].ino == ino &&
            store_registry[i].pid == me)
            return 1;
    return 0;
}

/* Moves this process's entry for (dev, ino) to (new_dev, new_ino); with
 * new_ino 0, removes it. */
void store_reregister(dev_t dev, ino_t ino, pid_t pid, dev_t new_dev, ino_t new_ino)
{
    for (int i = 0; i < store_num_registered; i++) {
        if (store_registry[i].dev == dev && store_registry[i].ino == ino &&
            store_registry[i].pid == pid) {
            if (new_ino == 0) {
                store_registry[i] = store_registry[--store_num_registered];
            } else {
                store_registry[i].dev = new_dev;
                store_registry[i].ino = new_ino;
            }
            return;
        }
    }
}

/* ---- open and close ---- */

/* Opens path read-write (read-only when that is all it allows: taskctl list
 * still works, appends are refused) and checks that it is a regular file. */
int store_open_file(const char *path, struct store_file *f, int *writable, char *err,
                    size_t err_len)
{
    struct stat st;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    *writable = 1;
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
        *writable = 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        store_err(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        store_err(err, err_len, "%s: fstat: %s", path, strerror(e));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        store_err(err, err_len, "%s: not a regular file", path);
        return -1;
    }
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->refs = 0;
    return 0;
}

struct task_store *task_store_open(const char *path, const struct task_store_options *opts,
                                   char *err, size_t err_len)
{
    struct stat st;
    struct store_file f;
    int writable;

    /* stat() before open(): if this process already has the file open, a
     * second descriptor, once closed, would drop the first one's locks. */
    if (stat(path, &st) < 0) {
        store_err(err, err_len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        store_err(err, err_len, "%s: is a directory", path);
        return NULL;
    }
    if (store_registered(st.st_dev, st.st_ino)) {
        errno = EBUSY;
        store_err(err, err_len,
                  "%s: already open in this process (a second descriptor would "
                  "drop the first one's locks when closed)",
                  path);
        return NULL;
    }
    if (store_num_registered == STORE_REGISTRY_MAX) {
        errno = EMFILE;
        store_err(err, err_len, "%s: too many stores open", path);
        return NULL;
    }
    if (store_open_file(path, &f, &writable, err, err_len) < 0)
        return NULL;
    struct task_store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(f.fd);
        errno = ENOMEM;
        store_err(err, err_len, "%s: out of memory", path);
        return NULL;
    }
    s->cur = f;
    s->replaced.fd = -1;
    s->writable = writable;
    if (opts != NULL)
        s->opts = *opts;
    else
        s->opts.crash_after_bytes = -1;
    snprintf(s->path, sizeof(s->path), "%s", path);
    /* With pid, it names the writer of each record when several machines or containers
     * share the file. No name (an error, or one longer than TASK_HOST_MAX): no field. */
    if (gethostname(s->host, sizeof(s->host)) < 0)
        s->host[0] = '\0';
    s->host[sizeof(s->host) - 1] = '\0';
    store_registry[store_num_registered].dev = f.dev;
    store_registry[store_num_registered].ino = f.ino;
    store_registry[store_num_registered].pid = s->owner = getpid();
    store_num_registered++;
    return s;
}

void task_store_close(struct task_store *s)
{
    if (s == NULL)
        return;
    store_reregister(s->cur.dev, s->cur.ino, s->owner, 0, 0);
    for (unsigned i = 0; i < s->num_retired; i++)
        close(s->retired[i].fd);
    store_drop_replaced(s);
    close(s->cur.fd); /* releases this process's locks on the file */
    free(s->hints);
    free(s->recs);
    free(s->stage);
    free(s->wbuf);
    free(s->vbuf);
    free(s->own_shared);
    free(s);
}

/* ---- append ---- */

/* FNV-1a, to tell whether a snapshot's last line is still the file's
 * (task_store_snapshot_intact), without keeping a copy of it. */
uint64_t store_sum(const char *p, size_t n)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

/* Puts the file back as it was before an append that failed: size S and the
 * closing bytes the append overwrote. Shrinking frees space, and the bytes
 * rewritten lie in blocks the file already had, so this works on a full disk. */
static void store_undo_append(struct task_store *s, off_t size, uint64_t last_id)
{
    int saved = errno;
    store_sync_shrunk(s);
    const char *close_str = last_id > 0 ? "\n]\n" : "]\n";
    size_t close_len = strlen(close_str);
    if (store_ftruncate(s->cur.fd, size) < 0 ||
        store_pwrite_full(s->cur.fd, close_str, close_len, size - (off_t)close_len) < 0)
        log_error("%s: cannot undo a failed append at byte %lld: %s", s->path, (long long)size,
                  strerror(errno));
    errno = saved;
}

/* Makes room for need bytes in *buf (of *cap). Returns 0 or -1 (ENOMEM). */
static int store_reserve_buf(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap > 0 ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *p = realloc(*buf, n);
    if (p == NULL) {
        errno = ENOMEM;
        return -1;
    }
    *buf = p;
    *cap = n;
    return 0;
}

int task_store_stage(struct task_store *s, const struct task *t, char *err, size_t err_len)
{
    static const char id0[] = "{\"id\":0";
    struct task_meta m = {0, (int64_t)time(NULL), (long)s->owner, s->host};
    if (s->num_staged == s->recs_cap) {
        size_t n = s->recs_cap > 0 ? 2 * s->recs_cap : 16;
        struct store_record *r = realloc(s->recs, n * sizeof(*r));
        if (r == NULL) {
            errno = ENOMEM;
            store_err(err, err_len, "%s: out of memory", s->path);
            return -1;
        }
        s->recs = r;
        s->recs_cap = n;
    }
    if (store_reserve_buf(&s->stage, &s->stage_cap, s->stage_len + TASK_JSON_RECORD_MAX) < 0) {
        store_err(err, err_len, "%s: out of memory", s->path);
        return -1;
    }
    /* Everything but the id is encoded now, outside the lock: the id is
     * known only under it, and is written in front of the body then. */
    char *rec = s->stage + s->stage_len;
    long n = task_json_encode_record(t, &m, rec, TASK_JSON_RECORD_MAX);
    if (n < 0) {
        errno = EMSGSIZE;
        store_err(err, err_len, "%s: record longer than %d bytes", s->path, TASK_JSON_RECORD_MAX);
        return -1;
    }
    assert(memcmp(rec, id0, sizeof(id0) - 1) == 0);
    struct store_record *r = &s->recs[s->num_staged];
    r->body_off = s->stage_len + sizeof(id0) - 1;
    r->body_len = (size_t)n - (sizeof(id0) - 1);
    r->creada = m.creada;
    s->stage_len += (size_t)n;
    return (int)s->num_staged++;
}

size_t task_store_num_staged(const struct task_store *s)
{
    return s->num_staged;
}

/* Writes the staged records, ids first_id, first_id + 1, ..., into wbuf as
 * one append: [",\n"]{"id":N<body> for each, then "\n]\n". The first goes
 * without ",\n" into an empty list. Returns the length, or 0 (ENOMEM). */
static size_t store_build_write(struct task_store *s, uint64_t first_id)
{
    size_t need = 3;
    for (size_t i = 0; i < s->num_staged; i++)
        need += 2 + 6 + 20 + s->recs[i].body_len;
    if (store_reserve_buf(&s->wbuf, &s->wbuf_cap, need) < 0)
        return 0;
    char *p = s->wbuf;
    for (size_t i = 0; i < s->num_staged; i++) {
        struct store_record *r = &s->recs[i];
        uint64_t id = first_id + i;
        if (id > 1) {
            memcpy(p, ",\n", 2);
            p += 2;
        }
        r->line_off = (size_t)(p - s->wbuf);
        memcpy(p, "{\"id\":", 6);
        p = decimal_put_u64(p + 6, id);
        memcpy(p, s->stage + r->body_off, r->body_len);
        p += r->body_len;
        r->line_len = (size_t)(p - s->wbuf) - r->line_off;
    }
    memcpy(p, "\n]\n", 3);
    return (size_t)(p + 3 - s->wbuf);
}

/* Invariant I7: after the pwrite, the bytes from the start of the record
 * before ours (or the "[\n" at byte 0) to the end of ours must be exactly what
 * was read and written, and nothing may follow: one pread() of one byte more
 * than that (a regular file reads short only at its end). The record before
 * ours is compared byte for byte with ti->line, the copy the tail read left in
 * the scratch's scan buffer: nothing reads into that buffer between the tail
 * read and this call (store_commit_locked), so it still holds what was read
 * then. Returns 0, or -1 with errno ESTALE when another program changed the
 * file meanwhile. */
static int store_verify_append(struct task_store *s, const struct store_tail *ti, size_t len,
                               off_t off)
{
    off_t from = ti->last_id > 0 ? ti->line_start : 0;
    size_t before = (size_t)(off - from);
    size_t want = before + len;
    if (store_reserve_buf(&s->vbuf, &s->vbuf_cap, want + 1) < 0)
        return -1;
    ssize_t got;
    while ((got = pread(s->cur.fd, s->vbuf, want + 1, from)) < 0 && errno == EINTR) {
    }
    if (got < 0)
        return -1;
    const char *b = s->vbuf;
    int same = (size_t)got == want && memcmp(b + before, s->wbuf, len) == 0 &&
               (ti->last_id > 0 ? memcmp(b, ti->line, (size_t)(ti->end - from)) == 0 &&
                                      memcmp(b + (ti->end - from), ",\n", 2) == 0
                                : memcmp(b, "[\n", 2) == 0);
    if (same)
        return 0;
    errno = ESTALE;
    return -1;
}

/* After I7 failed: the file was truncated and rewritten by another program
 * between our tail read and our write (cp backup.json tasks.json), and our
 * write landed past its end, behind a hole of zeros. Once that program is done
 * (store_settle), if our bytes are still the file's last and only zeros lie
 * between them and a complete list, cut them off: the other program's file is
 * then whole again, and our tasks were never acknowledged. With the write
 * lock held; anything else is left for the next append to judge. */
static void store_undo_hole(struct task_store *s, off_t off, size_t len)
{
    struct stat st;
    char *buf = s->sc.scan;
    store_settle(s->cur.fd);
    if (fstat(s->cur.fd, &st) < 0 || st.st_size != off + (off_t)len)
        return;
    off_t x = off; /* the zeros run back from off to x */
    while (x > 0) {
        size_t n = x < STORE_TAIL_BLOCK ? (size_t)x : STORE_TAIL_BLOCK;
        if (store_pread_full(s->cur.fd, buf, n, x - (off_t)n) != (ssize_t)n)
            return;
        size_t k = n;
        while (k > 0 && buf[k - 1] == '\0')
            k--;
        x -= (off_t)(n - k);
        if (k > 0)
            break;
    }
    char end[3];
    if (x == off || x < 3 || store_pread_full(s->cur.fd, end, 3, x - 3) != 3 ||
        (memcmp(end, "\n]\n", 3) != 0 && memcmp(end + 1, "]\n", 2) != 0))
        return;
    if (store_ftruncate(s->cur.fd, x) < 0) {
        log_error("%s: removing our write after a hole at byte %lld: %s", s->path, (long long)x,
                  strerror(errno));
        return;
    }
    store_sync_shrunk(s);
    s->size_hint = 0;
    log_warn("%s: another program rewrote it during an append: removed that append (%zu bytes) "
             "and the hole of zeros before it, from byte %lld",
             s->path, len, (long long)x);
}

/* Tells the observer of each record written: its bytes within the write of
 * len bytes at off (the last record's include the closing bracket). */
static void store_emit_writes(struct task_store *s, off_t off, size_t len, uint64_t first_id)
{
    for (size_t i = 0; i < s->num_staged; i++) {
        const struct store_record *r = &s->recs[i];
        struct task_store_event ev = {.kind = TASK_STORE_EV_WRITE, .id = first_id + i};
        size_t start = i == 0 ? 0 : r->line_off - 2; /* its ",\n" */
        size_t end = i + 1 < s->num_staged ? s->recs[i + 1].line_off - 2 : len;
        ev.offset = off + (off_t)start;
        ev.length = end - start;
        ev.line = s->wbuf + r->line_off;
        ev.line_len = r->line_len;
        store_emit(s, &ev);
    }
}

/* One attempt at a commit, with the write lock held on s->cur. Returns 0
 * (stored; *first_id), 1 (the file changed under us: nothing written, or the
 * write undone; try again), or -1 with errno and err. */
static int store_commit_locked(struct task_store *s, uint64_t *first_id, char *err, size_t err_len)
{
    struct store_tail ti;
    if (store_sync_refused(s, err, err_len) < 0 || store_tail_for_write(s, &ti, err, err_len) < 0)
        return -1;
    uint64_t epoch = store_sync_epoch(s, ti.size);
    off_t off = ti.last_id > 0 ? ti.size - 3 : 2;
    if (s->opts.observe != NULL) {
        struct task_store_event ev = {.kind = TASK_STORE_EV_TAIL_READ, .id = ti.last_id};
        ev.offset = off;
        store_emit(s, &ev);
    }
    *first_id = ti.last_id + 1;
    size_t len = store_build_write(s, *first_id);
    if (len == 0) {
        store_err(err, err_len, "%s: out of memory", s->path);
        return -1;
    }

    /* A program that truncates the file without the lock (cp, the shell's >)
     * between our tail read and our write would get a hole of zeros and our
     * record behind its bytes. Look once more right before writing: the
     * window left is the gap between two system calls (I7 catches the rest).
     * Before the race window, which must keep showing the race it is for. */
    struct stat now;
    if (fstat(s->cur.fd, &now) == 0 && now.st_size != ti.size) {
        s->size_hint = 0;
        return 1; /* changed since the tail read: read it again */
    }
    if (s->opts.race_window_us > 0)
        store_sleep_us(s->opts.race_window_us);
    if (s->opts.crash_after_bytes >= 0) {
        size_t k =
            (size_t)s->opts.crash_after_bytes < len ? (size_t)s->opts.crash_after_bytes : len;
        if (k > 0)
            store_pwrite_full(s->cur.fd, s->wbuf, k, off);
        raise(SIGKILL);
    }
    if (store_pwrite_full(s->cur.fd, s->wbuf, len, off) < 0) {
        store_err(err, err_len, "%s: write %zu bytes at byte %lld: %s", s->path, len,
                  (long long)off, strerror(errno));
        store_undo_append(s, ti.size, ti.last_id);
        return -1;
    }
    if (s->opts.observe != NULL)
        store_emit_writes(s, off, len, *first_id);
    /* I7: the bytes are there, and the file is still the one at the path. */
    struct stat st;
    int gone;
    if (store_same_file(s, &st, &gone) != 1) {
        store_undo_append(s, ti.size, ti.last_id);
        return 1;
    }
    if (store_verify_append(s, &ti, len, off) < 0) {
        int e = errno;
        store_undo_hole(s, off, len);
        store_err(err, err_len,
                  "%s: changed by another program while task%s %" PRIu64
                  "%s were written at byte %lld: not acknowledged",
                  s->path, s->num_staged > 1 ? "s" : "", *first_id, s->num_staged > 1 ? "..." : "",
                  (long long)off);
        log_error("%s", err != NULL ? err : s->path);
        struct task_store_event ev = {.kind = TASK_STORE_EV_OUTSIDE, .what = "interleaved"};
        ev.error = e;
        store_emit(s, &ev);
        errno = e;
        return -1;
    }
    s->size_hint = off + (off_t)len;
    s->commit_epoch = epoch;
    s->commit_end = off + (off_t)len;
    store_sync_committed(s, epoch, s->commit_end);
    return 0;
}

int task_store_commit(struct task_store *s, struct task_meta *metas, char *err, size_t err_len)
{
    uint64_t first_id = 0;
    int rc = -1;
    if (s->num_staged == 0)
        return 0;
    if (!s->writable) {
        errno = EBADF;
        store_err(err, err_len, "%s: opened read-only (no write permission): cannot append",
                  s->path);
        goto out;
    }
    for (int tries = 0; tries < STORE_FOLLOW_MAX && rc != 0; tries++) {
        if (store_timed_lock(s, F_WRLCK, s->opts.lock_timeout_ms) < 0) {
            store_err(err, err_len, "%s: write lock: %s", s->path, store_lock_errmsg(errno));
            rc = -1;
            goto out;
        }
        if (store_follow_path(s, F_WRLCK, s->opts.lock_timeout_ms, err, err_len) < 0) {
            rc = -1;
            goto out;
        }
        if (!s->writable) {
            store_release(s);
            errno = EBADF;
            store_err(err, err_len, "%s: the file now at the path is read-only: cannot append",
                      s->path);
            rc = -1;
            goto out;
        }
        rc = store_commit_locked(s, &first_id, err, err_len);
        if (rc != 0)
            s->size_hint = 0; /* an undo or a cut may have moved the end: ask fstat() next time */
        int saved = errno;
        store_release(s);
        errno = saved;
        if (rc < 0)
            goto out;
    }
    if (rc != 0) {
        errno = EAGAIN;
        store_err(err, err_len, "%s: keeps being replaced during appends; try again", s->path);
        rc = -1;
        goto out;
    }
    /* Durable after the lock, not under it (task_store_sync.c). */
    if (s->opts.fsync && store_sync(s, s->commit_epoch, s->commit_end, err, err_len) < 0) {
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < s->num_staged; i++) {
        metas[i].id = first_id + i;
        metas[i].creada = s->recs[i].creada;
        metas[i].pid = (long)s->owner;
        metas[i].host = s->host;
    }
out:;
    int saved = errno;
    s->committed = rc == 0 ? s->num_staged : 0;
    s->num_staged = 0;
    s->stage_len = 0;
    errno = saved;
    return rc;
}

const char *task_store_line(const struct task_store *s, size_t i, size_t *len)
{
    assert(i < s->committed);
    *len = s->recs[i].line_len;
    return s->wbuf + s->recs[i].line_off;
}

int task_store_append(struct task_store *s, const struct task *t, struct task_meta *meta,
                      char *line, size_t line_cap, size_t *line_len, char *err, size_t err_len)
{
    assert(s->num_staged == 0); /* a batch is staged: commit it first */
    if (task_store_stage(s, t, err, err_len) < 0 || task_store_commit(s, meta, err, err_len) < 0)
        return -1;
    if (line != NULL) {
        size_t len;
        const char *l = task_store_line(s, 0, &len);
        if (len > line_cap)
            len = line_cap; /* stored, but the caller's buffer is too small to show it */
        memcpy(line, l, len);
        if (line_len != NULL)
            *line_len = len;
    }
    return 0;
}

/* ---- reset ---- */

int task_store_reset(struct task_store *s, char *err, size_t err_len)
{
    int rc = -1;
    if (!s->writable) {
        errno = EBADF;
        store_err(err, err_len, "%s: opened read-only: cannot reset", s->path);
        return -1;
    }
    if (store_timed_lock(s, F_WRLCK, s->opts.lock_timeout_ms) < 0) {
        store_err(err, err_len, "%s: write lock: %s", s->path, store_lock_errmsg(errno));
        return -1;
    }
    if (store_follow_path(s, F_WRLCK, s->opts.lock_timeout_ms, err, err_len) < 0)
        return -1;
    /* Truncate first: a crash in between leaves 0 bytes, which every writer
     * and the start-up check treat as an empty list. */
    store_sync_shrunk(s);
    if (store_ftruncate(s->cur.fd, 0) < 0 || store_pwrite_full(s->cur.fd, "[\n]\n", 4, 0) < 0) {
        store_err(err, err_len, "%s: reset: %s", s->path, strerror(errno));
        goto out;
    }
    if (s->opts.fsync && store_fdatasync(s->cur.fd) < 0) {
        store_err(err, err_len, "%s: fdatasync: %s", s->path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    s->size_hint = rc == 0 ? 4 : 0;
    s->damage.known = 0;
    store_release(s);
    return rc;
}
