/* taskctl_ops.h - what taskctl's commands and its menu do on the store: open, add, list.
 *
 * Calling sequence:
 *
 *   struct task_store *s = taskctl_ops_open(path, TASKCTL_OPEN_WRITE, fsync); (NULL: printed)
 *   struct taskctl_ops_fields f = {.cliente = NULL, .descripcion = NULL, .seq = -1};
 *   if (taskctl_ops_add(s, titulo, &f, &meta, &invalid, err, sizeof(err)) < 0)
 *       invalid ? the input was refused : the store failed;    (err says why)
 *   task_store_close(s);
 *   int status = taskctl_ops_list(path, json);                 (an exit status)
 *
 * Errors are reported as one line on stderr, "taskctl: ...", naming the file
 * or the argument; functions that return an exit status have printed it.
 */
#ifndef TASKSERVER_TASKCTL_OPS_H
#define TASKSERVER_TASKCTL_OPS_H

#include <stdint.h>

#include "task_json.h"
#include "task_store.h"

/* taskctl's exit status. */
enum {
    TASKCTL_EXIT_OK = 0,
    TASKCTL_EXIT_FAILED = 1, /* verify or check found a problem */
    TASKCTL_EXIT_USAGE = 2,  /* bad command line or invalid task */
    TASKCTL_EXIT_FILE = 3    /* the file could not be read, written or repaired */
};

#define TASKCTL_ERR_MAX 1024 /* size of an error message buffer */

/* Prints "taskctl: " and the message as one line on stderr. */
void taskctl_ops_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A hint to append to a store error with this errno ("" for most). */
const char *taskctl_ops_hint(int err);

/* How taskctl_ops_open() treats the file before opening it. */
enum taskctl_open {
    TASKCTL_OPEN_EXISTING, /* as it is */
    TASKCTL_OPEN_CREATE,   /* a missing file is created (reset: any content will do) */
    TASKCTL_OPEN_WRITE     /* the same, for add (a valid array in another layout, such as
                              "[]" from `echo "[]" > tasks.json`, is rewritten by the
                              store's first append, as the server does; said on stderr) */
};

/* Opens the store, creating a missing file where mode allows (through the
 * store's own check; taskctl never opens a second descriptor on the file).
 * fsync: what the store writes is made durable before the command reports
 * it (the file, a created file's directory). Returns NULL with errno after
 * printing the error. */
struct task_store *taskctl_ops_open(const char *path, enum taskctl_open mode, int fsync);

/* The optional fields of the tasks `add` stores. */
struct taskctl_ops_fields {
    const char *cliente;     /* NULL: absent */
    const char *descripcion; /* NULL: absent */
    int64_t seq;             /* -1: absent */
};

/* Validates titulo and f exactly as the server validates a POST body, then
 * appends the task and prints "added task ID: TITULO". Returns 0; -1 with
 * *invalid set when the input was refused; -1 with *invalid clear and errno
 * when the store failed. err says why (not printed). */
int taskctl_ops_add(struct task_store *s, const char *titulo, const struct taskctl_ops_fields *f,
                    struct task_meta *meta, int *invalid, char *err, size_t err_len);

/* Prints a snapshot of the file on stdout: the table, or with json the array
 * exactly as stored. Returns an exit status (TASKCTL_EXIT_OK or _FILE). */
int taskctl_ops_list(const char *path, int json);

#endif
