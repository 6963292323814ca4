/* task_store_tail.c - the end of tasks.json: where the next record goes, and what a dying
 * writer may have left there. */
#include "task_store_impl.h"

#include "build_config.h"
#include "log.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_HINT_BEFORE 4096 /* tail window: from this far before the size hint */
#define STORE_HINT_AFTER 12288 /* to this far past it (see store_window_size) */

_Static_assert(STORE_HINT_BEFORE >= STORE_TAIL_BLOCK, "the window must hold a fast tail block");
_Static_assert(STORE_HINT_BEFORE + STORE_HINT_AFTER <= STORE_SCAN_MAX,
               "the window is read into scan");

/* Invariant I6 (task_store_lock.c): the record line of id `id` starting at
 * buf[j] (buf holds the file's bytes from offset at) must follow what only this
 * store writes before a record: "[\n" at byte 0 when it is record 1, else the
 * ",\n" that ends the line of record id - 1 (which ends in "},"). A line
 * appended by hand after the "]", a record after a hole of zeros, or records
 * spliced from another file fail here. Returns 1 yes, 0 no, -1 when the line
 * before starts before buf (read more and ask again). */
static int store_follows_record(const char *buf, off_t at, size_t j, uint64_t id)
{
    if (id == 1) {
        if (at + (off_t)j != 2)
            return 0;
        return j < 2 ? -1 : buf[j - 2] == '[' && buf[j - 1] == '\n';
    }
    if (j < 3)
        return at > 0 ? -1 : 0;
    if (buf[j - 1] != '\n' || buf[j - 2] != ',' || buf[j - 3] != '}')
        return 0;
    /* The start of the line before: just past the last newline before its ','. */
    const char *nl = memrchr(buf, '\n', j - 2);
    size_t k = nl != NULL ? (size_t)(nl - buf) + 1 : 0;
    if (k == 0 && at > 0)
        return -1;
    return task_json_line_id(buf + k, j - 2 - k) == id - 1;
}

/* The fast path: a file that is "[\n]\n", or ends in "}\n]\n" with a last line
 * that starts with {"id":N and follows record N - 1 (I6). Why that suffices for
 * a torn append: an append writes the single buffer ",\n{rec}\n]\n" at size-3
 * (or "{rec}\n]\n" at 2), and rec contains no raw newline. If the writer dies
 * after k bytes, the file ends with byte k-1 of that buffer (k >= 3) or with
 * old bytes shifted by a stub (k < 3). The buffer holds "\n" only at 1, len-3
 * and len-1, so the file can end in "}\n]\n" only when k == len, the complete
 * record; for k < 3 it ends in ",]\n" or ",\n\n". A torn append is therefore
 * never mistaken for a good tail. (A crash of the machine may leave zeros or
 * stale blocks instead; those do not end in "}\n]\n" either, and take the slow
 * path.) When have is not NULL it holds the last have_len bytes of the file
 * (read under the same lock): a block found there is not read again.
 * Returns 1 fast tail, 0 not fast, -1 read error. */
