/* store_fixture.c - what the store's Check suites share: a temp directory with tasks.json,
 * files written and read whole, tasks and canonical files made to order. */
#include "store_fixture.h"
#include "test_tmp.h"

#include "build_config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char tmp_dir[256];
char tmp_file[300];

void setup_dir(void)
{
    test_tmp_dir(tmp_dir, sizeof(tmp_dir), "test_task_store");
    snprintf(tmp_file, sizeof(tmp_file), "%s/tasks.json", tmp_dir);
}

void teardown_dir(void)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmp_dir);
}

void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* Reads a whole file, NUL-terminated; NULL if missing. */
char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    struct stat st;
    fstat(fd, &st);
    char *buf = malloc((size_t)st.st_size + 1);
    ssize_t n = read(fd, buf, (size_t)st.st_size);
    ck_assert_int_eq(n, st.st_size);
    buf[n] = '\0';
    if (len != NULL)
        *len = (size_t)n;
    close(fd);
    return buf;
}

/* Names of files in tmp_dir starting with prefix (e.g. "tasks.json.torn-"). */
int count_files(const char *prefix, char *first, size_t first_cap)
{
    DIR *d = opendir(tmp_dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
            if (n == 0 && first != NULL)
                snprintf(first, first_cap, "%s/%s", tmp_dir, e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

void make_task(struct task *t, const char *titulo, const char *cliente, int64_t seq)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->titulo, sizeof(t->titulo), "%s", titulo);
    t->titulo_len = strlen(t->titulo);
    if (cliente != NULL) {
        snprintf(t->cliente, sizeof(t->cliente), "%s", cliente);
        t->cliente_len = strlen(t->cliente);
        t->has_cliente = 1;
    }
    t->seq = seq;
}

/* The record line the store would write for task number id (fixed meta). */
size_t record_line(uint64_t id, char *buf, size_t cap)
{
    struct task t;
    char titulo[64];
    snprintf(titulo, sizeof(titulo), "task %" PRIu64 " \"q\" \\ ]", id);
    make_task(&t, titulo, "c", (int64_t)id);
    struct task_meta m = {id, 1795705200, 4123, NULL};
    long n = task_json_encode_record(&t, &m, buf, cap);
    ck_assert_int_gt(n, 0);
    return (size_t)n;
}

/* A canonical file with records 1..n; returns its length. */
size_t canonical_file(uint64_t n, char *buf, size_t cap)
{
    size_t o = 0;
    memcpy(buf, "[\n", 2);
    o = 2;
    for (uint64_t id = 1; id <= n; id++) {
        if (id > 1) {
            memcpy(buf + o, ",\n", 2);
            o += 2;
        }
        o += record_line(id, buf + o, cap - o);
    }
    if (n > 0) {
        memcpy(buf + o, "\n]\n", 3);
        o += 3;
    } else {
        memcpy(buf + o, "]\n", 2);
        o += 2;
    }
    buf[o] = '\0';
    ck_assert_uint_lt(o, cap);
    return o;
}

const struct task_store_options quiet_opts = {
    .fsync = 0, .race_window_us = 0, .lock_timeout_ms = 0, .crash_after_bytes = -1, .quiet = 1};

struct task_store *open_store(const struct task_store_options *opts)
{
    char err[512];
    struct task_store *s = task_store_open(tmp_file, opts, err, sizeof(err));
    ck_assert_msg(s != NULL, "open: %s", err);
    return s;
}

uint64_t append_one(struct task_store *s, const char *titulo, const char *cliente, int64_t seq)
{
    struct task t;
    struct task_meta m;
    char err[512];
    make_task(&t, titulo, cliente, seq);
    ck_assert_msg(task_store_append(s, &t, &m, NULL, 0, NULL, err, sizeof(err)) == 0, "append: %s",
                  err);
    return m.id;
}

/* Runs task_store_check() in a child: this process may have a store open,
 * and the store rightly refuses a check that would open a second descriptor. */
void assert_canonical(uint64_t expected_num)
{
    struct {
        int rc;
        uint64_t num;
        char err[512];
    } res;
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct task_store_report rep;
        memset(&res, 0, sizeof(res));
        res.rc = task_store_check(tmp_file, 0, &rep, res.err, sizeof(res.err));
        res.num = rep.num_tasks;
        _exit(write(pfd[1], &res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 1);
    }
    close(pfd[1]);
    ck_assert_int_eq(read(pfd[0], &res, sizeof(res)), (ssize_t)sizeof(res));
    close(pfd[0]);
    waitpid(pid, NULL, 0);
    ck_assert_msg(res.rc == 0, "check: expected canonical, got: %s", res.err);
    ck_assert_msg(res.num == expected_num, "check: expected %" PRIu64 " tasks, got %" PRIu64,
                  expected_num, res.num);
}

int locking_build(void)
{
    const char *env = getenv("LOCKING");
    if (env != NULL)
        ck_assert_msg(atoi(env) == TASKSERVER_LOCKING, "LOCKING=%s but the library has %d", env,
                      TASKSERVER_LOCKING);
    return TASKSERVER_LOCKING;
}
