/* task_store_read.c - reading tasks.json without blocking writers: snapshots, the count,
 * one task by its id. */
#include "task_store_impl.h"

#include "log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_READ_LOCK_WAIT_MS 100 /* then a snapshot reads without the lock */
#define STORE_COUNT_FOLLOW_MS 100   /* task_store_count() looks at the path this often */

/* ---- snapshot and find ---- */

static const char store_suffix_records[] = "\n]\n";
static const char store_suffix_empty[] = "]\n";

/* FNV-1a over the bytes [from, to) of fd: a line of at most
 * TASK_JSON_RECORD_MAX bytes (the scan buffer holds it). A short read means
 * the file was cut below them; its sum then differs from any snapshot's. */
static int store_line_sum(struct task_store *s, int fd, off_t from, off_t to, uint64_t *sum)
{
    size_t len = (size_t)(to - from);
    if (len > sizeof(s->sc.scan)) {
        errno = EOVERFLOW;
        return -1;
    }
    ssize_t got = store_pread_full(fd, s->sc.scan, len, from);
    if (got < 0)
        return -1;
    uint64_t h = store_sum(s->sc.scan, (size_t)got);
    *sum = (size_t)got == len ? h : ~h;
    return 0;
}

/* The tail for a reader, who holds a lock of type *held (F_UNLCK: none). A tail that
 * is not this store's is examined under the write lock, which is taken for it
 * (and kept: the caller releases whatever *held says). */
static int store_tail_for_read(struct task_store *s, short *held, struct store_tail *ti, char *err,
                               size_t err_len)
{
    int rc = s->check_whole
                 ? -1
                 : store_read_tail(s->cur.fd, s->path, &s->sc, &s->size_hint, ti, err, err_len);
    if (rc == 0 || (!s->check_whole && errno != EBADMSG))
        return rc;
    if (*held != F_UNLCK)
        store_release(s);
    *held = F_UNLCK;
    if (store_timed_lock(s, F_WRLCK, s->opts.lock_timeout_ms) < 0) {
        store_err(err, err_len, "%s: write lock: %s", s->path, store_lock_errmsg(errno));
        return -1;
    }
    if (store_follow_path(s, F_WRLCK, s->opts.lock_timeout_ms, err, err_len) < 0)
        return -1;
    *held = F_WRLCK;
    return store_tail_for_write(s, ti, err, err_len);
}

int task_store_snapshot(struct task_store *s, struct task_store_snapshot *snap, char *err,
                        size_t err_len)
{
    struct store_tail ti;
    /* A writer holds the lock for microseconds. One that holds it longer is
     * stopped (SIGSTOP, a debugger) or asleep in a race window, and a reader
     * must not wait behind it: GET /tareas stays served while POSTs time
     * out. So the read lock gets a short deadline, and past it the tail is
     * read without the lock. That is still safe: the tail scan accepts only
     * records that parse completely, a write in flight shows at most a
     * prefix of its bytes (the kernel extends the size only over bytes
     * already copied), and bytes before the last complete record never
     * change. The lock is the belt; the scan is the braces. */
    unsigned wait_ms = STORE_READ_LOCK_WAIT_MS;
    if (s->opts.lock_timeout_ms > 0 && s->opts.lock_timeout_ms < wait_ms)
        wait_ms = s->opts.lock_timeout_ms;
    short held = store_timed_lock(s, F_RDLCK, wait_ms) == 0 ? F_RDLCK : F_UNLCK;
    if (held == F_UNLCK && errno != ETIMEDOUT) {
        store_err(err, err_len, "%s: read lock: %s", s->path, store_lock_errmsg(errno));
        return -1;
    }
    if (store_follow_path(s, held, wait_ms, err, err_len) < 0) {
        if (errno != ETIMEDOUT)
            return -1;
        held = F_UNLCK; /* the new file's lock is busy: read it without, as above */
    }
    int rc = store_tail_for_read(s, &held, &ti, err, err_len);
    if (held != F_UNLCK)
        store_release(s);
    if (rc < 0)
        return -1;
    /* A torn tail is left for the next writer to repair; a reader only
     * stops before it. */
    if (ti.last_id == 0) {
        snap->prefix_len = 2;
        snap->suffix = store_suffix_empty;
        snap->suffix_len = sizeof(store_suffix_empty) - 1;
    } else {
        snap->prefix_len = ti.end;
        snap->suffix = store_suffix_records;
        snap->suffix_len = sizeof(store_suffix_records) - 1;
    }
    snap->num_tasks = ti.last_id;
    snap->last_off = ti.line_start;
    snap->last_sum = ti.last_id > 0 ? store_sum(ti.line, (size_t)(ti.end - ti.line_start)) : 0;
    snap->fd = s->cur.fd;
    s->cur.refs++;
    return 0;
}

