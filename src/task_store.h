/* task_store.h - the only code that touches tasks.json.
 *
 * Calling sequence:
 *
 *   Start-up (master or taskctl, before any worker exists):
 *       struct task_store_report rep;
 *       if (task_store_check(path, TASK_STORE_REPAIR, &rep, err, sizeof(err)) < 0)
 *           refuse to start, print err;             (the file was not modified)
 *
 *   Each process that reads or writes (a worker after fork(), taskctl):
 *       struct task_store *s = task_store_open(path, &opts, err, sizeof(err));
 *       task_store_append(s, &task, &meta, line, sizeof(line), &line_len, err, ...);
 *       task_store_snapshot(s, &snap, err, ...);   then stream snap.fd to a client,
 *           lock-free; task_store_find(s, &snap, id, ...) looks one up in it;
 *       task_store_snapshot_release(s, &snap);     when the stream is done
 *       task_store_close(s);
 *
 * The file at the path is the list: a store follows it when people or tools
 * replace, remove or rewrite it while it is open (it adopts a new file, makes
 * a new empty list where the file was removed, rewrites another layout of a
 * JSON array in place), and refuses, with the file untouched and an error
 * naming the byte, to write behind anything it cannot parse. See "The file is
 * shared with people" in task_store_lock.c.
 *
 * The file: a JSON array, one record per line, ids 1, 2, 3, ... in file order:
 *
 *       [\n
 *       {"id":1,...},\n
 *       {"id":2,...}\n
 *       ]\n
 *
 * An empty list is "[\n]\n". The file is a valid JSON array whenever no append
 * is in progress. The bytes up to the end of the last complete record never
 * change once written (except by reset and start-up canonicalization): that is
 * what lets a reader send a snapshot without holding a lock (and check with
 * task_store_snapshot_intact() that no reset came in between).
 *
 * Ownership: a struct task_store owns one descriptor on the file at the path
 * (and keeps a replaced file's descriptor open while snapshots of it are not
 * released). A process may have at most one store open on a given file at a time:
 * task_store_open() refuses a second one with EBUSY, because closing any
 * descriptor on a file drops every fcntl lock the process holds on it; for
 * the same reason task_store_check() refuses (EBUSY) a file this process has
 * open as a store: run the check first, or from another process. A child of
 * fork() may open its own store on a file its parent had open (it inherits no
 * locks); it must not use or close the inherited one (among other things,
 * its appends would record the parent's pid, cached at open). Locks are
 * held only inside a call, never between calls.
 *
 * Signals: while waiting for a lock with opts.lock_timeout_ms > 0, the store
 * arms a repeating ITIMER_REAL (every 25 ms) and restores the previous timer
 * before it returns; the first such wait installs the store's SIGALRM handler
 * for good. A process that waits with a deadline must leave SIGALRM and
 * ITIMER_REAL to the store (taskserver's workers do; the master never waits).
 *
 * Errors: functions return 0 (or a count) on success and -1 on failure, with
 * errno set and a one-line message naming the file (and offset, for damage)
 * in the caller's err buffer where there is one. Notable errno values:
 *   ETIMEDOUT  the lock was not granted within opts.lock_timeout_ms (HTTP 503)
 *   ENOSPC, EDQUOT  the disk is full (HTTP 507); the file is left valid
 *   EBADMSG    the file is damaged in a way that needs taskctl repair or a human
 *   ESTALE     another program changed the file while a task was written: that
 *              task is not acknowledged
 *   ENOENT, EACCES, EISDIR, ...  the file at the path cannot be opened or created
 */
#ifndef TASKSERVER_TASK_STORE_H
#define TASKSERVER_TASK_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "task_json.h"

struct task_store;

/* The lock bytes (task_store_lock.c): the data lock covers [0, this), every
 * byte a file can have; this one byte is the sync lock of group commit. A
 * program that reads or writes tasks.json with its own code locks the data
 * range (a whole-file lock, l_len 0, works too: it only also waits for a
 * disk flush in progress). */
#define TASK_STORE_SYNC_BYTE ((off_t)1 << 62)

