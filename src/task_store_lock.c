/* task_store_lock.c - the store's fcntl record locks: what they promise, where they bite, and
 * waiting for them with a deadline. */
#include "task_store_impl.h"

#include "build_config.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/*
 * Locks: what they promise and where they bite
 * ============================================
 *
 * Every process (each worker, each taskctl) appends to the same file. The
 * only coordination is a POSIX record lock on the whole file (bytes 0 to
 * 2^62, every byte a file can have): F_WRLCK for an append, a repair or a
 * reset; F_RDLCK for the short moment a reader needs to find the end of the
 * last complete record. (Record locks lock byte ranges, whether or not the
 * bytes exist; the byte at 2^62 is a second lock, for disk flushes only: see
 * task_store_sync.c. SQLite keeps its lock bytes at 1 GiB the same way.)
 * Invariants the lock protects:
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
 *     Others do rename over it (below), and the store follows.
 *   - F_SETLKW sleeps forever behind a stopped holder (kill -STOP, a debugger,
 *     a race window). For the server that means answering 503 instead, so a
 *     lock can have a deadline; see store_lock() for how, and why SIGALRM.
 *   - The kernel may answer EDEADLK when two processes wait for each other;
 *     with one lock per file and one file per process that cannot happen, but
 *     the error is passed up rather than retried.
 *
 * The file is shared with people
 * -------------------------------
 * Students, editors and scripts change tasks.json while servers run, and none
 * of them takes our lock: `echo "[]" > tasks.json`, an editor that saves by
 * writing a new file and renaming it over the old one, `rm`, `cp backup.json
 * tasks.json`, `json.dump(indent=2)`. "No acknowledged task is ever lost" must
 * hold whatever they do, or the store must refuse loudly. The rules, and
 * where they are enforced (task_store.c unless named):
 *
 *   I4  Identity. A store writes only to the file that is at the path now.
 *       Under the write lock, before an append, it compares stat(path) with
 *       its descriptor (device and inode; store_follow_path()); when the
 *       path names another file it releases the lock, opens that file,
 *       locks it and carries on there ("adopts" it, logged once with both
 *       inodes); when the path is gone it creates an empty list there, as
 *       start-up does. Snapshots and counts follow the path the same way.
 *       An old descriptor that a GET /tareas is still streaming from stays
 *       open until the stream ends (refs), so the stream never reads
 *       another file through a reused descriptor number.
 *   I5  Any JSON array of tasks is a list, at run time too. A tail that is
 *       not what this store writes is examined whole under the write lock
 *       (store_repair_locked(), task_store_repair.c): another layout of a
 *       JSON array ("[]" from echo, an editor's pretty-printing) is rewritten
 *       in place, the original saved beside it when it held tasks; anything
 *       else is damage. Before judging, the store lets an outside writer
 *       finish (store_settle(): the shell truncates, then writes).
 *   I6  Never write behind what cannot be parsed. An append goes only after a
 *       record line that follows "[\n" at byte 0 (id 1) or the ",\n" that ends
 *       the line of the record before it (id - 1), with nothing but the
 *       closing bracket after it (store_follows_record(), task_store_tail.c).
 *       A line appended by hand after the "]", a hole of zeros, bytes this
 *       store did not write: refused, with the file, the byte and what was
 *       found, the file untouched. The torn-tail repair cuts only what a
 *       dying writer of this store can leave (store_junk_plausible()).
 *   I7  A 201 only for bytes that are there. After its pwrite() the append
 *       reads back the record before its own and its own bytes, and checks
 *       the path again (store_verify_append()): an outside writer that
 *       truncated or rewrote the file in between turns the answer into an
 *       error instead of a lost task; a path that moved meanwhile gets the
 *       write undone on the old file and the append redone on the new one.
 *
 * What no check can cover: a writer without the lock that changes the file
 * after the last check of an append (after the read-back, before the 201 is
 * sent) destroys that task with everything else it overwrote; a reset by
 * hand *is* that, and ought to be `taskctl reset`. Between stat(path) and the
 * write a rename can still slip in: the read-back's second stat() catches it
 * for the writer, but a file renamed away (to a backup name) may keep, for a
 * moment, a record that was then undone. flock(1) does not help: on Linux
 * flock() and fcntl() locks do not see each other; `taskctl` takes ours.
 *
 * Why classic POSIX locks, and why SIGALRM
 * ----------------------------------------
 * Linux also has open file description locks (F_OFD_SETLKW, since 3.15):
 * owned by the open file, not the process, so closing another descriptor
 * drops nothing and the registry above would go. We keep the classic ones on
 * purpose. They are what taskctl, flock-less scripts in other languages
 * (Python's fcntl.lockf) and other servers on the same file take; OFD and
 * classic locks do conflict with each other, but a reader of this code should
 * meet the trap where it lives, and the lesson of this project is the lock
 * every tool shares. Neither kind has a timeout. Polling F_SETLK in a loop
 * with sleeps would give one, but it is unfair (a waiter that sleeps loses
 * its turn to whoever calls at the right moment, so a busy file can starve
 * it) and it burns CPU or adds latency; F_SETLKW queues fairly in the kernel,
 * and a repeating SIGALRM without SA_RESTART interrupts it at the deadline
 * (store_lock_wait()). A server with threads would need a per-thread timer;
 * a worker here is one thread.
 *
 * With -Dlocking=false the lock and unlock calls are compiled out and nothing
 * else changes: the same reads and writes then race, and the race window makes
 * lost tasks appear on demand. That build exists to show why all this matters.
 */

#define STORE_LOCK_TICK_MS 25 /* SIGALRM period while waiting with a deadline */

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t store_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void store_emit(const struct task_store *s, struct task_store_event *ev)
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
 * cost of a few spurious wake-ups. The handler stays installed once set (two
 * system calls fewer per contended wait); the timer is restored afterwards.
 * The process must leave SIGALRM to the store (task_store.h says so). */
static int store_lock_wait(int fd, struct flock *fl, unsigned timeout_ms)
{
    static int handler_installed; /* once per process (a fork child inherits it) */
    struct itimerval tick, old_timer;
    int rc = -1, saved;
    int64_t deadline = store_now_ms() + timeout_ms;

    if (!handler_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = store_on_alarm;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0; /* no SA_RESTART: the point is to get EINTR */
        if (sigaction(SIGALRM, &sa, NULL) < 0)
            return -1;
        handler_installed = 1;
    }
    memset(&tick, 0, sizeof(tick));
    tick.it_interval.tv_usec = STORE_LOCK_TICK_MS * 1000;
    tick.it_value = tick.it_interval;
    if (setitimer(ITIMER_REAL, &tick, &old_timer) < 0)
        return -1;
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
    errno = saved;
    return rc;
}
#endif

/* Takes a lock of type (F_RDLCK or F_WRLCK) on len bytes from start. The
 * uncontended case costs exactly one fcntl(F_SETLK). timeout_ms 0 waits as
 * long as it takes. Returns 0, or -1 with errno (ETIMEDOUT after the deadline). */
static int store_lock_range(int fd, short type, off_t start, off_t len, unsigned timeout_ms)
{
#if TASKSERVER_LOCKING
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
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
    (void)start;
    (void)len;
    (void)timeout_ms;
    return 0;
#endif
}

static void store_unlock_range(int fd, const char *path, off_t start, off_t len)
{
#if TASKSERVER_LOCKING
    struct flock fl;
    int saved = errno;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    /* Unlocking a lock we hold cannot fail on a valid descriptor; if it did,
     * the close at task_store_close() releases it anyway. */
    if (fcntl(fd, F_SETLK, &fl) < 0)
        log_error("%s: unlock: %s", path, strerror(errno));
    errno = saved;
#else
    (void)fd;
    (void)path;
    (void)start;
    (void)len;
#endif
}

/* The data lock: bytes [0, TASK_STORE_SYNC_BYTE), every byte any file
 * system lets a file have, so "the whole file, however it grows"; the one
 * byte past it is the sync lock (task_store_sync.c), which the data lock must
 * not cover or a reader would wait for a disk flush. */
int store_lock(int fd, short type, unsigned timeout_ms)
{
    return store_lock_range(fd, type, 0, TASK_STORE_SYNC_BYTE, timeout_ms);
}

void store_unlock(int fd, const char *path)
{
    store_unlock_range(fd, path, 0, TASK_STORE_SYNC_BYTE);
}

int store_sync_lock(int fd, unsigned timeout_ms)
{
    return store_lock_range(fd, F_WRLCK, TASK_STORE_SYNC_BYTE, 1, timeout_ms);
}

void store_sync_unlock(int fd, const char *path)
{
    store_unlock_range(fd, path, TASK_STORE_SYNC_BYTE, 1);
}

int store_lock_saying(int fd, short type, const char *path)
{
#if TASKSERVER_LOCKING
    struct flock who;
    memset(&who, 0, sizeof(who));
    who.l_type = type;
    who.l_whence = SEEK_SET;
    who.l_len = TASK_STORE_SYNC_BYTE;
    if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK)
        log_info("waiting for the %s lock on %s (process %ld holds the %s lock)",
                 type == F_WRLCK ? "write" : "read", path, (long)who.l_pid,
                 who.l_type == F_WRLCK ? "write" : "read");
#else
    (void)path;
#endif
    return store_lock(fd, type, 0);
}

const char *store_lock_errmsg(int e)
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
        return store_lock(s->cur.fd, type, 0);
    int64_t now = store_now_ms();
    int busy = now < s->write_busy_until_ms || (type == F_RDLCK && now < s->read_busy_until_ms);
    unsigned wait_ms = busy && timeout_ms > STORE_LOCK_TICK_MS ? STORE_LOCK_TICK_MS : timeout_ms;
    if (store_lock(s->cur.fd, type, wait_ms) == 0) {
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
int store_timed_lock(struct task_store *s, short type, unsigned timeout_ms)
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
void store_release(struct task_store *s)
{
#if TASKSERVER_LOCKING
    /* The time before the unlock: a picture of the holds (taskctl timeline)
     * must never show one ending after the next one began. */
    int64_t t = s->opts.observe != NULL ? store_now_ns() : 0;
    store_unlock(s->cur.fd, s->path);
    if (s->opts.observe != NULL) {
        int saved = errno;
        struct task_store_event ev = {.kind = TASK_STORE_EV_UNLOCK, .lock_type = s->locked_type};
        ev.t_ns = t;
        ev.duration_ns = t - s->locked_at_ns;
        store_emit(s, &ev);
        errno = saved;
    }
#else
    store_unlock(s->cur.fd, s->path);
#endif
}
