/* taskctl_verify.h - `taskctl verify`: checks tasks.json end to end without modifying it.
 *
 * Calling sequence:
 *
 *   struct taskctl_verify_options o = { .has_expect = 1, .expect = 800 };
 *   int rc = taskctl_verify(path, &o, stdout, err, sizeof(err));
 *   rc 0: passed, 1: failed (the verdict and the reasons are printed on out),
 *   rc -1: the file could not be read (errno, and err names the file).
 *
 * What passes: the canonical layout ("[", one record per line separated by
 * commas, "]"), every record valid JSON with an integer id, ids unique and
 * increasing in file order, for every cliente its seq values 1..max each
 * present exactly once, and the number of tasks equal to expect if given.
 * A valid JSON array of objects in another layout ("[]" from `echo "[]" >`,
 * pretty-printed) passes too, with a note: the store rewrites it in its own
 * layout at its next request or start, ids 1..n, and verify judges those records (it
 * then reads the file whole, up to TASKCTL_VERIFY_PARSE_MAX bytes).
 *
 * With cliente_glob (an fnmatch(3) pattern, e.g. "*@run3"), only the records
 * whose cliente matches are judged for seq and counted for expect: the tasks
 * of one classroom run among earlier runs' in the same file; when none
 * matches, verify fails (a typo in the pattern), unless expect is 0. Layout, damage
 * and ids are always judged for the whole file. Among the judged records, in
 * file order, verify also counts the switches between clientes (two adjacent
 * judged records of different clientes): how interleaved the clients' appends
 * are, and, when records name their "host" (the server that stored them),
 * how many of the judged records each host stored: the share of each replica
 * when several servers write one file.
 *
 * The file is read line by line through one fixed buffer, never through
 * task_store_check() (which would repair): memory does not depend on the size
 * of the file, except one pair of seq bitmaps per cliente (and the whole file,
 * for one not in the store's layout). On damage, verify
 * reports where the first damage is (byte offset and line), keeps going, and
 * counts the records it can still read. It opens its own read-only descriptor
 * and holds a read lock on the whole file while it reads (so it never sees an
 * append in progress); it never opens the store in the same process.
 */
#ifndef TASKSERVER_TASKCTL_VERIFY_H
#define TASKSERVER_TASKCTL_VERIFY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The largest file in another layout that verify parses whole as JSON (the store's limit for
 * rewriting one too); a larger one is judged line by line only. */
#define TASKCTL_VERIFY_PARSE_MAX (64L * 1024 * 1024)

/* How many missing or doubled seq numbers are listed per cliente. */
#define TASKCTL_VERIFY_LIST_MAX 20

/* The largest seq verify can track (bitmaps of 8 MiB); larger ones fail. */
#define TASKCTL_VERIFY_SEQ_LIMIT (1LL << 26)

struct taskctl_verify_options {
    int has_expect;
    uint64_t expect;          /* the number of tasks the file must hold */
    const char *cliente_glob; /* NULL: every record; else only clientes matching it */
};

int taskctl_verify(const char *path, const struct taskctl_verify_options *opts, FILE *out,
                   char *err, size_t err_len);

#endif