/* What a store reports to its observer (tracing, metrics), from inside its
 * calls and possibly under the file lock: an observer must be quick, must not
 * block, and must not call the store or touch tasks.json. Times are
 * CLOCK_MONOTONIC nanoseconds. The unlocked build reports no lock events. */
enum task_store_event_kind {
    TASK_STORE_EV_LOCK_WAIT,    /* a lock is asked for (lock_type) */
    TASK_STORE_EV_LOCK_GRANTED, /* lock_type; duration_ns: the wait */
    TASK_STORE_EV_LOCK_TIMEOUT, /* lock_type; duration_ns: the wait that ran out */
    TASK_STORE_EV_UNLOCK,       /* lock_type; duration_ns: how long it was held */
    TASK_STORE_EV_TAIL_READ,    /* an append read the tail: offset = where the next record
                                   goes, id = the last id seen (0: empty list) */
    TASK_STORE_EV_WRITE,        /* a record written (one event per record, even when one
                                   pwrite() carries several): offset and length of its
                                   bytes, id, line (the record as stored, no newline) */
    TASK_STORE_EV_FSYNC,        /* an fdatasync; duration_ns; failed when error != 0 */
    TASK_STORE_EV_OUTSIDE,      /* the file was changed by someone else: what says how
                                   ("replaced", "removed", "rewritten", "damaged", ...);
                                   error != 0 when the store refused it rather than adopt */
};

struct task_store_event {
    enum task_store_event_kind kind;
    int64_t t_ns;     /* when it happened */
    short lock_type;  /* F_RDLCK or F_WRLCK (lock events) */
    off_t offset;     /* TAIL_READ, WRITE */
    size_t length;    /* WRITE */
    uint64_t id;      /* TAIL_READ, WRITE */
    const char *line; /* WRITE: line_len bytes */
    size_t line_len;
    int64_t duration_ns; /* GRANTED, TIMEOUT, UNLOCK, FSYNC */
    int error;           /* FSYNC, OUTSIDE: 0 or an errno */
    const char *what;    /* OUTSIDE */
};

typedef void task_store_observe_fn(void *arg, const struct task_store_event *ev);

/* What the processes of one server share about the file, for group commit
 * (see task_store_sync.c): the master puts one in a MAP_SHARED mapping before
 * fork, and every worker's store gets it in opts.shared. */
struct task_store_shared;
size_t task_store_shared_size(void);
void task_store_shared_init(struct task_store_shared *sh);

struct task_store_options {
    int fsync;                        /* an append reports success once it is on disk: a
                                         fdatasync() after the lock, shared (group commit) */
    unsigned race_window_us;          /* sleep inside the critical section (demo and tests) */
    unsigned lock_timeout_ms;         /* 0: wait for the lock as long as it takes; after a wait
                                         ran out, waits in the next lock_timeout_ms are cut short
                                         (see store_timed_lock in task_store.c) */
    long crash_after_bytes;           /* test hook, < 0 off: write only this many bytes of the
                                         next append, then raise SIGKILL (a writer dying mid-append) */
    int quiet;                        /* do not log repairs of a torn tail (errors still logged) */
    struct task_store_shared *shared; /* NULL: on its own (taskctl); see above */
    task_store_observe_fn *observe;   /* NULL: nobody watches (no clock is read for it) */
    void *observe_arg;
};

/* What task_store_check() found and did. */
struct task_store_report {
    uint64_t num_tasks;    /* records in the file after the check */
    int created;           /* the file did not exist, or was empty, and is now "[\n]\n" */
    int canonicalized;     /* another layout was rewritten; original saved in saved_path */
    uint64_t renumbered;   /* records of it that got a new id (ids are positions, 1..n) */
    int restore_failed;    /* a rewrite failed and so did putting the original back: the
                              file is damaged, saved_path holds the original */
    int torn_cut;          /* a torn tail was cut; the cut bytes saved in saved_path */
    off_t torn_offset;     /* where the cut began */
    size_t torn_bytes;     /* how many bytes were cut */
    int body_unchecked;    /* TASK_STORE_TAIL_ONLY: only the tail was read (it was ours) */
    char saved_path[4096]; /* "" when nothing was saved */
};

