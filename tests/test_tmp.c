/* test_tmp.c - scratch folders for the Check suites that go away even when a test fails
 * (test_tmp.h). */
#include "test_tmp.h"

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char test_tmp_root[512];
static pid_t test_tmp_owner;

/* rm -rf root, by fork and exec: also usable from a signal handler. */
static void test_tmp_remove(void)
{
    if (test_tmp_root[0] == '\0' || getpid() != test_tmp_owner)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/rm", "rm", "-rf", test_tmp_root, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
}

static void test_tmp_on_signal(int sig)
{
    test_tmp_remove(); /* only in the parent: a test's child leaves it alone */
    signal(sig, SIG_DFL);
    raise(sig);
}

void test_tmp_begin(const char *name)
{
    const char *root = getenv("BUILD_ROOT");
    char parent[400];
    if (root != NULL) {
        snprintf(parent, sizeof(parent), "%s/test-tmp", root);
        if (mkdir(parent, 0755) < 0 && access(parent, W_OK) < 0)
            snprintf(parent, sizeof(parent), "/tmp");
    } else {
        snprintf(parent, sizeof(parent), "/tmp");
    }
    snprintf(test_tmp_root, sizeof(test_tmp_root), "%s/%s.XXXXXX", parent, name);
    if (mkdtemp(test_tmp_root) == NULL) {
        perror(test_tmp_root);
        exit(EXIT_FAILURE);
    }
    test_tmp_owner = getpid();
    signal(SIGTERM, test_tmp_on_signal);
    signal(SIGINT, test_tmp_on_signal);
}

void test_tmp_end(void)
{
    test_tmp_remove();
    test_tmp_root[0] = '\0';
}

void test_tmp_dir(char *out, size_t cap, const char *prefix)
{
    int n;
    if (test_tmp_root[0] != '\0')
        n = snprintf(out, cap, "%s/%s.XXXXXX", test_tmp_root, prefix);
    else
        n = snprintf(out, cap, "/tmp/%s-XXXXXX", prefix);
    ck_assert_msg(n > 0 && (size_t)n < cap, "scratch folder name too long for %zu bytes", cap);
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp %s", out);
}
