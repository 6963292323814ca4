/* task_store.c - tasks.json for one process: open, follow the path, append, snapshot, find, reset.
 */
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
#define STORE_READ_LOCK_WAIT_MS 100 /* then a snapshot reads without the lock */
#define STORE_FOLLOW_MAX 4          /* path changes followed in one call, then EAGAIN */
#define STORE_SETTLE_MS 50          /* a file changed this recently may be mid-write */
#define STORE_SETTLE_MAX_MS 1000    /* ... but waiting for it to settle is bounded */
#define STORE_COUNT_FOLLOW_MS 100   /* task_store_count() looks at the path this often */

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

void store_err(char *err, size_t err_len, const char *fmt, ...)
{
    int saved = errno;
    if (err != NULL && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    errno = saved;
}

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
static void store_reregister(dev_t dev, ino_t ino, pid_t pid, dev_t new_dev, ino_t new_ino)
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

/* ---- I/O helpers: full reads and writes, EINTR retried ---- */

ssize_t store_pread_full(int fd, char *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int store_pwrite_full(int fd, const char *buf, size_t n, off_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, buf + done, n - done, off + (off_t)done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = ENOSPC;
            return -1;
        }
        done += (size_t)w;
    }
    return 0;
}

int store_fdatasync(int fd)
{
    int r;
    while ((r = fdatasync(fd)) < 0 && errno == EINTR) {
    }
    return r;
}

