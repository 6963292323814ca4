/* taskctl_ops.c - taskctl's operations on the store, shared by its commands and its menu. */
#include "taskctl_ops.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "taskctl_lines.h"
#include "taskctl_table.h"

void taskctl_ops_error(const char *fmt, ...)
{
    char line[TASKCTL_ERR_MAX + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "taskctl: %s\n", line);
}

const char *taskctl_ops_hint(int err)
{
    return err == EBADMSG ? " (taskctl check tells more; taskctl repair fixes a torn tail)" : "";
}

/* The store's start-up check with repair (it logs what it changes itself):
 * creates a missing file. */
static int repair(const char *path, int fsync, char *err, size_t err_len)
{
    struct task_store_report rep;
    return task_store_check(path, TASK_STORE_REPAIR | (fsync ? TASK_STORE_FSYNC : 0), &rep, err,
                            err_len);
}

struct task_store *taskctl_ops_open(const char *path, enum taskctl_open mode, int fsync)
{
    struct task_store_options opts = {.crash_after_bytes = -1, .fsync = fsync};
    char err[TASKCTL_ERR_MAX] = "";
    /* A file in another layout needs nothing here: the store rewrites it
     * under the write lock when it first appends, as the server does. */
    struct task_store *s = task_store_open(path, &opts, err, sizeof(err));
    if (s == NULL && errno == ENOENT && mode != TASKCTL_OPEN_EXISTING) {
        err[0] = '\0';
        if (repair(path, fsync, err, sizeof(err)) == 0)
            s = task_store_open(path, &opts, err, sizeof(err));
    }
    if (s == NULL) {
        int saved = errno;
        if (err[0] == '\0')
            snprintf(err, sizeof(err), "open %s: %s", path, strerror(saved));
        taskctl_ops_error("%s%s", err, taskctl_ops_hint(saved));
        errno = saved;
    }
    return s;
}

/* Writes text at json + *n as a JSON string literal (task_json_escape: 6 bytes
 * per input byte + 2 always fit in the cap computed below). Bytes >= 0x80 pass
 * unchanged, so invalid UTF-8 reaches task_json_decode_input() and is refused
 * there, exactly as from a client. */
static void json_string(char *json, size_t *n, size_t cap, const char *text)
{
    long len = task_json_escape(text, strlen(text), json + *n, cap - *n);
    assert(len >= 0);
    *n += (size_t)len;
}

/* Builds the JSON object a client would POST and validates it with the
 * server's own decoder, so taskctl accepts exactly what the server accepts.
 * Returns 0, or -1 with err (naming the field). */
static int task_from_args(const char *titulo, const struct taskctl_ops_fields *f, struct task *t,
                          char *err, size_t err_len)
{
    size_t cap = 128 + 6 * strlen(titulo);
    cap += f->cliente ? 6 * strlen(f->cliente) : 0;
    cap += f->descripcion ? 6 * strlen(f->descripcion) : 0;
    char *json = malloc(cap);
    if (json == NULL) {
        snprintf(err, err_len, "%s", strerror(errno));
        return -1;
    }
    size_t n = 0;
    n += (size_t)sprintf(json + n, "{\"titulo\":");
    json_string(json, &n, cap, titulo);
    if (f->cliente != NULL) {
        n += (size_t)sprintf(json + n, ",\"cliente\":");
        json_string(json, &n, cap, f->cliente);
    }
    if (f->descripcion != NULL) {
        n += (size_t)sprintf(json + n, ",\"descripcion\":");
        json_string(json, &n, cap, f->descripcion);
    }
    if (f->seq >= 0)
        n += (size_t)sprintf(json + n, ",\"seq\":%lld", (long long)f->seq);
    json[n++] = '}';
    err[0] = '\0';
    int rc = task_json_decode_input(json, n, t, err, err_len);
    free(json);
    return rc;
}

static void print_added(const struct task_meta *meta, const struct task *t)
{
    printf("added task %llu: ", (unsigned long long)meta->id);
    taskctl_table_print_cell(stdout, t->titulo, t->titulo_len, 60);
    putchar('\n');
}