void task_store_snapshot_release(struct task_store *s, struct task_store_snapshot *snap)
{
    if (snap->fd < 0)
        return;
    if (snap->fd == s->cur.fd) {
        assert(s->cur.refs > 0);
        s->cur.refs--;
    } else {
        for (unsigned i = 0; i < s->num_retired; i++) {
            struct store_file *f = &s->retired[i];
            if (f->fd != snap->fd)
                continue;
            assert(f->refs > 0);
            if (--f->refs == 0) {
                /* No lock is held between calls: closing drops none. */
                close(f->fd);
                *f = s->retired[--s->num_retired];
            }
            break;
        }
    }
    snap->fd = -1;
}

int task_store_snapshot_intact(struct task_store *s, const struct task_store_snapshot *snap)
{
    /* An empty snapshot is "[" from bytes that never change, even by reset. */
    if (snap->num_tasks == 0)
        return 1;
    uint64_t sum;
    if (store_line_sum(s, snap->fd, snap->last_off, snap->prefix_len, &sum) < 0)
        return -1;
    return sum == snap->last_sum;
}

int task_store_count(struct task_store *s, uint64_t *num, char *err, size_t err_len)
{
    /* No lock at all: the reasoning of task_store_snapshot() for a reader
     * past its deadline holds for every call (only complete records count,
     * a write in flight shows at most a prefix of its bytes, earlier bytes
     * never change), and a count that misses an append in flight is still
     * a count of every append that completed before the call. With the size
     * hint this is a stat() and one pread(). A tail it cannot read (another
     * layout, damage, or a repair in flight in another process, which
     * rewrites the closing bytes before it truncates) is asked again through
     * the snapshot, under the lock, so that an error is the store's
     * considered answer. */
    struct store_tail ti;
    if (store_sync_refused(s, err, err_len) < 0)
        return -1; /* a health check must say so */
    /* The path at most every STORE_COUNT_FOLLOW_MS: a stat() per /health
     * would be a quarter of its cost, and a health check may be that late. */
    int64_t now = store_now_ms();
    if (now - s->count_followed_ms >= STORE_COUNT_FOLLOW_MS) {
        if (store_follow_path(s, F_UNLCK, 0, err, err_len) < 0)
            return -1;
        s->count_followed_ms = now;
    }
    if (store_read_tail(s->cur.fd, s->path, &s->sc, &s->size_hint, &ti, err, err_len) == 0) {
        *num = ti.last_id;
        return 0;
    }
    s->size_hint = 0;
    struct task_store_snapshot snap;
    if (task_store_snapshot(s, &snap, err, err_len) < 0)
        return -1;
    *num = snap.num_tasks;
    task_store_snapshot_release(s, &snap);
    return 0;
}

/* Copies the record line that starts at start (its bytes up to the next
 * newline, without a trailing ',') into line. have: the bytes [start, limit)
 * already in memory (have_len of them), or NULL. Returns 1, or -1 (errno). */
static int store_copy_line(int fd, off_t start, off_t limit, const char *have, size_t have_len,
                           char *line, size_t line_cap, size_t *line_len)
{
    const char *nl = have != NULL ? memchr(have, '\n', have_len) : NULL;
    size_t len;
    if (nl != NULL) {
        len = (size_t)(nl - have);
        if (len > line_cap) {
            errno = ENOBUFS;
            return -1;
        }
        memcpy(line, have, len);
    } else {
        size_t want = (size_t)(limit - start) < line_cap ? (size_t)(limit - start) : line_cap;
        ssize_t got = store_pread_full(fd, line, want, start);
        if (got < 0)
            return -1;
        nl = memchr(line, '\n', (size_t)got);
        len = nl != NULL ? (size_t)(nl - line) : (size_t)got;
        if (nl == NULL && (size_t)got == line_cap && start + (off_t)got < limit) {
            errno = ENOBUFS;
            return -1;
        }
    }
    if (len > 0 && line[len - 1] == ',')
        len--;
    if (line_len != NULL)
        *line_len = len;
    return 1;
}

