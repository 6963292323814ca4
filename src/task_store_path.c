/* task_store_path.c - the file at the path: following it when it is replaced or removed (I4),
 * and judging a file that someone else changed (I5, I6). */
#include "task_store_impl.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_SETTLE_MS 50       /* a file changed this recently may be mid-write */
#define STORE_SETTLE_MAX_MS 1000 /* ... but waiting for it to settle is bounded */

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

/* s->cur is being replaced at the path: keeps a descriptor of it, with its
 * number of tasks (ids are positions: the last id of a tail this store can
 * read), until the new file is checked (store_keep_replaced). A file whose
 * tail cannot be read, or an empty list, has nothing to keep. Called with no
 * lock held on s->cur: closing the kept descriptor later drops no lock. */
void store_drop_replaced(struct task_store *s)
{
    if (s->replaced.fd >= 0)
        close(s->replaced.fd);
    s->replaced.fd = -1;
}

static void store_note_replaced(struct task_store *s)
{
    struct store_tail ti;
    store_drop_replaced(s);
    if (store_read_tail(s->cur.fd, s->path, &s->sc, NULL, &ti, NULL, 0) < 0 || ti.torn ||
        ti.last_id == 0)
        return;
    s->replaced.fd = fcntl(s->cur.fd, F_DUPFD_CLOEXEC, 0);
    s->replaced.num_tasks = ti.last_id;
}

/* Copies the replaced file (all of it, as it is) to kept. Returns 0, or -1
 * with errno (kept then removed). */
static int store_copy_replaced(struct task_store *s, const char *kept)
{
    int out = open(kept, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0)
        return -1;
    char *buf = s->sc.scan; /* free here: the tail read is done and read again after */
    off_t at = 0;
    ssize_t got;
    int rc = 0;
    while ((got = pread(s->replaced.fd, buf, STORE_SCAN_MAX, at)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 || store_pwrite_full(out, buf, (size_t)got, at) < 0) {
            rc = -1;
            break;
        }
        at += got;
    }
    if (rc == 0 && s->opts.fsync && fsync(out) < 0)
        rc = -1;
    int e = errno;
    close(out);
    if (rc == 0 && s->opts.fsync && store_fsync_dir(kept) < 0)
        rc = -1, e = errno;
    if (rc < 0) {
        unlink(kept);
        errno = e;
    }
    return rc;
}

/* The new file has been checked whole and holds num_tasks tasks (0: it is
 * damaged). When the file it replaced held more, those tasks would be gone:
 * the old file is copied beside the path, named after its inode and its last
 * change, so that every worker that adopts the new file finds the copy made
 * (O_EXCL) and only one makes it, and the loss is said loudly. */
static void store_keep_replaced(struct task_store *s, uint64_t num_tasks)
{
    struct stat st;
    char kept[sizeof(s->path) + 64];
    if (s->replaced.fd < 0)
        return;
    if (num_tasks < s->replaced.num_tasks && fstat(s->replaced.fd, &st) == 0) {
        struct tm tm;
        char stamp[32];
        gmtime_r(&st.st_ctim.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
        snprintf(kept, sizeof(kept), "%s.replaced-%s.%09ldZ-%llu", s->path, stamp,
                 st.st_ctim.tv_nsec, (unsigned long long)st.st_ino);
        if (store_copy_replaced(s, kept) == 0)
            log_error("%s: replaced by a file with %llu tasks; the one it replaced had %llu (a "
                      "stale save? an editor's buffer read before tasks were added): that list "
                      "is kept as %s",
                      s->path, (unsigned long long)num_tasks,
                      (unsigned long long)s->replaced.num_tasks, kept);
        else if (errno != EEXIST)
            log_error("%s: replaced by a file with %llu tasks; the one it replaced had %llu, "
                      "and keeping it as %s failed: %s",
                      s->path, (unsigned long long)num_tasks,
                      (unsigned long long)s->replaced.num_tasks, kept, strerror(errno));
    }
    store_drop_replaced(s);
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
    if (st != NULL)
        store_note_replaced(s);
    struct store_file old = s->cur;
    if (store_retire(s) < 0) {
        store_drop_replaced(s); /* the file stays ours: nothing replaced it for us */
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
int store_same_file(const struct task_store *s, struct stat *st, int *gone)
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
int store_follow_path(struct task_store *s, short held, unsigned timeout_ms, char *err,
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
void store_settle(int fd)
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
    struct task_store_report rep = {0}; /* store_repair_locked() sets only what it finds */
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
        store_keep_replaced(s, rep.num_tasks);
        ev.what = rep.canonicalized ? "rewritten" : rep.torn_cut ? "torn" : "emptied";
        store_emit(s, &ev);
        return 0;
    }
    int e = errno;
    if (e == EBADMSG)
        store_keep_replaced(s, 0); /* none of its tasks can be read: keep the old ones */
    errno = e;
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
int store_tail_for_write(struct task_store *s, struct store_tail *ti, char *err, size_t err_len)
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
