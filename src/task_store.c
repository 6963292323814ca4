/* task_store.c - tasks.json under fcntl record locks: open, lock, append, snapshot, find, check,
 * repair. */
#include "task_store.h"

#include "build_config.h"
#include "log.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/*
 * Locks: what they promise and where they bite
 * ============================================
 *
 * Every process (each worker, each taskctl) appends to the same file. The
 * only coordination is a POSIX record lock on the whole file: F_WRLCK for an
 * append, a repair or a reset; F_RDLCK for the short moment a reader needs to
 * find the end of the last complete record. Invariants the lock protects:
 *
 *   I1  When no writer holds the lock, the file is "[\n]\n" or
 *       "[\n" + records joined by ",\n" + "\n]\n": a valid JSON array.
 *   I2  Record lines contain no raw newline (task_json escapes them) and
 *       their ids are 1..n in file order, so the last line alone tells the
 *       next id: an append reads only the tail, O(1) in the file's size.
 *   I3  Bytes before the end of the last complete record never change (an
 *       append overwrites only the closing "\n]\n"), so a reader that noted
 *       that end under the lock may stream the bytes later without it. The
 *       one exception is a reset (taskctl reset, by hand), which the lock
 *       cannot keep from a reader that holds none: the streamer checks that
 *       its last record is still there (task_store_snapshot_intact()).
 *
 * POSIX record locks are a famous trap (sqlite's os_unix.c calls them
 * "broken by design"); the store is shaped around their rules:
 *
 *   - A lock belongs to the (process, inode) pair, not to the descriptor.
 *     Two descriptors in one process share one lock, so a second lock call
 *     in the same process never blocks and never excludes: the locks cannot
 *     serialize threads, only processes. The server is one thread per worker.
 *   - Closing ANY descriptor on the file releases ALL of the process's locks
 *     on it, even if the lock was taken through another descriptor. Hence one
 *     descriptor per store, a registry of open (st_dev, st_ino) pairs that
 *     makes a second task_store_open() fail with EBUSY *before* it opens
 *     anything (it stat()s the path first), and the same refusal in
 *     task_store_check(), which opens its own descriptor.
 *   - Locks are not inherited across fork(): a child of a lock holder holds
 *     nothing. Each worker opens its store after fork().
 *   - A lock lives on the inode. Replacing tasks.json by rename() would leave
 *     every other process locking the old, unlinked inode; compose may also
 *     bind-mount the file itself, where rename fails. So every rewrite here
 *     (repair, canonicalization, reset) happens in place: ftruncate + pwrite.
 *   - F_SETLKW sleeps forever behind a stopped holder (kill -STOP, a debugger,
 *     a race window). For the server that means answering 503 instead, so a
 *     lock can have a deadline; see store_lock() for how, and why SIGALRM.
 *   - The kernel may answer EDEADLK when two processes wait for each other;
 *     with one lock per file and one file per process that cannot happen, but
 *     the error is passed up rather than retried.
 *
 * With -Dlocking=false the lock and unlock calls are compiled out and nothing
 * else changes: the same reads and writes then race, and the race window makes
 * lost tasks appear on demand. That build exists to show why all this matters.
 */

#define STORE_TAIL_BLOCK 4096
#define STORE_JUNK_MAX (TASK_JSON_RECORD_MAX + 16) /* a torn tail is at most this */
#define STORE_SCAN_MAX (STORE_JUNK_MAX + TASK_JSON_RECORD_MAX + 64) /* tail window of a repair */
#define STORE_ROOM 64                       /* room in front of a pre-encoded record for the id */
#define STORE_LOCK_TICK_MS 25               /* SIGALRM period while waiting with a deadline */
#define STORE_READ_LOCK_WAIT_MS 100         /* then a snapshot reads without the lock */
#define STORE_CANON_MAX (64L * 1024 * 1024) /* larger non-canonical files are refused */
#define STORE_REGISTRY_MAX 64
#define STORE_HINT_BEFORE 4096 /* tail window: from this far before the size hint */
#define STORE_HINT_AFTER 12288 /* to this far past it (see store_window_size) */

_Static_assert(STORE_HINT_BEFORE >= STORE_TAIL_BLOCK, "the window must hold a fast tail block");
_Static_assert(STORE_HINT_BEFORE + STORE_HINT_AFTER <= STORE_SCAN_MAX,
               "the window is read into scan");

struct task_store {
    int fd;
    int writable;
    pid_t owner; /* the process that opened it (see store_registry); also each record's "pid" */
    dev_t dev;
    ino_t ino;
    struct task_store_options opts;
    char path[4096];
    char enc[STORE_ROOM + TASK_JSON_RECORD_MAX + 8]; /* the record being appended */
    char scan[STORE_SCAN_MAX + 1];                   /* tail reads and repair scans */
    struct task_record rec;                          /* scratch for record decoding */
    off_t size_hint; /* file size after our last tail read or write, 0 unknown: a guess only */
    int64_t write_busy_until_ms; /* a write lock wait ran out: see store_timed_lock() */
    int64_t read_busy_until_ms;  /* the same for a read lock */
    int64_t locked_at_ns;        /* when the lock now held was granted (observer only) */
    short locked_type;           /* its type */
};

/* What the tail of the file says. */
struct store_tail {
    off_t size;       /* file size when read */
    off_t end;        /* just past the '}' of the last complete record; 2 if none */
    uint64_t last_id; /* its id; 0 if none */
    off_t line_start; /* where the line of that record starts; 2 if none */
    int torn;         /* bytes [end, size) are the remains of a dead writer */
};

/* Open stores of this process, by inode: see "Closing ANY descriptor" above.
 * Entries carry the pid that opened them: a child of fork() inherits the
 * array and the descriptors but none of the locks, and the store holds a
 * lock only inside a call, so in the child the inherited stores are no
 * hazard to a store it opens itself (each worker opens its own after fork). */
static struct {
    dev_t dev;
    ino_t ino;
    pid_t pid;
} store_registry[STORE_REGISTRY_MAX];
static int store_num_registered;

static void store_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void store_err(char *err, size_t err_len, const char *fmt, ...)
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

static int store_registered(dev_t dev, ino_t ino)
{
    pid_t me = getpid();
    for (int i = 0; i < store_num_registered; i++)
        if (store_registry[i].dev == dev && store_registry[i].ino == ino &&
            store_registry[i].pid == me)
            return 1;
    return 0;
}

static void store_unregister(dev_t dev, ino_t ino, pid_t pid)
{
    for (int i = 0; i < store_num_registered; i++) {
        if (store_registry[i].dev == dev && store_registry[i].ino == ino &&
            store_registry[i].pid == pid) {
            store_registry[i] = store_registry[--store_num_registered];
            return;
        }
    }
}