/* Finds the first record line that starts after byte from (a '\n' at or
 * after from followed by {"id":N) and before limit. Returns 1 with *start and
 * *id, 0 if none, -1 on a read error. */
static int store_next_record(struct task_store *s, int fd, off_t from, off_t limit, off_t *start,
                             uint64_t *id)
{
    char *buf = s->sc.scan;
    off_t pos = from;
    while (pos < limit) {
        size_t n =
            (size_t)(limit - pos) < STORE_TAIL_BLOCK ? (size_t)(limit - pos) : STORE_TAIL_BLOCK;
        if (store_pread_full(fd, buf, n, pos) != (ssize_t)n) {
            if (errno == 0)
                errno = EIO;
            return -1;
        }
        size_t i;
        for (i = 0; i < n; i++) {
            if (buf[i] != '\n')
                continue;
            if (n - i < 32 && pos + (off_t)n < limit)
                break; /* the id may cross the block: re-read from this '\n' */
            uint64_t v = task_json_line_id(buf + i + 1, n - i - 1);
            if (v != 0) {
                *start = pos + (off_t)i + 1;
                *id = v;
                return 1;
            }
        }
        pos += (off_t)i;
    }
    return 0;
}

/* The slow way, from byte from: record after record until id or past it. */
static int store_find_forward(struct task_store *s, const struct task_store_snapshot *snap,
                              off_t from, uint64_t id, char *line, size_t line_cap,
                              size_t *line_len, off_t *found_at)
{
    off_t start = 0;
    uint64_t v = 0;
    for (off_t p = from > 0 ? from - 1 : 0;; p = start) {
        int r = store_next_record(s, snap->fd, p, snap->prefix_len, &start, &v);
        if (r <= 0)
            return r;
        if (v == id) {
            *found_at = start;
            return store_copy_line(snap->fd, start, snap->prefix_len, NULL, 0, line, line_cap,
                                   line_len);
        }
        if (v > id)
            return 0;
    }
}

/* Where earlier lookups found their lines: one (id, offset) per slot, the
 * slot chosen by the id's run of 2^STORE_HINT_SHIFT ids. A hint only picks
 * where the first block is read; the bounds of the search and the answer come
 * from what that read shows (the line of id is the one that starts with
 * {"id":id). So a hint made stale by a reset, a repair or an edit by hand
 * costs reads, never a wrong task: that is why it needs no invalidation. */
#define STORE_HINTS 4096
#define STORE_HINT_SHIFT 12

struct store_hint {
    uint64_t id; /* 0: empty */
    off_t start;
    off_t step; /* that line's length with its ",\n": the next one starts there */
};

static struct store_hint *store_hint_slot(struct task_store *s, uint64_t id)
{
    return &s->hints[(id >> STORE_HINT_SHIFT) % STORE_HINTS];
}

/* The first guess for id from the hints, or -1 without a usable one: between
 * the hint of id's run and the neighbouring run's when they bracket id (the
 * local mean line length), else the one hint and its own line's length. */
static off_t store_hint_guess(struct task_store *s, uint64_t id, off_t limit)
{
    if (s->hints == NULL)
        return -1;
    const struct store_hint *a = store_hint_slot(s, id);
    if (a->id == 0 || a->start >= limit)
        return -1;
    if (a->id == id)
        return a->start;
    const struct store_hint *b =
        store_hint_slot(s, a->id < id ? id + (1u << STORE_HINT_SHIFT) : id - (1u << STORE_HINT_SHIFT));
    const struct store_hint *lo = a->id < id ? a : b, *hi = a->id < id ? b : a;
    if (lo->id != 0 && lo->id < id && id < hi->id && lo->start < hi->start && hi->start < limit) {
        double frac = (double)(id - lo->id) / (double)(hi->id - lo->id);
        return lo->start + (off_t)(frac * (double)(hi->start - lo->start));
    }
    double d = a->id < id ? (double)(id - a->id) : -(double)(a->id - id);
    return a->start + (off_t)(d * (double)a->step);
}

static void store_hint_note(struct task_store *s, uint64_t id, off_t start, size_t line_len)
{
    if (s->hints == NULL) {
        s->hints = calloc(STORE_HINTS, sizeof(*s->hints));
        if (s->hints == NULL)
            return; /* lookups work without hints, only slower */
    }
    struct store_hint *h = store_hint_slot(s, id);
    h->id = id;
    h->start = start;
    h->step = (off_t)line_len + 2;
}