static int store_fast_tail(int fd, struct store_scratch *sc, off_t size, struct store_tail *ti,
                           const char *have, size_t have_len)
{
    const char *buf = sc->scan;
    ti->size = size;
    ti->torn = 0;
    if (size == 4) {
        if (have != NULL && have_len >= 4)
            buf = have + have_len - 4;
        else if (store_pread_full(fd, sc->scan, 4, 0) != 4)
            return errno ? -1 : 0;
        if (memcmp(buf, "[\n]\n", 4) == 0) {
            ti->end = 2;
            ti->line_start = 2;
            ti->last_id = 0;
            ti->line = NULL;
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
            buf = sc->scan;
            if (store_pread_full(fd, sc->scan, want, at) != (ssize_t)want)
                return -1;
        }
        if (memcmp(buf + want - 4, "}\n]\n", 4) != 0)
            return 0;
        const char *nl = memrchr(buf, '\n', want - 4); /* the last line starts past it */
        size_t j = nl != NULL ? (size_t)(nl - buf) + 1 : 0;
        uint64_t id = 0;
        int follows;
        if (j == 0)
            follows = at > 0 ? -1 : 0; /* at 0: the whole file is one line, not ours */
        else if ((id = task_json_line_id(buf + j, want - 3 - j)) == 0)
            return 0;
        else
            follows = store_follows_record(buf, at, j, id);
        if (follows == 0)
            return 0;
        if (follows < 0) {
            /* The last line and the one before it do not fit in one block
             * (a long record; with j == 1 the ',' lies just before it: found
             * by fuzz/fuzz_store_check.c): read once more, as far back as two
             * of the longest records allowed. */
            if (pass == 1 || (off_t)want == size)
                return 0;
            want = size < STORE_SCAN_MAX ? (size_t)size : STORE_SCAN_MAX;
            continue;
        }
        ti->end = size - 3;
        ti->line_start = at + (off_t)j;
        ti->last_id = id;
        ti->line = buf + j;
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
#if !TASKSERVER_LOCKING
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
#endif

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
#if !TASKSERVER_LOCKING
        /* A complete array followed by the end of a longer record: two appends
         * wrote at the same offset and the shorter one landed last. Only
         * writers that skip the lock leave this, so only the unlocked build,
         * whose own writers race on purpose, counts it as torn; the bytes are
         * saved beside the file like any torn tail. What follows "\n]\n" is
         * then the ends of one or more longer appends, each the last bytes of
         * ",\n{rec}\n]\n": lines that are empty, "]", or the end of a record
         * ("...}"), never the start of one. */
        if (n > 3 && memcmp(j, "\n]\n", 3) == 0)
            return store_junk_is_record_ends(j + 3, n - 3);
#endif
        return n >= 3 && memcmp(j, ",\n{", 3) == 0 && memchr(j + 3, '\n', n - 3) == NULL;
    }
    if (n == 2 && memcmp(j, "{\n", 2) == 0)
        return 1;
    return j[0] == '{' && memchr(j + 1, '\n', n - 1) == NULL;
}

/* The slow path: scan back from the end for the last line "\n{...}" that
 * parses as a complete record. What follows it is the remains of a writer
 * that died mid-append (or of a crash) if store_junk_plausible() and the
 * record follows the one before it (I6). A tail that is exactly "\n]\n" is
 * not torn: the last record is merely not canonical, and cutting it would
 * loop forever. Returns 0 with ti->torn = 1, or -1 with errno EBADMSG (not
 * this store's tail: the caller must not touch the file before a whole check)
 * or EIO. */
static int store_scan_tail(int fd, struct store_scratch *sc, off_t size, struct store_tail *ti,
                           const char *path, char *err, size_t err_len)
{
    char *buf = sc->scan;
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
            if (task_json_decode_record(buf + p + 1, w - p - 1, &sc->rec, &end, NULL, 0) == 0) {
                off_t e = at + (off_t)(p + 1 + end);
                size_t junk = (size_t)(size - e);
                errno = EBADMSG;
                if (junk == 3 && memcmp(buf + p + 1 + end, "\n]\n", 3) == 0) {
                    store_err(err, err_len, "%s: byte %lld: last record not in canonical form",
                              path, (long long)(at + (off_t)p + 1));
                    return -1;
                }
                if (!store_junk_plausible(buf + p + 1 + end, junk, 1)) {
                    store_err(err, err_len,
                              "%s: byte %lld: %zu bytes after the last record that this store "
                              "does not write",
                              path, (long long)e, junk);
                    return -1;
                }
                if (store_follows_record(buf, at, p + 1, sc->rec.id) != 1) {
                    store_err(err, err_len,
                              "%s: byte %lld: record %llu does not follow record %llu (a line "
                              "this store did not write)",
                              path, (long long)(at + (off_t)p + 1), (unsigned long long)sc->rec.id,
                              (unsigned long long)(sc->rec.id - 1));
                    return -1;
                }
                ti->end = e;
                ti->line_start = at + (off_t)p + 1;
                ti->last_id = sc->rec.id;
                ti->line = buf + p + 1;
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
        ti->line = NULL;
        return 0;
    }
    errno = EBADMSG;
    if (size >= 2 && memcmp(sc->scan, "[\n", 2) != 0 && at == 0)
        store_err(err, err_len, "%s: byte 0: not in the canonical layout", path);
    else
        store_err(err, err_len, "%s: byte %lld: no complete record at the end of the file", path,
                  (long long)at);
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
 * others) and a window that ends before the hint (the file shrank: a reset
 * or a repair; the window may then not hold the last STORE_TAIL_BLOCK
 * bytes). Otherwise the window holds them (it starts STORE_HINT_BEFORE before
 * the hint, or at 0): returns *size and, in *have and *have_len, the bytes
 * [size - *have_len, size).
 *
 * What is trusted from the window is only a tail that passes the fast path;
 * a tail that does not is looked at again after an fstat(), so the scan that
 * may cut a torn tail never works from a size that a read alone suggested.
 * Under the lock nothing else of ours writes. Without it (a snapshot past its
 * deadline, a count) the single read can race another process's append
 * exactly as the fstat() and pread() it replaces could: the kernel extends
 * the size only over copied bytes, so the read sees a prefix of the append,
 * and a prefix never ends in "}\n]\n" (see store_fast_tail()).
 * Returns 1 with the size, 0 to fall back, -1 read error. */