int taskctl_ops_add(struct task_store *s, const char *titulo, const struct taskctl_ops_fields *f,
                    struct task_meta *meta, int *invalid, char *err, size_t err_len)
{
    static struct task t; /* 5 KiB: keep it off the stack */
    *invalid = 0;
    if (task_from_args(titulo, f, &t, err, err_len) < 0) {
        *invalid = 1;
        return -1;
    }
    err[0] = '\0';
    if (task_store_append(s, &t, meta, NULL, 0, NULL, err, err_len) < 0)
        return -1;
    print_added(meta, &t);
    return 0;
}

static int write_all(const char *buf, size_t len)
{
    return fwrite(buf, 1, len, stdout) == len ? 0 : -1;
}

/* Copies the snapshot's bytes of the file to stdout, then its suffix. */
static int list_json(const struct task_store_snapshot *snap, const char *path)
{
    static char buf[65536];
    int fd = snap->fd;
    off_t off = 0;
    while (off < snap->prefix_len) {
        size_t want = sizeof(buf);
        if ((off_t)want > snap->prefix_len - off)
            want = (size_t)(snap->prefix_len - off);
        ssize_t n;
        do
            n = pread(fd, buf, want, off);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            taskctl_ops_error("read %s at byte %lld: %s", path, (long long)off,
                              n == 0 ? "file shrank while reading (reset?)" : strerror(errno));
            return TASKCTL_EXIT_FILE;
        }
        if (write_all(buf, (size_t)n) < 0)
            return TASKCTL_EXIT_FILE;
        off += n;
    }
    if (write_all(snap->suffix, snap->suffix_len) < 0)
        return TASKCTL_EXIT_FILE;
    return TASKCTL_EXIT_OK;
}

static int list_table(const struct task_store_snapshot *snap, const char *path)
{
    static struct task_record rec;
    struct taskctl_lines reader;
    struct taskctl_line line;
    struct taskctl_table table;
    char err[TASKCTL_ERR_MAX];
    int rc, status = TASKCTL_EXIT_OK;
    uint64_t shown = 0;

    if (taskctl_lines_init(&reader, snap->fd, snap->prefix_len) < 0) {
        taskctl_ops_error("list %s: %s", path, strerror(errno));
        return TASKCTL_EXIT_FILE;
    }
    taskctl_table_init(&table, taskctl_table_columns(), snap->num_tasks);
    taskctl_table_header(&table, stdout);
    while ((rc = taskctl_lines_next(&reader, &line)) > 0) {
        size_t len = line.len, end = 0;
        if (line.number == 1 && len == 1 && line.text[0] == '[')
            continue;
        if (len > 0 && line.text[len - 1] == ',')
            len--;
        err[0] = '\0';
        if (line.too_long ||
            task_json_decode_record(line.text, len, &rec, &end, err, sizeof(err)) < 0) {
            taskctl_ops_error("%s: line %llu (byte %lld): %s", path,
                              (unsigned long long)line.number, (long long)line.offset,
                              line.too_long ? "line too long" : err);
            status = TASKCTL_EXIT_FILE;
            continue;
        }
        taskctl_table_row(&table, stdout, &rec);
        shown++;
    }
    if (rc < 0) {
        taskctl_ops_error("read %s: %s", path, strerror(errno));
        status = TASKCTL_EXIT_FILE;
    }
    taskctl_lines_release(&reader);
    printf("%llu task%s\n", (unsigned long long)shown, shown == 1 ? "" : "s");
    return status;
}

int taskctl_ops_list(const char *path, int json)
{
    struct task_store_snapshot snap;
    char err[TASKCTL_ERR_MAX] = "";
    struct task_store *s = taskctl_ops_open(path, TASKCTL_OPEN_EXISTING, 0);
    if (s == NULL)
        return TASKCTL_EXIT_FILE;
    int rc;
    if (task_store_snapshot(s, &snap, err, sizeof(err)) < 0) {
        int saved = errno;
        if (err[0] == '\0')
            snprintf(err, sizeof(err), "read %s: %s", path, strerror(saved));
        taskctl_ops_error("%s%s", err, taskctl_ops_hint(saved));
        rc = TASKCTL_EXIT_FILE;
    } else {
        rc = json ? list_json(&snap, path) : list_table(&snap, path);
        task_store_snapshot_release(s, &snap);
    }
    task_store_close(s);
    if (fflush(stdout) != 0 && rc == TASKCTL_EXIT_OK) {
        taskctl_ops_error("write to stdout: %s", strerror(errno));
        rc = TASKCTL_EXIT_FILE;
    }
    return rc;
}