/* Finds id by interpolation. Ids are positions 1..n and records have nearly
 * the same length, so the id tells roughly where its line is: a block
 * centered on the guess usually holds the line (one pread(), and the line is
 * copied from it). When it does not, the records the block did hold bound the
 * search more tightly and the next guess interpolates between those bounds.
 * Lines grow with their id's digits, so a first guess from the whole file's
 * bounds can miss by a megabyte at 10M ids; the first guess comes from the
 * hints when there are any (see store_hint_guess).
 * Invariant: the line of id starts in [lo, hi), where the record at lo has id
 * lo_id and the one at hi id hi_id (hi_id = n + 1: just past the end); only
 * records read in this call move them. A block that narrows nothing (records
 * longer than a block) hands over to the record-by-record scan from lo.
 * Returns 1 found, 0 absent, -1 error (errno). */
int task_store_find(struct task_store *s, const struct task_store_snapshot *snap, uint64_t id,
                    char *line, size_t line_cap, size_t *line_len)
{
    char *buf = s->sc.scan;
    off_t limit = snap->prefix_len;
    off_t lo = 2, hi = limit + 2, found_at = -1;
    uint64_t lo_id = 1, hi_id = snap->num_tasks + 1;
    size_t len = 0;
    int r;

    if (id == 0 || id > snap->num_tasks)
        return 0; /* ids are exactly 1..num_tasks */
    off_t guess = store_hint_guess(s, id, limit);
    for (;;) {
        if (guess < 0) {
            double frac = (double)(id - lo_id) / (double)(hi_id - lo_id);
            guess = lo + (off_t)(frac * (double)(hi - lo));
        }
        off_t at = guess - STORE_TAIL_BLOCK / 2;
        guess = -1;
        if (at > limit - STORE_TAIL_BLOCK)
            at = limit - STORE_TAIL_BLOCK;
        if (at < lo - 1)
            at = lo - 1; /* from the '\n' before the line at lo */
        size_t n =
            (size_t)(limit - at) < STORE_TAIL_BLOCK ? (size_t)(limit - at) : STORE_TAIL_BLOCK;
        if (store_pread_full(snap->fd, buf, n, at) != (ssize_t)n) {
            if (errno == 0)
                errno = EIO;
            return -1;
        }
        /* The record lines that start in the block, ids ascending. */
        int narrowed = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            if (buf[i] != '\n')
                continue;
            uint64_t v = task_json_line_id(buf + i + 1, n - i - 1);
            off_t start = at + (off_t)i + 1;
            if (v == id) {
                found_at = start;
                r = store_copy_line(snap->fd, start, limit, buf + i + 1, n - i - 1, line,
                                    line_cap, &len);
                goto out;
            }
            if (v == 0)
                continue; /* "]", or an id cut by the block's end */
            if (v < id && v > lo_id) {
                lo = start;
                lo_id = v;
                narrowed = 1;
            } else if (v > id && v < hi_id) {
                hi = start;
                hi_id = v;
                narrowed = 1;
                break; /* later ones are greater still */
            }
        }
        if (!narrowed) {
            r = store_find_forward(s, snap, lo, id, line, line_cap, &len, &found_at);
            goto out;
        }
    }
out:
    if (r == 1) {
        store_hint_note(s, id, found_at, len);
        if (line_len != NULL)
            *line_len = len;
    }
    return r;
}

/* ---- a reader of its own ---- */

int task_store_reader_open(const char *path, char *err, size_t err_len)
{
    struct stat st;
    int fd;

    if (stat(path, &st) == 0 && store_registered(st.st_dev, st.st_ino)) {
        errno = EBUSY;
        store_err(err, err_len, "%s: a store is open on it in this process", path);
        return -1;
    }
    do
        fd = open(path, O_RDONLY | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        store_err(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        if (e == 0 || !S_ISREG(st.st_mode))
            e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        store_err(err, err_len, "%s: %s", path,
                  e == EISDIR ? "is a directory" : e == EINVAL ? "not a regular file" : strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    if (store_lock_saying(fd, F_RDLCK, path) < 0) {
        int e = errno;
        store_err(err, err_len, "%s: read lock: %s", path, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

void task_store_reader_close(int fd)
{
    close(fd); /* drops the read lock with it */
}
