/* task_store_impl.h - what the task_store_*.c files share; nothing outside the store includes it.
 *
 * The store is several files, one per concern, behind the one public face task_store.h:
 *
 *   task_store_lock.c    the lock essay (invariants I1-I7), fcntl locks with deadlines, the
 *                        observer
 *   task_store_tail.c    reading the end of the file: the fast path, the scan, torn tails
 *   task_store_repair.c  checking the whole file, canonicalizing, task_store_check()
 *   task_store_path.c    the file at the path: following it (I4), judging outside changes
 *   task_store_sync.c    durability: group commit of --fsync through a shared page
 *   task_store_read.c    snapshots, the count, one task by its id
 *   task_store_io.c      system calls with EINTR retried, copies saved beside the file
 *   task_store.c         open and close, appends in batches, reset
 *
 * Functions here follow the store's error rule: 0 (or a count) on success, -1 with
 * errno and, where there is an err buffer, a message naming the file.
 */
#ifndef TASKSERVER_TASK_STORE_IMPL_H
#define TASKSERVER_TASK_STORE_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "task_json.h"
#include "task_store.h"

#define STORE_TAIL_BLOCK 4096                      /* the fast path reads this much */
#define STORE_JUNK_MAX (TASK_JSON_RECORD_MAX + 16) /* a torn tail is at most this */
/* The window of a slow tail scan: torn bytes, the last record and the one before it. */
#define STORE_SCAN_MAX (STORE_JUNK_MAX + 2 * (TASK_JSON_RECORD_MAX + 2) + 64)
#define STORE_CANON_MAX (64L * 1024 * 1024) /* larger files in another layout are refused */

/* Scratch memory for reading and checking the file: owned by a store, or allocated
 * for one task_store_check(). */
struct store_scratch {
    char scan[STORE_SCAN_MAX + 1];       /* tail reads and repair scans */
    char line[TASK_JSON_RECORD_MAX + 8]; /* one line of a streaming check */
    struct task_record rec;              /* scratch for record decoding */
};

/* What the end of the file says. */
struct store_tail {
    off_t size;       /* file size when read */
    off_t end;        /* just past the '}' of the last complete record; 2 if none */
    uint64_t last_id; /* its id; 0 if none */
    off_t line_start; /* where the line of that record starts; 2 if none */
    int torn;         /* bytes [end, size) are the remains of a dying writer */
    const char *line; /* the bytes [line_start, end) in memory (in the scratch's scan buffer),
                         valid until the next read into it; NULL if no record */
};

/* ---- task_store.c: I/O helpers (EINTR retried) and small tools ---- */

void store_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ssize_t store_pread_full(int fd, char *buf, size_t n, off_t off);
int store_pwrite_full(int fd, const char *buf, size_t n, off_t off);
int store_fdatasync(int fd);
int store_ftruncate(int fd, off_t len);
void store_sleep_us(unsigned us);

/* fsync()s the directory that holds path, so that a file created (or a copy
 * saved) there survives a crash. Returns 0 or -1 with errno. */
int store_fsync_dir(const char *path);

/* Writes bytes to "<path>.<kind>-<UTC timestamp>[-N]", created exclusively and
 * fsync()ed (and its directory too when sync_dir). The name goes to saved. */
int store_save_beside(const char *path, const char *kind, const char *data, size_t len,
                      int sync_dir, char *saved, size_t saved_cap);

/* Whether this process has a store open on that inode (see "Closing ANY
 * descriptor" in task_store_lock.c). */
int store_registered(dev_t dev, ino_t ino);

/* ---- task_store_lock.c ---- */

int64_t store_now_ms(void);
int64_t store_now_ns(void);

/* Whole-file lock of type F_RDLCK or F_WRLCK on fd; timeout_ms 0 waits as long
 * as it takes. Compiled out (always 0) in the unlocked build. ETIMEDOUT after
 * the deadline. */
int store_lock(int fd, short type, unsigned timeout_ms);
void store_unlock(int fd, const char *path);
/* store_lock() with no deadline, logging once who holds it when it must wait. */
int store_lock_saying(int fd, short type, const char *path);
/* The sync lock (the byte TASK_STORE_SYNC_BYTE), held around one fdatasync. */
int store_sync_lock(int fd, unsigned timeout_ms);
void store_sync_unlock(int fd, const char *path);
const char *store_lock_errmsg(int e);

