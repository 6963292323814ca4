/* taskserver.c - main(): configuration, store check, listening socket, then the master. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access_log.h"
#include "config.h"
#include "log.h"
#include "master.h"
#include "net.h"
#include "proctitle.h"
#include "task_store.h"
#include "trace.h"
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
    else if (rep->body_unchecked)
        log_info("%s: %llu tasks (the tail checked: the rest is checked in the background)", path,
                 n);
    else
        log_info("%s: %llu tasks", path, n);
}

#define TASKSERVER_CHECK_WHOLE_MAX (64L << 20) /* larger files: the tail at start, the rest later  \
                                                */
#define TASKSERVER_FD_RESERVE 64               /* a worker's own descriptors, besides connections */
#define TASKSERVER_AUTO_CONN_MAX 1048576       /* --max-connections 0 never goes above this */

/* Each connection costs a descriptor, so take what the hard limit allows; and
 * with --max-connections 0 (the default) let each worker hold as many
 * connections as that leaves it (each worker is a process: the limit is per
 * worker). */
static void taskserver_raise_nofile(struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        log_warn("getrlimit RLIMIT_NOFILE: %s", strerror(errno));
        rl.rlim_cur = rl.rlim_max = 1024;
    } else if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
        else
            log_warn("raise RLIMIT_NOFILE from %llu to %llu: %s", (unsigned long long)rl.rlim_cur,
                     (unsigned long long)rl.rlim_max, strerror(errno));
    }
    rlim_t usable = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > TASKSERVER_AUTO_CONN_MAX
                        ? TASKSERVER_AUTO_CONN_MAX
                        : rl.rlim_cur;
    if (cfg->max_connections == 0) {
        cfg->max_connections =
            usable > 2 * TASKSERVER_FD_RESERVE ? (unsigned)(usable - TASKSERVER_FD_RESERVE) : 64;
        log_info("at most %u connections per worker (open file limit %llu)", cfg->max_connections,
                 (unsigned long long)rl.rlim_cur);
    } else if (usable < (rlim_t)cfg->max_connections + TASKSERVER_FD_RESERVE) {
        log_warn("open file limit %llu is below --max-connections %u + %d: workers will "
                 "refuse connections early",
                 (unsigned long long)rl.rlim_cur, cfg->max_connections, TASKSERVER_FD_RESERVE);
    }
}

int main(int argc, char **argv)
{
    static struct config cfg; /* 4 KiB path inside: keep it off the stack */
    struct task_store_report rep;
    char err[1024];
    char abs_path[PATH_MAX];
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
    log_set_format(cfg.log_format == CONFIG_LOG_JSON ? LOG_FORMAT_JSON : LOG_FORMAT_TEXT);

    memset(&rep, 0, sizeof(rep));
    /* A large file's tail is all an append needs: listen at once, and check
     * its body in the background (master.c). A small one is checked whole
     * now, as fast as it is: no window where GET /tareas must wait. */
    struct stat st;
    int large = stat(cfg.file, &st) == 0 && st.st_size > TASKSERVER_CHECK_WHOLE_MAX;
    int check_flags =
        TASK_STORE_REPAIR | (cfg.fsync ? TASK_STORE_FSYNC : 0) | (large ? TASK_STORE_TAIL_ONLY : 0);
    if (task_store_check(cfg.file, check_flags, &rep, err, sizeof(err)) < 0) {
        log_error("%s", err);
        log_error("refusing to start: %s needs attention%s", cfg.file,
                  rep.restore_failed ? "" : " (the file was not modified)");
        return 1;
    }
    taskserver_log_check(cfg.file, &rep);

    taskserver_raise_nofile(&cfg);

    if (cfg.trace_dir[0] != '\0') {
        if (trace_prepare_dir(cfg.trace_dir, err, sizeof(err)) < 0) {
            log_error("%s", err);
            return 1;
        }
        log_info("tracing to %s/worker-PID.trace, at most %u events per worker", cfg.trace_dir,
                 cfg.trace_max_events);
    }
    /* Opened once, before fork: every worker appends through the same descriptor. */
    if (access_log_open(cfg.access_log, err, sizeof(err)) < 0) {
        log_error("%s", err);
        return 1;
    }

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
    log_info("taskserver %s: listening on %s%s%s:%u, %u worker%s, locking %s, file %s",
             version_string(), strchr(cfg.bind, ':') != NULL ? "[" : "", cfg.bind,
             strchr(cfg.bind, ':') != NULL ? "]" : "", port, cfg.workers,
             cfg.workers == 1 ? "" : "s", version_locking() ? "on" : "OFF", abs_path);

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
    return master_run(&cfg, fd, rep.body_unchecked);
}
