/* store_fixture.h - what the store's Check suites share (tests/store_fixture.c).
 *
 *   tcase_add_checked_fixture(tc, setup_dir, teardown_dir);   tmp_dir, tmp_file per test
 *   write_file(tmp_file, "[\n]\n", 4); ... read_file(tmp_file, &len) (free it)
 *   struct task_store *s = open_store(&quiet_opts); append_one(s, "titulo", "c", 1);
 *
 * Failures are Check assertions: the test that called the helper fails.
 */
#ifndef TASKSERVER_STORE_FIXTURE_H
#define TASKSERVER_STORE_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "task_json.h"
#include "task_store.h"

extern char tmp_dir[256];  /* a fresh directory per test */
extern char tmp_file[300]; /* tmp_dir/tasks.json (not created) */

void setup_dir(void);
void teardown_dir(void);

void write_file(const char *path, const char *data, size_t len);
/* The whole file, NUL-terminated (free it); NULL if missing. */
char *read_file(const char *path, size_t *len);
/* How many files in tmp_dir start with prefix; the first one's path in first. */
int count_files(const char *prefix, char *first, size_t first_cap);

void make_task(struct task *t, const char *titulo, const char *cliente, int64_t seq);
/* The record line the store would write for task number id (fixed meta). */
size_t record_line(uint64_t id, char *buf, size_t cap);
/* A canonical file with records 1..n in buf; returns its length. */
size_t canonical_file(uint64_t n, char *buf, size_t cap);

extern const struct task_store_options quiet_opts;
struct task_store *open_store(const struct task_store_options *opts);
uint64_t append_one(struct task_store *s, const char *titulo, const char *cliente, int64_t seq);
/* task_store_check() in a child (this process may have the file open): canonical, n tasks. */
void assert_canonical(uint64_t expected_num);
/* TASKSERVER_LOCKING, checked against $LOCKING. */
int locking_build(void);

#endif