static int store_window_size(int fd, struct store_scratch *sc, off_t hint, off_t *size,
                             const char **have, size_t *have_len)
{
    if (hint <= 0)
        return 0;
    off_t at = hint > STORE_HINT_BEFORE ? hint - STORE_HINT_BEFORE : 0;
    size_t want = (size_t)(hint - at) + STORE_HINT_AFTER;
    ssize_t got;
    while ((got = pread(fd, sc->scan, want, at)) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if ((size_t)got == want || at + (off_t)got < hint)
        return 0;
    *size = at + (off_t)got;
    *have = sc->scan;
    *have_len = (size_t)got;
    return 1;
}

int store_read_tail(int fd, const char *path, struct store_scratch *sc, off_t *size_hint,
                    struct store_tail *ti, char *err, size_t err_len)
{
    const char *have = NULL;
    size_t have_len = 0;
    off_t size = 0;
    int w = size_hint != NULL ? store_window_size(fd, sc, *size_hint, &size, &have, &have_len) : 0;
    if (w < 0) {
        *size_hint = 0;
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
        if (size_hint != NULL)
            *size_hint = size;
        errno = 0;
        int fast = store_fast_tail(fd, sc, size, ti, have, have_len);
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
    return store_scan_tail(fd, sc, size, ti, path, err, err_len);
}

int store_cut_tail(int fd, const char *path, struct store_scratch *sc, struct store_tail *ti,
                   int quiet, int sync_dir, char *saved, size_t saved_cap, char *err,
                   size_t err_len)
{
    /* With no record left the file becomes "[\n]\n", even if it was shorter. */
    size_t junk = ti->size > ti->end ? (size_t)(ti->size - ti->end) : 0;
    saved[0] = '\0';
    if (junk > 0) {
        /* The scan buffer still holds the tail: the junk is its last bytes. */
        size_t w = ti->size < STORE_SCAN_MAX ? (size_t)ti->size : STORE_SCAN_MAX;
        if (store_save_beside(path, "torn", sc->scan + w - junk, junk, sync_dir, saved, saved_cap) <
            0) {
            store_err(err, err_len, "%s: cannot save torn tail to %s: %s", path, saved,
                      strerror(errno));
            return -1;
        }
    }
    const char *close_str = ti->last_id > 0 ? "\n]\n" : "[\n]\n";
    size_t close_len = strlen(close_str);
    off_t close_at = ti->last_id > 0 ? ti->end : 0;
    /* Saving the cut bytes took a while (a file and its fsync): a program
     * writing without the lock may have grown the file meanwhile, and what
     * looked torn was its copy in progress. Cut only what was read. */
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size != ti->size) {
        if (saved[0] != '\0')
            unlink(saved);
        saved[0] = '\0';
        errno = EAGAIN;
        store_err(err, err_len, "%s: changed by another program while its tail was repaired", path);
        return -1;
    }
    if (store_pwrite_full(fd, close_str, close_len, close_at) < 0 ||
        store_ftruncate(fd, close_at + (off_t)close_len) < 0) {
        store_err(err, err_len, "%s: repair torn tail at byte %lld: %s", path, (long long)ti->end,
                  strerror(errno));
        return -1;
    }
    if (!quiet)
        log_warn("%s: torn tail at byte %lld: cut %zu bytes%s%s", path, (long long)ti->end, junk,
                 saved[0] ? ", saved in " : "", saved);
    ti->size = close_at + (off_t)close_len;
    ti->torn = 0;
    return 0;
}