/* The same for a store: its deadline policy (busy times after a timeout), and
 * the observer told of the wait, the grant or the timeout, and the hold. */
int store_timed_lock(struct task_store *s, short type, unsigned timeout_ms);
void store_release(struct task_store *s);

/* Tells the observer, if any; ev->t_ns is filled in unless set. */
void store_emit(const struct task_store *s, struct task_store_event *ev);

/* ---- task_store_tail.c ---- */

/* Reads the tail of fd (size from fstat(), or from *size_hint's window when
 * size_hint is not NULL; the hint is updated). Returns 0 with ti (ti->torn: a
 * dying writer's remains follow the last record, to be cut), or -1 with errno:
 * EBADMSG when the end of the file is not what this store leaves there (another
 * layout, or damage: only a check of the whole file tells which), EIO and
 * others on read errors. err names the file and the byte. */
int store_read_tail(int fd, const char *path, struct store_scratch *sc, off_t *size_hint,
                    struct store_tail *ti, char *err, size_t err_len);

/* Cuts the torn tail found by store_read_tail(), under the write lock: saves
 * the cut bytes beside the file, writes the closing bracket after the last
 * complete record, truncates. Still uses the bytes of the read in sc->scan. */
int store_cut_tail(int fd, const char *path, struct store_scratch *sc, struct store_tail *ti,
                   int quiet, int sync_dir, char *saved, size_t saved_cap, char *err,
                   size_t err_len);

/* ---- task_store_repair.c ---- */

/* The whole-file check and repair, with the lock already held (F_WRLCK to
 * repair, F_RDLCK at least to only report): an empty file becomes "[\n]\n", a
 * torn tail is cut, another layout of a JSON array is rewritten in place;
 * anything else is refused, the file untouched. Returns 0 when the file is
 * (now) canonical, -1 with errno (EBADMSG for damage) and err. */
int store_repair_locked(int fd, const char *path, struct store_scratch *sc, int flags,
                        struct task_store_report *rep, char *err, size_t err_len);

/* ---- task_store_sync.c: durability, group commit ---- */

/* The shared page, or the store's own state when it has none (NULL: ENOMEM). */
struct task_store_shared *store_shared(struct task_store *s);
/* -1 (errno EIO, err) once any sync of this server failed: nothing more is stored. */
int store_sync_refused(struct task_store *s, char *err, size_t err_len);
/* Under the write lock, before a commit to a file of size size: its epoch. */
uint64_t store_sync_epoch(struct task_store *s, off_t size);
/* The size our last commit left the file at, or -1 when unknown (another file,
 * our own cut or reset since): a smaller file was truncated by someone else. */
off_t store_sync_last_end(struct task_store *s);
/* Under the write lock, after a commit that left the file at end. */
void store_sync_committed(struct task_store *s, uint64_t epoch, off_t end);
/* Under the write lock, after our own write that cut or changed earlier bytes. */
void store_sync_shrunk(struct task_store *s);
/* After the lock: bytes [0, end) of epoch on disk, by our fdatasync or another's.
 * Returns 0, or -1 (errno EIO, err): the sync failed, now or in another worker. */
int store_sync(struct task_store *s, uint64_t epoch, off_t end, char *err, size_t err_len);

/* The body check's verdict on the file ino, for every worker (sh may be NULL). */
void store_body_verdict(struct task_store_shared *sh, ino_t ino, int ok, const char *msg);

/* ---- task_store_path.c: the file at the path, and outside changes ---- */

#define STORE_FOLLOW_MAX 4 /* path changes followed in one call, then EAGAIN */

/* 1 when the path names s->cur, 0 when it names another file (*st) or none
 * (*gone), -1 when it cannot be looked at (errno). */
int store_same_file(const struct task_store *s, struct stat *st, int *gone);
/* Closes the descriptor of a replaced file kept for store_keep_replaced, if any. */
void store_drop_replaced(struct task_store *s);
/* Invariant I4: with a lock of type held (F_UNLCK: none) on s->cur, makes
 * sure s->cur is the file at the path, moving to it (and the lock with it)
 * when it is not. Returns 0 with the lock held on s->cur, or -1 with errno and
 * err and no lock held. */