/* Flags of task_store_check(). */
#define TASK_STORE_REPAIR 1 /* fix what can be fixed */
#define TASK_STORE_FSYNC 2  /* make what it writes durable: the file, a file it creates and
                               the copies it saves beside it (their directory too) */
#define TASK_STORE_TAIL_ONLY 4 /* a file whose end is this store's needs nothing more: the
                                  tail is what appends need (report.body_unchecked) */

/* Checks the whole file (streaming, memory independent of its size) and with
 * TASK_STORE_REPAIR creates it if missing, canonicalizes another layout, or
 * cuts a torn tail, under the write lock and in place (never by rename).
 * Without the flag, only reports (report fields say what repair would do;
 * nothing is written). With TASK_STORE_TAIL_ONLY a file whose tail is this
 * store's is taken after reading that tail alone, O(1) in its size (its body
 * is left to task_store_check_body()); any other goes the whole way. Returns 0
 * when the file is (now) canonical; -1 with err naming the file, the byte
 * offset and the reason otherwise, and then the file was not modified. */
int task_store_check(const char *path, int flags, struct task_store_report *report, char *err,
                     size_t err_len);

/* The body of a file whose tail task_store_check() alone checked: every byte
 * before the last complete record, streamed without any lock (those bytes
 * never change, I3 in task_store_lock.c), meant for a background process at
 * low priority. The verdict goes to sh, where every worker's store sees it
 * (task_store_body_state()). Returns 0 canonical, or -1 with err (the byte
 * and what is wrong there; or why it could not be read). */
int task_store_check_body(const char *path, struct task_store_shared *sh, char *err,
                          size_t err_len);

/* Before the workers start: a body check of the file at path is coming, so
 * that a GET /tareas waits for its verdict instead of streaming what may be
 * damaged. */
void task_store_body_pending(struct task_store_shared *sh, const char *path);

/* The background check's verdict on the file s has open: 1 checked and
 * canonical (or never asked for), 0 still running, -1 damaged (msg says
 * where). */
int task_store_body_state(struct task_store *s, char *msg, size_t msg_len);

/* Opens (does not create) the store file. Returns NULL with errno and err on
 * failure: ENOENT, EACCES, EISDIR, EBUSY (this process already has it open). */
struct task_store *task_store_open(const char *path, const struct task_store_options *opts,
                                   char *err, size_t err_len);

/* Closes the descriptors, which releases this process's locks on the file. */
void task_store_close(struct task_store *s);

/* Appends t under the write lock (a batch of one, below; nothing else may be
 * staged): reads only the tail (repairing a torn one left by a writer that
 * died), writes the new record and the closing bracket in one pwrite(),
 * optionally fdatasync()s, reads the bytes back, releases the lock. O(1) in
 * the size of the file. On success fills meta (id, creada, pid) and, if line is
 * not NULL, copies the stored record (without newline) into line and sets
 * *line_len. Returns 0, or -1 with errno: nothing was stored and the file is
 * valid with every earlier task. */
int task_store_append(struct task_store *s, const struct task *t, struct task_meta *meta,
                      char *line, size_t line_cap, size_t *line_len, char *err, size_t err_len);

/* Batched appends: tasks are staged one by one (encoded at once, outside any
 * lock) and committed together: one lock, one tail read, one pwrite() and one
 * read-back for all of them, ids consecutive in staging order. All or
 * nothing: a failed commit stores none of them, and leaves nothing staged.
 *
 *     for each task: if (task_store_stage(s, &task, err, ...) < 0) refuse that one
 *     task_store_commit(s, metas, err, ...);          metas[i] for the i-th staged
 *     line = task_store_line(s, i, &len);             as stored, until the next stage
 *
 * task_store_stage() returns the task's index in the batch, or -1 with errno
 * (EMSGSIZE: longer than TASK_JSON_RECORD_MAX encoded; ENOMEM). commit returns
 * 0 or -1 with errno as task_store_append(). */