/* ---- I/O helpers: full reads and writes, EINTR retried ---- */

static ssize_t store_pread_full(int fd, char *buf, size_t n, off_t off)
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

static int store_pwrite_full(int fd, const char *buf, size_t n, off_t off)
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

static int store_fdatasync(int fd)
{
    int r;
    while ((r = fdatasync(fd)) < 0 && errno == EINTR) {
    }
    return r;
}

static int store_ftruncate(int fd, off_t len)
{
    while (ftruncate(fd, len) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

static void store_sleep_us(unsigned us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* ---- locks ---- */

static int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t store_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Tells the observer, if any. ev->t_ns is filled in here unless set. */
static void store_emit(const struct task_store *s, struct task_store_event *ev)
{
    if (s->opts.observe == NULL)
        return;
    if (ev->t_ns == 0)
        ev->t_ns = store_now_ns();
    s->opts.observe(s->opts.observe_arg, ev);
}

#if TASKSERVER_LOCKING

static void store_on_alarm(int sig)
{
    (void)sig; /* only here to interrupt fcntl(F_SETLKW) with EINTR */
}

/* Waits for the lock with a deadline. F_SETLKW has no timeout, so a signal
 * must interrupt it: a SIGALRM handler installed without SA_RESTART makes the
 * blocked fcntl() return EINTR, and the loop checks the monotonic deadline.
 * A single alarm could fire in the gap between the deadline check and the
 * moment fcntl() goes to sleep, and then nothing would ever wake it; a
 * repeating ITIMER_REAL (every STORE_LOCK_TICK_MS) closes that race at the
 * cost of a few spurious wake-ups. The previous handler and timer are
 * restored afterwards; the caller's process must not rely on SIGALRM itself
 * while a store waits (task_store.h says so). */
static int store_lock_wait(int fd, struct flock *fl, unsigned timeout_ms)
{
    struct sigaction sa, old_sa;
    struct itimerval tick, old_timer;
    int rc = -1, saved;
    int64_t deadline = store_now_ms() + timeout_ms;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = store_on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the point is to get EINTR */
    if (sigaction(SIGALRM, &sa, &old_sa) < 0)
        return -1;
    memset(&tick, 0, sizeof(tick));
    tick.it_interval.tv_usec = STORE_LOCK_TICK_MS * 1000;
    tick.it_value = tick.it_interval;
    if (setitimer(ITIMER_REAL, &tick, &old_timer) < 0) {
        saved = errno;
        sigaction(SIGALRM, &old_sa, NULL);
        errno = saved;
        return -1;
    }
    for (;;) {
        if (fcntl(fd, F_SETLKW, fl) == 0) {
            rc = 0;
            break;
        }
        if (errno != EINTR)
            break;
        if (store_now_ms() >= deadline) {
            errno = ETIMEDOUT;
            break;
        }
    }
    saved = errno;
    setitimer(ITIMER_REAL, &old_timer, NULL);
    sigaction(SIGALRM, &old_sa, NULL);
    errno = saved;
    return rc;
}
#endif

/* Takes a whole-file lock of type (F_RDLCK or F_WRLCK). The uncontended case
 * costs exactly one fcntl(F_SETLK). timeout_ms 0 waits as long as it takes.
 * Returns 0, or -1 with errno (ETIMEDOUT after the deadline). */
static int store_lock(int fd, short type, unsigned timeout_ms)
{
#if TASKSERVER_LOCKING
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET; /* l_start 0, l_len 0: the whole file, however it grows */
    if (fcntl(fd, F_SETLK, &fl) == 0)
        return 0;
    if (errno != EACCES && errno != EAGAIN && errno != EINTR)
        return -1;
    if (timeout_ms > 0)
        return store_lock_wait(fd, &fl, timeout_ms);
    while (fcntl(fd, F_SETLKW, &fl) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
#else
    (void)fd;
    (void)type;
    (void)timeout_ms;
    return 0;
#endif
}

static void store_unlock(int fd, const char *path)
{
#if TASKSERVER_LOCKING
    struct flock fl;
    int saved = errno;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    /* Unlocking a lock we hold cannot fail on a valid descriptor; if it did,
     * the close at task_store_close() releases it anyway. */
    if (fcntl(fd, F_SETLK, &fl) < 0)
        log_error("%s: unlock: %s", path, strerror(errno));
    errno = saved;
#else
    (void)fd;
    (void)path;
#endif
}

static const char *store_lock_errmsg(int e)
{
    return e == ETIMEDOUT ? "lock not granted in time" : strerror(e);
}

/* Takes a lock with a deadline of timeout_ms (0: none) for this store.
 *
 * A deadline alone does not bound a worker's stall: behind a stopped holder,
 * every request queued on the worker would wait its own full timeout, one
 * after the other (k POSTs: k times the timeout, with the worker's other
 * connections waiting too). So once a wait has run out, the store counts as
 * busy for the next timeout_ms and cuts its waits to one lock tick: a stopped
 * holder then costs each later request at most that, while a holder that is
 * merely finishing its append still gets waited for. A granted lock of the
 * same kind ends the busy time (a read lock ends only the readers'); when it
 * expires, one request waits in full again and so
 * probes whether the holder is back. A read that ran out shortens only
 * reads: readers wait 100 ms, which a slow fdatasync() under the write lock
 * may take, and that must not turn later writers away early. */
static int store_timed_lock_quiet(struct task_store *s, short type, unsigned timeout_ms)
{
    if (timeout_ms == 0)
        return store_lock(s->fd, type, 0);
    int64_t now = store_now_ms();
    int busy = now < s->write_busy_until_ms || (type == F_RDLCK && now < s->read_busy_until_ms);
    unsigned wait_ms = busy && timeout_ms > STORE_LOCK_TICK_MS ? STORE_LOCK_TICK_MS : timeout_ms;
    if (store_lock(s->fd, type, wait_ms) == 0) {
        /* A read lock shares with a stopped reader (a taskctl verify on
         * Ctrl-Z): it proves nothing for writers. */
        s->read_busy_until_ms = 0;
        if (type == F_WRLCK)
            s->write_busy_until_ms = 0;
        return 0;
    }
    if (errno == ETIMEDOUT && !busy) {
        int64_t until = store_now_ms() + timeout_ms;
        if (type == F_WRLCK)
            s->write_busy_until_ms = until;
        else
            s->read_busy_until_ms = until;
    }
    return -1;
}

/* store_timed_lock_quiet(), reported to the observer: the wait, the grant or the
 * timeout; the hold is reported by store_release(). */
static int store_timed_lock(struct task_store *s, short type, unsigned timeout_ms)
{
#if TASKSERVER_LOCKING
    if (s->opts.observe != NULL) {
        struct task_store_event ev = {.kind = TASK_STORE_EV_LOCK_WAIT, .lock_type = type};
        store_emit(s, &ev);
        int rc = store_timed_lock_quiet(s, type, timeout_ms);
        int saved = errno;
        struct task_store_event done = {.lock_type = type};
        done.kind = rc == 0 ? TASK_STORE_EV_LOCK_GRANTED : TASK_STORE_EV_LOCK_TIMEOUT;
        done.t_ns = store_now_ns();
        done.duration_ns = done.t_ns - ev.t_ns;
        done.error = rc == 0 ? 0 : saved;
        if (rc == 0 || saved == ETIMEDOUT)
            store_emit(s, &done);
        s->locked_at_ns = done.t_ns;
        s->locked_type = type;
        errno = saved;
        return rc;
    }
#endif
    return store_timed_lock_quiet(s, type, timeout_ms);
}

/* Releases the lock taken by store_timed_lock(), and reports how long it was held. */
static void store_release(struct task_store *s)
{
    store_unlock(s->fd, s->path);
#if TASKSERVER_LOCKING
    if (s->opts.observe != NULL) {
        int saved = errno;
        struct task_store_event ev = {.kind = TASK_STORE_EV_UNLOCK, .lock_type = s->locked_type};
        ev.t_ns = store_now_ns();
        ev.duration_ns = ev.t_ns - s->locked_at_ns;
        store_emit(s, &ev);
        errno = saved;
    }
#endif
}

/* ---- the tail ---- */

/* Parses {"id":<digits>[,}] at line[0]; returns the id, or 0 if not so. */
static uint64_t store_line_id(const char *line, size_t len)
{
    static const char head[] = "{\"id\":";
    size_t i = sizeof(head) - 1;
    uint64_t id = 0;
    if (len <= i || memcmp(line, head, i) != 0 || line[i] < '1' || line[i] > '9')
        return 0;
    for (; i < len && line[i] >= '0' && line[i] <= '9'; i++) {
        if (id > (UINT64_MAX - 9) / 10)
            return 0;
        id = id * 10 + (uint64_t)(line[i] - '0');
    }
    if (i >= len || (line[i] != ',' && line[i] != '}'))
        return 0;
    return id;
}

/* The fast path: a file that is "[\n]\n", or ends in "}\n]\n" with a last line
 * that starts with {"id":N. Why that suffices: an append writes the single
 * buffer ",\n{rec}\n]\n" at size-3 (or "{rec}\n]\n" at 2), and rec contains no
 * raw newline. If the writer dies after k bytes, the file ends with byte k-1
 * of that buffer (k >= 3) or with old bytes shifted by a stub (k < 3). The
 * buffer holds "\n" only at 1, len-3 and len-1, so the file can end in
 * "}\n]\n" only when k == len, the complete record; for k < 3 it ends in ",]\n"
 * or ",\n\n". A torn append is therefore never mistaken for a good tail.
 * (A file system crash may leave zeros or stale blocks instead; those do not
 * end in "}\n]\n" either, and take the slow path.)
 * When have is not NULL it holds the last have_len bytes of the file (read
 * under the same lock): a block found there is not read again.
 * Returns 1 fast tail, 0 not fast, -1 read error. */
static int store_fast_tail(struct task_store *s, int fd, off_t size, struct store_tail *ti,
                           const char *have, size_t have_len)
{
    const char *buf = s->scan;
    ti->size = size;
    ti->torn = 0;
    if (size == 4) {
        if (have != NULL && have_len >= 4)
            buf = have + have_len - 4;
        else if (store_pread_full(fd, s->scan, 4, 0) != 4)
            return errno ? -1 : 0;
        if (memcmp(buf, "[\n]\n", 4) == 0) {
            ti->end = 2;
            ti->line_start = 2;
            ti->last_id = 0;
            return 1;
        }
    }
    if (size < 10)
        return 0;
    size_t want = size < STORE_TAIL_BLOCK ? (size_t)size : STORE_TAIL_BLOCK;
    for (int pass = 0; pass < 2; pass++) {
        off_t at = size - (off_t)want;
        if (pass == 0 && have != NULL && have_len >= want) {
            buf = have + have_len - want;
        } else {
            buf = s->scan;
            if (store_pread_full(fd, s->scan, want, at) != (ssize_t)want)
                return -1;
        }
        if (memcmp(buf + want - 4, "}\n]\n", 4) != 0)
            return 0;
        size_t j = want - 4;
        while (j > 0 && buf[j - 1] != '\n')
            j--;
        if (j < 2) {
            /* The last line and the ",\n" or "[\n" before it do not fit in
             * one block (with j == 1 the ',' lies just before it: found by
             * fuzz/fuzz_store_check.c, a valid file whose appends then failed):
             * read once more, as far back as the longest record allowed. */
            if (pass == 1 || (off_t)want == size)
                return 0;
            want = size < STORE_JUNK_MAX + 8 ? (size_t)size : STORE_JUNK_MAX + 8;
            continue;
        }
        /* buf[j] starts the last line; it must follow ",\n", or "[\n" at 0. */
        off_t line_start = at + (off_t)j;
        int ok_before =
            (j >= 2 && buf[j - 2] == ',') || (line_start == 2 && j >= 2 && buf[j - 2] == '[');
        uint64_t id = store_line_id(buf + j, want - 3 - j);
        if (!ok_before || id == 0)
            return 0;
        ti->end = size - 3;
        ti->line_start = line_start;
        ti->last_id = id;
        return 1;
    }
    return 0;
}

/* Whether the bytes after the last complete record (or after "[\n" when
 * there is none) can be what a dead writer left, as opposed to a foreign or
 * damaged file that must not be cut. A torn append of ",\n{rec}\n]\n" at
 * size-3 leaves ",\n{" + part of rec (no newline inside a record), or for
 * the first two bytes the stubs ",]\n" and ",\n\n"; "\n" or "\n]" when only
 * the closing bracket is missing. The first append ("{rec}\n]\n" at 2)
 * leaves "{" + part of rec, or "{\n". A crash of the machine may add zeros
 * instead of data. Anything else is damage. */
static int store_junk_is_record_ends(const char *r, size_t n)
{
    if (n == 0 || r[n - 1] != '\n')
        return 0;
    for (size_t at = 0; at < n;) {
        const char *nl = memchr(r + at, '\n', n - at);
        size_t len = (size_t)(nl - (r + at));
        const char *line = r + at;
        int ok =
            len == 0 || (len == 1 && line[0] == ']') || (line[0] != '{' && line[len - 1] == '}');
        if (!ok)
            return 0;
        at += len + 1;
    }
    return 1;
}

static int store_junk_plausible(const char *j, size_t len, int after_record)
{
    const char *close_str = after_record ? "\n]\n" : "]\n";
    size_t n = len;
    if (len > STORE_JUNK_MAX)
        return 0;
    while (n > 0 && j[n - 1] == '\0')
        n--;
    if (n == 0 || (n <= strlen(close_str) && memcmp(j, close_str, n) == 0))
        return 1;
    if (after_record) {
        if (n == 3 && (memcmp(j, ",]\n", 3) == 0 || memcmp(j, ",\n\n", 3) == 0))
            return 1;
        /* A complete array followed by the end of a longer record: two appends
         * wrote at the same offset and the shorter one landed last. Only
         * writers that skip the lock (the -Dlocking=false build, or a foreign
         * program) leave this; the bytes are saved beside the file like any
         * torn tail. What follows "\n]\n" is then the ends of one or more longer
         * appends, each the last bytes of ",\n{rec}\n]\n": lines that are empty,
         * "]", or the end of a record ("...}"), never the start of one. */
        if (n > 3 && memcmp(j, "\n]\n", 3) == 0)
            return store_junk_is_record_ends(j + 3, n - 3);
        return n >= 3 && memcmp(j, ",\n{", 3) == 0 && memchr(j + 3, '\n', n - 3) == NULL;
    }
    if (n == 2 && memcmp(j, "{\n", 2) == 0)
        return 1;
    return j[0] == '{' && memchr(j + 1, '\n', n - 1) == NULL;
}

/* The slow path: scan back from the end for the last line "\n{...}" that
 * parses as a complete record. What follows it is the remains of a writer
 * that died mid-append (or of a crash) if store_junk_plausible() and it
 * holds no complete record line. A tail that is exactly "\n]\n" is not torn:
 * the last record is merely not canonical, and cutting it would loop forever.
 * Returns 0 with ti->torn = 1, or -1 with
 * errno EBADMSG (damage: caller must not touch the file) or EIO. */
static int store_scan_tail(struct task_store *s, int fd, off_t size, struct store_tail *ti,
                           const char *path, char *err, size_t err_len)
{
    char *buf = s->scan;
    size_t w = size < STORE_SCAN_MAX ? (size_t)size : STORE_SCAN_MAX;
    off_t at = size - (off_t)w;
    ti->size = size;
    ti->torn = 1;
    if (store_pread_full(fd, buf, w, at) != (ssize_t)w) {
        if (errno == 0)
            errno = EIO;
        store_err(err, err_len, "%s: read: %s", path, strerror(errno));
        return -1;
    }
    for (size_t p = w >= 2 ? w - 2 : 0; w >= 2; p--) {
        if (buf[p] == '\n' && buf[p + 1] == '{') {
            size_t end = 0;
            if (task_json_decode_record(buf + p + 1, w - p - 1, &s->rec, &end, NULL, 0) == 0) {
                off_t e = at + (off_t)(p + 1 + end);
                size_t junk = (size_t)(size - e);
                if (junk == 3 && memcmp(buf + p + 1 + end, "\n]\n", 3) == 0) {
                    errno = EBADMSG;
                    store_err(
                        err, err_len,
                        "%s: byte %lld: last record not in canonical form (run taskctl repair)",
                        path, (long long)(at + (off_t)p + 1));
                    return -1;
                }
                if (!store_junk_plausible(buf + p + 1 + end, junk, 1))
                    break;
                ti->end = e;
                ti->line_start = at + (off_t)p + 1;
                ti->last_id = s->rec.id;
                return 0;
            }
        }
        if (p == 0)
            break;
    }
    /* No complete record near the end: torn only if the whole file is a
     * short stub after "[\n" (the first append died), or shorter than that. */
    if (size <= (off_t)STORE_JUNK_MAX + 2 && (size_t)size == w &&
        (size < 2 ? memcmp(buf, "[\n", (size_t)size) == 0
                  : memcmp(buf, "[\n", 2) == 0 && store_junk_plausible(buf + 2, w - 2, 0))) {
        ti->end = 2;
        ti->line_start = 0;
        ti->last_id = 0;
        return 0;
    }
    errno = EBADMSG;
    if (size >= 2 && memcmp(s->scan, "[\n", 2) != 0 && at == 0)
        store_err(err, err_len, "%s: byte 0: not in the canonical layout (run taskctl repair)",
                  path);
    else
        store_err(err, err_len,
                  "%s: byte %lld: damaged tail: no complete record followed by a short torn "
                  "append (needs taskctl repair or a human)",
                  path, (long long)at);
    return -1;
}

/* Finds the file's size and tail without fstat() in the common case, by one
 * pread() of a window around the size hint (the size after this store's last
 * append or tail read): from STORE_HINT_BEFORE before it to STORE_HINT_AFTER
 * past it. Why a short read gives the size: pread() of a regular file
 * returns fewer bytes than asked only at the end of the file (on a local
 * file system a signal does not cut a file read short), so a short window
 * ends exactly at the file's end, whatever happened since the hint (other
 * processes' appends, a reset, a repair). The hint only chooses where to
 * look; it is never taken as the size. Two outcomes fall back to fstat()
 * and the old path: a full window (the file grew past it: many appends by
 * others) and a window that ends
 * before the hint (the file shrank: a reset or a repair; the window may then
 * not hold the last STORE_TAIL_BLOCK bytes). Otherwise the window holds them
 * (it starts STORE_HINT_BEFORE before the hint, or at 0): returns *size and,
 * in *have and *have_len, the bytes [size - *have_len, size).
 *
 * What is trusted from the window is only a tail that passes the fast path
 * (it ends in "}\n]\n" after a record line that follows ",\n" or "[\n"); a
 * tail that does not is looked at again after an fstat(), so the scan that
 * may cut a torn tail never works from a size that a read alone suggested.
 * Under the lock nothing else writes. Without it (a snapshot past its
 * deadline, a count) the single read can race another process's append
 * exactly as the fstat() and pread() it replaces could: the kernel extends
 * the size only over copied bytes, so the read sees a prefix of the append,
 * and a prefix never ends in "}\n]\n" (see store_fast_tail()).
 * Returns 1 with the size, 0 to fall back, -1 read error. */
static int store_window_size(struct task_store *s, off_t *size, const char **have, size_t *have_len)
{
    off_t hint = s->size_hint;
    if (hint <= 0)
        return 0;
    off_t at = hint > STORE_HINT_BEFORE ? hint - STORE_HINT_BEFORE : 0;
    size_t want = (size_t)(hint - at) + STORE_HINT_AFTER;
    ssize_t got;
    while ((got = pread(s->fd, s->scan, want, at)) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if ((size_t)got == want || at + (off_t)got < hint)
        return 0;
    *size = at + (off_t)got;
    *have = s->scan;
    *have_len = (size_t)got;
    return 1;
}

/* The fast path, else the scan. Returns 0 (ti->torn says which) or -1.
 * Keeps the size hint for the next call (only for the store's own
 * descriptor: task_store_check() scans through another). */
static int store_read_tail(struct task_store *s, int fd, const char *path, struct store_tail *ti,
                           char *err, size_t err_len)
{
    const char *have = NULL;
    size_t have_len = 0;
    off_t size = 0;
    int w = fd == s->fd ? store_window_size(s, &size, &have, &have_len) : 0;
    if (w < 0) {
        s->size_hint = 0;
        store_err(err, err_len, "%s: read: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (w == 0) {
            struct stat st;
            if (fstat(fd, &st) < 0) {
                store_err(err, err_len, "%s: fstat: %s", path, strerror(errno));
                return -1;
            }
            size = st.st_size;
        }
        if (fd == s->fd)
            s->size_hint = size;
        errno = 0;
        int fast = store_fast_tail(s, fd, size, ti, have, have_len);
        if (fast == 1)
            return 0;
        if (fast < 0) {
            if (errno == 0)
                errno = EIO;
            store_err(err, err_len, "%s: read: %s", path, strerror(errno));
            return -1;
        }
        if (w == 0)
            break;
        w = 0; /* not the fast path: the size again from fstat(), as before the hint */
        have = NULL;
        have_len = 0;
    }
    return store_scan_tail(s, fd, size, ti, path, err, err_len);
}

/* Writes bytes to "<path>.<kind>-<UTC timestamp>[-N]", created exclusively
 * (never an existing file, never a descriptor on tasks.json itself). */
static int store_save_beside(const char *path, const char *kind, const char *data, size_t len,
                             char *saved, size_t saved_cap)
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
        if (rc < 0) {
            unlink(saved);
            errno = saved_errno;
            return -1;
        }
        return 0;
    }
    errno = EEXIST;
    return -1;
}

/* Cuts the torn tail found by store_scan_tail(), under the write lock: saves
 * the cut bytes beside the file, writes the closing bracket after the last
 * complete record, truncates. Each step leaves a file the next writer can
 * repair again, whatever the order of a crash. */
static int store_cut_tail(struct task_store *s, int fd, const char *path, struct store_tail *ti,
                          char *saved, size_t saved_cap, char *err, size_t err_len)
{
    /* With no record left the file becomes "[\n]\n", even if it was shorter. */
    size_t junk = ti->size > ti->end ? (size_t)(ti->size - ti->end) : 0;
    saved[0] = '\0';
    if (junk > 0) {
        /* The scan buffer still holds the tail: the junk is its last bytes. */
        size_t w = ti->size < STORE_SCAN_MAX ? (size_t)ti->size : STORE_SCAN_MAX;
        if (store_save_beside(path, "torn", s->scan + w - junk, junk, saved, saved_cap) < 0) {
            store_err(err, err_len, "%s: cannot save torn tail to %s: %s", path, saved,
                      strerror(errno));
            return -1;
        }
    }
    const char *close_str = ti->last_id > 0 ? "\n]\n" : "[\n]\n";
    size_t close_len = strlen(close_str);
    off_t close_at = ti->last_id > 0 ? ti->end : 0;
    if (store_pwrite_full(fd, close_str, close_len, close_at) < 0 ||
        store_ftruncate(fd, close_at + (off_t)close_len) < 0) {
        store_err(err, err_len, "%s: repair torn tail at byte %lld: %s", path, (long long)ti->end,
                  strerror(errno));
        return -1;
    }
    if (!s->opts.quiet)
        log_warn("%s: torn tail at byte %lld: cut %zu bytes%s%s", path, (long long)ti->end, junk,
                 saved[0] ? ", saved in " : "", saved);
    ti->size = close_at + (off_t)close_len;
    ti->torn = 0;
    return 0;
}

/* ---- open and close ---- */

struct task_store *task_store_open(const char *path, const struct task_store_options *opts,
                                   char *err, size_t err_len)
{
    struct stat st;
    struct task_store *s = NULL;
    int fd = -1, writable = 1;

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
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && (errno == EACCES || errno == EROFS || errno == EPERM)) {
        /* Read-only access still lets taskctl list; appends then fail. */
        writable = 0;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        store_err(err, err_len, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        if (e == 0 || !S_ISREG(st.st_mode))
            e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        close(fd);
        errno = e;
        store_err(err, err_len, "%s: not a regular file", path);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        close(fd);
        errno = ENOMEM;
        store_err(err, err_len, "%s: out of memory", path);
        return NULL;
    }
    s->fd = fd;
    s->writable = writable;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    if (opts != NULL)
        s->opts = *opts;
    else
        s->opts.crash_after_bytes = -1;
    snprintf(s->path, sizeof(s->path), "%s", path);
    store_registry[store_num_registered].dev = st.st_dev;
    store_registry[store_num_registered].ino = st.st_ino;
    store_registry[store_num_registered].pid = s->owner = getpid();
    store_num_registered++;
    return s;
}

void task_store_close(struct task_store *s)
{
    if (s == NULL)
        return;
    store_unregister(s->dev, s->ino, s->owner);
    close(s->fd); /* releases this process's locks on the file */
    free(s);
}

int task_store_fd(const struct task_store *s)
{
    return s->fd;
}

/* ---- append ---- */

/* Puts the file back as it was before an append that failed: size S and the
 * closing bytes the append overwrote. Shrinking frees space, and the bytes
 * rewritten lie in blocks the file already had, so this works on a full disk. */
static void store_undo_append(struct task_store *s, off_t size, uint64_t last_id)
{
    int saved = errno;
    const char *close_str = last_id > 0 ? "\n]\n" : "]\n";
    size_t close_len = strlen(close_str);
    if (store_ftruncate(s->fd, size) < 0 ||
        store_pwrite_full(s->fd, close_str, close_len, size - (off_t)close_len) < 0)
        log_error("%s: cannot undo a failed append at byte %lld: %s", s->path, (long long)size,
                  strerror(errno));
    errno = saved;
}

int task_store_append(struct task_store *s, const struct task *t, struct task_meta *meta,
                      char *line, size_t line_cap, size_t *line_len, char *err, size_t err_len)
{
    static const char id0[] = "{\"id\":0";
    /* The pid cached at open, not getpid() (a system call on every append
     * since glibc 2.25): a store is used only by the process that opened it
     * (task_store.h), so s->owner is this process. */
    struct task_meta m = {0, (int64_t)time(NULL), (long)s->owner};
    struct store_tail ti;
    char saved[4096];
    int rc = -1;

    if (!s->writable) {
        errno = EBADF;
        store_err(err, err_len, "%s: opened read-only (no write permission): cannot append",
                  s->path);
        return -1;
    }
    /* Everything but the id is encoded before the lock is taken: the body
     * after {"id":0 sits at enc + STORE_ROOM + 7, with room in front for
     * ",\n{\"id\":<digits>" and room behind for "\n]\n". */
    char *rec = s->enc + STORE_ROOM;
    long n = task_json_encode_record(t, &m, rec, TASK_JSON_RECORD_MAX);
    if (n < 0) {
        errno = EMSGSIZE;
        store_err(err, err_len, "%s: record longer than %d bytes", s->path, TASK_JSON_RECORD_MAX);
        return -1;
    }
    assert(memcmp(rec, id0, sizeof(id0) - 1) == 0);
    char *body = rec + sizeof(id0) - 1;
    size_t body_len = (size_t)n - (sizeof(id0) - 1);
    memcpy(body + body_len, "\n]\n", 3);

    if (store_timed_lock(s, F_WRLCK, s->opts.lock_timeout_ms) < 0) {
        store_err(err, err_len, "%s: write lock: %s", s->path, store_lock_errmsg(errno));
        return -1;
    }
    if (store_read_tail(s, s->fd, s->path, &ti, err, err_len) < 0)
        goto unlock;
    if (ti.torn && store_cut_tail(s, s->fd, s->path, &ti, saved, sizeof(saved), err, err_len) < 0)
        goto unlock;
    if (s->opts.observe != NULL) {
        struct task_store_event ev = {.kind = TASK_STORE_EV_TAIL_READ, .id = ti.last_id};
        ev.offset = ti.last_id > 0 ? ti.size - 3 : 2;
        store_emit(s, &ev);
    }

    m.id = ti.last_id + 1;
    /* [",\n"]{"id":<digits> written backwards in front of the body, by hand:
     * snprintf was a measurable share of a POST. At most 28 bytes, well
     * inside STORE_ROOM. */
    char *buf = body;
    uint64_t v = m.id;
    do {
        *--buf = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    buf -= sizeof(id0) - 2;
    memcpy(buf, id0, sizeof(id0) - 2);
    if (m.id > 1) {
        buf -= 2;
        memcpy(buf, ",\n", 2);
    }
    size_t p = (size_t)(body - buf);
    size_t buf_len = p + body_len + 3;
    off_t off = m.id > 1 ? ti.size - 3 : 2;

    if (s->opts.race_window_us > 0)
        store_sleep_us(s->opts.race_window_us);
    if (s->opts.crash_after_bytes >= 0) {
        size_t k = (size_t)s->opts.crash_after_bytes < buf_len ? (size_t)s->opts.crash_after_bytes
                                                               : buf_len;
        if (k > 0)
            store_pwrite_full(s->fd, buf, k, off);
        raise(SIGKILL);
    }
    if (store_pwrite_full(s->fd, buf, buf_len, off) < 0) {
        store_err(err, err_len, "%s: write %zu bytes at byte %lld: %s", s->path, buf_len,
                  (long long)off, strerror(errno));
        store_undo_append(s, ti.size, ti.last_id);
        goto unlock;
    }
    if (s->opts.observe != NULL) {
        struct task_store_event ev = {
            .kind = TASK_STORE_EV_WRITE, .offset = off, .length = buf_len, .id = m.id, .task = t};
        store_emit(s, &ev);
    }
    if (s->opts.fsync) {
        int64_t t0 = s->opts.observe != NULL ? store_now_ns() : 0;
        int fr = store_fdatasync(s->fd);
        if (s->opts.observe != NULL) {
            struct task_store_event ev = {.kind = TASK_STORE_EV_FSYNC};
            ev.t_ns = store_now_ns();
            ev.duration_ns = ev.t_ns - t0;
            ev.error = fr < 0 ? errno : 0;
            store_emit(s, &ev);
        }
        if (fr < 0) {
            store_err(err, err_len, "%s: fdatasync: %s", s->path, strerror(errno));
            store_undo_append(s, ti.size, ti.last_id);
            goto unlock;
        }
    }
    s->size_hint = off + (off_t)buf_len;
    rc = 0;
unlock:
    if (rc < 0)
        s->size_hint = 0; /* an undo or a cut may have moved the end: ask fstat() next time */
    store_release(s);
    if (rc < 0)
        return -1;
    *meta = m;
    if (line != NULL) {
        size_t len = p - (m.id > 1 ? 2 : 0) + body_len;
        if (len > line_cap) {
            /* Stored, but the caller's buffer is too small to show it. */
            len = line_cap;
        }
        memcpy(line, buf + (m.id > 1 ? 2 : 0), len);
        if (line_len != NULL)
            *line_len = len;
    }
    return 0;
}

/* ---- snapshot and find ---- */

static const char store_suffix_records[] = "\n]\n";
static const char store_suffix_empty[] = "]\n";

/* FNV-1a over the bytes [from, to) of the file: a line of at most
 * TASK_JSON_RECORD_MAX bytes (the scan buffer holds it). A short read means
 * the file was cut below them; its sum then differs from any snapshot's. */
static int store_line_sum(struct task_store *s, off_t from, off_t to, uint64_t *sum)
{
    size_t len = (size_t)(to - from);
    if (len > sizeof(s->scan)) {
        errno = EOVERFLOW;
        return -1;
    }
    ssize_t got = store_pread_full(s->fd, s->scan, len, from);
    if (got < 0)
        return -1;
    uint64_t h = 14695981039346656037ULL;
    for (ssize_t i = 0; i < got; i++)
        h = (h ^ (unsigned char)s->scan[i]) * 1099511628211ULL;
    *sum = (size_t)got == len ? h : ~h;
    return 0;
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
    int locked = store_timed_lock(s, F_RDLCK, wait_ms) == 0;
    if (!locked && errno != ETIMEDOUT) {
        store_err(err, err_len, "%s: read lock: %s", s->path, store_lock_errmsg(errno));
        return -1;
    }
    int rc = store_read_tail(s, s->fd, s->path, &ti, err, err_len);
    if (locked)
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
    snap->last_sum = 0;
    if (ti.last_id > 0 && store_line_sum(s, ti.line_start, ti.end, &snap->last_sum) < 0) {
        store_err(err, err_len, "%s: read: %s", s->path, strerror(errno));
        return -1;
    }
    return 0;
}

int task_store_snapshot_intact(struct task_store *s, const struct task_store_snapshot *snap)
{
    /* An empty snapshot is "[" from bytes that never change, even by reset. */
    if (snap->num_tasks == 0)
        return 1;
    uint64_t sum;
    if (store_line_sum(s, snap->last_off, snap->prefix_len, &sum) < 0)
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
     * hint this is one pread(). A tail it cannot read (damage, or a repair
     * in flight in another process, which rewrites the closing bytes before
     * it truncates) is asked again through the snapshot, under the lock, so
     * that an error is the store's considered answer. */
    struct store_tail ti;
    if (store_read_tail(s, s->fd, s->path, &ti, err, err_len) == 0) {
        *num = ti.last_id;
        return 0;
    }
    s->size_hint = 0;
    struct task_store_snapshot snap;
    if (task_store_snapshot(s, &snap, err, err_len) < 0)
        return -1;
    *num = snap.num_tasks;
    return 0;
}

/* Finds the first record line that starts after byte from (a '\n' at or
 * after from followed by {"id":N) and before limit. Returns 1 with *start and
 * *id, 0 if none, -1 on a read error. */
static int store_next_record(struct task_store *s, off_t from, off_t limit, off_t *start,
                             uint64_t *id)
{
    char *buf = s->scan;
    off_t pos = from;
    while (pos < limit) {
        size_t n =
            (size_t)(limit - pos) < STORE_TAIL_BLOCK ? (size_t)(limit - pos) : STORE_TAIL_BLOCK;
        if (store_pread_full(s->fd, buf, n, pos) != (ssize_t)n) {
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

int task_store_find(struct task_store *s, const struct task_store_snapshot *snap, uint64_t id,
                    char *line, size_t line_cap, size_t *line_len)
{
    off_t limit = snap->prefix_len;
    off_t lo = 0, hi = limit, start = 0;
    uint64_t v = 0;
    int r;

    if (id == 0 || id > snap->num_tasks)
        return 0; /* ids are exactly 1..num_tasks */
    /* Invariant: the line of id starts in [lo, hi). A probe at mid finds the
     * first record starting after mid; its id says which half to keep. */
    while (hi - lo > STORE_TAIL_BLOCK) {
        off_t mid = lo + (hi - lo) / 2;
        r = store_next_record(s, mid, limit, &start, &v);
        if (r < 0)
            return -1;
        if (r == 1 && v == id)
            goto found;
        if (r == 1 && v < id)
            lo = start + 1;
        else
            hi = mid + 1;
    }
    for (off_t p = lo > 0 ? lo - 1 : 0;; p = start) {
        r = store_next_record(s, p, limit, &start, &v);
        if (r <= 0)
            return r;
        if (v == id)
            goto found;
        if (v > id)
            return 0;
    }
found:;
    size_t want = (size_t)(limit - start) < line_cap ? (size_t)(limit - start) : line_cap;
    ssize_t got = store_pread_full(s->fd, line, want, start);
    if (got < 0)
        return -1;
    char *nl = memchr(line, '\n', (size_t)got);
    size_t len = nl != NULL ? (size_t)(nl - line) : (size_t)got;
    if (nl == NULL && (size_t)got == line_cap && start + (off_t)got < limit) {
        errno = ENOBUFS;
        return -1;
    }
    if (len > 0 && line[len - 1] == ',')
        len--;
    if (line_len != NULL)
        *line_len = len;
    return 1;
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
    /* Truncate first: a crash in between leaves 0 bytes, which every writer
     * and the start-up check treat as an empty list. */
    if (store_ftruncate(s->fd, 0) < 0 || store_pwrite_full(s->fd, "[\n]\n", 4, 0) < 0) {
        store_err(err, err_len, "%s: reset: %s", s->path, strerror(errno));
        goto out;
    }
    if (s->opts.fsync && store_fdatasync(s->fd) < 0) {
        store_err(err, err_len, "%s: fdatasync: %s", s->path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    s->size_hint = rc == 0 ? 4 : 0;
    store_release(s);
    return rc;
}

/* ---- check and repair ---- */

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
            /* A complete line [line_off, line_off + line_len). */
            const char *l = line_buf;
            size_t len = line_len;
            if (state == EXPECT_OPEN) {
                if (len != 1 || l[0] != '[') {
                    *bad_off = line_off;
                    snprintf(reason, reason_cap, "expected \"[\" alone on the first line");
                    return 1;
                }
                state = EXPECT_RECORD_OR_CLOSE;
            } else if (len == 1 && l[0] == ']' && state != EXPECT_RECORD) {
                state = EXPECT_EOF;
            } else if (state == EXPECT_CLOSE) {
                *bad_off = line_off;
                snprintf(reason, reason_cap, "expected \"]\" after the last record");
                return 1;
            } else {
                int comma = len > 0 && l[len - 1] == ',';
                size_t rec_len = len - (size_t)comma;
                size_t end = 0;
                uint64_t id = store_line_id(l, rec_len);
                char jerr[128];
                if (id != n + 1) {
                    *bad_off = line_off;
                    if (id == 0)
                        snprintf(reason, reason_cap, "expected a record {\"id\":%" PRIu64 ",...}",
                                 n + 1);
                    else
                        snprintf(reason, reason_cap, "record id %" PRIu64 ", expected %" PRIu64, id,
                                 n + 1);
                    return 1;
                }
                if (task_json_decode_record(l, rec_len, NULL, &end, jerr, sizeof(jerr)) < 0 ||
                    end != rec_len) {
                    *bad_off = line_off + (off_t)end;
                    snprintf(reason, reason_cap, "record %" PRIu64 ": invalid JSON", n + 1);
                    return 1;
                }
                n++;
                state = comma ? EXPECT_RECORD : EXPECT_CLOSE;
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
static int store_canonicalize(int fd, off_t size, const char *path, int repair,
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
    if (!repair) {
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
    if (store_save_beside(path, "orig", text, (size_t)size, rep->saved_path,
                          sizeof(rep->saved_path)) < 0) {
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
    log_warn("%s: not in the canonical layout: rewrote %ld tasks in place (%" PRIu64
             " of them got a new id), original saved in %s",
             path, w.count, rep->renumbered, rep->saved_path);
    rc = 0;
out:
    free(w.buf);
    free(text);
    return rc;
}

int task_store_check(const char *path, int flags, struct task_store_report *report, char *err,
                     size_t err_len)
{
    struct task_store_report dummy;
    struct task_store_report *rep = report != NULL ? report : &dummy;
    int repair = (flags & TASK_STORE_REPAIR) != 0;
    struct stat st;
    struct task_store *s = NULL;
    int fd = -1, rc = -1, locked = 0;
    char reason[256];
    off_t bad_off = 0;

    memset(rep, 0, sizeof(*rep));
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
        if (fd >= 0)
            rep->created = 1;
        else if (errno != EEXIST)
            break;
    }
    if (fd < 0) {
        if (errno == EACCES)
            store_err(err, err_len, "%s: permission denied", path);
        else
            store_err(err, err_len, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        store_err(err, err_len, "%s: fstat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        store_err(err, err_len, "%s: not a regular file", path);
        goto out;
    }
    s = calloc(1, sizeof(*s)); /* scratch buffers for the tail scan */
    if (s == NULL) {
        errno = ENOMEM;
        store_err(err, err_len, "%s: out of memory", path);
        goto out;
    }
    s->fd = fd;
    s->opts.crash_after_bytes = -1;
    snprintf(s->path, sizeof(s->path), "%s", path);

    /* With repair, a first scan under the read lock: the usual answer is
     * "canonical", and readers (snapshots, other checks) need not wait out an
     * O(n) scan under the write lock for it. Writers still do: an append's
     * write lock waits for the scan (about 0.3 s per million tasks here), so
     * a second server started on a busy file costs running servers that
     * pause once. Only a file that needs work is scanned again, under the
     * write lock, from the start: it may have changed in between. */
    if (repair && store_lock(fd, F_RDLCK, 0) == 0) {
        int canonical = fstat(fd, &st) == 0 && st.st_size > 0 &&
                        store_stream_check(fd, -1, NULL, s->scan, &rep->num_tasks, &bad_off, reason,
                                           sizeof(reason)) == 0;
        store_unlock(fd, path);
        if (canonical) {
            rc = 0;
            goto out;
        }
        rep->num_tasks = 0;
        bad_off = 0;
    }
    if (store_lock(fd, repair ? F_WRLCK : F_RDLCK, 0) < 0) {
        store_err(err, err_len, "%s: lock: %s", path, strerror(errno));
        goto out;
    }
    locked = 1;
    if (fstat(fd, &st) < 0) {
        store_err(err, err_len, "%s: fstat: %s", path, strerror(errno));
        goto out;
    }
    if (st.st_size == 0) {
        rep->created = 1;
        if (!repair) {
            errno = EBADMSG;
            store_err(err, err_len, "%s: byte 0: empty file (repair would write an empty list)",
                      path);
            goto out;
        }
        if (store_pwrite_full(fd, "[\n]\n", 4, 0) < 0) {
            store_err(err, err_len, "%s: write: %s", path, strerror(errno));
            goto out;
        }
        rc = 0;
        goto out;
    }
    int sc = store_stream_check(fd, -1, NULL, s->scan, &rep->num_tasks, &bad_off, reason,
                                sizeof(reason));
    if (sc < 0) {
        store_err(err, err_len, "%s: read: %s", path, strerror(errno));
        goto out;
    }
    if (sc == 0) {
        rc = 0;
        goto out;
    }

    /* Not canonical. A torn tail? Only if the stream check got at least as far
     * as the line of the last complete record (damage before it is damage),
     * and only if the file the cut would leave is canonical: that last record
     * may itself be out of place (a wrong id, after the closing "]"), and a
     * refusal must leave the file untouched, so this is proved before the cut
     * (found by fuzz/fuzz_store_check.c). The dry run reads its lines into the
     * append buffer, unused here: s->scan keeps the tail that the cut saves. */
    struct store_tail ti;
    char terr[512];
    uint64_t cut_num = 0;
    off_t cut_bad = 0;
    int cut_sc = 1;
    if (store_scan_tail(s, fd, st.st_size, &ti, path, terr, sizeof(terr)) == 0 &&
        bad_off >= ti.line_start) {
        cut_sc =
            store_stream_check(fd, ti.last_id > 0 ? ti.end : 0, ti.last_id > 0 ? "\n]\n" : "[\n]\n",
                               s->enc, &cut_num, &cut_bad, terr, sizeof(terr));
        if (cut_sc < 0) {
            store_err(err, err_len, "%s: read: %s", path, strerror(errno));
            goto out;
        }
    }
    if (cut_sc == 0) {
        rep->torn_cut = 1;
        rep->torn_offset = ti.end;
        rep->torn_bytes = ti.size > ti.end ? (size_t)(ti.size - ti.end) : 0;
        rep->num_tasks = cut_num;
        if (!repair) {
            errno = EBADMSG;
            store_err(err, err_len, "%s: byte %lld: torn tail of %zu bytes (repair would cut it)",
                      path, (long long)ti.end, rep->torn_bytes);
            goto out;
        }
        if (store_cut_tail(s, fd, path, &ti, rep->saved_path, sizeof(rep->saved_path), err,
                           err_len) < 0)
            goto out;
        rc = 0;
        goto out;
    }

    /* Another layout of a JSON array? */
    char creason[256];
    off_t cbad = 0;
    if (st.st_size > STORE_CANON_MAX) {
        errno = EBADMSG;
        store_err(err, err_len, "%s: byte %lld: %s (and too large to rewrite: over %ld bytes)",
                  path, (long long)bad_off, reason, STORE_CANON_MAX);
        goto out;
    }
    int cc = store_canonicalize(fd, st.st_size, path, repair, rep, creason, sizeof(creason), &cbad,
                                err, err_len);
    if (cc < 0)
        goto out;
    if (cc == 1) {
        /* Damage. Report where: in our layout, the stream check knows the
         * line; otherwise the JSON parser's position is more telling. */
        errno = EBADMSG;
        if (bad_off > 0)
            store_err(err, err_len, "%s: byte %lld: %s", path, (long long)bad_off, reason);
        else
            store_err(err, err_len, "%s: byte %lld: %s", path, (long long)cbad, creason);
        goto out;
    }
    if (!repair) {
        errno = EBADMSG;
        store_err(err, err_len,
                  "%s: byte %lld: %s (repair would rewrite %" PRIu64
                  " tasks in the canonical layout)",
                  path, (long long)bad_off, reason, rep->num_tasks);
        goto out;
    }
    rc = 0;
out:
    if (locked)
        store_unlock(fd, path);
    free(s);
    if (fd >= 0) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return rc;
}