int store_follow_path(struct task_store *s, short held, unsigned timeout_ms, char *err,
                      size_t err_len);
/* Waits (bounded) until fd's file has not been modified for a moment: an
 * outside writer that truncates and rewrites takes no lock. */
void store_settle(int fd);
/* With the write lock held: the tail, with a file someone else changed
 * examined whole first (I5, I6) and a torn tail cut. Returns 0 or -1. */
int store_tail_for_write(struct task_store *s, struct store_tail *ti, char *err, size_t err_len);

/* ---- the store itself (task_store.c) ---- */

#define STORE_RETIRED_MAX 16 /* earlier files still read by streams */

/* One open descriptor on one inode. */
struct store_file {
    int fd; /* -1: none */
    dev_t dev;
    ino_t ino;
    unsigned refs; /* snapshots that stream from it (task_store_snapshot_release) */
};

/* The last file found damaged, so that repeated calls on an unchanged damaged file
 * answer at once instead of checking it whole again. */
struct store_damage {
    int known;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    int error;
    char msg[512];
};

/* A staged record: its body in stage, and once committed its line in wbuf. */
struct store_record {
    size_t body_off, body_len; /* the bytes after {"id":0 */
    int64_t creada;
    size_t line_off, line_len; /* committed: the record's line (no ",\n", no newline) */
};

struct store_hint;

struct task_store {
    struct store_file cur;                        /* the file at the path, as far as we know */
    struct store_file retired[STORE_RETIRED_MAX]; /* earlier ones, kept for their streams */
    unsigned num_retired;
    int writable;
    pid_t owner; /* the process that opened it (see the registry); also each record's "pid" */
    char host[TASK_HOST_MAX + 1]; /* the host name at open, each record's "host" ("": none) */
    struct task_store_options opts;
    char path[4096];
    /* Staged records (task_store_stage), committed together: their encoded
     * bodies (after {"id":0) in stage, then at commit the bytes to write in
     * wbuf and the read-back in vbuf. */
    struct store_record *recs;
    size_t num_staged, recs_cap;
    size_t committed; /* records of the last commit (task_store_line) */
    char *stage;
    size_t stage_len, stage_cap;
    char *wbuf;
    size_t wbuf_cap;
    char *vbuf;
    size_t vbuf_cap;
    struct store_scratch sc;
    struct store_hint *hints; /* where lookups found lines (task_store_read.c), or NULL */
    struct store_damage damage;
    off_t size_hint; /* file size after our last tail read or write, 0 unknown: a guess only */
    int64_t write_busy_until_ms; /* a write lock wait ran out: see store_timed_lock() */
    int64_t read_busy_until_ms;  /* the same for a read lock */
    int64_t locked_at_ns;        /* when the lock now held was granted (observer only) */
    int64_t count_followed_ms;   /* task_store_count() last looked at the path */
    int check_whole;             /* a file adopted: check it whole before trusting its tail */
    /* The file the path named before it was replaced (store_switch), held open
     * until the new one has been checked whole: when the new one holds fewer
     * tasks, the old one is copied beside the path (store_keep_replaced), so
     * that a stale save (an editor's buffer read before tasks were added)
     * loses nothing. fd -1: none. */
    struct {
        int fd;
        uint64_t num_tasks;
    } replaced;                           /* closed by store_drop_replaced() */
    struct task_store_shared *own_shared; /* without opts.shared (store_shared()) */
    uint64_t commit_epoch;                /* the last commit: its epoch and end, for store_sync() */
    off_t commit_end;
    short locked_type; /* its type */
};

/* ---- task_store.c ---- */

/* FNV-1a: a snapshot's last line, compared with the file's later on. */
uint64_t store_sum(const char *p, size_t n);
/* Opens path read-write (read-only when that is all it allows) as a regular
 * file into f. Returns 0, or -1 with errno and err. */
int store_open_file(const char *path, struct store_file *f, int *writable, char *err,
                    size_t err_len);
/* Moves this process's registry entry for (dev, ino) to (new_dev, new_ino);
 * with new_ino 0, removes it. */
void store_reregister(dev_t dev, ino_t ino, pid_t pid, dev_t new_dev, ino_t new_ino);

#endif