int store_ftruncate(int fd, off_t len)
{
    while (ftruncate(fd, len) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

void store_sleep_us(unsigned us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int store_fsync_dir(const char *path)
{
    char copy[4096];
    if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc;
    while ((rc = fsync(fd)) < 0 && errno == EINTR) {
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int store_save_beside(const char *path, const char *kind, const char *data, size_t len,
                      int sync_dir, char *saved, size_t saved_cap)
{
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
    for (int n = 0; n < 100; n++) {
        int len_name = n == 0 ? snprintf(saved, saved_cap, "%s.%s-%s", path, kind, stamp)
                              : snprintf(saved, saved_cap, "%s.%s-%s-%d", path, kind, stamp, n);
        if (len_name < 0 || (size_t)len_name >= saved_cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(saved, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            if (errno == EEXIST || errno == EINTR)
                continue;
            return -1;
        }
        int rc = store_pwrite_full(fd, data, len, 0);
        if (rc == 0)
            rc = fsync(fd);
        int saved_errno = errno;
        close(fd);
        if (rc == 0 && sync_dir)
            rc = store_fsync_dir(saved);
        if (rc < 0) {
            saved_errno = errno;
            unlink(saved);
            errno = saved_errno;
            return -1;
        }
        return 0;
    }
    errno = EEXIST;
    return -1;
}

/* ---- open and close ---- */

/* Opens path read-write (read-only when that is all it allows: taskctl list
 * still works, appends are refused) and checks that it is a regular file. */
static int store_open_file(const char *path, struct store_file *f, int *writable, char *err,
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
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        if (e == 0 || !S_ISREG(st.st_mode))
            e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        close(fd);
        errno = e;
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
    s->writable = writable;
    if (opts != NULL)
        s->opts = *opts;
    else
        s->opts.crash_after_bytes = -1;
    snprintf(s->path, sizeof(s->path), "%s", path);
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
    close(s->cur.fd); /* releases this process's locks on the file */
    free(s->recs);
    free(s->stage);
    free(s->wbuf);
    free(s->vbuf);
    free(s->own_shared);
    free(s);
}

/* ---- following the path (invariant I4, task_store_lock.c) ---- */

/* Puts the current file aside for the streams still reading it, or closes it.
 * Called with no lock held on it (closing drops the process's locks). */
static int store_retire(struct task_store *s)
{
    if (s->cur.refs == 0) {
        close(s->cur.fd);
    } else if (s->num_retired < STORE_RETIRED_MAX) {
        s->retired[s->num_retired++] = s->cur;
    } else {
        errno = EMFILE;
        return -1;
    }
    s->cur.fd = -1;
    return 0;
}

/* Creates an empty list at the path, which was gone. Several processes may do
 * this at once: one creates (O_EXCL), the others open what it made. The empty
 * list is written under the write lock; a file found empty by a process that
 * got the lock first is repaired by it, as any empty file is. */
static int store_create_file(struct task_store *s, struct store_file *f, int *writable, char *err,
                             size_t err_len)
{
    struct stat st;
    int fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        if (errno == EEXIST)
            return store_open_file(s->path, f, writable, err, err_len);
        store_err(err, err_len, "%s: was removed, and creating it again failed: %s", s->path,
                  strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0 || (s->opts.fsync && store_fsync_dir(s->path) < 0) ||
        store_lock(fd, F_WRLCK, s->opts.lock_timeout_ms) < 0) {
        store_err(err, err_len, "%s: creating it again: %s", s->path, store_lock_errmsg(errno));
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int rc = 0;
    struct stat now;
    if (fstat(fd, &now) == 0 && now.st_size == 0)
        rc = store_pwrite_full(fd, "[\n]\n", 4, 0);
    if (rc < 0)
        store_err(err, err_len, "%s: write: %s", s->path, strerror(errno));
    store_unlock(fd, s->path);
    if (rc < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->refs = 0;
    *writable = 1;
    return 0;
}

/* Makes s->cur the file now at the path (present: st; gone: NULL). A file we
 * put aside earlier (renamed away and back) is taken back, never opened twice. */
static int store_switch(struct task_store *s, const struct stat *st, char *err, size_t err_len)
{
    struct store_file f = {-1, 0, 0, 0};
    int writable = s->writable;
    unsigned back = s->num_retired;
    for (unsigned i = 0; st != NULL && i < s->num_retired; i++)
        if (s->retired[i].dev == st->st_dev && s->retired[i].ino == st->st_ino)
            back = i;
    if (back < s->num_retired) {
        f = s->retired[back];
        s->retired[back] = s->retired[--s->num_retired];
    } else if (st == NULL ? store_create_file(s, &f, &writable, err, err_len) < 0
                          : store_open_file(s->path, &f, &writable, err, err_len) < 0) {
        return -1;
    }
    struct store_file old = s->cur;
    if (store_retire(s) < 0) {
        store_err(err, err_len, "%s: too many replaced files still being read", s->path);
        s->cur = old;
        close(f.fd);
        errno = EMFILE;
        return -1;
    }
    log_warn("%s: %s by someone else: following %s (inode %llu, was %llu)", s->path,
             st == NULL ? "removed" : "replaced",
             st == NULL ? "a new empty list there" : "the new file", (unsigned long long)f.ino,
             (unsigned long long)old.ino);
    store_reregister(old.dev, old.ino, s->owner, f.dev, f.ino);
    s->cur = f;
    s->writable = writable;
    s->size_hint = 0;
    s->damage.known = 0;
    s->count_followed_ms = 0;
    s->check_whole = 1; /* a file we did not write: its tail proves nothing of its body */
    struct task_store_event ev = {.kind = TASK_STORE_EV_OUTSIDE};
    ev.what = st == NULL ? "removed" : "replaced";
    store_emit(s, &ev);
    return 0;
}

/* 1 when the path names s->cur, 0 when it names another file (*st) or none
 * (*gone), -1 when it cannot be looked at (errno). */
static int store_same_file(const struct task_store *s, struct stat *st, int *gone)
{
    *gone = 0;
    if (stat(s->path, st) < 0) {
        if (errno != ENOENT)
            return -1;
        *gone = 1;
        return 0;
    }
    return st->st_dev == s->cur.dev && st->st_ino == s->cur.ino;
}

/* Invariant I4. With a lock of type held (F_UNLCK: none) on s->cur, makes sure
 * s->cur is the file at the path, switching to the new one (and moving the
 * lock there) when it is not. Returns 0 with the lock held on s->cur, or -1
 * with errno and err and no lock held. */
static int store_follow_path(struct task_store *s, short held, unsigned timeout_ms, char *err,
                             size_t err_len)
{
    for (int tries = 0; tries < STORE_FOLLOW_MAX; tries++) {
        struct stat st;
        int gone;
        int same = store_same_file(s, &st, &gone);
        if (same == 1)
            return 0;
        if (held != F_UNLCK)
            store_release(s);
        if (same < 0) {
            store_err(err, err_len, "%s: stat: %s", s->path, strerror(errno));
            return -1;
        }
        if (!gone && !S_ISREG(st.st_mode)) {
            errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
            store_err(err, err_len, "%s: replaced by something that is not a regular file",
                      s->path);
            return -1;
        }
        if (store_switch(s, gone ? NULL : &st, err, err_len) < 0)
            return -1;
        if (held != F_UNLCK && store_timed_lock(s, held, timeout_ms) < 0) {
            store_err(err, err_len, "%s: lock: %s", s->path, store_lock_errmsg(errno));
            return -1;
        }
    }
    if (held != F_UNLCK)
        store_release(s);
    errno = EAGAIN;
    store_err(err, err_len, "%s: keeps being replaced; try again", s->path);
    return -1;
}

/* ---- outside writers (invariant I5) ---- */

/* An outside writer that truncates and rewrites the file (the shell's ">",
 * cp, an editor saving in place) takes no lock and leaves it empty or half
 * written for a moment. Before judging a file that is not what this store
 * writes, wait (bounded) until it has not been modified for STORE_SETTLE_MS. */
static void store_settle(int fd)
{
    int64_t deadline = store_now_ms() + STORE_SETTLE_MAX_MS;
    for (;;) {
        struct stat st;
        struct timespec now;
        if (fstat(fd, &st) < 0 || clock_gettime(CLOCK_REALTIME, &now) < 0)
            return;
        int64_t age_ms = (int64_t)(now.tv_sec - st.st_mtim.tv_sec) * 1000 +
                         (now.tv_nsec - st.st_mtim.tv_nsec) / 1000000;
        if (age_ms >= STORE_SETTLE_MS || store_now_ms() >= deadline)
            return;
        int64_t wait_ms = age_ms < 0 ? 10 : STORE_SETTLE_MS - age_ms;
        store_sleep_us((unsigned)(wait_ms > 10 ? 10 : wait_ms) * 1000);
    }
}

static int store_damage_known(struct task_store *s, const struct stat *st, char *err,
                              size_t err_len)
{
    const struct store_damage *d = &s->damage;
    if (!d->known || d->dev != st->st_dev || d->ino != st->st_ino || d->size != st->st_size ||
        d->mtime.tv_sec != st->st_mtim.tv_sec || d->mtime.tv_nsec != st->st_mtim.tv_nsec ||
        d->ctime.tv_sec != st->st_ctim.tv_sec || d->ctime.tv_nsec != st->st_ctim.tv_nsec)
        return 0;
    store_err(err, err_len, "%s", d->msg);
    errno = d->error;
    return 1;
}

static void store_damage_note(struct task_store *s, int error, const char *msg)
{
    struct stat st;
    struct store_damage *d = &s->damage;
    if (fstat(s->cur.fd, &st) < 0)
        return;
    d->known = 1;
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    d->size = st.st_size;
    d->mtime = st.st_mtim;
    d->ctime = st.st_ctim;
    d->error = error;
    snprintf(d->msg, sizeof(d->msg), "%s", msg);
}

/* The tail is not what this store writes (I5, I6). With the write lock held:
 * let an outside writer finish, then check the whole file; another layout is
 * rewritten, damage refused and remembered until the file changes. Returns 0
 * (read the tail again), or -1 with errno (EBADMSG: damage) and err. */
static int store_examine(struct task_store *s, char *err, size_t err_len)
{
    struct stat st;
    struct task_store_report rep;
    store_settle(s->cur.fd);
    if (fstat(s->cur.fd, &st) < 0) {
        store_err(err, err_len, "%s: fstat: %s", s->path, strerror(errno));
        return -1;
    }
    if (store_damage_known(s, &st, err, err_len))
        return -1;
    int flags = (s->writable ? TASK_STORE_REPAIR : 0) | (s->opts.fsync ? TASK_STORE_FSYNC : 0);
    s->size_hint = 0;
    struct task_store_event ev = {.kind = TASK_STORE_EV_OUTSIDE};
    store_sync_shrunk(s); /* whatever happens below, earlier bytes may change */
    if (store_repair_locked(s->cur.fd, s->path, &s->sc, flags, &rep, err, err_len) == 0) {
        ev.what = rep.canonicalized ? "rewritten" : rep.torn_cut ? "torn" : "emptied";
        store_emit(s, &ev);
        return 0;
    }
    int e = errno;
    if (e == EBADMSG) {
        log_error("%s (refusing to write behind it: fix the file, or taskctl reset)",
                  err != NULL ? err : s->path);
        store_damage_note(s, e, err != NULL ? err : "damaged");
        ev.what = "damaged";
        ev.error = e;
        store_emit(s, &ev);
    }
    errno = e;
    return -1;
}

/* Reads the tail, with the write lock held, examining the whole file when the
 * tail is not this store's and cutting a torn one. Returns 0 or -1. */
static int store_tail_for_write(struct task_store *s, struct store_tail *ti, char *err,
                                size_t err_len)
{
    char saved[4096];
    if (s->check_whole) { /* a file adopted since: checked whole once, under this lock */
        if (store_examine(s, err, err_len) < 0)
            return -1;
        s->check_whole = 0;
    }
    int rc = store_read_tail(s->cur.fd, s->path, &s->sc, &s->size_hint, ti, err, err_len);
    /* Not what we left: a tail that is not ours, a torn one (a dying writer's,
     * or a program still writing: cp copies in chunks), or a file shorter than
     * our last commit left it (truncated by someone). Let a writer finish
     * before judging anything, and look again. */
    off_t last = store_sync_last_end(s);
    if ((rc < 0 && errno == EBADMSG) || (rc == 0 && (ti->torn || ti->size < last))) {
        store_settle(s->cur.fd);
        s->size_hint = 0;
        rc = store_read_tail(s->cur.fd, s->path, &s->sc, &s->size_hint, ti, err, err_len);
    }
    if (rc < 0 && errno == EBADMSG && store_examine(s, err, err_len) == 0)
        rc = store_read_tail(s->cur.fd, s->path, &s->sc, &s->size_hint, ti, err, err_len);
    if (rc < 0)
        return -1;
    if (ti->torn && store_cut_tail(s->cur.fd, s->path, &s->sc, ti, s->opts.quiet, s->opts.fsync,
                                   saved, sizeof(saved), err, err_len) < 0)
        return -1;
    return 0;
}

/* ---- append ---- */

/* FNV-1a, to compare a line read before a write with the same line after it. */
static uint64_t store_sum(const char *p, size_t n)
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
    struct task_meta m = {0, (int64_t)time(NULL), (long)s->owner};
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
 * than that (a regular file reads short only at its end). Returns 0, or -1
 * with errno ESTALE when another program changed the file meanwhile. */
static int store_verify_append(struct task_store *s, const struct store_tail *ti,
                               uint64_t before_sum, size_t len, off_t off)
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
               (ti->last_id > 0 ? store_sum(b, (size_t)(ti->end - from)) == before_sum &&
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
    /* The record before ours, as the tail read found it: compared again after the write. */
    uint64_t before_sum = ti.last_id > 0 ? store_sum(ti.line, (size_t)(ti.end - ti.line_start)) : 0;
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
    if (store_verify_append(s, &ti, before_sum, len, off) < 0) {
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
    int rc = s->check_whole ? -1 : store_read_tail(s->cur.fd, s->path, &s->sc, &s->size_hint, ti,
                                                   err, err_len);
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
            uint64_t v = store_line_id(buf + i + 1, n - i - 1);
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
                              size_t *line_len)
{
    off_t start = 0;
    uint64_t v = 0;
    for (off_t p = from > 0 ? from - 1 : 0;; p = start) {
        int r = store_next_record(s, snap->fd, p, snap->prefix_len, &start, &v);
        if (r <= 0)
            return r;
        if (v == id)
            return store_copy_line(snap->fd, start, snap->prefix_len, NULL, 0, line, line_cap,
                                   line_len);
        if (v > id)
            return 0;
    }
}

/* Finds id by interpolation. Ids are positions 1..n and records have nearly
 * the same length, so the id tells roughly where its line is: a block
 * centered on the guess usually holds the line (one pread(), and the line is
 * copied from it). When it does not, the records the block did hold bound the
 * search more tightly and the next guess interpolates between those bounds.
 * Invariant: the line of id starts in [lo, hi), where the record at lo has id
 * lo_id and the one at hi id hi_id (hi_id = n + 1: just past the end). A block
 * that narrows nothing (records longer than a block) hands over to the
 * record-by-record scan from lo. Returns 1 found, 0 absent, -1 error (errno). */
int task_store_find(struct task_store *s, const struct task_store_snapshot *snap, uint64_t id,
                    char *line, size_t line_cap, size_t *line_len)
{
    char *buf = s->sc.scan;
    off_t limit = snap->prefix_len;
    off_t lo = 2, hi = limit + 2;
    uint64_t lo_id = 1, hi_id = snap->num_tasks + 1;

    if (id == 0 || id > snap->num_tasks)
        return 0; /* ids are exactly 1..num_tasks */
    for (;;) {
        double frac = (double)(id - lo_id) / (double)(hi_id - lo_id);
        off_t guess = lo + (off_t)(frac * (double)(hi - lo));
        off_t at = guess - STORE_TAIL_BLOCK / 2;
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
            uint64_t v = store_line_id(buf + i + 1, n - i - 1);
            off_t start = at + (off_t)i + 1;
            if (v == id)
                return store_copy_line(snap->fd, start, limit, buf + i + 1, n - i - 1, line,
                                       line_cap, line_len);
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
        if (!narrowed)
            return store_find_forward(s, snap, lo, id, line, line_cap, line_len);
    }
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