int task_store_stage(struct task_store *s, const struct task *t, char *err, size_t err_len);
size_t task_store_num_staged(const struct task_store *s);
int task_store_commit(struct task_store *s, struct task_meta *metas, char *err, size_t err_len);
const char *task_store_line(const struct task_store *s, size_t i, size_t *len);

/* A consistent snapshot: every task whose append completed before the call,
 * and no partial record. The caller sends bytes [0, prefix_len) of fd
 * (pread/sendfile, no lock needed: those bytes never change) followed by the
 * suffix_len bytes of suffix. fd is the store's, lent until
 * task_store_snapshot_release(): never close it. */
struct task_store_snapshot {
    int fd;
    off_t prefix_len;
    const char *suffix; /* "]\n" or "\n]\n" (static storage) */
    size_t suffix_len;
    uint64_t num_tasks; /* == id of the last task: ids are 1..n */
    off_t last_off;     /* where the last task's line starts (for _intact) */
    uint64_t last_sum;  /* a checksum of that line */
};

/* Takes the read lock briefly to find the end of the last complete record;
 * behind a writer that keeps the lock over 100 ms (stopped, or in a race
 * window) it reads without the lock rather than wait (see task_store.c). A
 * file in another layout is rewritten first, under the write lock.
 * Returns 0 or -1 with errno (EIO, EBADMSG). Every successful snapshot must be
 * released. */
int task_store_snapshot(struct task_store *s, struct task_store_snapshot *snap, char *err,
                        size_t err_len);

/* Gives back the descriptor a snapshot lent (a replaced file's is closed once
 * no snapshot uses it). Safe to call twice. */
void task_store_snapshot_release(struct task_store *s, struct task_store_snapshot *snap);

/* Whether the bytes snap covers are still the file's. A reader that sent the
 * prefix asks this before the suffix: the one writer that rewrites them is
 * task_store_reset(), and a reset followed by appends past prefix_len would
 * turn a stream into two lists spliced into one that looks whole. Compares
 * the snapshot's last record with the file (a refill catches it only with a
 * byte-identical line at the same offset). Returns 1 intact, 0 rewritten or
 * cut, -1 read error (errno). */
int task_store_snapshot_intact(struct task_store *s, const struct task_store_snapshot *snap);

/* The number of tasks, for a health check: every task whose append completed
 * before the call (one in flight may or may not count), in the file at the
 * path as of at most 100 ms ago. Reads the tail without any lock, usually in
 * one pread() (see task_store.c); a tail it
 * cannot read is read again as task_store_snapshot() does, and its error is
 * returned. Returns 0 with *num, or -1 with errno and err as the snapshot. */
int task_store_count(struct task_store *s, uint64_t *num, char *err, size_t err_len);

/* A reader of the whole file in its own way (taskctl verify): the file at
 * path, opened read-only under the read lock, which waits as long as it takes
 * (logging once which process holds the lock). Appends wait while it is
 * held; the bytes read through it are a consistent list or the file's own
 * damage, never an append half done. Refuses (EBUSY) a file this process has
 * a store open on, for the reason above. Returns the descriptor, or -1 with
 * errno and err. task_store_reader_close() closes it and drops the lock. */
int task_store_reader_open(const char *path, char *err, size_t err_len);
void task_store_reader_close(int fd);

/* Finds task id within snap by interpolation over byte offsets (ids are
 * positions 1..n in file order), starting where earlier lookups of nearby ids
 * found their lines: usually one pread() of a small block. Copies its record
 * line (no newline) into line. Returns 1 found, 0 absent, -1 error (errno). */
int task_store_find(struct task_store *s, const struct task_store_snapshot *snap, uint64_t id,
                    char *line, size_t line_cap, size_t *line_len);

/* Empties the list under the write lock (truncate to "[\n]\n"): the safe
 * replacement for `echo "[]" > tasks.json`. Returns 0 or -1 with errno. */
int task_store_reset(struct task_store *s, char *err, size_t err_len);

#endif
