/* test_tmp.h - scratch folders for the Check suites that go away even when a test fails.
 *
 *     int main(void) {
 *         test_tmp_begin("test_foo");       the run's folder: $BUILD_ROOT/test-tmp/test_foo.XXXXXX
 *         ... srunner_run_all(...) ...      (or /tmp/... outside meson)
 *         test_tmp_end();                   removes it, with whatever is left inside
 *     }
 *     setup():  test_tmp_dir(dir, sizeof(dir), "tasks");   a fresh folder inside the run's
 *
 * Check runs each test in a child process and skips a checked fixture's teardown when the
 * test fails (or Check kills it at its timeout): what that test made stays in the run's
 * folder, which the parent removes at the end, and also on SIGTERM or SIGINT (meson's
 * timeout, Ctrl-C). Without test_tmp_begin() (a suite that does not call it), test_tmp_dir()
 * makes /tmp/PREFIX-XXXXXX as before. Failures are Check assertions.
 */
#ifndef TASKSERVER_TEST_TMP_H
#define TASKSERVER_TEST_TMP_H

#include <stddef.h>

void test_tmp_begin(const char *name);
void test_tmp_end(void);
void test_tmp_dir(char *out, size_t cap, const char *prefix);

#endif
