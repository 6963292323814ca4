/* taskserver.c - main(): configuration, store check, listening socket, then the master. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "proctitle.h"
#include "task_store.h"
#include "version.h"

#define TASKSERVER_BACKLOG 4096 /* the kernel clamps it to net.core.somaxconn */

/* getenv() returns char *, config wants a const-returning lookup. */
static const char *taskserver_getenv(const char *name)
{
    return getenv(name);
}

/* Says what the start-up check did, in one line, so a repair is never silent. The store
 * logs the details of a repair (offsets, bytes) itself. */
static void taskserver_log_check(const char *path, const struct task_store_report *rep)
{
    unsigned long long n = (unsigned long long)rep->num_tasks;
    if (rep->created)
        log_info("%s: %llu tasks, created empty", path, n);
    else if (rep->canonicalized || rep->torn_cut)
        log_info("%s: %llu tasks, %s%s%s; original bytes saved in %s", path, n,
                 rep->canonicalized ? "canonicalized" : "",
                 rep->canonicalized && rep->torn_cut ? " and " : "",
                 rep->torn_cut ? "torn tail cut" : "", rep->saved_path);
    else
        log_info("%s: %llu tasks", path, n);
}

/* Each connection costs a descriptor, so take what the hard limit allows. */
static void taskserver_raise_nofile(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        log_warn("getrlimit RLIMIT_NOFILE: %s", strerror(errno));
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
        else
            log_warn("raise RLIMIT_NOFILE from %llu to %llu: %s", (unsigned long long)rl.rlim_cur,
                     (unsigned long long)rl.rlim_max, strerror(errno));
    }
    /* A few descriptors go to the listening socket, epoll, tasks.json and stdio. */
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)cfg->max_connections + 32)
        log_warn("open file limit %llu is below --max-connections %u + 32: workers will "
                 "refuse connections early",
                 (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

int main(int argc, char **argv)
{
    static struct config cfg; /* 4 KiB path inside: keep it off the stack */
    struct task_store_report rep;
    char err[1024];
    char abs_path[PATH_MAX];
    char line[PATH_MAX + 256];
    unsigned port = 0;

    /* First: it moves the environment, so nothing may point into it yet. */
    proctitle_init(argc, argv);
    log_init("taskserver");
    version_warn_if_unlocked("taskserver");

    int rc = config_parse(&cfg, argc, argv, taskserver_getenv);
    if (rc == 1)
        return 0;
    if (rc < 0)
        return 2;
    log_set_quiet(cfg.quiet);

    memset(&rep, 0, sizeof(rep));
    if (task_store_check(cfg.file, TASK_STORE_REPAIR, &rep, err, sizeof(err)) < 0) {
        log_error("%s", err);
        log_error("refusing to start: %s needs attention%s", cfg.file,
                  rep.restore_failed ? "" : " (the file was not modified)");
        return 1;
    }
    taskserver_log_check(cfg.file, &rep);

    taskserver_raise_nofile(&cfg);

    int fd = net_listen(cfg.bind, cfg.port, TASKSERVER_BACKLOG, &port, err, sizeof(err));
    if (fd < 0) {
        log_error("%s", err);
        return 1;
    }

    if (realpath(cfg.file, abs_path) == NULL) {
        log_warn("realpath %s: %s", cfg.file, strerror(errno));
        snprintf(abs_path, sizeof(abs_path), "%s", cfg.file);
    }
    /* Tests and scripts parse "listening on ADDR:PORT" from this line: keep the phrase. */
    int n = snprintf(line, sizeof(line),
                     "taskserver %s: listening on %s%s%s:%u, %u worker%s, locking %s, file %s\n",
                     version_string(), strchr(cfg.bind, ':') != NULL ? "[" : "", cfg.bind,
                     strchr(cfg.bind, ':') != NULL ? "]" : "", port, cfg.workers,
                     cfg.workers == 1 ? "" : "s", version_locking() ? "on" : "OFF", abs_path);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line));
        (void)w; /* nowhere better to report a failed write to stderr */
    }

    /* The signals that stop the server stay blocked after master_run(), which
     * blocks them itself and restores this mask when it returns: a second
     * SIGTERM during the shutdown (docker stop, an impatient Ctrl-C) is then
     * still pending at the end, and must not turn a clean exit 0 into death
     * by signal. (Workers unblock everything after fork.) */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigaddset(&stop, SIGQUIT);
    if (sigprocmask(SIG_BLOCK, &stop, NULL) < 0) {
        log_error("sigprocmask: %s", strerror(errno));
        return 1;
    }
    /* The master owns the socket now: it closes it when the shutdown begins. */
    return master_run(&cfg, fd);
}
