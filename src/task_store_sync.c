/* task_store_sync.c - making appends durable (--fsync) with one fdatasync for many: group commit
 * across the workers of a server, through a page they share. */
#include "task_store_impl.h"

#include "log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Durability, and why it is shared
 * ================================
 *
 * With --fsync a 201 means "on disk": fdatasync() returned after the bytes of
 * the task were written. Done inside the write lock, every append pays a whole
 * disk flush (milliseconds) while every other writer waits: a few thousand
 * tasks a second at best. But one fdatasync() makes durable every write to the
 * file that completed before it was called, whoever wrote it. So (the group
 * commit of databases, and of Redis's appendfsync):
 *
 *   - the append writes under the lock and releases it; the sync comes after,
 *     while other writers already append;
 *   - the workers share a word "the file of epoch E is durable up to byte N"
 *     (struct task_store_shared, in a MAP_SHARED page the master maps before
 *     fork). Before syncing, an append whose bytes end at or before N, in the
 *     same epoch, has nothing to do: another worker's sync covered it. After
 *     syncing, a worker raises N to the file size it saw before its sync call;
 *   - within a worker, every POST of one event-loop turn is one append (a
 *     batch), so one sync answers them all;
 *   - one sync runs at a time, under the sync lock: a write lock on the one
 *     byte at 2^62, past the data lock's range (task_store_lock.c), so it
 *     holds up neither appends nor readers. Two overlapping flushes of one
 *     file each take longer, and neither knows the other covers it; in a
 *     queue, the next syncer's fstat() takes in every batch written while
 *     the one before it flushed, and the writers of those batches, when
 *     their turn comes, find the word past their bytes and skip theirs.
 *
 * Epochs. "Durable up to N" is only true of bytes that have not changed since.
 * Appends only add bytes past the end, but a reset, a repair, an undone append,
 * a replaced file or a program writing without the lock change or cut bytes
 * before N. So the shared state also records, for the epoch, the file (inode)
 * and its size after the last commit. Under the write lock a commit compares
 * them with the file it found; any difference (someone else changed it, or a
 * cut or rewrite of our own) starts a new epoch, and durable words of older
 * epochs no longer spare anyone a sync. Our own shrinking writes (undo, reset)
 * start one too.
 *
 * A failed fdatasync is final. On Linux a failed writeback marks the pages
 * clean and reports the error once per open file description: calling
 * fdatasync() again returns success with the data lost (PostgreSQL learned
 * this in 2018, "fsyncgate"). So nothing is retried: the batch whose sync
 * failed gets an error, the failure is recorded in the shared page, and every
 * later commit of every worker is refused, loudly, until the server is
 * restarted by someone who has looked at the disk. A worker whose own sync
 * succeeded while another's failed does not trust its success either.
 *
 * Without a shared page (taskctl, tests) the store keeps the same state for
 * itself: correct, only sparing fewer syncs.
 */

#define STORE_END_BITS 40
#define STORE_END_MASK ((UINT64_C(1) << STORE_END_BITS) - 1)
#define STORE_EPOCH_MASK ((UINT64_C(1) << (64 - STORE_END_BITS)) - 1)

/* The background body check's verdict (task_store_check_body()). */
enum { STORE_BODY_NONE, STORE_BODY_RUNNING, STORE_BODY_OK, STORE_BODY_DAMAGED };

struct task_store_shared {
    _Atomic uint64_t state;   /* epoch << 40 | the file's size after the last commit */
    _Atomic uint64_t ino;     /* the file (inode) of that epoch */
    _Atomic uint64_t durable; /* epoch << 40 | bytes [0, N) of that epoch are on disk */
    _Atomic int failed;       /* an fdatasync failed: its errno; commits refused */
    _Atomic int body;         /* STORE_BODY_*, of the file body_ino */
    _Atomic uint64_t body_ino;
    char body_msg[256]; /* DAMAGED: where; written before body is set */
};

size_t task_store_shared_size(void)
{
    return sizeof(struct task_store_shared);
}

void task_store_shared_init(struct task_store_shared *sh)
{
    atomic_init(&sh->state, 0);
    atomic_init(&sh->ino, 0);
    atomic_init(&sh->durable, 0);
    atomic_init(&sh->failed, 0);
    atomic_init(&sh->body, STORE_BODY_NONE);
    atomic_init(&sh->body_ino, 0);
    sh->body_msg[0] = '\0';
}

void task_store_body_pending(struct task_store_shared *sh, const char *path)
{
    struct stat st;
    atomic_store_explicit(&sh->body_ino, stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0,
                          memory_order_relaxed);
    atomic_store_explicit(&sh->body, STORE_BODY_RUNNING, memory_order_release);
}

void store_body_verdict(struct task_store_shared *sh, ino_t ino, int ok, const char *msg)
{
    if (sh == NULL)
        return;
    if (!ok)
        snprintf(sh->body_msg, sizeof(sh->body_msg), "%s", msg != NULL ? msg : "damaged");
    atomic_store_explicit(&sh->body_ino, (uint64_t)ino, memory_order_relaxed);
    atomic_store_explicit(&sh->body, ok ? STORE_BODY_OK : STORE_BODY_DAMAGED, memory_order_release);
}

int task_store_body_state(struct task_store *s, char *msg, size_t msg_len)
{
    struct task_store_shared *sh = s->opts.shared;
    if (sh == NULL)
        return 1;
    int b = atomic_load_explicit(&sh->body, memory_order_acquire);
    uint64_t ino = atomic_load_explicit(&sh->body_ino, memory_order_relaxed);
    /* A verdict on another file is no verdict on this one (replaced since:
     * its body was checked when it was adopted). While running, the inode
     * may not be known yet: wait all the same. */
    if (b == STORE_BODY_NONE || b == STORE_BODY_OK || (ino != 0 && ino != (uint64_t)s->cur.ino))
        return 1;
    if (b == STORE_BODY_RUNNING)
        return 0;
    store_err(msg, msg_len, "%s", sh->body_msg);
    return -1;
}

struct task_store_shared *store_shared(struct task_store *s)
{
    if (s->opts.shared != NULL)
        return s->opts.shared;
    if (s->own_shared == NULL) {
        s->own_shared = malloc(sizeof(*s->own_shared));
        if (s->own_shared != NULL)
            task_store_shared_init(s->own_shared);
    }
    return s->own_shared;
}

static uint64_t store_pack(uint64_t epoch, off_t end)
{
    return (epoch & STORE_EPOCH_MASK) << STORE_END_BITS | ((uint64_t)end & STORE_END_MASK);
}

int store_sync_refused(struct task_store *s, char *err, size_t err_len)
{
    struct task_store_shared *sh = store_shared(s);
    int e = sh != NULL ? atomic_load_explicit(&sh->failed, memory_order_relaxed) : 0;
    if (e == 0)
        return 0;
    store_err(err, err_len,
              "%s: an earlier fdatasync failed (%s): the disk may have lost acknowledged "
              "writes; no task is stored until the server is restarted",
              s->path, strerror(e));
    errno = EIO;
    return -1;
}

uint64_t store_sync_epoch(struct task_store *s, off_t size)
{
    struct task_store_shared *sh = store_shared(s);
    if (sh == NULL)
        return 0;
    uint64_t st = atomic_load_explicit(&sh->state, memory_order_relaxed);
    uint64_t epoch = st >> STORE_END_BITS;
    if ((off_t)(st & STORE_END_MASK) != size ||
        atomic_load_explicit(&sh->ino, memory_order_relaxed) != (uint64_t)s->cur.ino)
        epoch = (epoch + 1) & STORE_EPOCH_MASK; /* changed since our last commit */
    return epoch;
}

off_t store_sync_last_end(struct task_store *s)
{
    struct task_store_shared *sh = store_shared(s);
    if (sh == NULL || atomic_load_explicit(&sh->ino, memory_order_relaxed) != (uint64_t)s->cur.ino)
        return -1;
    uint64_t end = atomic_load_explicit(&sh->state, memory_order_relaxed) & STORE_END_MASK;
    return end == STORE_END_MASK ? -1 : (off_t)end;
}

void store_sync_committed(struct task_store *s, uint64_t epoch, off_t end)
{
    struct task_store_shared *sh = store_shared(s);
    if (sh == NULL)
        return;
    atomic_store_explicit(&sh->ino, (uint64_t)s->cur.ino, memory_order_relaxed);
    atomic_store_explicit(&sh->state, store_pack(epoch, end), memory_order_relaxed);
}

void store_sync_shrunk(struct task_store *s)
{
    struct task_store_shared *sh = store_shared(s);
    if (sh == NULL)
        return;
    uint64_t st = atomic_load_explicit(&sh->state, memory_order_relaxed);
    /* An impossible size: the next commit starts a new epoch whatever it finds. */
    atomic_store_explicit(&sh->state, store_pack((st >> STORE_END_BITS) + 1, STORE_END_MASK),
                          memory_order_relaxed);
}

/* Whether the durable word already covers [0, end) of the epoch. */
static int store_sync_covered(struct task_store_shared *sh, uint64_t epoch, off_t end)
{
    if (sh == NULL)
        return 0;
    uint64_t d = atomic_load_explicit(&sh->durable, memory_order_acquire);
    return d >> STORE_END_BITS == (epoch & STORE_EPOCH_MASK) &&
           (d & STORE_END_MASK) >= (uint64_t)end;
}

int store_sync(struct task_store *s, uint64_t epoch, off_t end, char *err, size_t err_len)
{
    struct task_store_shared *sh = store_shared(s);
    if (store_sync_covered(sh, epoch, end))
        return store_sync_refused(s, err, err_len); /* covered by another sync */
    /* One sync at a time: the sync lock. A worker that waited for it finds
     * its bytes covered when the sync before it started after they were
     * written, and so never flushes them a second time. A holder that does
     * not let go in time (stopped) costs a sync of our own, nothing more. */
    int locked = store_sync_lock(s->cur.fd, s->opts.lock_timeout_ms) == 0;
    if (locked && store_sync_covered(sh, epoch, end)) {
        store_sync_unlock(s->cur.fd, s->path);
        return store_sync_refused(s, err, err_len);
    }
    /* The size before the call: every byte below it was written before, so
     * the sync covers it, whoever wrote it. */
    struct stat st;
    off_t covered = fstat(s->cur.fd, &st) == 0 && st.st_size > end ? st.st_size : end;
    int64_t t0 = s->opts.observe != NULL ? store_now_ns() : 0;
    int rc = store_fdatasync(s->cur.fd);
    int e = errno;
    if (s->opts.observe != NULL) {
        struct task_store_event ev = {.kind = TASK_STORE_EV_FSYNC};
        ev.t_ns = store_now_ns();
        ev.duration_ns = ev.t_ns - t0;
        ev.error = rc < 0 ? e : 0;
        store_emit(s, &ev);
    }
    if (rc < 0) {
        /* Recorded before the sync lock goes, so no waiter trusts the word. */
        if (sh != NULL)
            atomic_store_explicit(&sh->failed, e != 0 ? e : EIO, memory_order_relaxed);
        if (locked)
            store_sync_unlock(s->cur.fd, s->path);
        log_error("%s: fdatasync: %s: no task is stored from now on, until the server is "
                  "restarted (a failed sync cannot be retried: the kernel may have dropped "
                  "the data)",
                  s->path, strerror(e));
        store_err(err, err_len, "%s: fdatasync: %s", s->path, strerror(e));
        errno = EIO;
        return -1;
    }
    if (sh != NULL) {
        uint64_t want = store_pack(epoch, covered);
        uint64_t d = atomic_load_explicit(&sh->durable, memory_order_relaxed);
        /* Raise it, never lower it within the epoch; another epoch's word is
         * replaced (an older one is stale; replacing a newer one only costs
         * its writers a sync). */
        while ((d >> STORE_END_BITS != want >> STORE_END_BITS ||
                (d & STORE_END_MASK) < (uint64_t)covered) &&
               !atomic_compare_exchange_weak_explicit(&sh->durable, &d, want, memory_order_release,
                                                      memory_order_relaxed)) {
        }
    }
    if (locked)
        store_sync_unlock(s->cur.fd, s->path);
    return store_sync_refused(s, err, err_len);
}
